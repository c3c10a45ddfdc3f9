/**
 * The desktop's private SQLite files (agents.sqlite, relay-state.sqlite): opened owner-only and durable, and the
 * shape every store over one of them shares (AgentRegistry, RelayState, RelayRegistry).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ensurePrivateDir } from '../infra/paths';

/** Open a SQLite file readable by the owner only, durable on every commit. */
export function openPrivateDb(file: string): Database.Database {
  ensurePrivateDir(path.dirname(file));
  if (!fs.existsSync(file)) fs.closeSync(fs.openSync(file, 'a', 0o600));
  const db = new Database(file);
  if (process.platform !== 'win32') {
    for (const f of [file, `${file}-wal`, `${file}-shm`]) if (fs.existsSync(f)) fs.chmodSync(f, 0o600);
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  return db;
}

/** A store over one private SQLite file; each subclass's static `open` makes its tables and constructs it. */
export abstract class PrivateDbStore {
  protected constructor(
    protected readonly db: Database.Database,
    readonly file: string,
  ) {}

  close(): void {
    this.db.close();
  }
}
