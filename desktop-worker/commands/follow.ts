/**
 * `orch run --follow`: a run followed until it closes, redrawn or printed as it changes. Changes are seen through
 * a long poll on the run's history, so a gate approved a moment after it starts waiting is still shown.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { statusQuery, type RunResult, type RunStatus } from '../../workflows/shared';
import { formatGate } from './gates';
import { formatStatus } from './status-format';
import type { Out } from './shared';

/**
 * Calls `changed` each time new events land in the run's history (a long poll, as the Temporal CLI's
 * `workflow show --follow` does), until the run closes or `signal` aborts. The events themselves are not read.
 */
export async function watchHistory(handle: WorkflowHandle, changed: () => void, signal: AbortSignal): Promise<void> {
  const client = handle.client;
  const req = {
    namespace: client.options.namespace,
    execution: { workflowId: handle.workflowId },
    waitNewEvent: true,
    skipArchival: true,
    nextPageToken: undefined as Uint8Array | undefined,
  };
  while (!signal.aborted) {
    const res = await client.withAbortSignal(signal, () => client.workflowService.getWorkflowExecutionHistory(req));
    if ((res.history?.events?.length ?? 0) > 0) changed();
    if (!res.nextPageToken?.length) return; // the run closed and every event was read
    req.nextPageToken = res.nextPageToken;
  }
}

/** How `orch run --follow` shows progress: a live block on a terminal, lines when piped, JSON lines with --json. */
export type FollowMode = 'live' | 'lines' | 'json';

/**
 * Follows a run until it closes; returns the exit code (0 succeeded, 1 failed).
 * - `live` (a terminal): the run's status block (nodes, cost against the cap, waiting gates with what they
 *   release and the approve command) redrawn in place as it changes;
 * - `lines`: one line per node change and per cost change, each gate's block when it starts waiting or changes;
 * - `json`: one JSON object per line (`node`, `cost`, `gate` events), and an `end` line with the outcome.
 */
export async function follow(handle: WorkflowHandle, out: Out, mode: FollowMode): Promise<number> {
  const seen = new Map<string, string>();
  const gatesShown = new Set<string>();
  let costShown = '';
  let drawn = 0;
  let lastBlock = '';
  const at = () => new Date().toISOString();
  const emit = (event: Record<string, unknown>) => out.log(JSON.stringify(event));
  const poll = async () => {
    let s: RunStatus;
    try {
      s = await handle.query(statusQuery);
    } catch {
      return; // no worker yet, or the run just closed: the result below tells
    }
    if (mode === 'live') {
      const block = formatStatus(s, handle.workflowId).join('\n');
      if (block === lastBlock) return;
      lastBlock = block;
      // Back to the top of the previous block, clear to the end of the screen, draw the new one.
      process.stdout.write(`${drawn > 0 ? `\x1b[${drawn}F\x1b[J` : ''}${block}\n`);
      drawn = block.split('\n').length;
      return;
    }
    for (const n of s.nodes) {
      if (seen.get(n.id) === n.state) continue;
      seen.set(n.id, n.state);
      if (n.state === 'pending') continue;
      if (mode === 'json') {
        emit({ event: 'node', at: at(), node: n.id, type: n.type, state: n.state, ...(n.summary ? { summary: n.summary.split('\n')[0] } : {}), ...(n.error ? { error: n.error } : {}) });
        continue;
      }
      const detail = n.error ? ` — ${n.error.type}: ${n.error.message}` : n.summary && n.state === 'succeeded' ? ` — ${n.summary.split('\n')[0]}` : '';
      out.log(`[${at().slice(11, 19)}] ${n.id}: ${n.state}${detail}`);
    }
    const cost = `${s.cost.spentUsd}/${s.cost.reservedUsd}`;
    if (cost !== costShown && (s.cost.spentUsd > 0 || s.cost.reservedUsd > 0)) {
      costShown = cost;
      if (mode === 'json') emit({ event: 'cost', at: at(), ...s.cost });
      else out.log(`[${at().slice(11, 19)}] cost: $${s.cost.spentUsd.toFixed(6)} spent, $${s.cost.reservedUsd.toFixed(6)} reserved, cap $${s.cost.capUsd}`);
    }
    for (const g of s.pendingGates) {
      // Shown again when its release list or its refusals change, so the approver sees what they would sign.
      const shown = `${g.gate}/${g.releaseDigest}/${g.approvals?.length ?? 0}/${g.refused?.length ?? 0}`;
      if (gatesShown.has(shown)) continue;
      gatesShown.add(shown);
      if (mode === 'json') emit({ event: 'gate', at: at(), ...g, approve: `orch approve ${handle.workflowId} ${g.gate}` });
      else for (const l of formatGate(g, handle.workflowId)) out.log(l);
    }
  };
  // The last poll is awaited before returning: one still in flight (its query waiting on the payload codec) must
  // not reach the connection after the caller closed it.
  let inflight = poll();
  // One read queued at most: changes that land while a read waits to start are all seen by that read.
  let queued = false;
  const refresh = () => {
    if (queued) return;
    queued = true;
    inflight = inflight.then(() => {
      queued = false;
      return poll();
    });
  };
  // Each change to the run is a new event in its history: the status is read again as soon as one lands (a
  // long poll on the history), so a gate that is approved a moment after it starts waiting is still shown. If
  // the long poll fails, it falls back to reading the status every second.
  let timer: NodeJS.Timeout | undefined;
  const stopWatching = new AbortController();
  const watching = watchHistory(handle, refresh, stopWatching.signal).catch(() => {
    if (!stopWatching.signal.aborted) timer = setInterval(refresh, 1000);
  });
  const stop = async () => {
    stopWatching.abort();
    await watching;
    clearInterval(timer);
    await inflight;
  };
  await inflight;
  try {
    const result = (await handle.result()) as RunResult;
    await stop();
    await poll();
    if (mode === 'json') emit({ event: 'end', at: at(), workflowId: handle.workflowId, status: 'succeeded', result });
    else out.log(`run ${handle.workflowId} succeeded (cost $${result.costUsd.toFixed(6)})`);
    return 0;
  } catch (err) {
    await stop();
    await poll();
    const cause = err instanceof WorkflowFailedError ? err.cause : err;
    const type = (cause as { type?: string } | undefined)?.type ?? 'failed';
    const message = (cause as Error | undefined)?.message ?? String(err);
    if (mode === 'json') emit({ event: 'end', at: at(), workflowId: handle.workflowId, status: 'failed', error: { type, message } });
    else out.err(`run ${handle.workflowId} failed: ${type}: ${message}`);
    return 1;
  }
}
