import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { execFileSync } from 'node:child_process';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ed25519KeyPairFromSeed, randomBytes } from '../../protocol/primitives';
import {
  AUTH_LABEL,
  FrameType,
  answerChallenge,
  decodeFrame,
  encodeErrorFrame,
  issueChallenge,
  pinToRelayId,
  readChallenge,
  spkiPin,
  verifyAuth,
} from '../../protocol/relay-handshake';
import { RELAY_VECTORS_PATH, renderRelayHandshakeVectors } from '../../protocol/vectors/generate-relay-handshake-vectors';
import { loadOrCreateCertificate } from '../../relay/certificate';

interface Vectors {
  auth_label: string;
  client: { sign_seed: string; sign_public: string };
  login: {
    relay_id: string;
    challenge: string;
    relay_time: number;
    client_time: number;
    challenge_frame: string;
    auth_message: string;
    signature: string;
    auth_frame: string;
    auth_ok_frame: string;
    auth_ok_queued: number;
  };
  error_frames: Array<{ code: string; ref?: string; frame: string }>;
  verify: Array<{ name: string; auth_frame: string; issued: { challenge: string; relay_id: string; issued_at: number } | null; now: number; expect: string }>;
}

const vectors = JSON.parse(readFileSync(RELAY_VECTORS_PATH, 'utf8')) as Vectors;
const h = (s: string) => Buffer.from(s, 'hex');

describe('relay handshake v1 known-answer vectors', () => {
  test('the committed vector file is what the generator produces', () => {
    assert.equal(readFileSync(RELAY_VECTORS_PATH, 'utf8'), renderRelayHandshakeVectors());
  });

  test('the auth label is the documented ASCII string with its NUL, and differs from the envelope label', () => {
    assert.equal(h(vectors.auth_label).toString('latin1'), 'orch/relay/v1/auth\u0000');
    assert.ok(AUTH_LABEL.equals(h(vectors.auth_label)));
  });

  test('the auth message is laid out as the spec says, byte for byte (built here by hand)', () => {
    const l = vectors.login;
    const time = Buffer.alloc(8);
    time.writeBigUInt64BE(BigInt(l.client_time));
    const byHand = Buffer.concat([Buffer.from('orch/relay/v1/auth\u0000', 'latin1'), h(l.challenge), h(l.relay_id), h(vectors.client.sign_public), time]);
    assert.equal(l.auth_message, byHand.toString('hex'));
    // AUTH frame: 0x02 | version | key | time | signature
    assert.equal(l.auth_frame, Buffer.concat([Buffer.from([0x02, 0x01]), h(vectors.client.sign_public), time, h(l.signature)]).toString('hex'));
  });

  test('a second Ed25519 implementation (node:crypto / OpenSSL) accepts the vector signature', () => {
    const spki = Buffer.concat([h('302a300506032b6570032100'), h(vectors.client.sign_public)]);
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    assert.equal(nodeVerify(null, h(vectors.login.auth_message), key, h(vectors.login.signature)), true);
  });

  test('answerChallenge reproduces the vector frame from the seed', () => {
    const l = vectors.login;
    const identity = ed25519KeyPairFromSeed(h(vectors.client.sign_seed));
    assert.equal(answerChallenge({ challenge: h(l.challenge), relayId: h(l.relay_id), identity, clientTime: l.client_time }).toString('hex'), l.auth_frame);
  });

  test('the challenge frame decodes to its fields and is accepted only with the pinned relay id', () => {
    const l = vectors.login;
    const ok = readChallenge(h(l.challenge_frame), h(l.relay_id));
    assert.ok(ok.ok);
    assert.equal(ok.challenge.toString('hex'), l.challenge);
    assert.equal(ok.relayTime, l.relay_time);
    const other = readChallenge(h(l.challenge_frame), Buffer.alloc(32, 0xa0));
    assert.deepEqual(other, { ok: false, reason: 'relay_id_mismatch' });
    assert.deepEqual(readChallenge(h(l.auth_frame), h(l.relay_id)), { ok: false, reason: 'unexpected_frame' });
  });

  test('AUTH_OK and ERROR frames decode as recorded', () => {
    const okFrame = decodeFrame(h(vectors.login.auth_ok_frame));
    assert.ok(okFrame.ok && okFrame.frame.type === 'authOk');
    assert.equal(okFrame.frame.queued, vectors.login.auth_ok_queued);
    assert.equal(okFrame.frame.clientKey.toString('hex'), vectors.client.sign_public);
    for (const e of vectors.error_frames) {
      assert.equal(encodeErrorFrame(e.code, e.ref).toString('hex'), e.frame);
      const d = decodeFrame(h(e.frame));
      assert.ok(d.ok && d.frame.type === 'error');
      assert.equal(d.frame.code, e.code);
      assert.equal(d.frame.ref, e.ref);
    }
  });

  for (const c of vectors.verify) {
    test(`verify: ${c.name} → ${c.expect}`, () => {
      const issued = c.issued && { challenge: h(c.issued.challenge), relayId: h(c.issued.relay_id), issuedAt: c.issued.issued_at };
      const result = verifyAuth(h(c.auth_frame), issued, c.now);
      assert.equal(result.ok ? 'ok' : result.reason, c.expect);
      if (result.ok) assert.equal(result.clientKey.toString('hex'), vectors.client.sign_public);
    });
  }
});

describe('relay handshake with fresh values', () => {
  test('issueChallenge draws a new 32-byte challenge every time', () => {
    const relayId = randomBytes(32);
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(issueChallenge(relayId, 0).issued.challenge.toString('hex'));
    assert.equal(seen.size, 100);
  });

  test('an answer to one challenge does not log in against another', () => {
    const relayId = randomBytes(32);
    const identity = ed25519KeyPairFromSeed(randomBytes(32));
    const first = issueChallenge(relayId, Date.now()).issued;
    const second = issueChallenge(relayId, Date.now()).issued;
    const answer = answerChallenge({ challenge: first.challenge, relayId, identity, clientTime: Date.now() });
    assert.equal(verifyAuth(answer, first, Date.now()).ok, true);
    assert.deepEqual(verifyAuth(answer, second, Date.now()), { ok: false, reason: 'bad_signature' });
  });

  test('decodeFrame never throws and only accepts the five frame types', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const r = decodeFrame(bytes);
        if (r.ok) assert.ok(Object.values(FrameType).includes(bytes[0] as never));
        verifyAuth(bytes, null, 0);
        readChallenge(bytes, Buffer.alloc(32));
      }),
      { numRuns: 2000 },
    );
  });

  test('encodeErrorFrame refuses codes and refs outside the format', () => {
    assert.throws(() => encodeErrorFrame('Bad Code'), RangeError);
    assert.throws(() => encodeErrorFrame('rate_limited', 'abc'), RangeError);
    assert.throws(() => encodeErrorFrame('rate_limited', 'A'.repeat(32)), RangeError);
  });

  test('pinToRelayId accepts exactly sha256/ + base64 of 32 bytes', () => {
    const bytes = randomBytes(32);
    assert.ok(pinToRelayId(`sha256/${bytes.toString('base64')}`).equals(bytes));
    for (const bad of ['', 'sha256/', `sha1/${bytes.toString('base64')}`, `sha256/${bytes.subarray(1).toString('base64')}`, `sha256/${bytes.toString('base64url')}`, ` sha256/${bytes.toString('base64')}`]) {
      assert.throws(() => pinToRelayId(bad), RangeError, bad);
    }
  });
});

describe('certificate and pin', () => {
  test('spkiPin agrees with openssl, and the generated key file is 0600 and reused on the next start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'orch-relay-cert-'));
    const first = await loadOrCreateCertificate({ dataDir: dir, host: '127.0.0.1' });
    assert.equal(first.created, true);
    const { statSync } = await import('node:fs');
    assert.equal(statSync(first.keyFile).mode & 0o777, 0o600);
    const certPath = join(dir, 'check.pem');
    writeFileSync(certPath, first.certPem);
    const pubDer = execFileSync('sh', ['-c', `openssl x509 -in '${certPath}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`]);
    assert.equal(first.pin, `sha256/${pubDer.toString().trim()}`);
    assert.equal(spkiPin(first.certPem), first.pin);
    const second = await loadOrCreateCertificate({ dataDir: dir, host: '127.0.0.1' });
    assert.equal(second.created, false);
    assert.equal(second.pin, first.pin);
  });

  test('a key file others can read is refused with key_permissions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'orch-relay-cert-'));
    const c = await loadOrCreateCertificate({ dataDir: dir, host: '127.0.0.1' });
    const { chmodSync } = await import('node:fs');
    chmodSync(c.keyFile, 0o644);
    await assert.rejects(loadOrCreateCertificate({ dataDir: dir, host: '127.0.0.1' }), { code: 'key_permissions' });
  });
});
