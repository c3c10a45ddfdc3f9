/**
 * `npm run bench:parked`: many runs parked at approval gates on one worker (issue 11). On one real Temporal dev
 * server (eager activity execution on, as `orch up` runs it), it starts N runs of a DAG whose gate releases one Claude
 * node (the local Anthropic-protocol server), waits until all N wait at their gate, and prints:
 * - the bench process's RSS (it holds the Orch worker, the plain worker and the client) idle and with N parked;
 * - `orch runs --state waiting --limit N` listing them (the compiled CLI, a process of its own), beside
 *   `temporal workflow list` with the same query;
 * - approve to done: an approve signal to one parked run until that run has finished (the released node's Claude
 *   call and the end row included), beside a bare workflow parked on a signal that then runs one plain activity
 *   doing the same call (signal to done), both with N runs parked.
 * Not a test: it asserts nothing. It takes minutes.
 *
 * Options: --n 1000 (parked runs), --samples 15 (approvals timed; the median is printed).
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify, parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { resolveTemporalCli } from '../infra/temporal-cli';
import { approveSignal } from '../workflows/shared';
import { benchRow } from './report';
import { BENCH_MODEL as MODEL, median, startBenchWorkers } from './support';

const { values } = parseArgs({ options: { n: { type: 'string', default: '1000' }, samples: { type: 'string', default: '15' } } });
const N = Number(values.n);
const SAMPLES = Number(values.samples);
const root = fileURLToPath(new URL('..', import.meta.url));
const exec = promisify(execFile);
const say = (l: string) => process.stdout.write(`${l}\n`);
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;

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
  const bench = await startBenchWorkers({ cliPath: cli.path, eager: true, prefix: 'orch-bench-parked-' });
  try {
    const { client, server, home } = bench;
    const idleRss = process.memoryUsage().rss;

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
    const parkedRss = process.memoryUsage().rss;

    // Listing: the compiled orch CLI (its own process) against the temporal CLI with the same visibility query.
    const env = { ...process.env, ORCH_HOME: home, TEMPORAL_ADDRESS: server.address };
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

    // Approve to done, with the others still parked; each sample is a different run.
    const approve: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const h = client.workflow.getHandle(ids[i]!);
      let t = performance.now();
      await h.signal(approveSignal, { gate: 'g', decision: 'approve', approver: 'bench' });
      await h.result();
      approve.push(performance.now() - t);
      const p = client.workflow.getHandle(plainIds[i]!);
      t = performance.now();
      await p.signal('go');
      await p.result();
      bare.push(performance.now() - t);
    }
    const a = median(approve);
    const b = median(bare);
    benchRow({ bench: 'parked', figure: `bench process RSS with ${N} runs parked`, value: parkedRss / 2 ** 20, unit: 'MiB', baseline: 'the same process idle', baselineValue: idleRss / 2 ** 20, ratio: parkedRss / idleRss, goal: 'worker < 300 MB' });
    benchRow({ bench: 'parked', figure: `orch runs --state waiting, ${N} runs`, value: orchList, unit: 's', baseline: '`temporal workflow list`, same query', baselineValue: temporalList, ratio: orchList / temporalList, goal: '< 1 s' });
    benchRow({ bench: 'parked', figure: 'approve -> released node done', value: a, unit: 'ms', baseline: 'bare signal -> activity done', baselineValue: b, ratio: a / b, goal: '<= 1.5x' });
    say(`\nbench:parked  ${N} runs parked at a gate on one worker (${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? 'unknown CPU'}, load ${os.loadavg()[0]!.toFixed(1)}, Temporal ${cli.version}, eager activity execution on)`);
    say(`parking ${N} runs took ${parkSeconds.toFixed(1)} s`);
    say(`bench process RSS (Orch worker, plain worker, client): idle ${mib(idleRss)}, with ${N} parked ${mib(parkedRss)} (goal for the worker: under 300 MB)`);
    say(`orch runs --state waiting --limit ${N}: ${orchList.toFixed(3)} s; temporal workflow list, same query: ${temporalList.toFixed(3)} s (${(orchList / temporalList).toFixed(1)}x; goal under 1 s)`);
    say(`approve -> released node done: ${a.toFixed(1)} ms; bare signal -> activity done: ${b.toFixed(1)} ms (${(a / b).toFixed(2)}x; goal within 1.5x), median of ${SAMPLES}`);
    await Promise.all(ids.slice(SAMPLES).map((id) => client.workflow.getHandle(id).terminate('bench over').catch(() => undefined)));
  } finally {
    await bench.stop();
  }
}

await main();
