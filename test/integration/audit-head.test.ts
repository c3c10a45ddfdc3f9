/**
 * The audit chain cannot be silently rewritten, cut or emptied: `orch audit verify`, as its own process, holds the
 * tenant database to the newest signed head kept outside it in the real OS keychain (run inside
 * infra/ci-keyring.sh, as `npm test` does) and to the checkpoint rule. The tampering is done the way an attacker
 * with the tenant file would: raw SQL on the SQLite file, with every hash recomputed so the chain is internally
 * consistent.
 */
import { beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { canonicalize } from '../../protocol/canonical-json';
import { nextAuditRow, type AuditRow, type SignedCheckpoint } from '../../protocol/audit-chain';
import { openTenantStore } from '../../desktop-worker/tenant-access';
import { KeychainAuditHeads } from '../../desktop-worker/audit-head';
import type { StoredRow } from '../../desktop-worker/audit-log';
import { useDesktopHome } from '../support/desktop-home';
import { uid } from '../support/harness';

const desk = useDesktopHome('orch-test-audit-head', { store: false });
let heads: KeychainAuditHeads;

interface Verdict {
  code: number;
  ok: boolean;
  problem?: string;
  firstBadSeq?: number;
  detail?: string;
  signedHead: { seq: number } | null;
  stderr: string;
}

async function verify(tenant: string): Promise<Verdict> {
  const res = await desk.orch(['audit', 'verify', '--tenant', tenant, '--json']);
  assert.ok(res.stdout.trim().startsWith('{'), `no JSON from orch audit verify: ${res.stdout}${res.stderr}`);
  return { ...(JSON.parse(res.stdout) as Omit<Verdict, 'code' | 'stderr'>), code: res.code, stderr: res.stderr };
}

/** A tenant with `rows` rows after its create row, written by the desktop's store, closed cleanly (head sealed). */
async function newTenant(rows: number): Promise<string> {
  const tenant = uid('hd');
  const store = await openTenantStore(desk.home);
  try {
    store.create(tenant, 'tester');
    const log = store.auditLog(tenant);
    for (let i = 0; i < rows; i++) log.append({ actor: 'tester', action: 'command_sent', subject: `node-${i}`, details: { i } });
  } finally {
    store.close();
  }
  return tenant;
}

function db(tenant: string): Database.Database {
  return new Database(path.join(desk.home, 'tenants', `${tenant}.sqlite`));
}

/** Rewrites rows from `fromSeq` on with `edit` applied, recomputing every hash after it: a consistent forged chain. */
function rewriteChain(raw: Database.Database, fromSeq: number, edit: (r: StoredRow) => StoredRow): void {
  const rows = raw.prepare('SELECT seq, ts, tenant, actor, action, subject, details, prev_hash, hash FROM audit ORDER BY seq').all() as StoredRow[];
  const update = raw.prepare('UPDATE audit SET ts = ?, actor = ?, action = ?, subject = ?, details = ?, prev_hash = ?, hash = ? WHERE seq = ?');
  let head = { seq: 0, hash: '0'.repeat(64) };
  raw.transaction(() => {
    for (const stored of rows) {
      if (stored.seq < fromSeq) {
        head = { seq: stored.seq, hash: stored.hash };
        continue;
      }
      const r = edit(stored);
      const row: AuditRow = nextAuditRow(head, { ts: r.ts, tenant: r.tenant, actor: r.actor, action: r.action, subject: r.subject, details: JSON.parse(r.details) as Record<string, unknown> });
      update.run(row.ts, row.actor, row.action, row.subject, canonicalize(row.details), row.prevHash, row.hash, stored.seq);
      head = row;
    }
  })();
}

beforeAll(() => {
  heads = new KeychainAuditHeads(desk.identity.keychain.service, desk.identity.keychain.account);
});

describe('orch audit verify against the signed head outside the database', () => {
  test('an untouched chain passes, and the head in the keychain is the clean close of the store that wrote it', async () => {
    const tenant = await newTenant(40);
    assert.equal(heads.read(tenant)?.seq, 41, 'closing the store signs and stores the head of every row it appended');
    // A process that copies an older checkpoint late (two writers of one tenant) does not move the head back.
    const raw = db(tenant);
    const first = raw.prepare('SELECT v, tenant, seq, hash, ts, signer_public_key AS signerPublicKey, signature FROM audit_checkpoint WHERE seq = 1').get() as SignedCheckpoint;
    raw.close();
    heads.write(first);
    assert.equal(heads.read(tenant)?.seq, 41);
    const v = await verify(tenant);
    assert.equal(v.code, 0, v.stderr);
    assert.deepEqual([v.ok, v.signedHead?.seq], [true, 41]);
    const text = await desk.orch(['audit', 'verify', '--tenant', tenant]);
    assert.match(text.stdout, /^OK: .*41 rows.*signed head in the keychain at seq 41 matches/);
  });

  test('checkpoints deleted and every row rewritten with recomputed hashes: fails, naming the head', async () => {
    const tenant = await newTenant(40);
    const raw = db(tenant);
    raw.exec('DELETE FROM audit_checkpoint');
    rewriteChain(raw, 1, (r) => ({ ...r, actor: r.actor === 'tester' ? 'mallory' : r.actor }));
    raw.close();
    const v = await verify(tenant);
    assert.equal(v.code, 1);
    assert.deepEqual([v.ok, v.problem, v.firstBadSeq], [false, 'head_mismatch', 1]);
    assert.match(v.detail ?? '', /signed head kept outside the database/);
    const text = await desk.orch(['audit', 'verify', '--tenant', tenant]);
    assert.equal(text.code, 1);
    assert.match(text.stderr, /^BROKEN: tenant "hd-[^"]+" audit chain breaks at seq 1: head_mismatch \(/);
    assert.doesNotMatch(text.stderr, /\n\s+at /, 'a clear message, not a stack trace');
  });

  test('checkpoints deleted, rows left alone: fails (the head is a checkpoint the database no longer holds)', async () => {
    const tenant = await newTenant(10);
    const raw = db(tenant);
    raw.exec('DELETE FROM audit_checkpoint');
    raw.close();
    const v = await verify(tenant);
    assert.deepEqual([v.code, v.problem, v.firstBadSeq], [1, 'checkpoint_deleted', 11]);
  });

  test('the chain emptied (rows and checkpoints): fails as truncated', async () => {
    const tenant = await newTenant(10);
    const raw = db(tenant);
    raw.exec('DELETE FROM audit; DELETE FROM audit_checkpoint');
    raw.close();
    const v = await verify(tenant);
    assert.deepEqual([v.code, v.problem, v.firstBadSeq], [1, 'truncated', 1]);
    assert.match(v.detail ?? '', /the chain is empty but the signed head .* is at seq 11/);
  });

  test('the tail cut with the checkpoints that covered it: fails as truncated', async () => {
    const tenant = await newTenant(30);
    const raw = db(tenant);
    raw.exec('DELETE FROM audit WHERE seq > 25; DELETE FROM audit_checkpoint WHERE seq > 25');
    raw.close();
    const v = await verify(tenant);
    assert.deepEqual([v.code, v.problem, v.firstBadSeq], [1, 'truncated', 26]);
  });

  test('the tenant database deleted while its head is in the keychain: fails', async () => {
    const tenant = await newTenant(3);
    fs.rmSync(path.join(desk.home, 'tenants', `${tenant}.sqlite`));
    const v = await verify(tenant);
    assert.deepEqual([v.code, v.problem], [1, 'truncated']);
  });

  test('rows past the head that the checkpoint rule would have signed: fails as unsigned_rows', async () => {
    // 1000 rows appended with correct hashes by someone without the desktop key (no checkpoint among them).
    const tenant = await newTenant(5);
    const raw = db(tenant);
    let head = raw.prepare('SELECT seq, hash, ts FROM audit ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string; ts: string };
    const insert = raw.prepare('INSERT INTO audit (seq, ts, tenant, actor, action, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    raw.transaction(() => {
      for (let i = 0; i < 1000; i++) {
        const row = nextAuditRow(head, { ts: head.ts, tenant, actor: 'mallory', action: 'command_sent', subject: 'x', details: {} });
        insert.run(row.seq, row.ts, tenant, row.actor, row.action, row.subject, '{}', row.prevHash, row.hash);
        head = { ...row, ts: head.ts };
      }
    })();
    raw.close();
    const v = await verify(tenant);
    assert.deepEqual([v.code, v.problem, v.firstBadSeq], [1, 'unsigned_rows', 7]);
    assert.match(v.detail ?? '', /every 1000 rows/);

    // One row dated past the 5-minute interval after the last checkpoint, without the checkpoint it would carry.
    const late = await newTenant(2);
    const raw2 = db(late);
    const last = raw2.prepare('SELECT seq, hash, ts FROM audit ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string; ts: string };
    const ts = new Date(Date.parse(last.ts) + 6 * 60_000).toISOString();
    const row = nextAuditRow(last, { ts, tenant: late, actor: 'mallory', action: 'command_sent', subject: 'x', details: {} });
    raw2.prepare('INSERT INTO audit (seq, ts, tenant, actor, action, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(row.seq, ts, late, row.actor, row.action, row.subject, '{}', row.prevHash, row.hash);
    raw2.close();
    const v2 = await verify(late);
    assert.deepEqual([v2.code, v2.problem, v2.firstBadSeq], [1, 'unsigned_rows', 4]);
  });

  test('a few rows after the last checkpoint, within the rule, pass (what a crash or a running worker leaves)', async () => {
    const tenant = await newTenant(3);
    const store = await openTenantStore(desk.home);
    try {
      for (let i = 0; i < 5; i++) store.auditLog(tenant).append({ actor: 'tester', action: 'command_sent', subject: 'more', details: { i } });
      // Still open: no seal yet, the head is at seq 4 and rows 5..9 are protected by the hash chain only.
      assert.equal(heads.read(tenant)?.seq, 4);
      const v = await verify(tenant);
      assert.equal(v.code, 0, JSON.stringify(v));
      assert.equal(v.signedHead?.seq, 4);
    } finally {
      store.close();
    }
    assert.equal(heads.read(tenant)?.seq, 9);
  });

  test('the head removed from the keychain while rows exist: fails as head_missing; --without-head checks the rest', async () => {
    const tenant = await newTenant(3);
    const { Entry } = await import('@napi-rs/keyring');
    assert.ok(new Entry(desk.service, `${desk.identity.keychain.account}/audit-head/${tenant}`, { linux: { store: 'secret-service' } }).deletePassword());
    const v = await verify(tenant);
    assert.deepEqual([v.code, v.problem], [1, 'head_missing']);
    const without = await desk.orch(['audit', 'verify', '--tenant', tenant, '--without-head']);
    assert.equal(without.code, 0, without.stderr);
    assert.match(without.stdout, /signed head NOT checked/);
  });

  test('a tenant deleted and created again under the same name starts a new head', async () => {
    const tenant = await newTenant(20);
    fs.rmSync(path.join(desk.home, 'tenants', `${tenant}.sqlite`));
    const store = await openTenantStore(desk.home);
    try {
      store.create(tenant, 'tester');
    } finally {
      store.close();
    }
    assert.equal(heads.read(tenant)?.seq, 1);
    const v = await verify(tenant);
    assert.equal(v.code, 0, JSON.stringify(v));
  });
});
