/**
 * The per-tenant audit hash chain, version 1. The format is written down in `AUDIT-CHAIN.md` beside this file
 * and pinned by `vectors/audit-chain-v1.json`; change neither without the other.
 *
 * Row hash:   hash = SHA-256( bytes(prevHash) || UTF-8( JCS({v:1, seq, ts, tenant, actor, action, subject,
 *                                                            details, prevHash}) ) )
 * Checkpoint: Ed25519 over UTF-8("orch-audit-checkpoint\n") || UTF-8( JCS({v:1, tenant, seq, hash, ts}) )
 */
import { createHash } from 'node:crypto';
import sodium from 'sodium-native';
import { canonicalize, canonicalString } from './canonical-json';

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
  | 'fork';

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
}

/** Stable codes of {@link AuditChainError}. */
export const AuditChainErrorCode = {
  malformedRow: 'audit_row_malformed',
  verifierMissing: 'audit_checkpoint_verifier_missing',
  badSigner: 'audit_checkpoint_signer_invalid',
} as const;
export type AuditChainErrorCodeName = (typeof AuditChainErrorCode)[keyof typeof AuditChainErrorCode];

export class AuditChainError extends Error {
  override readonly name = 'AuditChainError';
  constructor(
    readonly code: AuditChainErrorCodeName,
    message: string,
  ) {
    super(message);
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Why `row` cannot be hashed, or undefined if it can. Does not look at `hash`. */
function rowShapeProblem(row: UnhashedAuditRow, knownGoodPrevHash?: string): string | undefined {
  if (typeof row !== 'object' || row === null) return 'row is not an object';
  if (!Number.isSafeInteger(row.seq) || row.seq < 1) return 'seq is not a positive integer';
  if (typeof row.ts !== 'string' || !TS.test(row.ts)) return 'ts is not RFC 3339 UTC with milliseconds';
  if (typeof row.tenant !== 'string') return 'tenant is not a string';
  if (typeof row.actor !== 'string') return 'actor is not a string';
  if (typeof row.action !== 'string') return 'action is not a string';
  if (typeof row.subject !== 'string') return 'subject is not a string';
  if (!isPlainObject(row.details)) return 'details is not a JSON object';
  // On verify the prevHash usually equals the hash just checked, which is well formed: skip the regex then.
  if (row.prevHash !== knownGoodPrevHash && (typeof row.prevHash !== 'string' || !HEX64.test(row.prevHash))) {
    return 'prevHash is not 64 lowercase hex digits';
  }
  return undefined;
}

/**
 * The canonical encoding of a row: JCS of {v, seq, ts, tenant, actor, action, subject, details, prevHash}.
 * Written out with the members already in JCS order (action, actor, details, prevHash, seq, subject, tenant,
 * ts, v) because this runs once per row on verify; the unit tests hold it equal to `canonicalize`.
 *
 * @throws {CanonicalJsonError} if a string or details hold what I-JSON refuses.
 */
export function canonicalRowEncoding(row: UnhashedAuditRow): string {
  const problem = rowShapeProblem(row);
  if (problem !== undefined) throw new AuditChainError(AuditChainErrorCode.malformedRow, problem);
  return encodeRow(row);
}

function encodeRow(row: UnhashedAuditRow, detailsText: string = canonicalize(row.details)): string {
  return (
    '{"action":' +
    canonicalString(row.action, '/action') +
    ',"actor":' +
    canonicalString(row.actor, '/actor') +
    ',"details":' +
    detailsText +
    ',"prevHash":"' +
    row.prevHash +
    '","seq":' +
    String(row.seq) +
    ',"subject":' +
    canonicalString(row.subject, '/subject') +
    ',"tenant":' +
    canonicalString(row.tenant, '/tenant') +
    ',"ts":"' +
    row.ts +
    '","v":1}'
  );
}

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
  const encoded = canonicalRowEncoding(row);
  return hashEncoded(row.prevHash, encoded);
}

// One reusable buffer for prevHash bytes || encoding: a single update of one buffer costs about half of
// hashing two freshly allocated pieces, and this runs once per row on verify. Synchronous use only.
let scratch = Buffer.allocUnsafe(64 * 1024);

function hashEncoded(prevHash: string, encoded: string): string {
  const max = 32 + encoded.length * 3;
  if (max > scratch.length) scratch = Buffer.allocUnsafe(Math.max(max, scratch.length * 2));
  scratch.write(prevHash, 0, 32, 'hex');
  const len = scratch.write(encoded, 32, 'utf8');
  return createHash('sha256').update(scratch.subarray(0, 32 + len)).digest('hex');
}

/** A row as a store holds it: `detailsText` is the stored details JSON, which must be its canonical form. */
export interface StoredAuditRow extends AuditRow {
  detailsText: string;
}

/**
 * The hash a row would have, or undefined if it cannot be hashed at all (which verification calls an edit).
 * For a stored row, the stored details text must be exactly the canonical form of the details: otherwise the
 * bytes on disk are not the bytes that were hashed, even if they parse to the same value.
 */
function tryRowHash(row: AuditRow, stored: boolean, lastHash: string): string | undefined {
  if (rowShapeProblem(row, lastHash) !== undefined) return undefined;
  try {
    const detailsText = canonicalize(row.details);
    if (stored && detailsText !== (row as StoredAuditRow).detailsText) return undefined;
    return hashEncoded(row.prevHash, encodeRow(row, detailsText));
  } catch {
    return undefined;
  }
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
  if (typeof cp.ts !== 'string' || !TS.test(cp.ts)) return 'ts is not RFC 3339 UTC with milliseconds';
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
 * {@link validateAuditChain} over rows read from a store, which also requires each row's stored details text
 * to be the canonical JSON of its details (a row whose stored bytes changed is `edited`, even if they parse
 * to the same value).
 */
export function validateStoredAuditChain(rows: Iterable<StoredAuditRow>, opts: ValidateAuditChainOptions = {}): AuditChainResult {
  return validate(rows, opts, true);
}

function validate(rows: Iterable<AuditRow>, opts: ValidateAuditChainOptions, stored: boolean): AuditChainResult {
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
    while (cpIndex < checkpoints.length && checkpoints[cpIndex]!.seq === seq) {
      const cp = checkpoints[cpIndex++]!;
      const problem = checkCheckpoint(cp, verify!, tenant, lastHash, lastMatchedCheckpointSeq);
      if (problem !== undefined) return problem;
      lastMatchedCheckpointSeq = seq;
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

    const recomputed = tryRowHash(row, stored, lastHash);
    if (deferredCheckpoints && !(recomputed !== undefined && recomputed === row.hash && row.seq < expected)) {
      const problem = runCheckpoints();
      if (problem !== undefined) return problem;
    }
    if (recomputed === undefined || recomputed !== row.hash) {
      const claimed = typeof row === 'object' && row !== null ? String(row.seq) : '?';
      const why =
        recomputed === undefined
          ? (rowShapeProblem(row) ?? (stored ? 'stored details are not canonical I-JSON' : 'a value is not I-JSON'))
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
      deferredCheckpoints = cpIndex < checkpoints.length && checkpoints[cpIndex]!.seq === row.seq;
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

  return { ok: true, count: expected - 1 - start.seq, head: { seq: expected - 1, hash: lastHash } };
}

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
