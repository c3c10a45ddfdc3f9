/**
 * Names and shapes shared by workflows, activities, the worker and clients: the task queue, the signal and
 * queries, search attributes, and the run status. Pure definitions, safe in workflow code.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const DEFAULT_TASK_QUEUE = 'orch';

/** Workflow type that takes an inline DAG (developers' and tests' workers only: not on the production worker). */
export const RUN_DAG_WORKFLOW = 'runDag';

export interface ApproveSignal {
  gate: string;
  decision: 'approve' | 'reject';
  approver: string;
  comment?: string;
}

export const approveSignal = defineSignal<[ApproveSignal]>('approve');
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
