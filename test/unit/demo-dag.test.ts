/**
 * ensureDemo (`orch up`): a demo DAG whose stored signature no longer verifies (signed by an older Orch, signature
 * v1, which does not cover the version and registration) is registered again from the bundled file, so the demo
 * keeps running after an upgrade; a valid one is left alone.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ed25519CheckpointSigner } from '../../protocol/audit-chain';
import { ed25519KeyPair } from '../../protocol/primitives';
import { TenantStore } from '../../desktop-worker/tenant-store';
import { ensureDemo } from '../../desktop-worker/up';
import { DEFAULT_PRICES } from '../../workflows/prices';
import { OrchError } from '../../protocol/errors';

describe('the demo DAG across an upgrade of DAG signatures', () => {
  test('a v1-signed demo row is registered again; a valid one is not', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-demo-'));
    const signer = ed25519CheckpointSigner(ed25519KeyPair());
    const store = new TenantStore(home, { signer });
    try {
      const name = ensureDemo(store, Object.keys(DEFAULT_PRICES));
      const registrations = () => [...store.auditLog('demo').rows({ action: 'register_dag' })].length;
      assert.equal(registrations(), 1);
      ensureDemo(store, Object.keys(DEFAULT_PRICES));
      assert.equal(registrations(), 1, 'a valid demo row was registered again');

      // What an older Orch stored: the same row, signed with the v1 message (tenant, name, hash only).
      const row = store.getDag('demo', name);
      const v1 = signer.sign(Buffer.concat([Buffer.from(`orch-dag-signature-v1\ndemo\n${name}\n`, 'utf8'), Buffer.from(row.hash, 'hex')]));
      const raw = new Database(path.join(home, 'tenants', 'demo.sqlite'));
      raw.prepare('UPDATE dags SET signature = ? WHERE name = ?').run(v1.toString('hex'), name);
      raw.close();
      let refused: unknown;
      try {
        store.getDag('demo', name);
      } catch (err) {
        refused = err;
      }
      assert.ok(refused instanceof OrchError && refused.code === 'dag_signature_invalid' && /version 1 signature/.test(refused.message));

      ensureDemo(store, Object.keys(DEFAULT_PRICES));
      assert.equal(registrations(), 2);
      assert.equal(store.getDag('demo', name).name, name);
    } finally {
      store.close();
    }
  });
});
