/**
 * The activities' contract, as types only: workflow code imports this file with `import type`.
 */
import type { CommandApproval } from '../protocol/approval-types';
import type { ModelPrice, PriceTable } from '../workflows/prices';

/**
 * What a workflow needs to check signed approvals, read from the tenant's store on the desktop (never from
 * workflow input): the tenant's approvers, the desktop's own key, and the security tier of each agent.
 */
export interface GateContext {
  approvers: Array<{ name: string; key: string }>;
  /** The desktop's Ed25519 public key (64 hex), or null when the worker runs without an identity. */
  desktopKey: string | null;
  /** Agent name -> tier (read-only, standard, infrastructure) for the agents serving the tenant. */
  agentTiers: Record<string, string>;
}

export interface LoadDagResult {
  tenant: string;
  name: string;
  /** The registered source (parsed), compiled again inside the workflow. */
  source: unknown;
  /** SHA-256 of the canonical source: recorded in history, so the run is pinned to this exact definition. */
  hash: string;
  prices: PriceTable;
  /** The tenant's approver keys and agent tiers, read with the signed DAG (absent in histories recorded before). */
  gateContext?: GateContext;
}

export interface RunConfig {
  prices: PriceTable;
}

export interface ClaudeRequest {
  tenant: string;
  model: string;
  system: string;
  prompt: string;
  maxTokens: number;
  /**
   * Set by runs that have the activity write the call's `claude_call` audit row itself, as soon as the answer is
   * in (the node, the attempt and the model's price, for the row's cost); older runs' workflows write it.
   */
  audit?: { node: string; attempt: number; price: ModelPrice };
}

export interface TokenCount {
  inputTokens: number;
  /** false when the count endpoint was unreachable and a safe upper bound (UTF-8 bytes) was used instead. */
  exact: boolean;
}

export interface ClaudeResult {
  text: string;
  inputTokens: number;
  outputTokens: number;
  stopReason: string | null;
  model: string;
  /** The activity wrote the call's `claude_call` row (asked by `audit` in the request); else the workflow writes it. */
  audited?: boolean;
}

export interface CommandRequest {
  tenant: string;
  agent: string;
  argv: string[];
  timeoutSeconds: number;
  cwd?: string;
  /** workflow id / run id / node id: the same for every attempt, so the agent runs it at most once. */
  commandId: string;
  /** The signed approvals of the gate that released this command, and its released list (protocol/APPROVAL.md). */
  approval?: CommandApproval;
  /**
   * Set by runs that have the activity write the node's `command_sent` row before it sends the command and its
   * `command_result` row when the answer is in (the node id names both rows); older runs' workflows write them.
   */
  audit?: { node: string };
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
  durationMs: number;
  /**
   * The activity wrote the node's `command_sent` and `command_result` rows (asked by `audit` in the request); when
   * false or absent for such a request, the result row was not written and the workflow writes it.
   */
  audited?: boolean;
}

/** One row for the tenant's hash-chained audit log, written by the `appendAudit` activity. */
export interface AuditRecord {
  tenant: string;
  actor: string;
  action: string;
  subject: string;
  details?: Record<string, unknown>;
  /** Same for every attempt of the activity, so a retry never writes a second row. */
  idempotencyKey: string;
}

/**
 * The activities Orch's workflow code calls (workflows/activity-proxies.ts: `proxyActivities<Activities>`), as types
 * only. `createActivities` (activities/index.ts) is declared to return exactly this, so the two cannot drift; workflow
 * code imports this interface rather than `typeof` the implementation, which would pull the activities' Node code
 * (and Node's types) into the workflow typecheck (workflows/tsconfig.json).
 */
export interface Activities {
  loadDag(args: { tenant: string; name: string }): Promise<LoadDagResult>;
  /** For runs that load no registered DAG (inline DAGs, hand-written workflows): the same context. */
  loadGateContext(args: { tenant: string }): Promise<GateContext>;
  loadRunConfig(): Promise<RunConfig>;
  countClaudeTokens(req: ClaudeRequest): Promise<TokenCount>;
  callClaude(req: ClaudeRequest): Promise<ClaudeResult>;
  /** null when the worker has no audit log. */
  appendAudit(record: AuditRecord): Promise<{ seq: number } | null>;
  runCommand(req: CommandRequest): Promise<CommandResult>;
}
