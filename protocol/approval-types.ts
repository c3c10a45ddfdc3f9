/**
 * The approval attestation's data types (protocol/APPROVAL.md), without the code that signs and checks them
 * (protocol/approval.ts, which uses node:crypto and sodium): workflow code builds and checks release lists and
 * approval statements with these types, and may not load Node code.
 */

/** One command a gate releases. `argv` is the rendered template: `${secrets.NAME}` for secrets, `$${` for a literal `${`. */
export interface ReleasedCommand {
  commandId: string;
  node: string;
  agent: string;
  tier: string;
  argv: string[];
  destructive: boolean;
}

export interface ApprovalStatement {
  v: 1;
  type: 'orch-approval';
  tenant: string;
  workflowId: string;
  runId: string;
  gate: string;
  decision: 'approve' | 'reject';
  releaseDigest: string;
  approverKey: string;
  at: number;
  comment: string;
}

export interface SignedApproval {
  statement: ApprovalStatement;
  signature: string;
}

/** The `approval` field of a sealed command message (and of the runCommand activity's input). */
export interface CommandApproval {
  approvals: SignedApproval[];
  released: ReleasedCommand[];
}
