/**
 * Tenant secrets: values a DAG's command argv refers to as `${secrets.NAME}`.
 *
 * Storage: each value is sealed with XChaCha20-Poly1305 (protocol/primitives.ts) under a 32-byte key of its
 * tenant and kept in the tenant's database (table `secrets`: name, nonce, ciphertext, key id, time). The key is
 * never in a file: it lives in the OS keychain (the same @napi-rs/keyring store as the desktop identity), service
 * as identity.json says (default `orch`), account `<identity account>/secrets/<tenant>`, where the identity
 * account is `home-<16 hex of SHA-256(ORCH_HOME)>` unless identity.json names another, so each ORCH_HOME and
 * tenant has its own key. The associated data binds each ciphertext to its tenant and name:
 *
 *   AAD = UTF-8("orch-secret-v1\n" || tenant || "\n" || name)
 *
 * so a row copied to another name or another tenant's database does not open. The key id stored with each row
 * (first 8 bytes of SHA-256("orch-secret-key-id\n" || key), hex) tells "the keychain holds another key now"
 * apart from tampering.
 *
 * Also resolvable, as the seed's SecretManager does: the worker's environment variables named `API_KEY_*`,
 * `SECRET_*`, `TOKEN_*` and `PASSWORD_*` (a tenant secret of the same name wins). They are masked like stored
 * secrets. With ORCH_ENV_SECRET_TENANTS set, they belong to the tenants it names: other tenants' runs neither resolve
 * nor see them.
 *
 * Values never enter the audit log: `set_secret` / `delete_secret` rows carry the name only.
 */
import { createHash } from 'node:crypto';
import { Env } from './config';
import { processEnv } from '../infra/settings';
import type { AuditLog } from './audit-log';
import type { SecretStore } from './identity';
import {
  AEAD_KEY_BYTES,
  XCHACHA20POLY1305_IETF_NONCE_BYTES,
  randomBytes,
  xchacha20Poly1305Open,
  xchacha20Poly1305Seal,
  zeroize,
} from '../protocol/primitives';
import type { TenantDb } from './tenant-store';
import { OrchError } from '../protocol/errors';

export const SECRET_NAME_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
/** Bytes of UTF-8: enough for a PEM key or a long token, small enough to stay out of argv limits' way. */
export const MAX_SECRET_BYTES = 64 * 1024;
/** The seed's SecretManager prefixes: environment variables of the worker with these are secrets too. */
export const ENV_SECRET_PREFIXES = ['API_KEY_', 'SECRET_', 'TOKEN_', 'PASSWORD_'] as const;

const AAD_DOMAIN = 'orch-secret-v1\n';

/**
 * Error codes (the `code` of the thrown OrchError):
 * - `bad_secret_name`, `bad_secret_value`: refused input;
 * - `secret_missing`: no such secret;
 * - `secrets_key_missing`: the tenant has secrets but the keychain has no key for them (keychain reset, or the
 *   ORCH_HOME comes from another machine or user): the values are lost, set them again;
 * - `secrets_key_mismatch`: the keychain holds another key than the one the values were sealed with;
 * - `secret_corrupt`: a sealed value does not open under the right key (edited in the database);
 * - `secrets_unavailable`: this store was opened without keychain access.
 */
export type SecretErrorCode =
  | 'bad_secret_name'
  | 'bad_secret_value'
  | 'secret_missing'
  | 'secrets_key_missing'
  | 'secrets_key_mismatch'
  | 'secret_corrupt'
  | 'secrets_unavailable';

export function checkSecretName(name: unknown): string {
  if (typeof name !== 'string' || !SECRET_NAME_PATTERN.test(name)) {
    throw new OrchError('bad_secret_name', 'a secret name is 1 to 100 letters, digits, "_" or "-" (the DAG writes ${secrets.NAME})');
  }
  return name;
}

/** True for the environment variable names the seed's SecretManager loads. */
export function isEnvSecretName(name: string): boolean {
  return SECRET_NAME_PATTERN.test(name) && ENV_SECRET_PREFIXES.some((p) => name.startsWith(p) && name.length > p.length);
}

/**
 * The worker's convention secrets from an environment, for a run of `tenant`: none when ORCH_ENV_SECRET_TENANTS
 * names tenants and `tenant` is not one of them (a tenant cannot read the environment secrets of another).
 */
export function envSecrets(env: NodeJS.ProcessEnv, tenant?: string): Map<string, string> {
  const out = new Map<string, string>();
  const owners = env[Env.envSecretTenants];
  if (owners !== undefined && owners.trim() !== '') {
    const list = owners.split(',').map((t) => t.trim()).filter(Boolean);
    if (tenant === undefined || !list.includes(tenant)) return out;
  }
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '' && isEnvSecretName(k)) out.set(k, v);
  return out;
}

/** The keychain account holding a tenant's secrets key. */
export function secretsKeyAccount(identityAccount: string, tenant: string): string {
  return `${identityAccount}/secrets/${tenant}`;
}

function keyId(key: Buffer): string {
  return createHash('sha256').update('orch-secret-key-id\n').update(key).digest('hex').slice(0, 16);
}

function aad(tenant: string, name: string): Buffer {
  return Buffer.from(`${AAD_DOMAIN}${tenant}\n${name}`, 'utf8');
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS secrets (
  name       TEXT PRIMARY KEY,
  nonce      BLOB NOT NULL,
  ciphertext BLOB NOT NULL,
  key_id     TEXT NOT NULL,
  updated_at TEXT NOT NULL
);`;

export interface TenantSecretsOptions {
  /** The OS keychain (identity.ts's OsKeychain) or, in tests that are not about the keychain, another store. */
  keys: SecretStore;
  /** Keychain account of this tenant's key: {@link secretsKeyAccount}. */
  account: string;
  /** Where set/delete are recorded. */
  audit: AuditLog;
  /** The worker's environment, for the convention secrets (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface SecretInfo {
  name: string;
  source: 'tenant' | 'environment';
  updatedAt?: string;
}

/**
 * One tenant's secrets.
 *
 * @example
 * const secrets = store.secrets('acme');
 * await secrets.set('DB_PASSWORD', Buffer.from('hunter2'), 'alice');
 * secrets.list(); // [{ name: 'DB_PASSWORD', source: 'tenant', updatedAt: '…' }]
 */
export class TenantSecrets {
  private key: Buffer | undefined;

  constructor(
    private readonly db: TenantDb,
    readonly tenant: string,
    private readonly options: TenantSecretsOptions,
  ) {
    db.exec(SCHEMA);
  }

  /** Names (never values) of the tenant's secrets, then the environment's convention secrets not shadowed. */
  list(): SecretInfo[] {
    const rows = this.db.prepare('SELECT name, updated_at FROM secrets ORDER BY name').all() as Array<{ name: string; updated_at: string }>;
    const out: SecretInfo[] = rows.map((r) => ({ name: r.name, source: 'tenant', updatedAt: r.updated_at }));
    const own = new Set(rows.map((r) => r.name));
    for (const name of [...envSecrets(this.options.env ?? processEnv(), this.tenant).keys()].sort()) if (!own.has(name)) out.push({ name, source: 'environment' });
    return out;
  }

  /**
   * Seals and stores a value (replacing an earlier one) and audits `set_secret` with the name only. The caller
   * zeroes `value` afterwards if it wants to; this copy is zeroed here.
   */
  async set(name: string, value: Buffer, actor: string): Promise<{ replaced: boolean }> {
    checkSecretName(name);
    const text = value.toString('utf8');
    if (value.length === 0 || value.length > MAX_SECRET_BYTES || !Buffer.from(text, 'utf8').equals(value) || text.includes('\0')) {
      throw new OrchError('bad_secret_value', `a secret value is 1 to ${MAX_SECRET_BYTES} bytes of UTF-8 text without NUL`);
    }
    const key = await this.loadKey(true);
    const nonce = randomBytes(XCHACHA20POLY1305_IETF_NONCE_BYTES);
    const ciphertext = xchacha20Poly1305Seal(key, nonce, value, aad(this.tenant, name));
    let replaced = false;
    this.db.transaction(() => {
      replaced = this.db.prepare('SELECT 1 FROM secrets WHERE name = ?').get(name) !== undefined;
      this.db
        .prepare(
          `INSERT INTO secrets (name, nonce, ciphertext, key_id, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, key_id = excluded.key_id, updated_at = excluded.updated_at`,
        )
        .run(name, nonce, ciphertext, keyId(key), new Date().toISOString());
      this.options.audit.append({ actor, action: 'set_secret', subject: name, details: { replaced } });
    }).immediate();
    return { replaced };
  }

  /** Deletes a stored secret and audits `delete_secret`; false (and no row) when there was none. */
  delete(name: string, actor: string): boolean {
    checkSecretName(name);
    let deleted = false;
    this.db.transaction(() => {
      deleted = this.db.prepare('DELETE FROM secrets WHERE name = ?').run(name).changes > 0;
      if (deleted) this.options.audit.append({ actor, action: 'delete_secret', subject: name, details: {} });
    }).immediate();
    return deleted;
  }

  /** Every value by name: the environment's convention secrets, overridden by the tenant's own. */
  async values(): Promise<Map<string, string>> {
    const out = envSecrets(this.options.env ?? processEnv(), this.tenant);
    const rows = this.db.prepare('SELECT name, nonce, ciphertext, key_id FROM secrets ORDER BY name').all() as Array<{
      name: string;
      nonce: Buffer;
      ciphertext: Buffer;
      key_id: string;
    }>;
    if (rows.length === 0) return out;
    const key = await this.loadKey(false);
    for (const r of rows) {
      if (r.key_id !== keyId(key)) {
        throw new OrchError(
          'secrets_key_mismatch',
          `secret "${r.name}" of tenant "${this.tenant}" was sealed with another key than the one in the OS keychain: set it again with \`orch secret set --tenant ${this.tenant} ${r.name}\``,
        );
      }
      const plain = xchacha20Poly1305Open(key, r.nonce, r.ciphertext, aad(this.tenant, r.name));
      if (plain === null) {
        throw new OrchError('secret_corrupt', `secret "${r.name}" of tenant "${this.tenant}" does not decrypt: it was altered in the database; set it again`);
      }
      out.set(r.name, plain.toString('utf8'));
      zeroize(plain);
    }
    return out;
  }

  /** One value, or undefined. */
  async get(name: string): Promise<string | undefined> {
    return (await this.values()).get(checkSecretName(name));
  }

  private async loadKey(create: boolean): Promise<Buffer> {
    if (this.key) return this.key;
    const stored = await this.options.keys.get(this.options.account);
    if (stored !== null) {
      if (stored.length !== AEAD_KEY_BYTES) {
        throw new OrchError('secrets_key_mismatch', `the keychain entry ${this.options.account} does not hold a 32-byte key`);
      }
      this.key = stored;
      return stored;
    }
    const count = (this.db.prepare('SELECT count(*) AS n FROM secrets').get() as { n: number }).n;
    if (!create || count > 0) {
      throw new OrchError(
        'secrets_key_missing',
        `tenant "${this.tenant}" has ${count} secret${count === 1 ? '' : 's'} but the OS keychain has no key for them (account ${this.options.account}): the keychain was reset or this ORCH_HOME comes from elsewhere, so they are lost: delete them with \`orch secret delete\` and set them again`,
      );
    }
    const fresh = randomBytes(AEAD_KEY_BYTES);
    await this.options.keys.set(this.options.account, fresh);
    // Read back what the keychain kept, so two first `set`s racing end up sealing with the same key.
    const kept = await this.options.keys.get(this.options.account);
    if (kept === null || kept.length !== AEAD_KEY_BYTES) throw new OrchError('secrets_key_missing', `the OS keychain did not keep the key for ${this.options.account}`);
    if (!kept.equals(fresh)) zeroize(fresh);
    this.key = kept;
    return kept;
  }
}
