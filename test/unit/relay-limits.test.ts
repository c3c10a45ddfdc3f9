/**
 * The relay's admission and limits, piece by piece: the join and admin frames against the known-answer vectors
 * (protocol/vectors/relay-handshake-v1.json "join", "admin_frames"), the admission store (relay/admission.ts), the
 * seen-keys table that never evicts admitted keys, the offline queue's relay-wide bounds and the per-IP grouping.
 * The whole relay over real sockets is test/integration/relay-admission.test.ts.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { ed25519KeyPairFromSeed } from '../../protocol/primitives';
import {
  AUTH_JOIN_LABEL,
  decodeFrame,
  derivePermitSecret,
  encodeAdminOkFrame,
  encodeKeyListFrame,
  encodePermitFrame,
  permitHash,
  verifyAuth,
} from '../../protocol/relay-handshake';
import { RELAY_VECTORS_PATH, renderRelayHandshakeVectors } from '../../protocol/vectors/generate-relay-handshake-vectors';
import { Admission, AdmissionConfigError, readAdminKeysFile, MAX_PERMIT_LIFETIME_MS } from '../../relay/admission';
import { OfflineQueue } from '../../relay/offline-queue';
import { addressGroup } from '../../relay/relay-core';
import { SeenKeys } from '../../relay/seen-keys';

const h = (s: string) => Buffer.from(s, 'hex');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'orch-relay-limits-'));
const key = (n: number) => n.toString(16).padStart(64, '0');

interface JoinVectors {
  auth_join_label: string;
  permit_secret_label: string;
  join_secret: string;
  permit_secret: string;
  permit_hash: string;
  auth_join_message: string;
  signature: string;
  auth_join_frame: string;
  verify: Array<{ name: string; frame: string; issued: { challenge: string; relay_id: string; issued_at: number } | null; now: number; expect: string; permit_secret?: string }>;
}
const vectors = JSON.parse(fs.readFileSync(RELAY_VECTORS_PATH, 'utf8')) as {
  client: { sign_seed: string; sign_public: string };
  login: { challenge: string; relay_id: string; client_time: number };
  join: JoinVectors;
  admin_frames: Record<string, string | number | string[]>;
};

describe('join and admin frames: known-answer vectors', () => {
  test('the committed vectors are what the generator makes', () => {
    assert.equal(fs.readFileSync(RELAY_VECTORS_PATH, 'utf8'), renderRelayHandshakeVectors());
  });

  test('permit secret, permit hash and the AUTH_JOIN message rebuilt by hand', () => {
    const j = vectors.join;
    assert.equal(h(j.auth_join_label).toString('latin1'), 'orch/relay/v1/auth-join\u0000');
    assert.ok(AUTH_JOIN_LABEL.equals(h(j.auth_join_label)));
    assert.equal(derivePermitSecret(h(j.join_secret)).toString('hex'), j.permit_secret);
    assert.equal(createHash('sha256').update(h(j.permit_secret)).digest('hex'), j.permit_hash);
    assert.equal(permitHash(h(j.permit_secret)).toString('hex'), j.permit_hash);
    const time = Buffer.alloc(8);
    time.writeBigUInt64BE(BigInt(vectors.login.client_time));
    const byHand = Buffer.concat([h(j.auth_join_label), h(vectors.login.challenge), h(vectors.login.relay_id), h(vectors.client.sign_public), time, h(j.permit_secret)]);
    assert.equal(byHand.toString('hex'), j.auth_join_message);
    // type 0x06, v, key, time, signature, then the permit secret
    assert.equal(j.auth_join_frame, Buffer.concat([Buffer.from([0x06, 0x01]), h(vectors.client.sign_public), time, h(j.signature), h(j.permit_secret)]).toString('hex'));
  });

  for (const c of vectors.join.verify) {
    test(`verify: ${c.name} → ${c.expect}`, () => {
      const issued = c.issued && { challenge: h(c.issued.challenge), relayId: h(c.issued.relay_id), issuedAt: c.issued.issued_at };
      const result = verifyAuth(h(c.frame), issued, c.now);
      assert.equal(result.ok ? 'ok' : result.reason, c.expect);
      if (result.ok && c.permit_secret) assert.equal(result.permitSecret?.toString('hex'), c.permit_secret);
    });
  }

  test('ALLOW, DENY, PERMIT, ADMIN_OK and the not_admin ERROR encode and decode as the vectors say', () => {
    const a = vectors.admin_frames;
    const requestId = h(a.request_id as string);
    const keys = (a.keys as string[]).map(h);
    assert.equal(encodeKeyListFrame({ type: 'allow', requestId, keys }).toString('hex'), a.allow_frame);
    assert.equal(encodeKeyListFrame({ type: 'deny', requestId, keys: [keys[1]!] }).toString('hex'), a.deny_frame);
    assert.equal(encodePermitFrame({ requestId, permitHash: h(vectors.join.permit_hash), expiresAt: a.permit_expires_at as number }).toString('hex'), a.permit_frame);
    assert.equal(encodeAdminOkFrame({ requestId, changed: 2 }).toString('hex'), a.admin_ok_frame);
    const allow = decodeFrame(h(a.allow_frame as string));
    assert.ok(allow.ok && allow.frame.type === 'allow' && allow.frame.keys.length === 2);
    const ok = decodeFrame(h(a.admin_ok_frame as string));
    assert.ok(ok.ok && ok.frame.type === 'adminOk' && ok.frame.changed === 2);
    const err = decodeFrame(h(a.not_admin_error_frame as string));
    assert.ok(err.ok && err.frame.type === 'error' && err.frame.code === 'not_admin' && err.frame.ref === a.request_id);
    // strict: a count that disagrees with the length, zero keys, a trailing byte
    const allowBytes = h(a.allow_frame as string);
    assert.deepEqual(decodeFrame(allowBytes.subarray(0, allowBytes.length - 1)), { ok: false, reason: 'malformed_frame' });
    assert.deepEqual(decodeFrame(Buffer.concat([allowBytes, Buffer.from([0])])), { ok: false, reason: 'malformed_frame' });
    const zero = Buffer.from(allowBytes.subarray(0, 20));
    zero.writeUInt16BE(0, 18);
    assert.deepEqual(decodeFrame(zero.subarray(0, 20)), { ok: false, reason: 'malformed_frame' });
  });

  test('the vectors use the same client key as the login vectors', () => {
    assert.equal(ed25519KeyPairFromSeed(h(vectors.client.sign_seed)).publicKey.toString('hex'), vectors.client.sign_public);
  });
});

describe('admission store', () => {
  test('admins are admitted; a key is admitted while one current admin allows it; persisted 0600', () => {
    const dir = tmp();
    const [a1, a2, k] = [key(1), key(2), key(3)];
    const adm = new Admission(dir, [a1, a2]);
    assert.equal(adm.isAdmitted(a1), true);
    assert.equal(adm.isAdmitted(k), false);
    assert.deepEqual(adm.allow(a1, [k, k]), { ok: true, changed: 1, admitted: [k] });
    assert.deepEqual(adm.allow(a2, [k]), { ok: true, changed: 1, admitted: [] });
    assert.deepEqual(adm.deny(a1, [k]), { changed: 1, unadmitted: [] });
    assert.equal(adm.isAdmitted(k), true, 'still allowed by a2');
    assert.equal(fs.statSync(path.join(dir, 'allowed-keys.json')).mode & 0o777, 0o600);
    // a restart keeps it; an admin removed from the configuration takes its allowances with it
    assert.equal(new Admission(dir, [a1, a2]).isAdmitted(k), true);
    assert.equal(new Admission(dir, [a1]).isAdmitted(k), false);
    assert.deepEqual(adm.deny(a2, [k]), { changed: 1, unadmitted: [k] });
  });

  test('a change that cannot be written is undone and reported, never acknowledged', () => {
    const dir = tmp();
    const admin = key(1);
    const adm = new Admission(dir, [admin]);
    adm.allow(admin, [key(20)]);
    // A directory where the files go: the atomic rename fails, for root too.
    fs.rmSync(path.join(dir, 'allowed-keys.json'));
    fs.mkdirSync(path.join(dir, 'allowed-keys.json'));
    fs.mkdirSync(path.join(dir, 'permits.json'));
    assert.throws(() => adm.allow(admin, [key(21)]));
    assert.equal(adm.isAdmitted(key(21)), false);
    assert.throws(() => adm.deny(admin, [key(20)]));
    assert.equal(adm.isAdmitted(key(20)), true);
    assert.throws(() => adm.addPermit(admin, key(30), 2000, 1000));
    assert.equal(adm.permitCount, 0);
  });

  test('per-admin bound: ALLOW is all or nothing', () => {
    const adm = new Admission(tmp(), [key(1)], { maxAllowedPerAdmin: 2, maxPermitsPerAdmin: 1 });
    assert.deepEqual(adm.allow(key(1), [key(10), key(11), key(12)]), { ok: false, reason: 'allowlist_full' });
    assert.equal(adm.isAdmitted(key(10)), false);
    assert.equal(adm.allow(key(1), [key(10), key(11)]).ok, true);
  });

  test('permits: single use, expiry, unknown, bounded lifetime and count, persisted before use returns', () => {
    const dir = tmp();
    const admin = key(1);
    const adm = new Admission(dir, [admin], { maxAllowedPerAdmin: 10, maxPermitsPerAdmin: 2 });
    const secret = derivePermitSecret(Buffer.alloc(32, 7));
    const hash = permitHash(secret).toString('hex');
    const now = 1_000_000;
    assert.deepEqual(adm.addPermit(admin, hash, now - 1, now), { ok: false, reason: 'permit_invalid' });
    assert.deepEqual(adm.addPermit(admin, hash, now + MAX_PERMIT_LIFETIME_MS + 1, now), { ok: false, reason: 'permit_invalid' });
    assert.deepEqual(adm.addPermit(admin, hash, now + 1000, now), { ok: true });
    assert.deepEqual(adm.addPermit(admin, hash, now + 1000, now), { ok: false, reason: 'permit_invalid' }, 'the same hash twice');
    assert.deepEqual(adm.addPermit(admin, key(5), now + 1000, now), { ok: true });
    assert.deepEqual(adm.addPermit(admin, key(6), now + 1000, now), { ok: false, reason: 'permits_full' });
    assert.deepEqual(adm.usePermit(Buffer.alloc(32, 1), now), { ok: false, reason: 'permit_unknown' });
    assert.deepEqual(adm.usePermit(secret, now + 10), { ok: true, admin });
    // what is on disk already says used: a relay killed right now does not accept it again
    assert.deepEqual(new Admission(dir, [admin]).usePermit(secret, now + 20), { ok: false, reason: 'permit_reused' });
    assert.deepEqual(adm.usePermit(secret, now + 20), { ok: false, reason: 'permit_reused' });
    const late = derivePermitSecret(Buffer.alloc(32, 8));
    const adm2 = new Admission(tmp(), [admin]);
    adm2.addPermit(admin, permitHash(late).toString('hex'), now + 100, now);
    assert.deepEqual(adm2.usePermit(late, now + 101), { ok: false, reason: 'permit_expired' });
    // a permit of an admin that is no longer configured is unknown
    const adm3dir = tmp();
    const p3 = derivePermitSecret(Buffer.alloc(32, 9));
    new Admission(adm3dir, [admin]).addPermit(admin, permitHash(p3).toString('hex'), now + 1000, now);
    assert.deepEqual(new Admission(adm3dir, [key(2)]).usePermit(p3, now), { ok: false, reason: 'permit_unknown' });
  });

  test('the admin-keys file: one key a line, comments, refused when others can write it', () => {
    const dir = tmp();
    const file = path.join(dir, 'admin-keys');
    fs.writeFileSync(file, `# desktops\n${key(1)}  # laptop\n\n${key(2).toUpperCase()}\n`, { mode: 0o600 });
    assert.deepEqual(readAdminKeysFile(dir), [key(1), key(2)]);
    fs.chmodSync(file, 0o666);
    assert.throws(() => readAdminKeysFile(dir), AdmissionConfigError);
    fs.chmodSync(file, 0o600);
    fs.writeFileSync(file, 'not-a-key\n');
    assert.throws(() => readAdminKeysFile(dir), /line 1/);
    assert.deepEqual(readAdminKeysFile(tmp()), []);
  });
});

describe('seen keys, queue bounds, address groups', () => {
  test('a flood of fresh keys never evicts a pinned (admitted) key; persisted pinned keys come back pinned', () => {
    const dir = tmp();
    const admitted = new Set([key(1)]);
    const seen = new SeenKeys(dir, 10, (k) => admitted.has(k));
    seen.touch(key(1), 1);
    seen.touch(key(2), 2);
    for (let i = 100; i < 1100; i++) seen.touch(key(i), i);
    assert.equal(seen.has(key(1)), true);
    assert.equal(seen.has(key(2)), false);
    assert.equal(seen.size, 11);
    seen.close();
    const again = new SeenKeys(dir, 10, (k) => admitted.has(k));
    assert.equal(again.has(key(1)), true);
    for (let i = 2000; i < 2100; i++) again.touch(key(i), i);
    assert.equal(again.has(key(1)), true);
    // unpinned, it ages out like the rest
    admitted.delete(key(1));
    again.unpin(key(1), 3000);
    for (let i = 4000; i < 4020; i++) again.touch(key(i), i);
    assert.equal(again.has(key(1)), false);
    again.close();
  });

  test('the offline queue refuses relay_full when all queues together are full, queue_full for one recipient', () => {
    const q = new OfflineQueue({ maxCount: 2, maxBytes: 1000, ttlMs: 60_000, maxTotalBytes: 1500, maxTotalCount: 3 });
    const item = (n: number) => ({ frame: Buffer.alloc(n), msgId: '00'.repeat(16), expiresAt: 1e12 });
    assert.deepEqual(q.enqueue('a', item(400)), { ok: true });
    assert.deepEqual(q.enqueue('a', item(400)), { ok: true });
    assert.deepEqual(q.enqueue('a', item(10)), { ok: false, reason: 'queue_full' });
    assert.deepEqual(q.enqueue('b', item(600)), { ok: true });
    assert.deepEqual(q.enqueue('c', item(200)), { ok: false, reason: 'relay_full' }, 'bytes');
    assert.deepEqual(q.enqueue('c', item(1)), { ok: false, reason: 'relay_full' }, 'count');
  });

  test('per-IP limits group IPv4-mapped addresses with IPv4, and IPv6 by /64', () => {
    assert.equal(addressGroup('127.0.0.2'), '127.0.0.2');
    assert.equal(addressGroup('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(addressGroup('2001:db8:0:1:aaaa::1'), '2001:db8:0:1::/64');
    assert.equal(addressGroup('2001:db8:0:1:bbbb:cccc:dddd:eeee'), '2001:db8:0:1::/64');
    assert.equal(addressGroup('::1'), '0:0:0:0::/64');
    assert.equal(addressGroup('fe80::1'), 'fe80:0:0:0::/64');
  });
});
