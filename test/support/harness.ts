/**
 * What integration tests share: the suite's real Temporal dev server (started by test/run.ts), a worker with the
 * Orch plugin on a task queue of the test's own, a fresh ORCH_HOME, and unique ids.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { OrchWorker } from '../../desktop-worker/workflow-threads';
import type { ActivityDeps } from '../../activities';
import { orchPlugin } from '../../desktop-worker/plugin';
import { TenantStore } from '../../desktop-worker/tenant-store';
import { DEFAULT_PRICES } from '../../workflows/prices';
import { freeLocalPort } from '../../infra/ports';

export function suiteEnv(): { address: string; bundlePath: string } {
  const address = process.env.ORCH_TEST_TEMPORAL_ADDRESS;
  const bundlePath = process.env.ORCH_TEST_WORKFLOW_BUNDLE;
  if (!address || !bundlePath) {
    throw new Error('integration tests run under `npm test` (test/run.ts starts the Temporal dev server): ORCH_TEST_TEMPORAL_ADDRESS is not set');
  }
  return { address, bundlePath };
}

/**
 * Where test/integration/production-worker.test.ts leaves the production bundle its runs (workflow ids `prod-*`)
 * ran on, in the suite's scratch folder, so the history replay replays them against it.
 */
export const productionBundleForReplay = (workDir: string) => path.join(workDir, 'production-workflow-bundle.js');

/** Tenants every test worker's ORCH_HOME has. */
export const SUITE_TENANTS = ['t', 'engine-test', 'adhoc'];

export const uid = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

export function tempHome(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'orch-home-'));
}

export interface TestWorker {
  taskQueue: string;
  client: Client;
  store: TenantStore;
  home: string;
  stop(): Promise<void>;
}

/** A real worker with the Orch plugin on its own task queue, plus a client (on the suite's server, or `on`). */
export async function startTestWorker(overrides: Partial<ActivityDeps> = {}, home = tempHome(), on?: string): Promise<TestWorker> {
  const suite = suiteEnv();
  const { bundlePath } = suite;
  const address = on ?? suite.address;
  const taskQueue = uid('tq');
  const store = new TenantStore(home);
  const deps: ActivityDeps = {
    registry: {
      loadDag(tenant, name) {
        const d = store.getDag(tenant, name);
        return { source: d.source, hash: d.hash };
      },
    },
    prices: () => DEFAULT_PRICES,
    claude: () => ({}),
    audit: store,
    ...overrides,
  };
  // The tenants the suites' inline runs use: every run writes its audit rows to a real tenant log.
  for (const t of SUITE_TENANTS) if (!store.exists(t)) store.create(t);
  const nativeConnection = await NativeConnection.connect({ address });
  // The worker class orch up uses (its workflow threads without the SDK's per-promise stack capture).
  const worker = await OrchWorker.create({
    connection: nativeConnection,
    taskQueue,
    plugins: [orchPlugin(deps, { workflowBundlePath: bundlePath })],
  });
  const running = worker.run();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  return {
    taskQueue,
    client,
    store,
    home,
    async stop() {
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
      store.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` until it returns a truthy value (or throws after `ms`). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, ms = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

/**
 * A TCP port free on 127.0.0.1 right now, for a server the test starts as its own process: below the kernel's
 * ephemeral range, where no bind(0) in between can take it (infra/ports.ts).
 */
export function freePort(): Promise<number> {
  return freeLocalPort();
}
