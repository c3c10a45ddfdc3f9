/**
 * Every side effect an Orch workflow needs, built by a factory that receives its dependencies, so the worker
 * hands in real ones and tests hand in real-but-local ones (a tenant directory, a local Anthropic-protocol
 * server).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ErrorType, OrchError } from '../protocol/errors';
import type { PriceTable } from '../workflows/prices';
import { createClaudeActivities, type ClaudeSettings } from './claude';
import { refuseUngatedDestructive } from './resolved-argv-check';
import { runCommandWithSecrets, secretSourceOf } from './secrets';
import { claudeCallRecord, commandResultRecord, commandSentRecord } from '../workflows/audit-rows';
import type { Activities, AuditRecord, ClaudeRequest, ClaudeResult, CommandRequest, CommandResult, GateContext, LoadDagResult, RunConfig } from './types';

/** The command activity heartbeats this often; the workflow sets a heartbeat timeout of three of them. */
export const HEARTBEAT_EVERY_MS = 5_000;

/** Where registered DAGs live: the tenant databases (desktop-worker's TenantStore implements it). */
export interface DagRegistry {
  /** Throws a failure of type unknown_tenant or unknown_dag. */
  loadDag(tenant: string, name: string): { source: unknown; hash: string };
}

/** Runs a command on an enrolled agent (the sealed relay client implements it). */
export interface CommandTransport {
  run(request: CommandRequest): Promise<CommandResult>;
}

/** The tenants' audit logs (desktop-worker's AuditLog per tenant implements it). */
export interface AuditSink {
  /** Appends one row; a repeated idempotency key writes nothing. Throws unknown_tenant for a missing tenant. */
  append(record: AuditRecord): { seq: number };
  /**
   * The same, committed together with the other rows asked for in the same turn (one transaction for a burst of
   * parallel branches); resolves once the row is on disk. Sinks without it are appended to one row at a time.
   */
  appendSoon?(record: AuditRecord): Promise<{ seq: number }>;
}

/** Appends one row through the sink's batched path when it has one. */
async function appendRow(audit: AuditSink, record: AuditRecord): Promise<{ seq: number }> {
  return audit.appendSoon ? audit.appendSoon(record) : audit.append(record);
}

export interface ActivityDeps {
  registry: DagRegistry;
  prices: () => PriceTable;
  claude: () => ClaudeSettings;
  /** Absent until an agent is enrolled: command nodes then fail with agent_unavailable. */
  commands?: CommandTransport;
  /**
   * Where audit rows go. The Orch worker always passes the tenants' audit logs; a worker built without one
   * (some tests, a developer's own worker) records nothing and says so once in its log.
   */
  audit?: AuditSink;
  /** The tenant's approver keys, the desktop key and agent tiers; without it gates know no approver. */
  gateContext?: (tenant: string) => GateContext;
}

/**
 * Appends one row. A row the log refuses is refused again on every retry: a field over limits.ts AUDIT_ROW_LIMITS
 * (audit_entry_invalid), or details that are not I-JSON (a lone surrogate: CanonicalJsonError). That fails at once
 * as audit_entry_invalid, which the workflow lists as non-retryable; anything else (a busy database) is retried.
 */
async function appendOrRefuse(audit: AuditSink, record: AuditRecord): Promise<{ seq: number }> {
  try {
    return await appendRow(audit, record);
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (err instanceof Error && (code === ErrorType.auditEntryInvalid || err.name === 'CanonicalJsonError')) {
      throw ApplicationFailure.nonRetryable(err.message, ErrorType.auditEntryInvalid);
    }
    throw err;
  }
}

/**
 * The command_sent row, or a failure that says which row could not be written (as the workflow's own append says it):
 * without that row the command must not go out.
 */
async function sentRowOrFail(audit: AuditSink, record: AuditRecord): Promise<void> {
  try {
    await appendOrRefuse(audit, record);
  } catch (err) {
    const message = `could not write the audit row for ${record.action} ${record.subject}: ${err instanceof Error ? err.message : String(err)}`;
    if (err instanceof ApplicationFailure) throw ApplicationFailure.create({ message, type: err.type ?? undefined, nonRetryable: err.nonRetryable ?? undefined, details: [{ action: record.action, subject: record.subject }] });
    // An OrchError (unknown_tenant, ...) keeps its stable type and fails without retries, as the interceptor would;
    // anything else (a busy database) is retried under the activity's retry policy.
    if (err instanceof OrchError) throw ApplicationFailure.nonRetryable(message, err.code, { action: record.action, subject: record.subject });
    throw new Error(message);
  }
}

const NO_GATE_CONTEXT: GateContext = { approvers: [], desktopKey: null, agentTiers: {} };

export function createActivities(deps: ActivityDeps): Activities {
  const claude = createClaudeActivities(deps.claude);
  return {
    async loadDag(args: { tenant: string; name: string }): Promise<LoadDagResult> {
      const { source, hash } = deps.registry.loadDag(args.tenant, args.name);
      const gateContext = deps.gateContext?.(args.tenant) ?? NO_GATE_CONTEXT;
      return { tenant: args.tenant, name: args.name, source, hash, prices: deps.prices(), gateContext };
    },

    /** For runs that load no registered DAG (inline DAGs, hand-written workflows): the same context. */
    async loadGateContext(args: { tenant: string }): Promise<GateContext> {
      return deps.gateContext?.(args.tenant) ?? NO_GATE_CONTEXT;
    },

    async loadRunConfig(): Promise<RunConfig> {
      return { prices: deps.prices() };
    },

    ...claude,

    /**
     * The Messages API call. When the request asks for it (runs from this version on), it also appends the call's
     * `claude_call` row as soon as the answer is in, so the workflow need not run a local activity for it after;
     * if that append fails, the answer still returns (it may be billed) and the workflow appends the row itself.
     */
    async callClaude(req: ClaudeRequest): Promise<ClaudeResult> {
      const result = await claude.callClaude(req);
      const run = Context.current().info.workflowExecution;
      if (!req.audit || !deps.audit || !run) return result;
      try {
        await appendRow(deps.audit, claudeCallRecord({ tenant: req.tenant, workflowId: run.workflowId, runId: run.runId }, req.audit.node, req.audit.attempt, req.model, req.audit.price, result));
        return { ...result, audited: true };
      } catch (err) {
        Context.current().log.warn('the claude_call audit row was not appended here; the workflow appends it', { error: String(err) });
        return result;
      }
    },

    async appendAudit(record: AuditRecord): Promise<{ seq: number } | null> {
      if (!deps.audit) return null;
      return appendOrRefuse(deps.audit, record);
    },

    /**
     * Sends one command to its agent. When the request asks for it (runs from this version on), it also writes the
     * node's `command_sent` row before anything is sent (or refused: the row is there whatever happens next, as
     * when the workflow wrote it) and its `command_result` row when the answer is in, so the workflow need not run
     * a local activity for either. Every attempt writes them under the same keys, so a retry adds no row.
     */
    async runCommand(req: CommandRequest): Promise<CommandResult> {
      const run = Context.current().info.workflowExecution;
      const audit = req.audit !== undefined && run !== undefined ? deps.audit : undefined;
      const ref = audit && run ? { tenant: req.tenant, workflowId: run.workflowId, runId: run.runId } : undefined;
      const node = req.audit?.node ?? '';
      // If the command_sent row cannot be written, nothing is sent.
      if (audit && ref) await sentRowOrFail(audit, commandSentRecord(ref, node, req));
      if (!deps.commands) {
        throw ApplicationFailure.nonRetryable(
          `no agent "${req.agent}" is enrolled with this Orch worker, so the command was not run (enroll one with \`orch agent add\`)`,
          ErrorType.agentUnavailable,
          { agent: req.agent },
        );
      }
      // argv holds ${secrets.NAME} references at most: resolved here, and every secret masked in what returns.
      const transport = deps.commands;
      // Heartbeats tell Temporal this worker is alive while the agent works, so if the worker dies the activity
      // is retried within the heartbeat timeout (not after the whole command timeout); the agent answers the
      // retry from its ledger, so the command still runs once.
      const context = Context.current();
      const beat = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY_MS);
      try {
        // The destructive check runs again on the argv with secrets resolved, before anything is sent.
        const send = (resolved: CommandRequest): Promise<CommandResult> => {
          refuseUngatedDestructive(req, resolved, deps.audit);
          return transport.run(resolved);
        };
        const result = await runCommandWithSecrets(req, send, secretSourceOf(deps as ActivityDeps & { secrets?: unknown }));
        if (!audit || !ref) return result;
        // The command_result row, under the key the workflow's own append uses. If it cannot be written here, the
        // answer still returns (the command ran) and the workflow appends the row; a retry of this activity would
        // find the row already there and write nothing.
        try {
          await appendRow(audit, commandResultRecord(ref, node, req.agent, result));
          return { ...result, audited: true };
        } catch (err) {
          context.log.warn('the command_result audit row was not appended here; the workflow appends it', { error: String(err) });
          return result;
        }
      } finally {
        clearInterval(beat);
      }
    },
  };
}

export type { Activities } from './types';
