/**
 * The Orch worker: a Temporal Worker with the Orch plugin, wired to the tenant databases and the operator's
 * configuration.
 */
import type { PayloadCodec } from '@temporalio/common';
import { NativeConnection, Worker, type NativeConnectionOptions } from '@temporalio/worker';
import type { ActivityDeps, CommandTransport } from '../activities';
import type { GateContext } from '../activities/types';
import { AgentRegistry, servesTenant } from './agent-registry';
import { listApprovers } from './approvers';
import { loadPrices, type OrchConfig } from './config';
import { readSignedWorkflowBundle } from './dag-signing';
import { orchPlugin } from './plugin';
import { TenantStore } from './tenant-store';
import { orchWorkerTuning } from './worker-tuning';
import { OrchWorker } from './workflow-threads';

/** The tenant's approver keys, this desktop's key and the tiers of the tenant's agents, for checking approvals. */
export function gateContextOf(home: string, store: TenantStore, tenant: string): GateContext {
  const approvers = listApprovers(tenant, { store }).map((a) => ({ name: a.name, key: a.key }));
  const agentTiers: Record<string, string> = {};
  const registry = AgentRegistry.open(home);
  try {
    for (const a of registry.list()) if (servesTenant(a, tenant)) agentTiers[a.name] = a.tier;
  } finally {
    registry.close();
  }
  return { approvers, desktopKey: store.trustedPublicKey?.toString('hex') ?? null, agentTiers };
}

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
    gateContext: (tenant) => gateContextOf(config.home, store, tenant),
  };
}

export interface StartedWorker {
  worker: Worker;
  connection: NativeConnection;
  /** Resolves when the worker has stopped. */
  running: Promise<void>;
  stop(): Promise<void>;
}

/** A worker created (registered with Temporal) but not yet polling: `orch up` starts it once every part is up. */
export interface CreatedWorker {
  worker: Worker;
  connection: NativeConnection;
  /** Starts polling. */
  start(): StartedWorker;
  /** Never started: closes the tenant store and, where the SDK lets it, the connection. */
  close(): Promise<void>;
}

/** createOrchWorker's worker, polling. */
export async function startOrchWorker(...args: Parameters<typeof createOrchWorker>): Promise<StartedWorker> {
  return (await createOrchWorker(...args)).start();
}

/**
 * The Orch worker, created (registered with Temporal) but not polling. `workerClass`: the Worker class to create it
 * with (`orch up` passes early-workflow-threads.ts's, which takes over workflow threads started while the dev server
 * started).
 */
export async function createOrchWorker(
  config: OrchConfig,
  connectionOptions: NativeConnectionOptions,
  namespace: string,
  store: TenantStore,
  commands?: CommandTransport,
  /** Encrypts payloads and failure messages (desktop-worker/payload-codec.ts); `orch up` always passes it. */
  payloadCodec?: PayloadCodec,
  /**
   * Orch's production workflows module already bundled, with the encrypting failure converter
   * (workflow-bundle-cache.ts: `orch up` reuses it while its sources are unchanged); without it the worker bundles.
   */
  productionBundleCode?: string,
  workerClass: typeof Worker = OrchWorker,
): Promise<CreatedWorker> {
  // Only Orch's production workflows module (registered, signed DAGs), or a prebundled file that this desktop
  // signed (`npm run build`): checked before connecting, so a bad bundle stops the start with one clear error.
  const workflows = config.workflowBundle
    ? { workflowBundleCode: readSignedWorkflowBundle(config.workflowBundle, store.trustedPublicKey) }
    : productionBundleCode !== undefined
      ? { workflowBundleCode: productionBundleCode }
      : {};
  const connection = await NativeConnection.connect(connectionOptions);
  let worker: Worker;
  try {
    worker = await workerClass.create({
      connection,
      namespace,
      taskQueue: config.taskQueue,
      ...orchWorkerTuning(config.maxCachedWorkflows),
      plugins: [orchPlugin(workerDeps(config, store, commands), { ...workflows, ...(payloadCodec ? { payloadCodec } : {}) })],
    });
  } catch (err) {
    await connection.close();
    throw err;
  }
  return {
    worker,
    connection,
    start() {
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
    },
    async close() {
      store.close();
      // The SDK keeps a created worker's hold on its connection until the worker has run: then the connection stays
      // open until the process exits (`orch up` exits after a failed start).
      await connection.close().catch(() => undefined);
    },
  };
}
