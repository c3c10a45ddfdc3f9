/**
 * Signed approvals, as workflow code checks them (the contract is protocol/APPROVAL.md):
 * - the release list of a gate (one entry per command node it releases) and its `releaseDigest`;
 * - the approval statement an approver signs with their Ed25519 key (`orch approve`), and its verification;
 * - the start statement `orch run` signs, so the run's starter is known for four-eyes gates.
 *
 * Deterministic and synchronous: pure-JS Ed25519 and SHA-256 (@noble), RFC 8785 canonical JSON from the one
 * serialiser the project has (protocol/canonical-json.ts, pure code).
 */
import { ed25519 } from './ed25519';
import { canonicalize } from '../protocol/canonical-json';
import { utf8 } from '../protocol/approval-digest';
import type { ApprovalStatement, SignedApproval } from '../protocol/approval-types';

export const START_DOMAIN = 'orch-start-v1\n';

// The release list, the approval statement and the attestation are the protocol's own types (protocol/APPROVAL.md),
// from protocol/approval-types.ts: workflow code cannot load protocol/approval.ts, which uses node:crypto.
export type { ApprovalStatement, CommandApproval, ReleasedCommand, SignedApproval } from '../protocol/approval-types';

/** What `orch run` signs so a workflow knows who started it (four eyes). */
export interface StartStatement {
  v: 1;
  type: 'orch-start';
  tenant: string;
  workflowId: string;
  /** The workflow type (the DAG's name). */
  workflowType: string;
  /** SHA-256 hex of the canonical JSON of the run's params. */
  paramsDigest: string;
  starterKey: string;
  at: number;
}

export interface SignedStart {
  statement: StartStatement;
  signature: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** The bytes a start signature covers. */
export function startMessage(statement: StartStatement): Uint8Array {
  return utf8(START_DOMAIN + canonicalize(statement));
}

/**
 * The last verification, its inputs and its answer: an approve update's validator and then its handler judge the same
 * signed statement in one activation, so the handler's check is answered from here (a pure function's answer for
 * the same signature, key and message bytes).
 */
let lastVerified: { signature: string; key: string; message: Uint8Array; ok: boolean } | undefined;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** RFC 8032 verification (strict: no ZIP-215 leniency), false for anything malformed. */
export function verifyEd25519(signatureHex: string, message: Uint8Array, publicKeyHex: string): boolean {
  if (!HEX128.test(signatureHex) || !HEX64.test(publicKeyHex)) return false;
  const last = lastVerified;
  if (last && last.signature === signatureHex && last.key === publicKeyHex && sameBytes(last.message, message)) return last.ok;
  let ok: boolean;
  try {
    ok = ed25519.verify(fromHex(signatureHex), message, fromHex(publicKeyHex), { zip215: false });
  } catch {
    ok = false;
  }
  lastVerified = { signature: signatureHex, key: publicKeyHex, message: message.slice(), ok };
  return ok;
}

/** Why `v` is not a well-formed signed approval, or undefined. Checks shape only, not the signature. */
export function signedApprovalShapeProblem(v: unknown): string | undefined {
  const s = v as Partial<SignedApproval> | null;
  if (typeof s !== 'object' || s === null) return 'a signed approval is {statement, signature}';
  if (typeof s.signature !== 'string' || !HEX128.test(s.signature)) return 'the signature is not 128 lowercase hex digits';
  const st = s.statement as Partial<ApprovalStatement> | null | undefined;
  if (typeof st !== 'object' || st === null) return 'the statement is missing';
  const keys = Object.keys(st).sort().join(',');
  if (keys !== 'approverKey,at,comment,decision,gate,releaseDigest,runId,tenant,type,v,workflowId') return 'the statement has missing or extra fields';
  if (st.v !== 1 || st.type !== 'orch-approval') return 'the statement is not an orch-approval v1';
  if (typeof st.tenant !== 'string' || typeof st.workflowId !== 'string' || typeof st.runId !== 'string' || typeof st.gate !== 'string') {
    return 'the statement tenant, workflowId, runId and gate must be strings';
  }
  if (st.decision !== 'approve' && st.decision !== 'reject') return 'the statement decision must be "approve" or "reject"';
  if (typeof st.releaseDigest !== 'string' || !HEX64.test(st.releaseDigest)) return 'the statement releaseDigest is not 64 lowercase hex digits';
  if (typeof st.approverKey !== 'string' || !HEX64.test(st.approverKey)) return 'the statement approverKey is not 64 lowercase hex digits';
  if (typeof st.at !== 'number' || !Number.isSafeInteger(st.at) || st.at < 0) return 'the statement time "at" must be an integer (ms since the epoch)';
  if (typeof st.comment !== 'string') return 'the statement comment must be a string';
  return undefined;
}

/** Why `v` is not a well-formed, validly self-signed start statement, or undefined. */
export function signedStartProblem(v: unknown): string | undefined {
  const s = v as Partial<SignedStart> | null;
  if (typeof s !== 'object' || s === null) return 'a signed start is {statement, signature}';
  const st = s.statement as Partial<StartStatement> | null | undefined;
  if (typeof st !== 'object' || st === null) return 'the start statement is missing';
  const keys = Object.keys(st).sort().join(',');
  if (keys !== 'at,paramsDigest,starterKey,tenant,type,v,workflowId,workflowType') return 'the start statement has missing or extra fields';
  if (st.v !== 1 || st.type !== 'orch-start') return 'the start statement is not an orch-start v1';
  if (typeof st.starterKey !== 'string' || !HEX64.test(st.starterKey)) return 'the start statement starterKey is not 64 lowercase hex digits';
  if (typeof st.at !== 'number' || !Number.isSafeInteger(st.at)) return 'the start statement time is not an integer';
  if (typeof s.signature !== 'string' || !verifyEd25519(s.signature, startMessage(st as StartStatement), st.starterKey)) {
    return 'the start statement signature does not verify';
  }
  return undefined;
}
