/**
 * The per-run state every Orch workflow shares: node statuses, approval gates, the cost ledger, and the handlers
 * for the `approve` signal and the `status` / `pendingGates` queries. The DAG runner and hand-written workflows
 * (through `api.ts`) both go through this class, so both get the same checks: destructive commands need an
 * approved gate of this run, Claude calls reserve their worst case under the cap before any request is sent.
 *
 * Deterministic workflow code: no I/O, no clock but the workflow's, activities only by type.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ClaudeResult, CommandResult } from '../activities/types';
import { CostLedger, actualCost, nanoToUsd, usdToNano, worstCaseCost } from './cost-ledger';
import { destructivePattern } from './dag/destructive';
import { SERVER_OUTPUT_SYSTEM_PROMPT } from './dag/server-output';
import { ErrorType } from './errors';
import type { PriceTable } from './prices';
import {
  approveSignal,
  pendingGatesQuery,
  searchAttributes,
  statusQuery,
  type ApproveSignal,
  type NodeStatus,
  type PendingGate,
  type RunState,
  type RunStatus,
} from './shared';

export const DEFAULT_GATE_TIMEOUT_SECONDS = 86_400;
export const DEFAULT_COMMAND_TIMEOUT_SECONDS = 300;
const CLAUDE_ATTEMPTS = 3;
const SUMMARY_CHARS = 300;

// Short, local work (a tenant database read or append, a token count) runs as local activities: recorded in
// history like any activity, without a round trip through the server's task queue for each (about 6 ms instead of
// 70-100 ms per call on a local dev server). Claude calls and commands stay ordinary activities: they are long,
// heartbeat, and must be retried on another worker if this one dies.
const loading = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: [ErrorType.unknownTenant, ErrorType.unknownDag, ErrorType.badInput] },
});

const counting = proxyLocalActivities<Activities>({
  startToCloseTimeout: '60 seconds',
  retry: { maximumAttempts: 3 },
});

/**
 * One attempt per activity: the workflow decides on retries itself, because each attempt may be billed and
 * must hold its own reservation under the cap.
 */
const claudeCalls = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 1 },
});

const auditing = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: [ErrorType.unknownTenant, ErrorType.badInput, 'audit_entry_invalid'] },
});

export const activities = { loading, counting, claudeCalls, auditing };

export interface SessionOptions {
  tenant: string;
  dag: string;
  dagVersion: string;
  dagHash?: string;
  costCapUsd: number;
  prices: PriceTable;
}

export interface GateDecision {
  gate: string;
  approver: string;
  comment?: string;
  decidedAt: string;
}

export interface GateOptions {
  message: string;
  /** Default 86400 (24 hours). */
  timeoutSeconds?: number;
  /** If given, only these approvers' decisions count. */
  approvers?: string[];
}

export interface CommandOptions {
  agent: string;
  argv: string[];
  timeoutSeconds?: number;
  cwd?: string;
  /** Marks it destructive; a command that matches a known destructive pattern is destructive regardless. */
  destructive?: boolean;
  /** Gates of this run that must be approved before a destructive command runs (at least one of them). */
  after?: string[];
}

export interface ClaudeOptions {
  model: string;
  prompt: string;
  system?: string;
  maxTokens: number;
}

interface GateRecord {
  message: string;
  approvers?: string[];
  state: 'pending' | 'approved' | 'rejected' | 'timed_out';
  since: string;
  deadline: string;
  decision?: ApproveSignal;
}

function nowIso(): string {
  // Workflow time: deterministic on replay.
  return new Date().toISOString();
}

function summarize(text: string): string {
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS)}…` : text;
}

/** The stable type and message of a failure, looking through ActivityFailure to its cause. */
export function errorOf(err: unknown): { type: string; message: string } {
  if (err instanceof ActivityFailure && err.cause) return errorOf(err.cause);
  if (err instanceof ApplicationFailure) return { type: err.type ?? ErrorType.nodeFailed, message: err.message };
  if (err instanceof Error) return { type: ErrorType.nodeFailed, message: err.message };
  return { type: ErrorType.nodeFailed, message: String(err) };
}

function isApproveSignal(v: unknown): v is ApproveSignal {
  const s = v as Partial<ApproveSignal> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.gate === 'string' &&
    (s.decision === 'approve' || s.decision === 'reject') &&
    typeof s.approver === 'string' &&
    s.approver.length > 0 &&
    s.approver.length <= 100 &&
    (s.comment === undefined || (typeof s.comment === 'string' && s.comment.length <= 50_000))
  );
}

export class OrchSession {
  private readonly nodes = new Map<string, NodeStatus>();
  private readonly gates = new Map<string, GateRecord>();
  private readonly ignoredSignals: RunStatus['ignoredSignals'] = [];
  private readonly ledger: CostLedger;
  private state: RunState = 'running';
  private failure: RunStatus['failure'];

  constructor(readonly options: SessionOptions) {
    this.ledger = new CostLedger(usdToNano(options.costCapUsd));
    setHandler(approveSignal, (signal) => this.onApprove(signal));
    setHandler(statusQuery, () => this.status());
    setHandler(pendingGatesQuery, () => this.pendingGates());
    if (options.dagHash) upsertMemo({ dagHash: options.dagHash, dagVersion: options.dagVersion });
    upsertSearchAttributes([
      { key: searchAttributes.tenant, value: options.tenant },
      { key: searchAttributes.dag, value: options.dag },
      { key: searchAttributes.state, value: 'running' },
    ]);
  }

  /**
   * Writes one row to the tenant's audit log and waits for it, so the row exists before the action it records
   * goes on. The idempotency key is derived from the run and the step, the same on every retry and replay.
   */
  async audit(action: string, subject: string, details: Record<string, unknown>, step: string, actor = 'orch'): Promise<void> {
    const info = workflowInfo();
    try {
      await activities.auditing.appendAudit({
        tenant: this.options.tenant,
        actor,
        action,
        subject,
        details: { workflowId: info.workflowId, runId: info.runId, ...details },
        idempotencyKey: `${info.workflowId}/${info.runId}/${step}`,
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
      // Without its audit row an action must not go on: fail the run with the cause's stable type.
      const { type, message } = errorOf(err);
      throw ApplicationFailure.nonRetryable(`could not write the audit row for ${action} ${subject}: ${message}`, type, { action, subject });
    }
  }

  /** Records the start of the run (the first row of every run). */
  async begin(params: Record<string, unknown> = {}): Promise<void> {
    const info = workflowInfo();
    await this.audit(
      'run_workflow',
      `${this.options.dag}@${this.options.dagVersion}`,
      { workflowType: info.workflowType, dagHash: this.options.dagHash ?? null, paramNames: Object.keys(params).sort(), costCapUsd: this.options.costCapUsd },
      'start',
    );
  }

  /** Records how the run ended. */
  async end(state: 'succeeded' | 'failed', failure?: { type: string; message: string; node?: string }): Promise<void> {
    await this.audit('run_finished', `${this.options.dag}@${this.options.dagVersion}`, { state, failure: failure ?? null, spentUsd: this.spentUsd }, 'end');
  }

  /** Declares a node up front so `status` lists it as pending before it starts. */
  declareNode(id: string, type: NodeStatus['type']): void {
    if (!this.nodes.has(id)) this.nodes.set(id, { id, type, state: 'pending' });
  }

  markNode(id: string, patch: Partial<NodeStatus>): void {
    const node = this.nodes.get(id);
    if (node) Object.assign(node, patch);
  }

  status(): RunStatus {
    return {
      tenant: this.options.tenant,
      dag: this.options.dag,
      dagVersion: this.options.dagVersion,
      dagHash: this.options.dagHash,
      state: this.state,
      nodes: [...this.nodes.values()].map((n) => ({ ...n })),
      cost: {
        capUsd: this.options.costCapUsd,
        spentUsd: nanoToUsd(this.ledger.spent),
        reservedUsd: nanoToUsd(this.ledger.reserved),
      },
      pendingGates: this.pendingGates(),
      ignoredSignals: this.ignoredSignals.map((s) => ({ ...s })),
      failure: this.failure,
    };
  }

  get spentUsd(): number {
    return nanoToUsd(this.ledger.spent);
  }

  pendingGates(): PendingGate[] {
    const out: PendingGate[] = [];
    for (const [gate, g] of this.gates) {
      if (g.state === 'pending') out.push({ gate, message: g.message, since: g.since, deadline: g.deadline, approvers: g.approvers });
    }
    return out;
  }

  setState(state: RunState, failure?: RunStatus['failure']): void {
    if (failure) this.failure = failure;
    if (state === this.state) return;
    this.state = state;
    upsertSearchAttributes([{ key: searchAttributes.state, value: state }]);
  }

  private onApprove(signal: unknown): void {
    if (!isApproveSignal(signal)) {
      this.ignoredSignals.push({ signal: signal as ApproveSignal, reason: 'malformed: expected {gate, decision: "approve"|"reject", approver, comment?}' });
      return;
    }
    const gate = this.gates.get(signal.gate);
    if (!gate) {
      this.ignoredSignals.push({ signal, reason: `gate "${signal.gate}" is not waiting in this run` });
      return;
    }
    if (gate.state !== 'pending') {
      this.ignoredSignals.push({ signal, reason: `gate "${signal.gate}" was already ${gate.state}` });
      return;
    }
    if (gate.approvers && !gate.approvers.includes(signal.approver)) {
      this.ignoredSignals.push({ signal, reason: `approver "${signal.approver}" is not in this gate's approvers list` });
      return;
    }
    gate.decision = signal;
  }

  private takeNode(id: string, type: NodeStatus['type']): void {
    const existing = this.nodes.get(id);
    if (existing && existing.state !== 'pending') {
      throw ApplicationFailure.nonRetryable(`node id "${id}" is used twice in this run`, ErrorType.badInput, { node: id });
    }
    this.declareNode(id, type);
    this.markNode(id, { state: 'running', startedAt: nowIso() });
  }

  /** Parks the run until an approver decides, or the timeout passes. */
  approvalGate(id: string, options: GateOptions): Promise<GateDecision> {
    return this.track(id, 'approval_gate', () => this.gateNode(id, options));
  }

  command(id: string, options: CommandOptions): Promise<CommandResult> {
    return this.track(id, 'command', () => this.commandNode(id, options));
  }

  /**
   * Calls Claude under the run's cost cap. Before each attempt it reserves the worst case (all input tokens plus
   * max_tokens of output); if that would pass the cap the run fails with `cost_cap_exceeded` and no request is
   * sent. The real usage then replaces the reservation.
   */
  claude(id: string, options: ClaudeOptions): Promise<ClaudeResult> {
    return this.track(id, 'claude', () => this.claudeNode(id, options));
  }

  /** Runs a node body, recording failure or cancellation in the node's status with its stable error type. */
  private async track<T>(id: string, type: NodeStatus['type'], body: () => Promise<T>): Promise<T> {
    this.takeNode(id, type);
    try {
      return await body();
    } catch (err) {
      if (isCancellation(err)) {
        this.markNode(id, { state: 'cancelled', finishedAt: nowIso() });
        throw err;
      }
      const failure = errorOf(err);
      this.markNode(id, { state: 'failed', finishedAt: nowIso(), error: failure });
      // Surface the activity's stable type (agent_unavailable, claude_request_rejected, ...) as the node's own
      // failure, so hand-written workflows fail with it too instead of a generic "activity task failed".
      if (err instanceof ApplicationFailure) throw err;
      throw ApplicationFailure.nonRetryable(failure.message, failure.type, { node: id });
    }
  }

  private async gateNode(id: string, options: GateOptions): Promise<GateDecision> {
    const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_GATE_TIMEOUT_SECONDS;
    const since = nowIso();
    const record: GateRecord = {
      message: options.message,
      approvers: options.approvers,
      state: 'pending',
      since,
      deadline: new Date(Date.now() + timeoutSeconds * 1000).toISOString(),
    };
    this.gates.set(id, record);
    this.markNode(id, { state: 'waiting_approval' });
    this.setState('waiting_approval');
    let decided: boolean;
    try {
      decided = await condition(() => record.decision !== undefined, timeoutSeconds * 1000);
    } finally {
      if (record.state === 'pending' && record.decision === undefined) record.state = 'timed_out';
      if (this.pendingGates().length === 0 && this.state === 'waiting_approval') this.setState('running');
    }
    const decision = record.decision;
    if (!decided || !decision) {
      record.state = 'timed_out';
      await this.audit('gate_timeout', id, { timeoutSeconds }, `gate/${id}`);
      throw ApplicationFailure.nonRetryable(
        `approval gate "${id}" was not decided within ${timeoutSeconds} s`,
        ErrorType.approvalTimeout,
        { node: id, timeoutSeconds },
      );
    }
    await this.audit(
      decision.decision === 'approve' ? 'approve_gate' : 'reject_gate',
      id,
      { comment: decision.comment ?? null, message: options.message },
      `gate/${id}`,
      decision.approver,
    );
    if (decision.decision === 'reject') {
      record.state = 'rejected';
      this.markNode(id, { summary: `rejected by ${decision.approver}${decision.comment ? `: ${summarize(decision.comment)}` : ''}` });
      throw ApplicationFailure.nonRetryable(
        `approval gate "${id}" was rejected by ${decision.approver}${decision.comment ? `: ${decision.comment}` : ''}`,
        ErrorType.approvalRejected,
        { node: id, approver: decision.approver, comment: decision.comment },
      );
    }
    record.state = 'approved';
    const result: GateDecision = { gate: id, approver: decision.approver, comment: decision.comment, decidedAt: nowIso() };
    this.markNode(id, {
      state: 'succeeded',
      finishedAt: result.decidedAt,
      summary: `approved by ${decision.approver}${decision.comment ? `: ${summarize(decision.comment)}` : ''}`,
    });
    return result;
  }

  /** True when `gate` is a gate of this run and an approver approved it. */
  isApproved(gate: string): boolean {
    return this.gates.get(gate)?.state === 'approved';
  }

  /**
   * Refuses a destructive command unless one of `after` is an approved gate of this run. Checked on the argv
   * actually about to run, so a parameter that turns a command destructive is caught too.
   */
  checkDestructive(id: string, options: CommandOptions): void {
    const reason = options.destructive ? 'marked destructive' : destructivePattern(options.argv);
    if (reason === undefined) return;
    const approved = (options.after ?? []).filter((g) => this.isApproved(g));
    if (approved.length === 0) {
      throw ApplicationFailure.nonRetryable(
        `node "${id}" is destructive (${reason}) and has no approved approval_gate parent in this run`,
        ErrorType.destructiveWithoutGate,
        { node: id, reason, after: options.after ?? [] },
      );
    }
  }

  private async commandNode(id: string, options: CommandOptions): Promise<CommandResult> {
    this.checkDestructive(id, options);
    const info = workflowInfo();
    const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_COMMAND_TIMEOUT_SECONDS;
    const acts = proxyActivities<Activities>({
      startToCloseTimeout: (timeoutSeconds + 60) * 1000,
      // The activity heartbeats every 5 s: a dead worker is noticed in 15 s and the retry asks the agent again.
      heartbeatTimeout: '15 seconds',
      retry: {
        maximumAttempts: 5,
        nonRetryableErrorTypes: [ErrorType.agentUnavailable, ErrorType.unknownTenant, 'command_not_allowed', 'indeterminate'],
      },
    });
    const commandId = `${info.workflowId}/${info.runId}/${id}`;
    // argv may hold ${secrets.NAME} references; they are resolved inside the activity, never here.
    await this.audit('command_sent', id, { agent: options.agent, argv: options.argv, commandId }, `command/${id}/sent`);
    const result = await acts.runCommand({
      tenant: this.options.tenant,
      agent: options.agent,
      argv: options.argv,
      timeoutSeconds,
      cwd: options.cwd,
      commandId,
    });
    await this.audit('command_result', id, { agent: options.agent, exitCode: result.exitCode, truncated: result.truncated, durationMs: result.durationMs }, `command/${id}/result`);
    const summary = `exit ${result.exitCode}${result.truncated ? ' (output truncated)' : ''}: ${summarize(result.stdout || result.stderr)}`;
    if (result.exitCode !== 0) {
      this.markNode(id, { summary });
      throw ApplicationFailure.nonRetryable(
        `command node "${id}" exited with code ${result.exitCode}: ${summarize(result.stderr || result.stdout)}`,
        ErrorType.commandFailed,
        { node: id, exitCode: result.exitCode },
      );
    }
    this.markNode(id, { state: 'succeeded', finishedAt: nowIso(), summary });
    return result;
  }

  private async claudeNode(id: string, options: ClaudeOptions): Promise<ClaudeResult> {
    const price = this.options.prices[options.model];
    if (!price) {
      throw ApplicationFailure.nonRetryable(
        `node "${id}" uses model "${options.model}", which has no price in the price table, so its cost cannot be bounded`,
        ErrorType.unknownModel,
        { node: id, model: options.model },
      );
    }
    const system = options.system ? `${SERVER_OUTPUT_SYSTEM_PROMPT}\n\n${options.system}` : SERVER_OUTPUT_SYSTEM_PROMPT;
    const request = { tenant: this.options.tenant, model: options.model, system, prompt: options.prompt, maxTokens: options.maxTokens };
    const count = await activities.counting.countClaudeTokens(request);
    for (let attempt = 1; ; attempt++) {
      const key = `${id}#${attempt}`;
      const worst = worstCaseCost(price, count.inputTokens, options.maxTokens);
      const projection = this.ledger.reserve(key, worst);
      if (!projection.fits) {
        await this.audit(
          'cost_cap_exceeded',
          id,
          { model: options.model, spentUsd: nanoToUsd(projection.spent), reservedUsd: nanoToUsd(projection.reserved), projectedUsd: nanoToUsd(worst), capUsd: nanoToUsd(projection.cap) },
          `claude/${id}/${attempt}/cap`,
        );
        throw ApplicationFailure.nonRetryable(
          `node "${id}" would pass the cost cap: spent $${nanoToUsd(projection.spent).toFixed(6)} + reserved $${nanoToUsd(projection.reserved).toFixed(6)} + this call's worst case $${nanoToUsd(worst).toFixed(6)} > cap $${nanoToUsd(projection.cap).toFixed(6)}`,
          ErrorType.costCapExceeded,
          {
            node: id,
            spentUsd: nanoToUsd(projection.spent),
            reservedUsd: nanoToUsd(projection.reserved),
            projectedUsd: nanoToUsd(worst),
            capUsd: nanoToUsd(projection.cap),
            inputTokens: count.inputTokens,
            maxTokens: options.maxTokens,
          },
        );
      }
      try {
        const result = await activities.claudeCalls.callClaude(request);
        const cost = actualCost(price, result.inputTokens, result.outputTokens);
        this.ledger.settle(key, cost);
        await this.audit(
          'claude_call',
          id,
          { model: options.model, inputTokens: result.inputTokens, outputTokens: result.outputTokens, costUsd: nanoToUsd(cost), attempt },
          `claude/${id}/${attempt}`,
        );
        this.markNode(id, { state: 'succeeded', finishedAt: nowIso(), summary: summarize(result.text), costUsd: nanoToUsd(cost) });
        return result;
      } catch (err) {
        const notProcessed = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === ErrorType.claudeNotProcessed;
        if (notProcessed) {
          // The API refused before processing (429, 5xx, overloaded): nothing was billed.
          this.ledger.release(key);
          if (attempt < CLAUDE_ATTEMPTS) {
            await sleep(2 ** attempt * 1000);
            continue;
          }
        } else {
          // It may have been processed and billed (a timeout, a lost worker): count the worst case as spent.
          this.ledger.settle(key, worst);
          if (isCancellation(err)) throw err;
        }
        throw err;
      }
    }
  }
}
