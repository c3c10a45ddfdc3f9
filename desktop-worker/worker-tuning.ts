/**
 * How the Orch worker holds runs in memory (issue 11: many runs parked at gates on one worker).
 *
 * Temporal's sticky cache keeps each run it has seen as a live workflow in the worker's V8 context, so that its
 * next task needs no replay. The SDK sizes it from the heap limit (about 2,300 runs on a 4 GiB heap), so every run
 * parked at a gate stayed cached, about 0.4 MiB each: 1,000 parked runs took the worker from about 270 MiB to 680 MiB
 * (`npm run bench:parked --sdk-defaults`). A run parked at
 * a gate may wait hours and needs no cache slot; the cache is an LRU, so with a small one the parked runs are the
 * ones evicted, and the release of an evicted run costs one replay of its short history (measured by
 * `npm run bench:parked`). ORCH_MAX_CACHED_WORKFLOWS sets the size.
 */
import type { WorkerOptions } from '@temporalio/worker';

/**
 * Runs the worker keeps cached (ORCH_MAX_CACHED_WORKFLOWS): enough for the runs actually moving at once. Measured with
 * `npm run bench:parked` (1,000 parked, in a process started as `orch up` is, bin/up-process.mjs): a cache of 25 kept
 * the worker at 178-223 MiB in three runs, 50 at 278 MiB (the goal is under 300 MB, 286 MiB), 100 at 333 MiB; a run past the cache
 * replays its history at its next task (see the README's parked-runs sections for the trade-off).
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 25;

export type WorkerTuning = Pick<WorkerOptions, 'maxCachedWorkflows' | 'reuseV8Context' | 'maxConcurrentWorkflowTaskExecutions' | 'workflowTaskPollerBehavior'>;

/** The worker options `orch up` runs the Orch worker with (the rest are the SDK's defaults). */
export function orchWorkerTuning(maxCachedWorkflows: number = DEFAULT_MAX_CACHED_WORKFLOWS): WorkerTuning {
  return {
    maxCachedWorkflows,
    // One V8 context for all runs (the SDK's default, said here because it is what keeps a cached run small).
    reuseV8Context: true,
  };
}
