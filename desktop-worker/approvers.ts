/**
 * Approvers of a tenant: people whose Ed25519 keys sign approval statements (protocol/APPROVAL.md). The list lives
 * in the tenant's database (table `approvers`: name, key, added_at) with a version (meta `approvers_version`) that
 * goes up by one on every change, so agents can refuse an `approvers` update older than the one they hold. Every
 * change is audited in the tenant's chain (`add_approver` / `remove_approver`, with the name and the key) in the
 * same transaction as the change itself.
 *
 * @example
 * const store = await openTenantStore(orchHome());
 * try { addApprover('acme', 'alice', 'ab12…', { store, actor: 'bob' }); } finally { store.close(); }
 */
import { orchHome } from '../infra/paths';
import { OrchError } from '../protocol/errors';
import { TenantStore, type TenantDb } from './tenant-store';

/** Approver names: what `orch approve --as NAME` and gates' `approvers:` lists use. */
export const APPROVER_NAME_PATTERN = /^[A-Za-z0-9_.@-]{1,100}$/;
/** An Ed25519 public key, 32 bytes as 64 lowercase hex digits. */
export const APPROVER_KEY_PATTERN = /^[0-9a-f]{64}$/;

export interface Approver {
  name: string;
  /** Ed25519 public key, 64 lowercase hex. */
  key: string;
  /** ISO 8601 time it was added. */
  addedAt: string;
}

export interface ApproverOptions {
  /** The tenant store to use (the CLI passes one from openTenantStore, so audit checkpoints are signed). */
  store?: TenantStore;
  /** ORCH_HOME when no store is given (default: orchHome()). */
  home?: string;
  /** Who made the change, for the audit row (default "orch"). */
  actor?: string;
}

/**
 * Error codes (the `code` of the thrown OrchError): `bad_approver_name`, `bad_approver_key`, `approver_exists`
 * (the name is taken), `approver_key_in_use` (another approver has this key), `unknown_approver` (remove of a
 * name that is not there); and the tenant store's own (`unknown_tenant`, `bad_input`).
 */
export type ApproverErrorCode = 'bad_approver_name' | 'bad_approver_key' | 'approver_exists' | 'approver_key_in_use' | 'unknown_approver';

export function checkApproverName(name: unknown): string {
  if (typeof name !== 'string' || !APPROVER_NAME_PATTERN.test(name)) {
    throw new OrchError('bad_approver_name', 'an approver name is 1 to 100 letters, digits, ".", "@", "_" or "-"');
  }
  return name;
}

/** Returns the key as 64 lowercase hex (upper-case hex is accepted and lowered). */
export function checkApproverKey(key: unknown): string {
  const lowered = typeof key === 'string' ? key.trim().toLowerCase() : '';
  if (!APPROVER_KEY_PATTERN.test(lowered)) {
    throw new OrchError('bad_approver_key', 'an approver key is an Ed25519 public key as 64 hex digits (`orch whoami --json` on the approver\'s machine prints it as sign.publicKey)');
  }
  return lowered;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS approvers (
  name TEXT PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  added_at TEXT NOT NULL
)`;

function withStore<T>(opts: ApproverOptions, fn: (store: TenantStore) => T): T {
  if (opts.store) return fn(opts.store);
  const store = new TenantStore(opts.home ?? orchHome());
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

function db(store: TenantStore, tenant: string): TenantDb {
  const d = store.get(tenant);
  d.exec(SCHEMA);
  return d;
}

/** Reads never create the table: the worker reads the lists before every command. */
function hasTable(store: TenantStore, tenant: string): TenantDb | undefined {
  const d = store.get(tenant);
  return d.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'approvers'").get() ? d : undefined;
}

function readVersion(d: TenantDb): number {
  const row = d.prepare("SELECT value FROM meta WHERE key = 'approvers_version'").get() as { value: string } | undefined;
  const n = row ? Number(row.value) : 0;
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

function bumpVersion(d: TenantDb): number {
  const next = readVersion(d) + 1;
  d.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('approvers_version', ?)").run(String(next));
  return next;
}

/** The tenant's approvers, by name. */
export function listApprovers(tenant: string, opts: ApproverOptions = {}): Approver[] {
  return withStore(opts, (store) => {
    const d = hasTable(store, tenant);
    if (!d) return [];
    return (d.prepare('SELECT name, key, added_at FROM approvers ORDER BY name').all() as Array<{ name: string; key: string; added_at: string }>).map((r) => ({
      name: r.name,
      key: r.key,
      addedAt: r.added_at,
    }));
  });
}

/** The tenant's approver keys and the version of that list (0 before any change), as agents are sent them. */
export function approverKeySet(tenant: string, opts: ApproverOptions = {}): { version: number; keys: string[] } {
  return withStore(opts, (store) => {
    const d = hasTable(store, tenant);
    if (!d) return { version: 0, keys: [] };
    const keys = (d.prepare('SELECT key FROM approvers ORDER BY key').all() as Array<{ key: string }>).map((r) => r.key);
    return { version: readVersion(d), keys };
  });
}

/** Adds an approver (audited as `add_approver`). Returns it with the list's new version. */
export function addApprover(tenant: string, name: string, key: string, opts: ApproverOptions = {}): Approver & { version: number } {
  checkApproverName(name);
  const hex = checkApproverKey(key);
  return withStore(opts, (store) => {
    const d = db(store, tenant);
    const log = store.auditLog(tenant);
    const addedAt = new Date().toISOString();
    let version = 0;
    d.transaction(() => {
      const byName = d.prepare('SELECT key FROM approvers WHERE name = ?').get(name) as { key: string } | undefined;
      if (byName) throw new OrchError('approver_exists', `tenant "${tenant}" already has an approver named "${name}": remove it first to change its key`);
      const byKey = d.prepare('SELECT name FROM approvers WHERE key = ?').get(hex) as { name: string } | undefined;
      if (byKey) throw new OrchError('approver_key_in_use', `that key is already approver "${byKey.name}" of tenant "${tenant}"`);
      d.prepare('INSERT INTO approvers (name, key, added_at) VALUES (?, ?, ?)').run(name, hex, addedAt);
      version = bumpVersion(d);
      log.append({ actor: opts.actor ?? 'orch', action: 'add_approver', subject: name, details: { key: hex, version } });
    })();
    return { name, key: hex, addedAt, version };
  });
}

/** Removes an approver (audited as `remove_approver`); `unknown_approver` if there is none of that name. */
export function removeApprover(tenant: string, name: string, opts: ApproverOptions = {}): Approver & { version: number } {
  checkApproverName(name);
  return withStore(opts, (store) => {
    const d = db(store, tenant);
    const log = store.auditLog(tenant);
    let removed: Approver | undefined;
    let version = 0;
    d.transaction(() => {
      const row = d.prepare('SELECT name, key, added_at FROM approvers WHERE name = ?').get(name) as { name: string; key: string; added_at: string } | undefined;
      if (!row) throw new OrchError('unknown_approver', `tenant "${tenant}" has no approver named "${name}" (orch approver list --tenant ${tenant})`);
      d.prepare('DELETE FROM approvers WHERE name = ?').run(name);
      version = bumpVersion(d);
      log.append({ actor: opts.actor ?? 'orch', action: 'remove_approver', subject: name, details: { key: row.key, version } });
      removed = { name: row.name, key: row.key, addedAt: row.added_at };
    })();
    return { ...removed!, version };
  });
}

/**
 * The approver lists of an ORCH_HOME as the worker's relay transport reads them (agent-transport.ts ApproverSource):
 * read afresh each time, so an `orch approver add` made in another process reaches the agents on the next command
 * or heartbeat.
 */
export function approverSource(home: string): { tenants(): string[]; keySet(tenant: string): { version: number; keys: string[] } } {
  return {
    tenants: () => withStore({ home }, (store) => store.list()),
    keySet: (tenant) => approverKeySet(tenant, { home }),
  };
}
