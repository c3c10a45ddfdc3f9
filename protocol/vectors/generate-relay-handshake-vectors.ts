/**
 * Writes protocol/vectors/relay-handshake-v1.json: known-answer vectors for the relay login and frames, v1
 * (see ../RELAY.md). Deterministic: fixed keys, challenge, relay id and clocks.
 *
 *   npx tsx protocol/vectors/generate-relay-handshake-vectors.ts           # rewrite the file
 *   npx tsx protocol/vectors/generate-relay-handshake-vectors.ts --check   # exit 1 if the file is out of date
 *
 * test/unit/relay-handshake.test.ts checks the committed file equals what this produces, and replays every case.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SIGNATURE_LABEL } from '../envelope';
import { ed25519KeyPairFromSeed, signDetached } from '../primitives';
import {
  AUTH_JOIN_LABEL,
  AUTH_LABEL,
  DEFAULT_ANSWER_WINDOW_MS,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  PERMIT_SECRET_LABEL,
  authJoinMessage,
  authMessage,
  derivePermitSecret,
  encodeAdminOkFrame,
  encodeAuthFrame,
  encodeAuthJoinFrame,
  encodeAuthOkFrame,
  encodeChallengeFrame,
  encodeEnvelopeFrame,
  encodeErrorFrame,
  encodeKeyListFrame,
  encodePermitFrame,
  permitHash,
} from '../relay-handshake';

export const RELAY_VECTORS_PATH = join(dirname(fileURLToPath(import.meta.url)), 'relay-handshake-v1.json');

const counting = (start: number, length = 32): Buffer => Buffer.from(Array.from({ length }, (_, i) => (start + i) & 0xff));
const hex = (b: Buffer): string => b.toString('hex');

/** 2026-01-01T00:00:00Z: the relay issues the challenge then; the client answers 1.5 s later. */
const T0 = 1_767_225_600_000;
const CLIENT_TIME = T0 + 1500;
const VERIFY_AT = T0 + 2000;

export function buildRelayHandshakeVectors(): unknown {
  const client = ed25519KeyPairFromSeed(counting(0x00));
  const other = ed25519KeyPairFromSeed(counting(0x20));
  const relayId = counting(0xa0);
  const otherRelayId = counting(0xc0);
  const challenge = counting(0x40);
  const otherChallenge = counting(0x60);

  const message = authMessage({ challenge, relayId, clientKey: client.publicKey, clientTime: CLIENT_TIME });
  const signature = signDetached(message, client.secretKey);
  const authFrame = encodeAuthFrame({ clientKey: client.publicKey, clientTime: CLIENT_TIME, signature });

  const signedAuth = (over: { challenge?: Buffer; relayId?: Buffer; clientTime?: number; signer?: typeof client; claimed?: Buffer; label?: Buffer }) => {
    const clientTime = over.clientTime ?? CLIENT_TIME;
    const claimed = over.claimed ?? client.publicKey;
    const m = authMessage({ challenge: over.challenge ?? challenge, relayId: over.relayId ?? relayId, clientKey: claimed, clientTime });
    const input = over.label ? Buffer.concat([over.label, m.subarray(AUTH_LABEL.length)]) : m;
    return encodeAuthFrame({ clientKey: claimed, clientTime, signature: signDetached(input, (over.signer ?? client).secretKey) });
  };
  const flipped = (frame: Buffer, index: number): Buffer => {
    const copy = Buffer.from(frame);
    copy[index] = copy[index]! ^ 0x01;
    return copy;
  };

  type Case = { name: string; auth_frame: string; issued: { challenge: string; relay_id: string; issued_at: number } | null; now: number; expect: string };
  const issued = { challenge: hex(challenge), relay_id: hex(relayId), issued_at: T0 };
  const cases: Case[] = [
    { name: 'valid answer', auth_frame: hex(authFrame), issued, now: VERIFY_AT, expect: 'ok' },
    { name: 'valid answer at the last millisecond of the answer window', auth_frame: hex(authFrame), issued, now: T0 + DEFAULT_ANSWER_WINDOW_MS, expect: 'ok' },
    { name: 'answer after the answer window', auth_frame: hex(authFrame), issued, now: T0 + DEFAULT_ANSWER_WINDOW_MS + 1, expect: 'challenge_expired' },
    { name: 'challenge already answered on this connection', auth_frame: hex(authFrame), issued: null, now: VERIFY_AT, expect: 'challenge_used' },
    { name: 'answer to another challenge (replayed from another connection)', auth_frame: hex(signedAuth({ challenge: otherChallenge })), issued, now: VERIFY_AT, expect: 'bad_signature' },
    { name: 'answer for another relay id', auth_frame: hex(signedAuth({ relayId: otherRelayId })), issued, now: VERIFY_AT, expect: 'bad_signature' },
    { name: "claims the client's key, signed by another key", auth_frame: hex(signedAuth({ signer: other })), issued, now: VERIFY_AT, expect: 'bad_signature' },
    { name: 'signed with the envelope signature label instead of the auth label', auth_frame: hex(signedAuth({ label: SIGNATURE_LABEL })), issued, now: VERIFY_AT, expect: 'bad_signature' },
    { name: 'signature byte 0 flipped', auth_frame: hex(flipped(authFrame, 1 + 1 + 32 + 8)), issued, now: VERIFY_AT, expect: 'bad_signature' },
    { name: 'last signature byte flipped', auth_frame: hex(flipped(authFrame, authFrame.length - 1)), issued, now: VERIFY_AT, expect: 'bad_signature' },
    { name: 'client key byte flipped', auth_frame: hex(flipped(authFrame, 2)), issued, now: VERIFY_AT, expect: 'bad_signature' },
    { name: 'client time changed after signing', auth_frame: hex(flipped(authFrame, 1 + 1 + 32 + 7)), issued, now: VERIFY_AT, expect: 'bad_signature' },
    { name: 'client clock 5 min + 1 ms behind (correctly signed)', auth_frame: hex(signedAuth({ clientTime: VERIFY_AT - DEFAULT_MAX_CLOCK_SKEW_MS - 1 })), issued, now: VERIFY_AT, expect: 'clock_skew' },
    { name: 'client clock 5 min + 1 ms ahead (correctly signed)', auth_frame: hex(signedAuth({ clientTime: VERIFY_AT + DEFAULT_MAX_CLOCK_SKEW_MS + 1 })), issued, now: VERIFY_AT, expect: 'clock_skew' },
    { name: 'version 2', auth_frame: hex(Buffer.from(authFrame).fill(2, 1, 2)), issued, now: VERIFY_AT, expect: 'bad_version' },
    { name: 'one byte short', auth_frame: hex(authFrame.subarray(0, authFrame.length - 1)), issued, now: VERIFY_AT, expect: 'malformed_frame' },
    { name: 'one byte too many', auth_frame: hex(Buffer.concat([authFrame, Buffer.from([0])])), issued, now: VERIFY_AT, expect: 'malformed_frame' },
    { name: 'an ENVELOPE frame instead of AUTH', auth_frame: hex(encodeEnvelopeFrame(counting(0, 40))), issued, now: VERIFY_AT, expect: 'unexpected_frame' },
    { name: 'unknown frame type 0x7f', auth_frame: hex(Buffer.concat([Buffer.from([0x7f]), authFrame.subarray(1)])), issued, now: VERIFY_AT, expect: 'unknown_frame_type' },
    { name: 'empty frame', auth_frame: '', issued, now: VERIFY_AT, expect: 'malformed_frame' },
  ];

  // ------------------------------------------------------------------ join permits and admin frames
  const joinSecret = counting(0x80);
  const permitSecret = derivePermitSecret(joinSecret);
  const joinMessage = authJoinMessage({ challenge, relayId, clientKey: client.publicKey, clientTime: CLIENT_TIME, permitSecret });
  const joinSignature = signDetached(joinMessage, client.secretKey);
  const authJoinFrame = encodeAuthJoinFrame({ clientKey: client.publicKey, clientTime: CLIENT_TIME, signature: joinSignature, permitSecret });
  const requestId = counting(0x10, 16);
  const permitExpiresAt = T0 + 3_600_000;
  type JoinCase = { name: string; frame: string; issued: typeof issued | null; now: number; expect: string; permit_secret?: string };
  const joinCases: JoinCase[] = [
    { name: 'valid AUTH_JOIN', frame: hex(authJoinFrame), issued, now: VERIFY_AT, expect: 'ok', permit_secret: hex(permitSecret) },
    { name: 'permit secret changed after signing', frame: hex(flipped(authJoinFrame, authJoinFrame.length - 1)), issued, now: VERIFY_AT, expect: 'bad_signature' },
    {
      name: 'AUTH signature (AUTH label, no permit) in an AUTH_JOIN frame',
      frame: hex(encodeAuthJoinFrame({ clientKey: client.publicKey, clientTime: CLIENT_TIME, signature, permitSecret })),
      issued,
      now: VERIFY_AT,
      expect: 'bad_signature',
    },
    {
      name: 'AUTH_JOIN signature in an AUTH frame',
      frame: hex(encodeAuthFrame({ clientKey: client.publicKey, clientTime: CLIENT_TIME, signature: joinSignature })),
      issued,
      now: VERIFY_AT,
      expect: 'bad_signature',
    },
    { name: 'AUTH_JOIN answered after the answer window', frame: hex(authJoinFrame), issued, now: T0 + DEFAULT_ANSWER_WINDOW_MS + 1, expect: 'challenge_expired' },
    { name: 'AUTH_JOIN one byte short', frame: hex(authJoinFrame.subarray(0, authJoinFrame.length - 1)), issued, now: VERIFY_AT, expect: 'malformed_frame' },
  ];

  return {
    description:
      'Known-answer vectors for the Orch relay login and frames, version 1. Protocol: protocol/RELAY.md. Generated by protocol/vectors/generate-relay-handshake-vectors.ts; do not edit by hand.',
    version: 1,
    auth_label: hex(AUTH_LABEL),
    answer_window_ms: DEFAULT_ANSWER_WINDOW_MS,
    max_clock_skew_ms: DEFAULT_MAX_CLOCK_SKEW_MS,
    client: { sign_seed: hex(client.secretKey.subarray(0, 32)), sign_public: hex(client.publicKey) },
    other_key: { sign_seed: hex(other.secretKey.subarray(0, 32)), sign_public: hex(other.publicKey) },
    login: {
      relay_id: hex(relayId),
      challenge: hex(challenge),
      relay_time: T0,
      client_time: CLIENT_TIME,
      challenge_frame: hex(encodeChallengeFrame({ relayId, relayTime: T0, challenge })),
      auth_message: hex(message),
      signature: hex(signature),
      auth_frame: hex(authFrame),
      auth_ok_frame: hex(encodeAuthOkFrame({ clientKey: client.publicKey, queued: 3 })),
      auth_ok_queued: 3,
    },
    error_frames: [
      { code: 'auth_failed', frame: hex(encodeErrorFrame('auth_failed')) },
      { code: 'rate_limited', ref: hex(counting(0x10, 16)), frame: hex(encodeErrorFrame('rate_limited', hex(counting(0x10, 16)))) },
    ],
    verify: cases,
    join: {
      auth_join_label: hex(AUTH_JOIN_LABEL),
      permit_secret_label: hex(PERMIT_SECRET_LABEL),
      join_secret: hex(joinSecret),
      permit_secret: hex(permitSecret),
      permit_hash: hex(permitHash(permitSecret)),
      auth_join_message: hex(joinMessage),
      signature: hex(joinSignature),
      auth_join_frame: hex(authJoinFrame),
      verify: joinCases,
    },
    admin_frames: {
      request_id: hex(requestId),
      keys: [hex(client.publicKey), hex(other.publicKey)],
      allow_frame: hex(encodeKeyListFrame({ type: 'allow', requestId, keys: [client.publicKey, other.publicKey] })),
      deny_frame: hex(encodeKeyListFrame({ type: 'deny', requestId, keys: [other.publicKey] })),
      permit_frame: hex(encodePermitFrame({ requestId, permitHash: permitHash(permitSecret), expiresAt: permitExpiresAt })),
      permit_expires_at: permitExpiresAt,
      admin_ok_frame: hex(encodeAdminOkFrame({ requestId, changed: 2 })),
      admin_ok_changed: 2,
      not_admin_error_frame: hex(encodeErrorFrame('not_admin', hex(requestId))),
    },
  };
}

export function renderRelayHandshakeVectors(): string {
  return `${JSON.stringify(buildRelayHandshakeVectors(), null, 2)}\n`;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const text = renderRelayHandshakeVectors();
  if (process.argv.includes('--check')) {
    if (readFileSync(RELAY_VECTORS_PATH, 'utf8') !== text) {
      console.error(`${RELAY_VECTORS_PATH} is out of date: run npx tsx protocol/vectors/generate-relay-handshake-vectors.ts`);
      process.exit(1);
    }
    console.log(`${RELAY_VECTORS_PATH} is up to date`);
  } else {
    writeFileSync(RELAY_VECTORS_PATH, text);
    console.log(`wrote ${RELAY_VECTORS_PATH}`);
  }
}
