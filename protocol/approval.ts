/**
 * Approval attestations (protocol/APPROVAL.md): what an approver signs, what a sealed command carries, and the
 * check a standard or infrastructure agent makes before it runs a command its own read-only check does not clear.
 * The Go agent (agent/internal/approval) implements the same check; protocol/vectors/approval.json holds cases both
 * replay.
 *
 * @example
 * const released = [{ commandId: 'wf/run/restart', node: 'restart', agent: 'web-1', tier: 'standard', argv: ['systemctl', 'restart', 'nginx'], destructive: false }];
 * const statement = { v: 1, type: 'orch-approval', tenant: 'acme', workflowId: 'wf', runId: 'run', gate: 'ok', decision: 'approve',
 *   releaseDigest: releaseDigest(released), approverKey: keyHex, at: Date.now(), comment: '' } as const;
 * const approval = { approvals: [signApproval(statement, secretKey)], released };
 * checkCommandApproval({ commandId: 'wf/run/restart', tenant: 'acme', argv: ['systemctl', 'restart', 'nginx'] }, approval, [keyHex]); // { ok: true, ... }
 */
import { approvalMessage as approvalBytes, releaseDigest } from './approval-digest';
import type { ApprovalStatement, CommandApproval, ReleasedCommand, SignedApproval } from './approval-types';
import { signDetached, verifyDetached } from './primitives';

export type { ApprovalStatement, CommandApproval, ReleasedCommand, SignedApproval } from './approval-types';

export const MAX_APPROVALS = 16;
export const MAX_RELEASED = 256;
export const MAX_COMMENT_LENGTH = 4096;
export const MAX_ID_LENGTH = 1000;
const MAX_ARGV_ENTRIES = 256;
const MAX_ARG_LENGTH = 32 * 1024;

/**
 * Why an attestation does not let a command run. `no_attestation`, `malformed`, `not_released`, `wrong_agent`, `argv_mismatch` are
 * about the attestation as a whole; the others about one signed approval (the first one's is reported).
 */
export const APPROVAL_FAILURES = [
  'no_attestation',
  'malformed',
  'not_released',
  'wrong_agent',
  'argv_mismatch',
  'untrusted_approver',
  'bad_signature',
  'not_approved',
  'wrong_tenant',
  'wrong_run',
  'digest_mismatch',
] as const;
export type ApprovalFailure = (typeof APPROVAL_FAILURES)[number];

export type ApprovalCheck = { ok: true; approverKey: string } | { ok: false; code: ApprovalFailure; detail: string };

export { releaseDigest };

/** The bytes an approver signs (approval-digest.ts), as a Buffer. */
export function approvalMessage(statement: ApprovalStatement): Buffer {
  return Buffer.from(approvalBytes(statement));
}

export function signApproval(statement: ApprovalStatement, secretKey: Uint8Array): SignedApproval {
  return { statement, signature: signDetached(approvalMessage(statement), secretKey).toString('hex') };
}

export function verifyApprovalSignature(a: SignedApproval): boolean {
  if (!/^[0-9a-f]{128}$/.test(a.signature) || !/^[0-9a-f]{64}$/.test(a.statement.approverKey)) return false;
  return verifyDetached(Buffer.from(a.signature, 'hex'), approvalMessage(a.statement), Buffer.from(a.statement.approverKey, 'hex'));
}

type Segment = { literal: string } | { secret: string };

/** Parses one argv template element; null when it holds a `${...}` other than `${secrets.NAME}`. */
export function parseArgTemplate(t: string): Segment[] | null {
  const out: Segment[] = [];
  let text = '';
  let i = 0;
  while (i < t.length) {
    if (t.startsWith('$${', i)) {
      text += '${';
      i += 3;
    } else if (t.startsWith('${', i)) {
      const end = t.indexOf('}', i + 2);
      const m = end < 0 ? null : /^secrets\.([A-Za-z0-9_-]+)$/.exec(t.slice(i + 2, end));
      if (!m) return null;
      if (text) out.push({ literal: text });
      text = '';
      out.push({ secret: m[1]! });
      i = end + 1;
    } else {
      text += t[i];
      i++;
    }
  }
  if (text) out.push({ literal: text });
  return out;
}

/** Whether `arg` is what template element `t` renders to for some secret values (each `${secrets.NAME}` matches any string). */
export function argMatchesTemplate(t: string, arg: string): boolean {
  const segs = parseArgTemplate(t);
  if (!segs) return false;
  // Literal pieces between wildcards: the first anchors the start, the last the end, the middle ones are found
  // leftmost in order (enough for patterns whose only wildcard is "any string").
  const pieces: string[] = [''];
  for (const s of segs) {
    if ('literal' in s) pieces[pieces.length - 1] += s.literal;
    else pieces.push('');
  }
  if (pieces.length === 1) return arg === pieces[0];
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  if (arg.length < first.length + last.length || !arg.startsWith(first) || !arg.endsWith(last)) return false;
  let pos = first.length;
  const end = arg.length - last.length;
  for (const p of pieces.slice(1, -1)) {
    const at = arg.indexOf(p, pos);
    if (at < 0 || at + p.length > end) return false;
    pos = at + p.length;
  }
  return true;
}

export function argvMatchesTemplate(template: readonly string[], argv: readonly string[]): boolean {
  return template.length === argv.length && template.every((t, i) => argMatchesTemplate(t, argv[i]!));
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const onlyKeys = (o: Record<string, unknown>, keys: readonly string[]): boolean =>
  Object.keys(o).length === keys.length && keys.every((k) => Object.prototype.hasOwnProperty.call(o, k));
const str = (v: unknown, max: number, min = 1): boolean => typeof v === 'string' && v.length >= min && v.length <= max;
const noControl = (s: string): boolean => !/[\u0000-\u001f\u007f]/.test(s);
const hasLoneSurrogate = (s: string): boolean => /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

const STATEMENT_KEYS = ['v', 'type', 'tenant', 'workflowId', 'runId', 'gate', 'decision', 'releaseDigest', 'approverKey', 'at', 'comment'] as const;
const ENTRY_KEYS = ['commandId', 'node', 'agent', 'tier', 'argv', 'destructive'] as const;

function statementProblem(s: unknown): string | null {
  if (!isObj(s) || !onlyKeys(s, STATEMENT_KEYS)) return 'statement must have exactly the fields ' + STATEMENT_KEYS.join(', ');
  if (s.v !== 1 || s.type !== 'orch-approval') return 'statement must be v 1, type orch-approval';
  if (typeof s.tenant !== 'string' || !/^[A-Za-z0-9_-]{1,100}$/.test(s.tenant)) return 'statement tenant must be 1..100 of [A-Za-z0-9_-]';
  for (const k of ['workflowId', 'runId', 'gate'] as const) {
    const v = s[k];
    if (!str(v, MAX_ID_LENGTH) || !noControl(v as string) || hasLoneSurrogate(v as string)) return `statement ${k} must be 1..${MAX_ID_LENGTH} printable chars`;
  }
  if (s.decision !== 'approve' && s.decision !== 'reject') return 'statement decision must be approve or reject';
  if (typeof s.releaseDigest !== 'string' || !/^[0-9a-f]{64}$/.test(s.releaseDigest)) return 'statement releaseDigest must be 64 lowercase hex';
  if (typeof s.approverKey !== 'string' || !/^[0-9a-f]{64}$/.test(s.approverKey)) return 'statement approverKey must be 64 lowercase hex';
  if (typeof s.at !== 'number' || !Number.isSafeInteger(s.at) || s.at < 0) return 'statement at must be an integer of ms since the epoch';
  if (!str(s.comment, MAX_COMMENT_LENGTH, 0) || hasLoneSurrogate(s.comment as string)) return `statement comment must be a string of at most ${MAX_COMMENT_LENGTH} chars`;
  return null;
}

function entryProblem(e: unknown, i: number): string | null {
  if (!isObj(e) || !onlyKeys(e, ENTRY_KEYS)) return `released[${i}] must have exactly the fields ${ENTRY_KEYS.join(', ')}`;
  for (const k of ['commandId', 'node', 'agent', 'tier'] as const) {
    const v = e[k];
    if (!str(v, k === 'commandId' ? 512 : MAX_ID_LENGTH) || !noControl(v as string) || hasLoneSurrogate(v as string)) return `released[${i}].${k} must be a short printable string`;
  }
  if (!Array.isArray(e.argv) || e.argv.length < 1 || e.argv.length > MAX_ARGV_ENTRIES) return `released[${i}].argv must be 1..${MAX_ARGV_ENTRIES} strings`;
  for (const a of e.argv) if (!str(a, MAX_ARG_LENGTH, 0) || (a as string).includes('\u0000') || hasLoneSurrogate(a as string)) return `released[${i}].argv holds a value that is not an argument`;
  if (typeof e.destructive !== 'boolean') return `released[${i}].destructive must be a boolean`;
  return null;
}

/** Why `value` is not a well-formed attestation, or null (the shape only: {@link checkCommandApproval} decides). */
export function attestationProblem(value: unknown): string | null {
  if (!isObj(value) || !onlyKeys(value, ['approvals', 'released'])) return 'approval must have exactly the fields approvals, released';
  const { approvals, released } = value;
  if (!Array.isArray(approvals) || approvals.length < 1 || approvals.length > MAX_APPROVALS) return `approval.approvals must hold 1..${MAX_APPROVALS} signed approvals`;
  for (let i = 0; i < approvals.length; i++) {
    const a: unknown = approvals[i];
    if (!isObj(a) || !onlyKeys(a, ['statement', 'signature'])) return `approvals[${i}] must have exactly the fields statement, signature`;
    if (typeof a.signature !== 'string' || !/^[0-9a-f]{128}$/.test(a.signature)) return `approvals[${i}].signature must be 128 lowercase hex`;
    const p = statementProblem(a.statement);
    if (p) return `approvals[${i}]: ${p}`;
  }
  if (!Array.isArray(released) || released.length < 1 || released.length > MAX_RELEASED) return `approval.released must hold 1..${MAX_RELEASED} commands`;
  const ids = new Set<string>();
  for (let i = 0; i < released.length; i++) {
    const p = entryProblem(released[i], i);
    if (p) return p;
    const id = (released[i] as ReleasedCommand).commandId;
    if (ids.has(id)) return `released[${i}].commandId appears twice`;
    ids.add(id);
  }
  return null;
}

/** The command as the agent received it. */
export interface ApprovalSubject {
  commandId: string;
  /** The command's tenant; none means no approver key can be trusted for it. */
  tenant?: string;
  /** The argv as it will run (secrets resolved). */
  argv: readonly string[];
  /** The agent's own name, when it knows it (from its join): the released entry must name it. */
  agent?: string;
}

/**
 * The agent's rule (APPROVAL.md "The check"): ok when one signed approval holds, else the first failing check.
 * `trustedKeys` are the approver keys the agent trusts for the command's tenant. Details never quote argv.
 */
export function checkCommandApproval(cmd: ApprovalSubject, approval: unknown, trustedKeys: readonly string[]): ApprovalCheck {
  if (approval === undefined || approval === null) return { ok: false, code: 'no_attestation', detail: 'the command carries no approval attestation' };
  const shape = attestationProblem(approval);
  if (shape) return { ok: false, code: 'malformed', detail: shape };
  const att = approval as CommandApproval;
  const entry = att.released.find((e) => e.commandId === cmd.commandId);
  if (!entry) return { ok: false, code: 'not_released', detail: 'no released command has this command id' };
  if (cmd.agent !== undefined && entry.agent !== cmd.agent) return { ok: false, code: 'wrong_agent', detail: 'the gate released this command for another agent' };
  if (!argvMatchesTemplate(entry.argv, cmd.argv)) return { ok: false, code: 'argv_mismatch', detail: 'the argv is not the one the gate released' };
  const digest = releaseDigest(att.released);
  const trusted = new Set(trustedKeys);
  const failures: Array<{ code: ApprovalFailure; detail: string }> = [];
  for (let i = 0; i < att.approvals.length; i++) {
    const a = att.approvals[i]!;
    const s = a.statement;
    const fail = (code: ApprovalFailure, why: string) => failures.push({ code, detail: `approval ${i}: ${why}` });
    if (!trusted.has(s.approverKey)) fail('untrusted_approver', `key ${s.approverKey.slice(0, 16)}… is not an approver this agent trusts for the tenant`);
    else if (!verifyApprovalSignature(a)) fail('bad_signature', 'the signature does not verify');
    else if (s.decision !== 'approve') fail('not_approved', 'the decision is reject');
    else if (cmd.tenant === undefined || s.tenant !== cmd.tenant) fail('wrong_tenant', 'signed for another tenant');
    else if (!cmd.commandId.startsWith(`${s.workflowId}/${s.runId}/`)) fail('wrong_run', 'signed for another workflow run');
    else if (s.releaseDigest !== digest) fail('digest_mismatch', 'the released commands are not the ones signed');
    else return { ok: true, approverKey: s.approverKey };
  }
  const first = failures[0]!;
  return { ok: false, code: first.code, detail: failures.map((f) => f.detail).join('; ') };
}
