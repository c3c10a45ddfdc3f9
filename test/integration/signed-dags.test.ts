/**
 * Only DAGs signed by the desktop key run: a registered DAG altered afterwards (content and hash rewritten with
 * raw SQL), one never signed, one signed by another key, and an older signed version put back over a newer one
 * each fail with dag_signature_invalid on a real worker and dev server, and nothing of them runs (the fake
 * Anthropic server gets no request).
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import path from 'node:path';
import Database from 'better-sqlite3';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ed25519CheckpointSigner } from '../../protocol/audit-chain';
import { ed25519KeyPair } from '../../protocol/primitives';
import { TenantStore, dagHash } from '../../desktop-worker/tenant-store';
import { startFakeAnthropic, type FakeAnthropic } from '../support/anthropic';
import { startTestWorker, tempHome, uid, type TestWorker } from '../support/harness';

let anthropic: FakeAnthropic;
let w: TestWorker;
let signed: TenantStore;
const home = tempHome();
const desktop = ed25519CheckpointSigner(ed25519KeyPair());

beforeAll(async () => {
  anthropic = await startFakeAnthropic();
  // The worker loads DAGs through a store that trusts the desktop key, as openTenantStore builds it.
  signed = new TenantStore(home, { signer: desktop });
  w = await startTestWorker(
    {
      claude: () => ({ apiKey: anthropic.apiKey, baseURL: anthropic.baseURL }),
      registry: {
        loadDag(tenant, name) {
          const d = signed.getDag(tenant, name);
          return { source: d.source, hash: d.hash };
        },
      },
    },
    home,
  );
});

afterAll(async () => {
  await w?.stop();
  signed?.close();
  await anthropic?.stop();
});

const dagNamed = (name: string, marker: string) => ({
  name,
  version: 1,
  cost_cap_usd: 0.5,
  nodes: [{ id: 'ask', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 20, prompt: `${marker} say hi` }],
});

async function run(tenant: string, name: string): Promise<string | undefined> {
  const handle = await w.client.workflow.start(name, { taskQueue: w.taskQueue, workflowId: uid('signed'), args: [{ tenant }] });
  try {
    await handle.result();
    return undefined;
  } catch (err) {
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    return err.cause.type ?? undefined;
  }
}

describe('signed DAGs', () => {
  test('a DAG signed by the desktop runs (the control: this setup does reach Claude)', async () => {
    const tenant = uid('signed');
    const name = uid('ok');
    const marker = uid('m');
    signed.create(tenant);
    signed.registerDag(tenant, dagNamed(name, marker), 'v1');
    assert.equal(await run(tenant, name), undefined);
    assert.equal((await anthropic.messages()).filter((m) => m.prompt.includes(marker)).length, 1);
  });

  test('altered after registration, never signed, or signed by another key: dag_signature_invalid, nothing runs', async () => {
    const tenant = uid('signed');
    signed.create(tenant);
    const markers: string[] = [];
    const cases: Array<[string, (name: string, marker: string) => void]> = [
      [
        'altered',
        (name, marker) => {
          signed.registerDag(tenant, dagNamed(name, 'original'), 'v1');
          const altered = dagNamed(name, marker);
          const raw = new Database(path.join(home, 'tenants', `${tenant}.sqlite`));
          raw.prepare('UPDATE dags SET source_json = ?, hash = ? WHERE name = ?').run(JSON.stringify(altered), dagHash(altered), name);
          raw.close();
        },
      ],
      [
        'never signed',
        (name, marker) => {
          const unsigned = new TenantStore(home);
          unsigned.registerDag(tenant, dagNamed(name, marker), 'v1');
          unsigned.close();
        },
      ],
      [
        'another key',
        (name, marker) => {
          const foreign = new TenantStore(home, { signer: ed25519CheckpointSigner(ed25519KeyPair()) });
          foreign.registerDag(tenant, dagNamed(name, marker), 'v1');
          foreign.close();
        },
      ],
    ];
    for (const [what, prepare] of cases) {
      const name = uid('dag');
      const marker = uid('m');
      markers.push(marker);
      prepare(name, marker);
      assert.equal(await run(tenant, name), 'dag_signature_invalid', what);
    }
    const calls = (await anthropic.requests()).filter((r) => markers.some((m) => r.prompt.includes(m)));
    assert.deepEqual(calls, []);
  });

  test("register v1, register v2, put v1's signed bytes back: dag_signature_invalid, v1 does not run", async () => {
    const tenant = uid('signed');
    const name = uid('rollback');
    const v1Marker = uid('v1');
    signed.create(tenant);
    signed.registerDag(tenant, dagNamed(name, v1Marker), 'v1');
    const raw = new Database(path.join(home, 'tenants', `${tenant}.sqlite`));
    const v1Row = raw.prepare('SELECT * FROM dags WHERE name = ?').get(name) as Record<string, unknown>;
    const v2Marker = uid('v2');
    signed.registerDag(tenant, { ...dagNamed(name, v2Marker), version: 2 }, 'v2');
    assert.equal(await run(tenant, name), undefined, 'the control: v2 runs');
    assert.equal((await anthropic.messages()).filter((m) => m.prompt.includes(v2Marker)).length, 1);
    raw
      .prepare(
        'UPDATE dags SET version = @version, hash = @hash, source_json = @source_json, source_text = @source_text, registered_at = @registered_at, signature = @signature, signer_public_key = @signer_public_key WHERE name = @name',
      )
      .run(v1Row);
    raw.close();
    assert.equal(await run(tenant, name), 'dag_signature_invalid');
    assert.deepEqual((await anthropic.requests()).filter((r) => r.prompt.includes(v1Marker)), [], 'v1 reached Claude');
  });
});
