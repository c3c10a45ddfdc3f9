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
  kdfInto,
  randomBytes,
  randomFill,
  signDetachedInto,
  verifyDetached,
  x25519Into,
  x25519PublicKey,
  x25519PublicKeyInto,
  xchacha20Poly1305Open,
  xchacha20Poly1305SealInto,
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
  const out = Buffer.alloc(HEADER_FIXED_BYTES + header.type.length);
  writeHeader(header, out, 0);
  return out;
}

/** Writes the canonical header of a checked header at `out[offset]`; returns the offset after it. */
function writeHeader(header: Omit<Header, 'v'>, out: Buffer, offset: number): number {
  let o = offset;
  out[o++] = ENVELOPE_VERSION;
  o += out.write(header.from, o, 32, 'hex');
  o += out.write(header.to, o, 32, 'hex');
  o += out.write(header.msgId, o, MSG_ID_BYTES, 'hex');
  o = out.writeBigUInt64BE(header.counter, o);
  o = out.writeBigUInt64BE(BigInt(header.ts), o);
  out[o++] = header.type.length;
  // The type is checked to be ASCII, one byte per char.
  return o + out.write(header.type, o, header.type.length, 'latin1');
}

/** Parse canonical header bytes at the start of `buf`; returns the header and its length, or a reason. */
function decodeHeader(buf: Buffer): { header: Header; length: number } | { reason: 'malformed' | 'bad_version' } {
  if (buf.length < 1) return { reason: 'malformed' };
  // Version first, before any other byte is interpreted: a future layout may differ from here on.
  if (buf[0] !== ENVELOPE_VERSION) return { reason: 'bad_version' };
  if (buf.length < HEADER_FIXED_BYTES) return { reason: 'malformed' };
  let o = 1;
  const from = buf.toString('hex', o, (o += 32));
  const to = buf.toString('hex', o, (o += 32));
  const msgId = buf.toString('hex', o, (o += MSG_ID_BYTES));
  const counter = buf.readBigUInt64BE(o);
  o += 8;
  const ts64 = buf.readBigUInt64BE(o);
  o += 8;
  if (ts64 > BigInt(Number.MAX_SAFE_INTEGER)) return { reason: 'malformed' };
  const typeLength = buf.readUInt8(o);
  o += 1;
  if (typeLength < 1 || typeLength > MAX_TYPE_LENGTH || buf.length < o + typeLength) return { reason: 'malformed' };
  // latin1 maps each byte to one char, so a non-ASCII byte cannot sneak past the pattern as a decoded char.
  const type = buf.toString('latin1', o, o + typeLength);
  if (!TYPE_PATTERN.test(type)) return { reason: 'malformed' };
  o += typeLength;
  return { header: { v: 1, from, to, msgId, counter, ts: Number(ts64), type }, length: o };
}

// ----------------------------------------------------------------------------------------- wire codec

/** Where the parts of a wire envelope lie: the header ends at `headerLength`, the ciphertext at `signedLength`. */
type Located = { ok: true; header: Header; headerLength: number; signedLength: number } | { ok: false; reason: 'oversize' | 'malformed' | 'bad_version' };

/** The checks of {@link parseEnvelope}, returning offsets instead of views (openEnvelope needs few of them). */
function locateEnvelope(buf: Buffer): Located {
  if (buf.byteLength > MAX_ENVELOPE_BYTES) return { ok: false, reason: 'oversize' };
  const decoded = decodeHeader(buf);
  if ('reason' in decoded) return { ok: false, reason: decoded.reason };
  const o = decoded.length + X25519_KEY_BYTES + XCHACHA20POLY1305_IETF_NONCE_BYTES;
  if (buf.length < o + 4) return { ok: false, reason: 'malformed' };
  const ctLength = buf.readUInt32BE(o);
  if (ctLength < AEAD_TAG_BYTES || buf.length !== o + 4 + ctLength + ED25519_SIGNATURE_BYTES) {
    return { ok: false, reason: 'malformed' };
  }
  return { ok: true, header: decoded.header, headerLength: decoded.length, signedLength: o + 4 + ctLength };
}

/**
 * Split a wire envelope into its parts without verifying anything (ENVELOPE.md, "Wire layout"). Strict: exact
 * lengths, no trailing bytes.
 */
export function parseEnvelope(wire: Uint8Array): ParseResult {
  const buf = asBuffer(wire);
  const at = locateEnvelope(buf);
  if (!at.ok) return at;
  const eph = at.headerLength;
  const nonce = eph + X25519_KEY_BYTES;
  const ct = nonce + XCHACHA20POLY1305_IETF_NONCE_BYTES + 4;
  return {
    ok: true,
    parts: {
      header: at.header,
      headerBytes: buf.subarray(0, eph),
      ephemeralPublicKey: buf.subarray(eph, nonce),
      nonce: buf.subarray(nonce, nonce + XCHACHA20POLY1305_IETF_NONCE_BYTES),
      ciphertext: buf.subarray(ct, at.signedLength),
      signature: buf.subarray(at.signedLength),
      signedBytes: buf.subarray(0, at.signedLength),
    },
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

const LABEL_BYTES = SIGNATURE_LABEL.length;

/**
 * A wire envelope laid out in one buffer behind SIGNATURE_LABEL, so the signature input is a view and nothing is
 * concatenated: `sig` is SIGNATURE_LABEL || wire minus its last 64 bytes; `wire` is what goes out.
 */
function layOut(headerLength: number, ciphertextLength: number) {
  const total = LABEL_BYTES + headerLength + ENVELOPE_OVERHEAD_BYTES - AEAD_TAG_BYTES + ciphertextLength;
  // Every byte is written below, so the unzeroed (and, when small, pooled) allocation holds nothing stale.
  const buf = Buffer.allocUnsafe(total);
  SIGNATURE_LABEL.copy(buf, 0);
  const header = LABEL_BYTES;
  const eph = header + headerLength;
  const nonce = eph + X25519_KEY_BYTES;
  const ctLength = nonce + XCHACHA20POLY1305_IETF_NONCE_BYTES;
  const ct = ctLength + 4;
  const sig = ct + ciphertextLength;
  buf.writeUInt32BE(ciphertextLength, ctLength);
  return {
    buf,
    header,
    eph,
    nonce,
    headerBytes: buf.subarray(header, eph),
    ciphertext: buf.subarray(ct, sig),
    signatureInput: buf.subarray(0, sig),
    signature: buf.subarray(sig),
    wire: buf.subarray(LABEL_BYTES),
  };
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
  const w = layOut(args.headerBytes.length, args.ciphertext.length);
  args.headerBytes.copy(w.headerBytes);
  args.ephemeralPublicKey.copy(w.buf, w.eph);
  args.nonce.copy(w.buf, w.nonce);
  args.ciphertext.copy(w.ciphertext);
  signDetachedInto(w.signature, w.signatureInput, args.senderSignSecretKey);
  return w.wire;
}

/** key = KDF(shared, eph_pub || recipient_box_pub || KDF_LABEL), 32 bytes. */
export function deriveBodyKey(shared: Buffer, ephemeralPublicKey: Buffer, recipientBoxPublicKey: Buffer): Buffer {
  return kdf(shared, Buffer.concat([ephemeralPublicKey, recipientBoxPublicKey, KDF_LABEL]), AEAD_KEY_BYTES);
}

// Working memory of one seal or open, reused so the hot path allocates only the envelope (or body) itself. Every
// use is synchronous, so two calls never share it; the secrets in it are zeroed before each call returns.
// (Each view below is made once: making a Buffer view costs about as much as a small hash on this path.)
const work = Buffer.alloc(3 * 32 + XCHACHA20POLY1305_IETF_NONCE_BYTES + 2 * X25519_KEY_BYTES + KDF_LABEL.length);
const workEphemeralSecret = work.subarray(0, 32);
const workShared = work.subarray(32, 64);
const workKey = work.subarray(64, 96);
const workSecrets = work.subarray(0, 96);
const workNonce = work.subarray(96, 96 + XCHACHA20POLY1305_IETF_NONCE_BYTES);
/** The KDF info eph_pub || recipient_box_pub || KDF_LABEL, the label written once. */
const workKdfInfo = work.subarray(96 + XCHACHA20POLY1305_IETF_NONCE_BYTES);
const workEphemeralPublic = workKdfInfo.subarray(0, X25519_KEY_BYTES);
const workRecipientPublic = workKdfInfo.subarray(X25519_KEY_BYTES, 2 * X25519_KEY_BYTES);
KDF_LABEL.copy(workKdfInfo, 2 * X25519_KEY_BYTES);

/** deriveBodyKey into workKey, from workShared and the public keys already in workKdfInfo. */
function deriveWorkKey(): void {
  kdfInto(workKey, workShared, workKdfInfo);
}

/** Grows for the largest envelope opened so far: the signature input is SIGNATURE_LABEL || the signed bytes. */
let verifyInput = Buffer.alloc(LABEL_BYTES + 4096);
SIGNATURE_LABEL.copy(verifyInput, 0);
let verifyView = verifyInput.subarray(0, 0);

/** A view of SIGNATURE_LABEL || buf[0, signedLength), copied into verifyInput. */
function verifyInputOf(buf: Buffer, signedLength: number): Buffer {
  const length = LABEL_BYTES + signedLength;
  if (verifyInput.length < length) {
    verifyInput = Buffer.alloc(length);
    SIGNATURE_LABEL.copy(verifyInput, 0);
  }
  buf.copy(verifyInput, LABEL_BYTES, 0, signedLength);
  if (verifyView.buffer !== verifyInput.buffer || verifyView.length !== length) verifyView = verifyInput.subarray(0, length);
  return verifyView;
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
  if (header.from !== keyToHex(senderSign.publicKey) || senderSign.secretKey.compare(senderSign.publicKey, 0, 32, 32, 64) !== 0) {
    throw new EnvelopeError('key_mismatch', 'header.from must be the public key of senderSign');
  }
  const problem = headerProblem(header);
  if (problem) throw new EnvelopeError('invalid_header', problem);
  const headerLength = HEADER_FIXED_BYTES + header.type.length;
  const wireLength = headerLength + ENVELOPE_OVERHEAD_BYTES + args.body.byteLength;
  if (wireLength > MAX_ENVELOPE_BYTES) {
    throw new EnvelopeError('too_large', `sealed envelope would be ${wireLength} bytes, the limit is ${MAX_ENVELOPE_BYTES}`);
  }
  if (args.recipientBoxPublicKey.length !== X25519_KEY_BYTES) {
    throw new EnvelopeError('key_mismatch', 'recipientBoxPublicKey must be 32 bytes');
  }
  if (args.ephemeral !== undefined && !constantTimeEqual(x25519PublicKey(args.ephemeral.secretKey), args.ephemeral.publicKey)) {
    throw new EnvelopeError('key_mismatch', 'ephemeral.publicKey does not belong to ephemeral.secretKey');
  }

  const w = layOut(headerLength, args.body.byteLength + AEAD_TAG_BYTES);
  writeHeader(header, w.headerBytes, 0);
  try {
    if (args.ephemeral === undefined) {
      randomFill(workEphemeralSecret);
      x25519PublicKeyInto(workEphemeralPublic, workEphemeralSecret);
    } else {
      args.ephemeral.secretKey.copy(workEphemeralSecret);
      args.ephemeral.publicKey.copy(workEphemeralPublic);
    }
    if (args.nonce !== undefined) {
      if (args.nonce.length !== XCHACHA20POLY1305_IETF_NONCE_BYTES) {
        throw new CryptoError('invalid_length', `XChaCha20-Poly1305 nonce must be ${XCHACHA20POLY1305_IETF_NONCE_BYTES} bytes, got ${args.nonce.length}`);
      }
      args.nonce.copy(workNonce);
    } else {
      randomFill(workNonce);
    }
    workEphemeralPublic.copy(w.buf, w.eph);
    workNonce.copy(w.buf, w.nonce);
    args.recipientBoxPublicKey.copy(workRecipientPublic);
    // Throws CryptoError('low_order_point') for a low-order recipient key: sealing to it would be sealing to anyone.
    x25519Into(workShared, workEphemeralSecret, workRecipientPublic);
    deriveWorkKey();
    xchacha20Poly1305SealInto(w.ciphertext, workKey, workNonce, asBuffer(args.body), w.headerBytes);
    signDetachedInto(w.signature, w.signatureInput, senderSign.secretKey);
    return w.wire;
  } finally {
    zeroize(workSecrets);
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
  const buf = asBuffer(wire);
  const at = locateEnvelope(buf);
  if (!at.ok) return at;
  const { header, headerLength, signedLength } = at;

  // 4. addressing: to us, from the peer this window belongs to (public keys: no secret to compare in constant time)
  const recipient = args.recipientSignPublicKey;
  if (recipient.length !== ED25519_PUBLIC_KEY_BYTES || buf.compare(recipient, 0, 32, 33, 65) !== 0) {
    return { ok: false, reason: 'wrong_recipient' };
  }
  const sender = args.senderSignPublicKey;
  if (sender.length !== ED25519_PUBLIC_KEY_BYTES || buf.compare(sender, 0, 32, 1, 33) !== 0) {
    return { ok: false, reason: 'unknown_sender' };
  }

  // 5. signature over everything before it, with the pinned key
  if (!verifyDetached(buf.subarray(signedLength), verifyInputOf(buf, signedLength), sender)) {
    return { ok: false, reason: 'bad_signature' };
  }

  // 6. key agreement and AEAD, the header as associated data
  const nonceAt = headerLength + X25519_KEY_BYTES;
  buf.copy(workEphemeralPublic, 0, headerLength, nonceAt);
  buf.copy(workNonce, 0, nonceAt, nonceAt + XCHACHA20POLY1305_IETF_NONCE_BYTES);
  let body: Buffer | null;
  try {
    try {
      x25519Into(workShared, args.recipientBox.secretKey, workEphemeralPublic);
    } catch (err) {
      if (err instanceof CryptoError && err.code === 'low_order_point') return { ok: false, reason: 'low_order_key' };
      throw err;
    }
    if (args.recipientBox.publicKey.length !== X25519_KEY_BYTES) {
      throw new CryptoError('invalid_length', `X25519 public key must be ${X25519_KEY_BYTES} bytes, got ${args.recipientBox.publicKey.length}`);
    }
    args.recipientBox.publicKey.copy(workRecipientPublic);
    deriveWorkKey();
    const ciphertext = buf.subarray(nonceAt + XCHACHA20POLY1305_IETF_NONCE_BYTES + 4, signedLength);
    body = xchacha20Poly1305Open(workKey, workNonce, ciphertext, buf.subarray(0, headerLength));
  } finally {
    zeroize(workSecrets);
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
