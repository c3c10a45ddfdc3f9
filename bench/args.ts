/**
 * Every bench's command line: its options through node's `parseArgs`, plus `--help` (`-h`), which prints the usage
 * the bench states and exits 0, and a one-line error with exit code 2 for an unknown option, a missing value or a
 * number that is not one (never a stack trace).
 *
 *   const { values, count } = benchArgs(USAGE, { n: { type: 'string', default: '200' }, breakdown: { type: 'boolean', default: false } });
 *   const N = count(values.n, '--n');
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type BenchOption = { type: 'string'; default?: string } | { type: 'boolean'; default?: boolean };

/** The parsed values: a boolean option is a boolean, a string option with a default a string. */
export type BenchValues<O extends Record<string, BenchOption>> = {
  [K in keyof O]: O[K] extends { type: 'boolean' } ? boolean : O[K] extends { default: string } ? string : string | undefined;
};

/** One bench's command line: its parsed options, and usage errors that name the bench (from its usage's first line). */
export interface BenchCli<V> {
  values: V;
  /** Prints `message` and the hint to stderr and exits 2, as the `orch` CLI does for a usage error. */
  usageError(message: string): never;
  /** `value` as a positive number (a count, seconds, a size; or zero with `zero`), or a usage error naming `option`. */
  count(value: string, option: string, opts?: { zero?: boolean }): number;
  /** `value` as a comma-separated list whose every item is one of `allowed`, or a usage error naming `option`. */
  list<T extends string>(value: string, option: string, allowed: readonly T[]): T[];
}

/**
 * Parses process.argv against `options` (see the module comment); `usage` is what `--help` prints, and its first
 * words (`npm run bench:engine`) name the bench in usage errors.
 */
export function benchArgs<const O extends Record<string, BenchOption>>(usage: string, options: O): BenchCli<BenchValues<O>> {
  const name = /^\s*(\S+(?: run)? \S+)/.exec(usage)?.[1] ?? 'bench';
  function usageError(message: string): never {
    process.stderr.write(`${name}: ${message}\n(--help for usage)\n`);
    process.exit(2);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      options: { ...options, help: { type: 'boolean', short: 'h', default: false } } as ParseArgsConfig['options'],
      allowPositionals: false,
      strict: true,
    });
  } catch (e) {
    usageError((e as Error).message.split('\n')[0] ?? String(e));
  }
  if (parsed.values.help === true) {
    process.stdout.write(`${usage.trim()}\n`);
    process.exit(0);
  }
  const { help: _help, ...values } = parsed.values;
  return {
    values: values as BenchValues<O>,
    usageError,
    count: (value, option, { zero = false } = {}) => {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (n === 0 && !zero)) {
        usageError(`${option} takes a ${zero ? 'non-negative' : 'positive'} number, not "${value}"`);
      }
      return n;
    },
    list: <T extends string>(value: string, option: string, allowed: readonly T[]): T[] => {
      const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
      const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
      if (items.length === 0 || bad.length > 0) usageError(`${option} takes ${allowed.join(', ')} (comma-separated), not "${value}"`);
      return items as T[];
    },
  };
}
