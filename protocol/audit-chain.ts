/**
 * The per-tenant audit hash chain, version 1. The format is written down in `AUDIT-CHAIN.md` beside this file
 * and pinned by `vectors/audit-chain-v1.json`; change neither without the other.
 *
 * Row hash:   hash = SHA-256( bytes(prevHash) || UTF-8( JCS({v:1, seq, ts, tenant, actor, action, subject,
 *                                                            details, prevHash}) ) )
 * Checkpoint: Ed25519 over UTF-8("orch-audit-checkpoint\n") || UTF-8( JCS({v:1, tenant, seq, hash, ts}) )
 */
import * as crypto from 'node:crypto';
import sodium from 'sodium-native';
import { canonicalString, canonicalize, isCanonicalObjectText, isPlainString, quoteString, tryCanonicalize } from './canonical-json';
import { OrchError, type ErrorCode } from './errors';

export const AUDIT_CHAIN_VERSION = 1 as const;

/** prevHash of row 1. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * Prepended to every checkpoint message so a signature the desktop key makes for another protocol (a DAG, an
 * envelope, a relay challenge) can never be replayed as a checkpoint, and the reverse.
 */
export const CHECKPOINT_DOMAIN = 'orch-audit-checkpoint\n';

export interface AuditRow {
  /** 1-based and contiguous within a tenant. */
  seq: number;
  /** RFC 3339 UTC with milliseconds, as `Date#toISOString` writes it: `2025-01-02T03:04:05.678Z`. */
  ts: string;
  tenant: string;
  actor: string;
  action: string;
  subject: string;
  /** A JSON object (I-JSON: see canonical-json.ts for what is refused). */
  details: Record<string, unknown>;
  /** Lowercase hex SHA-256 of the previous row, {@link GENESIS_HASH} for row 1. */
  prevHash: string;
  /** Lowercase hex SHA-256, see {@link computeRowHash}. */
  hash: string;
}

/** A row before its hash is known. */
export type UnhashedAuditRow = Omit<AuditRow, 'hash'>;

export interface CheckpointHead {
  tenant: string;
  seq: number;
  hash: string;
  ts: string;
}

export interface SignedCheckpoint extends CheckpointHead {
  v: 1;
  /** Lowercase hex Ed25519 public key (32 bytes). Informational: verification uses the caller's trusted key. */
  signerPublicKey: string;
  /** Lowercase hex Ed25519 detached signature (64 bytes) over {@link checkpointMessage}. */
  signature: string;
}

/** Signs checkpoint messages with the desktop's Ed25519 key, wherever that key lives (the OS keychain). */
export interface CheckpointSigner {
  publicKey: Buffer;
  sign(message: Buffer): Buffer;
}

export type AuditProblem =
  | 'edited'
  | 'deleted'
  | 'inserted'
  | 'reordered'
  | 'truncated'
  | 'checkpoint_mismatch'
  | 'bad_checkpoint_signature'
  | 'fork'
  | 'head_mismatch'
  /** Reported by a store, not by the verifier: rows exist but no signed head is kept outside the store. */
  | 'head_missing'
  | 'checkpoint_deleted'
  | 'unsigned_rows';

export type AuditChainResult =
  | { ok: true; count: number; head: { seq: number; hash: string } }
  | { ok: false; firstBadSeq: number; problem: AuditProblem; detail: string };

export interface ValidateAuditChainOptions {
  /** Signed heads; each is checked when the stream reaches its seq, and any beyond the end means truncation. */
  checkpoints?: readonly SignedCheckpoint[];
  /** Decides whether a checkpoint's signature is genuine; see {@link checkpointVerifier}. */
  verifyCheckpoint?: (cp: SignedCheckpoint) => boolean;
  /** Shorthand for `verifyCheckpoint: checkpointVerifier(trustedPublicKey)`. */
  trustedPublicKey?: Buffer;
  /** Every row must belong to this tenant (defaults to the tenant of the first row). */
  tenant?: string;
  /**
   * Verify a slice that starts after this row (an export made with `--since`): the first row must be seq+1 and
   * chain onto `hash`. The anchor itself is only as good as the checkpoints after it: a signed checkpoint at or
   * after the end of the slice vouches for every row in it, and for the anchor. Checkpoints before `seq` are
   * ignored (their rows are not in the slice); one at exactly `seq` is checked against `hash`.
   */
  startAfter?: { seq: number; hash: string };
  /**
   * The newest signed head kept outside the store (the keychain copy of a checkpoint, see AUDIT-CHAIN.md): the
   * chain must reach its seq (`truncated`), the row there must have its hash (`head_mismatch`), and the store
   * must still hold that checkpoint (`checkpoint_deleted`), since the head is only ever copied from one. Its
   * signature is checked like a checkpoint's. Ignored with `startAfter`.
   */
  signedHead?: SignedCheckpoint;
  /**
   * The writer's checkpoint rule (every `every` rows, and on the first row `intervalMs` or more after the last
   * checkpoint, and on the first row of all): rows past the last valid checkpoint that the rule would have
   * signed are `unsigned_rows`, and so are rows with no valid checkpoint at all. Ignored with `startAfter`.
   */
  checkpointPolicy?: CheckpointPolicy;
}

/** When the writer signs a checkpoint: see {@link ValidateAuditChainOptions.checkpointPolicy}. */
export interface CheckpointPolicy {
  every: number;
  intervalMs: number;
}

/** Stable codes of {@link AuditChainError}, codes of the one table (protocol/errors.ts ERROR_CODES). */
export const AuditChainErrorCode = {
  malformedRow: 'audit_row_malformed',
  verifierMissing: 'audit_checkpoint_verifier_missing',
  badSigner: 'audit_checkpoint_signer_invalid',
} as const satisfies Record<string, ErrorCode>;
export type AuditChainErrorCodeName = (typeof AuditChainErrorCode)[keyof typeof AuditChainErrorCode];

/** An OrchError like every other: the CLI prints it under its code; an activity fails with it, without retries. */
export class AuditChainError extends OrchError {
  override readonly name = 'AuditChainError';
  declare readonly code: AuditChainErrorCodeName;
  constructor(code: AuditChainErrorCodeName, message: string) {
    super(code, message);
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
// `ts` must match /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, checked by hand because this runs once per row
// on verify and the regex (or a loop over a template) costs about as much as all the other shape checks
// together; the unit tests hold this equal to the regex.
function isTimestamp(s: unknown): boolean {
  if (typeof s !== 'string' || s.length !== 24) return false;
  return (
    digitAt(s, 0) && digitAt(s, 1) && digitAt(s, 2) && digitAt(s, 3) && s.charCodeAt(4) === 0x2d &&
    digitAt(s, 5) && digitAt(s, 6) && s.charCodeAt(7) === 0x2d && digitAt(s, 8) && digitAt(s, 9) && s.charCodeAt(10) === 0x54 &&
    digitAt(s, 11) && digitAt(s, 12) && s.charCodeAt(13) === 0x3a && digitAt(s, 14) && digitAt(s, 15) && s.charCodeAt(16) === 0x3a &&
    digitAt(s, 17) && digitAt(s, 18) && s.charCodeAt(19) === 0x2e && digitAt(s, 20) && digitAt(s, 21) && digitAt(s, 22) &&
    s.charCodeAt(23) === 0x5a
  );
}

function digitAt(s: string, i: number): boolean {
  return (s.charCodeAt(i) - 0x30) >>> 0 < 10;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** The fields every row has, whether its details are an object (in memory) or stored text (a store). */
type RowFields = Omit<UnhashedAuditRow, 'details'>;

/** Why `row` cannot be hashed, or undefined if it can. Does not look at `hash`. */
function rowShapeProblem(row: RowFields, knownGoodPrevHash?: string): string | undefined {
  if (typeof row !== 'object' || row === null) return 'row is not an object';
  if (!Number.isSafeInteger(row.seq) || row.seq < 1) return 'seq is not a positive integer';
  if (!isTimestamp(row.ts)) return 'ts is not RFC 3339 UTC with milliseconds';
  if (typeof row.tenant !== 'string') return 'tenant is not a string';
  if (typeof row.actor !== 'string') return 'actor is not a string';
  if (typeof row.action !== 'string') return 'action is not a string';
  if (typeof row.subject !== 'string') return 'subject is not a string';
  // On verify the prevHash usually equals the hash just checked, which is well formed: skip the regex then.
  if (row.prevHash !== knownGoodPrevHash && (typeof row.prevHash !== 'string' || !HEX64.test(row.prevHash))) {
    return 'prevHash is not 64 lowercase hex digits';
  }
  return undefined;
}

function memoryRowShapeProblem(row: UnhashedAuditRow, knownGoodPrevHash?: string): string | undefined {
  const problem = rowShapeProblem(row, knownGoodPrevHash);
  if (problem !== undefined) return problem;
  return isPlainObject(row.details) ? undefined : 'details is not a JSON object';
}

function storedRowShapeProblem(row: StoredAuditRow, knownGoodPrevHash?: string): string | undefined {
  const problem = rowShapeProblem(row, knownGoodPrevHash);
  if (problem !== undefined) return problem;
  return typeof row.detailsText === 'string' ? undefined : 'stored details are not text';
}

/**
 * A row as a store holds it: `detailsText` is the stored details JSON, exactly as stored, which must be the
 * canonical JCS text of a JSON object. Verification hashes these characters as they are and never parses them
 * into a value, so there is no `details` object.
 */
export interface StoredAuditRow extends Omit<AuditRow, 'details'> {
  detailsText: string;
}

/**
 * The canonical encoding of a row: JCS of {v, seq, ts, tenant, actor, action, subject, details, prevHash}.
 * Written out with the members already in JCS order (action, actor, details, prevHash, seq, subject, tenant,
 * ts, v) by encodeRow, the one row encoder, which hashing uses too; the unit tests hold it equal to `canonicalize`.
 *
 * @throws {CanonicalJsonError} if a string or details hold what I-JSON refuses.
 */
export function canonicalRowEncoding(row: UnhashedAuditRow): string {
  const problem = memoryRowShapeProblem(row);
  if (problem !== undefined) throw new AuditChainError(AuditChainErrorCode.malformedRow, problem);
  const details = canonicalize(row.details);
  const encoded = encodeRow(row, details);
  if (encoded !== undefined) return encoded;
  // A string field holds a lone surrogate: canonicalString throws the typed error that names it.
  for (const field of ['action', 'actor', 'subject', 'tenant'] as const) canonicalString(row[field], `/${field}`);
  throw new Error('unreachable: encodeRow refused a row whose strings are all I-JSON');
}

// ------------------------------------------------------------------------------------------------- hashing

/** The exact bytes hashed for a row: 32 raw bytes of prevHash, then the UTF-8 canonical encoding. */
export function rowHashInput(row: UnhashedAuditRow): Buffer {
  const encoded = canonicalRowEncoding(row);
  return Buffer.concat([Buffer.from(row.prevHash, 'hex'), Buffer.from(encoded, 'utf8')]);
}

/**
 * SHA-256 of {@link rowHashInput}, lowercase hex. The row's own `hash` field is ignored.
 *
 * @example
 * const row = { seq: 1, ts: '2025-01-01T00:00:00.000Z', tenant: 'acme', actor: 'op', action: 'create_tenant',
 *   subject: 'tenant:acme', details: {}, prevHash: GENESIS_HASH };
 * computeRowHash(row) // 64 hex digits
 * @throws {AuditChainError} `audit_row_malformed` if a field has the wrong type or format.
 */
export function computeRowHash(row: UnhashedAuditRow): string {
  const problem = memoryRowShapeProblem(row);
  if (problem !== undefined) throw new AuditChainError(AuditChainErrorCode.malformedRow, problem);
  const details = tryCanonicalize(row.details);
  const encoded = details === undefined ? undefined : encodeRow(row, details);
  // Off the fast path, a value I-JSON refuses: canonicalRowEncoding throws its typed error.
  return hashEncoded(row.prevHash, encoded ?? canonicalRowEncoding(row));
}

/** What {@link rowHashCheck} found: a row that cannot be hashed at all (which verification calls an edit)... */
const UNHASHABLE = 0;
/** ...a row that does not hash to its own `hash`... */
const HASH_DIFFERS = 1;
/** ...or one that does. */
const HASH_MATCHES = 2;

/** Whether a row hashes to its own `hash` field; see {@link UNHASHABLE}. */
function rowHashCheck(row: AuditRow | StoredAuditRow, stored: boolean, lastHash: string): number {
  const problem = stored ? storedRowShapeProblem(row as StoredAuditRow, lastHash) : memoryRowShapeProblem(row as AuditRow, lastHash);
  if (problem !== undefined) return UNHASHABLE;
  // A stored row's details text is hashed exactly as stored, after checking that it is canonical JCS of a JSON
  // object: the bytes hashed are the bytes on disk, so any edit of them (even to an equivalent non-canonical
  // form) changes the hash, and a row written with non-canonical text and a recomputed hash is still refused.
  let details: string | undefined;
  if (stored) {
    const text = (row as StoredAuditRow).detailsText;
    if (isCanonicalObjectText(text)) details = text;
  } else {
    details = tryCanonicalize((row as AuditRow).details);
  }
  if (details === undefined) return UNHASHABLE;
  const encoded = encodeRow(row, details);
  if (encoded === undefined) return UNHASHABLE;
  return hashIs(row.prevHash, encoded, row.hash) ? HASH_MATCHES : HASH_DIFFERS;
}

// crypto.hash (Node >= 20.12) hashes one buffer without creating a Hash object, about twice as fast as
// createHash().update().digest() for a row-sized input. Chosen at the first hash, not when this module loads: the
// compiled CLI loads node:crypto only for commands that use it (bin/build-cli.mjs), and `orch --help` does not.
// Digests come as 'hex' (a row's hash) or 'latin1' (the 32 bytes as char codes 0-255, which verify compares with
// the stored hex and keeps as the next row's prevHash bytes).
type Sha256 = (data: Uint8Array, encoding: 'hex' | 'latin1') => string;
let sha256Impl: Sha256 | undefined;
function pickSha256(): Sha256 {
  const oneShotHash = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'hex' | 'latin1') => string }).hash;
  return typeof oneShotHash === 'function'
    ? (data, encoding) => oneShotHash('sha256', data, encoding)
    : (data, encoding) => crypto.createHash('sha256').update(data).digest().toString(encoding);
}
const sha256 = (data: Uint8Array, encoding: 'hex' | 'latin1'): string => (sha256Impl ??= pickSha256())(data, encoding);

// One reusable buffer for prevHash bytes || encoding: hashing one buffer is far cheaper than concatenating
// fresh pieces, and this runs once per row on verify. Synchronous use only. Filled with a hand-written hex
// decoder and TextEncoder#encodeInto (measured faster than writing the pieces byte by byte from JavaScript,
// and than Buffer#write).
let scratch = new Uint8Array(64 * 1024);
let scratchTail = scratch.subarray(32);
/** views[n] is scratch[0, n), made once: the rows of a chain have few lengths, and a view per row is garbage. */
let views: Uint8Array[] = [];
const utf8 = new TextEncoder();

/**
 * The 64-hex-digit string whose bytes scratch[0, 32) holds, '' for none. On verify each row's prevHash is the hash
 * of the row before, whose bytes the comparison with that row's digest left there: no row decodes hex.
 */
let scratchPrev = '';

// Value of each lowercase hex digit by char code, -1 for anything else (prevHash is checked before this runs).
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;
/** Char code of the lowercase hex digit for each value 0-15. */
const HEX_DIGIT = new Uint8Array(16);
for (let i = 0; i < 16; i++) HEX_DIGIT[i] = '0123456789abcdef'.charCodeAt(i);

/**
 * The encoding of a row whose shape was checked, with `details` its canonical details text, or undefined when a
 * string field holds a lone surrogate (not I-JSON).
 */
function encodeRow(row: RowFields, details: string): string | undefined {
  // The JCS row is `{"action":A,"actor":B,"details":D,"prevHash":"P","seq":N,"subject":S,"tenant":T,"ts":"X","v":1}`
  // with the members already in JCS order; the unit tests hold it equal to canonicalize() of the row.
  const { action, actor, subject, tenant } = row;
  if (isPlainString(action) && isPlainString(actor) && isPlainString(subject) && isPlainString(tenant)) {
    // Nothing to escape (the common case): the quotes are written here, with no quoted copy of each field.
    return (
      '{"action":"' + action + '","actor":"' + actor + '","details":' + details + ',"prevHash":"' + row.prevHash + '","seq":' + String(row.seq) +
      ',"subject":"' + subject + '","tenant":"' + tenant + '","ts":"' + row.ts + '","v":1}'
    );
  }
  const qAction = quoteString(action);
  const qActor = quoteString(actor);
  const qSubject = quoteString(subject);
  const qTenant = quoteString(tenant);
  if (qAction === undefined || qActor === undefined || qSubject === undefined || qTenant === undefined) return undefined;
  return (
    '{"action":' + qAction + ',"actor":' + qActor + ',"details":' + details + ',"prevHash":"' + row.prevHash + '","seq":' + String(row.seq) +
    ',"subject":' + qSubject + ',"tenant":' + qTenant + ',"ts":"' + row.ts + '","v":1}'
  );
}

/** SHA-256 of prevHash bytes || UTF-8 of `encoded`, lowercase hex. */
function hashEncoded(prevHash: string, encoded: string): string {
  return sha256(hashInput(prevHash, encoded), 'hex');
}

/**
 * Whether SHA-256 of prevHash bytes || UTF-8 of `encoded` is `hash`, written as 64 lowercase hex digits; compares
 * the digest's bytes with the digits, with no hex string made, and leaves them in scratch[0, 32) for a next row
 * whose prevHash is `hash`.
 */
function hashIs(prevHash: string, encoded: string, hash: unknown): boolean {
  const digest = sha256(hashInput(prevHash, encoded), 'latin1');
  scratchPrev = '';
  if (typeof hash !== 'string' || hash.length !== 64) return false;
  for (let i = 0; i < 32; i++) {
    const b = digest.charCodeAt(i);
    if (hash.charCodeAt(2 * i) !== HEX_DIGIT[b >> 4] || hash.charCodeAt(2 * i + 1) !== HEX_DIGIT[b & 15]) return false;
    scratch[i] = b;
  }
  scratchPrev = hash;
  return true;
}

/** scratch[0, n) filled with prevHash bytes (a well-formed 64-hex-digit string) || UTF-8 of `encoded`. */
function hashInput(prevHash: string, encoded: string): Uint8Array {
  const max = 32 + encoded.length * 3;
  if (max > scratch.length) {
    scratch = new Uint8Array(Math.max(max, scratch.length * 2));
    scratchTail = scratch.subarray(32);
    views = [];
    scratchPrev = '';
  }
  if (prevHash !== scratchPrev) {
    for (let i = 0; i < 32; i++) {
      scratch[i] = (HEX_VALUE[prevHash.charCodeAt(2 * i)]! << 4) | HEX_VALUE[prevHash.charCodeAt(2 * i + 1)]!;
    }
    scratchPrev = prevHash;
  }
  const length = 32 + utf8.encodeInto(encoded, scratchTail).written;
  return (views[length] ??= scratch.subarray(0, length));
}

/** Builds the row that follows `head` (seq 0 and {@link GENESIS_HASH} for an empty chain). */
export function nextAuditRow(
  head: { seq: number; hash: string },
  fields: { ts: string; tenant: string; actor: string; action: string; subject: string; details: Record<string, unknown> },
): AuditRow {
  const unhashed: UnhashedAuditRow = {
    seq: head.seq + 1,
    ts: fields.ts,
    tenant: fields.tenant,
    actor: fields.actor,
    action: fields.action,
    subject: fields.subject,
    details: fields.details,
    prevHash: head.hash,
  };
  return { ...unhashed, hash: computeRowHash(unhashed) };
}

// ---------------------------------------------------------------------------------------------- checkpoints

function checkpointShapeProblem(cp: CheckpointHead): string | undefined {
  if (typeof cp !== 'object' || cp === null) return 'checkpoint is not an object';
  if (typeof cp.tenant !== 'string') return 'tenant is not a string';
  if (!Number.isSafeInteger(cp.seq) || cp.seq < 1) return 'seq is not a positive integer';
  if (typeof cp.hash !== 'string' || !HEX64.test(cp.hash)) return 'hash is not 64 lowercase hex digits';
  if (!isTimestamp(cp.ts)) return 'ts is not RFC 3339 UTC with milliseconds';
  return undefined;
}

/** The exact bytes a checkpoint signature covers. */
export function checkpointMessage(head: CheckpointHead): Buffer {
  const problem = checkpointShapeProblem(head);
  if (problem !== undefined) throw new AuditChainError(AuditChainErrorCode.malformedRow, `checkpoint: ${problem}`);
  const body = canonicalize({ v: AUDIT_CHAIN_VERSION, tenant: head.tenant, seq: head.seq, hash: head.hash, ts: head.ts });
  return Buffer.from(CHECKPOINT_DOMAIN + body, 'utf8');
}

/** Signs a chain head. */
export function signCheckpoint(head: CheckpointHead, signer: CheckpointSigner): SignedCheckpoint {
  if (!Buffer.isBuffer(signer.publicKey) || signer.publicKey.length !== sodium.crypto_sign_PUBLICKEYBYTES) {
    throw new AuditChainError(AuditChainErrorCode.badSigner, 'signer public key is not 32 bytes');
  }
  const message = checkpointMessage(head);
  const signature = signer.sign(message);
  // A signer whose key does not match its public key would write checkpoints that fail every later verify;
  // refuse now, where the cause is visible.
  if (
    !Buffer.isBuffer(signature) ||
    signature.length !== sodium.crypto_sign_BYTES ||
    !sodium.crypto_sign_verify_detached(signature, message, signer.publicKey)
  ) {
    throw new AuditChainError(AuditChainErrorCode.badSigner, 'signer produced a signature its public key does not verify');
  }
  return {
    v: AUDIT_CHAIN_VERSION,
    tenant: head.tenant,
    seq: head.seq,
    hash: head.hash,
    ts: head.ts,
    signerPublicKey: signer.publicKey.toString('hex'),
    signature: signature.toString('hex'),
  };
}

/**
 * True if `cp` is well formed, names `trustedPublicKey` as its signer and carries a valid Ed25519 signature by
 * that key. The signature is checked against the trusted key, never against the key the checkpoint names.
 */
export function verifyCheckpointSignature(cp: SignedCheckpoint, trustedPublicKey: Buffer): boolean {
  if (trustedPublicKey.length !== sodium.crypto_sign_PUBLICKEYBYTES) return false;
  if (typeof cp !== 'object' || cp === null || cp.v !== AUDIT_CHAIN_VERSION) return false;
  if (checkpointShapeProblem(cp) !== undefined) return false;
  if (typeof cp.signature !== 'string' || !HEX128.test(cp.signature)) return false;
  if (typeof cp.signerPublicKey !== 'string' || !HEX64.test(cp.signerPublicKey)) return false;
  const named = Buffer.from(cp.signerPublicKey, 'hex');
  if (!sodium.sodium_memcmp(named, trustedPublicKey)) return false;
  return sodium.crypto_sign_verify_detached(Buffer.from(cp.signature, 'hex'), checkpointMessage(cp), trustedPublicKey);
}

/** A `verifyCheckpoint` for {@link validateAuditChain} that trusts exactly one key (the desktop's). */
export function checkpointVerifier(trustedPublicKey: Buffer): (cp: SignedCheckpoint) => boolean {
  const key = Buffer.from(trustedPublicKey);
  return (cp) => verifyCheckpointSignature(cp, key);
}

/** A {@link CheckpointSigner} over an Ed25519 secret key held in memory (tests, vectors, the desktop once it
 * has read its key from the keychain). */
export function ed25519CheckpointSigner(keyPair: { publicKey: Buffer; secretKey: Buffer }): CheckpointSigner {
  if (keyPair.secretKey.length !== sodium.crypto_sign_SECRETKEYBYTES) {
    throw new AuditChainError(AuditChainErrorCode.badSigner, 'secret key is not 64 bytes');
  }
  return {
    publicKey: Buffer.from(keyPair.publicKey),
    sign(message) {
      const sig = Buffer.alloc(sodium.crypto_sign_BYTES);
      sodium.crypto_sign_detached(sig, message, keyPair.secretKey);
      return sig;
    },
  };
}

// --------------------------------------------------------------------------------------------- verification

function fail(firstBadSeq: number, problem: AuditProblem, detail: string): AuditChainResult {
  return { ok: false, firstBadSeq, problem, detail };
}

/**
 * Verifies a chain in one pass and names its first break. Memory is O(1) besides the checkpoints.
 *
 * How the first break is named (the row stream is read in the order given):
 * - `edited`: the row at the position where seq N was due does not hash to its own `hash` (any field edited,
 *   including seq, prevHash or hash, or a field of the wrong type). firstBadSeq = N.
 * - `deleted`: seq N is due but a higher seq comes, and N never appears later. firstBadSeq = N.
 * - `reordered`: as for deleted, but N does appear later in the stream. firstBadSeq = N.
 * - `inserted`: seq N is due and comes, hashes to itself, but its prevHash is not the hash of row N-1 (or
 *   it belongs to another tenant); or a seq already seen comes again. firstBadSeq = N, or the repeated seq.
 * - `fork`: a second row with the seq just accepted, the same prevHash and another hash: two children of one
 *   parent. (A forged row inserted with a correctly chained prevHash looks exactly like this.) firstBadSeq =
 *   that seq.
 * - `bad_checkpoint_signature`: a checkpoint at or below the point reached is not signed by the trusted key.
 *   firstBadSeq = its seq.
 * - `checkpoint_mismatch`: the chain is internally consistent but its hash (or tenant) at a checkpoint's seq
 *   is not the signed one: rows were rewritten and every hash recomputed. The rewrite lies after the last
 *   checkpoint that matched, so firstBadSeq = that checkpoint's seq + 1 (1 if none).
 * - `truncated`: the chain ends at seq N-1 before a validly signed checkpoint's seq. firstBadSeq = N.
 *
 * Rows appended after the newest checkpoint are protected by the hash chain only: anyone who can write the
 * store can append (or cut) rows there undetected until the next checkpoint is signed.
 *
 * @example
 * const result = validateAuditChain(log.rows(), { checkpoints: log.checkpoints(), trustedPublicKey: desktopKey });
 * if (!result.ok) console.error(`audit chain broken at seq ${result.firstBadSeq}: ${result.problem}`);
 */
export function validateAuditChain(rows: Iterable<AuditRow>, opts: ValidateAuditChainOptions = {}): AuditChainResult {
  return validate(rows, opts, false);
}

/**
 * {@link validateAuditChain} over rows read from a store. Each row's details are hashed as the stored text
 * itself (never parsed into a value), and that text must be canonical JCS of a JSON object: a row whose stored
 * bytes changed is `edited` because they no longer hash to its `hash`, and a row whose text is not canonical is
 * `edited` even if its hash was recomputed over that text (see {@link isCanonicalObjectText}).
 */
export function validateStoredAuditChain(rows: Iterable<StoredAuditRow>, opts: ValidateAuditChainOptions = {}): AuditChainResult {
  return validate(rows, opts, true);
}

function validate(rows: Iterable<AuditRow | StoredAuditRow>, opts: ValidateAuditChainOptions, stored: boolean): AuditChainResult {
  const checkpoints = [...(opts.checkpoints ?? [])];
  let verify = opts.verifyCheckpoint;
  if (verify === undefined && opts.trustedPublicKey !== undefined) verify = checkpointVerifier(opts.trustedPublicKey);
  if (checkpoints.length > 0 && verify === undefined) {
    throw new AuditChainError(
      AuditChainErrorCode.verifierMissing,
      'checkpoints given without a trusted public key or verifyCheckpoint to check their signatures',
    );
  }
  // A checkpoint without a usable seq cannot be placed in the stream; nothing is vouched for before it.
  for (let i = 0; i < checkpoints.length; i++) {
    const cp = checkpoints[i]!;
    if (typeof cp !== 'object' || cp === null || !Number.isSafeInteger(cp.seq) || cp.seq < 1) {
      return fail(1, 'bad_checkpoint_signature', `checkpoint #${i} has no valid seq`);
    }
  }
  checkpoints.sort((a, b) => a.seq - b.seq);

  // The head outside the store and the writer's checkpoint rule speak about the whole chain, not a slice.
  const head = opts.startAfter === undefined ? opts.signedHead : undefined;
  const policy = opts.startAfter === undefined ? opts.checkpointPolicy : undefined;
  if ((head !== undefined || policy !== undefined) && verify === undefined) {
    throw new AuditChainError(AuditChainErrorCode.verifierMissing, 'a signed head or a checkpoint policy needs a trusted public key to check signatures');
  }
  if (policy !== undefined && !(Number.isSafeInteger(policy.every) && policy.every >= 1 && policy.intervalMs > 0)) {
    throw new AuditChainError(AuditChainErrorCode.malformedRow, 'checkpointPolicy needs every >= 1 and intervalMs > 0');
  }
  if (head !== undefined) {
    if (typeof head !== 'object' || head === null || !Number.isSafeInteger(head.seq) || head.seq < 1) {
      return fail(1, 'bad_checkpoint_signature', `${HEAD_NAME} has no valid seq`);
    }
    if (!verify!(head)) return fail(head.seq, 'bad_checkpoint_signature', `${HEAD_NAME} (seq ${head.seq}) is not signed by the trusted key`);
  }
  let headCheckpointFound = false;
  // The last valid checkpoint's newest ts plus intervalMs, as a timestamp string (they compare in time order):
  // the writer signs the first row at or after it. overdueSeq is the first such row since that checkpoint.
  let dueTs: string | undefined;
  let lastCheckpointTs = '';
  let overdueSeq = 0;

  const start = opts.startAfter ?? { seq: 0, hash: GENESIS_HASH };
  if (!Number.isSafeInteger(start.seq) || start.seq < 0 || typeof start.hash !== 'string' || !HEX64.test(start.hash)) {
    throw new AuditChainError(AuditChainErrorCode.malformedRow, 'startAfter needs a seq >= 0 and a 64-hex-digit hash');
  }
  let tenant = opts.tenant;
  let expected = start.seq + 1;
  let lastHash = start.hash;
  let lastPrevHash: string | undefined;
  let cpIndex = 0;
  let lastMatchedCheckpointSeq = start.seq;
  while (cpIndex < checkpoints.length && checkpoints[cpIndex]!.seq < start.seq) cpIndex++;

  // Set when a seq is skipped: the rest of the stream is only scanned for the missing seq, to tell a deletion
  // from a reordering, since the break itself is already known.
  let missingSeq = 0;
  let skippedTo = 0;
  let missingSeen = false;

  // Checkpoints at the seq just accepted are checked when the next row shows it is not a second row with that
  // seq: a forged row placed before the genuine one would otherwise be blamed on the whole span since the
  // previous checkpoint instead of being named as the fork it is.
  let deferredCheckpoints = false;
  const runCheckpoints = (): AuditChainResult | undefined => {
    deferredCheckpoints = false;
    const seq = expected - 1;
    if (head !== undefined && head.seq === seq && (head.tenant !== tenant || head.hash !== lastHash)) {
      return fail(
        lastMatchedCheckpointSeq + 1,
        'head_mismatch',
        `the row at seq ${seq} is not the one ${HEAD_NAME} names: rows after seq ${lastMatchedCheckpointSeq} were rewritten`,
      );
    }
    while (cpIndex < checkpoints.length && checkpoints[cpIndex]!.seq === seq) {
      const cp = checkpoints[cpIndex++]!;
      const problem = checkCheckpoint(cp, verify!, tenant, lastHash, lastMatchedCheckpointSeq);
      if (problem !== undefined) return problem;
      if (seq !== lastMatchedCheckpointSeq || cp.ts > lastCheckpointTs) lastCheckpointTs = cp.ts;
      lastMatchedCheckpointSeq = seq;
      if (head !== undefined && head.seq === seq) headCheckpointFound = true;
      if (policy !== undefined) {
        const due = new Date(Date.parse(lastCheckpointTs) + policy.intervalMs).toISOString();
        dueTs = due.length === 24 ? due : undefined;
        overdueSeq = 0;
      }
    }
    return undefined;
  };

  if (start.seq > 0 && cpIndex < checkpoints.length && checkpoints[cpIndex]!.seq === start.seq) {
    tenant ??= checkpoints[cpIndex]!.tenant;
    const problem = runCheckpoints();
    if (problem !== undefined) return problem;
  }

  for (const row of rows) {
    if (missingSeq !== 0) {
      if (!missingSeen && typeof row === 'object' && row !== null && row.seq === missingSeq) missingSeen = true;
      continue;
    }

    const check = rowHashCheck(row, stored, lastHash);
    if (deferredCheckpoints && !(check === HASH_MATCHES && row.seq < expected)) {
      const problem = runCheckpoints();
      if (problem !== undefined) return problem;
    }
    if (check !== HASH_MATCHES) {
      const claimed = typeof row === 'object' && row !== null ? String(row.seq) : '?';
      const why =
        check === UNHASHABLE
          ? ((stored ? storedRowShapeProblem(row as StoredAuditRow) : memoryRowShapeProblem(row as AuditRow)) ??
            (stored ? 'stored details are not canonical JCS of a JSON object' : 'a value is not I-JSON'))
          : 'hash does not match content';
      return fail(expected, 'edited', `row at the position of seq ${expected} (claims seq ${claimed}): ${why}`);
    }

    if (row.seq === expected) {
      if (row.prevHash !== lastHash) {
        return fail(expected, 'inserted', `seq ${expected} does not chain: its prevHash is not the hash of seq ${expected - 1}`);
      }
      if (tenant === undefined) tenant = row.tenant;
      else if (row.tenant !== tenant) {
        return fail(expected, 'inserted', `seq ${expected} belongs to tenant ${JSON.stringify(row.tenant)}, not ${JSON.stringify(tenant)}`);
      }
      lastPrevHash = row.prevHash;
      lastHash = row.hash;
      expected++;
      if (overdueSeq === 0 && dueTs !== undefined && row.ts >= dueTs) overdueSeq = row.seq;
      deferredCheckpoints = (cpIndex < checkpoints.length && checkpoints[cpIndex]!.seq === row.seq) || head?.seq === row.seq;
    } else if (row.seq > expected) {
      missingSeq = expected;
      skippedTo = row.seq;
    } else if (row.seq === expected - 1 && row.prevHash === lastPrevHash && row.hash !== lastHash) {
      return fail(row.seq, 'fork', `two rows with seq ${row.seq} chain onto the same parent`);
    } else {
      return fail(row.seq, 'inserted', `seq ${row.seq} appears again after seq ${expected - 1}`);
    }
  }

  if (deferredCheckpoints) {
    const problem = runCheckpoints();
    if (problem !== undefined) return problem;
  }

  if (missingSeq !== 0) {
    return missingSeen
      ? fail(missingSeq, 'reordered', `seq ${skippedTo} came where seq ${missingSeq} was due; seq ${missingSeq} comes later`)
      : fail(missingSeq, 'deleted', `seq ${missingSeq} is missing (seq ${skippedTo} came next)`);
  }

  // Checkpoints past the end: the first one with a genuine signature proves rows were cut.
  for (; cpIndex < checkpoints.length; cpIndex++) {
    const cp = checkpoints[cpIndex]!;
    if (!verify!(cp)) {
      return fail(cp.seq, 'bad_checkpoint_signature', `checkpoint at seq ${cp.seq} is not signed by the trusted key`);
    }
    if (tenant !== undefined && cp.tenant !== tenant) {
      return fail(lastMatchedCheckpointSeq + 1, 'checkpoint_mismatch', `checkpoint at seq ${cp.seq} is for tenant ${JSON.stringify(cp.tenant)}`);
    }
    return fail(expected, 'truncated', `chain ends at seq ${expected - 1} but a signed checkpoint covers seq ${cp.seq}`);
  }

  const last = expected - 1;
  if (head !== undefined) {
    if (head.seq > last) {
      const what = last === 0 ? 'the chain is empty' : `the chain ends at seq ${last}`;
      return fail(expected, 'truncated', `${what} but ${HEAD_NAME} is at seq ${head.seq}: rows were cut`);
    }
    if (!headCheckpointFound) {
      return fail(head.seq, 'checkpoint_deleted', `${HEAD_NAME} is the checkpoint at seq ${head.seq}, which the store no longer holds: checkpoints were deleted`);
    }
  }
  if (policy !== undefined && last > 0) {
    const c = lastMatchedCheckpointSeq;
    if (c === 0) return fail(1, 'unsigned_rows', `rows 1..${last} are covered by no signed checkpoint (the writer signs one at row 1): checkpoints were deleted`);
    if (last - c >= policy.every) {
      return fail(c + 1, 'unsigned_rows', `rows ${c + 1}..${last} follow the last signed checkpoint (seq ${c}), but the writer signs one every ${policy.every} rows: checkpoints were deleted or rows added`);
    }
    if (overdueSeq !== 0) {
      return fail(
        overdueSeq,
        'unsigned_rows',
        `row ${overdueSeq} is dated ${policy.intervalMs} ms or more after the last signed checkpoint (seq ${c}, ${lastCheckpointTs}) and carries none, but the writer signs one then: checkpoints were deleted or rows added`,
      );
    }
  }

  return { ok: true, count: expected - 1 - start.seq, head: { seq: expected - 1, hash: lastHash } };
}

const HEAD_NAME = 'the signed head kept outside the database';

function checkCheckpoint(
  cp: SignedCheckpoint,
  verify: (cp: SignedCheckpoint) => boolean,
  tenant: string | undefined,
  hashAtSeq: string,
  lastMatchedSeq: number,
): AuditChainResult | undefined {
  if (!verify(cp)) {
    return fail(cp.seq, 'bad_checkpoint_signature', `checkpoint at seq ${cp.seq} is not signed by the trusted key`);
  }
  if (cp.tenant !== tenant) {
    return fail(lastMatchedSeq + 1, 'checkpoint_mismatch', `checkpoint at seq ${cp.seq} is for tenant ${JSON.stringify(cp.tenant)}`);
  }
  if (cp.hash !== hashAtSeq) {
    return fail(
      lastMatchedSeq + 1,
      'checkpoint_mismatch',
      `hash at seq ${cp.seq} differs from the signed checkpoint: rows after seq ${lastMatchedSeq} were rewritten`,
    );
  }
  return undefined;
}

/** The name the architecture uses. */
export const validate_audit_chain = validateAuditChain;
