/**
 * Names and shapes shared by workflows, activities, the worker and clients: the task queue, the signal and
 * queries, search attributes, and the run status. Pure definitions, safe in workflow code.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { ReleasedCommand, SignedApproval, SignedStart } from './approval';

export type { ApprovalStatement, CommandApproval, ReleasedCommand, SignedApproval, SignedStart, StartStatement } from './approval';

export const DEFAULT_TASK_QUEUE = 'orch';

/** Workflow type that takes an inline DAG (developers' and tests' workers only: not on the production worker). */
export const RUN_DAG_WORKFLOW = 'runDag';

export interface ApproveSignal {
  gate: string;
  decision: 'approve' | 'reject';
  /**
   * Who sent it, as a display label. For a gate that names approvers the verified approver is the name the
   * signing key has in the tenant's approver list, whatever this says.
   */
  approver: string;
  comment?: string;
  /** The approval statement signed with the approver's key (`orch approve`): required by gates that name approvers. */
  signed?: SignedApproval;
}

/** What the `approve` update answers once the decision was taken into account. */
export interface ApproveResult {
  gate: string;
  /** The gate's state after this decision: still `pending` while it needs more distinct approvers. */
  state: 'pending' | 'approved' | 'rejected';
  /** The verified approver's name (from the tenant's approver list), or the signal's label when unverified. */
  approver: string;
  verified: boolean;
  approvals: number;
  needed: number;
}

export const approveSignal = defineSignal<[ApproveSignal]>('approve');
/** The same decision as an update: its validator rejects a decision the gate would refuse, with the reason. */
export const approveUpdate = defineUpdate<ApproveResult, [ApproveSignal]>('approve');
export const statusQuery = defineQuery<RunStatus>('status');
export const pendingGatesQuery = defineQuery<PendingGate[]>('pendingGates');

export const searchAttributes = {
  tenant: defineSearchAttributeKey('OrchTenant', SearchAttributeType.KEYWORD),
  dag: defineSearchAttributeKey('OrchDag', SearchAttributeType.KEYWORD),
  state: defineSearchAttributeKey('OrchState', SearchAttributeType.KEYWORD),
} as const;

/** What `temporal server start-dev --search-attribute` and the operator service need. */
export const SEARCH_ATTRIBUTE_TYPES: Record<string, 'Keyword'> = {
  OrchTenant: 'Keyword',
  OrchDag: 'Keyword',
  OrchState: 'Keyword',
};

export type RunState = 'running' | 'waiting_approval' | 'succeeded' | 'failed';

export type NodeState =
  | 'pending'
  | 'running'
  | 'waiting_approval'
  | 'succeeded'
  | 'failed'
  | 'skipped'
  | 'cancelled';

export interface NodeStatus {
  id: string;
  type: 'command' | 'claude' | 'approval_gate';
  state: NodeState;
  startedAt?: string;
  finishedAt?: string;
  /** A short, secret-free summary of the output (first lines, exit code, decision). */
  summary?: string;
  /** Stable error type when failed or skipped. */
  error?: { type: string; message: string };
  costUsd?: number;
}

export interface PendingGate {
  gate: string;
  message: string;
  since: string;
  deadline: string;
  approvers?: string[];
  /** Every command this gate releases, as the approver's signature covers it. */
  released: ReleasedCommand[];
  /** SHA-256 over the released list (protocol/APPROVAL.md): what an approval statement must name. */
  releaseDigest: string;
  /** Distinct verified approvals needed. */
  needed: number;
  /** Whether the run's starter is refused as an approver (four eyes). */
  distinctFromStarter: boolean;
  /** The run's starter key, when the run carries a valid signed start from a key Orch knows. */
  starterKey?: string;
  /** Approvals taken so far (a gate needing several distinct approvers stays pending until it has them). */
  approvals: Array<{ approver: string; key?: string; verified: boolean; at: string }>;
  /** Decisions this gate refused, newest last (at most 20 kept), each with the reason. */
  refused: Array<{ approver: string; key?: string; decision: string; reason: string; at: string }>;
}

export interface RunStatus {
  tenant: string;
  dag: string;
  dagVersion: string;
  dagHash?: string;
  state: RunState;
  nodes: NodeStatus[];
  cost: { capUsd: number; spentUsd: number; reservedUsd: number };
  pendingGates: PendingGate[];
  /** Signals that were not applied, and why (unknown gate, approver not allowed, already decided). */
  ignoredSignals: Array<{ signal: ApproveSignal; reason: string }>;
  failure?: { node?: string; type: string; message: string };
}

/** Input of a registered DAG's workflow type (the Temporal UI's Start Workflow form takes this JSON). */
export interface DagRunInput {
  tenant: string;
  params?: Record<string, unknown>;
  /** `orch run` signs who started the run (four eyes); a run started without it has no proven starter. */
  start?: SignedStart;
}

/** Input of `runDag`: an inline DAG source. */
export interface InlineDagRunInput {
  tenant?: string;
  dag: unknown;
  params?: Record<string, unknown>;
}

/** The result of a successful run. */
export interface RunResult {
  dag: string;
  state: 'succeeded';
  outputs: Record<string, string>;
  costUsd: number;
}
