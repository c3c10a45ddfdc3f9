/**
 * A lock file for the build caches under ~/.cache/orch (the Temporal CLI, the Go agent): one process builds, the
 * others wait for its result instead of building the same thing again. The lock holds the owner's pid, host and
 * start time; a lock whose owner is gone (a dead pid on this host, a half-written lock older than 10 s, or any lock
 * older than `staleMs`) is taken over, so a build killed mid-way never blocks the next one.
 */
import { closeSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

export interface BuildLockOptions<T> {
  /** What is being built, for the log lines ("the Orch agent"). */
  what: string;
  log: (line: string) => void;
  /** How long to wait for another process before giving up. */
  waitMs: number;
  /** A lock older than this is taken over whatever its pid says. */
  staleMs: number;
  /** While waiting: the other process's result, once it is in place (else undefined). */
  ready: () => Promise<T | undefined> | T | undefined;
  /** How often to look again while waiting. */
  pollMs?: number;
}

/** Runs `fill` holding `<dir>/.lock`, or waits for the process that holds it and returns `ready()`'s result. */
export async function withBuildLock<T>(dir: string, opts: BuildLockOptions<T>, fill: () => Promise<T>): Promise<T> {
  const lockFile = path.join(dir, '.lock');
  const waitUntil = Date.now() + opts.waitMs;
  let announced = false;
  for (;;) {
    let fd: number | undefined;
    try {
      fd = openSync(lockFile, 'wx', 0o600);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    if (fd !== undefined) {
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now() }));
      } finally {
        closeSync(fd);
      }
      try {
        return await fill();
      } finally {
        rmSync(lockFile, { force: true });
      }
    }
    const done = await opts.ready();
    if (done !== undefined) return done;
    const owner = readLock(lockFile);
    if (owner && isStale(owner, opts.staleMs)) {
      opts.log(`removing a stale lock for ${opts.what} left by pid ${owner.pid}`);
      // Only remove the lock we judged stale: if it changed meanwhile, someone else took it over.
      if (readFileSafe(lockFile) === owner.raw) rmSync(lockFile, { force: true });
      continue;
    }
    if (!announced) {
      opts.log(`another process (pid ${owner?.pid ?? '?'}) is getting ${opts.what}; waiting for it`);
      announced = true;
    }
    if (Date.now() > waitUntil) throw new Error(`timed out waiting for the lock ${lockFile}; if no other Orch process is running, delete it`);
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
  }
}

/** Temporary build directories (`.build-*`, and whatever other prefixes) left by a process killed mid-way; call it under the lock. */
export function removeLeftovers(dir: string, prefixes: string[] = ['.build-']): void {
  for (const name of readdirSync(dir)) {
    if (prefixes.some((p) => name.startsWith(p))) rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

interface LockOwner {
  pid: number;
  host: string;
  at: number;
  raw: string;
}

function readLock(lockFile: string): LockOwner | undefined {
  const raw = readFileSafe(lockFile);
  if (raw === undefined) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<LockOwner>;
    if (typeof parsed.pid === 'number' && typeof parsed.at === 'number') return { pid: parsed.pid, host: String(parsed.host ?? ''), at: parsed.at, raw };
  } catch {
    // A lock file cut short by a crash between open and write: judge it by its age alone.
  }
  let at = Date.now();
  try {
    at = statSync(lockFile).mtimeMs;
  } catch {
    // Gone already.
  }
  return { pid: -1, host: '', at, raw };
}

function isStale(owner: LockOwner, staleMs: number): boolean {
  if (Date.now() - owner.at > staleMs) return true;
  if (owner.pid === -1) return Date.now() - owner.at > 10_000;
  if (owner.host !== hostname()) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return isErrno(err, 'ESRCH');
  }
}

export function readFileSafe(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
