/**
 * Getting the pinned Temporal CLI, which carries the Temporal dev server and the Temporal UI.
 *
 * Orch pins one CLI release so every operator runs the same server (1.29.1). The CLI is looked for in this
 * order, first hit wins:
 *
 * 1. `ORCH_TEMPORAL_CLI`: an explicit path. It must exist and run, or resolution stops with an error naming
 *    the variable (an operator who set it wants that binary, not a silent fallback).
 * 2. The cache, `<orchCacheDir>/temporal-cli/1.5.1/temporal`, if it runs and reports Server 1.29.1.
 * 3. A `temporal` on PATH that reports CLI 1.5.1 or Server 1.29.1.
 * 4. `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into the cache, when Go is installed.
 *    Releases from 1.6.0 carry a `replace` directive and cannot be `go install`ed, hence the pin.
 * 5. The Temporal SDK's own downloader (`@temporalio/testing`), copied into the cache.
 *
 * Steps 4 and 5 write the cache under a lock file, into a temporary name renamed into place at the end, so
 * concurrent processes (tests and `orch up`) build once and a killed build never leaves a broken binary.
 * When nothing works, `TemporalCliUnavailableError` says what to install.
 */
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir, isExecutableFile, orchCacheDir } from './paths';
import { removeLeftovers, withBuildLock } from './build-lock';
import { runWithProgress } from './run-with-progress';
import { Env, processEnv } from './settings';

export const TEMPORAL_CLI_VERSION = '1.5.1';
export const TEMPORAL_SERVER_VERSION = '1.29.1';
/** The Go package `go install` builds; the module path is the repository's. */
export const TEMPORAL_CLI_GO_PACKAGE = 'github.com/temporalio/cli/cmd/temporal';
/** Environment variable naming an explicit Temporal CLI binary. */
export const ORCH_TEMPORAL_CLI_ENV = Env.temporalCli;

export type TemporalCliSource = 'env' | 'cache' | 'path' | 'go-install' | 'sdk-download';

export interface ResolvedTemporalCli {
  path: string;
  source: TemporalCliSource;
  /** What the binary says after `temporal version`, e.g. `1.5.1 (Server 1.29.1, UI 2.42.1)`. */
  version: string;
  serverVersion: string;
}

export interface ResolveTemporalCliOptions {
  env?: NodeJS.ProcessEnv;
  /** Progress and advice for the operator, one line at a time. Defaults to stderr. */
  log?: (line: string) => void;
  /** Allow step 4, `go install` (a few minutes, once). Default true. */
  allowBuild?: boolean;
  /** Allow step 5, the SDK download (needs the internet). Default true. */
  allowDownload?: boolean;
  /**
   * Where to look for `go` when it is not on PATH (Go's installer does not always add itself).
   * Default: `/usr/local/go/bin/go` and Homebrew's, or `C:\Program Files\Go\bin\go.exe` on Windows.
   */
  goFallbacks?: string[];
  /** Give up on the SDK download after this long. Default 5 minutes. */
  downloadTimeoutMs?: number;
  /** How often a long build or download logs that it is alive. Default 15 s. */
  progressEveryMs?: number;
}

/** Base of the errors `resolveTemporalCli` throws; tell them apart by `code`. */
export class TemporalCliError extends Error {
  constructor(
    readonly code: 'temporal_cli_unavailable' | 'temporal_cli_env_invalid',
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** `ORCH_TEMPORAL_CLI` is set but does not point at a runnable Temporal CLI. */
export class TemporalCliEnvError extends TemporalCliError {
  readonly variable = ORCH_TEMPORAL_CLI_ENV;
  constructor(message: string) {
    super('temporal_cli_env_invalid', message);
  }
}

/** No step could provide the Temporal CLI. `attempts` lists what each step found. */
export class TemporalCliUnavailableError extends TemporalCliError {
  constructor(readonly attempts: string[]) {
    super('temporal_cli_unavailable', unavailableMessage(attempts));
  }
}

const EXE = process.platform === 'win32' ? '.exe' : '';
/** A `--version` that takes longer than this is not a working CLI (the first run of a cold 250 MB binary is slow). */
const VERSION_TIMEOUT_MS = 30_000;
/** A lock older than this is from a build that died without cleaning up, even if its pid was reused. */
const LOCK_STALE_MS = 60 * 60_000;
/** How long a second process waits for the first one's build before giving up. */
const LOCK_WAIT_MS = 30 * 60_000;

/** The cached binary's path for the pinned version. */
export function cachedTemporalCliPath(env: NodeJS.ProcessEnv = processEnv()): string {
  return path.join(cacheVersionDir(env), `temporal${EXE}`);
}

/**
 * Finds the pinned Temporal CLI, building or downloading it into the cache when needed.
 *
 * @example
 * const cli = await resolveTemporalCli();
 * const server = await startDevServer({ cliPath: cli.path });
 */
export async function resolveTemporalCli(opts: ResolveTemporalCliOptions = {}): Promise<ResolvedTemporalCli> {
  const env = opts.env ?? processEnv();
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const attempts: string[] = [];

  const explicit = env[ORCH_TEMPORAL_CLI_ENV]?.trim();
  if (explicit) return resolveExplicit(path.resolve(explicit), env, log);
  attempts.push(`${ORCH_TEMPORAL_CLI_ENV}: not set`);

  const cached = cachedTemporalCliPath(env);
  const fromCache = await probeCached(cached, env);
  if (fromCache.ok) return { path: cached, source: 'cache', ...fromCache.version };
  attempts.push(`cache ${cached}: ${fromCache.why}`);

  const onPath = findAllOnPath('temporal', env);
  for (const candidate of onPath) {
    const found = await probe(candidate, env);
    if (found.ok) return { path: candidate, source: 'path', ...found.version };
    attempts.push(`PATH ${candidate}: ${found.why}`);
  }
  if (onPath.length === 0) attempts.push('PATH: no temporal');

  const progressEveryMs = opts.progressEveryMs ?? 15_000;
  const allowBuild = opts.allowBuild ?? true;
  const allowDownload = opts.allowDownload ?? true;
  const goPath = allowBuild ? findGo(env, opts.goFallbacks ?? defaultGoFallbacks()) : undefined;
  if (!allowBuild) attempts.push('go install: not allowed (allowBuild: false)');
  else if (!goPath) attempts.push(`go install: no go on PATH or at ${(opts.goFallbacks ?? defaultGoFallbacks()).join(', ') || '(no fallbacks)'}`);
  if (!allowDownload) attempts.push('SDK download: not allowed (allowDownload: false)');
  if (!goPath && !allowDownload) throw new TemporalCliUnavailableError(attempts);

  const versionDir = cacheVersionDir(env);
  ensurePrivateDir(versionDir);
  const fill = await withBuildLock(
    versionDir,
    {
      what: `the Temporal CLI ${TEMPORAL_CLI_VERSION}`,
      log,
      waitMs: LOCK_WAIT_MS,
      staleMs: LOCK_STALE_MS,
      async ready() {
        if (!existsSync(cached)) return undefined;
        const done = await probe(cached, env);
        return done.ok ? { source: 'cache' as const, version: done.version } : undefined;
      },
    },
    goInstallOrDownload,
  );
  async function goInstallOrDownload() {
    // Another process may have filled the cache while we waited for the lock.
    const again = await probe(cached, env);
    if (again.ok) return { source: 'cache' as const, version: again.version };
    removeLeftovers(versionDir, ['.build-', '.copy-']);
    if (goPath) {
      try {
        const version = await goInstall(goPath, versionDir, cached, env, log, progressEveryMs);
        return { source: 'go-install' as const, version };
      } catch (err) {
        attempts.push(`go install with ${goPath}: ${errorText(err)}`);
      }
    }
    if (allowDownload) {
      try {
        const timeoutMs = opts.downloadTimeoutMs ?? 5 * 60_000;
        const version = await sdkDownload(versionDir, cached, env, log, timeoutMs, progressEveryMs);
        return { source: 'sdk-download' as const, version };
      } catch (err) {
        attempts.push(`SDK download: ${errorText(err)}`);
      }
    }
    return undefined;
  }
  if (!fill) throw new TemporalCliUnavailableError(attempts);
  return { path: cached, source: fill.source, ...fill.version };
}

interface CliVersion {
  version: string;
  serverVersion: string;
  cliVersion: string;
}

type Probe = { ok: true; version: CliVersion } | { ok: false; why: string };

/**
 * {@link probe} for the cached binary, remembered: starting a 250 MB binary only to ask its version costs seconds on a
 * loaded machine at every `orch up`. The answer is kept beside it (`temporal.version.json`) with the binary's size,
 * inode and modification and change times, and reused only while all four are the same; a replaced or rebuilt binary
 * is asked again.
 */
async function probeCached(file: string, env: NodeJS.ProcessEnv): Promise<Probe> {
  const stampFile = `${file}.version.json`;
  const identity = fileIdentity(file);
  if (identity !== undefined && isExecutableFile(file)) {
    try {
      const stamp = JSON.parse(readFileSync(stampFile, 'utf8')) as { file?: string; version?: CliVersion };
      if (stamp.file === identity && stamp.version && isCompatible(stamp.version)) return { ok: true, version: stamp.version };
    } catch {
      // No stamp yet, or an unreadable one: ask the binary.
    }
  }
  const result = await probe(file, env);
  if (result.ok && identity !== undefined && identity === fileIdentity(file)) {
    try {
      writeFileSync(stampFile, `${JSON.stringify({ file: identity, version: result.version })}\n`, { mode: 0o600 });
    } catch {
      // Only a cache: the next start asks the binary again.
    }
  } else if (!result.ok) {
    rmSync(stampFile, { force: true });
  }
  return result;
}

function fileIdentity(file: string): string | undefined {
  try {
    const st = statSync(file);
    return `${st.size}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch {
    return undefined;
  }
}

/** Runs `<file> --version` and says whether it is a compatible Temporal CLI. */
async function probe(file: string, env: NodeJS.ProcessEnv): Promise<Probe> {
  if (!existsSync(file)) return { ok: false, why: 'not present' };
  if (!isExecutableFile(file)) return { ok: false, why: 'not an executable file' };
  let version: CliVersion;
  try {
    version = await readCliVersion(file, env);
  } catch (err) {
    return { ok: false, why: errorText(err) };
  }
  if (!isCompatible(version)) {
    return {
      ok: false,
      why: `reports ${version.version}, need CLI ${TEMPORAL_CLI_VERSION} (Server ${TEMPORAL_SERVER_VERSION})`,
    };
  }
  return { ok: true, version };
}

async function resolveExplicit(
  file: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<ResolvedTemporalCli> {
  if (!existsSync(file)) {
    throw new TemporalCliEnvError(
      `${ORCH_TEMPORAL_CLI_ENV}=${file} does not exist. Point it at a Temporal CLI ${TEMPORAL_CLI_VERSION} binary, or unset it to let Orch find or build one.`,
    );
  }
  if (!isExecutableFile(file)) {
    throw new TemporalCliEnvError(
      `${ORCH_TEMPORAL_CLI_ENV}=${file} is not an executable file. Check its permissions (chmod +x), or unset it.`,
    );
  }
  let version: CliVersion;
  try {
    version = await readCliVersion(file, env);
  } catch (err) {
    throw new TemporalCliEnvError(
      `${ORCH_TEMPORAL_CLI_ENV}=${file} does not behave like the Temporal CLI (${errorText(err)}). Point it at a Temporal CLI ${TEMPORAL_CLI_VERSION} binary, or unset it.`,
    );
  }
  // An explicit choice is honoured even for another version (the operator may be testing one), but said aloud.
  if (!isCompatible(version)) {
    log(
      `warning: ${ORCH_TEMPORAL_CLI_ENV} points at Temporal CLI ${version.version}; Orch is tested with CLI ${TEMPORAL_CLI_VERSION} (Server ${TEMPORAL_SERVER_VERSION})`,
    );
  }
  return { path: file, source: 'env', ...version };
}

/** `temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)`; a go-installed build says `0.0.0-DEV` as its own version. */
const VERSION_LINE = /^temporal version (\S+) \(Server (\S+), UI (\S+)\)/m;

function readCliVersion(file: string, env: NodeJS.ProcessEnv): Promise<CliVersion> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      ['--version'],
      { env, timeout: VERSION_TIMEOUT_MS, windowsHide: true, maxBuffer: 64 * 1024 },
      (err, stdout) => {
        if (err) {
          reject(new Error(`\`${path.basename(file)} --version\` failed: ${err.message.split('\n')[0]}`));
          return;
        }
        const m = VERSION_LINE.exec(stdout);
        if (!m || m[1] === undefined || m[2] === undefined || m[3] === undefined) {
          reject(new Error(`\`--version\` printed ${JSON.stringify(stdout.slice(0, 120))}, not a Temporal CLI version`));
          return;
        }
        resolve({ cliVersion: m[1], serverVersion: m[2], version: `${m[1]} (Server ${m[2]}, UI ${m[3]})` });
      },
    );
  });
}

function isCompatible(v: CliVersion): boolean {
  return v.serverVersion === TEMPORAL_SERVER_VERSION || v.cliVersion === TEMPORAL_CLI_VERSION;
}

function cacheVersionDir(env: NodeJS.ProcessEnv): string {
  return path.join(orchCacheDir(env), 'temporal-cli', TEMPORAL_CLI_VERSION);
}

function findAllOnPath(name: string, env: NodeJS.ProcessEnv): string[] {
  const dirs = (env.PATH ?? env.Path ?? '').split(path.delimiter).filter((d) => d !== '');
  const found: string[] = [];
  for (const dir of dirs) {
    const candidate = path.resolve(dir, `${name}${EXE}`);
    if (!found.includes(candidate) && isExecutableFile(candidate)) found.push(candidate);
  }
  return found;
}

function defaultGoFallbacks(): string[] {
  if (process.platform === 'win32') return ['C:\\Program Files\\Go\\bin\\go.exe'];
  return ['/usr/local/go/bin/go', '/opt/homebrew/bin/go'];
}

function findGo(env: NodeJS.ProcessEnv, fallbacks: string[]): string | undefined {
  return findAllOnPath('go', env)[0] ?? fallbacks.find((f) => isExecutableFile(f));
}

async function goInstall(
  goPath: string,
  versionDir: string,
  cached: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
  progressEveryMs: number,
): Promise<CliVersion> {
  const buildDir = mkdtempSync(path.join(versionDir, '.build-'));
  try {
    log(`building the Temporal CLI ${TEMPORAL_CLI_VERSION} with go install (a few minutes, once)`);
    const target = `${TEMPORAL_CLI_GO_PACKAGE}@v${TEMPORAL_CLI_VERSION}`;
    await runWithProgress({ command: goPath, args: ['install', target], env: { ...env, GOBIN: buildDir }, log, progress: 'still building', everyMs: progressEveryMs, step: `\`${path.basename(goPath)} install ${target}\`` });
    const built = path.join(buildDir, `temporal${EXE}`);
    const result = await probe(built, env);
    if (!result.ok) throw new Error(`the built binary is not usable: ${result.why}`);
    renameSync(built, cached);
    log(`built the Temporal CLI into ${cached}`);
    return result.version;
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
  }
}

/**
 * Lets the Temporal SDK download the CLI release (it knows the download service's URLs and archive
 * layout), by starting and stopping a throwaway dev server, then copies the binary into our cache: the
 * SDK's own copy expires after a day.
 */
async function sdkDownload(
  versionDir: string,
  cached: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
  timeoutMs: number,
  progressEveryMs: number,
): Promise<CliVersion> {
  let testing: typeof import('@temporalio/testing');
  try {
    testing = await import('@temporalio/testing');
  } catch {
    throw new Error('the @temporalio/testing package is not installed, so the SDK cannot download the CLI');
  }
  const downloadDir = ensurePrivateDir(path.join(path.dirname(versionDir), 'sdk-download'));
  // The SDK's file name for a fixed version: `temporal-<version>` (see sdk-core's ephemeral_server).
  const downloaded = path.join(downloadDir, `temporal-v${TEMPORAL_CLI_VERSION}${EXE}`);
  log(`downloading the Temporal CLI ${TEMPORAL_CLI_VERSION} through the Temporal SDK into ${downloadDir}`);

  const starting = testing.TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'cached-download', version: `v${TEMPORAL_CLI_VERSION}`, downloadDir },
      ip: '127.0.0.1',
      ui: false,
    },
  });
  const started = Date.now();
  const timer = setInterval(() => {
    log(`  ... still downloading (${Math.round((Date.now() - started) / 1000)} s)`);
  }, progressEveryMs);
  let failure: unknown;
  try {
    const envHandle = await withTimeout(starting, timeoutMs, `no answer after ${Math.round(timeoutMs / 1000)} s`);
    await envHandle.teardown();
  } catch (err) {
    failure = err;
    // The SDK cannot be cancelled: if it starts the server after we gave up, stop it then.
    starting.then((late) => late.teardown()).catch(() => undefined);
  } finally {
    clearInterval(timer);
  }
  // The download may have succeeded even if the throwaway server did not start.
  const result = await probe(downloaded, env);
  if (!result.ok) {
    throw new Error(failure ? firstLine(errorText(failure)) : `the SDK left no usable binary at ${downloaded}: ${result.why}`);
  }
  const copyDir = mkdtempSync(path.join(versionDir, '.copy-'));
  try {
    const copy = path.join(copyDir, `temporal${EXE}`);
    copyFileSync(downloaded, copy);
    chmodSync(copy, 0o755);
    renameSync(copy, cached);
  } finally {
    rmSync(copyDir, { recursive: true, force: true });
  }
  log(`downloaded the Temporal CLI into ${cached}`);
  return result.version;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function unavailableMessage(attempts: string[]): string {
  return [
    `The Temporal CLI ${TEMPORAL_CLI_VERSION} (Temporal Server ${TEMPORAL_SERVER_VERSION}) was not found and could not be obtained.`,
    'Tried:',
    ...attempts.map((a) => `  - ${a.replace(/\n/g, '\n    ')}`),
    'Do one of these, then run `npx tsx infra/get-temporal-cli.ts` (or your command) again:',
    `  1. Install Go 1.25 or newer (https://go.dev/dl/). Orch then builds the CLI once with \`go install ${TEMPORAL_CLI_GO_PACKAGE}@v${TEMPORAL_CLI_VERSION}\` (a few minutes).`,
    `  2. Download the Temporal CLI ${TEMPORAL_CLI_VERSION} release archive for your platform from https://github.com/temporalio/cli/releases/tag/v${TEMPORAL_CLI_VERSION}, extract \`temporal\`, and set ${ORCH_TEMPORAL_CLI_ENV}=/path/to/temporal.`,
    `  3. Put temporal ${TEMPORAL_CLI_VERSION} on your PATH.`,
  ].join('\n');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

