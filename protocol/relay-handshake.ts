/**
 * Relay connection protocol, version 1: the frames spoken over one WebSocket and the login that binds a
 * connection to an Ed25519 key. Written down in protocol/RELAY.md (names here follow it); known-answer vectors in
 * protocol/vectors/relay-handshake-v1.json.
 *
 *   relay  → client  CHALLENGE  v | relay_id | relay_time | challenge
 *   client → relay   AUTH       v | client_key | client_time | Ed25519(AUTH_LABEL || challenge || relay_id || client_key || client_time)
 *   relay  → client  AUTH_OK    v | client_key | queued
 *   both             ENVELOPE   a sealed envelope (protocol/envelope.ts), opaque to the relay but for its header
 *   relay  → client  ERROR      code | ref (the refused envelope's msgId or admin request id, or nothing)
 *
 * Added in v1 without changing the frames above (a client that never sends them sees no difference):
 *   client → relay   AUTH_JOIN  v | client_key | client_time | signature | permit_secret   (a login with a join permit)
 *   admin  → relay   ALLOW / DENY   v | request_id | count | keys   (register / unregister keys the relay admits)
 *   admin  → relay   PERMIT     v | request_id | permit_hash | expires_at
 *   relay  → admin   ADMIN_OK   v | request_id | changed
 *
 * Every frame is one binary WebSocket message: 1 type byte, then the payload. Integers are big-endian.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { MAX_ENVELOPE_BYTES, MSG_ID_BYTES } from './envelope';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  asBuffer,
  constantTimeEqual,
  kdf,
  randomBytes,
  signDetached,
  verifyDetached,
} from './primitives';

export const RELAY_PROTOCOL_VERSION = 1;
/** The WebSocket path the relay serves the protocol on. The version is in the path too, so a v2 can live beside. */
export const RELAY_PATH = '/v1/relay';
/** Domain separation: a relay-login signature can never be an envelope signature (envelope.ts SIGNATURE_LABEL)
 *  or any other signature by the same key, and vice versa. */
export const AUTH_LABEL = Buffer.from('orch/relay/v1/auth\u0000', 'ascii');
/** The label of an AUTH_JOIN signature. Differs from AUTH_LABEL at byte 18 (0x2d '-' against 0x00), so neither
 *  signature can stand for the other. */
export const AUTH_JOIN_LABEL = Buffer.from('orch/relay/v1/auth-join\u0000', 'ascii');
/** The `info` of the KDF that turns a join secret into the secret shown to the relay (derivePermitSecret). */
export const PERMIT_SECRET_LABEL = Buffer.from('orch/relay/v1/join-permit\u0000', 'ascii');
export const CHALLENGE_BYTES = 32;
export const PERMIT_SECRET_BYTES = 32;
export const PERMIT_HASH_BYTES = 32;
/** An admin request's id, echoed in ADMIN_OK and in the `ref` of an ERROR that refuses it (the size of a msgId). */
export const REQUEST_ID_BYTES = 16;
/** At most this many keys in one ALLOW or DENY frame. */
export const MAX_KEYS_PER_ADMIN_FRAME = 1024;
export const RELAY_ID_BYTES = 32;
/** A frame is a type byte plus at most one whole envelope: every envelope sealEnvelope can make fits. */
export const MAX_FRAME_BYTES = 1 + MAX_ENVELOPE_BYTES;
/** How long a challenge stays answerable, on the relay's clock. */
export const DEFAULT_ANSWER_WINDOW_MS = 30_000;
/** How far the client's clock may be from the relay's (the same bound envelopes use for freshness). */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60_000;

export const FrameType = {
  challenge: 0x01,
  auth: 0x02,
  authOk: 0x03,
  envelope: 0x04,
  error: 0x05,
  authJoin: 0x06,
  allow: 0x07,
  deny: 0x08,
  permit: 0x09,
  adminOk: 0x0a,
} as const;
export type FrameTypeName = keyof typeof FrameType;

const CHALLENGE_PAYLOAD_BYTES = 1 + RELAY_ID_BYTES + 8 + CHALLENGE_BYTES;
const AUTH_PAYLOAD_BYTES = 1 + ED25519_PUBLIC_KEY_BYTES + 8 + ED25519_SIGNATURE_BYTES;
const AUTH_OK_PAYLOAD_BYTES = 1 + ED25519_PUBLIC_KEY_BYTES + 4;
const AUTH_JOIN_PAYLOAD_BYTES = AUTH_PAYLOAD_BYTES + PERMIT_SECRET_BYTES;
const KEY_LIST_HEADER_BYTES = 1 + REQUEST_ID_BYTES + 2;
const PERMIT_PAYLOAD_BYTES = 1 + REQUEST_ID_BYTES + PERMIT_HASH_BYTES + 8;
const ADMIN_OK_PAYLOAD_BYTES = 1 + REQUEST_ID_BYTES + 4;
const ERROR_CODE_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * Error codes the relay sends in ERROR frames. Stable: clients branch on them, never on text.
 * The first group closes the connection; the second refuses one frame and keeps the connection.
 */
export const RELAY_ERROR_CODES = [
  // closing
  'auth_timeout',
  'auth_failed',
  'not_authenticated',
  'replaced',
  'shutting_down',
  'not_admitted',
  'permit_refused',
  'idle_timeout',
  'join_expired',
  'too_many_connections',
  'login_rate_limited',
  'not_reading',
  // per frame
  'malformed_frame',
  'unknown_frame_type',
  'oversize',
  'malformed_envelope',
  'forged_from',
  'unknown_recipient',
  'queue_full',
  'rate_limited',
  'recipient_backpressure',
  'already_authenticated',
  'relay_full',
  'join_restricted',
  'not_admin',
  'allowlist_full',
  'permit_invalid',
  'permits_full',
  'storage_failed',
] as const;
export type RelayErrorCode = (typeof RELAY_ERROR_CODES)[number];

/** WebSocket close codes (4000-4999 is the application range). */
export const CloseCode = {
  authTimeout: 4001,
  authFailed: 4002,
  replaced: 4003,
  protocolError: 4004,
  shuttingDown: 4005,
  notAdmitted: 4006,
  permitRefused: 4007,
  idleTimeout: 4008,
  joinExpired: 4009,
  /** A reader that lets the relay's frames to it pile up (it does not read its ERROR frames). */
  notReading: 4010,
  /** Try again later: too many connections (from this address, or in all), or logins from this address too fast. */
  tryAgainLater: 1013,
} as const;

export interface ChallengeFrame {
  type: 'challenge';
  version: number;
  relayId: Buffer;
  relayTime: number;
  challenge: Buffer;
}
export interface AuthFrame {
  type: 'auth';
  version: number;
  clientKey: Buffer;
  clientTime: number;
  signature: Buffer;
}
export interface AuthOkFrame {
  type: 'authOk';
  version: number;
  clientKey: Buffer;
  /** How many queued envelopes the relay is about to deliver. */
  queued: number;
}
export interface EnvelopeFrame {
  type: 'envelope';
  /** The sealed envelope, a view into the frame (no copy). */
  wire: Buffer;
}
export interface ErrorFrame {
  type: 'error';
  code: string;
  /** msgId (32 hex) of the envelope this error is about, when there is one. */
  ref?: string;
}
export interface AuthJoinFrame {
  type: 'authJoin';
  version: number;
  clientKey: Buffer;
  clientTime: number;
  signature: Buffer;
  /** The 32-byte secret whose SHA-256 an admin registered with PERMIT (derivePermitSecret of the join secret). */
  permitSecret: Buffer;
}
export interface KeyListFrame {
  type: 'allow' | 'deny';
  version: number;
  requestId: Buffer;
  /** Ed25519 public keys, 32 bytes each, 1..MAX_KEYS_PER_ADMIN_FRAME of them. */
  keys: Buffer[];
}
export interface PermitFrame {
  type: 'permit';
  version: number;
  requestId: Buffer;
  permitHash: Buffer;
  /** Unix ms after which the permit is refused. */
  expiresAt: number;
}
export interface AdminOkFrame {
  type: 'adminOk';
  version: number;
  requestId: Buffer;
  /** How many keys changed state (ALLOW: newly allowed by this admin; DENY: no longer allowed by it); 1 for PERMIT. */
  changed: number;
}
export type Frame = ChallengeFrame | AuthFrame | AuthOkFrame | EnvelopeFrame | ErrorFrame | AuthJoinFrame | KeyListFrame | PermitFrame | AdminOkFrame;

export type FrameDecodeResult = { ok: true; frame: Frame } | { ok: false; reason: 'oversize' | 'malformed_frame' | 'unknown_frame_type' };

function u64(ms: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(ms));
  return b;
}

function requireTime(name: string, ms: number): void {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`${name} must be an integer in 0..2^53-1`);
}

function requireLength(name: string, b: Uint8Array, n: number): void {
  if (b.byteLength !== n) throw new RangeError(`${name} must be ${n} bytes, got ${b.byteLength}`);
}

// -------------------------------------------------------------------------------------------- encoding

export function encodeChallengeFrame(f: Omit<ChallengeFrame, 'type' | 'version'>): Buffer {
  requireLength('relayId', f.relayId, RELAY_ID_BYTES);
  requireLength('challenge', f.challenge, CHALLENGE_BYTES);
  requireTime('relayTime', f.relayTime);
  return Buffer.concat([Buffer.from([FrameType.challenge, RELAY_PROTOCOL_VERSION]), f.relayId, u64(f.relayTime), f.challenge]);
}

export function encodeAuthFrame(f: Omit<AuthFrame, 'type' | 'version'>): Buffer {
  requireLength('clientKey', f.clientKey, ED25519_PUBLIC_KEY_BYTES);
  requireLength('signature', f.signature, ED25519_SIGNATURE_BYTES);
  requireTime('clientTime', f.clientTime);
  return Buffer.concat([Buffer.from([FrameType.auth, RELAY_PROTOCOL_VERSION]), f.clientKey, u64(f.clientTime), f.signature]);
}

export function encodeAuthOkFrame(f: Omit<AuthOkFrame, 'type' | 'version'>): Buffer {
  requireLength('clientKey', f.clientKey, ED25519_PUBLIC_KEY_BYTES);
  const queued = Buffer.alloc(4);
  queued.writeUInt32BE(Math.min(f.queued, 0xffffffff));
  return Buffer.concat([Buffer.from([FrameType.authOk, RELAY_PROTOCOL_VERSION]), f.clientKey, queued]);
}

/** An ENVELOPE frame: the type byte and the wire envelope, one copy. */
export function encodeEnvelopeFrame(wire: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + wire.byteLength);
  out[0] = FrameType.envelope;
  out.set(wire, 1);
  return out;
}

/** AUTH_JOIN: the AUTH fields, then the permit secret (covered by the signature, see authJoinMessage). */
export function encodeAuthJoinFrame(f: Omit<AuthJoinFrame, 'type' | 'version'>): Buffer {
  requireLength('permitSecret', f.permitSecret, PERMIT_SECRET_BYTES);
  const auth = encodeAuthFrame(f);
  auth[0] = FrameType.authJoin;
  return Buffer.concat([auth, asBuffer(f.permitSecret)]);
}

/** ALLOW or DENY: v | request_id (16) | count (u16) | count × key (32). */
export function encodeKeyListFrame(f: Omit<KeyListFrame, 'version'>): Buffer {
  requireLength('requestId', f.requestId, REQUEST_ID_BYTES);
  if (f.keys.length < 1 || f.keys.length > MAX_KEYS_PER_ADMIN_FRAME) throw new RangeError(`an ${f.type.toUpperCase()} frame carries 1..${MAX_KEYS_PER_ADMIN_FRAME} keys`);
  for (const k of f.keys) requireLength('key', k, ED25519_PUBLIC_KEY_BYTES);
  const count = Buffer.alloc(2);
  count.writeUInt16BE(f.keys.length);
  return Buffer.concat([Buffer.from([f.type === 'allow' ? FrameType.allow : FrameType.deny, RELAY_PROTOCOL_VERSION]), f.requestId, count, ...f.keys]);
}

/** PERMIT: v | request_id (16) | permit_hash (32) | expires_at (u64 ms). */
export function encodePermitFrame(f: Omit<PermitFrame, 'type' | 'version'>): Buffer {
  requireLength('requestId', f.requestId, REQUEST_ID_BYTES);
  requireLength('permitHash', f.permitHash, PERMIT_HASH_BYTES);
  requireTime('expiresAt', f.expiresAt);
  return Buffer.concat([Buffer.from([FrameType.permit, RELAY_PROTOCOL_VERSION]), f.requestId, f.permitHash, u64(f.expiresAt)]);
}

/** ADMIN_OK: v | request_id (16) | changed (u32). */
export function encodeAdminOkFrame(f: Omit<AdminOkFrame, 'type' | 'version'>): Buffer {
  requireLength('requestId', f.requestId, REQUEST_ID_BYTES);
  const changed = Buffer.alloc(4);
  changed.writeUInt32BE(Math.min(f.changed, 0xffffffff));
  return Buffer.concat([Buffer.from([FrameType.adminOk, RELAY_PROTOCOL_VERSION]), f.requestId, changed]);
}

export function encodeErrorFrame(code: RelayErrorCode | string, ref?: string): Buffer {
  if (!ERROR_CODE_PATTERN.test(code)) throw new RangeError('error code must match [a-z][a-z0-9_]{0,63}');
  const refBytes = ref === undefined ? Buffer.alloc(0) : Buffer.from(ref, 'hex');
  if (ref !== undefined && (refBytes.length !== MSG_ID_BYTES || refBytes.toString('hex') !== ref)) {
    throw new RangeError('ref must be a msgId or request id: 32 lowercase hex digits');
  }
  return Buffer.concat([Buffer.from([FrameType.error, code.length]), Buffer.from(code, 'ascii'), Buffer.from([refBytes.length]), refBytes]);
}

// -------------------------------------------------------------------------------------------- decoding

/**
 * Decode one frame. Strict: exact lengths, no trailing bytes, known types only. Never throws on hostile input.
 * The version byte of CHALLENGE / AUTH / AUTH_OK is returned as read; the caller refuses versions it does not speak.
 */
export function decodeFrame(data: Uint8Array): FrameDecodeResult {
  if (data.byteLength > MAX_FRAME_BYTES) return { ok: false, reason: 'oversize' };
  if (data.byteLength < 1) return { ok: false, reason: 'malformed_frame' };
  const buf = asBuffer(data);
  const p = buf.subarray(1);
  switch (buf[0]) {
    case FrameType.challenge: {
      if (p.length !== CHALLENGE_PAYLOAD_BYTES) return { ok: false, reason: 'malformed_frame' };
      const relayTime = p.readBigUInt64BE(1 + RELAY_ID_BYTES);
      if (relayTime > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: 'malformed_frame' };
      return {
        ok: true,
        frame: {
          type: 'challenge',
          version: p[0]!,
          relayId: p.subarray(1, 1 + RELAY_ID_BYTES),
          relayTime: Number(relayTime),
          challenge: p.subarray(1 + RELAY_ID_BYTES + 8),
        },
      };
    }
    case FrameType.auth: {
      if (p.length !== AUTH_PAYLOAD_BYTES) return { ok: false, reason: 'malformed_frame' };
      const o = 1 + ED25519_PUBLIC_KEY_BYTES;
      const clientTime = p.readBigUInt64BE(o);
      if (clientTime > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: 'malformed_frame' };
      return {
        ok: true,
        frame: { type: 'auth', version: p[0]!, clientKey: p.subarray(1, o), clientTime: Number(clientTime), signature: p.subarray(o + 8) },
      };
    }
    case FrameType.authOk: {
      if (p.length !== AUTH_OK_PAYLOAD_BYTES) return { ok: false, reason: 'malformed_frame' };
      return {
        ok: true,
        frame: { type: 'authOk', version: p[0]!, clientKey: p.subarray(1, 33), queued: p.readUInt32BE(33) },
      };
    }
    case FrameType.envelope:
      return { ok: true, frame: { type: 'envelope', wire: p } };
    case FrameType.authJoin: {
      if (p.length !== AUTH_JOIN_PAYLOAD_BYTES) return { ok: false, reason: 'malformed_frame' };
      const o = 1 + ED25519_PUBLIC_KEY_BYTES;
      const clientTime = p.readBigUInt64BE(o);
      if (clientTime > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: 'malformed_frame' };
      const s = o + 8;
      return {
        ok: true,
        frame: {
          type: 'authJoin',
          version: p[0]!,
          clientKey: p.subarray(1, o),
          clientTime: Number(clientTime),
          signature: p.subarray(s, s + ED25519_SIGNATURE_BYTES),
          permitSecret: p.subarray(s + ED25519_SIGNATURE_BYTES),
        },
      };
    }
    case FrameType.allow:
    case FrameType.deny: {
      if (p.length < KEY_LIST_HEADER_BYTES) return { ok: false, reason: 'malformed_frame' };
      const count = p.readUInt16BE(1 + REQUEST_ID_BYTES);
      if (count < 1 || count > MAX_KEYS_PER_ADMIN_FRAME || p.length !== KEY_LIST_HEADER_BYTES + count * ED25519_PUBLIC_KEY_BYTES) {
        return { ok: false, reason: 'malformed_frame' };
      }
      const keys: Buffer[] = [];
      for (let i = 0; i < count; i++) keys.push(p.subarray(KEY_LIST_HEADER_BYTES + i * 32, KEY_LIST_HEADER_BYTES + (i + 1) * 32));
      return { ok: true, frame: { type: buf[0] === FrameType.allow ? 'allow' : 'deny', version: p[0]!, requestId: p.subarray(1, 1 + REQUEST_ID_BYTES), keys } };
    }
    case FrameType.permit: {
      if (p.length !== PERMIT_PAYLOAD_BYTES) return { ok: false, reason: 'malformed_frame' };
      const expiresAt = p.readBigUInt64BE(1 + REQUEST_ID_BYTES + PERMIT_HASH_BYTES);
      if (expiresAt > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: 'malformed_frame' };
      return {
        ok: true,
        frame: {
          type: 'permit',
          version: p[0]!,
          requestId: p.subarray(1, 1 + REQUEST_ID_BYTES),
          permitHash: p.subarray(1 + REQUEST_ID_BYTES, 1 + REQUEST_ID_BYTES + PERMIT_HASH_BYTES),
          expiresAt: Number(expiresAt),
        },
      };
    }
    case FrameType.adminOk: {
      if (p.length !== ADMIN_OK_PAYLOAD_BYTES) return { ok: false, reason: 'malformed_frame' };
      return { ok: true, frame: { type: 'adminOk', version: p[0]!, requestId: p.subarray(1, 1 + REQUEST_ID_BYTES), changed: p.readUInt32BE(1 + REQUEST_ID_BYTES) } };
    }
    case FrameType.error: {
      if (p.length < 2) return { ok: false, reason: 'malformed_frame' };
      const codeLength = p[0]!;
      if (p.length < 1 + codeLength + 1) return { ok: false, reason: 'malformed_frame' };
      const code = p.subarray(1, 1 + codeLength).toString('latin1');
      const refLength = p[1 + codeLength]!;
      if (!ERROR_CODE_PATTERN.test(code) || (refLength !== 0 && refLength !== MSG_ID_BYTES) || p.length !== 2 + codeLength + refLength) {
        return { ok: false, reason: 'malformed_frame' };
      }
      const frame: ErrorFrame = { type: 'error', code };
      if (refLength) frame.ref = p.subarray(2 + codeLength).toString('hex');
      return { ok: true, frame };
    }
    default:
      return { ok: false, reason: 'unknown_frame_type' };
  }
}

// ----------------------------------------------------------------------------------------------- login

/** The exact bytes a client signs: AUTH_LABEL || challenge || relay_id || client_key || client_time (u64 BE). */
export function authMessage(args: { challenge: Uint8Array; relayId: Uint8Array; clientKey: Uint8Array; clientTime: number }): Buffer {
  requireLength('challenge', args.challenge, CHALLENGE_BYTES);
  requireLength('relayId', args.relayId, RELAY_ID_BYTES);
  requireLength('clientKey', args.clientKey, ED25519_PUBLIC_KEY_BYTES);
  requireTime('clientTime', args.clientTime);
  return Buffer.concat([AUTH_LABEL, asBuffer(args.challenge), asBuffer(args.relayId), asBuffer(args.clientKey), u64(args.clientTime)]);
}

/** The bytes a joining client signs: AUTH_JOIN_LABEL || challenge || relay_id || client_key || client_time || permit_secret. */
export function authJoinMessage(args: { challenge: Uint8Array; relayId: Uint8Array; clientKey: Uint8Array; clientTime: number; permitSecret: Uint8Array }): Buffer {
  requireLength('permitSecret', args.permitSecret, PERMIT_SECRET_BYTES);
  const m = authMessage(args);
  return Buffer.concat([AUTH_JOIN_LABEL, m.subarray(AUTH_LABEL.length), asBuffer(args.permitSecret)]);
}

/**
 * The secret a joining client shows the relay, derived from the invite's join secret with the project KDF (keyed
 * BLAKE2b, key = join secret, message = PERMIT_SECRET_LABEL, 32 bytes). The relay sees only this, never the join
 * secret itself, so a relay cannot use what it saw to make a join request of its own to the desktop.
 */
export function derivePermitSecret(joinSecret: Uint8Array): Buffer {
  if (joinSecret.byteLength < 16 || joinSecret.byteLength > 64) throw new RangeError('a join secret is 16..64 bytes');
  return kdf(joinSecret, PERMIT_SECRET_LABEL, PERMIT_SECRET_BYTES);
}

/** What an admin registers with PERMIT: SHA-256 of the permit secret. */
export function permitHash(permitSecret: Uint8Array): Buffer {
  requireLength('permitSecret', permitSecret, PERMIT_SECRET_BYTES);
  return createHash('sha256').update(permitSecret).digest();
}

/** A fresh challenge, as the relay keeps it for one connection. */
export interface IssuedChallenge {
  challenge: Buffer;
  relayId: Buffer;
  issuedAt: number;
}

/** The relay's side: a fresh 32-byte challenge from the CSPRNG, and its frame. */
export function issueChallenge(relayId: Buffer, now: number): { issued: IssuedChallenge; frame: Buffer } {
  const issued = { challenge: randomBytes(CHALLENGE_BYTES), relayId, issuedAt: now };
  return { issued, frame: encodeChallengeFrame({ relayId, relayTime: now, challenge: issued.challenge }) };
}

export type ClientChallengeResult =
  | { ok: true; challenge: Buffer; relayTime: number }
  | { ok: false; reason: 'malformed_frame' | 'unknown_frame_type' | 'oversize' | 'bad_version' | 'unexpected_frame' | 'relay_id_mismatch' };

/**
 * The client's side of the first frame: it must be a v1 CHALLENGE whose relay id is the SPKI hash the client
 * pinned. A relay that passes on another relay's challenge (to have our answer used there) fails here.
 */
export function readChallenge(data: Uint8Array, expectedRelayId: Buffer): ClientChallengeResult {
  const decoded = decodeFrame(data);
  if (!decoded.ok) return decoded;
  const f = decoded.frame;
  if (f.type !== 'challenge') return { ok: false, reason: 'unexpected_frame' };
  if (f.version !== RELAY_PROTOCOL_VERSION) return { ok: false, reason: 'bad_version' };
  if (!constantTimeEqual(f.relayId, expectedRelayId)) return { ok: false, reason: 'relay_id_mismatch' };
  return { ok: true, challenge: f.challenge, relayTime: f.relayTime };
}

/**
 * The client's answer to a challenge.
 *
 * @example
 * const c = readChallenge(firstFrame, pinBytes); if (c.ok) ws.send(answerChallenge({ challenge: c.challenge,
 *   relayId: pinBytes, identity, clientTime: Date.now() }));
 */
export function answerChallenge(args: {
  challenge: Buffer;
  relayId: Buffer;
  identity: { publicKey: Buffer; secretKey: Buffer };
  clientTime: number;
}): Buffer {
  const message = authMessage({ challenge: args.challenge, relayId: args.relayId, clientKey: args.identity.publicKey, clientTime: args.clientTime });
  const signature = signDetached(message, args.identity.secretKey);
  return encodeAuthFrame({ clientKey: args.identity.publicKey, clientTime: args.clientTime, signature });
}

/** The joining client's answer to a challenge: AUTH_JOIN, signed over authJoinMessage. */
export function answerChallengeWithPermit(args: {
  challenge: Buffer;
  relayId: Buffer;
  identity: { publicKey: Buffer; secretKey: Buffer };
  clientTime: number;
  permitSecret: Buffer;
}): Buffer {
  const message = authJoinMessage({ challenge: args.challenge, relayId: args.relayId, clientKey: args.identity.publicKey, clientTime: args.clientTime, permitSecret: args.permitSecret });
  const signature = signDetached(message, args.identity.secretKey);
  return encodeAuthJoinFrame({ clientKey: args.identity.publicKey, clientTime: args.clientTime, signature, permitSecret: args.permitSecret });
}

export const AUTH_FAILURE_REASONS = [
  'malformed_frame',
  'unknown_frame_type',
  'oversize',
  'unexpected_frame',
  'bad_version',
  'challenge_used',
  'challenge_expired',
  'clock_skew',
  'bad_signature',
] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/** `permitSecret` is set when the frame was an AUTH_JOIN (the caller then checks the permit). */
export type VerifyAuthResult = { ok: true; clientKey: Buffer; permitSecret?: Buffer } | { ok: false; reason: AuthFailureReason };

/**
 * The relay's check of an AUTH (or AUTH_JOIN) frame against the challenge it issued on this connection. Order: structure,
 * version, challenge still unused and answered in time, client clock within bounds, then the signature (libsodium's
 * strict Ed25519 verify, which also refuses small-order and non-canonical keys). Never throws on hostile input.
 * The caller must consume the challenge whatever the result (one answer per challenge).
 */
export function verifyAuth(
  data: Uint8Array,
  issued: IssuedChallenge | null,
  now: number,
  limits: { answerWindowMs?: number; maxClockSkewMs?: number } = {},
): VerifyAuthResult {
  const decoded = decodeFrame(data);
  if (!decoded.ok) return decoded;
  const f = decoded.frame;
  if (f.type !== 'auth' && f.type !== 'authJoin') return { ok: false, reason: 'unexpected_frame' };
  if (f.version !== RELAY_PROTOCOL_VERSION) return { ok: false, reason: 'bad_version' };
  if (issued === null) return { ok: false, reason: 'challenge_used' };
  const answerWindow = limits.answerWindowMs ?? DEFAULT_ANSWER_WINDOW_MS;
  if (now - issued.issuedAt > answerWindow || now < issued.issuedAt) return { ok: false, reason: 'challenge_expired' };
  if (Math.abs(now - f.clientTime) > (limits.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS)) return { ok: false, reason: 'clock_skew' };
  const signed = { challenge: issued.challenge, relayId: issued.relayId, clientKey: f.clientKey, clientTime: f.clientTime };
  const message = f.type === 'auth' ? authMessage(signed) : authJoinMessage({ ...signed, permitSecret: f.permitSecret });
  if (!verifyDetached(f.signature, message, f.clientKey)) return { ok: false, reason: 'bad_signature' };
  if (f.type === 'authJoin') return { ok: true, clientKey: Buffer.from(f.clientKey), permitSecret: Buffer.from(f.permitSecret) };
  return { ok: true, clientKey: Buffer.from(f.clientKey) };
}

/** The raw 32 bytes of a 'sha256/BASE64' pin; throws RangeError for anything else. */
export function pinToRelayId(pin: string): Buffer {
  const m = /^sha256\/([A-Za-z0-9+/]{43}=)$/.exec(pin);
  const bytes = m ? Buffer.from(m[1]!, 'base64') : Buffer.alloc(0);
  if (bytes.length !== RELAY_ID_BYTES || `sha256/${bytes.toString('base64')}` !== pin) {
    throw new RangeError("pin must be 'sha256/' followed by the base64 of 32 bytes (44 characters)");
  }
  return bytes;
}

/** SHA-256 of a certificate's SubjectPublicKeyInfo DER (PEM or DER in): the relay id, and the pin's bytes. */
export function spkiSha256(cert: string | Buffer): Buffer {
  const spki = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest();
}

/** The 'sha256/<base64>' pin of a certificate (PEM or DER). The same form as HPKP and curl's --pinnedpubkey. */
export function spkiPin(cert: string | Buffer): string {
  return `sha256/${spkiSha256(cert).toString('base64')}`;
}
