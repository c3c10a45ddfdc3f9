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
import { AuditLog } from './audit-log';
import { ErrorType, OrchError } from '../workflows/errors';
import { ensurePrivateDir } from './paths';

export const TENANT_NAME_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;

export type TenantDb = Database.Database;

export interface RegisteredDag {
  name: string;
  version: string;
  hash: string;
  registeredAt: string;
  source: unknown;
  sourceText: string;
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
  registered_at TEXT NOT NULL
);
`;

export interface TenantStoreOptions {
  /** Signs audit checkpoints (the desktop's Ed25519 key). Without it rows are chained but not checkpointed. */
  signer?: CheckpointSigner;
}

/** The tenants' databases. Also the audit sink the worker's activities write through. */
export class TenantStore implements AuditSink {
  readonly dir: string;
  private readonly open = new Map<string, TenantDb>();
  private readonly audits = new Map<string, AuditLog>();

  constructor(
    readonly home: string,
    private readonly options: TenantStoreOptions = {},
  ) {
    this.dir = path.join(home, 'tenants');
  }

  /** The tenant's hash-chained audit log (in the tenant's own database). */
  auditLog(tenant: string): AuditLog {
    let log = this.audits.get(tenant);
    if (!log) {
      log = new AuditLog(this.get(tenant), tenant, { signer: this.options.signer });
      this.audits.set(tenant, log);
    }
    return log;
  }

  append(record: AuditRecord): { seq: number } {
    const row = this.auditLog(record.tenant).append({
      actor: record.actor,
      action: record.action,
      subject: record.subject,
      details: record.details,
      idempotencyKey: record.idempotencyKey,
    });
    return { seq: row.seq };
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
    // The DAG row and its audit row commit together: neither exists without the other.
    db.transaction(() => {
      db.prepare(
      `INSERT INTO dags (name, version, hash, source_json, source_text, registered_at) VALUES (@name, @version, @hash, @json, @text, @at)
       ON CONFLICT(name) DO UPDATE SET version = excluded.version, hash = excluded.hash, source_json = excluded.source_json,
       source_text = excluded.source_text, registered_at = excluded.registered_at`,
      ).run({ name: source.name, version: String(source.version), hash, json: canonicalize(source), text: sourceText, at: registeredAt });
      log.append({ actor, action: 'register_dag', subject: source.name, details: { version: String(source.version), hash } });
    })();
    return { name: source.name, version: String(source.version), hash, registeredAt, source, sourceText };
  }

  getDag(tenant: string, name: string): RegisteredDag {
    const row = this.get(tenant)
      .prepare('SELECT name, version, hash, source_json, source_text, registered_at FROM dags WHERE name = ?')
      .get(name) as { name: string; version: string; hash: string; source_json: string; source_text: string; registered_at: string } | undefined;
    if (!row) {
      throw new OrchError(ErrorType.unknownDag, `no DAG named "${name}" is registered in tenant "${tenant}": register it with \`orch dag register FILE --tenant ${tenant}\``);
    }
    const source: unknown = JSON.parse(row.source_json);
    if (dagHash(source) !== row.hash) {
      throw new OrchError('dag_hash_mismatch', `the stored DAG "${name}" in tenant "${tenant}" does not match its recorded hash: it was altered outside Orch`);
    }
    return { name: row.name, version: row.version, hash: row.hash, registeredAt: row.registered_at, source, sourceText: row.source_text };
  }

  listDags(tenant: string): Array<Omit<RegisteredDag, 'source' | 'sourceText'>> {
    return (this.get(tenant).prepare('SELECT name, version, hash, registered_at FROM dags ORDER BY name').all() as Array<{ name: string; version: string; hash: string; registered_at: string }>).map(
      (r) => ({ name: r.name, version: r.version, hash: r.hash, registeredAt: r.registered_at }),
    );
  }

  close(): void {
    for (const db of this.open.values()) db.close();
    this.open.clear();
    this.audits.clear();
  }
}
