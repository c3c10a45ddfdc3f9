/**
 * Getting the Go agent (agent/, one static binary) for this machine, for `orch up`'s local agent, the tests and
 * `bin/orch-agent.mjs`. Looked for in this order:
 *
 * 1. `ORCH_AGENT_BIN`: an explicit path (a release binary copied from `dist/`, or the one the test suite built).
 *    It must exist and be executable, or resolution stops with an error naming the variable.
 * 2. The cache, `<orchCacheDir>/agent/<key>/orch-agent`, where the key is a hash of agent/go.mod, agent/go.sum and
 *    every agent/**\/*.go file (and the platform and package version): editing the agent rebuilds it, nothing else
 *    does. The cache root is the Temporal CLI's (`ORCH_CACHE_DIR`, else `~/.cache/orch` on Linux).
 * 3. A build with the Go toolchain (`go` on PATH, else /usr/local/go/bin/go), with bin/build-agent.mjs's flags:
 *    `CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -buildid= -X main.version=... -X
 *    main.commit=..."`. Modules come from the Go module proxy (GOPROXY) on the first build. The build writes a
 *    temporary file renamed into place, under a lock file, so concurrent callers build once and a killed build
 *    never leaves a broken binary.
 *
 * This file imports nothing from desktop-worker/ (infra/ sits below it); the cache root is infra/paths.ts's
 * `orchCacheDir`, shared with the Temporal CLI.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeLeftovers, withBuildLock } from './build-lock';
import { isExecutableFile, orchCacheDir } from './paths';
import { runWithProgress } from './run-with-progress';
import { Env, processEnv } from './settings';

/** Environment variable naming an explicit agent binary. */
export const ORCH_AGENT_BIN_ENV = Env.agentBin;

const EXE = process.platform === 'win32' ? '.exe' : '';
/** A lock older than this is from a build that died without cleaning up, even if its pid was reused. */
const LOCK_STALE_MS = 30 * 60_000;
/** How long a second process waits for the first one's build before giving up. */
const LOCK_WAIT_MS = 15 * 60_000;
/** Builds of older sources kept in the cache (another checkout may still use them). */
const KEEP_OLD_BUILDS = 3;

/** The repository root (this file is infra/agent-binary.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface ResolveAgentBinaryOptions {
  env?: NodeJS.ProcessEnv;
  /** Progress and advice, one line at a time. Defaults to stderr. */
  log?: (line: string) => void;
  /** The repository holding agent/ and package.json. Default: this file's. */
  repoRoot?: string;
  /** Where to look for `go` when it is not on PATH. Default `/usr/local/go/bin/go` (and Homebrew's). */
  goFallbacks?: string[];
  /** How often a build logs that it is alive. Default 15 s. */
  progressEveryMs?: number;
}

/** Why no agent binary could be had; `code` tells the cases apart. */
export class AgentBinaryError extends Error {
  constructor(
    readonly code: 'agent_bin_env_invalid' | 'go_missing' | 'agent_build_failed' | 'agent_sources_missing',
    message: string,
  ) {
    super(message);
    this.name = 'AgentBinaryError';
  }
}

/**
 * The path of a Go agent binary for this machine, building it into the cache when the agent's sources changed.
 *
 * @example
 * const agent = await resolveAgentBinary({ log: (l) => console.error(l) });
 * spawn(agent, ['run', '--state-dir', dir]);
 */
export async function resolveAgentBinary(opts: ResolveAgentBinaryOptions = {}): Promise<string> {
  const env = opts.env ?? processEnv();
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const explicit = env[ORCH_AGENT_BIN_ENV]?.trim();
  if (explicit) return checkExplicit(path.resolve(explicit));

  const root = opts.repoRoot ?? REPO_ROOT;
  const key = agentSourceKey(root);
  const dir = path.join(agentCacheRoot(env), 'agent', key);
  const cached = path.join(dir, `orch-agent${EXE}`);
  if (isExecutableFile(cached)) return cached;

  const fallbacks = opts.goFallbacks ?? defaultGoFallbacks();
  const go = findGo(env, fallbacks);
  if (!go) {
    throw new AgentBinaryError(
      'go_missing',
      `no Go toolchain to build the Orch agent (looked on PATH and at ${fallbacks.join(', ')}): install Go ${goVersionWanted(root)} or newer from https://go.dev/dl/, or set ${ORCH_AGENT_BIN_ENV} to a built orch-agent (\`npm run build:agent\` on a machine with Go writes dist/orch-agent-linux-amd64 and -arm64)`,
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ready = () => (isExecutableFile(cached) ? true : undefined);
  await withBuildLock(dir, { what: 'the Orch agent', log, waitMs: LOCK_WAIT_MS, staleMs: LOCK_STALE_MS, pollMs: 250, ready }, async () => {
    if (ready()) return true; // built by another process while we waited
    removeLeftovers(dir);
    await build(go, root, dir, cached, env, log, opts.progressEveryMs ?? 15_000);
    return true;
  });
  pruneOldBuilds(path.dirname(dir), key);
  return cached;
}

/** The cache key of the agent's sources: go.mod, go.sum, every .go file under agent/, the platform and version. */
export function agentSourceKey(root: string = REPO_ROOT): string {
  const agentDir = path.join(root, 'agent');
  if (!existsSync(path.join(agentDir, 'go.mod'))) {
    throw new AgentBinaryError('agent_sources_missing', `no Go agent sources at ${agentDir} (agent/go.mod): run from an Orch checkout, or set ${ORCH_AGENT_BIN_ENV}`);
  }
  const files = ['go.mod', 'go.sum', ...listGoFiles(agentDir, '')].filter((f) => existsSync(path.join(agentDir, f)));
  const hash = createHash('sha256');
  hash.update(`orch-agent cache v1\0${process.platform}/${process.arch}\0${packageVersion(root)}\0`);
  for (const rel of files.sort()) {
    const body = readFileSync(path.join(agentDir, rel));
    hash.update(`${rel}\0${body.length}\0`);
    hash.update(body);
  }
  return hash.digest('hex').slice(0, 24);
}

/** `<orchCacheDir>` (infra/paths.ts): where the agent builds are cached, beside the Temporal CLI. */
export function agentCacheRoot(env: NodeJS.ProcessEnv = processEnv()): string {
  return orchCacheDir(env);
}

function checkExplicit(file: string): string {
  if (!existsSync(file)) {
    throw new AgentBinaryError('agent_bin_env_invalid', `${ORCH_AGENT_BIN_ENV}=${file} does not exist: point it at an orch-agent binary, or unset it to build one from agent/`);
  }
  if (!isExecutableFile(file)) {
    throw new AgentBinaryError('agent_bin_env_invalid', `${ORCH_AGENT_BIN_ENV}=${file} is not an executable file: check its permissions (chmod +x), or unset it`);
  }
  return file;
}

function listGoFiles(dir: string, rel: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const child = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (entry.name === 'testdata' || entry.name.startsWith('.')) continue;
      out.push(...listGoFiles(dir, child));
    } else if (entry.isFile() && entry.name.endsWith('.go')) {
      out.push(child);
    }
  }
  return out;
}

function packageVersion(root: string): string {
  try {
    return String((JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: unknown }).version ?? '0.0.0');
  } catch {
    return '0.0.0';
  }
}

function gitCommit(root: string): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

function goVersionWanted(root: string): string {
  try {
    const m = /^go (\S+)/m.exec(readFileSync(path.join(root, 'agent', 'go.mod'), 'utf8'));
    return m?.[1] ?? '(the version in agent/go.mod)';
  } catch {
    return '(the version in agent/go.mod)';
  }
}

async function build(
  go: string,
  root: string,
  dir: string,
  cached: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
  progressEveryMs: number,
): Promise<void> {
  const version = packageVersion(root);
  const commit = gitCommit(root);
  const tmp = mkdtempSync(path.join(dir, '.build-'));
  try {
    const out = path.join(tmp, `orch-agent${EXE}`);
    log(`building the Orch agent (Go, ${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}) into ${dir}`);
    const started = Date.now();
    // Exactly bin/build-agent.mjs's flags, for this machine's platform.
    const ldflags = `-s -w -buildid= -X main.version=${version} -X main.commit=${commit}`;
    const args = ['build', '-trimpath', '-buildvcs=false', '-ldflags', ldflags, '-o', out, './cmd/orch-agent'];
    // The toolchain's own directory first on PATH: `go` may have been found at /usr/local/go/bin only.
    const PATH = [path.dirname(go), env.PATH ?? ''].filter((p) => p !== '').join(path.delimiter);
    const buildEnv: NodeJS.ProcessEnv = { ...env, PATH, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' };
    delete buildEnv.GOOS;
    delete buildEnv.GOARCH;
    await runWithProgress({ command: go, args, cwd: path.join(root, 'agent'), env: buildEnv, log, progress: 'still building the agent', everyMs: progressEveryMs, step: `building the agent (\`go ${args.join(' ')}\` in agent/)` }).catch((err: unknown) => {
      throw new AgentBinaryError('agent_build_failed', (err as Error).message);
    });
    if (!isExecutableFile(out)) throw new AgentBinaryError('agent_build_failed', `go build left no binary at ${out}`);
    renameSync(out, cached);
    log(`built the Orch agent in ${((Date.now() - started) / 1000).toFixed(1)} s: ${cached}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Keeps the newest few builds of other sources (other checkouts may use them) and removes the rest. */
function pruneOldBuilds(agentRoot: string, keep: string): void {
  try {
    const others = readdirSync(agentRoot, { withFileTypes: true })
      .filter((e) => e.isDirectory() && e.name !== keep && /^[0-9a-f]{24}$/.test(e.name))
      .map((e) => ({ dir: path.join(agentRoot, e.name), at: statSync(path.join(agentRoot, e.name)).mtimeMs }))
      .sort((a, b) => b.at - a.at);
    for (const old of others.slice(KEEP_OLD_BUILDS)) {
      if (!existsSync(path.join(old.dir, '.lock'))) rmSync(old.dir, { recursive: true, force: true });
    }
  } catch {
    // Pruning is housekeeping: never fail a resolution over it.
  }
}

function defaultGoFallbacks(): string[] {
  if (process.platform === 'win32') return ['C:\\Program Files\\Go\\bin\\go.exe'];
  return ['/usr/local/go/bin/go', '/opt/homebrew/bin/go'];
}

/** The Go toolchain: `go` on PATH, else the first of `fallbacks` (default /usr/local/go/bin/go) that exists. */
export function findGo(env: NodeJS.ProcessEnv = processEnv(), fallbacks: string[] = defaultGoFallbacks()): string | undefined {
  const dirs = (env.PATH ?? env.Path ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    const candidate = path.resolve(dir, `go${EXE}`);
    if (isExecutableFile(candidate)) return candidate;
  }
  return fallbacks.find((f) => isExecutableFile(f));
}
