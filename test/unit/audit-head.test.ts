/**
 * The signed head outside the store and the checkpoint rule, in the verifier (protocol/audit-chain.ts) and in the
 * log that copies each checkpoint out after its commit (desktop-worker/audit-log.ts). The OS keychain itself is
 * exercised in test/integration/audit-head.test.ts; here the head store is a map, to reach the transaction cases.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import Database from 'better-sqlite3';
import {
  GENESIS_HASH,
  ed25519CheckpointSigner,
  nextAuditRow,
  signCheckpoint,
  validateAuditChain,
  type AuditRow,
  type SignedCheckpoint,
} from '../../protocol/audit-chain';
import { ed25519KeyPairFromSeed } from '../../protocol/primitives';
import { AuditLog } from '../../desktop-worker/audit-log';
import type { AuditHeadStore } from '../../desktop-worker/audit-head';

const signer = ed25519CheckpointSigner(ed25519KeyPairFromSeed(Buffer.alloc(32, 7)));
const other = ed25519CheckpointSigner(ed25519KeyPairFromSeed(Buffer.alloc(32, 8)));
const key = signer.publicKey;
const T0 = Date.UTC(2026, 0, 1);

function chain(n: number, stepMs = 1000): AuditRow[] {
  const rows: AuditRow[] = [];
  let head = { seq: 0, hash: GENESIS_HASH };
  for (let i = 0; i < n; i++) {
    const row = nextAuditRow(head, { ts: new Date(T0 + i * stepMs).toISOString(), tenant: 'acme', actor: 'a', action: 'command_sent', subject: `s${i}`, details: { i } });
    rows.push(row);
    head = row;
  }
  return rows;
}

function cp(row: AuditRow, by = signer): SignedCheckpoint {
  return signCheckpoint({ tenant: 'acme', seq: row.seq, hash: row.hash, ts: row.ts }, by);
}

const policy = { every: 10, intervalMs: 60_000 };

describe('validateAuditChain with a signed head and the checkpoint rule', () => {
  const rows = chain(25);
  const cps = [cp(rows[0]!), cp(rows[9]!), cp(rows[19]!)];

  test('a genuine chain passes with the head at its last checkpoint, or behind it (a kill before the copy)', () => {
    for (const head of [cps[2]!, cps[1]!, cps[0]!]) {
      const r = validateAuditChain(rows, { checkpoints: cps, trustedPublicKey: key, signedHead: head, checkpointPolicy: policy });
      assert.ok(r.ok, JSON.stringify(r));
    }
  });

  test('a rewritten chain with its checkpoints deleted fails at the head', () => {
    let head = { seq: 0, hash: GENESIS_HASH };
    const rewritten = rows.map((r) => {
      const row = nextAuditRow(head, { ts: r.ts, tenant: 'acme', actor: 'mallory', action: r.action, subject: r.subject, details: r.details });
      head = row;
      return row;
    });
    const r = validateAuditChain(rewritten, { checkpoints: [], trustedPublicKey: key, signedHead: cps[2]!, checkpointPolicy: policy });
    assert.deepEqual(r.ok ? r : [r.problem, r.firstBadSeq], ['head_mismatch', 1]);
  });

  test('an emptied chain, a cut tail and deleted checkpoints are named', () => {
    const empty = validateAuditChain([], { checkpoints: [], trustedPublicKey: key, signedHead: cps[2]! });
    assert.deepEqual(empty.ok ? empty : [empty.problem, empty.firstBadSeq], ['truncated', 1]);
    const cut = validateAuditChain(rows.slice(0, 15), { checkpoints: cps.slice(0, 2), trustedPublicKey: key, signedHead: cps[2]!, checkpointPolicy: policy });
    assert.deepEqual(cut.ok ? cut : [cut.problem, cut.firstBadSeq], ['truncated', 16]);
    const gone = validateAuditChain(rows, { checkpoints: cps.slice(0, 2), trustedPublicKey: key, signedHead: cps[2]! });
    assert.deepEqual(gone.ok ? gone : [gone.problem, gone.firstBadSeq], ['checkpoint_deleted', 20]);
  });

  test('a head signed by another key, or for another tenant, is refused', () => {
    const foreign = validateAuditChain(rows, { checkpoints: cps, trustedPublicKey: key, signedHead: cp(rows[19]!, other) });
    assert.deepEqual(foreign.ok ? foreign : foreign.problem, 'bad_checkpoint_signature');
    const elsewhere = signCheckpoint({ tenant: 'other', seq: 20, hash: rows[19]!.hash, ts: rows[19]!.ts }, signer);
    const r = validateAuditChain(rows, { checkpoints: cps, trustedPublicKey: key, signedHead: elsewhere });
    assert.deepEqual(r.ok ? r : r.problem, 'head_mismatch');
  });

  test('the checkpoint rule: no checkpoint at all, too many rows, or a row past the interval without one', () => {
    const none = validateAuditChain(rows, { checkpoints: [], trustedPublicKey: key, checkpointPolicy: policy });
    assert.deepEqual(none.ok ? none : [none.problem, none.firstBadSeq], ['unsigned_rows', 1]);
    // Rows 21..30 after the checkpoint at 20: the writer would have signed row 30.
    const long = chain(30);
    const many = validateAuditChain(long, { checkpoints: [cp(long[0]!), cp(long[9]!), cp(long[19]!)], trustedPublicKey: key, checkpointPolicy: policy });
    assert.deepEqual(many.ok ? many : [many.problem, many.firstBadSeq], ['unsigned_rows', 21]);
    const under = validateAuditChain(long.slice(0, 29), { checkpoints: [cp(long[0]!), cp(long[9]!), cp(long[19]!)], trustedPublicKey: key, checkpointPolicy: policy });
    assert.ok(under.ok, JSON.stringify(under));
    // 20 s apart: row 4 is 60 s after the checkpoint at row 1, so it must carry one.
    const slow = chain(5, 20_000);
    const late = validateAuditChain(slow, { checkpoints: [cp(slow[0]!)], trustedPublicKey: key, checkpointPolicy: policy });
    assert.deepEqual(late.ok ? late : [late.problem, late.firstBadSeq], ['unsigned_rows', 4]);
    const onTime = validateAuditChain(slow, { checkpoints: [cp(slow[0]!), cp(slow[3]!)], trustedPublicKey: key, checkpointPolicy: policy });
    assert.ok(onTime.ok, JSON.stringify(onTime));
  });
});

class MapHeads implements AuditHeadStore {
  readonly where = 'a map';
  readonly heads = new Map<string, SignedCheckpoint>();
  writes = 0;
  read(tenant: string): SignedCheckpoint | null {
    return this.heads.get(tenant) ?? null;
  }
  write(head: SignedCheckpoint, replace = false): void {
    this.writes++;
    const stored = this.heads.get(head.tenant);
    if (!replace && stored && stored.seq >= head.seq) return;
    this.heads.set(head.tenant, head);
  }
}

describe('AuditLog copies each checkpoint out after it commits', () => {
  test('the head follows the checkpoints, never ahead of the database, and seal() signs the rest', () => {
    const db = new Database(':memory:');
    const heads = new MapHeads();
    const log = new AuditLog(db, 'acme', { signer, checkpointEvery: 5, heads });
    for (let i = 0; i < 12; i++) log.append({ actor: 'a', action: 'x', subject: 's' });
    assert.equal(heads.read('acme')?.seq, 11);
    assert.equal(heads.writes, 3, 'one write per checkpoint (rows 1, 6 and 11), none per row');
    log.seal();
    assert.equal(heads.read('acme')?.seq, 12);
    const r = log.verify(key, { signedHead: heads.read('acme')!, checkpointPolicy: log.checkpointPolicy });
    assert.ok(r.ok, JSON.stringify(r));
    db.close();
  });

  test('a checkpoint inside an enclosing transaction is copied only after it commits, and never if it rolls back', () => {
    const db = new Database(':memory:');
    const heads = new MapHeads();
    const log = new AuditLog(db, 'acme', { signer, checkpointEvery: 2, heads });
    log.append({ actor: 'a', action: 'x', subject: 's' });
    assert.equal(heads.read('acme')?.seq, 1);
    db.transaction(() => {
      log.append({ actor: 'a', action: 'x', subject: 's' });
      log.append({ actor: 'a', action: 'x', subject: 's' }); // checkpoint at 3, not yet committed
      assert.equal(heads.read('acme')?.seq, 1, 'not copied before the commit');
    })();
    log.seal();
    assert.equal(heads.read('acme')?.seq, 3);

    assert.throws(() =>
      db.transaction(() => {
        log.append({ actor: 'a', action: 'x', subject: 's' });
        log.append({ actor: 'a', action: 'x', subject: 's' }); // checkpoint at 5, rolled back below
        throw new Error('roll back');
      })(),
    );
    log.append({ actor: 'a', action: 'x', subject: 's' }); // seq 4 again, no checkpoint due
    assert.equal(heads.read('acme')?.seq, 3, 'the rolled-back checkpoint at 5 was never copied');
    const r = log.verify(key, { signedHead: heads.read('acme')!, checkpointPolicy: log.checkpointPolicy });
    assert.ok(r.ok, JSON.stringify(r));
    db.close();
  });
});
