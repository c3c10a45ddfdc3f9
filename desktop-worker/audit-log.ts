/**
 * The tenant's audit log in its SQLite file: appends rows of the v1 hash chain (protocol/AUDIT-CHAIN.md),
 * signs checkpoints of the head, and verifies what is stored.
 *
 * Every append is one `BEGIN IMMEDIATE` transaction (idempotency lookup, head read, hash, insert, maybe a
 * checkpoint), so writers in any number of processes sharing the file are serialised by SQLite's write lock
 * and can never both extend the same head. With WAL and synchronous=FULL, a row `append` returned is on disk;
 * `appendManyDurable` gives the same promise with the disk sync off the event loop.
 */
import fs from 'node:fs';
import type Database from 'better-sqlite3';
import type { AuditHeadStore } from './audit-head';
import { canonicalize } from '../protocol/canonical-json';
import { AUDIT_ROW_LIMITS } from '../workflows/dag/limits';
import { OrchError, type ErrorCode } from '../protocol/errors';
import {
  GENESIS_HASH,
  nextAuditRow,
  signCheckpoint,
  validateStoredAuditChain,
  type AuditChainResult,
  type AuditRow,
  type CheckpointPolicy,
  type StoredAuditRow,
  type CheckpointSigner,
  type SignedCheckpoint,
} from '../protocol/audit-chain';

type Db = Database.Database;

/** An entry that passed the checks, as the append transaction takes it. */
interface CheckedEntry {
  actor: string;
  action: string;
  subject: string;
  details: Record<string, unknown>;
  detailsText: string;
  idem: string | null;
}

/** Stable codes of {@link AuditLogError}. */
export const AuditLogErrorCode = {
  invalidEntry: 'audit_entry_invalid',
  noSigner: 'audit_no_signer',
  trustedKeyMissing: 'audit_trusted_key_missing',
} as const satisfies Record<string, ErrorCode>;
export type AuditLogErrorCodeName = (typeof AuditLogErrorCode)[keyof typeof AuditLogErrorCode];

/** An OrchError like every other, so the activity interceptor fails it under its own type, without retries. */
export class AuditLogError extends OrchError {
  override readonly name = 'AuditLogError';
  declare readonly code: AuditLogErrorCodeName;
  constructor(code: AuditLogErrorCodeName, message: string) {
    super(code, message);
  }
}

/**
 * Bounds on what one row may hold, so a runaway caller cannot bloat the tenant file or the SIEM. Stated once, in
 * workflows/dag/limits.ts, where the compiler and `orch run` hold gate messages, argv and workflow ids to them.
 */
export const AUDIT_LIMITS = AUDIT_ROW_LIMITS;

const ACTION = /^[a-z][a-z0-9_.:-]*$/;

export interface AuditEntry {
  actor: string;
  action: string;
  subject: string;
  details?: Record<string, unknown>;
  /** A retried writer passes the same key: the first row is returned and nothing is written. */
  idempotencyKey?: string;
}

/** The checkpoint rule every writer of a tenant follows, and `orch audit verify` holds the chain to. */
export const DEFAULT_CHECKPOINT_POLICY: Readonly<CheckpointPolicy> = { every: 1000, intervalMs: 5 * 60 * 1000 };

export interface AuditLogOptions {
  /** Signs checkpoints. Without one, no checkpoints are written and `checkpoint()` throws `audit_no_signer`. */
  signer?: CheckpointSigner;
  /** Sign the head after this many rows since the last checkpoint. Default 1000. */
  checkpointEvery?: number;
  /** Sign the head on the first append after the last checkpoint is this old. Default 5 minutes. */
  checkpointIntervalMs?: number;
  now?: () => Date;
  /**
   * Where each new checkpoint is copied once its transaction has committed (the OS keychain): the signed head
   * outside the database that `orch audit verify` checks. Never written ahead of the database.
   */
  heads?: AuditHeadStore;
  /** Told when a head could not be stored (the row is committed all the same; the next checkpoint tries again). */
  onHeadError?: (err: unknown) => void;
  /**
   * How appendManyDurable puts a file's written data on disk: `file` is the WAL (or the database file when there is
   * no WAL) and `handle` the descriptor this log keeps open on the WAL, undefined when it syncs another file.
   * Default: fdatasync of the handle (else of the file) on libuv's thread pool. Tests pass their own to see when
   * it runs, what waits for it, and which file it reaches.
   */
  syncFile?: (file: string, handle: number | undefined) => Promise<void>;
}

/** fdatasync of `file`, blocking: for seal() on close. */
function syncNow(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fdatasync of an open descriptor on libuv's thread pool, so the event loop runs on while the disk works. */
function fdatasyncHandle(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** The default {@link AuditLogOptions.syncFile}: the kept handle if there is one, else the file opened for it. */
function syncHandleOrFile(file: string, handle: number | undefined): Promise<void> {
  return handle !== undefined ? fdatasyncHandle(handle) : fdatasyncFile(file);
}

/** fdatasync of `file` on libuv's thread pool, so the event loop runs on while the disk works. */
export async function fdatasyncFile(file: string): Promise<void> {
  // Opened for writing: Windows flushes only a handle that may write.
  const handle = await fs.promises.open(file, 'r+');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

export interface AuditRowFilter {
  sinceSeq?: number;
  untilSeq?: number;
  action?: string;
  subjectPrefix?: string;
  /** Rows a run wrote: the workflow side puts `workflowId` (and `runId`) in every row's details. */
  workflowId?: string;
}

/**
 * Creates the audit tables if missing and sets the durability the log promises on this connection:
 * WAL (readers never block the appender) and synchronous=FULL (a commit is fsynced before it returns, so an
 * acknowledged row survives a crash or power loss).
 */
export function ensureAuditSchema(db: Db): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS audit (
      seq       INTEGER PRIMARY KEY CHECK (seq >= 1),
      ts        TEXT NOT NULL,
      tenant    TEXT NOT NULL,
      actor     TEXT NOT NULL,
      action    TEXT NOT NULL,
      subject   TEXT NOT NULL,
      details   TEXT NOT NULL,
      prev_hash TEXT NOT NULL,
      hash      TEXT NOT NULL,
      idem_key  TEXT UNIQUE
    );
    CREATE INDEX IF NOT EXISTS audit_action ON audit (action, seq);
    CREATE TABLE IF NOT EXISTS audit_checkpoint (
      id                INTEGER PRIMARY KEY,
      v                 INTEGER NOT NULL,
      tenant            TEXT NOT NULL,
      seq               INTEGER NOT NULL,
      hash              TEXT NOT NULL,
      ts                TEXT NOT NULL,
      signer_public_key TEXT NOT NULL,
      signature         TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS audit_checkpoint_seq ON audit_checkpoint (seq);
  `);
}

/** A row of the `audit` table as SQLite returns it: details as its canonical JSON text, prev_hash in the column's spelling. */
export type StoredRow = Omit<AuditRow, 'details' | 'prevHash'> & { details: string; prev_hash: string };

/** A row of the verify SELECT in raw mode: seq, ts, tenant, actor, action, subject, details, prev_hash, hash. (A
 * damaged database may hold other types in any column; the verifier checks each field's type.) */
type StoredRowTuple = [number, string, string, string, string, string, string, string, string];

interface StoredCheckpoint {
  v: number;
  tenant: string;
  seq: number;
  hash: string;
  ts: string;
  signer_public_key: string;
  signature: string;
}

const ROW_COLUMNS = 'seq, ts, tenant, actor, action, subject, details, prev_hash, hash';

function toRow(r: StoredRow): AuditRow {
  return {
    seq: r.seq,
    ts: r.ts,
    tenant: r.tenant,
    actor: r.actor,
    action: r.action,
    subject: r.subject,
    details: JSON.parse(r.details) as Record<string, unknown>,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

function toCheckpoint(r: StoredCheckpoint): SignedCheckpoint {
  return {
    v: r.v as 1,
    tenant: r.tenant,
    seq: r.seq,
    hash: r.hash,
    ts: r.ts,
    signerPublicKey: r.signer_public_key,
    signature: r.signature,
  };
}

function checkText(field: keyof typeof AUDIT_LIMITS, value: unknown, allowEmpty = false): string {
  if (typeof value !== 'string' || (!allowEmpty && value.length === 0) || value.length > AUDIT_LIMITS[field]) {
    throw new AuditLogError(
      AuditLogErrorCode.invalidEntry,
      `${field} must be a ${allowEmpty ? '' : 'non-empty '}string of at most ${AUDIT_LIMITS[field]} characters`,
    );
  }
  return value;
}

/**
 * One tenant's audit log on a tenant database handle opened by the caller.
 *
 * @example
 * const log = new AuditLog(db, 'acme', { signer });
 * log.append({ actor: 'operator:alice', action: 'create_tenant', subject: 'tenant:acme' });
 * const result = log.verify(); // { ok: true, count: 1, head: { seq: 1, hash: '…' } }
 */
export class AuditLog {
  private readonly signer: CheckpointSigner | undefined;
  private readonly checkpointEvery: number;
  private readonly checkpointIntervalMs: number;
  private readonly now: () => Date;
  private readonly heads: AuditHeadStore | undefined;
  private readonly onHeadError: (err: unknown) => void;
  /** A checkpoint written in a transaction that may not have committed yet: copied out by publishHead(). */
  private pendingHead: SignedCheckpoint | undefined;
  /** The next head stored replaces whatever is stored (a new chain under this tenant name). */
  private replaceHead = false;
  /** Rows appended through this object since its last checkpoint: seal() signs them. */
  private unsealed = false;
  /** The WAL file appendManyDurable syncs; undefined when the database is not a file in WAL mode. */
  private readonly walFile: string | undefined;
  private readonly syncFile: (file: string, handle: number | undefined) => Promise<void>;
  /**
   * The descriptor appendManyDurable syncs the WAL through, opened at its first sync and kept until close(): one
   * open per log instead of an open and a close around every sync. SQLite keeps the same WAL file while a
   * connection is open (a checkpoint restarts or truncates it in place, journal_size_limit truncates it in place);
   * it is unlinked only when the last connection closes or the database leaves WAL mode, and a handle on an
   * unlinked file is dropped and the path opened again.
   */
  private walHandle: number | undefined;
  /** The WAL sync running on the thread pool with walHandle (its descriptor must stay open until it is done). */
  private handleSyncs = 0;
  private closed = false;
  /** synchronous=NORMAL and back to FULL around appendManyDurable's commit, prepared once (db.pragma() compiles each time). */
  private readonly syncNormal;
  private readonly syncFull;
  /** The WAL sync under way, and the one that follows it for commits made while it runs (group commit). */
  private syncing: Promise<void> | undefined;
  private nextSync: Promise<void> | undefined;
  /** appendManyDurable committed rows whose sync may not be done: seal() syncs before it copies a head out. */
  private unsynced = false;

  private readonly selectByIdem;
  private readonly selectHead;
  private readonly selectLastCheckpoint;
  private readonly insertRow;
  private readonly insertCheckpoint;
  private readonly appendTx;
  private readonly appendManyTx;
  private readonly checkpointTx;
  private readonly checkpointAtTx;
  private readonly selectBySeq;
  private readonly selectStored;

  constructor(
    private readonly db: Db,
    readonly tenant: string,
    opts: AuditLogOptions = {},
  ) {
    checkText('tenant', tenant);
    this.signer = opts.signer;
    this.checkpointEvery = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_POLICY.every;
    this.checkpointIntervalMs = opts.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_POLICY.intervalMs;
    this.now = opts.now ?? (() => new Date());
    this.heads = opts.heads;
    this.onHeadError = opts.onHeadError ?? ((err) => process.stderr.write(`orch: warning: ${err instanceof Error ? err.message : String(err)}\n`));
    if (!Number.isSafeInteger(this.checkpointEvery) || this.checkpointEvery < 1) {
      throw new RangeError('checkpointEvery must be a positive integer');
    }
    if (!(this.checkpointIntervalMs > 0)) throw new RangeError('checkpointIntervalMs must be positive');

    // The connection's synchronous level is what makes commits durable; set it here too, whoever opened db.
    ensureAuditSchema(db);
    this.walFile = !db.memory && db.pragma('journal_mode', { simple: true }) === 'wal' ? `${db.name}-wal` : undefined;
    this.syncFile = opts.syncFile ?? syncHandleOrFile;
    this.syncNormal = db.prepare('PRAGMA synchronous = NORMAL');
    this.syncFull = db.prepare('PRAGMA synchronous = FULL');

    this.selectByIdem = db.prepare<[string], StoredRow>(`SELECT ${ROW_COLUMNS} FROM audit WHERE idem_key = ?`);
    this.selectBySeq = db.prepare<[number], StoredRow>(`SELECT ${ROW_COLUMNS} FROM audit WHERE seq = ?`);
    // Raw (each row an array, in this column order): better-sqlite3 builds an array per row about twice as fast
    // as an object with named members, and verify reads every row.
    this.selectStored = db
      .prepare<[], StoredRowTuple>('SELECT seq, ts, tenant, actor, action, subject, details, prev_hash, hash FROM audit ORDER BY seq')
      .raw(true);
    this.selectHead = db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1');
    this.selectLastCheckpoint = db.prepare<[], StoredCheckpoint>(
      'SELECT v, tenant, seq, hash, ts, signer_public_key, signature FROM audit_checkpoint ORDER BY seq DESC, id DESC LIMIT 1',
    );
    this.insertRow = db.prepare<[number, string, string, string, string, string, string, string, string, string | null]>(
      `INSERT INTO audit (${ROW_COLUMNS}, idem_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertCheckpoint = db.prepare<[number, string, number, string, string, string, string]>(
      'INSERT INTO audit_checkpoint (v, tenant, seq, hash, ts, signer_public_key, signature) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );

    const appendInTx = (entry: CheckedEntry): AuditRow => {
      if (entry.idem !== null) {
        const existing = this.selectByIdem.get(entry.idem);
        if (existing !== undefined) return toRow(existing);
      }
      const now = this.now();
      const row = nextAuditRow(this.headInTx(), {
        ts: now.toISOString(),
        tenant: this.tenant,
        actor: entry.actor,
        action: entry.action,
        subject: entry.subject,
        details: entry.details,
      });
      this.insertRow.run(row.seq, row.ts, row.tenant, row.actor, row.action, row.subject, entry.detailsText, row.prevHash, row.hash, entry.idem);
      this.unsealed = true;
      if (this.signer !== undefined && this.checkpointDue(row.seq, now)) this.writeHeadCheckpoint(row.seq, row.hash, now);
      return row;
    };
    this.appendTx = db.transaction(appendInTx);
    this.appendManyTx = db.transaction((entries: CheckedEntry[]) => entries.map(appendInTx));
    this.checkpointTx = db.transaction((): SignedCheckpoint | null => {
      const head = this.headInTx();
      if (head.seq === 0) return null;
      const last = this.selectLastCheckpoint.get();
      if (last !== undefined && last.seq === head.seq && last.hash === head.hash) return toCheckpoint(last);
      return this.writeHeadCheckpoint(head.seq, head.hash, this.now());
    });
    const selectCheckpointAt = db.prepare<[number], StoredCheckpoint>(
      'SELECT v, tenant, seq, hash, ts, signer_public_key, signature FROM audit_checkpoint WHERE seq = ? ORDER BY id LIMIT 1',
    );
    this.checkpointAtTx = db.transaction((seq: number): SignedCheckpoint => {
      const existing = selectCheckpointAt.get(seq);
      if (existing !== undefined) return toCheckpoint(existing);
      const row = this.selectBySeq.get(seq);
      if (row === undefined) throw new AuditLogError(AuditLogErrorCode.invalidEntry, `there is no audit row ${seq} to sign`);
      return this.writeCheckpoint(row.seq, row.hash, this.now());
    });
  }

  /**
   * Appends one row and returns it. If `idempotencyKey` is already stored, returns that row and writes
   * nothing (the new entry's content is not compared: the first write wins). Signs a checkpoint when
   * `checkpointEvery` rows have passed since the last one, when the last one is older than
   * `checkpointIntervalMs`, or when there is none yet.
   *
   * @throws {AuditLogError} `audit_entry_invalid` for fields over {@link AUDIT_LIMITS} or of the wrong type.
   * @throws {CanonicalJsonError} for details that are not I-JSON.
   */
  append(entry: AuditEntry): AuditRow {
    const row = this.appendTx.immediate(this.check(entry));
    this.publishHead();
    return row;
  }

  /**
   * Appends several rows in one transaction (one fsync), in the order given: what a burst of concurrent appends
   * (parallel branches of runs) costs one commit instead of one each. Each result is that entry's row, or the
   * error that refused it: an entry that does not pass {@link append}'s checks is refused alone; a transaction that
   * fails (a busy database) fails every entry that was in it, and none of them is written.
   */
  appendMany(entries: readonly AuditEntry[], options: { publishHead?: boolean } = {}): Array<AuditRow | Error> {
    const out: Array<AuditRow | Error> = [];
    const checked: CheckedEntry[] = [];
    const at: number[] = [];
    for (const entry of entries) {
      try {
        checked.push(this.check(entry));
        at.push(out.length);
        out.push(new Error('not appended'));
      } catch (err) {
        out.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    if (checked.length === 0) return out;
    try {
      const rows = this.appendManyTx.immediate(checked);
      rows.forEach((row, i) => (out[at[i]!] = row));
    } catch (err) {
      for (const i of at) out[i] = err instanceof Error ? err : new Error(String(err));
    }
    if (options.publishHead !== false) this.publishHead();
    return out;
  }

  /**
   * {@link appendMany} for a caller that can wait without holding the event loop (the worker's activities): the
   * rows commit in one transaction that does not wait for the disk (synchronous=NORMAL for that commit alone), then
   * the WAL holding them is fdatasync'ed on libuv's thread pool, and only then does the promise resolve, so a row
   * it returns is on disk, as one appendMany returned is. Under synchronous=FULL the worker's event loop stood still
   * for every commit's fsync (2 to 50 ms each on a loaded machine), and with it every activity, poll and reply.
   * Commits made while a sync runs share the next one. A checkpoint head is copied out only after the sync, so the
   * stored head is never ahead of the disk. A database that is not a WAL file commits as appendMany does.
   *
   * Between the commit and the sync, another reader of the file can see rows a power loss would still take away
   * (as with synchronous=NORMAL); no caller is told they are written before they are on disk.
   *
   * @throws the sync's error, for every row of the batch (they are committed; a retry finds them by idempotency key
   * and waits for a sync that succeeds).
   */
  async appendManyDurable(entries: readonly AuditEntry[]): Promise<Array<AuditRow | Error>> {
    if (this.walFile === undefined) return this.appendMany(entries);
    let out: Array<AuditRow | Error>;
    this.syncNormal.run();
    try {
      out = this.appendMany(entries, { publishHead: false });
    } finally {
      this.syncFull.run();
    }
    this.unsynced = true;
    // The newest checkpoint this commit holds: the sync covers it (not one a later commit writes meanwhile).
    const covered = this.pendingHead;
    await this.walSynced(this.walFile);
    if (covered !== undefined && this.db.open) this.publishHead(covered);
    return out;
  }

  /** Resolves once everything committed before the call is on disk: a sync that starts after it, shared. */
  private walSynced(walFile: string): Promise<void> {
    // A sync already under way may have started before this commit: the next one covers it.
    if (this.syncing !== undefined) {
      this.nextSync ??= this.syncing.then(
        () => undefined,
        () => undefined,
      ).then(() => {
        this.nextSync = undefined;
        return this.walSynced(walFile);
      });
      return this.nextSync;
    }
    const sync = this.syncWal(walFile).finally(() => {
      if (this.syncing === sync) this.syncing = undefined;
    });
    this.syncing = sync;
    return sync;
  }

  private async syncWal(walFile: string): Promise<void> {
    const handle = this.openWal(walFile);
    if (handle === undefined) {
      // No WAL file: the last connection to close checkpointed it into the database (which SQLite synced) and
      // removed it; sync the database file all the same.
      await this.syncFile(this.db.name, undefined);
      return;
    }
    this.handleSyncs++;
    try {
      await this.syncFile(walFile, handle);
    } finally {
      this.handleSyncs--;
      if (this.closed && this.handleSyncs === 0) this.closeWal();
    }
  }

  /**
   * The kept WAL descriptor, opened now if there is none (or the one kept names a file no longer linked);
   * undefined when the WAL file does not exist. After close(), a descriptor opened here is closed again once its
   * sync is done.
   */
  private openWal(walFile: string): number | undefined {
    if (this.walHandle !== undefined) {
      if (fs.fstatSync(this.walHandle).nlink > 0) return this.walHandle;
      // Unlinked (the database left WAL mode, or every connection closed): a new WAL at the path is another file.
      // Closed now unless a sync still runs with it (then by that sync, once it is done).
      if (this.handleSyncs === 0) fs.closeSync(this.walHandle);
      else void this.closeWhenSynced(this.walHandle);
      this.walHandle = undefined;
    }
    try {
      // Opened for writing: Windows flushes only a handle that may write.
      this.walHandle = fs.openSync(walFile, 'r+');
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === 'ENOENT') return undefined;
      throw err;
    }
    return this.walHandle;
  }

  /** Closes a descriptor dropped while its sync runs, once that sync is done. */
  private async closeWhenSynced(fd: number): Promise<void> {
    await this.syncing?.catch(() => undefined);
    fs.closeSync(fd);
  }

  private closeWal(): void {
    if (this.walHandle === undefined) return;
    const fd = this.walHandle;
    this.walHandle = undefined;
    fs.closeSync(fd);
  }

  /**
   * Releases the WAL descriptor appendManyDurable keeps (once a sync that uses it is done). Call when the log's
   * database is closed (after {@link seal}); a later appendManyDurable opens the WAL again.
   */
  close(): void {
    this.closed = true;
    if (this.handleSyncs === 0) this.closeWal();
  }

  /** An entry's fields checked against the limits, and its details as the canonical text that is stored and hashed. */
  private check(entry: AuditEntry): CheckedEntry {
    const actor = checkText('actor', entry.actor);
    const action = checkText('action', entry.action);
    if (!ACTION.test(action)) {
      throw new AuditLogError(AuditLogErrorCode.invalidEntry, 'action must be lowercase letters, digits and _ . : -');
    }
    const subject = checkText('subject', entry.subject, true);
    const idem = entry.idempotencyKey === undefined ? null : checkText('idempotencyKey', entry.idempotencyKey);
    const rawDetails = entry.details ?? {};
    if (typeof rawDetails !== 'object' || rawDetails === null || Array.isArray(rawDetails)) {
      throw new AuditLogError(AuditLogErrorCode.invalidEntry, 'details must be a JSON object');
    }
    // Store exactly the canonical text and hash the value parsed back from it, so the stored bytes, the hashed
    // bytes and what any later reader parses are one and the same (no undefined members or -0 surviving in
    // memory only).
    const detailsText = canonicalize(rawDetails);
    if (Buffer.byteLength(detailsText, 'utf8') > AUDIT_LIMITS.details) {
      throw new AuditLogError(AuditLogErrorCode.invalidEntry, `details exceed ${AUDIT_LIMITS.details} bytes of canonical JSON`);
    }
    const details = JSON.parse(detailsText) as Record<string, unknown>;
    return { actor, action, subject, details, detailsText, idem };
  }

  /** The rule this log signs checkpoints by (what a verifier holds its chain to). */
  get checkpointPolicy(): CheckpointPolicy {
    return { every: this.checkpointEvery, intervalMs: this.checkpointIntervalMs };
  }

  /**
   * This tenant's chain starts anew (its database was just created): the next head stored replaces any head a
   * former tenant of the same name left.
   */
  startNewChain(): void {
    this.replaceHead = true;
  }

  /**
   * On a clean close: if rows were appended through this log since its last checkpoint, signs the head and
   * stores it outside the database, so the stored head is the whole chain. Does nothing without a signer, or
   * inside a transaction.
   */
  seal(): void {
    if (this.signer === undefined || this.db.inTransaction || !this.db.open) return;
    // Rows appendManyDurable committed may still wait for their sync: the head copied out must not be ahead of them.
    if (this.unsynced && this.walFile !== undefined) {
      const handle = this.openWal(this.walFile);
      if (handle !== undefined) fs.fdatasyncSync(handle);
      else syncNow(this.db.name);
      if (this.closed && this.handleSyncs === 0) this.closeWal();
      this.unsynced = false;
    }
    if (this.unsealed) this.checkpoint();
    else this.publishHead();
  }

  /**
   * Copies the newest checkpoint written by this log to the head store, once its transaction has committed and
   * only if the row it signs is still the stored one (an enclosing transaction that rolled back took it away).
   * Crash rule: the copy is made after the commit, so after a kill the head is at or behind the database, never
   * ahead; a head behind by up to one checkpoint still verifies.
   */
  private publishHead(cp = this.pendingHead): void {
    if (cp === undefined || this.heads === undefined || this.db.inTransaction) return;
    if (this.selectBySeq.get(cp.seq)?.hash !== cp.hash) {
      if (this.pendingHead === cp) this.pendingHead = undefined;
      return;
    }
    try {
      this.heads.write(cp, this.replaceHead);
      if (this.pendingHead === cp) this.pendingHead = undefined;
      this.replaceHead = false;
    } catch (err) {
      this.onHeadError(err);
    }
  }

  /**
   * Signs the current head now unless the newest checkpoint already covers it (then returns that one). Returns
   * null for an empty log. Exports call this so every exported copy carries a checkpoint of its own head.
   */
  checkpoint(): SignedCheckpoint | null {
    if (this.signer === undefined) throw new AuditLogError(AuditLogErrorCode.noSigner, 'this AuditLog has no checkpoint signer');
    const cp = this.checkpointTx.immediate();
    if (cp !== null && (this.pendingHead === undefined || this.pendingHead.seq <= cp.seq)) this.pendingHead = cp;
    if (cp !== null) this.unsealed = false;
    this.publishHead();
    return cp;
  }

  /**
   * Signs the head as it was at `seq` (an export that ends before the current head carries a signature for its
   * own last row). Returns the existing checkpoint at `seq` if there is one. Only sign a seq the caller has just
   * verified: the signature vouches for the stored hash at `seq`.
   */
  checkpointAt(seq: number): SignedCheckpoint {
    if (this.signer === undefined) throw new AuditLogError(AuditLogErrorCode.noSigner, 'this AuditLog has no checkpoint signer');
    return this.checkpointAtTx.immediate(seq);
  }

  /**
   * The checkpoints an export of rows since..until carries: those in that range written no later than the first
   * checkpoint at `until`. Checkpoints signed afterwards (a later export that ends inside the range) are left
   * out, so exporting the same range again gives the same bytes.
   */
  checkpointsForExport(sinceSeq: number, untilSeq: number): SignedCheckpoint[] {
    const anchor = this.db.prepare<[number], { id: number }>('SELECT id FROM audit_checkpoint WHERE seq = ? ORDER BY id LIMIT 1').get(untilSeq);
    if (anchor === undefined) return [];
    return this.db
      .prepare<[number, number, number], StoredCheckpoint>(
        'SELECT v, tenant, seq, hash, ts, signer_public_key, signature FROM audit_checkpoint WHERE seq >= ? AND seq <= ? AND id <= ? ORDER BY seq, id',
      )
      .all(sinceSeq, untilSeq, anchor.id)
      .map(toCheckpoint);
  }

  /** True when this log can sign checkpoints. */
  get canSign(): boolean {
    return this.signer !== undefined;
  }

  /** The stored row at `seq`, if any. */
  rowAt(seq: number): AuditRow | undefined {
    const r = this.selectBySeq.get(seq);
    return r === undefined ? undefined : toRow(r);
  }

  /** Rows in seq order, read lazily. The connection is busy until the iterator finishes or is returned. */
  *rows(filter: AuditRowFilter = {}): IterableIterator<AuditRow> {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (filter.sinceSeq !== undefined) {
      where.push('seq >= ?');
      params.push(filter.sinceSeq);
    }
    if (filter.untilSeq !== undefined) {
      where.push('seq <= ?');
      params.push(filter.untilSeq);
    }
    if (filter.action !== undefined) {
      where.push('action = ?');
      params.push(filter.action);
    }
    if (filter.workflowId !== undefined) {
      where.push("json_extract(details, '$.workflowId') = ?");
      params.push(filter.workflowId);
    }
    const sql = `SELECT ${ROW_COLUMNS} FROM audit${where.length > 0 ? ' WHERE ' + where.join(' AND ') : ''} ORDER BY seq`;
    const prefix = filter.subjectPrefix;
    // The prefix is matched here rather than with LIKE, which folds ASCII case and treats % and _ as wildcards.
    for (const r of this.db.prepare<Array<string | number>, StoredRow>(sql).iterate(...params)) {
      if (prefix === undefined || r.subject.startsWith(prefix)) yield toRow(r);
    }
  }

  /** All stored checkpoints in seq order. */
  checkpoints(): SignedCheckpoint[] {
    return this.db
      .prepare<[], StoredCheckpoint>('SELECT v, tenant, seq, hash, ts, signer_public_key, signature FROM audit_checkpoint ORDER BY seq, id')
      .all()
      .map(toCheckpoint);
  }

  /** The newest row's seq and hash; seq 0 and the genesis hash for an empty log. */
  head(): { seq: number; hash: string } {
    return this.headInTx();
  }

  /**
   * Verifies the stored chain and checkpoints (see `validateStoredAuditChain`), hashing the details text exactly
   * as stored. `trustedPublicKey` defaults to the signer's public key. A log that holds checkpoints cannot be verified without a trusted key.
   */
  verify(trustedPublicKey?: Buffer, outside: { signedHead?: SignedCheckpoint; checkpointPolicy?: CheckpointPolicy } = {}): AuditChainResult {
    const key = trustedPublicKey ?? this.signer?.publicKey;
    const checkpoints = this.checkpoints();
    if ((checkpoints.length > 0 || outside.signedHead !== undefined || outside.checkpointPolicy !== undefined) && key === undefined) {
      throw new AuditLogError(AuditLogErrorCode.trustedKeyMissing, 'the log holds checkpoints: pass the desktop public key to verify them');
    }
    return validateStoredAuditChain(this.storedRows(), {
      checkpoints,
      tenant: this.tenant,
      ...(key !== undefined ? { trustedPublicKey: key } : {}),
      ...(outside.signedHead !== undefined ? { signedHead: outside.signedHead } : {}),
      ...(outside.checkpointPolicy !== undefined ? { checkpointPolicy: outside.checkpointPolicy } : {}),
    });
  }

  // The rows as StoredAuditRow, without an object per row: each row's columns are copied into one object that is
  // handed out again for the next row (validateStoredAuditChain reads a row before it asks for the next, and
  // keeps none). No JSON.parse of details: the stored text itself is what gets hashed.
  private storedRows(): Iterable<StoredAuditRow> {
    const statement = this.selectStored;
    return {
      [Symbol.iterator](): Iterator<StoredAuditRow> {
        const tuples = statement.iterate();
        const row: StoredAuditRow = { seq: 0, ts: '', tenant: '', actor: '', action: '', subject: '', detailsText: '', prevHash: '', hash: '' };
        const next: IteratorResult<StoredAuditRow> = { done: false, value: row };
        return {
          next(): IteratorResult<StoredAuditRow> {
            const step = tuples.next();
            if (step.done === true) return step as IteratorResult<StoredAuditRow>;
            const t = step.value;
            row.seq = t[0];
            row.ts = t[1];
            row.tenant = t[2];
            row.actor = t[3];
            row.action = t[4];
            row.subject = t[5];
            row.detailsText = t[6];
            row.prevHash = t[7];
            row.hash = t[8];
            return next;
          },
          // Called when verification stops early: ends the SQLite statement, which is otherwise left busy.
          return(): IteratorResult<StoredAuditRow> {
            tuples.return?.();
            return { done: true, value: undefined };
          },
        };
      },
    };
  }

  private headInTx(): { seq: number; hash: string } {
    return this.selectHead.get() ?? { seq: 0, hash: GENESIS_HASH };
  }

  private checkpointDue(seq: number, now: Date): boolean {
    const last = this.selectLastCheckpoint.get();
    if (last === undefined) return true;
    if (seq - last.seq >= this.checkpointEvery) return true;
    const lastMs = Date.parse(last.ts);
    return !(now.getTime() - lastMs < this.checkpointIntervalMs);
  }

  private writeCheckpoint(seq: number, hash: string, now: Date): SignedCheckpoint {
    const cp = signCheckpoint({ tenant: this.tenant, seq, hash, ts: now.toISOString() }, this.signer!);
    this.insertCheckpoint.run(cp.v, cp.tenant, cp.seq, cp.hash, cp.ts, cp.signerPublicKey, cp.signature);
    return cp;
  }

  /** A checkpoint of the head, written by an append or checkpoint(): the next head to store. */
  private writeHeadCheckpoint(seq: number, hash: string, now: Date): SignedCheckpoint {
    const cp = this.writeCheckpoint(seq, hash, now);
    this.pendingHead = cp;
    this.unsealed = false;
    return cp;
  }
}
