/**
 * The operator's side of signed approvals (protocol/APPROVAL.md): `orch approve` signs an approval statement and
 * `orch run` signs a start statement, each with the operator's Ed25519 identity key from the OS keychain. The
 * workflow verifies both with the same definitions (workflows/approval.ts).
 *
 * @example
 * const identity = await loadDesktopIdentity({ home });
 * const signed = signApproval(identity.sign, { tenant, workflowId, runId, gate, decision: 'approve', releaseDigest, comment: '' });
 */
import { canonicalize } from '../protocol/canonical-json';
import { signDetached, type SignKeyPair } from '../protocol/primitives';
import { signApproval as signStatement } from '../protocol/approval';
import { sha256Hex } from '../protocol/approval-digest';
import type { ApprovalStatement, SignedApproval } from '../protocol/approval-types';
import { startMessage, type SignedStart, type StartStatement } from '../workflows/approval';

/** What the operator decides and signs; signApproval adds the version, type, signer's key and time. */
export type ApprovalFields = Omit<ApprovalStatement, 'v' | 'type' | 'approverKey' | 'at'>;

/** Signs an approval statement for one gate of one run, covering the gate's release digest. */
export function signApproval(key: Pick<SignKeyPair, 'publicKey' | 'secretKey'>, fields: ApprovalFields, at: number = Date.now()): SignedApproval {
  const statement: ApprovalStatement = {
    v: 1,
    type: 'orch-approval',
    tenant: fields.tenant,
    workflowId: fields.workflowId,
    runId: fields.runId,
    gate: fields.gate,
    decision: fields.decision,
    releaseDigest: fields.releaseDigest,
    approverKey: Buffer.from(key.publicKey).toString('hex'),
    at: Math.floor(at),
    comment: fields.comment,
  };
  return signStatement(statement, key.secretKey);
}

/** Signs who starts a run: the workflow id and type, tenant and params, so it cannot be moved to another run. */
export function signStart(
  key: Pick<SignKeyPair, 'publicKey' | 'secretKey'>,
  fields: { tenant: string; workflowId: string; workflowType: string; params: Record<string, unknown> },
  at: number = Date.now(),
): SignedStart {
  const statement: StartStatement = {
    v: 1,
    type: 'orch-start',
    tenant: fields.tenant,
    workflowId: fields.workflowId,
    workflowType: fields.workflowType,
    paramsDigest: sha256Hex(canonicalize(fields.params)),
    starterKey: Buffer.from(key.publicKey).toString('hex'),
    at: Math.floor(at),
  };
  return { statement, signature: signDetached(startMessage(statement), key.secretKey).toString('hex') };
}
