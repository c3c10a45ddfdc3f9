/**
 * The real programs of a multi-host test, started inside hosts of a test network (test/support/netns.ts) the way
 * the README tells a user to run them: `orch-relay start` on the relay's host, `orch-agent enroll` and `orch-agent
 * run` on each agent's host, and `orch ...` on the desktop side (in this process, with ORCH_HOME set). Shared by
 * test/integration/multihost*.test.ts and bench/fleet.bench.ts.
 *
 * @example
 * const relay = await startRelayIn(net, relayHost, { dataDir, adminKey: keyToHex(desktop.sign.publicKey) });
 * await enrollAgentIn(net, agentHost, { stateDir, relay, desktop, allow });
 * const agent = await startAgentIn(net, agentHost, stateDir);
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main as orchMain } from '../../desktop-worker/cli';
import { keyToHex } from '../../protocol/envelope';
import type { BoxKeyPair, SignKeyPair } from '../../protocol/primitives';
import { agentBinary } from './agent-binary';
import { relayStarted } from './relay-process';
import type { NetHost, TestNetwork } from './netns';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const RELAY_BIN = path.join(ROOT, 'bin/orch-relay.mjs');
export const RELAY_PORT = 7443;

export interface RunningRelay {
  host: NetHost;
  child: ChildProcess;
  url: string;
  pin: string;
  /** Where /healthz and /metrics listen, on the relay host's own loopback. */
  metricsUrl: string | undefined;
  dataDir: string;
  /** Everything it printed so far (JSON log lines). */
  log: () => string;
}

export interface RunningAgent {
  host: NetHost;
  stateDir: string;
  child: ChildProcess;
  log: () => string;
}

export interface Desktop {
  sign: SignKeyPair;
  box: BoxKeyPair;
}

/** Polls `check` every 100 ms until it returns a value other than undefined/false; throws after `ms`. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
      // A child that exited is not going to change its mind.
      if (err instanceof Error && /exited/.test(err.message)) throw err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `orch ...` in this process, as the operator types it, with ORCH_HOME pointing at `home`. */
export async function orchAt(home: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const saved = process.env.ORCH_HOME;
  process.env.ORCH_HOME = home;
  try {
    const code = await orchMain(argv, { log: (l) => (stdout += `${l}\n`), err: (l) => (stderr += `${l}\n`) });
    return { code, stdout, stderr };
  } finally {
    if (saved === undefined) delete process.env.ORCH_HOME;
    else process.env.ORCH_HOME = saved;
  }
}

/**
 * `orch-relay start` inside `host`, bound to the host's address; resolves with the URL and pin it prints. With the
 * same `dataDir` again it is the same relay restarted: same certificate (pin), admin and allowed keys.
 */
export async function startRelayIn(
  network: TestNetwork,
  host: NetHost,
  opts: { dataDir: string; adminKey?: string; open?: boolean; port?: number; args?: string[] },
): Promise<RunningRelay> {
  const args = ['start', '--host', host.ip, '--port', String(opts.port ?? RELAY_PORT), '--data-dir', opts.dataDir];
  if (opts.adminKey) args.push('--admin-key', opts.adminKey);
  if (opts.open) args.push('--open');
  args.push(...(opts.args ?? []));
  const child = network.spawn(host, process.execPath, [RELAY_BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const started = await relayStarted(child, `the relay in ${host.name}`);
  return { host, child, url: started.url, pin: started.pin, metricsUrl: started.metricsUrl, dataDir: opts.dataDir, log: started.output };
}

/** `orch-agent enroll` inside the agent's host, with `stateDir` as its state directory: its keys. */
export async function enrollAgentIn(
  network: TestNetwork,
  host: NetHost,
  opts: { stateDir: string; relay: { url: string; pin: string }; desktop: Desktop; allow: string; tier?: string },
): Promise<{ signKey: string; boxKey: string }> {
  const enrolled = await network.run(host, agentBinary(), [
    'enroll', '--relay', opts.relay.url, '--relay-pin', opts.relay.pin,
    '--desktop', keyToHex(opts.desktop.sign.publicKey), '--desktop-box-key', keyToHex(opts.desktop.box.publicKey),
    '--tier', opts.tier ?? 'infrastructure', '--allow', opts.allow, '--state-dir', opts.stateDir, '--json',
  ]);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  return JSON.parse(enrolled.stdout) as { signKey: string; boxKey: string };
}

/** `orch-agent run` inside the agent's host; resolves once it logged in to its relay (`wait: false`: at once). */
export async function startAgentIn(network: TestNetwork, host: NetHost, stateDir: string, opts: { wait?: boolean } = {}): Promise<RunningAgent> {
  const child = network.spawn(host, agentBinary(), ['run', '--state-dir', stateDir], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const agent = { host, stateDir, child, log: () => log };
  if (opts.wait !== false) await agentReady(agent);
  return agent;
}

/** Resolves once the agent has logged in to its relay. */
export async function agentReady(agent: RunningAgent, ms = 60_000): Promise<void> {
  await waitFor(() => {
    if (agent.child.exitCode !== null) throw new Error(`orch-agent in ${agent.host.name} exited ${agent.child.exitCode}:\n${agent.log()}`);
    return agent.log().includes('"event":"ready"');
  }, ms, `the agent in ${agent.host.name} to log in to its relay`);
}

/** How many times the agent's log has an event of this name (`relay_connected`, `relay_disconnected`, ...). */
export function countEvents(log: string, event: string): number {
  return log.split('\n').filter((l) => l.includes(`"event":"${event}"`)).length;
}

/** `orch-agent status --json` of a running agent, read inside its host. */
export async function agentStatus(network: TestNetwork, agent: RunningAgent): Promise<Record<string, unknown>> {
  const r = await network.run(agent.host, agentBinary(), ['status', '--state-dir', agent.stateDir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Resident set size (VmRSS) and its peak (VmHWM) of a process, in bytes, from /proc/PID/status. */
export function processMemory(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** An allowlist that lets exactly this script run with arguments of [a-z0-9-]. */
export function scriptAllowlist(file: string, script: string): string {
  fs.writeFileSync(file, `version: 1\ntier: infrastructure\ncommands:\n  - executable: ${script}\n    rest: { regex: '[a-z0-9-]+' }\n`);
  return file;
}
