/**
 * Secrets inside the runCommand activity: the one place a secret value exists in clear on the worker side.
 *
 * A command's argv arrives as a template holding only `${secrets.NAME}` references (the workflow rendered params
 * with `keepSecrets: true`, see workflows/dag/template.ts), so the activity input, and with it Temporal's
 * history, never holds a value. The activity resolves the references, hands the real argv to the transport
 * (which seals it to the agent), and masks every secret value the tenant has, as `***`, in stdout, stderr and
 * any error before the result leaves the activity and is written to history; node summaries and audit rows are
 * made from those masked texts.
 *
 * Masking replaces every run of 8 or more characters of a value (and whole occurrences of shorter values), not
 * only the whole value: a slice of a key is masked too. A command that prints a secret base64-encoded, reversed
 * or split into pieces shorter than 8 characters still defeats it. Output cut by the agent's cap may end in the
 * first characters of a secret: those are masked too.
 */
import { ApplicationFailure } from '@temporalio/common';
import { parseTemplate, renderTemplate } from '../workflows/dag/template';
import { OrchError, type ErrorCode } from '../protocol/errors';
import type { CommandRequest, CommandResult } from './types';

export const MASK = '***';

/** Where an activity finds a tenant's secrets (desktop-worker's TenantStore implements it). */
export interface SecretSource {
  /**
   * Every secret a command of this tenant may use or must not show, by name: the tenant's stored secrets and the
   * worker's `API_KEY_*`, `SECRET_*`, `TOKEN_*`, `PASSWORD_*` environment variables.
   */
  secretValues(tenant: string): Promise<ReadonlyMap<string, string>>;
}

/** Stable failure types of this module. */
export const SecretFailure = {
  /** The DAG refers to `${secrets.NAME}` and the tenant has no such secret. */
  missing: 'secret_missing',
  /** A command argv is not a valid secrets-only template (a literal `${` must be written `$${`). */
  badArgv: 'bad_argv_template',
} as const satisfies Record<string, ErrorCode>;

function isSecretSource(v: unknown): v is SecretSource {
  return typeof v === 'object' && v !== null && typeof (v as SecretSource).secretValues === 'function';
}

/**
 * The secret source among the activity dependencies: `deps.secrets` when given, else the audit sink when it can
 * also resolve secrets (the worker passes its TenantStore as both).
 */
export function secretSourceOf(deps: { secrets?: unknown; audit?: unknown }): SecretSource | undefined {
  if (isSecretSource(deps.secrets)) return deps.secrets;
  if (isSecretSource(deps.audit)) return deps.audit;
  return undefined;
}

/**
 * A run of this many characters of a secret is masked wherever it appears, not only the whole value: a command
 * that prints a slice of a key (`cut -c3-20`, a line wrapped at a column, a message quoting part of its input)
 * must not put that slice into history, a node summary or an audit row.
 */
export const MASK_RUN_LENGTH = 8;

/** A 32-bit polynomial hash of `s[from..from+MASK_RUN_LENGTH)`, the same one the rolling scan keeps. */
function runHash(s: string, from: number): number {
  let h = 0;
  for (let i = from; i < from + MASK_RUN_LENGTH; i++) h = (Math.imul(h, HASH_BASE) + s.charCodeAt(i)) | 0;
  return h;
}
const HASH_BASE = 257;
/** HASH_BASE ** (MASK_RUN_LENGTH - 1) in 32-bit arithmetic: the weight of the unit leaving the window. */
const HASH_TOP = Array.from({ length: MASK_RUN_LENGTH - 1 }).reduce<number>((h) => Math.imul(h, HASH_BASE), 1);

/**
 * Masks secret values in text: every run of {@link MASK_RUN_LENGTH} or more characters of any value (so any
 * substring that long, wherever it starts in the value), and every whole occurrence of a shorter value. Each
 * stretch of masked text becomes one `***`. With `truncated`, a tail that is the start of a value (at least 4
 * characters of it, or all of a shorter one) is masked too.
 *
 * Cost: one pass over the text with a rolling hash of the last 8 characters, looked up among the values'
 * 8-character runs (a value of length L has L - 7), so megabytes of output cost milliseconds; a hash hit is
 * confirmed by comparing the characters.
 *
 * @example maskSecrets('token=abc123', ['abc123']) // 'token=***'
 * @example maskSecrets('part: 9f8e7d6c5b4a', ['0a9f8e7d6c5b4a3f']) // 'part: ***'
 */
export function maskSecrets(text: string, values: Iterable<string>, truncated = false): string {
  const list = [...new Set([...values].filter((v) => v.length > 0))].sort((a, b) => b.length - a.length);
  if (list.length === 0) return text;
  // masked[i] = 1 when text[i] belongs to a secret run.
  const masked = new Uint8Array(text.length);
  let any = false;
  const mark = (from: number, to: number) => {
    masked.fill(1, from, to);
    any = true;
  };

  const runs = new Map<number, string[]>();
  for (const v of list) {
    if (v.length < MASK_RUN_LENGTH) {
      for (let at = text.indexOf(v); at !== -1; at = text.indexOf(v, at + 1)) mark(at, at + v.length);
      continue;
    }
    for (let i = 0; i + MASK_RUN_LENGTH <= v.length; i++) {
      const h = runHash(v, i);
      const run = v.slice(i, i + MASK_RUN_LENGTH);
      const bucket = runs.get(h);
      if (!bucket) runs.set(h, [run]);
      else if (!bucket.includes(run)) bucket.push(run);
    }
  }
  if (runs.size > 0 && text.length >= MASK_RUN_LENGTH) {
    let h = runHash(text, 0);
    for (let i = 0; ; i++) {
      const bucket = runs.get(h);
      if (bucket && bucket.includes(text.slice(i, i + MASK_RUN_LENGTH))) mark(i, i + MASK_RUN_LENGTH);
      if (i + MASK_RUN_LENGTH >= text.length) break;
      h = (Math.imul((h - Math.imul(text.charCodeAt(i), HASH_TOP)) | 0, HASH_BASE) + text.charCodeAt(i + MASK_RUN_LENGTH)) | 0;
    }
  }
  if (truncated) {
    for (const v of list) {
      for (let k = v.length - 1; k >= Math.min(4, v.length); k--) {
        if (text.endsWith(v.slice(0, k))) {
          mark(text.length - k, text.length);
          break;
        }
      }
    }
  }
  if (!any) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    let j = i;
    while (j < text.length && masked[j] === masked[i]) j++;
    out += masked[i] === 1 ? MASK : text.slice(i, j);
    i = j;
  }
  return out;
}

/** Masks every string inside a JSON-like value. */
export function maskDeep(value: unknown, values: readonly string[], depth = 0): unknown {
  if (depth > 32) return null;
  if (typeof value === 'string') return maskSecrets(value, values);
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, values, depth + 1));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[maskSecrets(k, values)] = maskDeep(v, values, depth + 1);
    return out;
  }
  return value;
}

/** The secret names an argv template refers to; throws bad_argv_template for anything but text and secrets. */
export function argvSecretNames(argv: readonly string[]): string[] {
  const names: string[] = [];
  argv.forEach((arg, i) => {
    const { parts, errors } = parseTemplate(arg);
    const bad = errors[0];
    if (bad) {
      throw ApplicationFailure.nonRetryable(
        `argv element ${i} has ${bad.text} at offset ${bad.index}, which is not \${secrets.NAME}; write $\${ for a literal \${`,
        SecretFailure.badArgv,
        { index: i },
      );
    }
    for (const p of parts) {
      if (p.kind === 'param' || p.kind === 'node') {
        throw ApplicationFailure.nonRetryable(
          `argv element ${i} still holds a \${${p.kind === 'param' ? 'params' : 'nodes'}...} reference: the workflow renders those before the activity`,
          SecretFailure.badArgv,
          { index: i },
        );
      }
      if (p.kind === 'secret' && !names.includes(p.name)) names.push(p.name);
    }
  });
  return names;
}

/** Rethrows `err` with every secret value masked in its message and details, keeping its type and retry flag. */
export function maskedFailure(err: unknown, values: readonly string[]): Error {
  if (err instanceof ApplicationFailure) {
    return ApplicationFailure.create({
      message: maskSecrets(err.message, values),
      type: err.type ?? undefined,
      nonRetryable: err.nonRetryable === true,
      details: err.details?.map((d) => maskDeep(d, values)),
    });
  }
  if (err instanceof OrchError) {
    return ApplicationFailure.nonRetryable(maskSecrets(err.message, values), err.code, maskDeep(err.details, values));
  }
  const e = err instanceof Error ? err : new Error(String(err));
  // A plain error stays retryable, as it was; its stack (which repeats the message) is not carried over.
  return ApplicationFailure.create({ message: maskSecrets(e.message, values), type: e.name || 'Error', nonRetryable: false });
}

/**
 * The body of the runCommand activity: resolve `${secrets.NAME}` in argv, run, mask.
 *
 * @example
 * const result = await runCommandWithSecrets(req, transport, store);
 */
export async function runCommandWithSecrets(
  req: CommandRequest,
  run: (request: CommandRequest) => Promise<CommandResult>,
  source: SecretSource | undefined,
): Promise<CommandResult> {
  const names = argvSecretNames(req.argv);
  let secrets: ReadonlyMap<string, string> = new Map();
  if (source !== undefined) {
    try {
      secrets = await source.secretValues(req.tenant);
    } catch (err) {
      // The keychain may be locked or gone: nothing was sent, and the message names no value.
      if (err instanceof OrchError) throw ApplicationFailure.nonRetryable(err.message, err.code);
      throw err;
    }
  }
  const values = [...secrets.values()];
  const missing = names.filter((n) => !secrets.has(n));
  if (missing.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `the command uses ${missing.map((n) => `\${secrets.${n}}`).join(', ')}, which tenant "${req.tenant}" does not have: set it with \`orch secret set --tenant ${req.tenant} ${missing[0]}\``,
      SecretFailure.missing,
      { secrets: missing },
    );
  }
  const argv = req.argv.map((a) => renderTemplate(a, { params: {}, secret: (n) => secrets.get(n) }));
  let result: CommandResult;
  try {
    result = await run({ ...req, argv });
  } catch (err) {
    throw maskedFailure(err, values);
  }
  if (values.length === 0) return result;
  return {
    ...result,
    stdout: maskSecrets(result.stdout, values, result.truncated),
    stderr: maskSecrets(result.stderr, values, result.truncated),
  };
}

