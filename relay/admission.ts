/**
 * Who may log in (protocol/RELAY.md "Admission"). The relay's operator names the admin keys (the desktops'
 * Ed25519 keys) at start; each admin, over its own authenticated connection, allows and denies the agent keys it
 * enrolls (ALLOW / DENY) and registers join permits (PERMIT). Allowed keys and permits are kept in the data
 * directory (mode 0600) so a restart keeps them.
 *
 * A key is admitted when it is an admin key, or when at least one *current* admin allows it: an agent trusted by
 * two desktops stays admitted until both deny it, and removing an admin key from the relay's configuration
 * withdraws everything that admin allowed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';

export const ADMIN_KEYS_FILE = 'admin-keys';
export const ALLOWED_KEYS_FILE = 'allowed-keys.json';
export const PERMITS_FILE = 'permits.json';
/** Keys one admin may have allowed at a time. */
export const DEFAULT_MAX_ALLOWED_PER_ADMIN = 10_000;
/** Unused, unexpired permits one admin may have outstanding. */
export const DEFAULT_MAX_PERMITS_PER_ADMIN = 100;
/** A permit may be valid for at most this long from when it is registered. */
export const MAX_PERMIT_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000;

/** How long an expired permit is remembered, so that using it is counted as `permit_expired` / `permit_reused`. */
const PERMIT_GRACE_MS = 60 * 60 * 1000;
const KEY_HEX = /^[0-9a-f]{64}$/;

export class AdmissionConfigError extends Error {
  override readonly name = 'AdmissionConfigError';
}

/**
 * The admin keys in `<dataDir>/admin-keys`: one 64-hex-digit Ed25519 public key per line, `#` starts a comment.
 * The file grants admin rights, so one that others can write is refused. No file: no keys.
 */
export function readAdminKeysFile(dataDir: string): string[] {
  const file = path.join(dataDir, ADMIN_KEYS_FILE);
  let text: string;
  try {
    const st = fs.statSync(file);
    if ((st.mode & 0o022) !== 0) {
      throw new AdmissionConfigError(`${file} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); it grants admin rights: chmod 600 ${file}`);
    }
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const keys: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim().toLowerCase();
    if (!line) return;
    if (!KEY_HEX.test(line)) throw new AdmissionConfigError(`${file} line ${i + 1}: expected an Ed25519 public key (64 hex digits), got "${line.slice(0, 80)}"`);
    keys.push(line);
  });
  return keys;
}

export type AllowResult = { ok: true; changed: number; admitted: string[] } | { ok: false; reason: 'allowlist_full' };
export type PermitResult = { ok: true } | { ok: false; reason: 'permit_invalid' | 'permits_full' };
export type PermitUse =
  | { ok: true; admin: string }
  | { ok: false; reason: 'permit_unknown' | 'permit_expired' | 'permit_reused' };

interface Permit {
  admin: string;
  expiresAt: number;
  /** When it was used (ms), or null. Used permits are kept until they expire, so a reuse is told from a guess. */
  usedAt: number | null;
}

function writePrivateJson(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // A damaged file must not silently admit nobody (or everybody): say so and stop.
    throw new AdmissionConfigError(`${file} cannot be read (${(err as Error).message}); fix or remove it (removing it forgets every allowed key / permit)`);
  }
}

export class Admission {
  readonly adminKeys: ReadonlySet<string>;
  /** key hex → the admins (hex) that allow it. */
  private readonly allowed = new Map<string, Set<string>>();
  /** permit hash hex → permit. */
  private readonly permits = new Map<string, Permit>();
  private readonly allowedFile: string;
  private readonly permitsFile: string;

  constructor(
    dataDir: string,
    adminKeys: Iterable<string>,
    private readonly limits: { maxAllowedPerAdmin: number; maxPermitsPerAdmin: number } = {
      maxAllowedPerAdmin: DEFAULT_MAX_ALLOWED_PER_ADMIN,
      maxPermitsPerAdmin: DEFAULT_MAX_PERMITS_PER_ADMIN,
    },
  ) {
    const admins = new Set<string>();
    for (const k of adminKeys) {
      const key = k.toLowerCase();
      if (!KEY_HEX.test(key)) throw new AdmissionConfigError(`admin key "${k.slice(0, 80)}" is not an Ed25519 public key (64 hex digits)`);
      admins.add(key);
    }
    this.adminKeys = admins;
    this.allowedFile = path.join(dataDir, ALLOWED_KEYS_FILE);
    this.permitsFile = path.join(dataDir, PERMITS_FILE);
    const allowed = readJson(this.allowedFile);
    if (allowed && typeof allowed === 'object' && !Array.isArray(allowed)) {
      for (const [key, by] of Object.entries((allowed as { keys?: Record<string, unknown> }).keys ?? {})) {
        if (!KEY_HEX.test(key) || !Array.isArray(by)) continue;
        const admins = new Set(by.filter((a): a is string => typeof a === 'string' && KEY_HEX.test(a)));
        if (admins.size) this.allowed.set(key, admins);
      }
    }
    const permits = readJson(this.permitsFile);
    if (permits && typeof permits === 'object' && !Array.isArray(permits)) {
      for (const [hash, p] of Object.entries((permits as { permits?: Record<string, Permit> }).permits ?? {})) {
        if (!KEY_HEX.test(hash) || !p || typeof p.admin !== 'string' || typeof p.expiresAt !== 'number') continue;
        this.permits.set(hash, { admin: p.admin, expiresAt: p.expiresAt, usedAt: typeof p.usedAt === 'number' ? p.usedAt : null });
      }
    }
  }

  isAdmin(key: string): boolean {
    return this.adminKeys.has(key);
  }

  /** An admin key, or a key allowed by at least one current admin. */
  isAdmitted(key: string): boolean {
    if (this.adminKeys.has(key)) return true;
    const by = this.allowed.get(key);
    if (!by) return false;
    for (const admin of by) if (this.adminKeys.has(admin)) return true;
    return false;
  }

  /** Admitted keys other than the admins (for the seen-keys table and the gauge). */
  allowedKeys(): string[] {
    return [...this.allowed.keys()].filter((k) => this.isAdmitted(k));
  }

  private countAllowedBy(admin: string): number {
    let n = 0;
    for (const by of this.allowed.values()) if (by.has(admin)) n += 1;
    return n;
  }

  /** `admin` allows `keys`. All or nothing: if the admin's share would pass its bound, nothing changes. */
  allow(admin: string, keys: string[]): AllowResult {
    const fresh = [...new Set(keys)].filter((k) => !this.allowed.get(k)?.has(admin));
    if (this.countAllowedBy(admin) + fresh.length > this.limits.maxAllowedPerAdmin) return { ok: false, reason: 'allowlist_full' };
    const admitted: string[] = [];
    for (const k of fresh) {
      const was = this.isAdmitted(k);
      const by = this.allowed.get(k) ?? new Set<string>();
      by.add(admin);
      this.allowed.set(k, by);
      if (!was) admitted.push(k);
    }
    if (fresh.length) {
      this.saveOrUndo(() => this.saveAllowed(), () => {
        for (const k of fresh) {
          const by = this.allowed.get(k);
          by?.delete(admin);
          if (by?.size === 0) this.allowed.delete(k);
        }
      });
    }
    return { ok: true, changed: fresh.length, admitted };
  }

  /** `admin` no longer allows `keys`. Returns the keys that are no longer admitted at all (their sessions end). */
  deny(admin: string, keys: string[]): { changed: number; unadmitted: string[] } {
    const removed: string[] = [];
    const unadmitted: string[] = [];
    for (const k of new Set(keys)) {
      const by = this.allowed.get(k);
      if (!by?.delete(admin)) continue;
      removed.push(k);
      if (by.size === 0) this.allowed.delete(k);
      if (!this.isAdmitted(k)) unadmitted.push(k);
    }
    if (removed.length) {
      this.saveOrUndo(() => this.saveAllowed(), () => {
        for (const k of removed) this.allowed.set(k, (this.allowed.get(k) ?? new Set<string>()).add(admin));
      });
    }
    return { changed: removed.length, unadmitted };
  }

  /** Register a permit: SHA-256 of a permit secret, valid until `expiresAt`, for a session that may reach `admin` only. */
  addPermit(admin: string, hashHex: string, expiresAt: number, now: number): PermitResult {
    if (expiresAt <= now || expiresAt - now > MAX_PERMIT_LIFETIME_MS || this.permits.has(hashHex)) return { ok: false, reason: 'permit_invalid' };
    this.sweepPermits(now);
    let outstanding = 0;
    let held = 0;
    for (const p of this.permits.values()) {
      if (p.admin !== admin) continue;
      held += 1;
      if (p.usedAt === null && p.expiresAt >= now) outstanding += 1;
    }
    // Used and expired permits are kept a while (to count a reuse as one): bounded too, at ten times as many.
    if (outstanding >= this.limits.maxPermitsPerAdmin || held >= this.limits.maxPermitsPerAdmin * 10) return { ok: false, reason: 'permits_full' };
    this.permits.set(hashHex, { admin, expiresAt, usedAt: null });
    this.saveOrUndo(() => this.savePermits(), () => this.permits.delete(hashHex));
    return { ok: true };
  }

  /**
   * Use the permit whose hash is SHA-256(secret). Single use: marked used and written to disk before this returns,
   * so a crash right after cannot make it usable again. A permit of an admin no longer configured is unknown.
   */
  usePermit(secret: Buffer, now: number): PermitUse {
    const hash = createHash('sha256').update(secret).digest('hex');
    const p = this.permits.get(hash);
    if (!p || !this.adminKeys.has(p.admin)) return { ok: false, reason: 'permit_unknown' };
    if (p.usedAt !== null) return { ok: false, reason: 'permit_reused' };
    if (now > p.expiresAt) return { ok: false, reason: 'permit_expired' };
    p.usedAt = now;
    this.saveOrUndo(() => this.savePermits(), () => (p.usedAt = null));
    return { ok: true, admin: p.admin };
  }

  /** Forget permits an hour past their expiry (used or not); until then a late or repeated use is counted as what it is. */
  sweepPermits(now: number): void {
    let removed = false;
    for (const [hash, p] of this.permits) {
      if (now > p.expiresAt + PERMIT_GRACE_MS) {
        this.permits.delete(hash);
        removed = true;
      }
    }
    if (removed) this.savePermits();
  }

  get permitCount(): number {
    return this.permits.size;
  }

  /** Write; if that fails, put memory back as it was and rethrow: what is acknowledged is what a restart reads. */
  private saveOrUndo(save: () => void, undo: () => void): void {
    try {
      save();
    } catch (err) {
      undo();
      throw err;
    }
  }

  private saveAllowed(): void {
    const keys: Record<string, string[]> = {};
    for (const [k, by] of this.allowed) keys[k] = [...by].sort();
    writePrivateJson(this.allowedFile, { version: 1, keys });
  }

  private savePermits(): void {
    writePrivateJson(this.permitsFile, { version: 1, permits: Object.fromEntries(this.permits) });
  }
}
