/**
 * An Orch worker as a process of its own: for the fault tests that kill it (durability.test.ts) and for
 * `npm run bench:parked`, which measures its RSS alone (bench/support.ts compiles this file with esbuild). Usage:
 *   node --import tsx test/support/worker-process.ts ADDRESS TASK_QUEUE ORCH_HOME BUNDLE_PATH
 *     [--sdk-defaults | --max-cached N] [--tenant T]
 * Tuning: the options `orch up` gives its worker (desktop-worker/worker-tuning.ts); with `--max-cached N` another
 * sticky cache size; with `--sdk-defaults` the SDK's own options (the worker as it ran before that tuning).
 * `--tenant T` creates the tenant T in ORCH_HOME if it is not there. Prints "worker ready" once polling; stops on
 * SIGTERM. Claude settings come from ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL. A line "mem" on its stdin: it answers one
 * line "mem {...}", its process.memoryUsage() and its main thread's V8 heap spaces (bench:parked's breakdown).
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { NativeConnection, Worker } from '@temporalio/worker';
import { orchPlugin } from '../../desktop-worker/plugin';
import { TenantStore } from '../../desktop-worker/tenant-store';
import { orchWorkerTuning } from '../../desktop-worker/worker-tuning';
import { DEFAULT_PRICES } from '../../workflows/prices';

const USAGE = 'usage: worker-process.ts ADDRESS TASK_QUEUE ORCH_HOME BUNDLE_PATH [--sdk-defaults | --max-cached N] [--tenant T]\n';

function usage(): never {
  process.stderr.write(USAGE);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: { 'sdk-defaults': { type: 'boolean' }, 'max-cached': { type: 'string' }, tenant: { type: 'string' } },
  });
} catch {
  usage();
}
const [address, taskQueue, home, bundlePath, ...extra] = parsed.positionals;
const { 'sdk-defaults': sdkDefaults, 'max-cached': maxCachedFlag, tenant } = parsed.values;
const maxCached = maxCachedFlag === undefined ? undefined : /^\d+$/.test(maxCachedFlag) ? Number(maxCachedFlag) : usage();
if (!address || !taskQueue || !home || !bundlePath || extra.length > 0 || (sdkDefaults && maxCached !== undefined)) usage();

const store = new TenantStore(home);
if (tenant !== undefined && !store.exists(tenant)) store.create(tenant);
const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection,
  taskQueue,
  ...(sdkDefaults ? {} : orchWorkerTuning(maxCached)),
  plugins: [
    orchPlugin(
      {
        registry: { loadDag: (t, n) => store.getDag(t, n) },
        prices: () => DEFAULT_PRICES,
        claude: () => ({ apiKey: process.env.ANTHROPIC_API_KEY, baseURL: process.env.ANTHROPIC_BASE_URL }),
        audit: store,
      },
      { workflowBundlePath: bundlePath },
    ),
  ],
});
process.on('SIGTERM', () => worker.shutdown());
// Asked on stdin, not by a signal: the SDK's runtime shuts the worker down on SIGUSR2. The workflow thread's V8 heap
// and the Rust core are in the RSS beyond these.
process.stdin.setEncoding('utf8').on('data', (d: string) => {
  if (!d.includes('mem')) return;
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
  process.stdout.write(`mem ${JSON.stringify({ ...process.memoryUsage(), spaces })}\n`);
});
// A pipe's stream must not keep the process up; stdin from /dev/null (the fault tests) is a file stream, no unref.
(process.stdin as unknown as { unref?: () => void }).unref?.();
const running = worker.run();
process.stdout.write('worker ready\n');
await running;
await connection.close();
store.close();
