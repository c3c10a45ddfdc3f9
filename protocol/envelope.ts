/**
 * The sealed envelope, version 1. The construction, byte layouts and check order are written down in
 * protocol/ENVELOPE.md; names here follow that document. Known-answer vectors: protocol/vectors/envelope-v1.json.
 *
 * Sender:   header → ephemeral X25519 → shared = X25519(eph, recipientBox) → key = KDF(shared, eph_pub ||
 *           recipient_box_pub || label) → ct = XChaCha20-Poly1305(key, nonce, body, aad = header bytes) →
 *           sig = Ed25519(sender, SIG_LABEL || header || eph_pub || nonce || ct_len || ct).
 * Receiver: size → parse → version → addressing → signature → AEAD → freshness → replay window (then accept).
 */
import {
  AEAD_KEY_BYTES,
  AEAD_TAG_BYTES,
  CryptoError,
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SECRET_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  X25519_KEY_BYTES,
  XCHACHA20POLY1305_IETF_NONCE_BYTES,
  asBuffer,
  constantTimeEqual,
  kdf,
  randomBytes,
  signDetached,
  verifyDetached,
  x25519,
  x25519KeyPair,
  x25519PublicKey,
  xchacha20Poly1305Open,
  xchacha20Poly1305Seal,
  zeroize,
} from './primitives';
import { UINT64_MAX, type RejectReason, type ReplayWindow } from './replay-window';

export { REJECT_REASONS, RejectCounters, ReplayWindow, type RejectReason } from './replay-window';

export const ENVELOPE_VERSION = 1;
/** Hard cap on a whole wire envelope, in bytes (1 MiB). Checked before anything is parsed. */
export const MAX_ENVELOPE_BYTES = 1024 * 1024;
export const MSG_ID_BYTES = 16;
export const MAX_TYPE_LENGTH = 32;
export const DEFAULT_MAX_SKEW_MS = 5 * 60 * 1000;
/** Fixed part of the header: version(1) from(32) to(32) msgId(16) counter(8) ts(8) typeLen(1). */
export const HEADER_FIXED_BYTES = 1 + 32 + 32 + MSG_ID_BYTES + 8 + 8 + 1;
/** Everything but the header and the body: eph(32) nonce(24) ctLen(4) tag(16) sig(64). */
export const ENVELOPE_OVERHEAD_BYTES = X25519_KEY_BYTES + XCHACHA20POLY1305_IETF_NONCE_BYTES + 4 + AEAD_TAG_BYTES + ED25519_SIGNATURE_BYTES;

/** Domain separation: the KDF info suffix, so a key derived here can never equal one derived for another purpose. */
export const KDF_LABEL = Buffer.from('orch/envelope/v1/body-key', 'ascii');
/** Domain separation: prefixed to what the sender signs, so an envelope signature is never a valid relay-login
 *  (or any other) signature by the same Ed25519 key, and vice versa. */
export const SIGNATURE_LABEL = Buffer.from('orch/envelope/v1/signature\u0000', 'ascii');

const TYPE_PATTERN = /^[a-z][a-z0-9_.-]*$/;
const HEX64 = /^[0-9a-f]{64}$/;
const HEX32 = /^[0-9a-f]{32}$/;

export interface Header {
  v: 1;
  /** Sender's Ed25519 public key, 64 lowercase hex digits. */
  from: string;
  /** Recipient's Ed25519 public key, 64 lowercase hex digits. */
  to: string;
  /** 16 random bytes, 32 lowercase hex digits. */
  msgId: string;
  /** Per (sender, recipient), strictly increasing, 0..2^64-1. */
  counter: bigint;
  /** Sender's clock, milliseconds since the Unix epoch, 0..2^53-1. */
  ts: number;
  /** Message kind: 1..32 chars of [a-z0-9_.-], starting with a letter (e.g. `command`, `result`, `ping`). */
  type: string;
}

export type EnvelopeErrorCode =
  /** A header field the caller gave does not fit the v1 layout (see Header). */
  | 'invalid_header'
  /** `header.from` is not the public key of `senderSign`, or an ephemeral pair does not match. */
  | 'key_mismatch'
  /** The sealed envelope would exceed MAX_ENVELOPE_BYTES. */
  | 'too_large';

/** Thrown by the sending side for caller mistakes; receivers never throw, they return a RejectReason. */
export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
  constructor(
    readonly code: EnvelopeErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The parsed, not yet verified, parts of a wire envelope. */
export interface EnvelopeParts {
  header: Header;
  /** The canonical header bytes exactly as on the wire (the AEAD's associated data). */
  headerBytes: Buffer;
  ephemeralPublicKey: Buffer;
  nonce: Buffer;
  /** Ciphertext with the 16-byte Poly1305 tag at its end. */
  ciphertext: Buffer;
  signature: Buffer;
  /** Everything the signature covers after SIGNATURE_LABEL: the wire minus the trailing signature. */
  signedBytes: Buffer;
}

export type ParseResult = { ok: true; parts: EnvelopeParts } | { ok: false; reason: 'oversize' | 'malformed' | 'bad_version' };

// --------------------------------------------------------------------------------------- header codec

function headerProblem(header: Omit<Header, 'v'>): string | null {
  if (typeof header.from !== 'string' || !HEX64.test(header.from)) return 'from must be 64 lowercase hex digits';
  if (typeof header.to !== 'string' || !HEX64.test(header.to)) return 'to must be 64 lowercase hex digits';
  if (typeof header.msgId !== 'string' || !HEX32.test(header.msgId)) return 'msgId must be 32 lowercase hex digits';
  if (typeof header.counter !== 'bigint' || header.counter < 0n || header.counter > UINT64_MAX) {
    return 'counter must be a bigint in 0..2^64-1';
  }
  if (!Number.isSafeInteger(header.ts) || header.ts < 0) return 'ts must be an integer in 0..2^53-1';
  if (
    typeof header.type !== 'string' ||
    header.type.length < 1 ||
    header.type.length > MAX_TYPE_LENGTH ||
    !TYPE_PATTERN.test(header.type)
  ) {
    return `type must be 1..${MAX_TYPE_LENGTH} chars of [a-z0-9_.-] starting with a letter`;
  }
  return null;
}

/**
 * The canonical header bytes (ENVELOPE.md, "Header"). Every valid header has exactly one encoding, and
 * {@link decodeHeader} accepts nothing else.
 */
export function encodeHeader(header: Omit<Header, 'v'>): Buffer {
  const problem = headerProblem(header);
  if (problem) throw new EnvelopeError('invalid_header', problem);
  const typeBytes = Buffer.from(header.type, 'ascii');
  const out = Buffer.alloc(HEADER_FIXED_BYTES + typeBytes.length);
  let o = 0;
  o = out.writeUInt8(ENVELOPE_VERSION, o);
  o += Buffer.from(header.from, 'hex').copy(out, o);
  o += Buffer.from(header.to, 'hex').copy(out, o);
  o += Buffer.from(header.msgId, 'hex').copy(out, o);
  o = out.writeBigUInt64BE(header.counter, o);
  o = out.writeBigUInt64BE(BigInt(header.ts), o);
  o = out.writeUInt8(typeBytes.length, o);
  typeBytes.copy(out, o);
  return out;
}

/** Parse canonical header bytes at the start of `buf`; returns the header and its length, or a reason. */
function decodeHeader(buf: Buffer): { header: Header; length: number } | { reason: 'malformed' | 'bad_version' } {
  if (buf.length < 1) return { reason: 'malformed' };
  // Version first, before any other byte is interpreted: a future layout may differ from here on.
  if (buf[0] !== ENVELOPE_VERSION) return { reason: 'bad_version' };
  if (buf.length < HEADER_FIXED_BYTES) return { reason: 'malformed' };
  let o = 1;
  const from = buf.subarray(o, (o += 32)).toString('hex');
  const to = buf.subarray(o, (o += 32)).toString('hex');
  const msgId = buf.subarray(o, (o += MSG_ID_BYTES)).toString('hex');
  const counter = buf.readBigUInt64BE(o);
  o += 8;
  const ts64 = buf.readBigUInt64BE(o);
  o += 8;
  if (ts64 > BigInt(Number.MAX_SAFE_INTEGER)) return { reason: 'malformed' };
  const typeLength = buf.readUInt8(o);
  o += 1;
  if (typeLength < 1 || typeLength > MAX_TYPE_LENGTH || buf.length < o + typeLength) return { reason: 'malformed' };
  const typeBytes = buf.subarray(o, o + typeLength);
  // latin1 maps each byte to one char, so a non-ASCII byte cannot sneak past the pattern as a decoded char.
  const type = typeBytes.toString('latin1');
  if (!TYPE_PATTERN.test(type)) return { reason: 'malformed' };
  o += typeLength;
  return { header: { v: 1, from, to, msgId, counter, ts: Number(ts64), type }, length: o };
}

// ----------------------------------------------------------------------------------------- wire codec

/**
 * Split a wire envelope into its parts without verifying anything (ENVELOPE.md, "Wire layout"). Strict: exact
 * lengths, no trailing bytes.
 */
export function parseEnvelope(wire: Uint8Array): ParseResult {
  if (wire.byteLength > MAX_ENVELOPE_BYTES) return { ok: false, reason: 'oversize' };
  const buf = asBuffer(wire);
  const decoded = decodeHeader(buf);
  if ('reason' in decoded) return { ok: false, reason: decoded.reason };
  let o = decoded.length;
  const headerBytes = buf.subarray(0, o);
  if (buf.length < o + X25519_KEY_BYTES + XCHACHA20POLY1305_IETF_NONCE_BYTES + 4) return { ok: false, reason: 'malformed' };
  const ephemeralPublicKey = buf.subarray(o, (o += X25519_KEY_BYTES));
  const nonce = buf.subarray(o, (o += XCHACHA20POLY1305_IETF_NONCE_BYTES));
  const ctLength = buf.readUInt32BE(o);
  o += 4;
  if (ctLength < AEAD_TAG_BYTES || buf.length !== o + ctLength + ED25519_SIGNATURE_BYTES) {
    return { ok: false, reason: 'malformed' };
  }
  const ciphertext = buf.subarray(o, (o += ctLength));
  const signedBytes = buf.subarray(0, o);
  const signature = buf.subarray(o, o + ED25519_SIGNATURE_BYTES);
  return {
    ok: true,
    parts: { header: decoded.header, headerBytes, ephemeralPublicKey, nonce, ciphertext, signature, signedBytes },
  };
}

/**
 * For the relay, which routes by header and can check nothing else (it holds no keys of the endpoints).
 * The result is unauthenticated: use it for routing and metadata only.
 */
export function parseHeaderUnverified(
  wire: Uint8Array,
): { ok: true; header: Header } | { ok: false; reason: 'oversize' | 'malformed' | 'bad_version' } {
  const parsed = parseEnvelope(wire);
  return parsed.ok ? { ok: true, header: parsed.parts.header } : parsed;
}

/** The exact bytes the sender signs: SIGNATURE_LABEL || header || eph_pub || nonce || ct_len || ct. */
export function signatureInput(signedBytes: Uint8Array): Buffer {
  return Buffer.concat([SIGNATURE_LABEL, asBuffer(signedBytes)]);
}

/**
 * Lay out and sign an envelope from already computed parts. {@link sealEnvelope} is the normal way in; this is
 * exported for the test-vector generator and for tests that need a validly signed envelope with hostile contents.
 */
export function assembleEnvelope(args: {
  headerBytes: Buffer;
  ephemeralPublicKey: Buffer;
  nonce: Buffer;
  ciphertext: Buffer;
  senderSignSecretKey: Buffer;
}): Buffer {
  const ctLength = Buffer.alloc(4);
  ctLength.writeUInt32BE(args.ciphertext.length, 0);
  const signed = Buffer.concat([args.headerBytes, args.ephemeralPublicKey, args.nonce, ctLength, args.ciphertext]);
  const signature = signDetached(signatureInput(signed), args.senderSignSecretKey);
  return Buffer.concat([signed, signature]);
}

/** key = KDF(shared, eph_pub || recipient_box_pub || KDF_LABEL), 32 bytes. */
export function deriveBodyKey(shared: Buffer, ephemeralPublicKey: Buffer, recipientBoxPublicKey: Buffer): Buffer {
  return kdf(shared, Buffer.concat([ephemeralPublicKey, recipientBoxPublicKey, KDF_LABEL]), AEAD_KEY_BYTES);
}

// ------------------------------------------------------------------------------------------ seal / open

/** A fresh random message id (16 bytes, hex). */
export function newMsgId(): string {
  return randomBytes(MSG_ID_BYTES).toString('hex');
}

/** Lowercase hex of a public key, the form `Header.from` / `Header.to` use. */
export function keyToHex(publicKey: Uint8Array): string {
  return asBuffer(publicKey).toString('hex');
}

/**
 * Seal `body` to the recipient and sign the whole envelope.
 *
 * `ephemeral` and `nonce` exist for known-answer tests only: in production leave them out, so each envelope gets
 * a fresh ephemeral key (zeroed after use) and a random nonce.
 *
 * @example
 * const wire = sealEnvelope({
 *   header: { from: keyToHex(me.publicKey), to: keyToHex(agentSignPub), msgId: newMsgId(), counter: 7n,
 *             ts: Date.now(), type: 'command' },
 *   body, senderSign: me, recipientBoxPublicKey: agentBoxPub,
 * });
 */
export function sealEnvelope(args: {
  header: Omit<Header, 'v'>;
  body: Uint8Array;
  senderSign: { publicKey: Buffer; secretKey: Buffer };
  recipientBoxPublicKey: Buffer;
  /** Test-only: a fixed ephemeral key pair (not zeroed, the caller owns it). */
  ephemeral?: { publicKey: Buffer; secretKey: Buffer };
  /** Test-only: a fixed 24-byte nonce. */
  nonce?: Buffer;
}): Buffer {
  const { header, senderSign } = args;
  if (senderSign.publicKey.length !== ED25519_PUBLIC_KEY_BYTES || senderSign.secretKey.length !== ED25519_SECRET_KEY_BYTES) {
    throw new EnvelopeError('key_mismatch', 'senderSign must be an Ed25519 key pair (32-byte public, 64-byte secret)');
  }
  // libsodium's Ed25519 secret key ends with its public key; a mismatch would produce envelopes nobody can verify.
  if (header.from !== keyToHex(senderSign.publicKey) || !constantTimeEqual(senderSign.secretKey.subarray(32), senderSign.publicKey)) {
    throw new EnvelopeError('key_mismatch', 'header.from must be the public key of senderSign');
  }
  const headerBytes = encodeHeader(header);
  const wireLength = headerBytes.length + ENVELOPE_OVERHEAD_BYTES + args.body.byteLength;
  if (wireLength > MAX_ENVELOPE_BYTES) {
    throw new EnvelopeError('too_large', `sealed envelope would be ${wireLength} bytes, the limit is ${MAX_ENVELOPE_BYTES}`);
  }
  if (args.recipientBoxPublicKey.length !== X25519_KEY_BYTES) {
    throw new EnvelopeError('key_mismatch', 'recipientBoxPublicKey must be 32 bytes');
  }

  const ownEphemeral = args.ephemeral === undefined;
  const ephemeral = args.ephemeral ?? x25519KeyPair();
  if (!ownEphemeral && !constantTimeEqual(x25519PublicKey(ephemeral.secretKey), ephemeral.publicKey)) {
    throw new EnvelopeError('key_mismatch', 'ephemeral.publicKey does not belong to ephemeral.secretKey');
  }
  const nonce = args.nonce ?? randomBytes(XCHACHA20POLY1305_IETF_NONCE_BYTES);
  let shared: Buffer | undefined;
  let key: Buffer | undefined;
  try {
    // Throws CryptoError('low_order_point') for a low-order recipient key: sealing to it would be sealing to anyone.
    shared = x25519(ephemeral.secretKey, args.recipientBoxPublicKey);
    key = deriveBodyKey(shared, ephemeral.publicKey, args.recipientBoxPublicKey);
    const ciphertext = xchacha20Poly1305Seal(key, nonce, args.body, headerBytes);
    return assembleEnvelope({
      headerBytes,
      ephemeralPublicKey: ephemeral.publicKey,
      nonce,
      ciphertext,
      senderSignSecretKey: senderSign.secretKey,
    });
  } finally {
    zeroize(shared, key);
    if (ownEphemeral) zeroize(ephemeral.secretKey);
  }
}

export type OpenResult = { ok: true; header: Header; body: Buffer } | { ok: false; reason: RejectReason };

/**
 * Verify, decrypt and replay-check an envelope from one pinned peer. Never throws on hostile input; every
 * rejection is a stable {@link RejectReason}. On success the window has accepted the counter: persist
 * `window.toJSON()` before acting on the body.
 *
 * @example
 * const r = openEnvelope(wire, { recipientSignPublicKey: me.sign.publicKey, recipientBox: me.box,
 *   senderSignPublicKey: desktopKey, now: Date.now(), window });
 * if (!r.ok) rejects.record(r.reason);
 */
export function openEnvelope(
  wire: Uint8Array,
  args: {
    recipientSignPublicKey: Buffer;
    recipientBox: { publicKey: Buffer; secretKey: Buffer };
    senderSignPublicKey: Buffer;
    now: number;
    maxSkewMs?: number;
    window: ReplayWindow;
  },
): OpenResult {
  // 1-3. size, structure, version
  const parsed = parseEnvelope(wire);
  if (!parsed.ok) return parsed;
  const parts = parsed.parts;
  const { header } = parts;

  // 4. addressing: to us, from the peer this window belongs to
  if (!constantTimeEqual(parts.headerBytes.subarray(33, 65), args.recipientSignPublicKey)) {
    return { ok: false, reason: 'wrong_recipient' };
  }
  if (!constantTimeEqual(parts.headerBytes.subarray(1, 33), args.senderSignPublicKey)) {
    return { ok: false, reason: 'unknown_sender' };
  }

  // 5. signature over everything before it, with the pinned key
  if (!verifyDetached(parts.signature, signatureInput(parts.signedBytes), args.senderSignPublicKey)) {
    return { ok: false, reason: 'bad_signature' };
  }

  // 6. key agreement and AEAD, the header as associated data
  let shared: Buffer | undefined;
  let key: Buffer | undefined;
  let body: Buffer | null;
  try {
    try {
      shared = x25519(args.recipientBox.secretKey, parts.ephemeralPublicKey);
    } catch (err) {
      if (err instanceof CryptoError && err.code === 'low_order_point') return { ok: false, reason: 'low_order_key' };
      throw err;
    }
    key = deriveBodyKey(shared, parts.ephemeralPublicKey, args.recipientBox.publicKey);
    body = xchacha20Poly1305Open(key, parts.nonce, parts.ciphertext, parts.headerBytes);
  } finally {
    zeroize(shared, key);
  }
  if (body === null) return { ok: false, reason: 'decrypt_failed' };

  // 7. freshness, both directions
  const maxSkewMs = args.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  if (Math.abs(args.now - header.ts) > maxSkewMs) {
    zeroize(body);
    return { ok: false, reason: 'stale' };
  }

  // 8. replay window; it moves only now, after authentication and decryption succeeded
  const verdict = args.window.check(header.counter);
  if (verdict !== 'ok') {
    zeroize(body);
    return { ok: false, reason: verdict === 'replay' ? 'replay' : 'too_old_for_window' };
  }
  args.window.accept(header.counter);
  return { ok: true, header, body };
}
