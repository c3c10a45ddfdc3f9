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
 * - approve to done: an approve signal to one parked run until that run has finished (the released node's Claude
 *   call and the end row included), for the oldest runs (evicted from the worker's cache, so replayed) and the
 *   newest (cached), beside a bare workflow parked on a signal that then runs one plain activity doing the same call
 *   (signal to done), all with N runs parked.
 * The worker's memory is also split by kind (the worker reports its process.memoryUsage() when asked on stdin).
 * Not a test: it asserts nothing. It takes minutes.
 *
 * Options: --n 1000 (parked runs), --samples 15 (approvals timed; the median is printed), --sdk-defaults, or
 * --max-cached N (the worker's sticky cache size instead of ORCH_MAX_CACHED_WORKFLOWS's default), --node-defaults,
 * --node-flags='--a --b' (more node flags for the worker process alone, e.g. V8 heap settings; the environment passes
 * on).
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { publishTemporalHttp } from '../desktop-worker/run-transport';
import { resolveTemporalCli } from '../infra/temporal-cli';
import { approveSignal } from '../workflows/shared';
import { benchArgs } from './args';
import { benchRow } from './report';
import { BENCH_MODEL as MODEL, median, startBenchWorkers, type OrchWorkerMemory } from './support';

const { values, count } = benchArgs(
  `
npm run bench:parked [-- OPTIONS]   many runs parked at approval gates on one worker (asserts nothing; takes minutes)

  --n N                  parked runs (default 1000)
  --samples N            approvals timed; the median is printed (default 15)
  --sdk-defaults         the worker with the SDK's defaults instead of orch up's options
  --max-cached N         the worker's sticky cache size instead of ORCH_MAX_CACHED_WORKFLOWS's default
  --node-defaults        the worker process without orch up's node flags and MALLOC_ARENA_MAX (bin/up-process.mjs)
  --node-flags='--a --b' more node flags for the worker process alone (the environment, e.g. MALLOC_ARENA_MAX, passes on)
`,
  { n: { type: 'string', default: '1000' }, samples: { type: 'string', default: '15' }, 'sdk-defaults': { type: 'boolean', default: false }, 'max-cached': { type: 'string' }, 'node-defaults': { type: 'boolean', default: false }, 'node-flags': { type: 'string' } },
);
const N = count(values.n, '--n');
const SAMPLES = count(values.samples, '--samples');
if (values['max-cached'] !== undefined) count(values['max-cached'], '--max-cached', { zero: true });
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

const DAG = {
  name: 'bench-parked',
  version: 1,
  cost_cap_usd: 100,
  nodes: [
    { id: 'g', type: 'approval_gate', message: 'go?' },
    { id: 'after', type: 'claude', model: MODEL, max_tokens: 16, needs: ['g'], prompt: 'released' },
  ],
};

async function main(): Promise<void> {
  const cli = await resolveTemporalCli({ log: say });
  // The Orch worker in a process of its own, so its RSS is the worker's alone.
  const bench = await startBenchWorkers({ cliPath: cli.path, eager: true, prefix: 'orch-bench-parked-', orchWorkerProcess: { sdkDefaults: values['sdk-defaults'] === true, nodeDefaults: values['node-defaults'] === true, ...(values['max-cached'] ? { maxCachedWorkflows: Number(values['max-cached']) } : {}), ...(values['node-flags'] ? { nodeFlags: values['node-flags'].split(' ').filter(Boolean) } : {}) } });
  try {
    const { client, server, home } = bench;
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

    // Approve to done, with the others still parked; each sample is a different run. The oldest runs were evicted
    // from the worker's cache (when it is smaller than N) and are replayed from their history on release; the newest
    // are still cached.
    const approve: number[] = [];
    const approveCached: number[] = [];
    const bare: number[] = [];
    const release = async (id: string) => {
      const h = client.workflow.getHandle(id);
      const t = performance.now();
      await h.signal(approveSignal, { gate: 'g', decision: 'approve', approver: 'bench' });
      await h.result();
      return performance.now() - t;
    };
    for (let i = 0; i < SAMPLES; i++) {
      approve.push(await release(ids[i]!));
      approveCached.push(await release(ids[N - 1 - i]!));
      const p = client.workflow.getHandle(plainIds[i]!);
      const t = performance.now();
      await p.signal('go');
      await p.result();
      bare.push(performance.now() - t);
    }
    const tuning = (values['sdk-defaults'] ? " (the SDK's default worker options)" : values['max-cached'] ? ` (maxCachedWorkflows ${values['max-cached']})` : '') + (values['node-defaults'] ? " (node's own process settings)" : '') + (values['node-flags'] ? ` (node ${values['node-flags']})` : '');
    const a = median(approve);
    const ac = median(approveCached);
    const b = median(bare);
    benchRow({ bench: 'parked', figure: `worker process RSS with ${N} runs parked${tuning}`, value: parkedRss / 2 ** 20, unit: 'MiB', baseline: 'the same process idle', baselineValue: idleRss / 2 ** 20, ratio: parkedRss / idleRss, goal: '< 300 MB' });
    benchRow({ bench: 'parked', figure: `orch runs --state waiting, ${N} runs`, value: orchList, unit: 's', baseline: '`temporal workflow list`, same query', baselineValue: temporalList, ratio: orchList / temporalList, goal: '< 1 s' });
    benchRow({ bench: 'parked', figure: 'approve -> released node done (oldest runs)', value: a, unit: 'ms', baseline: 'bare signal -> activity done', baselineValue: b, ratio: a / b, goal: '<= 1.5x' });
    benchRow({ bench: 'parked', figure: 'approve -> released node done (newest runs)', value: ac, unit: 'ms', baseline: 'bare signal -> activity done', baselineValue: b, ratio: ac / b, goal: '<= 1.5x' });
    say(`\nbench:parked  ${N} runs parked at a gate on one worker (${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? 'unknown CPU'}, load ${os.loadavg()[0]!.toFixed(1)}, Temporal ${cli.version}, eager activity execution on)`);
    say(`parking ${N} runs took ${parkSeconds.toFixed(1)} s`);
    say(`Orch worker process RSS${tuning}: idle ${mib(idleRss)}, with ${N} parked ${mib(parkedRss)} (${(parkedRss / 1e6).toFixed(0)} MB; goal under 300 MB)`);
    // Where the RSS is: the main thread's V8 heap (the activities, the SDK, the plugin) against the rest, which is the
    // workflow thread's V8 heap (the cached runs), the Rust core and the loaded code.
    const parts = (m: OrchWorkerMemory, rss: number) => `main-thread V8 heap ${mib(m.heapTotal)} (${mib(m.heapUsed)} used), external ${mib(m.external)}, the rest (workflow thread, Rust core, code) ${mib(rss - m.heapTotal - m.external)}`;
    say(`  idle: ${parts(idleMem, idleRss)}; with ${N} parked: ${parts(parkedMem, parkedRss)}`);
    say(`orch runs --state waiting --limit ${N}: ${orchList.toFixed(3)} s; temporal workflow list, same query: ${temporalList.toFixed(3)} s (${(orchList / temporalList).toFixed(1)}x; goal under 1 s)`);
    say(`approve -> released node done, the oldest runs (evicted from the worker's cache when it is smaller than N, so replayed): ${a.toFixed(1)} ms; the newest runs (cached): ${ac.toFixed(1)} ms; bare signal -> activity done: ${b.toFixed(1)} ms (${(a / b).toFixed(2)}x and ${(ac / b).toFixed(2)}x; goal within 1.5x), medians of ${SAMPLES}`);
    await Promise.all(ids.slice(SAMPLES).map((id) => client.workflow.getHandle(id).terminate('bench over').catch(() => undefined)));
  } finally {
    await bench.stop();
  }
}

await main();
