/**
 * Keys that have logged in to this relay at least once. The relay queues only for these: an envelope to a key
 * that never logged in is refused with `unknown_recipient` instead of being held for a recipient that may never
 * exist. Persisted in the data directory (mode 0600) so a relay restart does not turn every offline agent into an
 * unknown one. Bounded: the least recently seen keys are forgotten first.
 */
import fs from 'node:fs';
import path from 'node:path';

export const SEEN_KEYS_FILE = 'seen-keys.json';
export const DEFAULT_MAX_SEEN_KEYS = 100_000;

export class SeenKeys {
  /** key hex → last login (ms); Map order is least recently seen first. */
  private readonly keys = new Map<string, number>();
  private readonly file: string;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    dataDir: string,
    private readonly maxKeys = DEFAULT_MAX_SEEN_KEYS,
  ) {
    this.file = path.join(dataDir, SEEN_KEYS_FILE);
    try {
      const parsed: unknown = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        const entries = Object.entries(parsed as Record<string, unknown>)
          .filter((e): e is [string, number] => /^[0-9a-f]{64}$/.test(e[0]) && typeof e[1] === 'number')
          .sort((a, b) => a[1] - b[1]);
        for (const [k, t] of entries.slice(-maxKeys)) this.keys.set(k, t);
      }
    } catch {
      // No file yet, or unreadable: start empty. Worst case an offline recipient gets unknown_recipient until it
      // logs in again; nothing is accepted that would not be otherwise.
    }
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Record a login. New keys are written out soon after; repeat logins only move the key in memory. */
  touch(key: string, now: number): void {
    const known = this.keys.delete(key);
    this.keys.set(key, now);
    if (this.keys.size > this.maxKeys) {
      const oldest = this.keys.keys().next().value;
      if (oldest !== undefined) this.keys.delete(oldest);
    }
    if (!known) this.scheduleWrite();
  }

  private scheduleWrite(): void {
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, 200);
    this.timer.unref();
  }

  flush(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.keys)), { mode: 0o600 });
      fs.renameSync(tmp, this.file);
    } catch {
      this.dirty = true; // try again with the next new key or at shutdown
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
  }

  get size(): number {
    return this.keys.size;
  }
}
