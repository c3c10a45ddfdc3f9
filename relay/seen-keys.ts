/**
 * Keys that have logged in to this relay at least once. The relay queues only for these (and for admitted keys):
 * an envelope to a key that never logged in is refused with `unknown_recipient` instead of being held for a
 * recipient that may never exist. Persisted in the data directory (mode 0600) so a relay restart does not turn
 * every offline agent into an unknown one.
 *
 * Bounded: the least recently seen keys are forgotten first, but never a pinned one. Admitted keys (admins and the
 * keys they allow) are pinned, so a flood of logins with fresh keys in open mode evicts only other fresh keys; the
 * pinned part is bounded by the allowlist's own limits.
 */
import fs from 'node:fs';
import path from 'node:path';

export const SEEN_KEYS_FILE = 'seen-keys.json';
export const DEFAULT_MAX_SEEN_KEYS = 100_000;

export class SeenKeys {
  /** Unpinned keys: key hex → last login (ms); Map order is least recently seen first. */
  private readonly lru = new Map<string, number>();
  /** Pinned keys: never evicted. */
  private readonly pinned = new Map<string, number>();
  private readonly file: string;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    dataDir: string,
    private readonly maxKeys = DEFAULT_MAX_SEEN_KEYS,
    private readonly isPinned: (key: string) => boolean = () => false,
  ) {
    this.file = path.join(dataDir, SEEN_KEYS_FILE);
    try {
      const parsed: unknown = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        const entries = Object.entries(parsed as Record<string, unknown>)
          .filter((e): e is [string, number] => /^[0-9a-f]{64}$/.test(e[0]) && typeof e[1] === 'number')
          .sort((a, b) => a[1] - b[1]);
        const unpinned: Array<[string, number]> = [];
        for (const e of entries) (isPinned(e[0]) ? this.pinned.set(e[0], e[1]) : unpinned.push(e));
        for (const [k, t] of unpinned.slice(-maxKeys)) this.lru.set(k, t);
      }
    } catch {
      // No file yet, or unreadable: start empty. Worst case an offline recipient gets unknown_recipient until it
      // logs in again; nothing is accepted that would not be otherwise.
    }
  }

  has(key: string): boolean {
    return this.lru.has(key) || this.pinned.has(key);
  }

  /** Record a login. New keys are written out soon after; repeat logins only move the key in memory. */
  touch(key: string, now: number): void {
    const known = this.lru.delete(key) || this.pinned.has(key);
    if (this.isPinned(key)) {
      this.pinned.set(key, now);
    } else {
      this.pinned.delete(key);
      this.lru.set(key, now);
      while (this.lru.size > this.maxKeys) {
        const oldest = this.lru.keys().next().value;
        if (oldest === undefined) break;
        this.lru.delete(oldest);
      }
    }
    if (!known) this.scheduleWrite();
  }

  /** The key became admitted: it is never evicted from now on. */
  pin(key: string): void {
    const t = this.lru.get(key);
    if (t === undefined) return;
    this.lru.delete(key);
    this.pinned.set(key, t);
  }

  /** The key is no longer admitted: it ages out like any other. */
  unpin(key: string, now: number): void {
    if (!this.pinned.delete(key)) return;
    this.pinned.delete(key);
    this.touch(key, now);
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
      fs.writeFileSync(tmp, JSON.stringify(Object.fromEntries([...this.pinned, ...this.lru])), { mode: 0o600 });
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
    return this.lru.size + this.pinned.size;
  }
}
