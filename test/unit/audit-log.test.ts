import { afterAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fdatasync, fstatSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import sodium from 'sodium-native';
import { CanonicalJsonError, canonicalize } from '../../protocol/canonical-json';
import { GENESIS_HASH, computeRowHash, ed25519CheckpointSigner, type CheckpointSigner } from '../../protocol/audit-chain';
import { AuditLog, AuditLogError, AuditLogErrorCode, ensureAuditSchema } from '../../desktop-worker/audit-log';
import type { AuditHeadStore } from '../../desktop-worker/audit-head';

const dir = mkdtempSync(join(tmpdir(), 'orch-audit-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileCounter = 0;
function freshDb(): { db: Database.Database; file: string } {
  const file = join(dir, `tenant-${++fileCounter}.sqlite`);
  return { db: new Database(file), file };
}

function newKeyPair(): { publicKey: Buffer; secretKey: Buffer; seed: Buffer } {
  const seed = Buffer.alloc(sodium.crypto_sign_SEEDBYTES);
  sodium.randombytes_buf(seed);
  const publicKey = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES);
  const secretKey = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES);
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  return { publicKey, secretKey, seed };
}
function newSigner(): CheckpointSigner {
  return ed25519CheckpointSigner(newKeyPair());
}

function clock(startMs = Date.UTC(2025, 0, 1)): { now: () => Date; advance: (ms: number) => void } {
  let t = startMs;
  return { now: () => new Date(t), advance: (ms) => (t += ms) };
}

function problemOf(result: ReturnType<AuditLog['verify']>): { firstBadSeq: number; problem: string } | 'ok' {
  return result.ok ? 'ok' : { firstBadSeq: result.firstBadSeq, problem: result.problem };
}

describe('AuditLog (SQLite)', () => {
  test('appends a linear chain that verifies, in WAL with synchronous=FULL, storing canonical details', () => {
    const { db, file } = freshDb();
    const signer = newSigner();
    const log = new AuditLog(db, 'acme', { signer, now: clock().now });
    assert.deepEqual(log.head(), { seq: 0, hash: GENESIS_HASH });
    const r1 = log.append({ actor: 'operator:alice', action: 'create_tenant', subject: 'tenant:acme' });
    const r2 = log.append({ actor: 'operator:alice', action: 'set_secret', subject: 'secret:TOKEN', details: { z: 1, a: { y: 'ü', x: 0.1 } } });
    assert.equal(r1.seq, 1);
    assert.equal(r1.prevHash, GENESIS_HASH);
    assert.equal(r2.prevHash, r1.hash);
    assert.equal(computeRowHash(r2), r2.hash);
    assert.deepEqual(log.head(), { seq: 2, hash: r2.hash });
    assert.deepEqual([...log.rows()], [r1, r2]);
    assert.deepEqual(log.verify(), { ok: true, count: 2, head: { seq: 2, hash: r2.hash } });

    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('synchronous', { simple: true }), 2, 'FULL');
    const stored = db.prepare('SELECT details FROM audit WHERE seq = 2').pluck().get();
    assert.equal(stored, '{"a":{"x":0.1,"y":"ü"},"z":1}');
    assert.equal(stored, canonicalize(r2.details));

    // Acknowledged means committed: another connection sees the row at once.
    const other = new Database(file, { readonly: true });
    assert.equal(other.prepare('SELECT hash FROM audit WHERE seq = 2').pluck().get(), r2.hash);
    other.close();
    db.close();
  });

  test('the same idempotency key twice writes one row and returns the first', () => {
    const { db } = freshDb();
    const log = new AuditLog(db, 'acme');
    const first = log.append({ actor: 'wf:1', action: 'command_sent', subject: 'agent:a', details: { n: 1 }, idempotencyKey: 'run-1/node-a/1' });
    const again = log.append({ actor: 'wf:1', action: 'command_sent', subject: 'agent:a', details: { n: 2 }, idempotencyKey: 'run-1/node-a/1' });
    assert.deepEqual(again, first);
    const other = log.append({ actor: 'wf:1', action: 'command_sent', subject: 'agent:a', idempotencyKey: 'run-1/node-a/2' });
    assert.equal(other.seq, 2);
    assert.equal(db.prepare('SELECT count(*) FROM audit').pluck().get(), 2);
    assert.equal(log.verify().ok, true);
    db.close();
  });

  test('appendMany: rows in the order given in one transaction; a bad entry is refused alone; a repeated key writes once', () => {
    const { db } = freshDb();
    const log = new AuditLog(db, 'acme', { signer: newSigner(), checkpointEvery: 2 });
    log.append({ actor: 'op', action: 'create_tenant', subject: 'acme', idempotencyKey: 'k0' });
    const out = log.appendMany([
      { actor: 'a', action: 'command_sent', subject: 'n1', details: { i: 1 }, idempotencyKey: 'k1' },
      { actor: 'a', action: 'Bad Action', subject: 'n2' },
      { actor: 'a', action: 'command_sent', subject: 'n3', details: { i: 3 }, idempotencyKey: 'k1' },
      { actor: 'a', action: 'command_result', subject: 'n4', details: { i: 4 } },
      { actor: 'a', action: 'claude_call', subject: 'n5', details: { s: '\ud800' } },
    ]);
    assert.equal((out[0] as { seq: number }).seq, 2);
    assert.ok(out[1] instanceof AuditLogError && out[1].code === AuditLogErrorCode.invalidEntry);
    assert.deepEqual(out[2], out[0], 'a key repeated in the batch returns the first row');
    assert.equal((out[3] as { seq: number }).seq, 3);
    assert.ok(out[4] instanceof CanonicalJsonError);
    assert.deepEqual([...log.rows()].map((r) => `${r.seq}:${r.subject}`), ['1:acme', '2:n1', '3:n4']);
    // Checkpoints fall where single appends would put them (every 2 rows), and the chain verifies.
    assert.deepEqual(log.checkpoints().map((c) => c.seq), [1, 3]);
    assert.equal(log.verify().ok, true);
    db.close();
  });

  test('appendMany: a transaction that fails writes none of its rows and fails each of them', () => {
    const { db, file } = freshDb();
    const log = new AuditLog(db, 'acme');
    log.append({ actor: 'op', action: 'create_tenant', subject: 'acme' });
    // Another connection holds the write lock: the batch's BEGIN IMMEDIATE fails (busy), for every entry in it.
    const other = new Database(file, { timeout: 0 });
    db.pragma('busy_timeout = 0');
    other.exec('BEGIN IMMEDIATE');
    const out = log.appendMany([
      { actor: 'a', action: 'command_sent', subject: 'x' },
      { actor: 'a', action: 'command_result', subject: 'y' },
    ]);
    other.exec('ROLLBACK');
    other.close();
    assert.ok(out.every((r) => r instanceof Error && /busy|locked/i.test(r.message)), String(out));
    assert.deepEqual([...log.rows()].map((r) => r.subject), ['acme']);
    db.close();
  });

  test('appendManyDurable: commits at once, answers only after the WAL sync, shares a sync among the commits made while one runs, and copies the head out after it', async () => {
    const { db, file } = freshDb();
    const syncs: Array<{ file: string; done: () => void; fail: (err: Error) => void }> = [];
    const heads: number[] = [];
    const headStore: AuditHeadStore = { read: () => null, write: (h) => void heads.push(h.seq), where: 'a test list' };
    const syncFile = (f: string) => new Promise<void>((resolve, reject) => syncs.push({ file: f, done: resolve, fail: reject }));
    const log = new AuditLog(db, 'acme', { signer: newSigner(), checkpointEvery: 1, heads: headStore, syncFile });
    const entry = (i: number) => ({ actor: 'wf:1', action: 'claude_call', subject: `n${i}`, idempotencyKey: `run/n${i}` });
    let answered = 0;
    const first = log.appendManyDurable([entry(1), entry(2)]).then((r) => (answered++, r));
    // Committed before the sync (another connection sees it), with the connection back at synchronous=FULL.
    const other = new Database(file, { readonly: true });
    assert.equal(other.prepare('SELECT count(*) FROM audit').pluck().get(), 2);
    assert.equal(db.pragma('synchronous', { simple: true }), 2, 'FULL again after the commit');
    assert.deepEqual(syncs.map((s) => s.file), [`${file}-wal`]);
    // Two more commits while that sync runs: both wait for one next sync, which starts only when the first is done.
    const second = log.appendManyDurable([entry(3)]).then((r) => (answered++, r));
    const third = log.appendManyDurable([entry(4)]).then((r) => (answered++, r));
    assert.equal(other.prepare('SELECT count(*) FROM audit').pluck().get(), 4);
    other.close();
    await new Promise((r) => setImmediate(r));
    assert.equal(answered, 0, 'nothing answered before its rows are synced');
    assert.deepEqual(heads, [], 'no head copied out ahead of the disk');
    syncs[0]!.done();
    assert.deepEqual((await first).map((r) => (r instanceof Error ? r.message : r.seq)), [1, 2]);
    assert.equal(syncs.length, 2, 'one sync for both commits made while the first ran');
    assert.equal(answered, 1);
    assert.deepEqual(heads, [2]);
    syncs[1]!.done();
    assert.deepEqual([await second, await third].map((rows) => rows.map((r) => (r instanceof Error ? r.message : r.seq))), [[3], [4]]);
    assert.deepEqual(heads, [2, 3, 4], 'each commit copies out the head it wrote, once it is on disk');
    // A sync that fails fails the rows it was to cover (committed: a retry finds them by key and waits for its own sync).
    const failed = log.appendManyDurable([entry(5)]);
    syncs[2]!.fail(new Error('EIO: i/o error, fdatasync'));
    await assert.rejects(failed, /EIO/);
    const retried = log.appendManyDurable([entry(5)]);
    syncs[3]!.done();
    assert.deepEqual((await retried).map((r) => (r instanceof Error ? r.message : r.seq)), [5]);
    assert.equal(log.verify().ok, true);
    db.close();
  });

  test('appendManyDurable syncs through one WAL handle kept open: the same file after a checkpoint truncates the WAL, the new file after the WAL is replaced, closed by close()', async () => {
    const { db, file } = freshDb();
    const wal = `${file}-wal`;
    const synced: Array<{ file: string; handle: number | undefined; ino: number; nlink: number }> = [];
    const syncFile = (f: string, handle: number | undefined): Promise<void> => {
      const st = handle === undefined ? undefined : fstatSync(handle);
      synced.push({ file: f, handle, ino: st?.ino ?? -1, nlink: st?.nlink ?? -1 });
      return new Promise((resolve, reject) => (handle === undefined ? resolve() : fdatasync(handle, (err) => (err ? reject(err) : resolve()))));
    };
    const log = new AuditLog(db, 'acme', { syncFile });
    const entry = (i: number) => ({ actor: 'wf:1', action: 'command_sent', subject: `n${i}` });
    const seqs = (rows: Array<{ seq: number } | Error>) => rows.map((r) => (r instanceof Error ? r.message : r.seq));
    assert.deepEqual(seqs(await log.appendManyDurable([entry(1)])), [1]);
    assert.deepEqual(seqs(await log.appendManyDurable([entry(2)])), [2]);
    const kept = synced[0]!.handle!;
    assert.equal(synced[0]!.file, wal);
    assert.equal(synced[1]!.handle, kept, 'the second sync uses the handle of the first');
    assert.equal(fstatSync(kept).ino, statSync(wal).ino, 'still open after its sync, on the WAL file');
    // Another connection checkpoints and truncates the WAL: SQLite restarts it in place, and the kept handle is
    // still the file the next commit writes.
    const other = new Database(file);
    other.pragma('wal_checkpoint(TRUNCATE)');
    other.close();
    assert.equal(statSync(wal).size, 0);
    assert.deepEqual(seqs(await log.appendManyDurable([entry(3)])), [3]);
    assert.equal(synced[2]!.handle, kept);
    assert.ok(statSync(wal).size > 0);
    assert.equal(synced[2]!.ino, statSync(wal).ino);
    // The database leaves WAL mode and comes back: the old WAL is unlinked and a new file made at the path. The
    // next sync must reach the new file, not the unlinked one the old handle still holds.
    db.pragma('journal_mode = DELETE');
    db.pragma('journal_mode = WAL');
    assert.deepEqual(seqs(await log.appendManyDurable([entry(4)])), [4]);
    assert.equal(synced[3]!.nlink, 1, 'a linked file');
    assert.equal(synced[3]!.ino, statSync(wal).ino, 'the WAL file now at the path');
    const reopened = synced[3]!.handle!;
    assert.equal(fstatSync(reopened).ino, statSync(wal).ino);
    log.close();
    assert.throws(() => fstatSync(reopened), /EBADF/, 'close() closes the kept handle');
    assert.equal(log.verify().ok, true);
    db.close();
  });

  test('appendManyDurable with the real fdatasync: the rows are there, in order, and an in-memory database commits as appendMany', async () => {
    const { db, file } = freshDb();
    const log = new AuditLog(db, 'acme');
    const rows = await log.appendManyDurable([
      { actor: 'wf:1', action: 'command_sent', subject: 'a' },
      { actor: 'wf:1', action: 'command_result', subject: 'a' },
    ]);
    assert.deepEqual(rows.map((r) => (r instanceof Error ? r.message : r.seq)), [1, 2]);
    db.close();
    const reopened = new Database(file, { readonly: true });
    assert.deepEqual(reopened.prepare('SELECT action FROM audit ORDER BY seq').pluck().all(), ['command_sent', 'command_result']);
    reopened.close();
    const memory = new Database(':memory:');
    const inMemory = new AuditLog(memory, 'acme', { syncFile: () => Promise.reject(new Error('no file to sync')) });
    assert.deepEqual((await inMemory.appendManyDurable([{ actor: 'a', action: 'x', subject: 's' }])).map((r) => (r instanceof Error ? r.message : r.seq)), [1]);
    memory.close();
  });

  test('signs checkpoints every N rows, after the interval, and on demand; verify uses them', () => {
    const { db } = freshDb();
    const signer = newSigner();
    const c = clock();
    const log = new AuditLog(db, 'acme', { signer, checkpointEvery: 10, checkpointIntervalMs: 60_000, now: c.now });
    for (let i = 0; i < 25; i++) log.append({ actor: 'op', action: 'run_workflow', subject: `run:${i}` });
    assert.deepEqual(log.checkpoints().map((cp) => cp.seq), [1, 11, 21]);
    c.advance(61_000);
    log.append({ actor: 'op', action: 'run_workflow', subject: 'run:late' });
    assert.deepEqual(log.checkpoints().map((cp) => cp.seq), [1, 11, 21, 26]);
    log.append({ actor: 'op', action: 'run_workflow', subject: 'run:27' });
    const onDemand = log.checkpoint();
    assert.equal(onDemand?.seq, 27);
    assert.deepEqual(log.checkpoint(), onDemand, 'a head already signed is not signed again');
    assert.equal(log.checkpoints().length, 5);
    assert.equal(onDemand?.signerPublicKey, signer.publicKey.toString('hex'));

    assert.equal(log.verify().ok, true);
    assert.equal(log.verify(signer.publicKey).ok, true);
    const wrongKey = log.verify(newSigner().publicKey);
    assert.deepEqual(problemOf(wrongKey), { firstBadSeq: 1, problem: 'bad_checkpoint_signature' });

    // Cutting the tail with SQL is caught by the head checkpoint signed on demand.
    db.prepare('DELETE FROM audit WHERE seq >= 26').run();
    assert.deepEqual(problemOf(log.verify()), { firstBadSeq: 26, problem: 'truncated' });
    db.close();
  });

  test('without a signer: no checkpoints, checkpoint() refuses, and a foreign checkpoint needs a trusted key', () => {
    const { db } = freshDb();
    const log = new AuditLog(db, 'acme');
    log.append({ actor: 'op', action: 'create_tenant', subject: 'tenant:acme' });
    assert.deepEqual(log.checkpoints(), []);
    assert.throws(() => log.checkpoint(), (e: unknown) => e instanceof AuditLogError && e.code === AuditLogErrorCode.noSigner);
    const signed = new AuditLog(db, 'acme', { signer: newSigner() });
    signed.checkpoint();
    assert.throws(() => log.verify(), (e: unknown) => e instanceof AuditLogError && e.code === AuditLogErrorCode.trustedKeyMissing);
    db.close();
  });

  test('tampering with the file through raw SQL is named by seq', () => {
    const { db } = freshDb();
    const signer = newSigner();
    const log = new AuditLog(db, 'acme', { signer, checkpointEvery: 5 });
    for (let i = 1; i <= 20; i++) log.append({ actor: 'op', action: 'command_sent', subject: `agent:${i}`, details: { i } });
    const snapshot = db.prepare('SELECT * FROM audit ORDER BY seq').all() as Array<Record<string, unknown>>;
    const restore = (): void => {
      db.prepare('DELETE FROM audit').run();
      const ins = db.prepare('INSERT INTO audit VALUES (@seq, @ts, @tenant, @actor, @action, @subject, @details, @prev_hash, @hash, @idem_key)');
      for (const r of snapshot) ins.run(r);
      assert.equal(log.verify().ok, true);
    };

    db.prepare(`UPDATE audit SET details = '{"i":700}' WHERE seq = 7`).run();
    assert.deepEqual(problemOf(log.verify()), { firstBadSeq: 7, problem: 'edited' });
    restore();
    // Same value, different bytes: not canonical, so not what was hashed.
    db.prepare(`UPDATE audit SET details = '{ "i": 7 }' WHERE seq = 7`).run();
    assert.deepEqual(problemOf(log.verify()), { firstBadSeq: 7, problem: 'edited' });
    restore();
    db.prepare('DELETE FROM audit WHERE seq = 9').run();
    assert.deepEqual(problemOf(log.verify()), { firstBadSeq: 9, problem: 'deleted' });
    restore();
    db.prepare(`UPDATE audit SET details = '{"i":' WHERE seq = 4`).run();
    assert.deepEqual(problemOf(log.verify()), { firstBadSeq: 4, problem: 'edited' });
    restore();
    db.prepare(`UPDATE audit SET actor = 'someone-else' WHERE seq = 13`).run();
    assert.deepEqual(problemOf(log.verify()), { firstBadSeq: 13, problem: 'edited' });
    restore();
    // A column of another type (a BLOB holding the same bytes; a TEXT column keeps what it is given).
    db.prepare(`UPDATE audit SET details = CAST(details AS BLOB) WHERE seq = 3`).run();
    assert.deepEqual(problemOf(log.verify()), { firstBadSeq: 3, problem: 'edited' });
    // Each verify above stopped at the break, and each restore() writes on the same connection: a verify that
    // left its SELECT open would leave the connection busy and the write would throw.
    restore();

    // Rewrite rows 12.. with recomputed hashes, as an attacker with the file can: only the checkpoints see it.
    const rows = [...log.rows()];
    let prev = rows[10]!.hash;
    const upd = db.prepare('UPDATE audit SET details = ?, prev_hash = ?, hash = ? WHERE seq = ?');
    for (const row of rows.slice(11)) {
      const forged = { ...row, details: { i: 0 }, prevHash: prev };
      const hash = computeRowHash(forged);
      upd.run(canonicalize(forged.details), prev, hash, row.seq);
      prev = hash;
    }
    // Checkpoints sit at 1, 6, 11, 16: the one at 11 still matches, so the rewrite is placed after it.
    assert.deepEqual(problemOf(log.verify()), { firstBadSeq: 12, problem: 'checkpoint_mismatch' });
    db.close();
  });

  test('verify hashes the stored details text itself and refuses non-canonical text even under a recomputed hash', () => {
    const { db } = freshDb();
    const log = new AuditLog(db, 'acme');
    for (let i = 1; i <= 5; i++) log.append({ actor: 'op', action: 'command_sent', subject: `agent:${i}`, details: { b: [i, 'ü'], a: 0.1 } });
    const row = log.rowAt(5)!;
    // No checkpoints: an attacker with the file can rewrite the newest row and recompute its hash.
    const rewrite = (detailsText: string): void => {
      const encoded =
        `{"action":"${row.action}","actor":"${row.actor}","details":${detailsText},"prevHash":"${row.prevHash}",` +
        `"seq":5,"subject":"${row.subject}","tenant":"acme","ts":"${row.ts}","v":1}`;
      const hash = createHash('sha256').update(Buffer.from(row.prevHash, 'hex')).update(encoded, 'utf8').digest('hex');
      db.prepare('UPDATE audit SET details = ?, hash = ? WHERE seq = 5').run(detailsText, hash);
    };
    // Control: canonical text under a recomputed hash is indistinguishable from a genuine row (AUDIT-CHAIN.md).
    rewrite('{"a":0.2,"b":[5,"ü"]}');
    assert.equal(log.verify().ok, true);
    for (const text of ['{"b":[5,"ü"],"a":0.1}', '{"a":0.1, "b":[5,"ü"]}', '{"a":1E-1,"b":[5,"ü"]}', '{"a":0.1,"b":[5,"\\u00fc"]}', '[1]', '{"a":']) {
      rewrite(text);
      assert.deepEqual(problemOf(log.verify()), { firstBadSeq: 5, problem: 'edited' }, text);
    }
    db.close();
  });

  test('rows() filters by seq range, action and literal subject prefix', () => {
    const { db } = freshDb();
    const log = new AuditLog(db, 'acme');
    log.append({ actor: 'op', action: 'run_workflow', subject: 'run:a%1' });
    log.append({ actor: 'op', action: 'approve_gate', subject: 'gate:x' });
    log.append({ actor: 'op', action: 'run_workflow', subject: 'RUN:b' });
    log.append({ actor: 'op', action: 'run_workflow', subject: 'run:ab' });
    const seqs = (f: Parameters<AuditLog['rows']>[0]): number[] => [...log.rows(f)].map((r) => r.seq);
    assert.deepEqual(seqs({ sinceSeq: 2, untilSeq: 3 }), [2, 3]);
    assert.deepEqual(seqs({ action: 'run_workflow' }), [1, 3, 4]);
    assert.deepEqual(seqs({ subjectPrefix: 'run:' }), [1, 4]);
    assert.deepEqual(seqs({ subjectPrefix: 'run:a%' }), [1]);
    assert.deepEqual(seqs({ action: 'run_workflow', sinceSeq: 2, subjectPrefix: 'run:' }), [4]);
    db.close();
  });

  test('refuses entries it cannot store faithfully, with stable codes', () => {
    const { db } = freshDb();
    const log = new AuditLog(db, 'acme');
    const invalid = (e: unknown): boolean => e instanceof AuditLogError && e.code === AuditLogErrorCode.invalidEntry;
    assert.throws(() => log.append({ actor: '', action: 'x', subject: 's' }), invalid);
    assert.throws(() => log.append({ actor: 'a', action: 'Not Valid', subject: 's' }), invalid);
    assert.throws(() => log.append({ actor: 'a'.repeat(257), action: 'x', subject: 's' }), invalid);
    assert.throws(() => log.append({ actor: 'a', action: 'x', subject: 's', details: { big: 'x'.repeat(70_000) } }), invalid);
    assert.throws(() => log.append({ actor: 'a', action: 'x', subject: 's', details: { n: NaN } }), CanonicalJsonError);
    assert.equal(db.prepare('SELECT count(*) FROM audit').pluck().get(), 0);
    db.close();
  });

  test('ensureAuditSchema is idempotent on an existing file', () => {
    const { db } = freshDb();
    ensureAuditSchema(db);
    ensureAuditSchema(db);
    const log = new AuditLog(db, 'acme');
    log.append({ actor: 'op', action: 'create_tenant', subject: 'tenant:acme' });
    assert.equal(new AuditLog(db, 'acme').head().seq, 1);
    db.close();
  });

  test('4 processes appending at once (with retried appends) keep one linear chain with no gaps or duplicates', async () => {
    const { db, file } = freshDb();
    const keys = newKeyPair();
    ensureAuditSchema(db);
    const appender = fileURLToPath(new URL('../support/audit-appender.ts', import.meta.url));
    const perWriter = 100;
    const writers = ['w1', 'w2', 'w3', 'w4'];
    const children = writers.map((w) => {
      const child = spawn(process.execPath, ['--import', 'tsx', appender, file, 'acme', w, String(perWriter), '2'], {
        env: { ...process.env, ORCH_TEST_AUDIT_SEED: keys.seed.toString('hex') },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      let markReady: () => void = () => {};
      const ready = new Promise<void>((resolve) => (markReady = resolve));
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.startsWith('ready\n')) markReady();
      });
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const done = new Promise<{ writer: string; seqs: number[] }>((resolve, reject) => {
        child.on('error', reject);
        child.on('exit', (code) => {
          markReady();
          if (code !== 0) return reject(new Error(`${w} exited ${code}: ${err}`));
          resolve(JSON.parse(out.slice('ready\n'.length).trim()) as { writer: string; seqs: number[] });
        });
      });
      return { child, ready, done };
    });
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.child.stdin.end('go\n');
    const outputs = await Promise.all(children.map((c) => c.done));
    const total = perWriter * writers.length;
    const handedOut = outputs.flatMap((o) => o.seqs).sort((a, b) => a - b);
    assert.deepEqual(handedOut, Array.from({ length: total }, (_, i) => i + 1), 'every writer got distinct seqs, no gaps');
    // The writers really interleaved, or this test would prove nothing about concurrency.
    const interleaved = outputs.filter((o) => o.seqs[o.seqs.length - 1]! - o.seqs[0]! + 1 > o.seqs.length);
    assert.ok(interleaved.length >= 2, 'writers interleaved');

    const log = new AuditLog(db, 'acme');
    assert.equal(db.prepare('SELECT count(*) FROM audit').pluck().get(), total);
    assert.equal(db.prepare('SELECT count(DISTINCT idem_key) FROM audit').pluck().get(), total);
    assert.deepEqual(log.verify(keys.publicKey), { ok: true, count: total, head: log.head() });
    assert.ok(log.checkpoints().length >= total / 25, 'checkpoints were signed by the writers');
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();
  });
});
