/**
 * An Orch worker as its own process, for fault tests that kill it. Usage:
 *   node --import tsx test/support/worker-process.ts ADDRESS TASK_QUEUE ORCH_HOME BUNDLE_PATH
 * Prints "worker ready" once polling. Claude settings come from ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { orchPlugin } from '../../desktop-worker/plugin';
import { TenantStore } from '../../desktop-worker/tenant-store';
import { DEFAULT_PRICES } from '../../workflows/prices';

const [address, taskQueue, home, bundlePath] = process.argv.slice(2);
if (!address || !taskQueue || !home || !bundlePath) {
  process.stderr.write('usage: worker-process.ts ADDRESS TASK_QUEUE ORCH_HOME BUNDLE_PATH\n');
  process.exit(2);
}
const store = new TenantStore(home);
if (!store.exists('t')) store.create('t');
const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection,
  taskQueue,
  plugins: [
    orchPlugin(
      {
        registry: {
          loadDag(tenant, name) {
            const d = store.getDag(tenant, name);
            return { source: d.source, hash: d.hash };
          },
        },
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
