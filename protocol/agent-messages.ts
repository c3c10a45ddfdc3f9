/**
 * The messages desktop and agent exchange inside sealed envelope bodies (protocol/ENVELOPE.md is the envelope;
 * this is what the envelope carries). JSON, UTF-8; the envelope header's `type` equals the message `kind`.
 *
 * Both sides decode with {@link decodeMessage}, which validates everything (kinds, field types, sizes, no NUL in
 * argv) and returns `undefined` for anything else: a message comes from an authenticated peer, but a bug or a
 * stolen key must still not be able to hand the executor something it was never meant to see.
 *
 * @example
 * const body = encodeMessage({ kind: 'command', commandId: 'wf/run/node', argv: ['uptime'], timeoutSeconds: 30 });
 * const m = decodeMessage(body); // the same object, or undefined
 */
import { attestationProblem, type CommandApproval } from './approval';
import { ENVELOPE_OVERHEAD_BYTES, HEADER_FIXED_BYTES, MAX_ENVELOPE_BYTES } from './envelope';

/** Largest body that still fits in one envelope whose type is at most 'result'-sized. */
export const MAX_MESSAGE_BYTES = MAX_ENVELOPE_BYTES - ENVELOPE_OVERHEAD_BYTES - HEADER_FIXED_BYTES - 32;
export const MAX_COMMAND_ID_LENGTH = 512;
export const MAX_ARGV_ENTRIES = 256;
/** Per argument, in UTF-8 bytes (Linux's own limit, MAX_ARG_STRLEN, is 128 KiB). */
export const MAX_ARG_BYTES = 32 * 1024;
/** All arguments together, in UTF-8 bytes. */
export const MAX_ARGV_BYTES = 256 * 1024;
export const MAX_PATH_LENGTH = 4096;
export const MAX_TIMEOUT_SECONDS = 24 * 60 * 60;
/** The default cap on each of stdout and stderr, over the whole run of a command. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
export const MAX_REASON_LENGTH = 2048;
export const MAX_NONCE_LENGTH = 128;

export interface CommandMessage {
  kind: 'command';
  /** workflow id / run id / node id: the same for every attempt, so the agent runs it at most once. */
  commandId: string;
  argv: string[];
  timeoutSeconds: number;
  cwd?: string;
  /** Cap per stream (stdout, stderr); default {@link DEFAULT_MAX_OUTPUT_BYTES}. */
  maxOutputBytes?: number;
  /** The tenant whose run sent it: an agent that serves tenants refuses others' (`tenant_not_served`). */
  tenant?: string;
  /**
   * The signed approvals of the gate that released this command and the gate's released list (APPROVAL.md): what
   * a standard or infrastructure agent needs to run a command that is not read-only.
   */
  approval?: CommandApproval;
}

/** Desktop to agent: the approver keys of one tenant, applied only if `version` is newer than the agent's (APPROVAL.md). */
export interface ApproversMessage {
  kind: 'approvers';
  tenant: string;
  version: number;
  /** Ed25519 public keys, 64 lowercase hex each, at most {@link MAX_APPROVER_KEYS}, no duplicates. */
  keys: string[];
  /** When the desktop sent it (ms since the epoch). */
  signedAt: number;
}

/** Agent to desktop: the answer to an approvers message (`refused` with `stale_version: ...` for an old version). */
export interface ApproversResultMessage {
  kind: 'approvers_result';
  tenant: string;
  version: number;
  status: 'ok' | 'refused';
  reason?: string;
}

export const MAX_APPROVER_KEYS = 256;

export type ResultStatus = 'finished' | 'refused' | 'indeterminate';

export interface ResultMessage {
  kind: 'result';
  commandId: string;
  status: ResultStatus;
  /** Exit code; for a process killed by a signal, 128 + the signal number (the shell's convention). */
  exitCode?: number;
  /** The signal that ended the process, if one did (e.g. 'SIGKILL' after a timeout). */
  signal?: string;
  /** The agent's timeout fired and killed the process group. */
  timedOut?: boolean;
  stdout?: string;
  stderr?: string;
  truncated?: boolean;
  durationMs?: number;
  /** Why refused (`command_not_allowed: <rule>: ...`) or indeterminate. */
  reason?: string;
}

export interface PingMessage {
  kind: 'ping';
  nonce: string;
}

export interface PongMessage {
  kind: 'pong';
  nonce: string;
  agentVersion: string;
  tier: string;
  /**
   * Optional (added after v1's first agents, which omit them): commands this agent has run to completion, and
   * commands it refused (allowlist, tier, dangerous pattern), since its state directory was created. Shown by
   * `orch agent list`; a desktop accepts a pong with or without them.
   */
  commandsRun?: number;
  commandsRefused?: number;
}

export type AgentMessage = CommandMessage | ResultMessage | PingMessage | PongMessage | ApproversMessage | ApproversResultMessage;
export type AgentMessageKind = AgentMessage['kind'];

/** The body bytes of a message. Throws (a programming error) if the message is not valid. */
export function encodeMessage(m: AgentMessage): Buffer {
  const problem = messageProblem(m);
  if (problem) throw new TypeError(`invalid ${String((m as { kind?: unknown }).kind)} message: ${problem}`);
  const out = Buffer.from(JSON.stringify(m), 'utf8');
  if (out.length > MAX_MESSAGE_BYTES) throw new RangeError(`message is ${out.length} bytes, the limit is ${MAX_MESSAGE_BYTES}`);
  return out;
}

/** Parse and validate a body; `undefined` for anything that is not exactly a valid message. Never throws. */
export function decodeMessage(b: Uint8Array): AgentMessage | undefined {
  if (b.byteLength > MAX_MESSAGE_BYTES) return undefined;
  let value: unknown;
  try {
    // fatal: invalid UTF-8 is refused rather than silently replaced.
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
  } catch {
    return undefined;
  }
  return messageProblem(value) === null ? (value as AgentMessage) : undefined;
}

/** Why `value` is not a valid message, or null. Exported for tests and for the desktop's error messages. */
export function messageProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const m = value as Record<string, unknown>;
  switch (m.kind) {
    case 'command':
      return (
        onlyKeys(m, ['kind', 'commandId', 'argv', 'timeoutSeconds', 'cwd', 'maxOutputBytes', 'tenant', 'approval']) ??
        commandIdProblem(m.commandId) ??
        argvProblem(m.argv) ??
        intProblem('timeoutSeconds', m.timeoutSeconds, 1, MAX_TIMEOUT_SECONDS) ??
        (m.cwd === undefined ? null : pathProblem('cwd', m.cwd)) ??
        (m.maxOutputBytes === undefined ? null : intProblem('maxOutputBytes', m.maxOutputBytes, 0, MAX_MESSAGE_BYTES)) ??
        (m.tenant === undefined || (typeof m.tenant === 'string' && /^[A-Za-z0-9_-]{1,100}$/.test(m.tenant)) ? null : 'tenant must be 1..100 of [A-Za-z0-9_-]') ??
        optional(m.approval, attestationProblem)
      );
    case 'approvers':
      return (
        onlyKeys(m, ['kind', 'tenant', 'version', 'keys', 'signedAt']) ??
        (typeof m.tenant === 'string' && /^[A-Za-z0-9_-]{1,100}$/.test(m.tenant) ? null : 'tenant must be 1..100 of [A-Za-z0-9_-]') ??
        intProblem('version', m.version, 0, Number.MAX_SAFE_INTEGER) ??
        intProblem('signedAt', m.signedAt, 0, Number.MAX_SAFE_INTEGER) ??
        approverKeysProblem(m.keys)
      );
    case 'approvers_result':
      return (
        onlyKeys(m, ['kind', 'tenant', 'version', 'status', 'reason']) ??
        (typeof m.tenant === 'string' && /^[A-Za-z0-9_-]{1,100}$/.test(m.tenant) ? null : 'tenant must be 1..100 of [A-Za-z0-9_-]') ??
        intProblem('version', m.version, 0, Number.MAX_SAFE_INTEGER) ??
        (m.status === 'ok' || m.status === 'refused' ? null : 'status must be ok or refused') ??
        optional(m.reason, (v) => (typeof v === 'string' && v.length <= MAX_REASON_LENGTH ? null : `reason must be a string of at most ${MAX_REASON_LENGTH} chars`))
      );
    case 'result': {
      const keys = ['kind', 'commandId', 'status', 'exitCode', 'signal', 'timedOut', 'stdout', 'stderr', 'truncated', 'durationMs', 'reason'];
      const base =
        onlyKeys(m, keys) ??
        commandIdProblem(m.commandId) ??
        (m.status === 'finished' || m.status === 'refused' || m.status === 'indeterminate' ? null : 'status must be finished, refused or indeterminate') ??
        optional(m.exitCode, (v) => intProblem('exitCode', v, -(2 ** 31), 2 ** 31 - 1)) ??
        optional(m.signal, (v) => (typeof v === 'string' && /^SIG[A-Z0-9]{1,12}$/.test(v) ? null : 'signal must be a signal name')) ??
        optional(m.timedOut, (v) => (typeof v === 'boolean' ? null : 'timedOut must be a boolean')) ??
        optional(m.stdout, (v) => (typeof v === 'string' ? null : 'stdout must be a string')) ??
        optional(m.stderr, (v) => (typeof v === 'string' ? null : 'stderr must be a string')) ??
        optional(m.truncated, (v) => (typeof v === 'boolean' ? null : 'truncated must be a boolean')) ??
        optional(m.durationMs, (v) => intProblem('durationMs', v, 0, Number.MAX_SAFE_INTEGER)) ??
        optional(m.reason, (v) => (typeof v === 'string' && v.length <= MAX_REASON_LENGTH ? null : `reason must be a string of at most ${MAX_REASON_LENGTH} chars`));
      if (base) return base;
      if (m.status === 'finished' && m.exitCode === undefined) return 'a finished result needs exitCode';
      if (m.status !== 'finished' && m.reason === undefined) return `a ${String(m.status)} result needs a reason`;
      return null;
    }
    case 'ping':
      return onlyKeys(m, ['kind', 'nonce']) ?? nonceProblem(m.nonce);
    case 'pong':
      return (
        onlyKeys(m, ['kind', 'nonce', 'agentVersion', 'tier', 'commandsRun', 'commandsRefused']) ??
        nonceProblem(m.nonce) ??
        (typeof m.agentVersion === 'string' && m.agentVersion.length <= 64 ? null : 'agentVersion must be a short string') ??
        (typeof m.tier === 'string' && m.tier.length <= 32 ? null : 'tier must be a short string') ??
        optional(m.commandsRun, (v) => intProblem('commandsRun', v, 0, Number.MAX_SAFE_INTEGER)) ??
        optional(m.commandsRefused, (v) => intProblem('commandsRefused', v, 0, Number.MAX_SAFE_INTEGER))
      );
    default:
      return 'unknown kind';
  }
}

function approverKeysProblem(v: unknown): string | null {
  if (!Array.isArray(v) || v.length > MAX_APPROVER_KEYS) return `keys must be an array of at most ${MAX_APPROVER_KEYS} approver keys`;
  const seen = new Set<string>();
  for (let i = 0; i < v.length; i++) {
    const k: unknown = v[i];
    if (typeof k !== 'string' || !/^[0-9a-f]{64}$/.test(k)) return `keys[${i}] must be 64 lowercase hex`;
    if (seen.has(k)) return `keys[${i}] appears twice`;
    seen.add(k);
  }
  return null;
}

function onlyKeys(m: Record<string, unknown>, allowed: string[]): string | null {
  for (const key of Object.keys(m)) if (!allowed.includes(key)) return `unknown field "${key.slice(0, 40)}"`;
  return null;
}

function optional(v: unknown, check: (v: unknown) => string | null): string | null {
  return v === undefined ? null : check(v);
}

function intProblem(name: string, v: unknown, min: number, max: number): string | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? null : `${name} must be an integer in ${min}..${max}`;
}

// Control characters would let a command id forge log lines; the id is also a database key.
const CONTROL = /[\u0000-\u001f\u007f]/;

function commandIdProblem(v: unknown): string | null {
  if (typeof v !== 'string' || v.length < 1 || v.length > MAX_COMMAND_ID_LENGTH) return `commandId must be 1..${MAX_COMMAND_ID_LENGTH} chars`;
  if (CONTROL.test(v)) return 'commandId must not contain control characters';
  return null;
}

function nonceProblem(v: unknown): string | null {
  return typeof v === 'string' && v.length >= 1 && v.length <= MAX_NONCE_LENGTH && !CONTROL.test(v) ? null : `nonce must be 1..${MAX_NONCE_LENGTH} printable chars`;
}

function pathProblem(name: string, v: unknown): string | null {
  if (typeof v !== 'string' || v.length < 1 || v.length > MAX_PATH_LENGTH) return `${name} must be 1..${MAX_PATH_LENGTH} chars`;
  if (v.includes('\u0000')) return `${name} must not contain NUL`;
  if (!v.startsWith('/')) return `${name} must be an absolute path`;
  return null;
}

/** The argv rules, shared with the agent's policy (which checks again and names the rule). */
export function argvProblem(v: unknown): string | null {
  if (!Array.isArray(v) || v.length < 1 || v.length > MAX_ARGV_ENTRIES) return `argv must be an array of 1..${MAX_ARGV_ENTRIES} strings`;
  let total = 0;
  for (let i = 0; i < v.length; i++) {
    const arg: unknown = v[i];
    if (typeof arg !== 'string') return `argv[${i}] must be a string`;
    if (arg.includes('\u0000')) return `argv[${i}] contains NUL`;
    const bytes = Buffer.byteLength(arg, 'utf8');
    if (bytes > MAX_ARG_BYTES) return `argv[${i}] is longer than ${MAX_ARG_BYTES} bytes`;
    total += bytes;
  }
  if ((v[0] as string).length === 0) return 'argv[0] must not be empty';
  if (total > MAX_ARGV_BYTES) return `argv is longer than ${MAX_ARGV_BYTES} bytes in total`;
  return null;
}

/**
 * Shrink a result's output until its encoding fits in one envelope, marking it `truncated`. Output is capped
 * per stream by the executor; this second cap exists because JSON escaping can grow binary output up to 6x.
 */
export function fitResult(result: ResultMessage, maxBytes: number = MAX_MESSAGE_BYTES): ResultMessage {
  let current = result;
  for (let i = 0; i < 64; i++) {
    const size = Buffer.byteLength(JSON.stringify(current), 'utf8');
    if (size <= maxBytes) return current;
    const out = current.stdout ?? '';
    const err = current.stderr ?? '';
    // Shrink proportionally to the overshoot, keeping the start of each stream (where errors usually are).
    const ratio = Math.max(0, (maxBytes - 1024) / size);
    current = {
      ...current,
      stdout: out.slice(0, Math.floor(out.length * ratio * 0.95)),
      stderr: err.slice(0, Math.floor(err.length * ratio * 0.95)),
      truncated: true,
    };
  }
  return { ...current, stdout: '', stderr: '', truncated: true };
}
