/**
 * The Go agent against the last TypeScript agent, side by side in one run (issue 12's benchmarks):
 *
 *   npm run bench:agent [-- --rate 100 --seconds 10 --round-trips 300 --starts 5]
 *
 * - the TypeScript agent is taken from git history (`git archive` of the last commit that had agent/main.ts, or
 *   ORCH_BENCH_TS_COMMIT) into a temporary directory, with this checkout's node_modules symlinked, and run with
 *   `node bin/orch-agent.mjs` as it was; the Go agent is infra/agent-binary.ts's build of agent/ (or ORCH_AGENT_BIN);
 * - start to ready: `run --stdio` until the `ready` log line (median of --starts); start to connected: `run` against
 *   a real relay (bin/orch-relay.mjs --open, its own process) until `ready`, which both agents log after the login;
 * - idle RSS: VmRSS of the agent process 3 s after it connected to the relay;
 * - RSS under load: `run --stdio` fed sealed `echo` commands at --rate per second for --seconds (each a new command
 *   id, so each spawns a process); the peak and median VmRSS sampled every 100 ms, and how many results came back;
 * - sealed round trip: a sealed ping from a desktop (protocol/relay-client.ts, this process) through the relay to
 *   the agent and its sealed pong back, one at a time (p50, p95);
 * - size: the Go binary against what the TypeScript agent needs on a server (node + node_modules).
 * The agents run one after the other (never together) and alternate where a measurement repeats; desktop, relay
 * and agent share this machine's cores, so absolute numbers are loopback numbers.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveAgentBinary } from '../infra/agent-binary';
import type { AgentMessage } from '../protocol/agent-messages';
import { keyToHex } from '../protocol/envelope';
import { ed25519KeyPair, x25519KeyPair } from '../protocol/primitives';
import { RelayClient } from '../protocol/relay-client';
import { EnvelopeDesktop, type Peer } from '../test/support/envelope-desktop';
import { relayStarted } from '../test/support/relay-process';
import { benchArgs } from './args';
import { benchRow } from './report';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts, count } = benchArgs(
  `
npm run bench:agent [-- OPTIONS]   the Go agent vs the last TypeScript agent from git history (asserts nothing)

  --rate N          sealed commands per second in the RSS-under-load figure (default 100)
  --seconds S       how long that load runs (default 10)
  --round-trips N   sealed pings through the relay (default 300)
  --starts N        start-to-ready samples (default 5)
`,
  {
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '10' },
    'round-trips': { type: 'string', default: '300' },
    starts: { type: 'string', default: '5' },
  },
);
const RATE = count(opts.rate, '--rate');
const SECONDS = count(opts.seconds, '--seconds');
const ROUND_TRIPS = count(opts['round-trips'], '--round-trips');
const STARTS = count(opts.starts, '--starts');
const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);

interface Agent {
  name: 'go' | 'ts';
  cmd: string;
  pre: string[];
}

/** The last commit whose tree still has the TypeScript agent. */
function tsAgentCommit(): string {
  const explicit = process.env.ORCH_BENCH_TS_COMMIT;
  if (explicit) return explicit;
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  const last = git('rev-list', '-1', 'HEAD', '--', 'agent/main.ts');
  if (!last) throw new Error('no commit in history has agent/main.ts; set ORCH_BENCH_TS_COMMIT');
  const has = (c: string) => {
    try {
      git('cat-file', '-e', `${c}:agent/main.ts`);
      return true;
    } catch {
      return false;
    }
  };
  return has(last) ? last : git('rev-parse', `${last}^`);
}

function extractTsAgent(commit: string, into: string): string {
  const dir = path.join(into, 'ts-agent');
  fs.mkdirSync(dir);
  const tar = execFileSync('git', ['archive', '--format=tar', commit], { cwd: ROOT, maxBuffer: 1 << 30 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

function run(agent: Agent, args: string[], stdin: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
  return spawn(agent.cmd, [...agent.pre, ...args], { stdio: [stdin, 'pipe', 'pipe'] });
}

function runToEnd(agent: Agent, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = run(agent, args);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${agent.name} ${args[0]} exited ${code}: ${err}`))));
  });
}

/** Resolves with the time from spawn to the `ready` log line. */
function untilReady(child: ChildProcess, started: number, timeoutMs = 60_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`agent not ready after ${timeoutMs} ms:\n${err}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('"event":"ready"')) {
        clearTimeout(timer);
        resolve(performance.now() - started);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited ${code} before ready:\n${err}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
}

function duBytes(p: string): number {
  try {
    return Number(execFileSync('du', ['-sbL', p], { encoding: 'utf8' }).split('\t')[0]);
  } catch {
    return NaN;
  }
}

interface Enrolled {
  stateDir: string;
  desktop: EnvelopeDesktop;
}

async function enroll(agent: Agent, work: string, relay: { url: string; pin: string }, allow: string): Promise<Enrolled> {
  const stateDir = path.join(work, `state-${agent.name}`);
  const me: Peer = { sign: ed25519KeyPair(), box: x25519KeyPair() };
  const out = await runToEnd(agent, ['enroll', '--relay', relay.url, '--relay-pin', relay.pin, '--desktop', keyToHex(me.sign.publicKey), '--desktop-box-key', keyToHex(me.box.publicKey), '--tier', 'infrastructure', '--allow', allow, '--state-dir', stateDir, '--json']);
  const keys = JSON.parse(out) as { signKey: string; boxKey: string };
  return { stateDir, desktop: new EnvelopeDesktop(me, Buffer.from(keys.signKey, 'hex'), Buffer.from(keys.boxKey, 'hex')) };
}

async function startRelay(work: string): Promise<{ url: string; pin: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/orch-relay.mjs'), 'start', '--host', '127.0.0.1', '--port', '0', '--open', '--data-dir', path.join(work, 'relay'),
    '--ip-login-rate', '1000', '--ip-login-burst', '1000', '--rate-per-second', '100000', '--rate-burst', '100000', '--metrics-listen', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const started = await relayStarted(child, 'the relay', 30_000);
  return { url: started.url, pin: started.pin, child };
}

interface Figures {
  readyStdioMs: number;
  readyRelayMs: number;
  idleRssKiB: number;
  loadPeakRssKiB: number;
  loadMedianRssKiB: number;
  loadResults: number;
  loadSent: number;
  loadP50Ms: number;
  rtP50Ms: number;
  rtP95Ms: number;
}

async function startToReady(agent: Agent, e: Enrolled, relayMode: boolean): Promise<number> {
  const started = performance.now();
  const child = run(agent, relayMode ? ['run', '--state-dir', e.stateDir] : ['run', '--stdio', '--state-dir', e.stateDir], relayMode ? 'ignore' : 'pipe');
  try {
    return await untilReady(child, started);
  } finally {
    await stop(child);
  }
}

/** Idle RSS and the sealed ping round trip, with the agent connected to the relay. */
async function throughRelay(agent: Agent, e: Enrolled, relay: { url: string; pin: string }): Promise<{ idle: number; rts: number[] }> {
  const child = run(agent, ['run', '--state-dir', e.stateDir]);
  await untilReady(child, performance.now());
  await new Promise((r) => setTimeout(r, 3000));
  const idle = rssKiB(child.pid!);
  const inbox: Buffer[] = [];
  let wake: (() => void) | undefined;
  const client = new RelayClient({
    url: relay.url,
    pin: relay.pin,
    identity: e.desktop.me.sign,
    onEnvelope: (wire) => {
      inbox.push(wire);
      wake?.();
    },
  });
  await client.start();
  const next = async (): Promise<AgentMessage> => {
    const end = Date.now() + 10_000;
    while (inbox.length === 0) {
      if (Date.now() > end) throw new Error(`${agent.name}: no pong through the relay`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    return e.desktop.open(inbox.shift()!);
  };
  const rts: number[] = [];
  try {
    for (let i = 0; i < ROUND_TRIPS + 20; i++) {
      const t0 = performance.now();
      await client.send(e.desktop.seal({ kind: 'ping', nonce: `n${i}` }));
      const m = await next();
      if (m.kind !== 'pong') throw new Error(`${agent.name}: expected a pong, got ${m.kind}`);
      if (i >= 20) rts.push(performance.now() - t0); // the first 20 warm up
    }
  } finally {
    await client.close();
    await stop(child);
  }
  return { idle, rts };
}

/** `run --stdio` fed sealed commands at RATE per second for SECONDS; RSS sampled every 100 ms. */
async function underLoad(agent: Agent, e: Enrolled): Promise<{ peak: number; med: number; results: number; sent: number; p50: number }> {
  const child = run(agent, ['run', '--stdio', '--state-dir', e.stateDir], 'pipe');
  await untilReady(child, performance.now());
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let results = 0;
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const m = e.desktop.open(Buffer.from(line, 'base64'));
      if (m.kind === 'result' && m.status === 'finished') {
        results++;
        const t = sentAt.get(m.commandId);
        if (t !== undefined) latencies.push(performance.now() - t);
      }
    }
  });
  const samples: number[] = [];
  const sampler = setInterval(() => {
    try {
      samples.push(rssKiB(child.pid!));
    } catch {
      // exited
    }
  }, 100);
  const total = RATE * SECONDS;
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const id = `bench/${agent.name}/${i}`;
    sentAt.set(id, performance.now());
    child.stdin!.write(`${e.desktop.seal({ kind: 'command', commandId: id, argv: ['echo', `n${i}`], timeoutSeconds: 30 }).toString('base64')}\n`);
  }
  const end = Date.now() + 30_000;
  while (results < total && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  clearInterval(sampler);
  await stop(child);
  return { peak: Math.max(...samples), med: median(samples), results, sent: total, p50: median(latencies) };
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-agent-bench-'));
  let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
  try {
    const goBin = await resolveAgentBinary({ log: say });
    const commit = tsAgentCommit();
    say(`TypeScript agent from ${commit.slice(0, 12)} (git archive into ${work})`);
    const tsDir = extractTsAgent(commit, work);
    const agents: Agent[] = [
      { name: 'go', cmd: goBin, pre: [] },
      { name: 'ts', cmd: process.execPath, pre: [path.join(tsDir, 'bin/orch-agent.mjs')] },
    ];
    const allow = path.join(work, 'allow.yaml');
    fs.writeFileSync(allow, 'version: 1\ncommands:\n  - executable: echo\n    rest: any\n', { mode: 0o600 });
    relay = await startRelay(work);
    say(`relay at ${relay.url}`);
    const enrolled = new Map<string, Enrolled>();
    for (const a of agents) enrolled.set(a.name, await enroll(a, work, relay, allow));

    const figures = new Map<string, Partial<Figures>>(agents.map((a) => [a.name, {}]));
    const stdioStarts = new Map<string, number[]>(agents.map((a) => [a.name, []]));
    const relayStarts = new Map<string, number[]>(agents.map((a) => [a.name, []]));
    say(`start to ready, ${STARTS} times each (alternating)`);
    for (let i = 0; i < STARTS; i++) {
      for (const a of agents) {
        stdioStarts.get(a.name)!.push(await startToReady(a, enrolled.get(a.name)!, false));
        relayStarts.get(a.name)!.push(await startToReady(a, enrolled.get(a.name)!, true));
      }
    }
    for (const a of agents) {
      const f = figures.get(a.name)!;
      f.readyStdioMs = median(stdioStarts.get(a.name)!);
      f.readyRelayMs = median(relayStarts.get(a.name)!);
      say(`${a.name}: idle RSS and ${ROUND_TRIPS} sealed round trips through the relay`);
      const r = await throughRelay(a, enrolled.get(a.name)!, relay);
      f.idleRssKiB = r.idle;
      f.rtP50Ms = pct(r.rts, 50);
      f.rtP95Ms = pct(r.rts, 95);
    }
    for (const a of agents) {
      say(`${a.name}: ${RATE} commands/s for ${SECONDS} s over run --stdio`);
      const l = await underLoad(a, enrolled.get(a.name)!);
      Object.assign(figures.get(a.name)!, { loadPeakRssKiB: l.peak, loadMedianRssKiB: l.med, loadResults: l.results, loadSent: l.sent, loadP50Ms: l.p50 });
    }

    const go = figures.get('go') as Figures;
    const ts = figures.get('ts') as Figures;
    const goSize = fs.statSync(goBin).size;
    const nodeSize = fs.statSync(process.execPath).size;
    const modulesSize = duBytes(path.join(ROOT, 'node_modules'));
    const mib = (b: number) => `${(b / (1024 * 1024)).toFixed(1)} MiB`;
    const kib = (k: number) => `${(k / 1024).toFixed(1)} MiB`;
    const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;
    const ratio = (t: number, g: number) => `${(t / g).toFixed(1)}x`;
    const rows: Array<[string, string, string, string]> = [
      ['idle RSS (connected to the relay)', kib(go.idleRssKiB), kib(ts.idleRssKiB), ratio(ts.idleRssKiB, go.idleRssKiB)],
      [`peak RSS at ${RATE} commands/s (stdio)`, kib(go.loadPeakRssKiB), kib(ts.loadPeakRssKiB), ratio(ts.loadPeakRssKiB, go.loadPeakRssKiB)],
      [`median RSS at ${RATE} commands/s`, kib(go.loadMedianRssKiB), kib(ts.loadMedianRssKiB), ratio(ts.loadMedianRssKiB, go.loadMedianRssKiB)],
      ['  results back / sent', `${go.loadResults}/${go.loadSent}`, `${ts.loadResults}/${ts.loadSent}`, ''],
      ['  command latency p50 under load', ms(go.loadP50Ms), ms(ts.loadP50Ms), ratio(ts.loadP50Ms, go.loadP50Ms)],
      ['start to ready (run --stdio), median', ms(go.readyStdioMs), ms(ts.readyStdioMs), ratio(ts.readyStdioMs, go.readyStdioMs)],
      ['start to connected (run, relay), median', ms(go.readyRelayMs), ms(ts.readyRelayMs), ratio(ts.readyRelayMs, go.readyRelayMs)],
      ['sealed ping round trip via relay, p50', ms(go.rtP50Ms), ms(ts.rtP50Ms), ratio(ts.rtP50Ms, go.rtP50Ms)],
      ['sealed ping round trip via relay, p95', ms(go.rtP95Ms), ms(ts.rtP95Ms), ratio(ts.rtP95Ms, go.rtP95Ms)],
      ['size on a server', `${mib(goSize)} (one file)`, `${mib(nodeSize + modulesSize)} (node ${mib(nodeSize)} + node_modules ${mib(modulesSize)})`, ratio(nodeSize + modulesSize, goSize)],
    ];
    const rowOf = (figure: string, unit: string, g: number, t: number) =>
      benchRow({ bench: 'agent', figure: `${figure}, Go agent`, value: g, unit, baseline: 'the TypeScript agent', baselineValue: t, ratio: g / t });
    rowOf('idle RSS', 'MiB', go.idleRssKiB / 1024, ts.idleRssKiB / 1024);
    rowOf(`peak RSS at ${RATE} commands/s`, 'MiB', go.loadPeakRssKiB / 1024, ts.loadPeakRssKiB / 1024);
    rowOf('start to connected (relay)', 'ms', go.readyRelayMs, ts.readyRelayMs);
    rowOf('sealed ping round trip p50', 'ms', go.rtP50Ms, ts.rtP50Ms);
    const head: [string, string, string, string] = ['', 'Go agent', 'TypeScript agent', 'TS / Go'];
    const widths = [0, 1, 2, 3].map((i) => Math.max(...[head, ...rows].map((r) => r[i]!.length)));
    const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    process.stdout.write(`\nOrch agent: Go (${path.basename(goBin)}, ${os.arch()}) vs TypeScript (node ${process.version}, commit ${commit.slice(0, 12)}), ${os.cpus().length} cores\n`);
    process.stdout.write(`${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}\n`);
    process.stdout.write(`(ratios above 1.0x favour the Go agent; the round trip includes the desktop's seal and open in this process)\n`);
  } finally {
    if (relay) await stop(relay.child);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:agent failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
