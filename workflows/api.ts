/**
 * Orch's workflow API for developers: hand-written workflows get the same guarantees as DAG runs.
 *
 * @example
 * ```ts
 * import { runOrch, approvalGate, command } from 'orch/workflows/api';
 * export async function restartWithReview(input: { tenant: string }) {
 *   return runOrch({ tenant: input.tenant, costCapUsd: 0.5 }, async () => {
 *     await command('diagnose', { agent: 'web-1', argv: ['systemctl', 'status', 'nginx'] });
 *     await approvalGate('confirm', { message: 'Restart nginx on web-1?' });
 *     await command('restart', { agent: 'web-1', argv: ['systemctl', 'restart', 'nginx'], destructive: true, after: ['confirm'] });
 *   });
 * }
 * ```
 *
 * `command` refuses a destructive command (flagged, or matching a known destructive pattern) unless one of its
 * `after` gates was approved in this run; `claude` reserves its worst case under `costCapUsd` before it sends
 * anything; `approvalGate` parks the run on the `approve` signal or update (default timeout 24 hours). Give a gate
 * the commands it releases (`releases: [{ node, agent, argv, destructive }]`): the approver sees them and signs
 * their digest, and each is refused (`approval_mismatch`) if it runs with another agent or argv than approved.
 * A gate with `approvers` takes only signed approvals from those names in the tenant's approver list.
 */
import { ApplicationFailure, CancellationScope, workflowInfo } from '@temporalio/workflow';
import type { ClaudeResult, CommandResult } from '../activities/types';
import { ErrorType } from '../protocol/errors';
import type { PriceTable } from './prices';
import { argvTemplate, type ArgvElement } from './argv-template';
import {
  OrchSession,
  decideSignedApprovals,
  errorOf,
  type ClaudeOptions,
  type CommandOptions,
  type GateDecision,
  type GateOptions,
  type ReleaseSpec,
} from './session';
import { activities } from './activity-proxies';
import { summaries } from './ui-metadata';

export type { ClaudeOptions, CommandOptions, GateDecision, GateOptions, ReleaseSpec } from './session';
export { wrapServerOutput } from './dag/server-output';
export { secret, Secret, type ArgvElement, type ArgvPart } from './argv-template';

/** {@link command}'s options: each argv element is literal text, `secret('NAME')`, or a list of both. */
export type WorkflowCommandOptions = Omit<CommandOptions, 'argv'> & { argv: readonly ArgvElement[] };
/** {@link approvalGate}'s options: a released command's argv is written as {@link command}'s is. */
export type WorkflowGateOptions = Omit<GateOptions, 'releases'> & { releases?: Array<Omit<ReleaseSpec, 'argv'> & { argv: readonly ArgvElement[] }> };

let current: OrchSession | undefined;

export interface UseOrchOptions {
  tenant: string;
  /** Shown as the DAG name in status and search attributes; defaults to the workflow type. */
  name?: string;
  costCapUsd: number;
  /** Normally loaded from the operator's configuration by an activity (so it is recorded in history). */
  prices?: PriceTable;
}

/** Starts Orch's bookkeeping for this workflow run. Call once, first. */
export async function useOrch(options: UseOrchOptions): Promise<OrchSession> {
  if (current) throw ApplicationFailure.nonRetryable('useOrch() was called twice in one run', ErrorType.badInput);
  decideSignedApprovals();
  if (!(typeof options.costCapUsd === 'number' && Number.isFinite(options.costCapUsd) && options.costCapUsd > 0)) {
    throw ApplicationFailure.nonRetryable('useOrch() needs a positive costCapUsd', ErrorType.badInput);
  }
  const prices = options.prices ?? (await activities.loading.loadRunConfig.executeWithOptions({ summary: summaries.loadRunConfig() }, [])).prices;
  current = new OrchSession({
    tenant: options.tenant,
    dag: options.name ?? workflowInfo().workflowType,
    dagVersion: 'code',
    costCapUsd: options.costCapUsd,
    prices,
  });
  await current.begin();
  return current;
}

function session(): OrchSession {
  if (!current) throw ApplicationFailure.nonRetryable('call useOrch({ tenant, costCapUsd }) before command, claude or approvalGate', ErrorType.badInput);
  return current;
}

/**
 * Runs a command on an agent. Strings in argv are always literal text, wherever they came from (workflow input,
 * a signal, a parent's output): `${secrets.X}` in one reaches the agent as those characters. Only a secret
 * written in the code with `secret('NAME')` is resolved, inside the activity, and masked in what comes back.
 *
 * @example await command('deploy', { agent: 'web-1', argv: ['deploy', input.branch, ['--token=', secret('DEPLOY_TOKEN')]] });
 */
export function command(id: string, options: WorkflowCommandOptions): Promise<CommandResult> {
  return session().command(id, { ...options, argv: argvTemplate(options.argv) });
}

export function claude(id: string, options: ClaudeOptions): Promise<ClaudeResult> {
  return session().claude(id, options);
}

export function approvalGate(id: string, options: WorkflowGateOptions): Promise<GateDecision> {
  // The released argv goes through the same conversion as command()'s, so the digest covers what will be sent.
  const { releases, ...rest } = options;
  return session().approvalGate(id, releases ? { ...rest, releases: releases.map((r) => ({ ...r, argv: argvTemplate(r.argv) })) } : rest);
}

/** `useOrch`, then `body`, then the final state (succeeded, or failed with the stable error type) in status. */
export async function runOrch<T>(options: UseOrchOptions, body: () => Promise<T>): Promise<T> {
  const s = await useOrch(options);
  try {
    const result = await body();
    s.setState('succeeded');
    await s.end('succeeded');
    return result;
  } catch (err) {
    const failure = errorOf(err);
    s.setState('failed', failure);
    await CancellationScope.nonCancellable(() => s.end('failed', failure));
    throw err;
  }
}
