/**
 * Runs a Temporal Worker for a moment with the logging `orch up` installs (desktop-worker/worker-log.ts), in a
 * process of its own (the Runtime is process-wide and can be installed once): test/integration/logging.test.ts
 * reads the worker.log it leaves.
 *
 *   node --import tsx test/support/sdk-log-probe.ts ORCH_HOME TEMPORAL_ADDRESS TASK_QUEUE
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { installWorkerLogging } from '../../desktop-worker/worker-log';

const [home, address, taskQueue] = process.argv.slice(2);
if (!home || !address || !taskQueue) {
  console.error('usage: sdk-log-probe.ts ORCH_HOME TEMPORAL_ADDRESS TASK_QUEUE');
  process.exit(2);
}
const log = installWorkerLogging(home);
const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({ connection, taskQueue, activities: { probe: async () => 'ok' } });
await worker.runUntil(new Promise((resolve) => setTimeout(resolve, 1500)));
await connection.close();
log.info({ event: 'probe_done' });
