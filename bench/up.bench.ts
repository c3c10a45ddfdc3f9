/**
 * `npm run bench:up`: how long `orch up` takes to "Orch is up" with everything cached (issue 11: within 2x of the
 * dev server alone). Each sample starts the real command (`node bin/orch.mjs up --timings`, the quick start's
 * `npm start`) in one ORCH_HOME, times it from spawn to the line "Orch is up.", and stops it with SIGINT; beside it,
 * the baseline: `temporal server start-dev` alone with the same flags (devServerArgs: same database file, ports,
 * search attributes, dynamic config), timed from spawn until its gRPC answers (GetSystemInfo). The two alternate,
 * so both see the same machine load. A first `orch up` (not timed) creates the identity, the tenant and the caches.
 *
 * The keychain is the one this process has: with DBUS_SESSION_BUS_ADDRESS set (a desktop session, or inside
 * infra/ci-keyring.sh) `orch up` uses it; without one it starts its own keyring (ORCH_KEYRING_PASSWORD), as on a
 * headless Linux machine. The row names which.
 *
 * Options: --samples 5 (the median is printed), --also DIR (also time the `orch up` of another checkout, e.g. one
 * at an older commit, in the same alternation: a before/after pair under the same load).
 * Not a test: it asserts nothing.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { devServerArgs } from '../desktop-worker/dev-server';
import { resolveTemporalCli } from '../infra/temporal-cli';
import { temporalDbFile } from '../infra/paths';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/shared';
import { benchArgs } from './args';
import { benchRow } from './report';

const { values, count } = benchArgs(
  `
npm run bench:up [-- OPTIONS]   orch up to "Orch is up" (everything cached) vs the dev server alone (asserts nothing)

  --samples N   alternating samples; the median is printed (default 5)
  --also DIR    also time the orch up of another checkout DIR in the same alternation (before/after)
`,
  { samples: { type: 'string', default: '5' }, also: { type: 'string' } },
);
const SAMPLES = count(values.samples, '--samples');
const root = fileURLToPath(new URL('..', import.meta.url));
const say = (l: string) => process.stdout.write(`${l}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// A bench builds its children's environment from its own.
const baseEnv = process.env;
const desktopKeychain = Boolean(baseEnv.DBUS_SESSION_BUS_ADDRESS);
const keyringMode = desktopKeychain ? 'the session keychain' : "orch up's own keyring (headless)";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

interface Setup {
  label: string;
  repo: string;
  env: NodeJS.ProcessEnv;
}

/** One `orch up` until "Orch is up.", then SIGINT; returns ms to up and the timeline it printed. */
async function timeUp(s: Setup): Promise<{ ms: number; timeline: string[] }> {
  const started = performance.now();
  const child = spawn(process.execPath, [path.join(s.repo, 'bin', 'orch.mjs'), 'up', ...(s.repo === root ? ['--timings'] : [])], {
    cwd: s.repo,
    env: s.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let upAt: number | undefined;
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      if (upAt === undefined && out.includes('Orch is up.')) {
        upAt = performance.now();
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then((code) => reject(new Error(`orch up (${s.label}) exited with ${code} before it was up:\n${out}`)));
  });
  child.kill('SIGINT');
  const code = await Promise.race([exited, sleep(60_000).then(() => -1)]);
  if (code !== 0) throw new Error(`orch up (${s.label}) did not stop cleanly (${code}):\n${out}`);
  const timeline = out.split('\n').filter((l) => /^start-up timeline|^ +\d+ -> +\d+ ms/.test(l));
  return { ms: upAt! - started, timeline };
}

/** A free port of 127.0.0.1 (the OS picks it). */
function freeHttpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** `temporal server start-dev` with orch up's flags, from spawn until its gRPC answers; then stopped. */
async function timeDevServer(cliPath: string, env: NodeJS.ProcessEnv, home: string): Promise<number> {
  const port = Number(env.ORCH_TEMPORAL_PORT);
  const args = devServerArgs({
    ip: '127.0.0.1',
    port,
    uiPort: Number(env.ORCH_TEMPORAL_UI_PORT),
    // orch up asks for the HTTP API on a free port (run-transport.ts): any free port will do here.
    httpPort: await freeHttpPort(),
    namespace: 'default',
    searchAttributes: SEARCH_ATTRIBUTE_TYPES,
    dbFile: temporalDbFile(home),
    // The codec server's endpoint is only handed to the UI (the browser calls it): a same-shape URL will do.
    uiCodecEndpoint: 'http://127.0.0.1:1/codec',
  });
  const started = performance.now();
  const child = spawn(cliPath, args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let ms: number | undefined;
  try {
    for (let i = 0; i < 6000 && ms === undefined; i++) {
      let conn: Connection | undefined;
      try {
        conn = await Connection.connect({ address: `127.0.0.1:${port}`, connectTimeout: 1000 });
        await conn.workflowService.getSystemInfo({});
        ms = performance.now() - started;
      } catch {
        await sleep(10);
      } finally {
        await conn?.close().catch(() => undefined);
      }
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  if (ms === undefined) throw new Error('the dev server alone never answered');
  return ms;
}

async function main(): Promise<void> {
  const cli = await resolveTemporalCli({ log: say });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-bench-up-'));
  const ports = { ORCH_TEMPORAL_PORT: String(await freePort()), ORCH_TEMPORAL_UI_PORT: String(await freePort()), ORCH_RELAY_PORT: String(await freePort()) };
  const envFor = (home: string): NodeJS.ProcessEnv => ({
    ...baseEnv,
    ...ports,
    ORCH_HOME: home,
    TEMPORAL_ADDRESS: '',
    ...(desktopKeychain ? {} : { DBUS_SESSION_BUS_ADDRESS: '', ORCH_KEYRING_PASSWORD: 'bench-up' }),
  });
  const setups: Setup[] = [{ label: 'this checkout', repo: root, env: envFor(path.join(work, 'home')) }];
  if (values.also) setups.push({ label: path.resolve(values.also), repo: path.resolve(values.also), env: envFor(path.join(work, 'home-also')) });
  try {
    for (const s of setups) {
      say(`warm-up: the first orch up of ${s.label} (identity, tenant, caches)…`);
      const first = await timeUp(s);
      say(`  first start: ${(first.ms / 1000).toFixed(2)} s`);
    }
    const ups = setups.map(() => [] as number[]);
    const alone: number[] = [];
    let lastTimeline: string[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      for (const [j, s] of setups.entries()) {
        const r = await timeUp(s);
        ups[j]!.push(r.ms);
        if (j === 0) lastTimeline = r.timeline;
        say(`sample ${i + 1}: orch up (${s.label}) ${(r.ms / 1000).toFixed(2)} s`);
      }
      const d = await timeDevServer(cli.path, setups[0]!.env, setups[0]!.env.ORCH_HOME!);
      alone.push(d);
      say(`sample ${i + 1}: dev server alone ${(d / 1000).toFixed(2)} s`);
    }
    say('');
    say(`the last sample's timeline (this checkout):`);
    for (const l of lastTimeline) say(l);
    const base = median(alone) / 1000;
    for (const [j, s] of setups.entries()) {
      const m = median(ups[j]!) / 1000;
      const figure = j === 0 ? `orch up to "Orch is up", cached (${keyringMode})` : `orch up of ${path.basename(s.repo)}, cached (${keyringMode})`;
      benchRow({ bench: 'up', figure, value: m, unit: 's', baseline: '`temporal server start-dev` alone, same flags, to gRPC', baselineValue: base, ratio: m / base, goal: '<= 2x' });
      say(`${figure}: median ${m.toFixed(2)} s of ${SAMPLES} (${ups[j]!.map((x) => (x / 1000).toFixed(2)).join(', ')}); dev server alone ${base.toFixed(2)} s; ${(m / base).toFixed(2)}x`);
    }
    say(`dev server alone: ${alone.map((x) => (x / 1000).toFixed(2)).join(', ')} s`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
