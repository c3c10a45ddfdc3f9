/**
 * The production worker (startOrchWorker, what `orch up` runs) runs only DAGs the desktop key signed: the inline
 * `runDag` and the example `restartWithReview` are not registered there (starting them reaches the registered-DAG
 * workflow, which finds no such signed DAG), and a prebundled workflow file (ORCH_WORKFLOW_BUNDLE) loads only with
 * the desktop's signature over its exact bytes (`npm run build`, run for real against the OS keychain). Real dev
 * server, real worker, a local Anthropic-protocol server that must see no request from anything refused.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ed25519CheckpointSigner } from '../../protocol/audit-chain';
import { ed25519KeyPair } from '../../protocol/primitives';
import { loadConfig } from '../../desktop-worker/config';
import { loadOrCreateDesktopIdentity, removeDesktopIdentity } from '../../desktop-worker/identity';
import { openTenantStore } from '../../desktop-worker/tenant-access';
import { WORKFLOW_BUNDLE_INVALID, signWorkflowBundle, workflowBundleSignaturePath } from '../../desktop-worker/dag-signing';
import { TenantStore } from '../../desktop-worker/tenant-store';
import { startOrchWorker, type StartedWorker } from '../../desktop-worker/worker';
import { workflowBundle } from '../../desktop-worker/workflow-bundle-cache';
import { orchCacheDir } from '../../infra/paths';
import { OrchError } from '../../protocol/errors';
import { startFakeAnthropic, type FakeAnthropic } from '../support/anthropic';
import { productionBundleForReplay, suiteEnv, tempHome, uid } from '../support/harness';

const TENANT = 'prod';
const home = tempHome();
const desktop = ed25519CheckpointSigner(ed25519KeyPair());
let anthropic: FakeAnthropic;
let connection: Connection;
let client: Client;
let productionCode: Buffer;

beforeAll(async () => {
  anthropic = await startFakeAnthropic();
  connection = await Connection.connect({ address: suiteEnv().address });
  client = new Client({ connection });
  const store = new TenantStore(home, { signer: desktop });
  store.create(TENANT);
  store.close();
  // What `npm run build` bundles and `orch up` runs: Orch's production workflows module with the encrypting failure
  // converter, from the one bundling path (reused while the sources are unchanged).
  productionCode = Buffer.from((await workflowBundle({ cacheRoot: orchCacheDir() })).code, 'utf8');
  // The suite's last file replays this file's runs (workflow ids prod-*) against the bundle they ran on.
  if (process.env.ORCH_TEST_WORK_DIR) fs.writeFileSync(productionBundleForReplay(process.env.ORCH_TEST_WORK_DIR), productionCode);
});

afterAll(async () => {
  await connection?.close();
  await anthropic?.stop();
});

const claudeDag = (name: string, marker: string) => ({
  name,
  version: 1,
  cost_cap_usd: 0.5,
  nodes: [{ id: 'ask', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 20, prompt: `${marker} say hi` }],
});

async function startProduction(bundle?: string, opened?: { home: string; store: TenantStore }): Promise<{ worker: StartedWorker; taskQueue: string }> {
  const taskQueue = uid('prod-tq');
  const config = loadConfig({
    ORCH_HOME: opened?.home ?? home,
    ORCH_TASK_QUEUE: taskQueue,
    TEMPORAL_ADDRESS: suiteEnv().address,
    ANTHROPIC_API_KEY: anthropic.apiKey,
    ANTHROPIC_BASE_URL: anthropic.baseURL,
    ...(bundle ? { ORCH_WORKFLOW_BUNDLE: bundle } : {}),
  });
  const store = opened?.store ?? new TenantStore(home, { signer: desktop });
  try {
    return { worker: await startOrchWorker(config, { address: suiteEnv().address }, 'default', store), taskQueue };
  } catch (err) {
    store.close();
    throw err;
  }
}

/** Runs `node ARGS` from the repository root. */
function node(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** The failure type of a run, or undefined when it succeeded. */
async function outcome(taskQueue: string, workflowType: string, input: unknown): Promise<string | undefined> {
  const handle = await client.workflow.start(workflowType, { taskQueue, workflowId: uid('prod'), args: [input] });
  try {
    await handle.result();
    return undefined;
  } catch (err) {
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
    return err.cause.type ?? undefined;
  }
}

/** Billable Claude calls, or with `any` every request (token counts too), whose prompt holds `marker`. */
async function claudeCallsWith(marker: string, any = false): Promise<number> {
  return (await (any ? anthropic.requests() : anthropic.messages())).filter((r) => r.prompt.includes(marker)).length;
}

/** Registers a signed DAG, runs it (it must reach Claude), then tries the unsigned ways in: all must be refused. */
async function checkOnlySignedRun(taskQueue: string, register?: (dag: ReturnType<typeof claudeDag>) => void): Promise<void> {
  const name = uid('signed');
  const signedMarker = uid('signed-m');
  if (register) register(claudeDag(name, signedMarker));
  else {
    const store = new TenantStore(home, { signer: desktop });
    store.registerDag(TENANT, claudeDag(name, signedMarker), 'v1');
    store.close();
  }
  assert.equal(await outcome(taskQueue, name, { tenant: TENANT }), undefined, 'the control: a signed DAG runs on this worker');
  assert.equal(await claudeCallsWith(signedMarker), 1);

  const inlineMarker = uid('inline-m');
  assert.equal(await outcome(taskQueue, 'runDag', { tenant: TENANT, dag: claudeDag(uid('inline'), inlineMarker) }), 'unknown_dag');
  const exampleMarker = uid('example-m');
  assert.equal(
    await outcome(taskQueue, 'restartWithReview', { tenant: TENANT, agent: 'nowhere', service: 'api', statusText: exampleMarker }),
    'unknown_dag',
  );
  assert.equal(await claudeCallsWith(inlineMarker, true), 0, 'an inline DAG reached Claude');
  assert.equal(await claudeCallsWith(exampleMarker, true), 0, 'the example workflow reached Claude');
}

describe('the production worker', () => {
  test('bundling workflows/index.ts at start: a signed DAG runs; runDag and restartWithReview do not exist', async () => {
    const { worker, taskQueue } = await startProduction();
    try {
      // The sticky cache `orch up` runs with (ORCH_MAX_CACHED_WORKFLOWS), not the SDK's heap-sized default (issue 11).
      assert.equal(worker.worker.options.maxCachedWorkflows, 25);
      await checkOnlySignedRun(taskQueue);
    } finally {
      await worker.stop();
    }
  });

  test('ORCH_WORKFLOW_BUNDLE signed by this desktop loads, and runs only signed DAGs', async () => {
    const bundle = path.join(home, 'signed-bundle.js');
    fs.writeFileSync(bundle, productionCode);
    fs.writeFileSync(workflowBundleSignaturePath(bundle), JSON.stringify(signWorkflowBundle(desktop, productionCode)));
    const { worker, taskQueue } = await startProduction(bundle);
    try {
      await checkOnlySignedRun(taskQueue);
    } finally {
      await worker.stop();
    }
  });

  test('npm run build signs with the keychain identity of ORCH_HOME, and that desktop\'s worker loads the bundle', async () => {
    const buildHome = tempHome();
    const service = uid('orch-test-build');
    const env = { ...process.env, ORCH_HOME: buildHome };
    const out = path.join(buildHome, 'dist', 'workflow-bundle.js');
    const noIdentity = await node(['bin/build-workflows.mjs', '--out', out], env);
    assert.equal(noIdentity.code, 1);
    assert.match(noIdentity.stderr, /cannot sign the bundle: no desktop identity .*orch init/);
    assert.equal(fs.existsSync(out), false, 'a bundle nobody signed was written');
    await loadOrCreateDesktopIdentity({ home: buildHome, service });
    try {
      const built = await node(['bin/build-workflows.mjs', '--out', out], env);
      assert.equal(built.code, 0, built.stderr);
      assert.match(built.stdout, /signed by SHA256:/);
      const store = await openTenantStore(buildHome);
      store.create(TENANT);
      const { worker, taskQueue } = await startProduction(out, { home: buildHome, store });
      try {
        await checkOnlySignedRun(taskQueue, (dag) => store.registerDag(TENANT, dag, 'v1'));
      } finally {
        await worker.stop();
      }
    } finally {
      await removeDesktopIdentity({ home: buildHome, service }).catch(() => {});
    }
  });

  test('an unsigned, modified or foreign-signed bundle is refused at start with workflow_bundle_invalid', async () => {
    const cases: Array<[string, (bundle: string) => void, RegExp]> = [
      ['unsigned', (b) => fs.writeFileSync(b, productionCode), /no signature file/],
      [
        'modified after signing',
        (b) => {
          fs.writeFileSync(workflowBundleSignaturePath(b), JSON.stringify(signWorkflowBundle(desktop, productionCode)));
          fs.writeFileSync(b, Buffer.concat([productionCode, Buffer.from('\nexports.runDag = 1;\n')]));
        },
        /changed after it was signed/,
      ],
      [
        'signed by another key',
        (b) => {
          fs.writeFileSync(b, productionCode);
          fs.writeFileSync(workflowBundleSignaturePath(b), JSON.stringify(signWorkflowBundle(ed25519CheckpointSigner(ed25519KeyPair()), productionCode)));
        },
        /signed by another key/,
      ],
      [
        'a garbled signature file',
        (b) => {
          fs.writeFileSync(b, productionCode);
          fs.writeFileSync(workflowBundleSignaturePath(b), '{"v":1,"signature":"zz"}');
        },
        /malformed/,
      ],
    ];
    for (const [what, prepare, reason] of cases) {
      const bundle = path.join(home, `${uid('bundle')}.js`);
      prepare(bundle);
      let started: StartedWorker | undefined;
      try {
        started = (await startProduction(bundle)).worker;
      } catch (err) {
        assert.ok(err instanceof OrchError, `${what}: ${String(err)}`);
        assert.equal(err.code, WORKFLOW_BUNDLE_INVALID, what);
        assert.match(err.message, reason, what);
        assert.match(err.message, /npm run build/, `${what}: the message says what to do`);
        continue;
      } finally {
        await started?.stop();
      }
      assert.fail(`${what}: the worker started`);
    }
  });
});
