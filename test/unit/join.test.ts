import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { readFileSync } from 'node:fs';
import { openEnvelope } from '../../protocol/envelope';
import { ReplayWindow } from '../../protocol/replay-window';
import { ed25519KeyPairFromSeed, randomBytes } from '../../protocol/primitives';
import { derivePermitSecret, permitHash } from '../../protocol/relay-handshake';
import {
  JoinError,
  decodeInviteToken,
  decodeJoinRequest,
  decodeJoinResult,
  encodeInviteToken,
  invitePermitHash,
  joinProof,
  joinSecretHash,
  proofKey,
  proofMessage,
  verifyJoinProof,
} from '../../protocol/join';
import { JOIN_VECTORS_PATH, renderJoinVectors } from '../../protocol/vectors/generate-join-vectors';

const v = JSON.parse(readFileSync(JOIN_VECTORS_PATH, 'utf8'));
const b = (h: string) => Buffer.from(h, 'hex');

describe('join vectors (protocol/JOIN.md)', () => {
  test('the committed file is what the generator makes', () => {
    assert.equal(readFileSync(JOIN_VECTORS_PATH, 'utf8'), renderJoinVectors());
  });

  test('token: decodes to the fixed inputs, and encoding them gives the same token', () => {
    const t = decodeInviteToken(v.token);
    assert.equal(t.relayUrl, v.relay_url);
    assert.equal(t.relayPin.toString('hex'), v.relay_pin);
    assert.equal(t.desktopSign.toString('hex'), v.desktop.sign_public);
    assert.equal(t.desktopBox.toString('hex'), v.desktop.box_public);
    assert.equal(t.joinSecret.toString('hex'), v.join_secret);
    assert.equal(t.expiresAt, v.expires_at);
    assert.equal(encodeInviteToken(t), v.token);
    assert.equal(Buffer.from(v.token.slice('orchjoin1.'.length), 'base64url').toString('hex'), v.token_bytes);
  });

  test('bad tokens are refused as bad_token', () => {
    for (const c of v.bad_tokens as Array<{ name: string; token: string }>) {
      assert.throws(() => decodeInviteToken(c.token), (err: unknown) => err instanceof JoinError && err.code === 'bad_token', c.name);
    }
  });

  test('an expired token is refused as expired_token, checked against the clock given', () => {
    assert.throws(() => decodeInviteToken(v.token, v.expires_at + 1), (err: unknown) => err instanceof JoinError && err.code === 'expired_token');
    assert.equal(decodeInviteToken(v.token, v.expires_at).expiresAt, v.expires_at);
  });

  test('derived values: secret hash, permit secret and hash, proof key, proof', () => {
    const secret = b(v.join_secret);
    assert.equal(joinSecretHash(secret).toString('hex'), v.secret_hash);
    assert.equal(derivePermitSecret(secret).toString('hex'), v.permit_secret);
    assert.equal(permitHash(derivePermitSecret(secret)).toString('hex'), v.permit_hash);
    assert.equal(invitePermitHash(secret).toString('hex'), v.permit_hash);
    assert.equal(proofKey(secret).toString('hex'), v.proof_key);
    const input = {
      joinSecret: secret,
      agentSign: b(v.agent.sign_public),
      agentBox: b(v.agent.box_public),
      desktopSign: b(v.desktop.sign_public),
      desktopBox: b(v.desktop.box_public),
      relayPin: b(v.relay_pin),
      expiresAt: v.expires_at,
    };
    assert.equal(proofMessage(input).toString('hex'), v.proof_message);
    assert.equal(joinProof(input).toString('hex'), v.proof);
    assert.ok(verifyJoinProof(input, b(v.proof)));
    // Any other agent key, desktop, relay or expiry, or another secret: the proof no longer verifies.
    for (const change of [{ agentSign: randomBytes(32) }, { agentBox: randomBytes(32) }, { desktopSign: randomBytes(32) }, { relayPin: randomBytes(32) }, { expiresAt: v.expires_at + 1 }, { joinSecret: randomBytes(32) }]) {
      assert.ok(!verifyJoinProof({ ...input, ...change }, b(v.proof)));
    }
  });

  test('join_request: the envelope opens with the agent key as sender and carries exactly the body', () => {
    const desktopSign = ed25519KeyPairFromSeed(b(v.desktop.sign_seed));
    const r = openEnvelope(b(v.join_request.envelope), {
      recipientSignPublicKey: desktopSign.publicKey,
      recipientBox: { publicKey: b(v.desktop.box_public), secretKey: b(v.desktop.box_secret) },
      senderSignPublicKey: b(v.agent.sign_public),
      now: v.join_request.open_at,
      window: new ReplayWindow(),
    });
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.equal(r.header.type, 'join_request');
    assert.equal(r.body.toString('utf8'), v.join_request.body);
    const m = decodeJoinRequest(r.body);
    assert.ok(m);
    assert.equal(m?.proof, v.proof);
    assert.equal(m?.signKey, r.header.from);
  });

  test('join_result: ok and refused decode; malformed ones do not', () => {
    const desktopSign = ed25519KeyPairFromSeed(b(v.desktop.sign_seed));
    const r = openEnvelope(b(v.join_result_ok.envelope), {
      recipientSignPublicKey: b(v.agent.sign_public),
      recipientBox: { publicKey: b(v.agent.box_public), secretKey: b(v.agent.box_secret) },
      senderSignPublicKey: desktopSign.publicKey,
      now: v.join_result_ok.ts,
      window: new ReplayWindow(),
    });
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.equal(r.body.toString('utf8'), v.join_result_ok.body);
    assert.equal(decodeJoinResult(r.body)?.status, 'ok');
    assert.equal(decodeJoinResult(Buffer.from(v.join_result_refused.body))?.status, 'refused');
    for (const c of v.bad_results as Array<{ name: string; body: string }>) assert.equal(decodeJoinResult(Buffer.from(c.body)), undefined, c.name);
  });
});
