/**
 * Every side effect an Orch workflow needs, built by a factory that receives its dependencies, so the worker
 * hands in real ones and tests hand in real-but-local ones (a tenant directory, a local Anthropic-protocol
 * server).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ErrorType } from '../protocol/errors';
import type { PriceTable } from '../workflows/prices';
import { createClaudeActivities, type ClaudeSettings } from './claude';
import { refuseUngatedDestructive } from './resolved-argv-check';
import { runCommandWithSecrets, secretSourceOf } from './secrets';
import { claudeCallRecord } from '../workflows/audit-rows';
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
        deps.audit.append(claudeCallRecord({ tenant: req.tenant, workflowId: run.workflowId, runId: run.runId }, req.audit.node, req.audit.attempt, req.model, req.audit.price, result));
        return { ...result, audited: true };
      } catch (err) {
        Context.current().log.warn('the claude_call audit row was not appended here; the workflow appends it', { error: String(err) });
        return result;
      }
    },

    async appendAudit(record: AuditRecord): Promise<{ seq: number } | null> {
      if (!deps.audit) return null;
      try {
        return deps.audit.append(record);
      } catch (err) {
        // A row the log refuses is refused again on every retry: a field over limits.ts AUDIT_ROW_LIMITS
        // (audit_entry_invalid), or details that are not I-JSON (a lone surrogate: CanonicalJsonError). Fail at once
        // as audit_entry_invalid, which the workflow lists as non-retryable.
        const code = (err as { code?: unknown } | null)?.code;
        if (err instanceof Error && (code === ErrorType.auditEntryInvalid || err.name === 'CanonicalJsonError')) {
          throw ApplicationFailure.nonRetryable(err.message, ErrorType.auditEntryInvalid);
        }
        throw err;
      }
    },

    async runCommand(req: CommandRequest): Promise<CommandResult> {
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
        return await runCommandWithSecrets(req, send, secretSourceOf(deps as ActivityDeps & { secrets?: unknown }));
      } finally {
        clearInterval(beat);
      }
    },
  };
}

export type { Activities } from './types';
