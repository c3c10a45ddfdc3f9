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
  patched,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AuditRecord, ClaudeResult, CommandResult, GateContext } from '../activities/types';
import { approvalMessage, releaseDigest, sha256Hex } from '../protocol/approval-digest';
import {
  signedApprovalShapeProblem,
  signedStartProblem,
  verifyEd25519,
  type CommandApproval,
  type ReleasedCommand,
  type SignedApproval,
  type SignedStart,
} from './approval';
import { activities, commandActivities } from './activity-proxies';
import { awaitTrack, thenTrack, type TrackChain } from './chain';
import { claudeCallRecord, commandResultRecord, commandSentRecord, runAuditRecord, type RunRef } from './audit-rows';
import { canonicalize } from '../protocol/canonical-json';
import { CostLedger, actualCost, inputTokenBound, nanoToUsd, usdToNano, worstCaseCost } from './cost-ledger';
import { destructivePattern } from '../protocol/destructive';
import { MAX_APPROVAL_COMMENT_LENGTH, MAX_APPROVER_LABEL_LENGTH, MAX_NAME_LENGTH } from './dag/limits';
import { SERVER_OUTPUT_SYSTEM_PROMPT } from './dag/server-output';
import { ErrorType } from '../protocol/errors';
import type { PriceTable } from './prices';
import { nodeRow, renderRunDetails, summaries } from './ui-metadata';
import {
  approveSignal,
  approveUpdate,
  pendingGatesQuery,
  searchAttributes,
  statusQuery,
  type ApproveResult,
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
/** Refused decisions and ignored signals kept in the run's state (the newest), so a flood cannot grow it. */
const MAX_KEPT_REFUSALS = 20;
/** How far a signed start's time may be from the run's start (clock skew, a slow `orch run`). */
const START_SKEW_MS = 10 * 60_000;
/** Marks the runs that load approver keys and agent tiers (histories recorded before do not). */
const SIGNED_APPROVALS_PATCH = 'orch-signed-approvals-v1';
/** Marks the runs that refuse a single-approver four-eyes gate when the starter is not proven. */
const FOUR_EYES_UNPROVEN_PATCH = 'orch-four-eyes-unproven-starter-v1';
/** Decided with the other patch, first thing in the run (module state is per workflow, as api.ts's session). */
let refuseUnprovenFourEyes = false;
/** Marks the runs that write an audit row for each refused approval decision (histories recorded before do not). */
const AUDIT_REFUSALS_PATCH = 'orch-audit-refused-decisions-v1';
let auditRefusals = false;
/**
 * Marks the runs whose Claude calls reserve a byte bound of their input tokens when that bound fits under the cap
 * (asking the API to count them only when it does not), and whose `callClaude` activity writes the call's
 * `claude_call` audit row itself. Histories recorded before count before every call and append that row from the
 * workflow: two local activities per node, each a turn of the worker's workflow task.
 */
const CLAUDE_FAST_PATH_PATCH = 'orch-claude-bound-and-activity-audit-v1';
let claudeFastPath = false;
/**
 * Marks the runs whose `runCommand` activity writes the node's `command_sent` row (before it sends) and its
 * `command_result` row (when the answer is in) itself. Histories recorded before append both from the workflow: two
 * local activities around each command, each a turn of the worker's workflow task.
 */
const COMMAND_FAST_PATH_PATCH = 'orch-command-activity-audit-v1';
let commandFastPath = false;
/**
 * Marks the runs whose claude and command nodes go through fewer promises (a node with no parents does not wait on an
 * empty Promise.all; the runner's and the session's wrappers chain with then() instead of an async function and its
 * await). The SDK's promise hook captures and source-maps a stack for every promise a workflow makes, so each one
 * costs workflow-thread time: a fanned-out Claude node made 15.6 of them, a plain activity call 4.2. Runs recorded
 * before take the old path, whose order of steps within an activation their histories hold.
 */
const LEAN_NODE_PATCH = 'orch-lean-node-promises-v1';
let leanNodes = false;
/** Whether this run takes the node path with fewer promises (decided first thing in the run). */
export function leanNodePath(): boolean {
  return leanNodes;
}
/**
 * Marks the runs whose DAG nodes with a single parent await that parent's promise itself rather than a Promise.all
 * of it (two promises less per chained node, and one microtask turn less before the node starts; runs recorded
 * before keep the Promise.all).
 */
const SINGLE_PARENT_PATCH = 'orch-lean-node-promises-v2';
let singleParentAwait = false;
/** Whether a node with one parent awaits it directly (decided first thing in the run). */
export function singleParentPath(): boolean {
  return singleParentAwait;
}
/** Refused decisions audited per gate at most: a flood of bad signals cannot grow the tenant's chain without end. */
const MAX_AUDITED_REFUSALS = 20;

/**
 * Decides, once and before the run's first activity, whether this run loads approver keys (runs from before signed
 * approvals do not). Every entry workflow calls it first: a patch marker decided after a local activity of the same
 * workflow task does not replay (queries on a closed run and a worker restart failed with a nondeterminism error).
 */
export function decideSignedApprovals(): boolean {
  const signed = patched(SIGNED_APPROVALS_PATCH);
  refuseUnprovenFourEyes = patched(FOUR_EYES_UNPROVEN_PATCH);
  auditRefusals = patched(AUDIT_REFUSALS_PATCH);
  claudeFastPath = patched(CLAUDE_FAST_PATH_PATCH);
  commandFastPath = patched(COMMAND_FAST_PATH_PATCH);
  leanNodes = patched(LEAN_NODE_PATCH);
  singleParentAwait = patched(SINGLE_PARENT_PATCH);
  return signed;
}


export interface SessionOptions {
  tenant: string;
  dag: string;
  dagVersion: string;
  dagHash?: string;
  costCapUsd: number;
  prices: PriceTable;
  /** Approver keys, desktop key and agent tiers from the signed DAG load; loaded by an activity when absent. */
  gateContext?: GateContext;
  /** The run's signed start (`orch run`), checked in begin(). */
  start?: SignedStart;
}

export interface GateDecision {
  gate: string;
  approver: string;
  comment?: string;
  decidedAt: string;
  /** Whether every approval was signed by a key of the tenant's approver list. */
  verified: boolean;
}

/** A command a gate releases, before the session adds its command id and the agent's tier. */
export interface ReleaseSpec {
  node: string;
  agent: string;
  argv: string[];
  /** Flagged destructive; a command matching a known destructive pattern is destructive regardless. */
  destructive?: boolean;
}

export interface GateOptions {
  message: string;
  /** Default 86400 (24 hours). */
  timeoutSeconds?: number;
  /** If given, only signed decisions from these approvers (names in the tenant's approver list) count. */
  approvers?: string[];
  /** Distinct approvers needed (default 1; more than 1 needs `approvers`). */
  minApprovals?: number;
  /** Refuse the starter's approval. Default: true when the gate names approvers and releases a destructive command. */
  distinctFromStarter?: boolean;
  /** The commands this gate releases: shown to the approver, covered by their signature, checked before each runs. */
  releases?: ReleaseSpec[];
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

interface GateApproval {
  approver: string;
  key?: string;
  verified: boolean;
  at: string;
  comment?: string;
  signed?: SignedApproval;
}

interface GateRecord {
  message: string;
  approvers?: string[];
  needed: number;
  distinctFromStarter: boolean;
  released: ReleasedCommand[];
  releaseDigest: string;
  state: 'pending' | 'approved' | 'rejected' | 'timed_out';
  since: string;
  deadline: string;
  approvals: GateApproval[];
  refused: PendingGate['refused'];
  /** Refused decisions waiting for their audit row (written by the gate's own loop, not the signal handler). */
  toAudit: Array<PendingGate['refused'][number] & { n: number }>;
  /** How many refused decisions this gate has queued for the audit log (at most MAX_AUDITED_REFUSALS). */
  refusalsAudited: number;
  /** Set once the gate is decided: every approval that opened it, or the one rejection. */
  decision?: { decision: 'approve' | 'reject'; approvals: GateApproval[] };
}

/** The verdict on one approve signal or update: refused with a reason, or what it would apply. */
type Verdict =
  | { ok: false; reason: string; gate?: GateRecord; approver: string; key?: string; decision: string }
  | { ok: true; gate: GateRecord; gateId: string; decision: 'approve' | 'reject'; approval: GateApproval };

function pushBounded<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > MAX_KEPT_REFUSALS) list.splice(0, list.length - MAX_KEPT_REFUSALS);
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

/**
 * Why an approve signal is malformed, or undefined. The lengths are those the gate's audit row holds
 * (workflows/dag/limits.ts), so an over-long comment is refused here, when it arrives, and never fails the
 * audit append later.
 */
export function approveSignalProblem(v: unknown): string | undefined {
  const s = v as Partial<ApproveSignal> | null;
  if (typeof s !== 'object' || s === null) return 'malformed: expected {gate, decision: "approve"|"reject", approver, comment?, signed?}';
  if (typeof s.gate !== 'string' || s.gate.length === 0 || s.gate.length > MAX_NAME_LENGTH) return `malformed: gate must be a gate id of 1 to ${MAX_NAME_LENGTH} characters`;
  if (s.decision !== 'approve' && s.decision !== 'reject') return 'malformed: decision must be "approve" or "reject"';
  if (typeof s.approver !== 'string' || s.approver.length === 0 || s.approver.length > MAX_APPROVER_LABEL_LENGTH) {
    return `malformed: approver must be a name of 1 to ${MAX_APPROVER_LABEL_LENGTH} characters`;
  }
  if (s.comment !== undefined && typeof s.comment !== 'string') return 'malformed: comment must be a string';
  if (typeof s.comment === 'string' && s.comment.length > MAX_APPROVAL_COMMENT_LENGTH) {
    return `comment_too_long: a comment holds at most ${MAX_APPROVAL_COMMENT_LENGTH} characters (this one has ${s.comment.length}); shorten it`;
  }
  if (s.signed !== undefined) {
    const problem = signedApprovalShapeProblem(s.signed);
    if (problem) return `malformed signed approval: ${problem}`;
    if (s.signed.statement.comment.length > MAX_APPROVAL_COMMENT_LENGTH) {
      return `comment_too_long: a comment holds at most ${MAX_APPROVAL_COMMENT_LENGTH} characters (this one has ${s.signed.statement.comment.length}); shorten it`;
    }
  }
  return undefined;
}

function label(v: unknown): string {
  const a = (v as { approver?: unknown } | null)?.approver;
  return typeof a === 'string' ? a.slice(0, MAX_APPROVER_LABEL_LENGTH) : '?';
}

export class OrchSession {
  private readonly nodes = new Map<string, NodeStatus>();
  private readonly gates = new Map<string, GateRecord>();
  private readonly ignoredSignals: RunStatus['ignoredSignals'] = [];
  private readonly ledger: CostLedger;
  private state: RunState = 'running';
  private failure: RunStatus['failure'];
  private gateContext: GateContext | undefined;
  /** The key that signed this run's start, when that key is the desktop's or a tenant approver's. */
  private starterKey: string | undefined;
  /** A render of the current details is queued for the end of this activation. */
  private detailsQueued = false;
  /** Each node's row of the details' node table, rendered again only after the node changed (declareNode, markNode). */
  private readonly detailRows = new Map<string, string>();
  private readonly rowOf = (n: NodeStatus): string => {
    let row = this.detailRows.get(n.id);
    if (row === undefined) {
      row = nodeRow(n);
      this.detailRows.set(n.id, row);
    }
    return row;
  };

  constructor(readonly options: SessionOptions) {
    this.ledger = new CostLedger(usdToNano(options.costCapUsd));
    this.gateContext = options.gateContext;
    setHandler(approveSignal, (signal) => this.onApprove(signal));
    setHandler(approveUpdate, (signal) => this.applyApprove(signal), {
      validator: (signal) => {
        const v = this.judge(signal);
        if (!v.ok) throw new Error(v.reason);
      },
    });
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
    await this.append(runAuditRecord(this.runRef(), action, subject, details, step, actor));
  }

  private runRef(): RunRef {
    const info = workflowInfo();
    return { tenant: this.options.tenant, workflowId: info.workflowId, runId: info.runId };
  }

  private async append(record: AuditRecord): Promise<void> {
    const { action, subject } = record;
    try {
      await activities.auditing.appendAudit.executeWithOptions({ summary: summaries.audit(action, subject) }, [record]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      // Without its audit row an action must not go on: fail the run with the cause's stable type.
      const { type, message } = errorOf(err);
      throw ApplicationFailure.nonRetryable(`could not write the audit row for ${action} ${subject}: ${message}`, type, { action, subject });
    }
  }

  /** Records the start of the run (the first row of every run), after checking its signed start if it has one. */
  async begin(params: Record<string, unknown> = {}): Promise<void> {
    const info = workflowInfo();
    if (this.gateContext === undefined && patched(SIGNED_APPROVALS_PATCH)) {
      try {
        this.gateContext = await activities.loading.loadGateContext.executeWithOptions({ summary: summaries.loadGateContext(this.options.tenant) }, [
          { tenant: this.options.tenant },
        ]);
      } catch (err) {
        if (isCancellation(err)) throw err;
        // Fail with the stable type (unknown_tenant, ...), not a generic activity failure.
        const { type, message } = errorOf(err);
        throw ApplicationFailure.nonRetryable(message, type, { tenant: this.options.tenant });
      }
    }
    const starter = this.checkStart(params);
    await this.audit(
      'run_workflow',
      `${this.options.dag}@${this.options.dagVersion}`,
      {
        workflowType: info.workflowType,
        dagHash: this.options.dagHash ?? null,
        paramNames: Object.keys(params).sort(),
        costCapUsd: this.options.costCapUsd,
        ...(starter ? { starter } : {}),
      },
      'start',
    );
  }

  /**
   * Checks the run's signed start: it must verify, name this tenant, workflow id and type, these params, and a
   * time near the run's start. A start that does not hold fails the run (`bad_start`). A valid start from a key
   * Orch knows (the desktop's or a tenant approver's) makes that key the run's starter; a start from any other
   * key, or none, leaves the starter unproven, and four-eyes gates then ask for two distinct approvers.
   */
  private checkStart(params: Record<string, unknown>): { key: string; name: string; proven: boolean } | undefined {
    const start = this.options.start;
    if (start === undefined) return undefined;
    const info = workflowInfo();
    const fail = (why: string): never => {
      throw ApplicationFailure.nonRetryable(`the run's signed start does not hold: ${why}`, ErrorType.badStart);
    };
    const problem = signedStartProblem(start);
    if (problem) fail(problem);
    const st = start.statement;
    if (st.tenant !== this.options.tenant) fail(`it names tenant "${st.tenant}"`);
    if (st.workflowId !== info.workflowId) fail('it names another workflow id');
    if (st.workflowType !== info.workflowType) fail('it names another workflow type');
    if (st.paramsDigest !== sha256Hex(canonicalize(params))) fail('it was signed for other params');
    if (Math.abs(st.at - info.runStartTime.getTime()) > START_SKEW_MS) fail('its time is more than 10 minutes from the run\'s start');
    const ctx = this.gateContext;
    const approver = ctx?.approvers.find((a) => a.key === st.starterKey);
    const proven = approver !== undefined || (ctx?.desktopKey ?? null) === st.starterKey;
    if (proven) this.starterKey = st.starterKey;
    return { key: st.starterKey, name: approver?.name ?? (proven ? 'desktop' : 'unknown key'), proven };
  }

  /** Records how the run ended. */
  async end(state: 'succeeded' | 'failed', failure?: { type: string; message: string; node?: string }): Promise<void> {
    await this.audit('run_finished', `${this.options.dag}@${this.options.dagVersion}`, { state, failure: failure ?? null, spentUsd: this.spentUsd }, 'end');
  }

  /** Declares a node up front so `status` lists it as pending before it starts. */
  declareNode(id: string, type: NodeStatus['type']): void {
    if (!this.nodes.has(id)) this.nodes.set(id, { id, type, state: 'pending' });
    this.detailRows.delete(id);
    this.publishDetails();
  }

  markNode(id: string, patch: Partial<NodeStatus>): void {
    const node = this.nodes.get(id);
    if (node) Object.assign(node, patch);
    this.detailRows.delete(id);
    this.publishDetails();
  }

  /**
   * Puts the run's state into its current details (Markdown the Temporal UI shows on the run's page, read through
   * the `__temporal_workflow_metadata` query): called on every change of a node, the run, a gate or the cost.
   * Not a command and not in history, so it changes nothing on replay. Rendered once per activation, in a
   * microtask after the changes of that activation (a node's start and reservation, or a chain's finished node
   * and its next one's start, come in one), which runs before the activation completes and any query is answered.
   */
  private publishDetails(): void {
    if (this.detailsQueued) return;
    this.detailsQueued = true;
    // then() on a promise resolved once for the session: the same microtask as Promise.resolve().then(), one promise
    // less per activation (the SDK's promise hook captures and source-maps a stack for each one).
    void this.resolved.then(this.renderDetails);
  }

  private readonly resolved = Promise.resolve();
  private readonly renderDetails = (): void => {
    this.detailsQueued = false;
    setCurrentDetails(renderRunDetails(workflowInfo().workflowId, this.detailsView(), this.rowOf));
  };

  /**
   * What renderRunDetails reads, by reference: status() copies every node for a query's answer, which cost more than
   * the rest of a chained node's activation together once a run has a few hundred nodes (renderRunDetails only reads).
   */
  private detailsView(): RunStatus {
    return {
      tenant: this.options.tenant,
      dag: this.options.dag,
      dagVersion: this.options.dagVersion,
      dagHash: this.options.dagHash,
      state: this.state,
      nodes: Array.from(this.nodes.values()),
      cost: { capUsd: this.options.costCapUsd, spentUsd: nanoToUsd(this.ledger.spent), reservedUsd: nanoToUsd(this.ledger.reserved) },
      pendingGates: this.gates.size === 0 ? [] : this.pendingGates(),
      ignoredSignals: this.ignoredSignals,
      failure: this.failure,
    };
  }

  /** The run's status for a query's answer: detailsView's, with copies of what the answer must not share. */
  status(): RunStatus {
    const view = this.detailsView();
    return { ...view, nodes: view.nodes.map((n) => ({ ...n })), ignoredSignals: view.ignoredSignals.map((s) => ({ ...s })) };
  }

  get spentUsd(): number {
    return nanoToUsd(this.ledger.spent);
  }

  pendingGates(): PendingGate[] {
    const out: PendingGate[] = [];
    for (const [gate, g] of this.gates) {
      if (g.state !== 'pending') continue;
      out.push({
        gate,
        message: g.message,
        since: g.since,
        deadline: g.deadline,
        approvers: g.approvers,
        released: g.released.map((r) => ({ ...r, argv: [...r.argv] })),
        releaseDigest: g.releaseDigest,
        needed: g.needed,
        distinctFromStarter: g.distinctFromStarter,
        ...(this.starterKey ? { starterKey: this.starterKey } : {}),
        approvals: g.approvals.map((a) => ({ approver: a.approver, ...(a.key ? { key: a.key } : {}), verified: a.verified, at: a.at })),
        refused: g.refused.map((r) => ({ ...r })),
      });
    }
    return out;
  }

  setState(state: RunState, failure?: RunStatus['failure']): void {
    if (failure) this.failure = failure;
    if (state === this.state) {
      if (failure) this.publishDetails();
      return;
    }
    this.state = state;
    upsertSearchAttributes([{ key: searchAttributes.state, value: state }]);
    this.publishDetails();
  }

  private onApprove(signal: unknown): void {
    const v = this.judge(signal);
    if (!v.ok) {
      this.refuse(signal, v);
      return;
    }
    this.take(v);
  }

  /** The update's handler: the validator already accepted it, so this applies it and says where the gate stands. */
  private applyApprove(signal: ApproveSignal): ApproveResult {
    const v = this.judge(signal);
    if (!v.ok) {
      // The gate changed between validation and handling (another decision landed first).
      this.refuse(signal, v);
      throw ApplicationFailure.nonRetryable(v.reason, ErrorType.approvalRefused);
    }
    this.take(v);
    return {
      gate: v.gateId,
      state: v.gate.decision ? (v.gate.decision.decision === 'approve' ? 'approved' : 'rejected') : 'pending',
      approver: v.approval.approver,
      verified: v.approval.verified,
      approvals: v.gate.approvals.length,
      needed: v.gate.needed,
    };
  }

  private refuse(signal: unknown, v: Extract<Verdict, { ok: false }>): void {
    const entry = { approver: v.approver, ...(v.key ? { key: v.key } : {}), decision: v.decision, reason: v.reason, at: nowIso() };
    if (v.gate) pushBounded(v.gate.refused, entry);
    if (auditRefusals && v.gate?.state === 'pending' && v.gate.refusalsAudited < MAX_AUDITED_REFUSALS) {
      v.gate.refusalsAudited += 1;
      v.gate.toAudit.push({ ...entry, n: v.gate.refusalsAudited });
    }
    pushBounded(this.ignoredSignals, { signal: signal as ApproveSignal, reason: v.reason });
  }

  private take(v: Extract<Verdict, { ok: true }>): void {
    const g = v.gate;
    if (v.decision === 'reject') {
      g.decision = { decision: 'reject', approvals: [v.approval] };
      return;
    }
    g.approvals.push(v.approval);
    if (g.approvals.length >= g.needed) g.decision = { decision: 'approve', approvals: [...g.approvals] };
    else this.publishDetails();
  }

  /**
   * Decides whether an approve signal or update counts, without changing anything (the update validator calls it
   * too). A gate that names approvers takes only a signed statement that verifies with the key of one of them,
   * names this tenant, run, gate and the gate's release digest, and comes from someone who has not approved it
   * yet and, on a four-eyes gate, is not the run's starter.
   */
  private judge(signal: unknown): Verdict {
    const who = label(signal);
    const problem = approveSignalProblem(signal);
    const rawDecision = String((signal as { decision?: unknown } | null)?.decision ?? '?').slice(0, 10);
    if (problem) return { ok: false, reason: problem, approver: who, decision: rawDecision };
    const s = signal as ApproveSignal;
    const gate = this.gates.get(s.gate);
    const refuse = (reason: string, key?: string): Verdict => ({ ok: false, reason, gate, approver: who, ...(key ? { key } : {}), decision: s.decision });
    if (!gate) return refuse(`gate "${s.gate}" is not waiting in this run`);
    if (gate.state !== 'pending' || gate.decision) return refuse(`gate "${s.gate}" was already ${gate.decision ? (gate.decision.decision === 'approve' ? 'approved' : 'rejected') : gate.state}`);
    const at = nowIso();
    const info = workflowInfo();
    const ctx = this.gateContext;

    // The signature, when there is one: checked on every gate, so an unlisted gate records a verified approver too.
    let signedBy: { name: string; key: string } | undefined;
    let signatureProblem: string | undefined;
    const signed = s.signed;
    if (signed) {
      const st = signed.statement;
      const known = ctx?.approvers.find((a) => a.key === st.approverKey);
      if (st.decision !== s.decision) signatureProblem = `the signed statement says "${st.decision}", the signal "${s.decision}"`;
      else if (st.tenant !== this.options.tenant) signatureProblem = `the signed statement is for tenant "${st.tenant}"`;
      else if (st.workflowId !== info.workflowId || st.runId !== info.runId) signatureProblem = 'the signed statement is for another run';
      else if (st.gate !== s.gate) signatureProblem = `the signed statement is for gate "${st.gate}"`;
      else if (st.releaseDigest !== gate.releaseDigest) {
        signatureProblem = `the signed statement covers release digest ${st.releaseDigest.slice(0, 12)}…, but the gate releases ${gate.releaseDigest.slice(0, 12)}… (look again: orch status)`;
      } else if (s.comment !== undefined && s.comment !== st.comment) signatureProblem = 'the comment differs from the signed one';
      else if (!known) signatureProblem = `key ${st.approverKey.slice(0, 16)}… is not in tenant "${this.options.tenant}"'s approver list (orch approver add)`;
      else if (!verifyEd25519(signed.signature, approvalMessage(st), st.approverKey)) signatureProblem = 'the signature does not verify';
      else signedBy = known;
    }

    if (gate.approvers) {
      if (!signed) return refuse(`unsigned: gate "${s.gate}" names approvers, so it takes only a decision signed with an approver's key (orch approve)`);
      if (!signedBy) return refuse(signatureProblem ?? 'the signature does not verify', signed.statement.approverKey);
      if (!gate.approvers.includes(signedBy.name)) {
        return refuse(`approver "${signedBy.name}" is not in this gate's approvers list (${gate.approvers.join(', ')})`, signedBy.key);
      }
      if (s.decision === 'approve') {
        if (gate.distinctFromStarter && this.starterKey === signedBy.key) {
          return refuse(`four eyes: "${signedBy.name}" started this run, so another approver must approve gate "${s.gate}"`, signedBy.key);
        }
        if (gate.approvals.some((a) => a.key === signedBy.key)) {
          return refuse(`"${signedBy.name}" already approved gate "${s.gate}"; it needs ${gate.needed} distinct approvers`, signedBy.key);
        }
      }
      const comment = signed.statement.comment;
      return { ok: true, gate, gateId: s.gate, decision: s.decision, approval: { approver: signedBy.name, key: signedBy.key, verified: true, at, ...(comment ? { comment } : {}), signed } };
    }
    // A gate that names nobody takes a plain signal (the Temporal UI); a bad signature on it is still refused.
    if (signed && !signedBy && ctx?.approvers.some((a) => a.key === signed.statement.approverKey)) {
      return refuse(signatureProblem ?? 'the signature does not verify', signed.statement.approverKey);
    }
    const comment = signedBy ? signed!.statement.comment : s.comment;
    return {
      ok: true,
      gate,
      gateId: s.gate,
      decision: s.decision,
      approval: signedBy
        ? { approver: signedBy.name, key: signedBy.key, verified: true, at, ...(comment ? { comment } : {}), signed: signed! }
        : { approver: s.approver, verified: false, at, ...(comment ? { comment } : {}) },
    };
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

  /**
   * Runs a node body, recording failure or cancellation in the node's status with its stable error type. Chained with
   * then() in runs that took LEAN_NODE_PATCH, with an async function's await in runs recorded before (chain.ts).
   */
  private track<T>(id: string, type: NodeStatus['type'], body: () => Promise<T>, chain: TrackChain = leanNodes ? thenTrack : awaitTrack): Promise<T> {
    return chain(
      () => this.takeNode(id, type),
      body,
      (err) => this.nodeFailed(id, err),
    );
  }

  /** Records a node's failure or cancellation in its status; returns what to throw for it. */
  private nodeFailed(id: string, err: unknown): unknown {
    if (isCancellation(err)) {
      this.markNode(id, { state: 'cancelled', finishedAt: nowIso() });
      return err;
    }
    const failure = errorOf(err);
    this.markNode(id, { state: 'failed', finishedAt: nowIso(), error: failure });
    // Surface the activity's stable type (agent_unavailable, claude_request_rejected, ...) as the node's own
    // failure, so hand-written workflows fail with it too instead of a generic "activity task failed".
    if (err instanceof ApplicationFailure) return err;
    return ApplicationFailure.nonRetryable(failure.message, failure.type, { node: id });
  }

  /** The release list of a gate: each command with its id as the runner will send it and its agent's tier. */
  releasedCommand(spec: ReleaseSpec): ReleasedCommand {
    const info = workflowInfo();
    return {
      commandId: `${info.workflowId}/${info.runId}/${spec.node}`,
      node: spec.node,
      agent: spec.agent,
      tier: this.gateContext?.agentTiers[spec.agent] ?? 'unknown',
      argv: [...spec.argv],
      destructive: spec.destructive === true || destructivePattern(spec.argv) !== undefined,
    };
  }

  private async gateNode(id: string, options: GateOptions): Promise<GateDecision> {
    const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_GATE_TIMEOUT_SECONDS;
    const since = nowIso();
    if (options.approvers) {
      const known = new Set((this.gateContext?.approvers ?? []).map((a) => a.name));
      const missing = options.approvers.filter((a) => !known.has(a));
      if (missing.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `gate "${id}" names approver(s) ${missing.map((m) => `"${m}"`).join(', ')} that tenant "${this.options.tenant}" does not have, so their approvals could never be verified: add them with \`orch approver add NAME --key HEX --tenant ${this.options.tenant}\``,
          ErrorType.unknownApprover,
          { node: id, missing },
        );
      }
    }
    const released = (options.releases ?? []).map((r) => this.releasedCommand(r));
    const minApprovals = options.minApprovals ?? 1;
    if (!Number.isSafeInteger(minApprovals) || minApprovals < 1 || (minApprovals > 1 && !options.approvers) || minApprovals > (options.approvers?.length ?? 1)) {
      throw ApplicationFailure.nonRetryable(`gate "${id}": minApprovals must be 1, or at most the number of its approvers`, ErrorType.badInput, { node: id });
    }
    const distinctFromStarter = options.approvers !== undefined && (options.distinctFromStarter ?? released.some((r) => r.destructive));
    // Four eyes with no proven starter and a single approver: that approver may be the starter, and no second one
    // exists, so no approval could prove four eyes. Fail now, saying how to run it, rather than wait for nothing.
    if (refuseUnprovenFourEyes && distinctFromStarter && this.starterKey === undefined && (options.approvers?.length ?? 0) < 2) {
      throw ApplicationFailure.nonRetryable(
        `gate "${id}" needs four eyes (distinct_from_starter) and names a single approver, but this run's starter is not proven (it was not started with \`orch run\`, which signs the start), so that approver may have started it: start the run with orch run, or name a second approver`,
        ErrorType.fourEyesUnproven,
        { node: id },
      );
    }
    // Four eyes with no proven starter: the starter could be any approver, so two distinct approvers are needed.
    const needed = distinctFromStarter && this.starterKey === undefined ? Math.max(minApprovals, Math.min(2, options.approvers?.length ?? 1)) : minApprovals;
    const record: GateRecord = {
      message: options.message,
      approvers: options.approvers,
      needed,
      distinctFromStarter,
      released,
      releaseDigest: releaseDigest(released),
      state: 'pending',
      since,
      deadline: new Date(Date.now() + timeoutSeconds * 1000).toISOString(),
      approvals: [],
      refused: [],
      toAudit: [],
      refusalsAudited: 0,
    };
    this.gates.set(id, record);
    this.markNode(id, { state: 'waiting_approval' });
    this.setState('waiting_approval');
    let decided = false;
    const deadlineMs = Date.now() + timeoutSeconds * 1000;
    try {
      // Waits for the decision; a refused decision wakes it to write that refusal's audit row, then it waits on
      // for what is left of the timeout (runs without the patch never queue one: one wait, as before).
      for (;;) {
        const left = deadlineMs - Date.now();
        const woke = left > 0 && (await condition(() => record.decision !== undefined || record.toAudit.length > 0, left, { summary: summaries.gateTimer(id, timeoutSeconds) }));
        while (record.toAudit.length > 0) {
          const r = record.toAudit.shift()!;
          await this.audit('approval_refused', id, { approver: r.approver, key: r.key ?? null, decision: r.decision, reason: r.reason, releaseDigest: record.releaseDigest }, `gate/${id}/refused/${r.n}`);
        }
        if (record.decision !== undefined) {
          decided = true;
          break;
        }
        if (!woke) break;
      }
    } finally {
      if (record.state === 'pending' && record.decision === undefined) record.state = 'timed_out';
      if (this.pendingGates().length === 0 && this.state === 'waiting_approval') this.setState('running');
    }
    const decision = record.decision;
    if (!decided || !decision) {
      record.state = 'timed_out';
      await this.audit('gate_timeout', id, { timeoutSeconds, releaseDigest: record.releaseDigest, approvals: record.approvals.map((a) => a.approver) }, `gate/${id}`);
      throw ApplicationFailure.nonRetryable(
        `approval gate "${id}" was not decided within ${timeoutSeconds} s${record.approvals.length ? ` (${record.approvals.length} of ${needed} approvals)` : ''}`,
        ErrorType.approvalTimeout,
        { node: id, timeoutSeconds },
      );
    }
    const verified = decision.approvals.every((a) => a.verified);
    const who = decision.approvals.map((a) => a.approver).join(', ');
    const comment = decision.approvals.map((a) => a.comment).filter((c): c is string => !!c).join(' / ') || undefined;
    // The row names who decided, whether their keys verified, and what they released (the digest and the
    // commands' ids); each signed statement and signature is kept as evidence. Its size is bounded by the
    // signal-time limits (comment length, min_approvals), so the append cannot fail for size.
    await this.audit(
      decision.decision === 'approve' ? 'approve_gate' : 'reject_gate',
      id,
      {
        comment: comment ?? null,
        message: summarize(options.message),
        verified,
        releaseDigest: record.releaseDigest,
        released: record.released.map((r) => r.commandId),
        approvals: decision.approvals.map((a) => ({ approver: a.approver, key: a.key ?? null, verified: a.verified, signed: a.signed ?? null })),
      },
      `gate/${id}`,
      decision.approvals.length === 1 ? who : `${decision.approvals.length} approvers`,
    );
    if (decision.decision === 'reject') {
      record.state = 'rejected';
      this.markNode(id, { summary: `rejected by ${who}${comment ? `: ${summarize(comment)}` : ''}` });
      throw ApplicationFailure.nonRetryable(
        `approval gate "${id}" was rejected by ${who}${comment ? `: ${comment}` : ''}`,
        ErrorType.approvalRejected,
        { node: id, approver: who, comment },
      );
    }
    record.state = 'approved';
    const result: GateDecision = { gate: id, approver: who, comment, decidedAt: nowIso(), verified };
    this.markNode(id, {
      state: 'succeeded',
      finishedAt: result.decidedAt,
      summary: `approved by ${who}${comment ? `: ${summarize(comment)}` : ''} ${verified ? '[signed]' : '[unverified]'}`,
    });
    return result;
  }

  /**
   * The attestation for a command released by an approved gate of this run, after checking that the command about
   * to run is exactly the one the approvers signed for (same agent, argv and destructive flag). A command that
   * changed since (a param or a parent's output fed it) is refused with `approval_mismatch`; one whose gates
   * released nothing has none.
   */
  approvalFor(id: string, options: CommandOptions): CommandApproval | undefined {
    const info = workflowInfo();
    const commandId = `${info.workflowId}/${info.runId}/${id}`;
    for (const gateId of options.after ?? []) {
      const g = this.gates.get(gateId);
      if (!g || g.state !== 'approved' || !g.decision) continue;
      const entry = g.released.find((r) => r.commandId === commandId);
      if (!entry) continue;
      const now = this.releasedCommand({ node: id, agent: options.agent, argv: options.argv, destructive: options.destructive });
      if (canonicalize(now) !== canonicalize(entry)) {
        throw ApplicationFailure.nonRetryable(
          `node "${id}" is not the command gate "${gateId}" was approved for: its agent, argv or tier changed after the approval, so it was not run`,
          ErrorType.approvalMismatch,
          { node: id, gate: gateId },
        );
      }
      return {
        approvals: g.decision.approvals.filter((a) => a.signed).map((a) => a.signed!),
        released: g.released.map((r) => ({ ...r, argv: [...r.argv] })),
      };
    }
    return undefined;
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
    const approval = this.approvalFor(id, options);
    const info = workflowInfo();
    const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_COMMAND_TIMEOUT_SECONDS;
    // argv as the DAG wrote it: secrets are ${secrets.NAME} references here, resolved only in the activity.
    const acts = commandActivities(summaries.command(id, options.agent, options.argv), timeoutSeconds);
    const commandId = `${info.workflowId}/${info.runId}/${id}`;
    // argv may hold ${secrets.NAME} references; they are resolved inside the activity, never here.
    const request = {
      tenant: this.options.tenant,
      agent: options.agent,
      argv: options.argv,
      timeoutSeconds,
      cwd: options.cwd,
      commandId,
      ...(approval ? { approval } : {}),
    };
    // In fast-path runs the activity writes both rows (command_sent before it sends); when it could not write the
    // result row (no audit log, an append that failed), the workflow appends it here, under the same key.
    if (!commandFastPath) await this.append(commandSentRecord(this.runRef(), id, request));
    const { audited, ...result } = await acts.runCommand(commandFastPath ? { ...request, audit: { node: id } } : request);
    if (!(commandFastPath && audited === true)) await this.append(commandResultRecord(this.runRef(), id, options.agent, result));
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
    const countTokens = async (): Promise<number> =>
      (await activities.counting.countClaudeTokens.executeWithOptions({ summary: summaries.countTokens(id, options.model) }, [request])).inputTokens;
    // The input tokens this call reserves for: no tokenizer yields more tokens than UTF-8 bytes, so while that bound
    // fits under the cap it is reserved as is, and the token count (a request to the API, as long as the call
    // itself on a fast model) is asked for only when the bound would not fit (and before refusing any call).
    const bound = inputTokenBound(system, options.prompt);
    let counted = claudeFastPath ? undefined : await countTokens();
    for (let attempt = 1; ; attempt++) {
      const key = `${id}#${attempt}`;
      if (counted === undefined && !this.ledger.project(worstCaseCost(price, bound, options.maxTokens)).fits) counted = await countTokens();
      const inputTokens = counted ?? bound;
      const worst = worstCaseCost(price, inputTokens, options.maxTokens);
      const projection = this.ledger.reserve(key, worst);
      this.publishDetails();
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
            inputTokens,
            maxTokens: options.maxTokens,
          },
        );
      }
      let settled = false;
      try {
        // In fast-path runs the activity appends the call's row as soon as the answer is in (the same row, under the
        // same idempotency key); when it could not (no audit log, an append that failed), the workflow appends it
        // here as before, and the run fails if that fails too.
        const result = await activities.claudeCalls.callClaude.executeWithOptions({ summary: summaries.claude(id, options.model, options.maxTokens, attempt) }, [
          claudeFastPath ? { ...request, audit: { node: id, attempt, price } } : request,
        ]);
        const cost = actualCost(price, result.inputTokens, result.outputTokens);
        this.ledger.settle(key, cost);
        settled = true;
        if (!(claudeFastPath && result.audited === true)) await this.append(claudeCallRecord(this.runRef(), id, attempt, options.model, price, result));
        this.markNode(id, { state: 'succeeded', finishedAt: nowIso(), summary: summarize(result.text), costUsd: nanoToUsd(cost) });
        return result;
      } catch (err) {
        // The call was answered and its real cost is counted: what failed after it (its audit row) is charged nothing
        // more (counting its worst case again would bill the call twice).
        if (settled) throw err;
        const notProcessed = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === ErrorType.claudeNotProcessed;
        if (notProcessed) {
          // The API refused before processing (429, 5xx, overloaded): nothing was billed.
          this.ledger.release(key);
          this.publishDetails();
          if (attempt < CLAUDE_ATTEMPTS) {
            await sleep(2 ** attempt * 1000, { summary: summaries.claudeBackoff(id, 2 ** attempt, attempt + 1) });
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
