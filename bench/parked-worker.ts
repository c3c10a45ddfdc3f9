/**
 * The Orch worker of `npm run bench:parked`, in a process of its own so its RSS is the worker's alone: the Orch
 * plugin with the tuning `orch up` uses (desktop-worker/worker-tuning.ts), or with `--sdk-defaults` the worker as
 * it ran before that tuning, or with MAX_CACHED_WORKFLOWS another cache size. Usage:
 *   node --import tsx bench/parked-worker.ts ADDRESS TASK_QUEUE ORCH_HOME BUNDLE_PATH [--sdk-defaults | MAX_CACHED_WORKFLOWS]
 * Prints "worker ready" once polling; stops on SIGTERM. Claude settings come from ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { orchPlugin } from '../desktop-worker/plugin';
import { TenantStore } from '../desktop-worker/tenant-store';
import { orchWorkerTuning } from '../desktop-worker/worker-tuning';
import { DEFAULT_PRICES } from '../workflows/prices';

const [address, taskQueue, home, bundlePath, flag] = process.argv.slice(2);
const maxCached = /^\d+$/.test(flag ?? '') ? Number(flag) : undefined;
if (!address || !taskQueue || !home || !bundlePath || (flag !== undefined && flag !== '--sdk-defaults' && maxCached === undefined)) {
  process.stderr.write('usage: parked-worker.ts ADDRESS TASK_QUEUE ORCH_HOME BUNDLE_PATH [--sdk-defaults | MAX_CACHED_WORKFLOWS]\n');
  process.exit(2);
}
const store = new TenantStore(home);
const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection,
  taskQueue,
  ...(flag === '--sdk-defaults' ? {} : orchWorkerTuning(maxCached)),
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
const running = worker.run();
process.stdout.write('worker ready\n');
await running;
await connection.close();
store.close();
