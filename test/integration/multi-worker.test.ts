/**
 * Two workers of one cluster (issue 7, "When one machine is not enough"), every part the real program: two ORCH_HOMEs
 * standing for two worker machines, each with its own identity in its own keychain account (`orch init`), both
 * admins of one relay (`orch-relay start --admin-key A --admin-key B`), both `orch up --no-local-agent` on the same
 * Temporal task queue. One server's agent joins the first worker with `orch-agent join`, then, stopped, the second
 * with an invite from that worker: it keeps its keys and trusts both (`orch-agent status` lists them).
 *
 * A run's command is sealed by whichever worker runs its activity (the agent's log names the sender). That worker is
 * SIGKILLed while the command runs; the other worker retries the activity, and the agent answers it from its ledger,
 * sealed to the worker that asked: the script ran once and the run succeeds.
 *
 * Needs the suite's OS keychain; runs on loopback only.
 */
import { describe, test, expect, beforeAll, afterAll } from '@jest/globals';
import assert from '../support/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, freePort, suiteEnv, uid } from '../support/harness';
import { agentBinary } from '../support/agent-binary';
import { relayStarted } from '../support/relay-process';

const root = fileURLToPath(new URL('../..', import.meta.url));
const WORKERS = ['a', 'b'] as const;
type WorkerName = (typeof WORKERS)[number];
const AGENT = 'db-1';

interface Up {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number>;
}

let work: string;
let taskQueue: string;
const envs = {} as Record<WorkerName, NodeJS.ProcessEnv>;
const keys = {} as Record<WorkerName, string>;
const ups = {} as Partial<Record<WorkerName, Up>>;
let relay: ChildProcess | undefined;
let agent: { child: ChildProcess; output: () => string } | undefined;
let agentState: string;
let script: string;
let traceFile: string;
let relayUrl: string;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const orch = (w: WorkerName, args: string[]) => run(process.execPath, ['bin/orch.mjs', ...args], envs[w]);
const orchAgent = (args: string[]) => run(agentBinary(), args, process.env);

function json<T>(r: { code: number; stdout: string; stderr: string }): T {
  assert.equal(r.code, 0, r.stderr || r.stdout);
  return JSON.parse(r.stdout) as T;
}


async function startUp(w: WorkerName): Promise<Up> {
  const child = spawn(process.execPath, ['bin/orch.mjs', 'up', '--no-local-agent', '--no-demo'], { cwd: root, env: envs[w], stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  await eventually(async () => out.includes('Orch is up.') || child.exitCode !== null, 120_000, `worker ${w}'s \`orch up\` to be up`);
  assert.equal(child.exitCode, null, `orch up (${w}) exited early:\n${out}`);
  return { child, output: () => out, exited };
}

async function startAgent(): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(agentBinary(), ['run', '--state-dir', agentState], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await eventually(async () => out.includes('"event":"ready"') || child.exitCode !== null, 30_000, 'the agent to log in to the relay');
  assert.equal(child.exitCode, null, `the agent exited:\n${out}`);
  return { child, output: () => out };
}

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

function traceLines(prefix: string): string[] {
  if (!fs.existsSync(traceFile)) return [];
  return fs.readFileSync(traceFile, 'utf8').split('\n').filter((l) => l.startsWith(prefix));
}

/** The agent's log events of one kind for one command. */
function agentEvents(event: string, commandIdPart: string): Array<Record<string, unknown>> {
  return agent!
    .output()
    .split('\n')
    .filter((l) => l.includes(`"event":"${event}"`) && l.includes(commandIdPart))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function invite(w: WorkerName, allow: string, relayUrl: string, name = AGENT): Promise<string> {
  const invited = await orch(w, ['agent', 'invite', name, '--tenant', 'ops', '--tier', 'infrastructure', '--allow', allow, '--relay', 'edge', '--relay-url', relayUrl, '--json']);
  assert.equal(invited.code, 0, invited.stderr);
  return (JSON.parse(invited.stdout) as { token: string }).token;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-multi-worker-'));
  taskQueue = uid('mw');
  for (const w of WORKERS) {
    envs[w] = { ...process.env, ORCH_HOME: path.join(work, `worker-${w}`), TEMPORAL_ADDRESS: suiteEnv().address, ORCH_TASK_QUEUE: taskQueue };
  }
  agentState = path.join(work, 'agent');
  traceFile = path.join(work, 'trace.log');
  script = path.join(work, 'migrate.sh');
  fs.writeFileSync(script, `#!/bin/sh\necho "start $1 $$" >> '${traceFile}'\nsleep 6\necho "end $1 $$" >> '${traceFile}'\necho "migrated $1"\n`, { mode: 0o755 });
  const allow = path.join(work, 'allow.yaml');
  fs.writeFileSync(allow, `version: 1\ntier: infrastructure\ncommands:\n  - executable: ${script}\n    rest: { regex: '[a-z0-9-]+' }\n`);
  const dag = path.join(work, 'migrate.yaml');
  // The script changes the server, so the infrastructure agent runs it only with a signed approval: a gate
  // releases it, approved with `orch approve` by worker a's operator, an approver of tenant ops on both workers.
  fs.writeFileSync(dag, `name: migrate\nversion: 1\ncost_cap_usd: 1\nnodes:\n  - id: approve\n    type: approval_gate\n    message: migrate?\n  - id: migrate\n    type: command\n    needs: [approve]\n    agent: ${AGENT}\n    argv: [${script}, "\${params.step}"]\n    timeout_seconds: 60\nparams:\n  step: { type: string, pattern: "[a-z0-9-]{1,64}" }\n`);

  // Each worker machine: its own identity (its own keychain account), the tenant and the DAG registered there.
  for (const w of WORKERS) keys[w] = json<{ signPublicKey: string }>(await orch(w, ['init', '--json'])).signPublicKey;
  expect(keys.a).not.toBe(keys.b);
  // Workers on one task queue read each other's payloads (encrypted, desktop-worker/payload-codec.ts): b imports
  // a's payload keys, sealed to b and signed by a.
  const bBox = json<{ boxPublicKey: string }>(await orch('b', ['whoami', '--json'])).boxPublicKey;
  const exported = path.join(work, 'payload-keys.json');
  assert.equal((await orch('a', ['keys', 'export', '--to', bBox, '--out', exported])).code, 0);
  json(await orch('b', ['keys', 'import', exported, '--from', keys.a, '--json']));

  // One relay; both workers are its admins.
  const port = await freePort();
  relay = spawn(process.execPath, ['bin/orch-relay.mjs', 'start', '--host', '127.0.0.1', '--port', String(port), '--data-dir', path.join(work, 'relay'), '--admin-key', keys.a, '--admin-key', keys.b], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const started = await relayStarted(relay);
  relayUrl = started.url;

  for (const w of WORKERS) {
    assert.equal((await orch(w, ['relay', 'add', 'edge', '--url', started.url, '--pin', started.pin])).code, 0);
    assert.equal((await orch(w, ['tenant', 'create', 'ops'])).code, 0);
    // Each worker keeps its own tenant data: the same approver list on both (the agent learns it at join).
    assert.equal((await orch(w, ['approver', 'add', 'lead', '--key', keys.a, '--tenant', 'ops'])).code, 0);
  }
  [ups.a, ups.b] = await Promise.all([startUp('a'), startUp('b')]);

  // The server joins worker a, then (stopped) worker b: the same keys, one more trusted desktop.
  const first = await orchAgent(['join', '--state-dir', agentState, '--timeout', '60s', '--json', await invite('a', allow, started.url)]);
  assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}\n${ups.a.output()}`);
  const second = await orchAgent(['join', '--state-dir', agentState, '--timeout', '60s', '--json', await invite('b', allow, started.url)]);
  assert.equal(second.code, 0, `${second.stdout}\n${second.stderr}\n${ups.b.output()}`);
  assert.equal((JSON.parse(second.stdout) as { addedDesktop: string }).addedDesktop, keys.b);
  // The DAG names the agent, so each worker registers it once the agent is enrolled there.
  for (const w of WORKERS) {
    const registered = await orch(w, ['dag', 'register', dag, '--tenant', 'ops']);
    assert.equal(registered.code, 0, registered.stderr);
  }
  agent = await startAgent();
}, 400_000);

afterAll(async () => {
  for (const w of WORKERS) if (ups[w]) await stop(ups[w]!.child, 'SIGINT');
  if (agent) await stop(agent.child, 'SIGTERM');
  if (relay) await stop(relay, 'SIGTERM');
  if (work) fs.rmSync(work, { recursive: true, force: true });
}, 90_000);

describe('two workers on one task queue, one agent trusting both', () => {
  test('orch-agent status lists both workers as trusted desktops; joining the same worker again is refused', async () => {
    const status = json<{ desktop: { signKey: string }; desktops: Array<{ signKey: string }>; tenants: string[] }>(await orchAgent(['status', '--state-dir', agentState, '--json']));
    expect(status.desktops.map((d) => d.signKey)).toEqual([keys.a, keys.b]);
    expect(status.desktop.signKey).toBe(keys.a);
    expect(status.tenants).toEqual(['ops']);
    const text = await orchAgent(['status', '--state-dir', agentState]);
    expect(text.stdout).toContain(`desktop 1:   ${keys.a}`);
    expect(text.stdout).toContain(`desktop 2:   ${keys.b}`);
    // A second invite from a worker the agent already trusts is refused on the server, before anything is sent.
    const again = await orchAgent(['join', '--state-dir', agentState, '--timeout', '10s', await invite('a', path.join(work, 'allow.yaml'), relayUrl, 'db-1-again')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already trusts the desktop that made this invite');
    // Both workers see the agent online (each has its own relay session and pins the agent's keys itself).
    for (const w of WORKERS) {
      await eventually(async () => {
        const rows = json<Array<{ name: string; online: boolean }>>(await orch(w, ['agent', 'list', '--json']));
        return rows.some((r) => r.name === AGENT && r.online);
      }, 60_000, `worker ${w} to see ${AGENT} online`);
    }
  });

  test('the worker sealing a command is SIGKILLed mid-command: the other worker finishes the run, the command ran once', async () => {
    const step = uid('step').toLowerCase();
    const workflowId = uid('migrate');
    const started = await orch('a', ['run', 'migrate', '--tenant', 'ops', '--param', `step=${step}`, '--id', workflowId, '--json']);
    assert.equal(started.code, 0, started.stderr);
    const approved = await eventually(async () => {
      const r = await orch('a', ['approve', workflowId, 'approve', '--json']);
      return r.code === 0 ? r : undefined;
    }, 60_000, 'the run to wait at its gate and take the approval');
    expect(JSON.parse(approved.stdout)).toMatchObject({ verified: true });

    // The agent's log names the worker that sealed the command (the first 16 hex digits of its key).
    const received = await eventually(async () => agentEvents('command_received', workflowId)[0], 60_000, 'the command to reach the agent');
    await eventually(async () => traceLines(`start ${step} `).length > 0, 30_000, 'the script to start');
    const sender = WORKERS.find((w) => keys[w].startsWith(String(received.from)));
    assert.ok(sender, `the sender ${String(received.from)} is one of the two workers`);
    const survivor: WorkerName = sender === 'a' ? 'b' : 'a';
    await stop(ups[sender]!.child, 'SIGKILL');
    expect(traceLines(`end ${step} `)).toHaveLength(0);

    // The survivor takes over (the dead worker's heartbeat lapses after 15 s) and gets the stored result.
    const finished = await eventually(async () => {
      const s = await orch(survivor, ['status', workflowId, '--json']);
      if (s.code !== 0) return undefined;
      const st = (JSON.parse(s.stdout) as { status: { state: string; nodes: Array<{ id: string; state: string; summary?: string }> } }).status;
      return st.state === 'succeeded' || st.state === 'failed' ? st : undefined;
    }, 150_000, 'the run to finish on the surviving worker');
    expect(finished.state).toBe('succeeded');
    expect(finished.nodes.find((n) => n.id === 'migrate')?.summary).toContain(`migrated ${step}`);

    expect(traceLines(`start ${step} `)).toHaveLength(1);
    expect(traceLines(`end ${step} `)).toHaveLength(1);
    const froms = agentEvents('command_received', workflowId).map((e) => e.from);
    expect(froms[0]).toBe(keys[sender].slice(0, 16));
    expect(froms).toContain(keys[survivor].slice(0, 16));
    expect(agentEvents('command_started', workflowId)).toHaveLength(1);
    expect(agentEvents('command_duplicate', workflowId).length).toBeGreaterThanOrEqual(1);
  });
});
