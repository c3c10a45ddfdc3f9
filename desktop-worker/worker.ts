/**
 * The Orch worker: a Temporal Worker with the Orch plugin, wired to the tenant databases and the operator's
 * configuration.
 */
import { NativeConnection, Worker, type NativeConnectionOptions } from '@temporalio/worker';
import type { ActivityDeps, CommandTransport } from '../activities';
import { loadPrices, type OrchConfig } from './config';
import { orchPlugin } from './plugin';
import { TenantStore } from './tenant-store';

export function workerDeps(config: OrchConfig, store: TenantStore, commands?: CommandTransport): ActivityDeps {
  return {
    commands,
    registry: {
      loadDag(tenant, name) {
        const dag = store.getDag(tenant, name);
        return { source: dag.source, hash: dag.hash };
      },
    },
    // Read at each run's start (recorded in its history), so a price edit applies to new runs only.
    prices: () => loadPrices(config.pricesFile),
    claude: () => config.anthropic,
    audit: store,
  };
}

export interface StartedWorker {
  worker: Worker;
  connection: NativeConnection;
  /** Resolves when the worker has stopped. */
  running: Promise<void>;
  stop(): Promise<void>;
}

export async function startOrchWorker(
  config: OrchConfig,
  connectionOptions: NativeConnectionOptions,
  namespace: string,
  store: TenantStore,
  commands?: CommandTransport,
): Promise<StartedWorker> {
  const connection = await NativeConnection.connect(connectionOptions);
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: config.taskQueue,
    plugins: [orchPlugin(workerDeps(config, store, commands), { workflowBundlePath: config.workflowBundle })],
  });
  const running = worker.run().finally(async () => {
    store.close();
    await connection.close();
  });
  return {
    worker,
    connection,
    running,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
