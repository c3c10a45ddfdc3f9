/**
 * Writes protocol/vectors/join-v1.json: known-answer vectors for the join flow, v1 (see ../JOIN.md).
 * Deterministic: fixed keys, join secret, clocks, ephemeral keys and nonces.
 *
 *   npx tsx protocol/vectors/generate-join-vectors.ts           # rewrite the file
 *   npx tsx protocol/vectors/generate-join-vectors.ts --check   # exit 1 if the file is out of date
 *
 * test/unit/join.test.ts checks the committed file equals what this produces and replays every case;
 * agent/internal/join/join_test.go replays them in Go.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { keyToHex, sealEnvelope } from '../envelope';
import { ed25519KeyPairFromSeed, x25519PublicKey } from '../primitives';
import { derivePermitSecret, permitHash } from '../relay-handshake';
import {
  JOIN_TOKEN_PREFIX,
  PROOF_KEY_LABEL,
  PROOF_LABEL,
  encodeInviteToken,
  encodeJoinMessage,
  joinProof,
  joinSecretHash,
  proofKey,
  proofMessage,
  type InviteToken,
} from '../join';

export const JOIN_VECTORS_PATH = join(dirname(fileURLToPath(import.meta.url)), 'join-v1.json');

const counting = (start: number, length = 32): Buffer => Buffer.from(Array.from({ length }, (_, i) => (start + i) & 0xff));
const hex = (b: Buffer): string => b.toString('hex');

/** 2026-01-01T00:00:00Z. */
const T0 = 1_767_225_600_000;

export function buildJoinVectors() {
  const desktopSign = ed25519KeyPairFromSeed(counting(0x00));
  const desktopBoxSecret = counting(0x20);
  const desktopBox = x25519PublicKey(desktopBoxSecret);
  const agentSign = ed25519KeyPairFromSeed(counting(0x40));
  const agentBoxSecret = counting(0x60);
  const agentBox = x25519PublicKey(agentBoxSecret);
  const joinSecret = counting(0x80);
  const relayPin = counting(0xa0);
  const expiresAt = T0 + 3_600_000;
  const relayUrl = 'wss://relay.example:8443/v1/relay';
  const token: InviteToken = { relayUrl, relayPin, desktopSign: desktopSign.publicKey, desktopBox, joinSecret, expiresAt };
  const tokenText = encodeInviteToken(token);
  const tokenBytes = Buffer.from(tokenText.slice(JOIN_TOKEN_PREFIX.length), 'base64url');
  const proofInput = { joinSecret, agentSign: agentSign.publicKey, agentBox, desktopSign: desktopSign.publicKey, desktopBox, relayPin, expiresAt };
  const proof = joinProof(proofInput);
  const permitSecret = derivePermitSecret(joinSecret);

  const requestBody = encodeJoinMessage({
    kind: 'join_request',
    signKey: hex(agentSign.publicKey),
    boxKey: hex(agentBox),
    hostname: 'web-1.example',
    agentVersion: '0.1.0',
    joinSecret: hex(joinSecret),
    proof: hex(proof),
  });
  const resultOkBody = encodeJoinMessage({ kind: 'join_result', status: 'ok', name: 'web-1', tier: 'standard', tenants: ['acme'], allowlist: 'version: 1\ncommands:\n  - uptime\n' });
  const resultRefusedBody = encodeJoinMessage({ kind: 'join_result', status: 'refused', reason: 'reused: this invite was already used; ask for a new one' });

  const requestEnvelope = sealEnvelope({
    header: { from: keyToHex(agentSign.publicKey), to: keyToHex(desktopSign.publicKey), msgId: hex(counting(0xc0, 16)), counter: 1n, ts: T0 + 1000, type: 'join_request' },
    body: requestBody,
    senderSign: agentSign,
    recipientBoxPublicKey: desktopBox,
    ephemeral: { secretKey: counting(0xd0), publicKey: x25519PublicKey(counting(0xd0)) },
    nonce: counting(0xf0, 24),
  });
  const resultEnvelope = sealEnvelope({
    header: { from: keyToHex(desktopSign.publicKey), to: keyToHex(agentSign.publicKey), msgId: hex(counting(0xe0, 16)), counter: 1n, ts: T0 + 2000, type: 'join_result' },
    body: resultOkBody,
    senderSign: desktopSign,
    recipientBoxPublicKey: agentBox,
    ephemeral: { secretKey: counting(0x10), publicKey: x25519PublicKey(counting(0x10)) },
    nonce: counting(0x30, 24),
  });

  const reencode = (b: Buffer) => JOIN_TOKEN_PREFIX + b.toString('base64url');
  const withByte = (offset: number, value: number) => {
    const b = Buffer.from(tokenBytes);
    b[offset] = value;
    return reencode(b);
  };
  const badTokens = [
    { name: 'wrong prefix', token: `orchjoin2.${tokenText.slice(JOIN_TOKEN_PREFIX.length)}` },
    { name: 'version 2', token: withByte(0, 2) },
    { name: 'one byte missing', token: reencode(tokenBytes.subarray(0, tokenBytes.length - 1)) },
    { name: 'a trailing byte', token: reencode(Buffer.concat([tokenBytes, Buffer.from([0])])) },
    { name: 'padded base64url', token: `${tokenText}=` },
    { name: 'standard base64 alphabet', token: JOIN_TOKEN_PREFIX + tokenBytes.toString('base64').replace(/=+$/, '') },
    { name: 'http URL', token: encodeTokenUnchecked({ ...token, relayUrl: 'ws://relay.example:8443/v1/relay' }) },
    { name: 'all-zero join secret', token: encodeInviteToken({ ...token, joinSecret: Buffer.alloc(32) }) },
  ].filter((c) => c.token !== tokenText);

  return {
    description:
      'Orch join flow v1 known-answer vectors (protocol/JOIN.md). Keys: desktop sign seed 00..1f, box secret 20..3f; agent sign seed 40..5f, box secret 60..7f; join secret 80..9f; relay pin a0..bf. Envelopes sealed with fixed ephemeral keys and nonces (test-only).',
    version: 1,
    proof_key_label: hex(PROOF_KEY_LABEL),
    proof_label: hex(PROOF_LABEL),
    desktop: { sign_seed: hex(counting(0x00)), sign_public: hex(desktopSign.publicKey), box_secret: hex(desktopBoxSecret), box_public: hex(desktopBox) },
    agent: { sign_seed: hex(counting(0x40)), sign_public: hex(agentSign.publicKey), box_secret: hex(agentBoxSecret), box_public: hex(agentBox) },
    join_secret: hex(joinSecret),
    relay_pin: hex(relayPin),
    relay_url: relayUrl,
    expires_at: expiresAt,
    token: tokenText,
    token_bytes: hex(tokenBytes),
    secret_hash: hex(joinSecretHash(joinSecret)),
    permit_secret: hex(permitSecret),
    permit_hash: hex(permitHash(permitSecret)),
    proof_key: hex(proofKey(joinSecret)),
    proof_message: hex(proofMessage(proofInput)),
    proof: hex(proof),
    join_request: {
      body: requestBody.toString('utf8'),
      envelope: hex(requestEnvelope),
      ts: T0 + 1000,
      open_at: T0 + 1500,
    },
    join_result_ok: { body: resultOkBody.toString('utf8'), envelope: hex(resultEnvelope), ts: T0 + 2000 },
    join_result_refused: { body: resultRefusedBody.toString('utf8') },
    bad_tokens: badTokens,
    bad_results: [
      { name: 'ok with a reason', body: '{"kind":"join_result","status":"ok","name":"web-1","tier":"standard","tenants":["acme"],"reason":"x"}' },
      { name: 'ok without tenants', body: '{"kind":"join_result","status":"ok","name":"web-1","tier":"standard"}' },
      { name: 'ok with no tenant', body: '{"kind":"join_result","status":"ok","name":"web-1","tier":"standard","tenants":[]}' },
      { name: 'unknown tier', body: '{"kind":"join_result","status":"ok","name":"web-1","tier":"root","tenants":["acme"]}' },
      { name: 'refused without a reason', body: '{"kind":"join_result","status":"refused"}' },
      { name: 'unknown status', body: '{"kind":"join_result","status":"maybe","reason":"x"}' },
      { name: 'an extra field', body: '{"kind":"join_result","status":"refused","reason":"x","extra":1}' },
      { name: 'a null field', body: '{"kind":"join_result","status":"ok","name":"web-1","tier":"standard","tenants":["acme"],"allowlist":null}' },
    ],
  };
}

/** A token with any URL (for negative vectors whose URL the encoder itself would refuse). */
function encodeTokenUnchecked(t: InviteToken): string {
  const good = encodeInviteToken({ ...t, relayUrl: 'wss://x' });
  const raw = Buffer.from(good.slice(JOIN_TOKEN_PREFIX.length), 'base64url');
  const url = Buffer.from(t.relayUrl, 'latin1');
  const out = Buffer.concat([raw.subarray(0, 137), Buffer.from([url.length >> 8, url.length & 0xff]), url]);
  return JOIN_TOKEN_PREFIX + out.toString('base64url');
}

export function renderJoinVectors(): string {
  return `${JSON.stringify(buildJoinVectors(), null, 2)}\n`;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const text = renderJoinVectors();
  if (process.argv.includes('--check')) {
    if (readFileSync(JOIN_VECTORS_PATH, 'utf8') !== text) {
      console.error(`${JOIN_VECTORS_PATH} is out of date: run npx tsx protocol/vectors/generate-join-vectors.ts`);
      process.exit(1);
    }
    console.log(`${JOIN_VECTORS_PATH} is up to date`);
  } else {
    writeFileSync(JOIN_VECTORS_PATH, text);
    console.log(`wrote ${JOIN_VECTORS_PATH}`);
  }
}
