/**
 * The destructive check once more, inside the runCommand activity, on the argv with its secrets resolved. The
 * workflow checks the argv it renders, which holds `${secrets.NAME}` references and never values; a secret's value
 * could still turn a harmless-looking argv (`sh -c ${secrets.SCRIPT}`) into `rm -rf /`. Such a command goes out only
 * if an approved gate of this run released it (the request carries that gate's `approval`); otherwise it is refused
 * here, before anything is sent, audited as `command_refused`, and the run fails with `destructive_without_gate`.
 *
 * An argv that was already destructive before its secrets were resolved needs nothing more here: the workflow
 * refused it unless one of its gates was approved (workflows/session.ts, checkDestructive on the same argv).
 */
import { ApplicationFailure } from '@temporalio/common';
import { destructivePattern } from '../protocol/destructive';
import { ErrorType } from '../protocol/errors';
import type { AuditRecord, CommandRequest } from './types';

/** The audit action of a command the activity refused to send. */
export const COMMAND_REFUSED_ACTION = 'command_refused';

/**
 * Throws a non-retryable `destructive_without_gate` failure (after auditing it) when `resolved` (the request with
 * secrets resolved) is destructive, `request` (as the workflow sent it) was not, and no approved gate released it.
 * The failure and the audit row name the pattern and the command id, never the argv (it holds secret values).
 *
 * @example
 * await runCommandWithSecrets(req, (resolved) => { refuseUngatedDestructive(req, resolved, audit); return send(resolved); }, secrets);
 */
export function refuseUngatedDestructive(
  request: CommandRequest,
  resolved: CommandRequest,
  audit: { append(record: AuditRecord): unknown } | undefined,
): void {
  const pattern = destructivePattern(resolved.argv);
  if (pattern === undefined) return;
  if (destructivePattern(request.argv) !== undefined) return;
  // Present exactly when an approved gate of this run released this command (workflows/session.ts approvalFor).
  if ((request as { approval?: unknown }).approval !== undefined) return;
  const node = request.commandId.split('/').pop() ?? request.commandId;
  audit?.append({
    tenant: request.tenant,
    actor: 'orch-worker',
    action: COMMAND_REFUSED_ACTION,
    subject: node,
    details: { commandId: request.commandId, agent: request.agent, reason: ErrorType.destructiveWithoutGate, pattern, check: 'argv_with_secrets_resolved' },
    idempotencyKey: `${request.commandId}#refused`,
  });
  throw ApplicationFailure.nonRetryable(
    `command node "${node}" matches the destructive pattern "${pattern}" once its secrets are resolved, and no approved approval_gate of this run released it, so it was not sent to agent "${request.agent}" (give it an approval_gate parent and destructive: true)`,
    ErrorType.destructiveWithoutGate,
    { node, commandId: request.commandId, agent: request.agent, pattern },
  );
}
