/**
 * TenantStore: tenant names that could walk out of the tenants directory are refused; registered DAGs are signed
 * and checked (dag-signing.ts); the secrets masking the runCommand activity applies.
 */
import { describe, test } from '@jest/globals';
import assert, { orchErrorCode } from '../support/assert';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ed25519CheckpointSigner } from '../../protocol/audit-chain';
import { ed25519KeyPair, ed25519KeyPairFromSeed, verifyDetached } from '../../protocol/primitives';
import {
  DAG_SIGNATURE_DOMAIN,
  WORKFLOW_BUNDLE_SIGNATURE_DOMAIN,
  dagSignatureMessage,
  signDag,
  signWorkflowBundle,
  workflowBundleSignatureProblem,
} from '../../desktop-worker/dag-signing';
import { TenantStore, checkTenantName, dagHash } from '../../desktop-worker/tenant-store';
import { maskSecrets } from '../../activities/secrets';
import { OrchError } from '../../protocol/errors';

const home = () => fs.mkdtempSync(path.join(os.tmpdir(), 'orch-ts-'));
const codeOf = orchErrorCode;

const dag = { name: 'restart-web', version: 1, cost_cap_usd: 0.1, nodes: [{ id: 'g', type: 'approval_gate', message: 'go?' }] };

describe('tenant names', () => {
  const bad = ['../x', 'a/b', '..', '', 'x'.repeat(200), 'a\0b', '.', 'a\\b', 'a b', '/abs', 'x\n'];
  test('names that could leave the tenants directory are refused by checkTenantName', () => {
    for (const name of bad) assert.equal(codeOf(() => checkTenantName(name)), 'bad_input', JSON.stringify(name));
    assert.equal(checkTenantName('acme-prod_2'), 'acme-prod_2');
  });

  test('and by every TenantStore entry point, before any file is touched', () => {
    const h = home();
    const store = new TenantStore(h);
    try {
      for (const name of bad) {
        assert.equal(codeOf(() => store.create(name)), 'bad_input', `create ${JSON.stringify(name)}`);
        assert.equal(codeOf(() => store.get(name)), 'bad_input', `get ${JSON.stringify(name)}`);
        assert.equal(codeOf(() => store.exists(name)), 'bad_input', `exists ${JSON.stringify(name)}`);
      }
      // Nothing was created anywhere: not in the home, not beside it.
      assert.deepEqual(fs.existsSync(path.join(h, 'tenants')) ? fs.readdirSync(path.join(h, 'tenants')) : [], []);
      assert.ok(!fs.existsSync(path.join(h, 'x.sqlite')));
      store.create('ok');
      assert.equal((fs.statSync(path.join(h, 'tenants', 'ok.sqlite')).mode & 0o777).toString(8), '600');
    } finally {
      store.close();
    }
  });
});

describe('signed DAGs', () => {
  const desktop = ed25519KeyPair();
  const signer = ed25519CheckpointSigner(desktop);

  test('known-answer: the signed message layout', () => {
    const hash = 'ab'.repeat(32);
    const reg = { tenant: 'acme', name: 'restart-web', version: '3', hash, registration: 7 };
    const msg = dagSignatureMessage(reg);
    assert.equal(
      msg.toString('utf8'),
      `${DAG_SIGNATURE_DOMAIN}{"hash":"${hash}","name":"restart-web","registration":7,"tenant":"acme","version":"3"}`,
    );
    // Deterministic Ed25519: a fixed seed gives a fixed signature a second implementation can check.
    const fixed = ed25519CheckpointSigner(ed25519KeyPairFromSeed(Buffer.alloc(32, 7)));
    const a = signDag(fixed, reg);
    assert.equal(signDag(fixed, reg).signature, a.signature);
    // Every field is covered: name, version and registration each change the signature.
    assert.notEqual(signDag(fixed, { ...reg, name: 'restart-webx' }).signature, a.signature);
    assert.notEqual(signDag(fixed, { ...reg, version: '2' }).signature, a.signature);
    assert.notEqual(signDag(fixed, { ...reg, registration: 6 }).signature, a.signature);
  });

  test('workflow bundles: the signed message layout, and each refusal reason', () => {
    const code = Buffer.from('exports.x = 1;\n');
    const sig = signWorkflowBundle(signer, code);
    const sha = createHash('sha256').update(code).digest();
    assert.equal(sig.sha256, sha.toString('hex'));
    const message = Buffer.concat([Buffer.from(WORKFLOW_BUNDLE_SIGNATURE_DOMAIN, 'utf8'), sha]);
    assert.equal(WORKFLOW_BUNDLE_SIGNATURE_DOMAIN, 'orch-workflow-bundle-signature-v1\n');
    assert.ok(verifyDetached(Buffer.from(sig.signature, 'hex'), message, desktop.publicKey));
    const text = JSON.stringify(sig);
    assert.equal(workflowBundleSignatureProblem(desktop.publicKey, code, text), undefined);
    assert.match(workflowBundleSignatureProblem(desktop.publicKey, code, undefined) ?? '', /no signature file/);
    assert.match(workflowBundleSignatureProblem(desktop.publicKey, Buffer.concat([code, Buffer.from(' ')]), text) ?? '', /changed after it was signed/);
    assert.match(workflowBundleSignatureProblem(ed25519KeyPair().publicKey, code, text) ?? '', /signed by another key/);
    assert.match(workflowBundleSignatureProblem(desktop.publicKey, code, '{"v":2}') ?? '', /malformed/);
    assert.match(workflowBundleSignatureProblem(desktop.publicKey, code, 'not json') ?? '', /not JSON/);
    // A DAG signature over the same bytes never passes as a bundle signature (different domains).
    const dagSig = signer.sign(Buffer.concat([Buffer.from(DAG_SIGNATURE_DOMAIN, 'utf8'), sha]));
    assert.match(workflowBundleSignatureProblem(desktop.publicKey, code, JSON.stringify({ ...sig, signature: dagSig.toString('hex') })) ?? '', /changed after it was signed/);
  });

  test('an older signed version put back in place of the newer one fails with dag_signature_invalid', () => {
    const h = home();
    const store = new TenantStore(h, { signer });
    try {
      store.create('acme');
      store.registerDag('acme', dag, 'v1 text');
      const raw = new Database(path.join(h, 'tenants', 'acme.sqlite'));
      const v1Row = raw.prepare('SELECT * FROM dags WHERE name = ?').get('restart-web') as Record<string, unknown>;
      store.registerDag('acme', { ...dag, version: 2, cost_cap_usd: 0.2 }, 'v2 text');
      assert.equal(store.getDag('acme', 'restart-web').version, '2');
      // v1's signed bytes, every column of its row, put back over v2.
      raw
        .prepare('UPDATE dags SET version = @version, hash = @hash, source_json = @source_json, source_text = @source_text, registered_at = @registered_at, signature = @signature, signer_public_key = @signer_public_key WHERE name = @name')
        .run(v1Row);
      raw.close();
      const refused = (() => {
        try {
          store.getDag('acme', 'restart-web');
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      assert.ok(refused instanceof OrchError);
      assert.equal(refused.code, 'dag_signature_invalid');
      assert.match(refused.message, /older signed version was put back/);
    } finally {
      store.close();
    }
  });

  test('a DAG registered with the desktop key loads; altered, unsigned or foreign-signed ones fail with dag_signature_invalid', () => {
    const h = home();
    const store = new TenantStore(h, { signer });
    try {
      store.create('acme');
      const reg = store.registerDag('acme', dag, 'text');
      assert.match(reg.signature ?? '', /^[0-9a-f]{128}$/);
      assert.equal(store.getDag('acme', 'restart-web').hash, reg.hash);

      const file = path.join(h, 'tenants', 'acme.sqlite');
      const raw = new Database(file);
      // Altered: content and hash both rewritten, as anyone holding the file can.
      const altered = { ...dag, cost_cap_usd: 1000 };
      raw.prepare('UPDATE dags SET source_json = ?, hash = ? WHERE name = ?').run(JSON.stringify(altered), dagHash(altered), 'restart-web');
      assert.equal(codeOf(() => store.getDag('acme', 'restart-web')), 'dag_signature_invalid');

      // Unsigned.
      const unsignedStore = new TenantStore(h);
      unsignedStore.registerDag('acme', dag, 'text');
      unsignedStore.close();
      assert.equal(raw.prepare('SELECT signature FROM dags WHERE name = ?').pluck().get('restart-web'), null);
      assert.equal(codeOf(() => store.getDag('acme', 'restart-web')), 'dag_signature_invalid');

      // Signed by another key.
      const foreign = new TenantStore(h, { signer: ed25519CheckpointSigner(ed25519KeyPair()) });
      foreign.registerDag('acme', dag, 'text');
      foreign.close();
      assert.equal(codeOf(() => store.getDag('acme', 'restart-web')), 'dag_signature_invalid');

      // A valid signature copied from another tenant's row does not transfer.
      store.create('other');
      const otherReg = store.registerDag('other', dag, 'text');
      raw.prepare('UPDATE dags SET signature = ?, signer_public_key = ? WHERE name = ?').run(otherReg.signature, otherReg.signerPublicKey, 'restart-web');
      assert.equal(codeOf(() => store.getDag('acme', 'restart-web')), 'dag_signature_invalid');

      // Registered again by the desktop: runs again.
      store.registerDag('acme', dag, 'text');
      assert.equal(store.getDag('acme', 'restart-web').name, 'restart-web');
      raw.close();
    } finally {
      store.close();
    }
  });

  test('register_dag is audited with the signer', () => {
    const store = new TenantStore(home(), { signer });
    try {
      store.create('acme');
      store.registerDag('acme', dag, 'text');
      const row = [...store.auditLog('acme').rows({ action: 'register_dag' })][0]!;
      assert.equal(row.details.signed, true);
      assert.equal(row.details.signerPublicKey, desktop.publicKey.toString('hex'));
      assert.equal(store.auditLog('acme').verify().ok, true);
    } finally {
      store.close();
    }
  });
});

describe('masking', () => {
  test('every occurrence, longest first, and a truncated tail', () => {
    assert.equal(maskSecrets('a=hunter2 b=hunter2', ['hunter2']), 'a=*** b=***');
    assert.equal(maskSecrets('x=abcdef', ['abc', 'abcdef']), 'x=***');
    assert.equal(maskSecrets('tail: hunt', ['hunter2'], true), 'tail: ***');
    assert.equal(maskSecrets('tail: hunt', ['hunter2'], false), 'tail: hunt');
  });
});

describe('appendSoon', () => {
  test('rows asked for in one turn are committed in one transaction, in order; a bad one fails alone; a repeated key writes once', async () => {
    const store = new TenantStore(home());
    store.create('acme');
    const log = store.auditLog('acme');
    const batches: number[] = [];
    const appendMany = log.appendMany.bind(log);
    log.appendMany = (entries) => {
      batches.push(entries.length);
      return appendMany(entries);
    };
    const row = (i: number) => ({ tenant: 'acme', actor: 'orch', action: 'claude_call', subject: `n${i}`, details: { i }, idempotencyKey: `run/n${i}` });
    const asked = [
      ...Array.from({ length: 20 }, (_, i) => store.appendSoon(row(i))),
      store.appendSoon({ ...row(99), action: 'Not An Action' }),
      store.appendSoon(row(3)),
    ];
    const settled = await Promise.allSettled(asked);
    assert.deepEqual(batches, [22], 'one transaction for the turn');
    assert.deepEqual(settled.slice(0, 20).map((s) => (s.status === 'fulfilled' ? s.value.seq : s.reason)), Array.from({ length: 20 }, (_, i) => i + 2));
    assert.equal(settled[20]!.status, 'rejected');
    assert.deepEqual(settled[21], { status: 'fulfilled', value: { seq: 5 } }, 'the repeated key returns the first row');
    // The next turn is the next transaction.
    assert.equal((await store.appendSoon(row(20))).seq, 22);
    assert.deepEqual(batches, [22, 1]);
    assert.equal(log.verify().ok, true);
    store.close();
  });

  test('rows still queued when the store closes are committed first', async () => {
    const dir = home();
    const store = new TenantStore(dir);
    store.create('acme');
    const pending = store.appendSoon({ tenant: 'acme', actor: 'orch', action: 'run_finished', subject: 'x', idempotencyKey: 'run/end' });
    store.close();
    assert.equal((await pending).seq, 2);
    // The turn's own flush then finds nothing, and opens no database behind the closed store's back.
    await new Promise((r) => setImmediate(r));
    assert.equal((store as unknown as { open: Map<string, unknown> }).open.size, 0);
    const again = new TenantStore(dir);
    assert.deepEqual([...again.auditLog('acme').rows()].map((r) => r.action), ['create_tenant', 'run_finished']);
    again.close();
  });
});
