/**
 * Tenants: one SQLite file per tenant under <ORCH_HOME>/tenants, mode 0600. Registered DAGs live in the tenant's
 * database. Tenant names are checked before any path is built, and the path is checked again after, so no name
 * can reach outside that directory.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AuditSink } from '../activities';
import type { AuditRecord } from '../activities/types';
import type { CheckpointSigner } from '../protocol/audit-chain';
import { canonicalize } from '../protocol/canonical-json';
import { AuditLog, type AuditEntry } from './audit-log';
import type { AuditHeadStore } from './audit-head';
import { signDag, verifyDagSignature, type DagSigner } from './dag-signing';
import type { SecretStore } from './identity';
import { TenantSecrets, envSecrets, secretsKeyAccount } from './secrets';
import { ErrorType, OrchError } from '../protocol/errors';
import { ensurePrivateDir } from '../infra/paths';
import { processEnv } from '../infra/settings';

export const TENANT_NAME_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;

export type TenantDb = Database.Database;

export interface RegisteredDag {
  name: string;
  version: string;
  hash: string;
  registeredAt: string;
  source: unknown;
  sourceText: string;
  /** Hex Ed25519 signature over the DAG (desktop-worker/dag-signing.ts); null for a DAG stored unsigned. */
  signature: string | null;
  /** Hex public key that made `signature` (informational: verification uses the trusted key). */
  signerPublicKey: string | null;
}

/** Throws an OrchError(bad_input) that says what a valid tenant name is. */
export function checkTenantName(name: unknown): string {
  if (typeof name !== 'string' || !TENANT_NAME_PATTERN.test(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name) : String(name);
    throw new OrchError(
      ErrorType.badInput,
      `tenant name ${shown} is not valid: use 1 to 100 letters, digits, "_" or "-"`,
    );
  }
  return name;
}

/** SHA-256 (hex) of the DAG source's RFC 8785 canonical JSON: the identity a run is pinned to. */
export function dagHash(source: unknown): string {
  return createHash('sha256').update(canonicalize(source)).digest('hex');
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dags (
  name TEXT PRIMARY KEY,
  version TEXT NOT NULL,
  hash TEXT NOT NULL,
  source_json TEXT NOT NULL,
  source_text TEXT NOT NULL,
  registered_at TEXT NOT NULL,
  signature TEXT,
  signer_public_key TEXT
);
`;

/** Columns added after the first release of the dags table, for databases created before them. */
const DAG_COLUMNS_ADDED = ['signature', 'signer_public_key'] as const;

export interface TenantStoreOptions {
  /**
   * The desktop's Ed25519 key: signs audit checkpoints and registered DAGs. Without it rows are chained but not
   * checkpointed, and DAGs are stored unsigned (so a store with a trusted key refuses to run them).
   */
  signer?: CheckpointSigner & DagSigner;
  /**
   * The key DAG signatures and checkpoints must verify under (defaults to the signer's public key). With one
   * (or a signer), `getDag` refuses, with `dag_signature_invalid`, a DAG that is unsigned, altered, or signed
   * by another key. Without either, DAG signatures are not checked: only tests that are not about signing
   * build such a store; the CLI and the worker use `openTenantStore` (tenant-access.ts).
   */
  trustedPublicKey?: Buffer;
  /** Where tenants' secrets keys live (the OS keychain) and the identity's keychain account they hang under. */
  secretKeys?: { store: SecretStore; account: string };
  /** The worker's environment for the `API_KEY_*`... convention secrets (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Where each tenant's newest signed audit head is kept outside its database (the OS keychain, see
   * audit-head.ts): copied at every checkpoint and when the store closes after appending.
   */
  auditHeads?: AuditHeadStore;
}

function entryOf(record: AuditRecord): AuditEntry {
  return { actor: record.actor, action: record.action, subject: record.subject, details: record.details, idempotencyKey: record.idempotencyKey };
}

/** The tenants' databases. Also the audit sink the worker's activities write through. */
export class TenantStore implements AuditSink {
  readonly dir: string;
  private readonly open = new Map<string, TenantDb>();
  private readonly audits = new Map<string, AuditLog>();
  private readonly secretsByTenant = new Map<string, TenantSecrets>();
  /** Rows waiting for this turn's transaction of their tenant (appendSoon). */
  private readonly appendQueues = new Map<string, Array<{ record: AuditRecord; resolve: (r: { seq: number }) => void; reject: (err: unknown) => void }>>();

  constructor(
    readonly home: string,
    private readonly options: TenantStoreOptions = {},
  ) {
    this.dir = path.join(home, 'tenants');
  }

  /** The key DAG signatures and audit checkpoints are checked against, if any. */
  get trustedPublicKey(): Buffer | undefined {
    return this.options.trustedPublicKey ?? this.options.signer?.publicKey;
  }

  /** The tenant's secrets. Throws `secrets_unavailable` when this store was built without keychain access. */
  secrets(tenant: string): TenantSecrets {
    let s = this.secretsByTenant.get(tenant);
    if (!s) {
      const keys = this.options.secretKeys;
      if (!keys) throw new OrchError('secrets_unavailable', 'this Orch process was started without access to the OS keychain, so it cannot use secrets');
      s = new TenantSecrets(this.get(tenant), tenant, {
        keys: keys.store,
        account: secretsKeyAccount(keys.account, tenant),
        audit: this.auditLog(tenant),
        env: this.options.env,
      });
      this.secretsByTenant.set(tenant, s);
    }
    return s;
  }

  /**
   * The activities' SecretSource: every value a command of the tenant may use. Without keychain access only the
   * worker's convention environment variables are there, and a tenant that has stored secrets fails loudly.
   */
  async secretValues(tenant: string): Promise<ReadonlyMap<string, string>> {
    if (this.options.secretKeys) return this.secrets(tenant).values();
    const db = this.get(tenant);
    db.exec('CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL, key_id TEXT NOT NULL, updated_at TEXT NOT NULL)');
    const n = (db.prepare('SELECT count(*) AS n FROM secrets').get() as { n: number }).n;
    if (n > 0) throw new OrchError('secrets_unavailable', `tenant "${tenant}" has secrets but this worker was started without access to the OS keychain`);
    return envSecrets(this.options.env ?? processEnv(), tenant);
  }

  /** Where the signed audit heads are kept outside the tenant databases, if this store has them. */
  get auditHeads(): AuditHeadStore | undefined {
    return this.options.auditHeads;
  }

  /** The tenant's hash-chained audit log (in the tenant's own database). */
  auditLog(tenant: string): AuditLog {
    let log = this.audits.get(tenant);
    if (!log) {
      log = new AuditLog(this.get(tenant), tenant, { signer: this.options.signer, ...(this.options.auditHeads ? { heads: this.options.auditHeads } : {}) });
      this.audits.set(tenant, log);
    }
    return log;
  }

  append(record: AuditRecord): { seq: number } {
    const row = this.auditLog(record.tenant).append(entryOf(record));
    return { seq: row.seq };
  }

  /**
   * Appends one row with the others asked for in the same turn of the event loop: one transaction, one fsync, for
   * each tenant's burst (the rows of parallel branches, whose activities finish together), instead of one each while
   * the rest wait. The fsync runs off the event loop (AuditLog.appendManyDurable), and the turns that commit while it
   * runs share the next one. Resolves once the row is committed and on disk; rejects, for that row alone, as
   * {@link append} throws.
   */
  appendSoon(record: AuditRecord): Promise<{ seq: number }> {
    return new Promise((resolve, reject) => {
      let queue = this.appendQueues.get(record.tenant);
      if (queue === undefined) {
        queue = [];
        this.appendQueues.set(record.tenant, queue);
        setImmediate(() => this.flushAppends(record.tenant));
      }
      queue.push({ record, resolve, reject });
    });
  }

  private flushAppends(tenant: string): void {
    const queue = this.appendQueues.get(tenant);
    // Already committed (close() flushed it): nothing to do, and the tenant's database must not be opened again.
    if (queue === undefined) return;
    this.appendQueues.delete(tenant);
    let done: Promise<Array<{ seq: number } | Error>>;
    try {
      // Commits now (before close() goes on to seal and close the database); resolves once the rows are on disk.
      done = this.auditLog(tenant).appendManyDurable(queue.map((q) => entryOf(q.record)));
    } catch (err) {
      done = Promise.reject(err);
    }
    void done.then(
      (results) => results.forEach((r, i) => (r instanceof Error ? queue[i]!.reject(r) : queue[i]!.resolve({ seq: r.seq }))),
      (err: unknown) => {
        for (const q of queue) q.reject(err);
      },
    );
  }

  private fileOf(name: string): string {
    checkTenantName(name);
    const file = path.resolve(this.dir, `${name}.sqlite`);
    if (path.dirname(file) !== path.resolve(this.dir)) throw new OrchError(ErrorType.badInput, `tenant name "${name}" resolves outside the tenants directory`);
    return file;
  }

  exists(name: string): boolean {
    return fs.existsSync(this.fileOf(name));
  }

  list(): string[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs
      .readdirSync(this.dir)
      .filter((f) => f.endsWith('.sqlite'))
      .map((f) => f.slice(0, -'.sqlite'.length))
      .filter((n) => TENANT_NAME_PATTERN.test(n))
      .sort();
  }

  /** Creates the tenant's database (mode 0600) and its first audit row. Fails with tenant_exists if it is there. */
  create(name: string, actor = 'orch'): TenantDb {
    const file = this.fileOf(name);
    ensurePrivateDir(this.dir);
    let fd: number;
    try {
      // 'wx': fail if it exists; the mode is set at creation, so the file is never readable by others.
      fd = fs.openSync(file, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new OrchError('tenant_exists', `tenant "${name}" already exists`);
      throw err;
    }
    fs.closeSync(fd);
    const db = this.openFile(name, file);
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('created_at', new Date().toISOString());
    // A new chain: its first checkpoint replaces any signed head a deleted tenant of this name left behind.
    this.auditLog(name).startNewChain();
    this.auditLog(name).append({ actor, action: 'create_tenant', subject: name, details: {} });
    return db;
  }

  /** Opens an existing tenant; unknown_tenant when there is none. */
  get(name: string): TenantDb {
    const cached = this.open.get(name);
    if (cached) return cached;
    const file = this.fileOf(name);
    if (!fs.existsSync(file)) {
      throw new OrchError(ErrorType.unknownTenant, `tenant "${name}" does not exist in ${this.dir}: create it with \`orch tenant create ${name}\``);
    }
    return this.openFile(name, file);
  }

  private openFile(name: string, file: string): TenantDb {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    const have = new Set((db.prepare('PRAGMA table_info(dags)').all() as Array<{ name: string }>).map((c) => c.name));
    for (const column of DAG_COLUMNS_ADDED) if (!have.has(column)) db.exec(`ALTER TABLE dags ADD COLUMN ${column} TEXT`);
    for (const extra of [`${file}-wal`, `${file}-shm`]) {
      if (fs.existsSync(extra)) fs.chmodSync(extra, 0o600);
    }
    this.open.set(name, db);
    return db;
  }

  /** Stores a compiled-and-accepted DAG under its name (replacing an earlier version). */
  registerDag(
    tenant: string,
    source: { name: string; version: string | number; [field: string]: unknown },
    sourceText: string,
    actor = 'orch',
  ): RegisteredDag {
    const db = this.get(tenant);
    const hash = dagHash(source);
    const registeredAt = new Date().toISOString();
    const log = this.auditLog(tenant);
    const signer = this.options.signer;
    const version = String(source.version);
    let signed: ReturnType<typeof signDag> | undefined;
    // The DAG row and its audit row commit together: neither exists without the other. The signature covers the
    // audit row's sequence number, so only the newest registration verifies (dag-signing.ts).
    db.transaction(() => {
      const row = log.append({
        actor,
        action: 'register_dag',
        subject: source.name,
        details: { version, hash, signed: signer !== undefined, ...(signer ? { signerPublicKey: signer.publicKey.toString('hex') } : {}) },
      });
      signed = signer ? signDag(signer, { tenant, name: source.name, version, hash, registration: row.seq }) : undefined;
      db.prepare(
      `INSERT INTO dags (name, version, hash, source_json, source_text, registered_at, signature, signer_public_key)
       VALUES (@name, @version, @hash, @json, @text, @at, @sig, @signer)
       ON CONFLICT(name) DO UPDATE SET version = excluded.version, hash = excluded.hash, source_json = excluded.source_json,
       source_text = excluded.source_text, registered_at = excluded.registered_at, signature = excluded.signature,
       signer_public_key = excluded.signer_public_key`,
      ).run({
        name: source.name,
        version: String(source.version),
        hash,
        json: canonicalize(source),
        text: sourceText,
        at: registeredAt,
        sig: signed?.signature ?? null,
        signer: signed?.signerPublicKey ?? null,
      });
    })();
    return {
      name: source.name,
      version: String(source.version),
      hash,
      registeredAt,
      source,
      sourceText,
      signature: signed?.signature ?? null,
      signerPublicKey: signed?.signerPublicKey ?? null,
    };
  }

  /**
   * A registered DAG, checked before anything uses it: its stored hash must match its content, and, when this
   * store has a trusted key, its signature must verify under that key for the newest `register_dag` audit row of
   * this name (else `dag_signature_invalid`: altered, unsigned, foreign-signed, or an older version put back).
   */
  getDag(tenant: string, name: string): RegisteredDag {
    const row = this.get(tenant)
      .prepare('SELECT name, version, hash, source_json, source_text, registered_at, signature, signer_public_key FROM dags WHERE name = ?')
      .get(name) as
      | { name: string; version: string; hash: string; source_json: string; source_text: string; registered_at: string; signature: string | null; signer_public_key: string | null }
      | undefined;
    if (!row) {
      throw new OrchError(ErrorType.unknownDag, `no DAG named "${name}" is registered in tenant "${tenant}": register it with \`orch dag register FILE --tenant ${tenant}\``);
    }
    let source: unknown;
    try {
      source = JSON.parse(row.source_json);
    } catch {
      throw new OrchError('dag_hash_mismatch', `the stored DAG "${name}" in tenant "${tenant}" is not valid JSON: it was altered outside Orch`);
    }
    const hash = dagHash(source);
    if (hash !== row.hash) {
      throw new OrchError('dag_hash_mismatch', `the stored DAG "${name}" in tenant "${tenant}" does not match its recorded hash: it was altered outside Orch`);
    }
    const trusted = this.trustedPublicKey;
    // The signature is checked over the hash recomputed from the content, so editing both content and hash
    // (as anyone with the file can) still fails here.
    if (trusted) {
      const registration = this.get(tenant)
        .prepare("SELECT seq FROM audit WHERE action = 'register_dag' AND subject = ? ORDER BY seq DESC LIMIT 1")
        .pluck()
        .get(name) as number | undefined;
      verifyDagSignature(trusted, { tenant, name: row.name, version: row.version, hash, registration }, { signature: row.signature, signerPublicKey: row.signer_public_key });
    }
    return {
      name: row.name,
      version: row.version,
      hash: row.hash,
      registeredAt: row.registered_at,
      source,
      sourceText: row.source_text,
      signature: row.signature,
      signerPublicKey: row.signer_public_key,
    };
  }

  /** The tenant's DAGs; `signed` says whether a signature is stored (not whether it verifies: getDag checks). */
  listDags(tenant: string): Array<Pick<RegisteredDag, 'name' | 'version' | 'hash' | 'registeredAt'> & { signed: boolean }> {
    const rows = this.get(tenant).prepare('SELECT name, version, hash, registered_at, signature FROM dags ORDER BY name').all() as Array<{
      name: string;
      version: string;
      hash: string;
      registered_at: string;
      signature: string | null;
    }>;
    return rows.map((r) => ({ name: r.name, version: r.version, hash: r.hash, registeredAt: r.registered_at, signed: r.signature !== null }));
  }

  /** Closes every database; audit logs that appended since their last checkpoint sign and store their head first. */
  close(): void {
    // Rows asked for in this turn are committed first (their setImmediate then finds nothing to do).
    for (const tenant of [...this.appendQueues.keys()]) this.flushAppends(tenant);
    for (const log of this.audits.values()) {
      try {
        log.seal();
      } catch (err) {
        process.stderr.write(`orch: warning: could not sign the audit head of tenant "${log.tenant}" on close: ${err instanceof Error ? err.message : String(err)}\n`);
      }
      log.close();
    }
    for (const db of this.open.values()) db.close();
    this.open.clear();
    this.audits.clear();
    this.secretsByTenant.clear();
  }
}
