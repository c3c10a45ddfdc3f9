/**
 * `npm run bench:engine`: what Orch costs per node, against what users would compare it with. The same N steps in a
 * chain and in a wide fan-out, on one real Temporal dev server, measured in the same run, for two kinds of node:
 * Claude nodes (each one Messages API call to the local Anthropic-protocol server) and command nodes (each one
 * sealed `echo` to a real Go agent behind the desktop's transport, over a pipe: bench/support.ts). Per kind:
 * - plain Temporal: a plain workflow with plain activities doing the same call, no Orch (bench/plain-workflows.ts):
 *   the baseline;
 * - the floor: the same as local activities (no activity task round trip through the server);
 * - Orch, hand-written: a workflow using Orch's API (claude() or command() under runOrch);
 * - Orch, DAG: the same N nodes as a DAG (`runDag`).
 * With `--eager both` (default) it runs everything twice, on a dev server without and with
 * `system.enableActivityEagerExecution` (which `orch up` turns on), to show what that setting buys.
 * Not a test: it asserts nothing.
 *
 * Options: --n 200 (steps), --rounds 3 (each figure is the median of the rounds), --shape chain,fanout,
 * --node claude,command, --eager both|on|off, --breakdown (where a chained step's time goes, from one run's event
 * times).
 */
import { resolveTemporalCli } from '../infra/temporal-cli';
import { benchArgs } from './args';
import { benchRow } from './report';
import { BENCH_AGENT, BENCH_MODEL as MODEL, median, startBenchWorkers } from './support';

const USAGE = `
npm run bench:engine [-- OPTIONS]   what Orch costs per node against plain Temporal, in one run (asserts nothing)

  --n N             steps per run (default 200)
  --rounds R        each figure is the median of R rounds (default 3)
  --shape LIST      chain, fanout or both (default chain,fanout)
  --node LIST       claude, command or both (default claude,command)
  --eager MODE      dev server without (off), with (on) eager activity execution, or both in turn (default both)
  --breakdown       where a chained step's time goes (workflow tasks, activities, server)
`;
const { values, count, list, usageError } = benchArgs(USAGE, {
  n: { type: 'string', default: '200' },
  rounds: { type: 'string', default: '3' },
  shape: { type: 'string', default: 'chain,fanout' },
  eager: { type: 'string', default: 'both' },
  breakdown: { type: 'boolean', default: false },
  node: { type: 'string', default: 'claude,command' },
});
const N = count(values.n, '--n');
const ROUNDS = count(values.rounds, '--rounds');
if (!['on', 'off', 'both'].includes(values.eager)) usageError(`--eager takes on, off or both, not "${values.eager}"`);
const SHAPES = list(values.shape, '--shape', ['chain', 'fanout'] as const);
const say = (l: string) => process.stdout.write(`${l}\n`);

type NodeKind = 'claude' | 'command';
const KINDS: NodeKind[] = list(values.node, '--node', ['claude', 'command'] as const);

function dagOf(shape: 'chain' | 'fanout', kind: NodeKind) {
  return {
    name: `bench-${kind}-${shape}`,
    version: 1,
    cost_cap_usd: 100,
    nodes: Array.from({ length: N }, (_, i) => ({
      id: `n${i}`,
      ...(kind === 'claude'
        ? { type: 'claude', model: MODEL, max_tokens: 16, prompt: `node ${i}` }
        : { type: 'command', agent: BENCH_AGENT, argv: ['echo', `node ${i}`] }),
      ...(shape === 'chain' && i > 0 ? { needs: [`n${i - 1}`] } : {}),
    })),
  };
}

type Shape = 'chain' | 'fanout';
const VARIANTS = ['plain', 'floor', 'hand', 'dag'] as const;
type Variant = (typeof VARIANTS)[number];

async function measure(eager: boolean, cliPath: string, cliVersion: string): Promise<void> {
  const bench = await startBenchWorkers({ cliPath, eager, concurrency: 200, prefix: 'orch-bench-', agent: KINDS.includes('command') });
  try {
    const { client } = bench;
    let id = 0;
    const last = new Map<string, string>();
    const time = async (taskQueue: string, type: string, arg: unknown) => {
      const t0 = performance.now();
      const workflowId = `bench-${id++}`;
      await client.workflow.execute(type, { taskQueue, workflowId, args: [arg] });
      last.set(type, workflowId);
      return performance.now() - t0;
    };
    // Where a step's time goes, from the server's event times of one run: inside workflow tasks (the worker's workflow
    // code and its local activities), inside activities (from started to completed), and the rest (the server and
    // the task queues between them).
    const breakdown = async (type: string): Promise<string> => {
      const workflowId = last.get(type);
      if (!workflowId) return '';
      const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
      const ms = (e: (typeof events)[number]) => Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
      let wft = 0;
      let act = 0;
      let wftStart = 0;
      let actStart = 0;
      let markers = 0;
      for (const e of events) {
        if (e.workflowTaskStartedEventAttributes) wftStart = ms(e);
        if (e.workflowTaskCompletedEventAttributes) wft += ms(e) - wftStart;
        if (e.activityTaskStartedEventAttributes) actStart = ms(e);
        if (e.activityTaskCompletedEventAttributes) act += ms(e) - actStart;
        if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity') markers++;
      }
      const total = ms(events[events.length - 1]!) - ms(events[0]!);
      const f = (x: number) => (x / N).toFixed(1).padStart(6);
      return `total ${f(total)}  in workflow tasks ${f(wft)}  in activities ${f(act)}  server and queues ${f(total - wft - act)}  local activities ${(markers / N).toFixed(1)}`;
    };
    const run = (variant: Variant, shape: Shape, kind: NodeKind, n = N) => {
      const command = kind === 'command';
      switch (variant) {
        case 'plain':
          return time('plain', command ? 'plainCommands' : 'plainActivities', { n, shape });
        case 'floor':
          return time('plain', command ? 'plainLocalCommands' : 'plainLocalActivities', { n, shape });
        case 'hand':
          return time('bench', 'handWritten', { tenant: 'bench', n, shape, model: MODEL, node: kind, agent: BENCH_AGENT });
        case 'dag':
          return time('bench', 'runDag', { tenant: 'bench', dag: dagOf(shape, kind) });
      }
    };
    say(`\nbench:engine  N=${N} steps, median of ${ROUNDS} rounds, Temporal dev server ${cliVersion}, activity eager execution ${eager ? 'ON' : 'off'}`);
    say('nodes    shape    per step (ms): plain   floor    Orch hand   Orch DAG    DAG/plain   DAG/floor   DAG/hand');
    // Warm-up: the first workflows pay for the workers' V8 contexts and connections.
    for (const kind of KINDS) for (const v of VARIANTS) if (v !== 'dag') await run(v, 'chain', kind, 5);
    for (const kind of KINDS) {
      for (const shape of SHAPES) {
        const times: Record<Variant, number[]> = { plain: [], floor: [], hand: [], dag: [] };
        for (let r = 0; r < ROUNDS; r++) {
          // Rotate the order so no variant always runs on a warmer server.
          const order = [...VARIANTS.slice(r % VARIANTS.length), ...VARIANTS.slice(0, r % VARIANTS.length)];
          for (const v of order) times[v].push(await run(v, shape, kind));
        }
        const per = (v: Variant) => median(times[v]) / N;
        const [p, f, h, d] = VARIANTS.map(per) as [number, number, number, number];
        const ratio = (x: number) => `${x.toFixed(2)}x`.padStart(10);
        const base = { bench: 'engine', unit: 'ms/step', value: d };
        // Claude rows keep the names they had before command rows were added, so tables of earlier runs line up.
        const figure = `${shape}${kind === 'command' ? ' of command nodes' : ''}, N=${N}, eager ${eager ? 'on' : 'off'}: Orch DAG per step`;
        benchRow({ ...base, figure, baseline: 'plain Temporal workflow, plain activities', baselineValue: p, ratio: d / p, goal: '<= 1.1x' });
        benchRow({ ...base, figure, baseline: 'local-activity floor', baselineValue: f, ratio: d / f, goal: '<= 2x floor + own work' });
        say(`${kind.padEnd(8)} ${shape.padEnd(8)} ${p.toFixed(2).padStart(19)} ${f.toFixed(2).padStart(7)} ${h.toFixed(2).padStart(12)} ${d.toFixed(2).padStart(10)} ${ratio(d / p)}  ${ratio(d / f)}  ${ratio(d / h)}`);
        if (values.breakdown && shape === 'chain') {
          const types = kind === 'command' ? (['plainCommands', 'plainLocalCommands'] as const) : (['plainActivities', 'plainLocalActivities'] as const);
          for (const [name, type] of [['plain', types[0]], ['floor', types[1]], ['Orch hand', 'handWritten'], ['Orch DAG', 'runDag']] as const) {
            say(`  ${name.padEnd(10)} per step (ms, one run's event times): ${await breakdown(type)}`);
          }
        }
      }
    }
  } finally {
    await bench.stop();
  }
}

async function main(): Promise<void> {
  const cli = await resolveTemporalCli({ log: say });
  const modes = values.eager === 'both' ? [false, true] : [values.eager === 'on'];
  for (const eager of modes) await measure(eager, cli.path, cli.version);
  say('\nTargets (issue 11): DAG/plain at most 1.1x; a chained node within 2x of the floor plus its own work.');
}

await main();
