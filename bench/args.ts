/**
 * Every bench's command line: its options through node's `parseArgs`, plus `--help` (`-h`), which prints the usage
 * the bench states and exits 0, and a one-line error with exit code 2 for an unknown option, a missing value or a
 * number that is not one (never a stack trace).
 *
 *   const values = benchArgs(USAGE, { n: { type: 'string', default: '200' }, breakdown: { type: 'boolean', default: false } });
 *   const N = benchCount(values.n, '--n');
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type BenchOption = { type: 'string'; default?: string } | { type: 'boolean'; default?: boolean };

/** The parsed values: a boolean option is a boolean, a string option with a default a string. */
export type BenchValues<O extends Record<string, BenchOption>> = {
  [K in keyof O]: O[K] extends { type: 'boolean' } ? boolean : O[K] extends { default: string } ? string : string | undefined;
};

let usageText = '';

/** Prints `message` and the hint to stderr and exits 2, as the `orch` CLI does for a usage error. */
export function benchUsageError(message: string): never {
  const name = /^\s*(\S+(?: run)? \S+)/.exec(usageText)?.[1] ?? 'bench';
  process.stderr.write(`${name}: ${message}\n(--help for usage)\n`);
  process.exit(2);
}

/** Parses process.argv against `options` (see the module comment); `usage` is what `--help` prints. */
export function benchArgs<const O extends Record<string, BenchOption>>(usage: string, options: O): BenchValues<O> {
  usageText = usage;
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      options: { ...options, help: { type: 'boolean', short: 'h', default: false } } as ParseArgsConfig['options'],
      allowPositionals: false,
      strict: true,
    });
  } catch (e) {
    benchUsageError((e as Error).message.split('\n')[0] ?? String(e));
  }
  if (parsed.values.help === true) {
    process.stdout.write(`${usage.trim()}\n`);
    process.exit(0);
  }
  const { help: _help, ...values } = parsed.values;
  return values as BenchValues<O>;
}

/** `value` as a positive number (a count, seconds, a size; or zero with `zero`), or a usage error naming `option`. */
export function benchCount(value: string, option: string, { zero = false } = {}): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (n === 0 && !zero)) {
    benchUsageError(`${option} takes a ${zero ? 'non-negative' : 'positive'} number, not "${value}"`);
  }
  return n;
}

/** `value` as a comma-separated list whose every item is one of `allowed`, or a usage error naming `option`. */
export function benchList<T extends string>(value: string, option: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (items.length === 0 || bad.length > 0) benchUsageError(`${option} takes ${allowed.join(', ')} (comma-separated), not "${value}"`);
  return items as T[];
}
