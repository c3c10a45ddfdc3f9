/**
 * Secrets inside the runCommand activity: the one place a secret value exists in clear on the worker side.
 *
 * A command's argv arrives as a template holding only `${secrets.NAME}` references (the workflow rendered params
 * with `keepSecrets: true`, see workflows/dag/template.ts), so the activity input, and with it Temporal's
 * history, never holds a value. The activity resolves the references, hands the real argv to the transport
 * (which seals it to the agent), and masks every secret value the tenant has, as `***`, in stdout, stderr and
 * any error before the result leaves the activity and is written to history.
 *
 * Masking replaces literal occurrences only: a command that prints a secret base64-encoded, reversed or split
 * across lines defeats it. Output cut by the agent's cap may end in the first characters of a secret: those
 * are masked too.
 */
import { ApplicationFailure } from '@temporalio/common';
import { parseTemplate, renderTemplate } from '../workflows/dag/template';
import { OrchError } from '../workflows/errors';
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
} as const;

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
 * Replaces every occurrence of every value with `***`, longest first (so a secret that contains another is not
 * left half shown). With `truncated`, a tail that is the start of a value (at least 4 characters of it, or all
 * of a shorter one) is masked too.
 *
 * @example maskSecrets('token=abc123', ['abc123']) // 'token=***'
 */
export function maskSecrets(text: string, values: Iterable<string>, truncated = false): string {
  const list = [...new Set([...values].filter((v) => v.length > 0))].sort((a, b) => b.length - a.length);
  let out = text;
  for (const v of list) if (out.includes(v)) out = out.split(v).join(MASK);
  if (truncated) {
    for (const v of list) {
      for (let k = v.length - 1; k >= Math.min(4, v.length); k--) {
        if (out.endsWith(v.slice(0, k))) {
          out = out.slice(0, out.length - k) + MASK;
          break;
        }
      }
    }
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

