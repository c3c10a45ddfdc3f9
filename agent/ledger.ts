/**
 * The agent's durable record: every command it was asked to run (by commandId), the incoming replay window per
 * peer, the outgoing envelope counter per peer, and rejection counters. SQLite in WAL mode with
 * synchronous=FULL, so a write that returned survives a crash or power loss.
 *
 * The command life cycle, written BEFORE and AFTER running:
 *   (none) --claim--> received --markStarted--> started --markFinished--> finished
 *
 * What a duplicate commandId gets (the activity retried, or the relay replayed under a new envelope):
 *   finished  → the stored result; the command never runs again.
 *   started   → `indeterminate`: the agent died while the command ran. It may have done part or all of its
 *               work; only an operator can tell, so it is never run again.
 *   received  → it may run. `received` is written before the policy check and `started` strictly before the
 *               process is spawned (and synced to disk), so a row still `received` proves nothing was spawned.
 *
 * Rows are keyed by (peer, commandId): a command id is the engine's (workflow id / run id / node id), the same
 * for every attempt and never the attempt number.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { ReplayWindow } from '../protocol/replay-window';
import type { ResultMessage } from '../protocol/agent-messages';

export type CommandState = 'received' | 'started' | 'finished';

export type Claim =
  /** Nothing ran under this id: go ahead (the row is now `received`). */
  | { kind: 'run' }
  | { kind: 'finished'; result: ResultMessage }
  | { kind: 'indeterminate'; startedAt: number }
  /** The same id arrived with a different argv: refuse, never answer with another command's result. */
  | { kind: 'conflict' };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS commands (
  peer        TEXT NOT NULL,
  command_id  TEXT NOT NULL,
  argv_sha256 TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('received', 'started', 'finished')),
  received_at INTEGER NOT NULL,
  started_at  INTEGER,
  finished_at INTEGER,
  result_json TEXT,
  PRIMARY KEY (peer, command_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS peers (
  peer         TEXT PRIMARY KEY,
  window_json  TEXT,
  out_counter  TEXT NOT NULL DEFAULT '0'
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
`;

export function argvDigest(argv: readonly string[], cwd: string | undefined): string {
  return createHash('sha256').update(JSON.stringify([argv, cwd ?? null])).digest('hex');
}

export class Ledger {
  private constructor(private readonly db: Database.Database) {}

  /** Open (creating, mode 0600) the ledger file. */
  static open(file: string): Ledger {
    // Create it ourselves so it is 0600 from the first byte; SQLite gives -wal and -shm the same mode.
    fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600));
    fs.chmodSync(file, 0o600);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    return new Ledger(db);
  }

  close(): void {
    this.db.close();
  }

  /**
   * Record that `commandId` arrived and say what to do with it, in one transaction (so two deliveries of the
   * same id cannot both get `run`).
   */
  claim(peer: string, commandId: string, digest: string, now: number = Date.now()): Claim {
    return this.db.transaction((): Claim => {
      const row = this.db
        .prepare('SELECT argv_sha256, state, started_at, result_json FROM commands WHERE peer = ? AND command_id = ?')
        .get(peer, commandId) as { argv_sha256: string; state: CommandState; started_at: number | null; result_json: string | null } | undefined;
      if (!row) {
        this.db.prepare("INSERT INTO commands (peer, command_id, argv_sha256, state, received_at) VALUES (?, ?, ?, 'received', ?)").run(peer, commandId, digest, now);
        return { kind: 'run' };
      }
      if (row.argv_sha256 !== digest) return { kind: 'conflict' };
      if (row.state === 'finished') return { kind: 'finished', result: JSON.parse(row.result_json!) as ResultMessage };
      if (row.state === 'started') return { kind: 'indeterminate', startedAt: row.started_at ?? 0 };
      return { kind: 'run' };
    }).immediate();
  }

  /** Must return before the process is spawned. */
  markStarted(peer: string, commandId: string, now: number = Date.now()): void {
    const r = this.db.prepare("UPDATE commands SET state = 'started', started_at = ? WHERE peer = ? AND command_id = ? AND state = 'received'").run(now, peer, commandId);
    if (r.changes !== 1) throw new Error(`ledger: ${commandId} is not in state received`);
  }

  /** The final answer for `commandId` (a refusal is final too), returned to every later duplicate. */
  markFinished(peer: string, commandId: string, result: ResultMessage, now: number = Date.now()): void {
    const r = this.db
      .prepare("UPDATE commands SET state = 'finished', finished_at = ?, result_json = ? WHERE peer = ? AND command_id = ? AND state IN ('received', 'started')")
      .run(now, JSON.stringify(result), peer, commandId);
    if (r.changes !== 1) throw new Error(`ledger: ${commandId} cannot be finished`);
  }

  state(peer: string, commandId: string): CommandState | undefined {
    const row = this.db.prepare('SELECT state FROM commands WHERE peer = ? AND command_id = ?').get(peer, commandId) as { state: CommandState } | undefined;
    return row?.state;
  }

  /** Commands by state, for `orch-agent status`. */
  commandCounts(): Record<CommandState, number> {
    const out: Record<CommandState, number> = { received: 0, started: 0, finished: 0 };
    for (const row of this.db.prepare('SELECT state, COUNT(*) AS n FROM commands GROUP BY state').all() as Array<{ state: CommandState; n: number }>) {
      out[row.state] = row.n;
    }
    return out;
  }

  // ------------------------------------------------------------------------------ replay window, counter

  /** The incoming replay window for `peer` (a fresh one if none was stored). */
  loadWindow(peer: string): ReplayWindow {
    const row = this.db.prepare('SELECT window_json FROM peers WHERE peer = ?').get(peer) as { window_json: string | null } | undefined;
    return row?.window_json ? ReplayWindow.fromJSON(JSON.parse(row.window_json)) : new ReplayWindow();
  }

  /** Persist the window; callers do this after a successful open and before acting on the message. */
  saveWindow(peer: string, window: ReplayWindow): void {
    this.db
      .prepare('INSERT INTO peers (peer, window_json) VALUES (?, ?) ON CONFLICT (peer) DO UPDATE SET window_json = excluded.window_json')
      .run(peer, JSON.stringify(window.toJSON()));
  }

  /** The next outgoing counter for `peer` (1, 2, ...), persisted before it is returned, so none is ever reused. */
  nextOutgoingCounter(peer: string): bigint {
    return this.db.transaction((): bigint => {
      const row = this.db.prepare('SELECT out_counter FROM peers WHERE peer = ?').get(peer) as { out_counter: string } | undefined;
      const next = BigInt(row?.out_counter ?? '0') + 1n;
      this.db
        .prepare('INSERT INTO peers (peer, out_counter) VALUES (?, ?) ON CONFLICT (peer) DO UPDATE SET out_counter = excluded.out_counter')
        .run(peer, next.toString());
      return next;
    }).immediate();
  }

  // ------------------------------------------------------------------------------------------ counters

  bump(name: string, by = 1): void {
    this.db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value').run(name, by);
  }

  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const row of this.db.prepare('SELECT name, value FROM counters ORDER BY name').all() as Array<{ name: string; value: number }>) out[row.name] = row.value;
    return out;
  }
}
