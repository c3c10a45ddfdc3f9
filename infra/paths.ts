/**
 * Where Orch keeps its files on the operator's machine.
 *
 * Two roots, following each OS's conventions so backups and cleaners treat them right:
 * - the home (`orchHome`): data that must survive, such as tenant databases and the Temporal dev server's
 *   SQLite file (runs live there);
 * - the cache (`orchCacheDir`): things that can be rebuilt, such as the Temporal CLI binary.
 *
 * Both can be moved with an environment variable, which is also how tests isolate themselves.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, chmodSync, closeSync, constants as fsConstants, fchmodSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { Env, processEnv } from './settings';

/** Overrides the data directory (tenant databases, the Temporal dev server's database). */
export const ORCH_HOME_ENV = Env.home;
/** Overrides the cache directory (the Temporal CLI binary). */
export const ORCH_CACHE_DIR_ENV = Env.cacheDir;

type Environment = NodeJS.ProcessEnv;

/**
 * Orch's data directory: `ORCH_HOME` if set, else the OS app-data directory.
 *
 * @example orchHome() // '/home/ana/.local/share/orch' on Linux
 */
export function orchHome(env: Environment = processEnv(), platform: NodeJS.Platform = process.platform): string {
  const explicit = nonEmpty(env[ORCH_HOME_ENV]);
  if (explicit) return path.resolve(explicit);
  const p = pathFor(platform);
  const home = userHome(env, platform);
  switch (platform) {
    case 'darwin':
      return p.join(home, 'Library', 'Application Support', 'Orch');
    case 'win32':
      return p.join(nonEmpty(env.APPDATA) ?? p.join(home, 'AppData', 'Roaming'), 'Orch');
    default:
      return p.join(nonEmpty(env.XDG_DATA_HOME) ?? p.join(home, '.local', 'share'), 'orch');
  }
}

/**
 * Orch's cache directory: `ORCH_CACHE_DIR` if set, else the OS cache directory.
 *
 * @example orchCacheDir() // '/home/ana/.cache/orch' on Linux
 */
export function orchCacheDir(env: Environment = processEnv(), platform: NodeJS.Platform = process.platform): string {
  const explicit = nonEmpty(env[ORCH_CACHE_DIR_ENV]);
  if (explicit) return path.resolve(explicit);
  const p = pathFor(platform);
  const home = userHome(env, platform);
  switch (platform) {
    case 'darwin':
      return p.join(home, 'Library', 'Caches', 'Orch');
    case 'win32':
      return p.join(nonEmpty(env.LOCALAPPDATA) ?? p.join(home, 'AppData', 'Local'), 'Orch', 'Cache');
    default:
      return p.join(nonEmpty(env.XDG_CACHE_HOME) ?? p.join(home, '.cache'), 'orch');
  }
}

/** The Temporal dev server's SQLite file inside an Orch home. */
export function temporalDbFile(home: string): string {
  return path.join(home, 'temporal', 'dev.db');
}

/**
 * Creates `dir` (and missing parents) readable by the owner only, and tightens it if it already exists
 * with wider permissions: it holds run histories and tenant data.
 * Returns `dir`. On Windows, POSIX modes do not apply and the user profile's ACLs are relied on.
 */
export function ensurePrivateDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (process.platform !== 'win32') {
    const mode = statSync(dir).mode & 0o777;
    if (mode !== 0o700) chmodSync(dir, 0o700);
  }
  return dir;
}

/**
 * Writes `value` as JSON (two-space indented, newline-terminated) to `file`, readable by the owner only, so that
 * a reader sees either the old file or the whole new one, never part of it, even after a crash: the JSON goes
 * to a temporary file beside `file` (created exclusively, mode 0600 whatever the umask), is fsynced, then renamed
 * over `file`. The temporary file is removed if any step fails. `file`'s directory is made with
 * `ensurePrivateDir`. The one writer of Orch's private files (identity.json, payload-keys.json, the published
 * dev server port).
 *
 * @example writePrivateJsonAtomic(path.join(home, 'identity.json'), identity)
 */
export function writePrivateJsonAtomic(file: string, value: unknown): void {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  ensurePrivateDir(path.dirname(file));
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      // The umask may have taken bits off 0600 at creation; the file must still be readable by its owner.
      if (process.platform !== 'win32') fchmodSync(fd, 0o600);
      writeFileSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== '' ? value : undefined;
}

function pathFor(platform: NodeJS.Platform): path.PlatformPath {
  return platform === 'win32' ? path.win32 : path.posix;
}

function userHome(env: Environment, platform: NodeJS.Platform): string {
  const fromEnv = platform === 'win32' ? nonEmpty(env.USERPROFILE) : nonEmpty(env.HOME);
  return fromEnv ?? homedir();
}

/** Whether `file` is a regular file this process may execute (on Windows: a regular file). */
export function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    if (process.platform !== 'win32') accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}
