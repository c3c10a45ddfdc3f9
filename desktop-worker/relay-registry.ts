/**
 * The relays this desktop talks to, each named and pinned by the operator (`orch relay add NAME --url ... --pin
 * ...`): a table in `<ORCH_HOME>/agents.sqlite` (mode 0600), beside the agents, so "which relay reaches this
 * agent" and "no relay is removed while an agent uses it" are one transaction.
 *
 * The pin is the only thing trusted about a relay (protocol/relay-client.ts): a relay whose certificate's SPKI
 * hash differs is never logged in to, whatever its URL says.
 *
 * @example
 * const relays = RelayRegistry.open(orchHome());
 * relays.add({ name: 'eu-1', url: 'wss://relay.example:7443/v1/relay', pin: 'sha256/...' });
 * relays.get('eu-1')?.url;
 */
import path from 'node:path';
import { RELAY_PATH, pinToRelayId } from '../protocol/relay-handshake';
import { ErrorType, OrchError } from '../protocol/errors';
import { AGENTS_DB_FILE, AgentRegistry, DEFAULT_AGENT_RELAY, checkAgentName } from './agent-registry';
import { PrivateDbStore, openPrivateDb } from './private-db';

/** The name `orch up` gives the relay it runs on this machine. */
export const LOCAL_RELAY = DEFAULT_AGENT_RELAY;

/**
 * Error codes (OrchError `code`): `bad_input` (name, URL or pin not valid), `relay_exists` (the name is taken),
 * `unknown_relay`, `relay_in_use` (agents are enrolled through it; remove or move them first).
 */
export type RelayRegistryErrorCode = 'bad_input' | 'relay_exists' | 'unknown_relay' | 'relay_in_use';

export interface RelayRecord {
  name: string;
  /** wss://HOST:PORT/v1/relay */
  url: string;
  /** sha256/<base64 of the SHA-256 of the relay certificate's SPKI> */
  pin: string;
  addedAt: string;
}

const RELAYS_SCHEMA = `
CREATE TABLE IF NOT EXISTS relays (
  name TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  pin TEXT NOT NULL,
  added_at TEXT NOT NULL
);
`;

const MAX_URL_LENGTH = 2048;

function bad(message: string): OrchError {
  return new OrchError(ErrorType.badInput, message);
}

/** A relay URL as `orch relay start` prints it: wss://HOST:PORT/v1/relay (no credentials, query or fragment). */
export function checkRelayUrl(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_URL_LENGTH) throw bad(`--url must be a wss:// URL of at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad(`--url "${raw.slice(0, 80)}" is not a URL: use wss://HOST:PORT${RELAY_PATH}`);
  }
  if (url.protocol !== 'wss:') throw bad(`--url must start with wss:// (relays speak TLS only), got ${url.protocol}//`);
  if (url.username || url.password || url.search || url.hash) throw bad('--url must not carry credentials, a query or a fragment');
  if (url.pathname !== RELAY_PATH) throw bad(`--url must end with the relay path ${RELAY_PATH}, got "${url.pathname}"`);
  return url.toString();
}

/** 'sha256/' and the base64 of 32 bytes, as `orch relay start` prints it. */
export function checkRelayPin(raw: unknown): string {
  try {
    pinToRelayId(String(raw));
  } catch {
    throw bad(`--pin must be 'sha256/' followed by the base64 of 32 bytes (as \`orch relay start\` prints it), got ${JSON.stringify(String(raw).slice(0, 60))}`);
  }
  return String(raw);
}

interface RelayRow {
  name: string;
  url: string;
  pin: string;
  added_at: string;
}

const toRecord = (r: RelayRow): RelayRecord => ({ name: r.name, url: r.url, pin: r.pin, addedAt: r.added_at });

export class RelayRegistry extends PrivateDbStore {
  static open(home: string): RelayRegistry {
    // The agents table (and its relay column) must exist for the in-use check: opening the agent registry makes it.
    AgentRegistry.open(home).close();
    const file = path.join(home, AGENTS_DB_FILE);
    const db = openPrivateDb(file);
    db.exec(RELAYS_SCHEMA);
    return new RelayRegistry(db, file);
  }

  /** Validates everything before writing anything. */
  add(input: { name: string; url: string; pin: string }, now: Date = new Date()): RelayRecord {
    const row: RelayRow = { name: checkAgentName(input.name, 'relay'), url: checkRelayUrl(input.url), pin: checkRelayPin(input.pin), added_at: now.toISOString() };
    const insert = this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM relays WHERE name = ?').get(row.name)) {
        throw new OrchError('relay_exists', `a relay named "${row.name}" is already configured; remove it first with \`orch relay remove ${row.name}\``);
      }
      this.db.prepare('INSERT INTO relays (name, url, pin, added_at) VALUES (@name, @url, @pin, @added_at)').run(row);
    });
    insert.immediate();
    return toRecord(row);
  }

  /**
   * Adds the relay, or updates its URL and pin when they changed (the local relay of `orch up` on another port).
   * Returns what happened, so the caller audits only real changes.
   */
  upsert(input: { name: string; url: string; pin: string }, now: Date = new Date()): { relay: RelayRecord; change: 'added' | 'updated' | 'none' } {
    const name = checkAgentName(input.name, 'relay');
    const url = checkRelayUrl(input.url);
    const pin = checkRelayPin(input.pin);
    const step = this.db.transaction(() => {
      const existing = this.db.prepare('SELECT * FROM relays WHERE name = ?').get(name) as RelayRow | undefined;
      if (existing && existing.url === url && existing.pin === pin) return { relay: toRecord(existing), change: 'none' as const };
      const row: RelayRow = { name, url, pin, added_at: existing?.added_at ?? now.toISOString() };
      this.db
        .prepare('INSERT INTO relays (name, url, pin, added_at) VALUES (@name, @url, @pin, @added_at) ON CONFLICT (name) DO UPDATE SET url = excluded.url, pin = excluded.pin')
        .run(row);
      return { relay: toRecord(row), change: existing ? ('updated' as const) : ('added' as const) };
    });
    return step.immediate();
  }

  get(name: string): RelayRecord | undefined {
    const row = this.db.prepare('SELECT * FROM relays WHERE name = ?').get(name) as RelayRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  list(): RelayRecord[] {
    return (this.db.prepare('SELECT * FROM relays ORDER BY name').all() as RelayRow[]).map(toRecord);
  }

  /** Agents enrolled through each relay (agents from before named relays count for the local relay). */
  agentCounts(): Map<string, number> {
    const rows = this.db.prepare(`SELECT COALESCE(relay, ?) AS relay, COUNT(*) AS n FROM agents GROUP BY COALESCE(relay, ?)`).all(DEFAULT_AGENT_RELAY, DEFAULT_AGENT_RELAY) as Array<{
      relay: string;
      n: number;
    }>;
    return new Map(rows.map((r) => [r.relay, r.n]));
  }

  /** Throws `unknown_relay`, or `relay_in_use` while an agent is enrolled through it. */
  remove(name: string): void {
    checkAgentName(name, 'relay');
    const step = this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM relays WHERE name = ?').get(name)) {
        throw new OrchError('unknown_relay', `no relay named "${name}" is configured (see \`orch relay list\`)`);
      }
      const users = (this.db.prepare('SELECT name FROM agents WHERE COALESCE(relay, ?) = ? ORDER BY name').all(DEFAULT_AGENT_RELAY, name) as Array<{ name: string }>).map(
        (r) => r.name,
      );
      if (users.length) {
        const shown = users.slice(0, 5).join(', ') + (users.length > 5 ? `, and ${users.length - 5} more` : '');
        throw new OrchError('relay_in_use', `relay "${name}" still reaches agent${users.length === 1 ? '' : 's'} ${shown}: remove ${users.length === 1 ? 'it' : 'them'} first (\`orch agent remove NAME\`)`);
      }
      this.db.prepare('DELETE FROM relays WHERE name = ?').run(name);
    });
    step.immediate();
  }

}
