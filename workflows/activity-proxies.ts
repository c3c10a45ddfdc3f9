/**
 * The activity proxies Orch's workflow code calls through: which activities run as local activities and which go
 * through the server's task queue, with their timeouts and retry policies. Workflow code: activities by type only.
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/types';
import { ErrorType } from '../protocol/errors';

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
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: [ErrorType.unknownTenant, ErrorType.badInput, ErrorType.auditEntryInvalid] },
});

export const activities = { loading, counting, claudeCalls, auditing };

/**
 * The proxy for one command node's `runCommand`: its timeout is the node's plus a minute for the round trip, and its
 * summary (argv as the DAG wrote it, `${secrets.NAME}` references unresolved) names it in the Temporal UI.
 */
export function commandActivities(summary: string, timeoutSeconds: number) {
  return proxyActivities<Activities>({
    summary,
    startToCloseTimeout: (timeoutSeconds + 60) * 1000,
    // The activity heartbeats every 5 s: a dead worker is noticed in 15 s and the retry asks the agent again.
    heartbeatTimeout: '15 seconds',
    retry: {
      maximumAttempts: 5,
      nonRetryableErrorTypes: [ErrorType.agentUnavailable, ErrorType.unknownTenant, ErrorType.commandNotAllowed, ErrorType.indeterminate],
    },
  });
}
