/**
 * Thin, typed wrappers over the libsodium primitives the envelope uses (through `sodium-native`).
 *
 * Conventions, the same in every function here:
 * - Key material lives in `Buffer`s allocated with `Buffer.alloc` (never the shared `allocUnsafe` pool), so a
 *   caller can zero it with {@link zeroize} when done.
 * - Lengths that the *caller* controls (keys, nonces, output sizes) are checked up front and a wrong one throws
 *   {@link CryptoError} with a stable `code`: it is a programming error, not hostile input.
 * - Results that depend on *untrusted* input never throw: {@link verifyDetached} returns `false` and the AEAD
 *   `open*` functions return `null` when the data does not authenticate (including a signature or ciphertext
 *   of the wrong length). The one exception is {@link x25519}, which throws `low_order_point` because a
 *   low-order key must never be mistaken for "decryption failed, try again".
 *
 * The KDF is keyed BLAKE2b (libsodium `crypto_generichash`); see protocol/ENVELOPE.md for why.
 */
import sodium from 'sodium-native';

/** The parts of sodium-native 5 we use, typed here because @types/sodium-native lags behind (no ChaCha20 IETF). */
interface Sodium {
  crypto_sign_keypair(pk: Buffer, sk: Buffer): void;
  crypto_sign_seed_keypair(pk: Buffer, sk: Buffer, seed: Buffer): void;
  crypto_sign_detached(sig: Buffer, msg: Buffer, sk: Buffer): void;
  crypto_sign_verify_detached(sig: Buffer, msg: Buffer, pk: Buffer): boolean;
  crypto_scalarmult(q: Buffer, n: Buffer, p: Buffer): void;
  crypto_scalarmult_base(q: Buffer, n: Buffer): void;
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Buffer, m: Buffer, ad: Buffer | null, nsec: null, npub: Buffer, k: Buffer): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Buffer, nsec: null, c: Buffer, ad: Buffer | null, npub: Buffer, k: Buffer): number;
  crypto_aead_xchacha20poly1305_ietf_encrypt(c: Buffer, m: Buffer, ad: Buffer | null, nsec: null, npub: Buffer, k: Buffer): number;
  crypto_aead_xchacha20poly1305_ietf_decrypt(m: Buffer, nsec: null, c: Buffer, ad: Buffer | null, npub: Buffer, k: Buffer): number;
  crypto_generichash(out: Buffer, input: Buffer, key?: Buffer): void;
  sodium_memcmp(a: Buffer, b: Buffer): boolean;
  sodium_memzero(buf: Buffer): void;
  sodium_is_zero(buf: Buffer, len?: number): boolean;
  randombytes_buf(buf: Buffer): void;
}

const na = sodium as unknown as Sodium;

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SECRET_KEY_BYTES = 64;
export const ED25519_SEED_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
export const X25519_KEY_BYTES = 32;
export const AEAD_KEY_BYTES = 32;
export const AEAD_TAG_BYTES = 16;
export const CHACHA20POLY1305_IETF_NONCE_BYTES = 12;
export const XCHACHA20POLY1305_IETF_NONCE_BYTES = 24;
export const KDF_KEY_BYTES_MIN = 16;
export const KDF_KEY_BYTES_MAX = 64;
export const KDF_OUTPUT_BYTES_MIN = 16;
export const KDF_OUTPUT_BYTES_MAX = 64;

export type CryptoErrorCode =
  /** A key, seed or nonce handed in by the caller has the wrong length. */
  | 'invalid_length'
  /** X25519 with a low-order point: the shared secret would be all zero (or libsodium refused the point). */
  | 'low_order_point';

/** Thrown by the wrappers; tell failures apart by `code`, never by message. */
export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface SignKeyPair {
  /** Ed25519 public key, 32 bytes. */
  publicKey: Buffer;
  /** libsodium's 64-byte Ed25519 secret key (seed || public key). */
  secretKey: Buffer;
}

export interface BoxKeyPair {
  /** X25519 public key (u-coordinate), 32 bytes. */
  publicKey: Buffer;
  /** X25519 secret scalar, 32 bytes (clamped by X25519 itself). */
  secretKey: Buffer;
}

function requireLength(name: string, buf: Uint8Array, length: number): void {
  if (buf.byteLength !== length) {
    throw new CryptoError('invalid_length', `${name} must be ${length} bytes, got ${buf.byteLength}`);
  }
}

/** View any Uint8Array as a Buffer without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `length` bytes from libsodium's CSPRNG. */
export function randomBytes(length: number): Buffer {
  const out = Buffer.alloc(length);
  na.randombytes_buf(out);
  return out;
}

/** Fill `out` from libsodium's CSPRNG (the allocation-free form of {@link randomBytes}). */
export function randomFill(out: Buffer): void {
  na.randombytes_buf(out);
}

/** Overwrite secret material with zeros (libsodium `sodium_memzero`, which the compiler may not elide). */
export function zeroize(...buffers: Array<Buffer | undefined>): void {
  for (const buf of buffers) if (buf && buf.byteLength > 0) na.sodium_memzero(buf);
}

/**
 * Constant-time equality (libsodium `sodium_memcmp`). Different lengths compare unequal; the length itself is
 * not secret in any of our uses.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  if (a.byteLength === 0) return true;
  return na.sodium_memcmp(asBuffer(a), asBuffer(b));
}

// ---------------------------------------------------------------------------------------------- Ed25519

/** A fresh Ed25519 key pair. */
export function ed25519KeyPair(): SignKeyPair {
  const publicKey = Buffer.alloc(ED25519_PUBLIC_KEY_BYTES);
  const secretKey = Buffer.alloc(ED25519_SECRET_KEY_BYTES);
  na.crypto_sign_keypair(publicKey, secretKey);
  return { publicKey, secretKey };
}

/** The Ed25519 key pair of a 32-byte RFC 8032 seed (deterministic; used by test vectors). */
export function ed25519KeyPairFromSeed(seed: Uint8Array): SignKeyPair {
  requireLength('Ed25519 seed', seed, ED25519_SEED_BYTES);
  const publicKey = Buffer.alloc(ED25519_PUBLIC_KEY_BYTES);
  const secretKey = Buffer.alloc(ED25519_SECRET_KEY_BYTES);
  na.crypto_sign_seed_keypair(publicKey, secretKey, asBuffer(seed));
  return { publicKey, secretKey };
}

/** Detached Ed25519 signature (64 bytes) of `message`. */
export function signDetached(message: Uint8Array, secretKey: Uint8Array): Buffer {
  requireLength('Ed25519 secret key', secretKey, ED25519_SECRET_KEY_BYTES);
  const sig = Buffer.alloc(ED25519_SIGNATURE_BYTES);
  na.crypto_sign_detached(sig, asBuffer(message), asBuffer(secretKey));
  return sig;
}

/** {@link signDetached} into the caller's 64-byte `out` (for a sender that lays out its whole message at once). */
export function signDetachedInto(out: Buffer, message: Buffer, secretKey: Buffer): void {
  requireLength('Ed25519 signature output', out, ED25519_SIGNATURE_BYTES);
  requireLength('Ed25519 secret key', secretKey, ED25519_SECRET_KEY_BYTES);
  na.crypto_sign_detached(out, message, secretKey);
}

/**
 * Verify a detached Ed25519 signature. Returns `false` for anything that is not a valid signature by `publicKey`,
 * including wrong lengths: signatures and keys come off the wire. libsodium's verifier is the strict one
 * (canonical S, no small-order or non-canonical R and A).
 */
export function verifyDetached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.byteLength !== ED25519_SIGNATURE_BYTES || publicKey.byteLength !== ED25519_PUBLIC_KEY_BYTES) {
    return false;
  }
  return na.crypto_sign_verify_detached(asBuffer(signature), asBuffer(message), asBuffer(publicKey));
}

// ----------------------------------------------------------------------------------------------- X25519

/** A fresh X25519 key pair. */
export function x25519KeyPair(): BoxKeyPair {
  const secretKey = randomBytes(X25519_KEY_BYTES);
  return { publicKey: x25519PublicKey(secretKey), secretKey };
}

/** The X25519 public key of a 32-byte secret scalar. */
export function x25519PublicKey(secretKey: Uint8Array): Buffer {
  const publicKey = Buffer.alloc(X25519_KEY_BYTES);
  x25519PublicKeyInto(publicKey, asBuffer(secretKey));
  return publicKey;
}

/** {@link x25519PublicKey} into the caller's 32-byte `out`. */
export function x25519PublicKeyInto(out: Buffer, secretKey: Buffer): void {
  requireLength('X25519 secret key', secretKey, X25519_KEY_BYTES);
  requireLength('X25519 public key output', out, X25519_KEY_BYTES);
  na.crypto_scalarmult_base(out, secretKey);
}

/**
 * X25519(secretKey, publicKey). Throws `CryptoError('low_order_point')` when the result would be all zero, which is
 * what a low-order (or all-zero) public key produces: such a "shared secret" is known to everyone. libsodium
 * already refuses these and we check the output again so the guarantee does not rest on one layer.
 * The caller owns the returned secret and should {@link zeroize} it after deriving keys from it.
 */
export function x25519(secretKey: Uint8Array, publicKey: Uint8Array): Buffer {
  const shared = Buffer.alloc(X25519_KEY_BYTES);
  x25519Into(shared, asBuffer(secretKey), asBuffer(publicKey));
  return shared;
}

/**
 * {@link x25519} into the caller's 32-byte `out`, which holds the shared secret afterwards (zero it when done),
 * or zeros when this throws `low_order_point`.
 */
export function x25519Into(out: Buffer, secretKey: Buffer, publicKey: Buffer): void {
  requireLength('X25519 secret key', secretKey, X25519_KEY_BYTES);
  requireLength('X25519 public key', publicKey, X25519_KEY_BYTES);
  requireLength('X25519 shared secret output', out, X25519_KEY_BYTES);
  try {
    na.crypto_scalarmult(out, secretKey, publicKey);
  } catch {
    // sodium-native throws a bare Error when libsodium returns -1, which it does only for small-order input.
    zeroize(out);
    throw new CryptoError('low_order_point', 'X25519 public key has low order');
  }
  if (na.sodium_is_zero(out, out.byteLength)) {
    throw new CryptoError('low_order_point', 'X25519 shared secret is all zero');
  }
}

// ------------------------------------------------------------------------------------------------- AEAD

type AeadIetf = {
  nonceBytes: number;
  name: string;
  encrypt: Sodium['crypto_aead_chacha20poly1305_ietf_encrypt'];
  decrypt: Sodium['crypto_aead_chacha20poly1305_ietf_decrypt'];
};

const chacha: AeadIetf = {
  nonceBytes: CHACHA20POLY1305_IETF_NONCE_BYTES,
  name: 'ChaCha20-Poly1305',
  encrypt: (...a) => na.crypto_aead_chacha20poly1305_ietf_encrypt(...a),
  decrypt: (...a) => na.crypto_aead_chacha20poly1305_ietf_decrypt(...a),
};

const xchacha: AeadIetf = {
  nonceBytes: XCHACHA20POLY1305_IETF_NONCE_BYTES,
  name: 'XChaCha20-Poly1305',
  encrypt: (...a) => na.crypto_aead_xchacha20poly1305_ietf_encrypt(...a),
  decrypt: (...a) => na.crypto_aead_xchacha20poly1305_ietf_decrypt(...a),
};

function seal(aead: AeadIetf, key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  requireLength(`${aead.name} key`, key, AEAD_KEY_BYTES);
  requireLength(`${aead.name} nonce`, nonce, aead.nonceBytes);
  const out = Buffer.alloc(plaintext.byteLength + AEAD_TAG_BYTES);
  aead.encrypt(out, asBuffer(plaintext), asBuffer(aad), null, asBuffer(nonce), asBuffer(key));
  return out;
}

function open(aead: AeadIetf, key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Buffer | null {
  requireLength(`${aead.name} key`, key, AEAD_KEY_BYTES);
  requireLength(`${aead.name} nonce`, nonce, aead.nonceBytes);
  if (ciphertext.byteLength < AEAD_TAG_BYTES) return null;
  const out = Buffer.alloc(ciphertext.byteLength - AEAD_TAG_BYTES);
  try {
    aead.decrypt(out, null, asBuffer(ciphertext), asBuffer(aad), asBuffer(nonce), asBuffer(key));
  } catch {
    // sodium-native throws only when the tag does not verify (all lengths were checked above).
    return null;
  }
  return out;
}

/** ChaCha20-Poly1305 (RFC 8439, 12-byte nonce). Returns ciphertext || 16-byte tag. */
export function chacha20Poly1305Seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  return seal(chacha, key, nonce, plaintext, aad);
}

/** ChaCha20-Poly1305 (RFC 8439). Returns the plaintext, or `null` if the tag does not verify. */
export function chacha20Poly1305Open(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Buffer | null {
  return open(chacha, key, nonce, ciphertext, aad);
}

/** XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha, 24-byte nonce). Returns ciphertext || 16-byte tag. */
export function xchacha20Poly1305Seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  return seal(xchacha, key, nonce, plaintext, aad);
}

/**
 * {@link xchacha20Poly1305Seal} into the caller's `out`, exactly `plaintext.length + 16` bytes (for a sender that
 * lays out its whole message at once).
 */
export function xchacha20Poly1305SealInto(out: Buffer, key: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer): void {
  requireLength('XChaCha20-Poly1305 key', key, AEAD_KEY_BYTES);
  requireLength('XChaCha20-Poly1305 nonce', nonce, XCHACHA20POLY1305_IETF_NONCE_BYTES);
  requireLength('XChaCha20-Poly1305 output', out, plaintext.byteLength + AEAD_TAG_BYTES);
  na.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, aad, null, nonce, key);
}

/** XChaCha20-Poly1305. Returns the plaintext, or `null` if the tag does not verify. */
export function xchacha20Poly1305Open(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Buffer | null {
  return open(xchacha, key, nonce, ciphertext, aad);
}

// -------------------------------------------------------------------------------------------------- KDF

/**
 * The KDF: keyed BLAKE2b (RFC 7693) with `ikm` as the key, `info` as the message, `outputBytes` long.
 * Keyed BLAKE2b is a PRF, which is what a KDF over a high-entropy secret (an X25519 output) needs; libsodium's own
 * `crypto_kx` and sealed boxes derive keys with BLAKE2b the same way.
 *
 * @example const key = kdf(shared, Buffer.concat([ephemeralPublic, recipientPublic, LABEL]), 32);
 */
export function kdf(ikm: Uint8Array, info: Uint8Array, outputBytes: number): Buffer {
  if (!Number.isInteger(outputBytes) || outputBytes < KDF_OUTPUT_BYTES_MIN || outputBytes > KDF_OUTPUT_BYTES_MAX) {
    throw new CryptoError('invalid_length', `KDF output must be ${KDF_OUTPUT_BYTES_MIN}..${KDF_OUTPUT_BYTES_MAX} bytes`);
  }
  const out = Buffer.alloc(outputBytes);
  kdfInto(out, asBuffer(ikm), asBuffer(info));
  return out;
}

/** {@link kdf} into the caller's `out`, whose length (16..64) is the output length. */
export function kdfInto(out: Buffer, ikm: Buffer, info: Buffer): void {
  if (ikm.byteLength < KDF_KEY_BYTES_MIN || ikm.byteLength > KDF_KEY_BYTES_MAX) {
    throw new CryptoError('invalid_length', `KDF key must be ${KDF_KEY_BYTES_MIN}..${KDF_KEY_BYTES_MAX} bytes`);
  }
  if (out.byteLength < KDF_OUTPUT_BYTES_MIN || out.byteLength > KDF_OUTPUT_BYTES_MAX) {
    throw new CryptoError('invalid_length', `KDF output must be ${KDF_OUTPUT_BYTES_MIN}..${KDF_OUTPUT_BYTES_MAX} bytes`);
  }
  na.crypto_generichash(out, info, ikm);
}
