/**
 * The audit rows a run writes, built in one place for the workflow (which appends them through the `appendAudit`
 * local activity) and for the activities that append a row of their own node themselves. Pure code: workflow-safe.
 */
import type { AuditRecord, ClaudeResult, CommandRequest, CommandResult } from '../activities/types';
import { releaseDigest } from '../protocol/approval-digest';
import { actualCost, nanoToUsd } from './cost-ledger';
import type { ModelPrice } from './prices';

/** Which run a row belongs to. */
export interface RunRef {
  tenant: string;
  workflowId: string;
  runId: string;
}

/**
 * One row of a run. Its idempotency key is derived from the run and the step, the same on every retry and replay,
 * and whoever writes it (the workflow or an activity), so the row is written once.
 */
export function runAuditRecord(run: RunRef, action: string, subject: string, details: Record<string, unknown>, step: string, actor = 'orch'): AuditRecord {
  return {
    tenant: run.tenant,
    actor,
    action,
    subject,
    details: { workflowId: run.workflowId, runId: run.runId, ...details },
    idempotencyKey: `${run.workflowId}/${run.runId}/${step}`,
  };
}

/** The `claude_call` row of one attempt of a Claude node: the model, the real usage and its cost. */
export function claudeCallRecord(run: RunRef, node: string, attempt: number, model: string, price: ModelPrice, result: Pick<ClaudeResult, 'inputTokens' | 'outputTokens'>): AuditRecord {
  const costUsd = nanoToUsd(actualCost(price, result.inputTokens, result.outputTokens));
  return runAuditRecord(run, 'claude_call', node, { model, inputTokens: result.inputTokens, outputTokens: result.outputTokens, costUsd, attempt }, `claude/${node}/${attempt}`);
}

/**
 * The `command_sent` row of a command node, written before the command goes to its agent: argv as the DAG wrote it
 * (`${secrets.NAME}` references unresolved), the command id the agent runs it under, and who approved it if a gate
 * released it. One per node: every attempt of the activity writes it under the same key.
 */
export function commandSentRecord(run: RunRef, node: string, req: Pick<CommandRequest, 'agent' | 'argv' | 'commandId' | 'approval'>): AuditRecord {
  const approval = req.approval;
  return runAuditRecord(
    run,
    'command_sent',
    node,
    {
      agent: req.agent,
      argv: req.argv,
      commandId: req.commandId,
      ...(approval ? { approvedBy: approval.approvals.map((a) => a.statement.approverKey), releaseDigest: releaseDigest(approval.released) } : {}),
    },
    `command/${node}/sent`,
  );
}

/** The `command_result` row of a command node: its exit code, whether its output was cut, and how long it ran. */
export function commandResultRecord(run: RunRef, node: string, agent: string, result: Pick<CommandResult, 'exitCode' | 'truncated' | 'durationMs'>): AuditRecord {
  return runAuditRecord(run, 'command_result', node, { agent, exitCode: result.exitCode, truncated: result.truncated, durationMs: result.durationMs }, `command/${node}/result`);
}
