/**
 * The agents this desktop talks to, with their pinned public keys: `<ORCH_HOME>/agents.sqlite` (mode 0600).
 * Enrollment pins each side's keys in the other; this is the desktop's half (`orch agent add`). An envelope is
 * accepted from an agent only when it verifies with the Ed25519 key pinned here.
 *
 * Also `<ORCH_HOME>/relay-state.sqlite`: per (our key, agent key), the outgoing envelope counter and the incoming
 * replay window, both written (synchronous=FULL) before an envelope is sent or a result is acted on, so a restart
 * can neither reuse a counter nor accept a replay.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { X25519_KEY_BYTES, CryptoError, randomBytes, x25519, zeroize } from '../protocol/primitives';
import { ReplayWindow, UINT64_MAX } from '../protocol/replay-window';
import { MAX_AGENT_NAME_LENGTH, isValidName } from '../workflows/dag/limits';
import { ErrorType, OrchError } from '../protocol/errors';
import { PrivateDbStore, openPrivateDb } from './private-db';

export const AGENTS_DB_FILE = 'agents.sqlite';
export const RELAY_STATE_DB_FILE = 'relay-state.sqlite';
export const AGENT_TIERS = ['read-only', 'standard', 'infrastructure'] as const;
export type AgentTier = (typeof AGENT_TIERS)[number];
/** Largest allowlist file `orch agent add --allow` accepts. */
export const MAX_ALLOWLIST_BYTES = 64 * 1024;

/**
 * Error codes (OrchError `code`): `bad_input` (a name, key, tier or allowlist that is not valid; the message says
 * which and what is valid), `agent_exists` (the name is taken), `agent_key_in_use` (that key is already pinned
 * under another name), `unknown_agent` (remove/get of a name that is not enrolled).
 */
export type AgentRegistryErrorCode = 'bad_input' | 'agent_exists' | 'agent_key_in_use' | 'unknown_agent';

export interface AgentRecord {
  name: string;
  /** Ed25519 public key, 32 bytes: the agent's identity on the relay and the `from` of its envelopes. */
  signPublicKey: Buffer;
  /** X25519 public key, 32 bytes: what commands are sealed to. */
  boxPublicKey: Buffer;
  tier: AgentTier;
  /** The allowlist file's text as given at enrollment (the agent enforces its own copy), or null. */
  allowlist: string | null;
  addedAt: string;
  /** Last time an authenticated envelope from this agent was accepted (ISO 8601), or null. */
  lastSeen: string | null;
  /** The named relay the agent is reached through (relay-registry.ts). */
  relay: string;
  /** Its last authenticated pong, or null if it never answered a ping. */
  pong: AgentPongRecord | null;
  /**
   * The tenants whose runs may use it (`orch agent invite --tenant`, `orch agent add --tenant`). Empty: an agent
   * enrolled before tenants, which every tenant may use (see {@link servesTenant}).
   */
  tenants: string[];
}

/** Whether an agent may run a command of `tenant`: one of its tenants, or any tenant for an agent with none. */
export function servesTenant(agent: Pick<AgentRecord, 'tenants'>, tenant: string): boolean {
  return agent.tenants.length === 0 || agent.tenants.includes(tenant);
}

export interface NewAgent {
  name: string;
  /** 64 hex digits. */
  signKeyHex: string;
  /** 64 hex digits. */
  boxKeyHex: string;
  tier: string;
  allowlist?: string | null;
  /** The named relay it is enrolled through; default {@link DEFAULT_AGENT_RELAY}. */
  relay?: string;
  /** The tenants it serves; none: every tenant (as agents enrolled before tenants). */
  tenants?: string[];
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

function bad(message: string): OrchError {
  return new OrchError(ErrorType.badInput, message);
}

function shown(value: unknown): string {
  if (typeof value !== 'string') return String(value);
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

/** Agent names are the DAG's `agent:` field: 1-50 letters, digits, "_" or "-". Relay names follow the same rule. */
export function checkAgentName(name: unknown, what: 'agent' | 'relay' = 'agent'): string {
  if (typeof name !== 'string' || !isValidName(name, MAX_AGENT_NAME_LENGTH)) {
    throw bad(`${what} name ${shown(name)} is not valid: use 1 to ${MAX_AGENT_NAME_LENGTH} letters, digits, "_" or "-"`);
  }
  return name;
}

export function checkTier(tier: unknown): AgentTier {
  if (typeof tier !== 'string' || !(AGENT_TIERS as readonly string[]).includes(tier)) {
    throw bad(`tier ${shown(tier)} is not valid: use one of ${AGENT_TIERS.join(', ')}`);
  }
  return tier as AgentTier;
}

/** A 32-byte public key from 64 hex digits (either case). `what` names the option in the message. */
export function parseKeyHex(what: string, hex: unknown): Buffer {
  if (typeof hex !== 'string' || !HEX64.test(hex)) {
    throw bad(`${what} must be 64 hex digits (a 32-byte public key, as \`orch-agent enroll\` prints it), got ${shown(hex)}`);
  }
  const key = Buffer.from(hex, 'hex');
  if (key.every((b) => b === 0)) throw bad(`${what} is all zeros, which is not a public key`);
  return key;
}

/**
 * An X25519 key we can seal to. Low-order keys are refused: a "shared secret" with one is known to everyone, so
 * sealing to it would be sealing to the relay.
 */
export function parseBoxKeyHex(what: string, hex: unknown): Buffer {
  const key = parseKeyHex(what, hex);
  const probe = randomBytes(X25519_KEY_BYTES);
  try {
    zeroize(x25519(probe, key));
  } catch (err) {
    if (err instanceof CryptoError && err.code === 'low_order_point') throw bad(`${what} is a low-order X25519 point, which nothing can be sealed to safely`);
    throw err;
  } finally {
    zeroize(probe);
  }
  return key;
}

/** Reads an allowlist file for `orch agent add --allow`: UTF-8 text up to MAX_ALLOWLIST_BYTES. */
export function readAllowlistFile(file: string): string {
  let bytes: Buffer;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw bad(`allowlist ${file} is not a file`);
    if (stat.size > MAX_ALLOWLIST_BYTES) throw bad(`allowlist ${file} is ${stat.size} bytes, the limit is ${MAX_ALLOWLIST_BYTES}`);
    bytes = fs.readFileSync(file);
  } catch (err) {
    if (err instanceof OrchError) throw err;
    throw bad(`cannot read allowlist ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (text.includes('\uFFFD') || text.includes('\u0000')) throw bad(`allowlist ${file} is not UTF-8 text`);
  return text;
}

const AGENTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS agents (
  name TEXT PRIMARY KEY,
  sign_key TEXT NOT NULL UNIQUE,
  box_key TEXT NOT NULL,
  tier TEXT NOT NULL,
  allowlist TEXT,
  added_at TEXT NOT NULL,
  last_seen TEXT
);
`;

/**
 * Columns added after the first release, added to an older agents.sqlite when it is opened. `relay` is the named
 * relay (relay-registry.ts) the agent was enrolled through; NULL in a file from before named relays, read as
 * {@link DEFAULT_AGENT_RELAY} (the only relay a worker could reach then). The pong_* columns are what the agent
 * said in its last authenticated pong.
 */
const AGENT_COLUMNS_ADDED: Array<[string, string]> = [
  ['relay', 'TEXT'],
  ['pong_at', 'TEXT'],
  ['pong_version', 'TEXT'],
  ['pong_tier', 'TEXT'],
  ['pong_commands_run', 'INTEGER'],
  ['pong_commands_refused', 'INTEGER'],
  ['tenants', 'TEXT'],
];

/** The relay of an agent enrolled before relays had names: the local relay of `orch up`. */
export const DEFAULT_AGENT_RELAY = 'local';

function addMissingColumns(db: Database.Database): void {
  const have = new Set((db.prepare('PRAGMA table_info(agents)').all() as Array<{ name: string }>).map((c) => c.name));
  for (const [column, type] of AGENT_COLUMNS_ADDED) if (!have.has(column)) db.exec(`ALTER TABLE agents ADD COLUMN ${column} ${type}`);
}

/**
 * Invites (`orch agent invite`, protocol/JOIN.md): only SHA-256 of the join secret and the relay permit's hash are
 * kept, never the secret; `used_at`/`used_by` make an invite single use. `join_refusals` counts refused join
 * requests by reason, for `orch agent invites`.
 */
const INVITES_SCHEMA = `
CREATE TABLE IF NOT EXISTS invites (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  tier TEXT NOT NULL,
  tenants TEXT NOT NULL,
  allowlist TEXT,
  relay TEXT NOT NULL,
  relay_pin TEXT NOT NULL,
  secret_hash TEXT NOT NULL UNIQUE,
  permit_hash TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  used_at TEXT,
  used_by TEXT,
  hostname TEXT
);
CREATE TABLE IF NOT EXISTS relay_denies (
  relay TEXT NOT NULL,
  sign_key TEXT NOT NULL,
  removed_at TEXT NOT NULL,
  PRIMARY KEY (relay, sign_key)
);
CREATE TABLE IF NOT EXISTS join_refusals (
  reason TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  last_at TEXT NOT NULL
);
`;

export interface NewInvite {
  name: string;
  tier: string;
  tenants: string[];
  allowlist: string | null;
  relay: string;
  /** The relay's pin when the invite was made (`sha256/...`), which the token carries and the proof covers. */
  relayPin: string;
  secretHash: Buffer;
  permitHash: Buffer;
  /** ms since the epoch */
  expiresAt: number;
}

/** An invite as stored: what NewInvite gave (its tier checked), with its id and what became of it. */
export interface InviteRecord extends Omit<NewInvite, 'tier'> {
  id: string;
  tier: AgentTier;
  createdAt: string;
  usedAt: string | null;
  /** The Ed25519 key (hex) that used it. */
  usedBy: string | null;
  /** The hostname the joining agent gave (not trusted; shown to the operator). */
  hostname: string | null;
}

interface InviteRow {
  id: string;
  name: string;
  tier: string;
  tenants: string;
  allowlist: string | null;
  relay: string;
  relay_pin: string;
  secret_hash: string;
  permit_hash: string;
  expires_at: number;
  created_at: string;
  used_at: string | null;
  used_by: string | null;
  hostname: string | null;
}

function toInvite(r: InviteRow): InviteRecord {
  return {
    id: r.id,
    name: r.name,
    tier: r.tier as AgentTier,
    tenants: JSON.parse(r.tenants) as string[],
    allowlist: r.allowlist,
    relay: r.relay,
    relayPin: r.relay_pin,
    secretHash: Buffer.from(r.secret_hash, 'hex'),
    permitHash: Buffer.from(r.permit_hash, 'hex'),
    expiresAt: r.expires_at,
    createdAt: r.created_at,
    usedAt: r.used_at,
    usedBy: r.used_by,
    hostname: r.hostname,
  };
}

/** What an agent reported about itself in its last authenticated pong. */
export interface AgentPongRecord {
  at: string;
  agentVersion: string;
  tier: string;
  /** Absent when the agent's pong does not carry its counters (older agents). */
  commandsRun?: number;
  commandsRefused?: number;
}

interface AgentRow {
  name: string;
  sign_key: string;
  box_key: string;
  tier: string;
  allowlist: string | null;
  added_at: string;
  last_seen: string | null;
  relay?: string | null;
  pong_at?: string | null;
  pong_version?: string | null;
  pong_tier?: string | null;
  pong_commands_run?: number | null;
  pong_commands_refused?: number | null;
  tenants?: string | null;
}

function pongOf(row: AgentRow): AgentPongRecord | null {
  if (!row.pong_at) return null;
  const pong: AgentPongRecord = { at: row.pong_at, agentVersion: row.pong_version ?? '', tier: row.pong_tier ?? '' };
  if (typeof row.pong_commands_run === 'number') pong.commandsRun = row.pong_commands_run;
  if (typeof row.pong_commands_refused === 'number') pong.commandsRefused = row.pong_commands_refused;
  return pong;
}

function toRecord(row: AgentRow): AgentRecord {
  return {
    name: row.name,
    signPublicKey: Buffer.from(row.sign_key, 'hex'),
    boxPublicKey: Buffer.from(row.box_key, 'hex'),
    tier: row.tier as AgentTier,
    allowlist: row.allowlist,
    addedAt: row.added_at,
    lastSeen: row.last_seen,
    relay: row.relay ?? DEFAULT_AGENT_RELAY,
    pong: pongOf(row),
    tenants: row.tenants ? (JSON.parse(row.tenants) as string[]) : [],
  };
}

/** Tenant names as the tenant store accepts them (tenant-store.ts): 1-100 letters, digits, "_" or "-". */
export function checkTenants(tenants: unknown): string[] {
  if (!Array.isArray(tenants)) throw bad('tenants must be a list of tenant names');
  const out: string[] = [];
  for (const t of tenants) {
    if (typeof t !== 'string' || !/^[A-Za-z0-9_-]{1,100}$/.test(t)) throw bad(`tenant ${shown(t)} is not valid: use 1 to 100 letters, digits, "_" or "-"`);
    if (!out.includes(t)) out.push(t);
  }
  if (out.length > 64) throw bad('an agent serves at most 64 tenants');
  return out;
}

/**
 * @example
 * const registry = AgentRegistry.open(orchHome());
 * registry.add({ name: 'web-1', signKeyHex, boxKeyHex, tier: 'standard' });
 * registry.get('web-1')?.boxPublicKey;
 */
export class AgentRegistry extends PrivateDbStore {
  static open(home: string): AgentRegistry {
    const file = path.join(home, AGENTS_DB_FILE);
    const db = openPrivateDb(file);
    db.exec(AGENTS_SCHEMA);
    addMissingColumns(db);
    db.exec(INVITES_SCHEMA);
    return new AgentRegistry(db, file);
  }

  /** Validates everything before writing anything. */
  add(input: NewAgent, now: Date = new Date()): AgentRecord {
    const name = checkAgentName(input.name);
    const sign = parseKeyHex('--key (the agent\'s Ed25519 public key)', input.signKeyHex);
    const box = parseBoxKeyHex('--box-key (the agent\'s X25519 public key)', input.boxKeyHex);
    if (sign.equals(box)) throw bad('--key and --box-key are the same; an agent has separate signing and key-agreement keys');
    const tier = checkTier(input.tier);
    const allowlist = input.allowlist ?? null;
    const relay = input.relay === undefined ? DEFAULT_AGENT_RELAY : checkAgentName(input.relay, 'relay');
    const tenants = checkTenants(input.tenants ?? []);
    if (allowlist !== null && Buffer.byteLength(allowlist) > MAX_ALLOWLIST_BYTES) throw bad(`allowlist is over ${MAX_ALLOWLIST_BYTES} bytes`);
    const row: AgentRow = {
      name,
      sign_key: sign.toString('hex'),
      box_key: box.toString('hex'),
      tier,
      allowlist,
      added_at: now.toISOString(),
      last_seen: null,
      relay,
      tenants: tenants.length ? JSON.stringify(tenants) : null,
    };
    const insert = this.db.transaction(() => this.insertRow(row));
    insert.immediate();
    return toRecord(row);
  }

  /** Inside a transaction: refuses a taken name or key, then inserts. */
  private insertRow(row: AgentRow): void {
    if (this.db.prepare('SELECT 1 FROM agents WHERE name = ?').get(row.name)) {
      throw new OrchError('agent_exists', `an agent named "${row.name}" is already enrolled; remove it first with \`orch agent remove ${row.name}\``);
    }
    const other = this.db.prepare('SELECT name FROM agents WHERE sign_key = ?').get(row.sign_key) as { name: string } | undefined;
    if (other) throw new OrchError('agent_key_in_use', `that key is already enrolled as agent "${other.name}"`);
    this.db
      .prepare(
        'INSERT INTO agents (name, sign_key, box_key, tier, allowlist, added_at, last_seen, relay, tenants) VALUES (@name, @sign_key, @box_key, @tier, @allowlist, @added_at, @last_seen, @relay, @tenants)',
      )
      .run({ ...row, tenants: row.tenants ?? null });
  }

  /** The agents a tenant's DAGs may use: its own, and those enrolled before tenants (which serve every tenant). */
  recordsOfTenant(tenant: string): AgentRecord[] {
    return this.list().filter((a) => servesTenant(a, tenant));
  }

  /** Names of the agents a tenant's DAGs may use (recordsOfTenant). */
  agentsOfTenant(tenant: string): string[] {
    return this.recordsOfTenant(tenant).map((a) => a.name);
  }

  /** Replaces an agent's tenants (`orch agent tenants NAME --tenant T ...`). Throws `unknown_agent`. */
  setTenants(name: string, tenants: string[]): AgentRecord {
    const list = checkTenants(tenants);
    if (!list.length) throw bad('give at least one --tenant');
    const r = this.db.prepare('UPDATE agents SET tenants = ? WHERE name = ?').run(JSON.stringify(list), checkAgentName(name));
    if (r.changes === 0) throw new OrchError('unknown_agent', `no agent named "${name}" is enrolled (see \`orch agent list\`)`);
    return this.get(name)!;
  }

  // ------------------------------------------------------------------------------------------------ invites

  /** Records an invite (only the hashes of its secret; protocol/JOIN.md). */
  addInvite(invite: NewInvite, now: Date = new Date()): InviteRecord {
    const name = checkAgentName(invite.name);
    const tier = checkTier(invite.tier);
    const relay = checkAgentName(invite.relay, 'relay');
    const tenants = checkTenants(invite.tenants);
    if (!tenants.length) throw bad('an invite needs at least one --tenant');
    if (invite.allowlist !== null && Buffer.byteLength(invite.allowlist) > MAX_ALLOWLIST_BYTES) throw bad(`allowlist is over ${MAX_ALLOWLIST_BYTES} bytes`);
    const row: InviteRow = {
      id: randomBytes(8).toString('hex'),
      name,
      tier,
      tenants: JSON.stringify(tenants),
      allowlist: invite.allowlist,
      relay,
      relay_pin: invite.relayPin,
      secret_hash: invite.secretHash.toString('hex'),
      permit_hash: invite.permitHash.toString('hex'),
      expires_at: invite.expiresAt,
      created_at: now.toISOString(),
      used_at: null,
      used_by: null,
      hostname: null,
    };
    const tx = this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM agents WHERE name = ?').get(name)) {
        throw new OrchError('agent_exists', `an agent named "${name}" is already enrolled; remove it first with \`orch agent remove ${name}\`, or invite under another name`);
      }
      const pending = this.db.prepare('SELECT id FROM invites WHERE name = ? AND used_at IS NULL AND expires_at > ?').get(name, now.getTime()) as { id: string } | undefined;
      if (pending) throw new OrchError('invite_exists', `an unused invite for "${name}" is pending (id ${pending.id}); wait for it to expire or invite under another name`);
      this.db
        .prepare(
          'INSERT INTO invites (id, name, tier, tenants, allowlist, relay, relay_pin, secret_hash, permit_hash, expires_at, created_at, used_at, used_by, hostname) VALUES (@id, @name, @tier, @tenants, @allowlist, @relay, @relay_pin, @secret_hash, @permit_hash, @expires_at, @created_at, @used_at, @used_by, @hostname)',
        )
        .run(row);
    });
    tx.immediate();
    return toInvite(row);
  }

  listInvites(): InviteRecord[] {
    return (this.db.prepare('SELECT * FROM invites ORDER BY created_at').all() as InviteRow[]).map(toInvite);
  }

  /** The invite whose secret hashes to `secretHash`, if any. */
  inviteBySecretHash(secretHash: Buffer): InviteRecord | undefined {
    const row = this.db.prepare('SELECT * FROM invites WHERE secret_hash = ?').get(secretHash.toString('hex')) as InviteRow | undefined;
    return row ? toInvite(row) : undefined;
  }

  /** Invites a worker registers permits for: unused and unexpired, through this relay. */
  pendingInvites(relay: string, now: number = Date.now()): InviteRecord[] {
    return (this.db.prepare('SELECT * FROM invites WHERE relay = ? AND used_at IS NULL AND expires_at > ?').all(relay, now) as InviteRow[]).map(toInvite);
  }

  /**
   * The join: in one transaction, checks the invite is still unused and unexpired and the name and key are free,
   * pins the agent and marks the invite used by its key. Throws OrchError with code `reused`, `expired`,
   * `name_taken` or `key_in_use` (JOIN.md's refusal reasons).
   */
  acceptJoin(inviteId: string, agent: { signKeyHex: string; boxKeyHex: string; hostname: string }, now: Date = new Date()): AgentRecord {
    const sign = parseKeyHex('signKey', agent.signKeyHex);
    const box = parseBoxKeyHex('boxKey', agent.boxKeyHex);
    const tx = this.db.transaction(() => {
      const inv = this.db.prepare('SELECT * FROM invites WHERE id = ?').get(inviteId) as InviteRow | undefined;
      if (!inv) throw new OrchError('unknown_invite', 'no such invite');
      if (inv.used_at !== null) throw new OrchError('reused', `this invite was already used (${inv.used_at}); ask the operator for a new one`);
      if (inv.expires_at < now.getTime()) throw new OrchError('expired', `this invite expired at ${new Date(inv.expires_at).toISOString()}; ask the operator for a new one`);
      if (this.db.prepare('SELECT 1 FROM agents WHERE sign_key = ?').get(sign.toString('hex'))) throw new OrchError('key_in_use', 'this key is already enrolled on the desktop');
      if (this.db.prepare('SELECT 1 FROM agents WHERE name = ?').get(inv.name)) throw new OrchError('name_taken', `an agent named "${inv.name}" was enrolled meanwhile; ask the operator for a new invite`);
      const row: AgentRow = {
        name: inv.name,
        sign_key: sign.toString('hex'),
        box_key: box.toString('hex'),
        tier: inv.tier,
        allowlist: inv.allowlist,
        added_at: now.toISOString(),
        last_seen: now.toISOString(),
        relay: inv.relay,
        tenants: inv.tenants,
      };
      this.insertRow(row);
      this.db.prepare('UPDATE invites SET used_at = ?, used_by = ?, hostname = ? WHERE id = ?').run(now.toISOString(), row.sign_key, agent.hostname.slice(0, 253), inviteId);
      return toRecord(row);
    });
    return tx.immediate();
  }

  /** Counts a refused join request by reason (JOIN.md "What is counted"). */
  recordJoinRefusal(reason: string, now: Date = new Date()): void {
    this.db
      .prepare('INSERT INTO join_refusals (reason, count, last_at) VALUES (?, 1, ?) ON CONFLICT (reason) DO UPDATE SET count = count + 1, last_at = excluded.last_at')
      .run(reason, now.toISOString());
  }

  joinRefusals(): Record<string, { count: number; lastAt: string }> {
    const out: Record<string, { count: number; lastAt: string }> = {};
    for (const r of this.db.prepare('SELECT reason, count, last_at FROM join_refusals ORDER BY reason').all() as Array<{ reason: string; count: number; last_at: string }>) {
      out[r.reason] = { count: r.count, lastAt: r.last_at };
    }
    return out;
  }

  get(name: string): AgentRecord | undefined {
    const row = this.db.prepare('SELECT * FROM agents WHERE name = ?').get(name) as AgentRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** The agent whose Ed25519 key is `signKeyHex` (lowercase hex, as in envelope headers). */
  getBySignKey(signKeyHex: string): AgentRecord | undefined {
    const row = this.db.prepare('SELECT * FROM agents WHERE sign_key = ?').get(signKeyHex) as AgentRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  list(): AgentRecord[] {
    return (this.db.prepare('SELECT * FROM agents ORDER BY name').all() as AgentRow[]).map(toRecord);
  }

  /** Throws `unknown_agent` when no agent has that name. */
  /**
   * Removes an agent, and records that its relay must deny its key: the worker sends the DENY when it is connected
   * to that relay, now or after its next start (see {@link AgentRegistry.pendingDenies}).
   */
  remove(name: string, now: Date = new Date()): void {
    checkAgentName(name);
    this.db.transaction(() => {
      const row = this.db.prepare('SELECT sign_key, relay FROM agents WHERE name = ?').get(name) as { sign_key: string; relay: string | null } | undefined;
      if (!row) throw new OrchError('unknown_agent', `no agent named "${name}" is enrolled (see \`orch agent list\`)`);
      this.db.prepare('DELETE FROM agents WHERE name = ?').run(name);
      this.db
        .prepare('INSERT INTO relay_denies (relay, sign_key, removed_at) VALUES (?, ?, ?) ON CONFLICT (relay, sign_key) DO UPDATE SET removed_at = excluded.removed_at')
        .run(row.relay ?? DEFAULT_AGENT_RELAY, row.sign_key.toLowerCase(), now.toISOString());
    })();
  }

  /** Keys of removed agents that this relay has not confirmed denying yet (none that is enrolled again meanwhile). */
  pendingDenies(relay: string): Buffer[] {
    const rows = this.db
      .prepare('SELECT sign_key FROM relay_denies WHERE relay = ? AND lower(sign_key) NOT IN (SELECT lower(sign_key) FROM agents)')
      .all(relay) as Array<{ sign_key: string }>;
    return rows.map((r) => Buffer.from(r.sign_key, 'hex'));
  }

  /** Relays with removals still to deny. */
  relaysWithPendingDenies(): string[] {
    const rows = this.db.prepare('SELECT DISTINCT relay FROM relay_denies WHERE lower(sign_key) NOT IN (SELECT lower(sign_key) FROM agents)').all() as Array<{ relay: string }>;
    return rows.map((r) => r.relay);
  }

  /** The relay confirmed denying these keys (hex): nothing more to send. */
  deniesDone(relay: string, keysHex: string[]): void {
    const del = this.db.prepare('DELETE FROM relay_denies WHERE relay = ? AND sign_key = ?');
    this.db.transaction(() => {
      for (const k of keysHex) del.run(relay, k.toLowerCase());
    })();
  }

  /** Agents reached through the named relay (NULL relays count as {@link DEFAULT_AGENT_RELAY}). */
  listByRelay(relay: string): AgentRecord[] {
    return this.list().filter((a) => a.relay === relay);
  }

  /** Moves an agent to another named relay (the local stack adopting its agent from before named relays). */
  setRelay(name: string, relay: string): void {
    this.db.prepare('UPDATE agents SET relay = ? WHERE name = ?').run(checkAgentName(relay, 'relay'), name);
  }

  /** Record what the agent said in an authenticated pong (and that it was heard from). */
  recordPong(signKeyHex: string, pong: { agentVersion: string; tier: string; commandsRun?: number; commandsRefused?: number }, when: Date = new Date()): void {
    this.db
      .prepare(
        'UPDATE agents SET last_seen = @at, pong_at = @at, pong_version = @version, pong_tier = @tier, pong_commands_run = @run, pong_commands_refused = @refused WHERE sign_key = @key',
      )
      .run({ at: when.toISOString(), version: pong.agentVersion, tier: pong.tier, run: pong.commandsRun ?? null, refused: pong.commandsRefused ?? null, key: signKeyHex });
  }

  /** Record that an authenticated envelope from this agent was just accepted. */
  touch(signKeyHex: string, when: Date = new Date()): void {
    this.db.prepare('UPDATE agents SET last_seen = ? WHERE sign_key = ?').run(when.toISOString(), signKeyHex);
  }

}

const STATE_SCHEMA = `
CREATE TABLE IF NOT EXISTS outgoing (
  local_key TEXT NOT NULL,
  peer_key TEXT NOT NULL,
  counter TEXT NOT NULL,
  PRIMARY KEY (local_key, peer_key)
);
CREATE TABLE IF NOT EXISTS incoming (
  local_key TEXT NOT NULL,
  peer_key TEXT NOT NULL,
  window TEXT NOT NULL,
  PRIMARY KEY (local_key, peer_key)
);
`;

export type RelayStateErrorCode = 'counter_exhausted';

/**
 * Counters and replay windows, keyed by (our Ed25519 key, the peer's Ed25519 key) as lowercase hex: a new
 * desktop identity starts fresh with every agent, as the agent does with it.
 */
export class RelayState extends PrivateDbStore {
  static open(home: string): RelayState {
    const file = path.join(home, RELAY_STATE_DB_FILE);
    const db = openPrivateDb(file);
    db.exec(STATE_SCHEMA);
    return new RelayState(db, file);
  }

  /**
   * The next outgoing counter for this pair, already committed to disk when it returns: a crash after this
   * can skip a counter but never reuse one. The first is 1.
   */
  nextCounter(localKeyHex: string, peerKeyHex: string): bigint {
    const step = this.db.transaction(() => {
      const row = this.db.prepare('SELECT counter FROM outgoing WHERE local_key = ? AND peer_key = ?').get(localKeyHex, peerKeyHex) as
        | { counter: string }
        | undefined;
      const next = (row ? BigInt(row.counter) : 0n) + 1n;
      if (next > UINT64_MAX) throw new OrchError('counter_exhausted', 'the envelope counter for this agent is exhausted; re-enroll the agent with new keys');
      this.db
        .prepare('INSERT INTO outgoing (local_key, peer_key, counter) VALUES (?, ?, ?) ON CONFLICT (local_key, peer_key) DO UPDATE SET counter = excluded.counter')
        .run(localKeyHex, peerKeyHex, next.toString(10));
      return next;
    });
    return step.immediate();
  }

  /** The last counter handed out for this pair (0n if none). */
  lastCounter(localKeyHex: string, peerKeyHex: string): bigint {
    const row = this.db.prepare('SELECT counter FROM outgoing WHERE local_key = ? AND peer_key = ?').get(localKeyHex, peerKeyHex) as { counter: string } | undefined;
    return row ? BigInt(row.counter) : 0n;
  }

  /**
   * Runs `decide` on the persisted replay window inside one write transaction. If it returns `accept: true`, the
   * (mutated) window is committed before this returns, so the caller acts on the message only after the window
   * that would refuse its replay is on disk. Another process sharing the file waits for the transaction.
   */
  withWindow<T>(localKeyHex: string, peerKeyHex: string, decide: (window: ReplayWindow) => { accept: boolean; value: T }): T {
    const tx = this.db.transaction(() => {
      const row = this.db.prepare('SELECT window FROM incoming WHERE local_key = ? AND peer_key = ?').get(localKeyHex, peerKeyHex) as { window: string } | undefined;
      const window = row ? ReplayWindow.fromJSON(JSON.parse(row.window)) : new ReplayWindow();
      const { accept, value } = decide(window);
      if (accept) {
        this.db
          .prepare('INSERT INTO incoming (local_key, peer_key, window) VALUES (?, ?, ?) ON CONFLICT (local_key, peer_key) DO UPDATE SET window = excluded.window')
          .run(localKeyHex, peerKeyHex, JSON.stringify(window.toJSON()));
      }
      return value;
    });
    return tx.immediate();
  }

}

/** The agents a tenant's DAGs may use, read from ORCH_HOME's registry (opened and closed here). */
export function tenantAgentRecords(home: string, tenant: string): AgentRecord[] {
  const registry = AgentRegistry.open(home);
  try {
    return registry.recordsOfTenant(tenant);
  } finally {
    registry.close();
  }
}
