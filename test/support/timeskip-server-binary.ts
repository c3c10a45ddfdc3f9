/**
 * The suite's Temporal server with workflow time skipping (for test/integration/gate-24h.test.ts), built from
 * test/support/timeskip-server (a small Go program on go.temporal.io/server, pinned in its go.mod and go.sum) and
 * cached outside the repository like the Temporal CLI and the Go agent: `<orchCacheDir>/timeskip-server/<key>/`,
 * the key a hash of that folder's files. The first build downloads the server's Go modules (through the Go module
 * proxy) and compiles them: several minutes on a 2-core machine, once per source change.
 *
 * Why not `TestWorkflowEnvironment.createTimeSkipping()`: it downloads Temporal's Java test server from
 * temporal.download, which this project's machines and CI cannot reach. Why not the pinned Temporal CLI's dev
 * server: server 1.29.1 has no time skipping; server 1.32 has it (behind `frontend.WorkflowTimeSkippingEnabled`),
 * and CLI releases carrying it cannot be `go install`ed (their go.mod has a `replace`), so this program starts the
 * server itself, as the CLI's dev server does.
 *
 * ORCH_TEST_TIMESKIP_SERVER=PATH uses a binary built elsewhere instead.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findGo } from '../../infra/agent-binary';
import { removeLeftovers, withBuildLock } from '../../infra/build-lock';
import { orchCacheDir } from '../../infra/paths';
import { runWithProgress } from '../../infra/run-with-progress';

export const TIMESKIP_SERVER_ENV = 'ORCH_TEST_TIMESKIP_SERVER';
const SOURCE = fileURLToPath(new URL('./timeskip-server', import.meta.url));

function sourceKey(): string {
  const hash = createHash('sha256');
  hash.update(`orch timeskip-server v1\0${process.platform}/${process.arch}\0`);
  for (const name of readdirSync(SOURCE).filter((n) => /\.(go|mod|sum)$/.test(n)).sort()) {
    const body = readFileSync(path.join(SOURCE, name));
    hash.update(`${name}\0${body.length}\0`);
    hash.update(body);
  }
  return hash.digest('hex').slice(0, 24);
}

function isExecutable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The binary's path: ORCH_TEST_TIMESKIP_SERVER, the cached build, or a new build (under a lock). */
export async function resolveTimeSkipServer(log: (line: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const explicit = env[TIMESKIP_SERVER_ENV]?.trim();
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`${TIMESKIP_SERVER_ENV}=${explicit} is not an executable file`);
    return explicit;
  }
  const dir = path.join(orchCacheDir(env), 'timeskip-server', sourceKey());
  const bin = path.join(dir, 'timeskip-server');
  if (isExecutable(bin)) return bin;
  const go = findGo(env);
  if (!go) throw new Error('no Go toolchain to build the time-skipping Temporal server (test/support/timeskip-server): install Go, or set ORCH_TEST_TIMESKIP_SERVER');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ready = () => (isExecutable(bin) ? true : undefined);
  await withBuildLock(dir, { what: 'the time-skipping Temporal server', log, waitMs: 40 * 60_000, staleMs: 60 * 60_000, pollMs: 1000, ready }, async () => {
    if (ready()) return true;
    removeLeftovers(dir);
    const tmp = mkdtempSync(path.join(dir, '.build-'));
    try {
      const out = path.join(tmp, 'timeskip-server');
      const started = Date.now();
      log(`building the time-skipping Temporal server (go.temporal.io/server, test/support/timeskip-server) into ${dir}: several minutes, once`);
      const PATH = [path.dirname(go), env.PATH ?? ''].filter((p) => p !== '').join(path.delimiter);
      // Plain flags (no -trimpath, no CGO_ENABLED change): the build then reuses Go's build cache of the server's
      // packages, which is most of the time of a first build.
      const args = ['build', '-buildvcs=false', '-o', out, '.'];
      await runWithProgress({
        command: go,
        args,
        cwd: SOURCE,
        env: { ...env, PATH, GOFLAGS: '-mod=readonly' },
        log,
        progress: 'still building the time-skipping server',
        everyMs: 30_000,
        step: `building the time-skipping server (\`go ${args.join(' ')}\` in test/support/timeskip-server)`,
      });
      if (!existsSync(out)) throw new Error(`go build left no binary at ${out}`);
      renameSync(out, bin);
      log(`built the time-skipping Temporal server in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return true;
  });
  return bin;
}
