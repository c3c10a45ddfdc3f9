/**
 * `npm run bench:parked`: many runs parked at approval gates on one worker (issue 11). On one real Temporal dev
 * server (eager activity execution on, as `orch up` runs it), it starts N runs of a DAG whose gate releases one Claude
 * node (the local Anthropic-protocol server), waits until all N wait at their gate, and prints:
 * - the Orch worker's RSS idle and with N parked: the worker runs compiled in a process of its own
 *   (test/support/worker-process.ts) with the options `orch up` gives it, or with `--sdk-defaults` the SDK's (as before),
 *   in a process started as `orch up` is (bin/up-process.mjs: node flags and MALLOC_ARENA_MAX), or with
 *   `--node-defaults` without them;
 * - `orch runs --state waiting --limit N` listing them (the compiled CLI, a process of its own, over the dev server's HTTP
 *   API published as `orch up` publishes it), beside
 *   `temporal workflow list` with the same query;
 * - the release of a parked run: the `approve` signal sent to it (by this process's client: an unsigned decision to a
 *   gate that names no approvers, as the Temporal UI sends it; `orch approve`'s own work, its process, keys, describe
 *   and status query, signature and update, is not in it: bench:cli times that) until the released node starts
 *   (its request reaches the model server) and until the run is done (the node's call, its audit row and the run's
 *   end row included), beside a bare workflow parked on a signal that then runs one plain activity making the same
 *   call (signal to the activity's request, signal to done), all with N runs parked. Both sides are timed in the same
 *   cache state: first runs cached in their worker (no replay; each is asked a query just before, as `orch approve`
 *   asks for the run's status first, which has the worker load a run it had evicted), then runs evicted from it
 *   (replayed from their history on release: the oldest Orch runs; bare runs of a second plain worker whose cache
 *   holds 2 runs, with 2 more parked after them). Each sample is classed by its worker's own sticky-cache counters
 *   (the SDK core's metrics, served on loopback: a miss is a replay), not by which run was picked. The workers differ:
 *   the Orch worker runs in a process of its own with orch up's options, the bare ones in this process with the SDK's
 *   (the evicting one with a cache and workflow-task concurrency of 2). The server's own timestamps of each released
 *   run split its time (the decision's workflow task and within it the gate's audit row, a local activity; the
 *   node's start; its activity; the end).
 * The worker's memory is also split by kind (the worker reports its process.memoryUsage() when asked on stdin).
 * Not a test: it asserts nothing. It takes minutes.
 *
 * Options: --n 1000 (parked runs), --samples 15 (releases timed per kind; the median is printed), --sdk-defaults, or
 * --max-cached N (the worker's sticky cache size instead of ORCH_MAX_CACHED_WORKFLOWS's default), --node-defaults,
 * --node-flags='--a --b' (more node flags for the worker process alone, e.g. V8 heap settings; the environment passes
 * on).
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { tsToMs } from '@temporalio/common/lib/time';
import proto from '@temporalio/proto';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { publishTemporalHttp } from '../desktop-worker/run-transport';
import { resolveTemporalCli } from '../infra/temporal-cli';
import { signApproval } from '../desktop-worker/approval-signing';
import { releaseDigest } from '../protocol/approval-digest';
import { ed25519KeyPair } from '../protocol/primitives';
import { approveSignal, approveUpdate } from '../workflows/shared';
import { benchArgs } from './args';
import { benchRow } from './report';
import { BENCH_MODEL as MODEL, median, startBenchWorkers, type OrchWorkerMemory } from './support';

const { values, count, usageError } = benchArgs(
  `
npm run bench:parked [-- OPTIONS]   many runs parked at approval gates on one worker (asserts nothing; takes minutes)

  --n N                  parked runs (default 1000)
  --samples N            releases timed per kind (cached, evicted); the median is printed (default 15)
  --sdk-defaults         the worker with the SDK's defaults instead of orch up's options
  --max-cached N         the worker's sticky cache size instead of ORCH_MAX_CACHED_WORKFLOWS's default
  --node-defaults        the worker process without orch up's node flags and MALLOC_ARENA_MAX (bin/up-process.mjs)
  --node-flags='--a --b' more node flags for the worker process alone (the environment, e.g. MALLOC_ARENA_MAX, passes on)
  --each                 print every timed release (run, cache hits and misses, times)
  --signed               the decision as orch approve sends it: a statement signed with an approver's key, as the
                         approve update, to a gate that names that approver (the workflow verifies the signature)
`,
  { n: { type: 'string', default: '1000' }, samples: { type: 'string', default: '15' }, 'sdk-defaults': { type: 'boolean', default: false }, 'max-cached': { type: 'string' }, 'node-defaults': { type: 'boolean', default: false }, 'node-flags': { type: 'string' }, each: { type: 'boolean', default: false }, signed: { type: 'boolean', default: false } },
);
const N = count(values.n, '--n');
const SAMPLES = count(values.samples, '--samples');
if (values['max-cached'] !== undefined) count(values['max-cached'], '--max-cached', { zero: true });
if (SAMPLES > N) usageError(`--samples (${SAMPLES}) must not exceed --n (${N})`);
const root = fileURLToPath(new URL('..', import.meta.url));
const exec = promisify(execFile);
const say = (l: string) => process.stdout.write(`${l}\n`);
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
/** A process's resident set, in bytes (Linux: /proc; elsewhere ps). */
function rssOf(pid: number): number {
  if (process.platform === 'linux') {
    const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    if (kb) return Number(kb) * 1024;
  }
  return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim()) * 1024;
}

/** A free loopback address (HOST:PORT) for a metrics endpoint. */
async function freeAddress(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

/** Sticky-cache hits and misses so far of one task queue's workflow worker, from its process's SDK core metrics. */
async function cacheCounters(address: string, taskQueue: string): Promise<{ hit: number; miss: number }> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const sum = (name: string) => {
    let total = 0;
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (m?.[1] === name && (m[2] ?? '').includes(`task_queue="${taskQueue}"`)) total += Number(m[3]);
    }
    return total;
  };
  return { hit: sum('temporal_sticky_cache_hit'), miss: sum('temporal_sticky_cache_miss') };
}

const SIGNED = values.signed === true;
/** The approver of --signed: a key of its own, which the worker process takes as every tenant's approver `bench`. */
const approverKey = SIGNED ? ed25519KeyPair() : undefined;
const DAG = {
  name: 'bench-parked',
  version: 1,
  cost_cap_usd: 100,
  nodes: [
    { id: 'g', type: 'approval_gate', message: 'go?', ...(SIGNED ? { approvers: ['bench'] } : {}) },
    { id: 'after', type: 'claude', model: MODEL, max_tokens: 16, needs: ['g'], prompt: 'released' },
  ],
};

/** One timed release. */
interface Sample {
  id: string;
  kind: 'orch' | 'bare';
  phase: 'cached' | 'evicted';
  /** Decision sent -> the released node's request at the model server, ms (wall clock; the server is local). */
  start: number;
  /** Decision sent -> the run's result, ms. */
  done: number;
  /** The worker's sticky-cache hits and misses during the release (a miss: the run was replayed). */
  hit: number;
  miss: number;
  /** From the run's history (server timestamps), ms: signal -> the decision's workflow task started, that task, and
   * its completion -> the released activity's request, request -> activity completed, -> run closed; within the task,
   * the time to its first local activity's schedule, that activity's run, and the rest (NaN without one). */
  split: { toTask: number; task: number; toLa: number; la: number; afterLa: number; toNode: number; node: number; toEnd: number };
  /** Local activities (markers) and workflow tasks after the signal. */
  markers: number;
  tasks: number;
}

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

async function main(): Promise<void> {
  const cli = await resolveTemporalCli({ log: say });
  // The SDK core's metrics of this process (the bare workers) and of the Orch worker process: sticky-cache hits and
  // misses tell a cached release from a replayed one. Installed before the first connection of this process.
  const benchMetrics = await freeAddress();
  const orchMetrics = await freeAddress();
  Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: benchMetrics } } } });
  // The Orch worker in a process of its own, so its RSS is the worker's alone.
  const bench = await startBenchWorkers({ cliPath: cli.path, eager: true, prefix: 'orch-bench-parked-', orchWorkerProcess: { sdkDefaults: values['sdk-defaults'] === true, nodeDefaults: values['node-defaults'] === true, metricsAddress: orchMetrics, ...(approverKey ? { approver: `bench:${approverKey.publicKey.toString('hex')}` } : {}), ...(values['max-cached'] ? { maxCachedWorkflows: Number(values['max-cached']) } : {}), ...(values['node-flags'] ? { nodeFlags: values['node-flags'].split(' ').filter(Boolean) } : {}) } });
  // The bare baseline for evicted runs: a plain worker whose cache holds 2 runs (the SDK's least), so a parked bare run
  // is replayed on release like an evicted Orch run.
  const evictingConnection = await NativeConnection.connect({ address: bench.server.address });
  const model = new Anthropic({ apiKey: bench.anthropic.apiKey, baseURL: bench.anthropic.baseURL, maxRetries: 0 });
  const evictingWorker = await Worker.create({
    connection: evictingConnection,
    taskQueue: 'plain-evicted',
    maxCachedWorkflows: 2,
    maxConcurrentWorkflowTaskExecutions: 2,
    workflowsPath: fileURLToPath(new URL('./plain-workflows.ts', import.meta.url)),
    activities: {
      async callModel(prompt: string): Promise<string> {
        const m = await model.messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: prompt }] });
        return m.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
      },
    },
  });
  const evicting = evictingWorker.run();
  try {
    const { client, server, home, anthropic } = bench;
    const workerPid = bench.orchWorkerPid!;
    const idleRss = rssOf(workerPid);
    const idleMem = await bench.orchWorkerMemory!();

    const t0 = performance.now();
    const ids = Array.from({ length: N }, (_, i) => `parked-${i}`);
    for (let i = 0; i < N; i += 50) {
      await Promise.all(ids.slice(i, i + 50).map((workflowId) => client.workflow.start('runDag', { taskQueue: 'bench', workflowId, args: [{ tenant: 'bench', dag: DAG }] })));
    }
    const plainIds = Array.from({ length: SAMPLES }, (_, i) => `plain-parked-${i}`);
    for (const workflowId of plainIds) await client.workflow.start('plainSignalThenActivity', { taskQueue: 'plain', workflowId, args: [] });
    // The evicted bare runs, then 2 more that push them out of their worker's cache of 2.
    const plainEvictedIds = Array.from({ length: SAMPLES }, (_, i) => `plain-evicted-${i}`);
    const plainPushIds = ['plain-push-0', 'plain-push-1'];
    for (const workflowId of [...plainEvictedIds, ...plainPushIds]) {
      const h = await client.workflow.start('plainSignalThenActivity', { taskQueue: 'plain-evicted', workflowId, args: [] });
      // Parked (its first workflow task done) before the next starts, so the cache's order is the start order.
      for (;;) {
        const events = (await h.fetchHistory()).events ?? [];
        if (events.some((e) => e.workflowTaskCompletedEventAttributes)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const waitingQuery = 'OrchTenant = "bench" AND OrchState = "waiting_approval" AND ExecutionStatus = "Running"';
    for (;;) {
      const { count } = await client.workflow.count(waitingQuery);
      if (count >= N) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const parkSeconds = (performance.now() - t0) / 1000;
    const parkedRss = rssOf(workerPid);
    const parkedMem = await bench.orchWorkerMemory!();

    // Listing: the compiled orch CLI (its own process) against the temporal CLI with the same visibility query.
    // As under `orch up`: the dev server of this ORCH_HOME, its HTTP API's port published (orch runs lists through it).
    publishTemporalHttp(home, { address: server.address, httpPort: server.httpPort!, namespace: server.namespace });
    const env = { ...process.env, ORCH_HOME: home, TEMPORAL_ADDRESS: '', ORCH_TEMPORAL_PORT: server.address.split(':')[1] };
    const timed = async (file: string, args: string[]) => {
      const times: number[] = [];
      for (let i = 0; i < 4; i++) {
        const t = performance.now();
        await exec(file, args, { cwd: root, env, maxBuffer: 64 * 1024 * 1024 });
        if (i > 0) times.push(performance.now() - t);
      }
      return median(times) / 1000;
    };
    const orchList = await timed(process.execPath, [path.join(root, 'bin/orch.mjs'), 'runs', '--tenant', 'bench', '--state', 'waiting', '--limit', String(N)]);
    const temporalList = await timed(cli.path, ['workflow', 'list', '--address', server.address, '--query', waitingQuery, '--limit', String(N)]);

    // What a parked run's history holds (what a replay reads and runs through).
    const historySize = async (id: string) => {
      const h = await client.workflow.getHandle(id).fetchHistory();
      return { events: h.events?.length ?? 0, bytes: proto.temporal.api.history.v1.History.encode(h).finish().length };
    };
    const orchHistory = await historySize(ids[N - 1]!);
    const bareHistory = await historySize(plainIds[0]!);

    // One release: the decision sent, timed to the node's request at the model server and to the result; the
    // worker's cache counters before and after; then the run's history split by the server's timestamps.
    const release = async (kind: Sample['kind'], phase: Sample['phase'], id: string): Promise<Sample> => {
      const [metrics, queue] = kind === 'orch' ? [orchMetrics, 'bench'] : [benchMetrics, phase === 'cached' ? 'plain' : 'plain-evicted'];
      const h = client.workflow.getHandle(id);
      // A run to release cached is asked a query first (as `orch approve` asks for the run's status before it sends
      // the decision), which has its worker load it when it is not in its cache; the release then finds it there.
      if (phase === 'cached') await h.query('__temporal_workflow_metadata');
      await anthropic.reset();
      const before = await cacheCounters(metrics, queue);
      // orch approve's part before it sends: the run id (it describes the run) and the signature.
      const signed = kind === 'orch' && approverKey ? signApproval(approverKey, { tenant: 'bench', workflowId: id, runId: (await h.describe()).runId, gate: 'g', decision: 'approve', releaseDigest: releaseDigest([]), comment: '' }) : undefined;
      const wall = Date.now();
      const t = performance.now();
      if (signed) await h.executeUpdate(approveUpdate, { args: [{ gate: 'g', decision: 'approve', approver: 'bench', signed }] });
      else if (kind === 'orch') await h.signal(approveSignal, { gate: 'g', decision: 'approve', approver: 'bench' });
      else await h.signal('go');
      await h.result();
      const done = performance.now() - t;
      const after = await cacheCounters(metrics, queue);
      const request = (await anthropic.messages()).at(-1);
      if (!request) throw new Error(`run ${id}: no request reached the model server`);
      // The server stamps each request as its body is in (`at`, ISO time; test/support/fake-anthropic.ts).
      const nodeAt = Date.parse((request as { at?: string }).at ?? '');
      const events = (await h.fetchHistory()).events ?? [];
      // The decision: the signal, or for an update the workflow task it asked for (the accepted event is written
      // after that task, with its completion).
      let signalIndex = events.findIndex((e) => e.workflowExecutionSignaledEventAttributes);
      if (signalIndex < 0) {
        signalIndex = events.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
        while (signalIndex > 0 && !events[signalIndex]!.workflowTaskScheduledEventAttributes) signalIndex--;
      }
      const after0 = events.slice(signalIndex);
      const at = (e: HistoryEvent | undefined) => (e ? tsToMs(e.eventTime) : NaN);
      const first = (pick: (e: HistoryEvent) => unknown) => after0.find((e) => pick(e));
      const taskStarted = at(first((e) => e.workflowTaskStartedEventAttributes));
      const taskCompleted = at(first((e) => e.workflowTaskCompletedEventAttributes));
      const activityDone = at(first((e) => e.activityTaskCompletedEventAttributes));
      const closed = at(first((e) => e.workflowExecutionCompletedEventAttributes));
      // The decision's local activity (the gate's audit row), from its marker: core stamps it with the time it was
      // scheduled (wall clock) and its completion as the task's start plus its run time.
      const marker = first((e) => e.markerRecordedEventAttributes)?.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
      const la = marker ? (JSON.parse(Buffer.from(marker).toString()) as { complete_time?: { seconds: number; nanos: number }; original_schedule_time?: { seconds: number; nanos: number } }) : {};
      const stamp = (t?: { seconds: number; nanos: number }) => (t ? t.seconds * 1000 + t.nanos / 1e6 : NaN);
      const laRun = stamp(la.complete_time) - taskStarted;
      const laScheduled = stamp(la.original_schedule_time) - taskStarted;
      return {
        id,
        kind,
        phase,
        start: nodeAt - wall,
        done,
        hit: after.hit - before.hit,
        miss: after.miss - before.miss,
        split: { toTask: taskStarted - at(after0[0]), task: taskCompleted - taskStarted, toLa: laScheduled, la: laRun, afterLa: taskCompleted - taskStarted - laScheduled - laRun, toNode: nodeAt - taskCompleted, node: activityDone - nodeAt, toEnd: closed - activityDone },
        markers: after0.filter((e) => e.markerRecordedEventAttributes).length,
        tasks: after0.filter((e) => e.workflowTaskCompletedEventAttributes).length,
      };
    };
    // Cached first (the newest Orch runs, each asked a query first), alternating Orch and bare; then evicted (the oldest
    // Orch runs, which later runs pushed out of the cache; the bare runs of the worker with a cache of 2).
    const samples: Sample[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      samples.push(await release('orch', 'cached', ids[N - 1 - i]!));
      samples.push(await release('bare', 'cached', plainIds[i]!));
    }
    for (let i = 0; i < SAMPLES; i++) {
      samples.push(await release('orch', 'evicted', ids[i]!));
      samples.push(await release('bare', 'evicted', plainEvictedIds[i]!));
    }
    if (values.each) for (const x of samples) say(`${x.kind} ${x.phase} ${x.id}: cache hits ${x.hit}, misses ${x.miss}; starts ${x.start} ms, done ${x.done.toFixed(1)} ms, task ${x.split.task} ms`);
    // Classed by what the worker's counters saw: a release with a cache miss replayed the run.
    const group = (kind: Sample['kind'], replayed: boolean) => samples.filter((x) => x.kind === kind && x.miss > 0 === replayed);
    const misplaced = samples.filter((x) => x.miss > 0 !== (x.phase === 'evicted'));
    const med = (xs: Sample[], f: (x: Sample) => number) => (xs.length ? median(xs.map(f)) : NaN);

    const tuning = (values['sdk-defaults'] ? " (the SDK's default worker options)" : values['max-cached'] ? ` (maxCachedWorkflows ${values['max-cached']})` : '') + (values['node-defaults'] ? " (node's own process settings)" : '') + (values['node-flags'] ? ` (node ${values['node-flags']})` : '');
    benchRow({ bench: 'parked', figure: `worker process RSS with ${N} runs parked${tuning}`, value: parkedRss / 2 ** 20, unit: 'MiB', baseline: 'the same process idle', baselineValue: idleRss / 2 ** 20, ratio: parkedRss / idleRss, goal: '< 300 MB' });
    benchRow({ bench: 'parked', figure: `orch runs --state waiting, ${N} runs`, value: orchList, unit: 's', baseline: '`temporal workflow list`, same query', baselineValue: temporalList, ratio: orchList / temporalList, goal: '< 1 s' });
    for (const replayed of [false, true]) {
      const o = group('orch', replayed);
      const b = group('bare', replayed);
      const state = replayed ? 'evicted, replayed' : 'cached';
      const [oStart, bStart] = [med(o, (x) => x.start), med(b, (x) => x.start)];
      const [od, bd] = [med(o, (x) => x.done), med(b, (x) => x.done)];
      const how = SIGNED ? ', signed update' : '';
      benchRow({ bench: 'parked', figure: `approve${how} -> released node starts (${state})`, value: oStart, unit: 'ms', baseline: `bare signal -> activity starts (${state})`, baselineValue: bStart, ratio: oStart / bStart, goal: '<= 1.5x' });
      benchRow({ bench: 'parked', figure: `approve${how} -> released node done, run ended (${state})`, value: od, unit: 'ms', baseline: `bare signal -> activity done (${state})`, baselineValue: bd, ratio: od / bd });
    }

    say(`\nbench:parked  ${N} runs parked at a gate on one worker (${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? 'unknown CPU'}, load ${os.loadavg()[0]!.toFixed(1)}, Temporal ${cli.version}, eager activity execution on)`);
    say(`parking ${N} runs took ${parkSeconds.toFixed(1)} s`);
    say(`Orch worker process RSS${tuning}: idle ${mib(idleRss)}, with ${N} parked ${mib(parkedRss)} (${(parkedRss / 1e6).toFixed(0)} MB; goal under 300 MB)`);
    // Where the RSS is: the main thread's V8 heap (the activities, the SDK, the plugin) against the rest, which is the
    // workflow thread's V8 heap (the cached runs), the Rust core and the loaded code.
    const parts = (m: OrchWorkerMemory, rss: number) => `main-thread V8 heap ${mib(m.heapTotal)} (${mib(m.heapUsed)} used), external ${mib(m.external)}, the rest (workflow thread, Rust core, code) ${mib(rss - m.heapTotal - m.external)}`;
    say(`  idle: ${parts(idleMem, idleRss)}; with ${N} parked: ${parts(parkedMem, parkedRss)}`);
    say(`orch runs --state waiting --limit ${N}: ${orchList.toFixed(3)} s; temporal workflow list, same query: ${temporalList.toFixed(3)} s (${(orchList / temporalList).toFixed(1)}x; goal under 1 s)`);
    say(`a parked run's history: Orch ${orchHistory.events} events, ${orchHistory.bytes} bytes; bare ${bareHistory.events} events, ${bareHistory.bytes} bytes`);
    say(`release of a parked run (${SIGNED ? "the approve update sent by this process with a statement signed by the gate's approver, as orch approve sends it (its describe and signing before the clock starts)" : 'the approve signal sent by this process, unsigned, to a gate naming no approvers'}; orch approve's own process, keys and status query not included), medians:`);
    const ms = (x: number) => `${x.toFixed(1)} ms`;
    for (const replayed of [false, true]) {
      const o = group('orch', replayed);
      const b = group('bare', replayed);
      const line = (xs: Sample[]) =>
        `starts ${ms(med(xs, (x) => x.start))}, done ${ms(med(xs, (x) => x.done))} (n=${xs.length}; server's split: decision -> task ${ms(med(xs, (x) => x.split.toTask))}, task ${ms(med(xs, (x) => x.split.task))}${xs.some((x) => !Number.isNaN(x.split.la)) ? ` (to its local activity ${ms(med(xs, (x) => x.split.toLa))}, that activity ${ms(med(xs, (x) => x.split.la))}, then ${ms(med(xs, (x) => x.split.afterLa))})` : ''}, -> node's request ${ms(med(xs, (x) => x.split.toNode))}, node ${ms(med(xs, (x) => x.split.node))}, -> run closed ${ms(med(xs, (x) => x.split.toEnd))}; after the decision ${med(xs, (x) => x.tasks)} workflow tasks, ${med(xs, (x) => x.markers)} local activities)`;
      say(`  ${replayed ? 'evicted, replayed on release' : 'cached (no replay)'}:`);
      say(`    Orch: ${line(o)}`);
      say(`    bare: ${line(b)}`);
      say(`    ratio: starts ${(med(o, (x) => x.start) / med(b, (x) => x.start)).toFixed(2)}x (goal within 1.5x), done ${(med(o, (x) => x.done) / med(b, (x) => x.done)).toFixed(2)}x`);
    }
    say(`  the releases picked as cached (the newest Orch runs and the bare runs of a worker with the SDK's cache, each asked a query first) and as evicted (the oldest Orch runs, the bare runs of a worker caching 2): ${misplaced.length === 0 ? 'each one was, by its worker\'s cache counters' : `${misplaced.length} were not, by their worker's cache counters (${misplaced.map((x) => `${x.kind} ${x.phase}`).join(', ')}); classed above by the counters`}`);
    // The runs still parked (a released one is closed: its terminate fails, ignored).
    await Promise.all([...ids, ...plainPushIds].map((id) => client.workflow.getHandle(id).terminate('bench over').catch(() => undefined)));
  } finally {
    evictingWorker.shutdown();
    await evicting;
    await evictingConnection.close();
    await bench.stop();
  }
}

await main();
