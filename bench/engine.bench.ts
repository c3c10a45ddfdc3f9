/**
 * `npm run bench:engine`: what the DAG interpreter costs per node. The same N Claude calls (against the local
 * Anthropic-protocol server) run as a DAG (`runDag`) and as a hand-written workflow using Orch's API, in a chain
 * and in a wide fan-out, on the same real Temporal dev server in the same run. Prints both and the ratio.
 * Target: the DAG within 1.15x of the hand-written workflow. Not a test: it asserts nothing.
 *
 * Options: --n 200 (nodes), --rounds 3 (each measurement is the median of the rounds), --shape chain,fanout.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { resolveTemporalCli } from '../infra/temporal-cli';
import { startDevServer } from '../desktop-worker/dev-server';
import { orchPlugin } from '../desktop-worker/plugin';
import { TenantStore } from '../desktop-worker/tenant-store';
import { DEFAULT_PRICES } from '../workflows/prices';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/shared';
import { startFakeAnthropic } from '../test/support/anthropic';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '200' }, rounds: { type: 'string', default: '3' }, shape: { type: 'string', default: 'chain,fanout' } },
});
const N = Number(values.n);
const ROUNDS = Number(values.rounds);
const MODEL = 'claude-haiku-4-5';
const say = (l: string) => process.stdout.write(`${l}\n`);

function dagOf(shape: 'chain' | 'fanout') {
  return {
    name: `bench-${shape}`,
    version: 1,
    cost_cap_usd: 100,
    nodes: Array.from({ length: N }, (_, i) => ({
      id: `n${i}`,
      type: 'claude',
      model: MODEL,
      max_tokens: 16,
      prompt: `node ${i}`,
      ...(shape === 'chain' && i > 0 ? { needs: [`n${i - 1}`] } : {}),
    })),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-bench-'));
  const cli = await resolveTemporalCli({ log: say });
  const server = await startDevServer({ cliPath: cli.path, port: 0, headless: true, searchAttributes: SEARCH_ATTRIBUTE_TYPES, logFile: path.join(work, 'temporal.log') });
  const anthropic = await startFakeAnthropic();
  const store = new TenantStore(path.join(work, 'home'));
  store.create('bench');
  try {
    const bundle = await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./bench-workflows.ts', import.meta.url)), logger: undefined });
    const bundlePath = path.join(work, 'bundle.js');
    fs.writeFileSync(bundlePath, bundle.code);
    const nc = await NativeConnection.connect({ address: server.address });
    const taskQueue = 'bench';
    const worker = await Worker.create({
      connection: nc,
      taskQueue,
      maxConcurrentActivityTaskExecutions: 200,
      plugins: [
        orchPlugin(
          {
            registry: { loadDag: (t, n) => store.getDag(t, n) },
            prices: () => DEFAULT_PRICES,
            claude: () => ({ apiKey: anthropic.apiKey, baseURL: anthropic.baseURL }),
            audit: store,
          },
          { workflowBundlePath: bundlePath },
        ),
      ],
    });
    const running = worker.run();
    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    let id = 0;
    const time = async (type: string, arg: unknown) => {
      const t0 = performance.now();
      await client.workflow.execute(type, { taskQueue, workflowId: `bench-${id++}`, args: [arg] });
      return performance.now() - t0;
    };
    say(`\nbench:engine  N=${N} Claude nodes, median of ${ROUNDS} rounds, Temporal dev server ${cli.version}`);
    say('shape    hand-written (ms)   DAG (ms)   per node: hand / DAG (ms)   ratio DAG/hand');
    // Warm-up: the first workflow pays for the worker's V8 context and connections.
    await time('handWritten', { tenant: 'bench', n: 5, shape: 'chain', model: MODEL });
    for (const shape of String(values.shape).split(',') as Array<'chain' | 'fanout'>) {
      const hand: number[] = [];
      const dag: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        // Alternate the order so neither side always runs on a warmer server.
        if (r % 2 === 0) {
          hand.push(await time('handWritten', { tenant: 'bench', n: N, shape, model: MODEL }));
          dag.push(await time('runDag', { tenant: 'bench', dag: dagOf(shape) }));
        } else {
          dag.push(await time('runDag', { tenant: 'bench', dag: dagOf(shape) }));
          hand.push(await time('handWritten', { tenant: 'bench', n: N, shape, model: MODEL }));
        }
      }
      const h = median(hand);
      const d = median(dag);
      say(`${shape.padEnd(8)} ${h.toFixed(0).padStart(17)} ${d.toFixed(0).padStart(10)}   ${(h / N).toFixed(2).padStart(10)} / ${(d / N).toFixed(2).padEnd(14)} ${(d / h).toFixed(3)}x ${d / h <= 1.15 ? '(within 1.15x)' : '(over the 1.15x target)'}`);
    }
    worker.shutdown();
    await running;
    await nc.close();
    await connection.close();
  } finally {
    store.close();
    await anthropic.stop();
    await server.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
