/**
 * Exactly-once commands across real crashes (issue 3): a real dev server, a real relay over TLS, a real agent
 * process running a real script, and the Orch worker as `orch up` builds it but in a process of its own.
 *
 * - The worker is SIGKILLed after the agent started the command and before the activity completed: the retried
 *   activity (on a new worker process) gets the agent's stored result, and the script ran once.
 * - The agent is SIGKILLed while the script runs: the restarted agent answers the retry `indeterminate`
 *   (non-retryable), the run fails with that type, and the script was not started again.
 *
 * The trace the script leaves (one line per start, in a file outside the agent's reach to rewrite) is what
 * counts the runs; the agent's own counters and the activity's attempt number in the history back it up.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from '../support/assert';
import { agentBinary } from '../support/agent-binary';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { AgentRegistry } from '../../desktop-worker/agent-registry';
import { addApprover } from '../../desktop-worker/approvers';
import { startDevServer, type DevServer } from '../../desktop-worker/dev-server';
import { loadOrCreateDesktopIdentity, removeDesktopIdentity, type DesktopIdentity } from '../../desktop-worker/identity';
import { openTenantStore } from '../../desktop-worker/tenant-access';
import { keyToHex } from '../../protocol/envelope';
import { startRelay, type RunningRelay } from '../../relay/main';
import { SEARCH_ATTRIBUTE_TYPES, type RunResult } from '../../workflows/shared';
import { approveGate, gateCommands, TestApprover } from '../support/approval';
import { eventually, suiteEnv, uid } from '../support/harness';
import { startProcess, type Proc } from '../support/processes';

const AGENT_BIN = agentBinary();
const AGENT = 'box-1';
const TENANT = 'wk';
/** The script's timeout: with the short result grace below, a dead agent's silence is noticed in ~7 s. */
const COMMAND_TIMEOUT_S = 5;
const RESULT_GRACE_MS = 2_000;

let dir: string;
let home: string;
let agentState: string;
let script: string;
let traceFile: string;
let server: DevServer;
let relay: RunningRelay;
let identity: DesktopIdentity;
let connection: Connection;
let client: Client;
const service = uid('orch-test-worker-kill');
const approver = new TestApprover();
const workers: Proc[] = [];
let agent: { child: ChildProcess; output: () => string } | undefined;

function agentCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(AGENT_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** `orch-agent run`, ready once it logged in to the relay. */
async function startAgent(): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(AGENT_BIN, ['run', '--state-dir', agentState], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await eventually(async () => out.includes('"event":"ready"') || child.exitCode !== null, 30_000, 'the agent to log in to the relay');
  assert.equal(child.exitCode, null, `the agent exited:\n${out}`);
  return { child, output: () => out };
}

function sigkill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

async function startWorker(taskQueue: string): Promise<Proc> {
  const p = await startProcess(
    ['test/support/worker-with-agents.ts', server.address, taskQueue, home, suiteEnv().bundlePath, relay.url, relay.pin, String(RESULT_GRACE_MS)],
    /worker ready/,
  );
  workers.push(p);
  return p;
}

/** The lines the script wrote for `marker`: one per time it was started. */
function starts(marker: string): string[] {
  if (!fs.existsSync(traceFile)) return [];
  return fs.readFileSync(traceFile, 'utf8').split('\n').filter((l) => l.startsWith(`start ${marker} `));
}

function ends(marker: string): string[] {
  if (!fs.existsSync(traceFile)) return [];
  return fs.readFileSync(traceFile, 'utf8').split('\n').filter((l) => l.startsWith(`end ${marker} `));
}

async function agentCounters(): Promise<Record<string, number>> {
  const s = await agentCli(['status', '--state-dir', agentState, '--json']);
  assert.equal(s.code, 0, s.stderr);
  return JSON.parse(s.stdout).counters as Record<string, number>;
}

// The script changes the server, so the infrastructure agent runs it only with a signed approval: a gate releases
// it, approved by the test's approver (in the tenant's approver list) right after the start.
const oneCommandDag = (marker: string) =>
  gateCommands({
    name: 'slow-step',
    version: 1,
    cost_cap_usd: 1,
    nodes: [{ id: 'step', type: 'command', agent: AGENT, argv: [script, marker], timeout_seconds: COMMAND_TIMEOUT_S }],
  });

/** Attempt numbers of the runCommand activity's started events (the last one is the attempt that completed). */
async function runCommandAttempts(workflowId: string): Promise<number[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, string>();
  const attempts: number[] = [];
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '');
    const started = e.activityTaskStartedEventAttributes;
    if (started && scheduled.get(String(started.scheduledEventId)) === 'runCommand') attempts.push(started.attempt ?? 0);
  }
  return attempts;
}

beforeAll(async () => {
  const cliPath = process.env.ORCH_TEMPORAL_CLI;
  assert.ok(cliPath, 'ORCH_TEMPORAL_CLI is set by test/run.ts');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-worker-kill-'));
  home = path.join(dir, 'home');
  agentState = path.join(dir, 'agent');
  traceFile = path.join(dir, 'trace.log');
  // An infrastructure-tier script by absolute path: one trace line when it starts, 3 s of work, one when it ends.
  script = path.join(dir, 'slow-step.sh');
  fs.writeFileSync(script, `#!/bin/sh\necho "start $1 $$" >> '${traceFile}'\nsleep 3\necho "end $1 $$" >> '${traceFile}'\necho "done $1"\n`, { mode: 0o700 });
  const allow = path.join(dir, 'allow.yaml');
  fs.writeFileSync(allow, `version: 1\ntier: infrastructure\ncommands:\n  - executable: ${script}\n    rest: { regex: '[a-z0-9-]+' }\n`);

  [server, relay] = await Promise.all([
    startDevServer({ cliPath, dbFile: path.join(dir, 'temporal.db'), port: 0, headless: true, searchAttributes: SEARCH_ATTRIBUTE_TYPES, logFile: path.join(dir, 'temporal.log') }),
    startRelay({ host: '127.0.0.1', port: 0, dataDir: path.join(dir, 'relay'), log: () => {} }),
  ]);

  // The desktop identity in the (test's own) OS keychain, the tenant, and the agent enrolled both ways.
  identity = await loadOrCreateDesktopIdentity({ home, service });
  const store = await openTenantStore(home);
  store.create(TENANT, 'tester');
  addApprover(TENANT, 'tester', approver.keyHex, { store, actor: 'test' });
  store.close();
  const enrolled = await agentCli([
    'enroll', '--state-dir', agentState, '--relay', relay.url, '--relay-pin', relay.pin,
    '--desktop', keyToHex(identity.sign.publicKey), '--desktop-box-key', keyToHex(identity.box.publicKey),
    '--tier', 'infrastructure', '--allow', allow, '--json',
  ]);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  const keys = JSON.parse(enrolled.stdout) as { signKey: string; boxKey: string };
  const registry = AgentRegistry.open(home);
  registry.add({ name: AGENT, signKeyHex: keys.signKey, boxKeyHex: keys.boxKey, tier: 'infrastructure', allowlist: fs.readFileSync(allow, 'utf8') });
  registry.close();
  agent = await startAgent();

  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection });
});

afterAll(async () => {
  for (const w of workers) await w.kill();
  if (agent) await sigkill(agent.child);
  await connection?.close();
  await relay?.stop();
  await server?.stop();
  await removeDesktopIdentity({ home, service }).catch(() => {});
  // The orphaned script of the killed agent may still be sleeping; it only appends to the trace file.
  fs.rmSync(dir, { recursive: true, force: true });
});

test('worker SIGKILLed while the agent runs the command: the retry gets the stored result, the command ran once', async () => {
  const taskQueue = uid('wk-tq');
  const marker = uid('once');
  const first = await startWorker(taskQueue);
  const workflowId = uid('worker-kill');
  const handle = await client.workflow.start('runDag', { taskQueue, workflowId, args: [{ tenant: TENANT, dag: oneCommandDag(marker) }] });
  await approveGate(handle, { tenant: TENANT, approver });

  await eventually(async () => starts(marker).length > 0, 30_000, 'the agent to start the script');
  await first.kill('SIGKILL');
  // Killed before the activity could complete: the script still sleeps, and the run has no result.
  assert.equal((await handle.describe()).status.name, 'RUNNING');
  assert.equal(ends(marker).length, 0, 'killed while the command still ran');

  await startWorker(taskQueue);
  const result = (await handle.result()) as RunResult;
  assert.equal(result.state, 'succeeded');
  assert.equal(result.outputs.step, `done ${marker}\n`, 'the output is what the single run printed');
  assert.equal(starts(marker).length, 1, `the script ran once:\n${fs.readFileSync(traceFile, 'utf8')}`);
  assert.equal(ends(marker).length, 1);

  const attempts = await runCommandAttempts(workflowId);
  assert.ok(attempts.length === 1 && attempts[0]! >= 2, `the result came from a retried attempt (${JSON.stringify(attempts)})`);
  const counters = await agentCounters();
  assert.equal(counters['commands.run'], 1, JSON.stringify(counters));
  assert.ok((counters['commands.duplicate'] ?? 0) >= 1, `the agent answered the retry from its ledger: ${JSON.stringify(counters)}`);
});

test('agent SIGKILLed mid-command: the retry is answered indeterminate, the run fails with that type, nothing runs twice', async () => {
  const taskQueue = uid('ak-tq');
  const marker = uid('twice');
  await startWorker(taskQueue);
  const before = await agentCounters();
  const workflowId = uid('agent-kill');
  const handle = await client.workflow.start('runDag', { taskQueue, workflowId, args: [{ tenant: TENANT, dag: oneCommandDag(marker) }] });
  await approveGate(handle, { tenant: TENANT, approver });

  await eventually(async () => starts(marker).length > 0, 30_000, 'the agent to start the script');
  const killed = agent!;
  await sigkill(killed.child);
  assert.equal(ends(marker).length, 0, 'killed while the command still ran');
  const restarted = await startAgent();
  agent = restarted;

  const failure = await handle.result().then(
    () => assert.fail('the run must not succeed'),
    (err: unknown) => err,
  );
  assert.ok(failure instanceof WorkflowFailedError, String(failure));
  assert.equal((failure.cause as { type?: string } | undefined)?.type, 'indeterminate', String(failure.cause));
  assert.equal(starts(marker).length, 1, `the script was not started again:\n${fs.readFileSync(traceFile, 'utf8')}`);

  const attempts = await runCommandAttempts(workflowId);
  assert.ok(attempts.length === 1 && attempts[0]! >= 2, `the indeterminate answer came to a retried attempt (${JSON.stringify(attempts)})`);
  const startedIn = (log: string) => log.split('\n').filter((l) => l.includes('"event":"command_started"') && l.includes(workflowId)).length;
  assert.equal(startedIn(killed.output()), 1, 'the killed agent started it');
  assert.equal(startedIn(restarted.output()), 0, 'the restarted agent did not start it again');
  const after = await agentCounters();
  // commands.run counts commands that finished: the killed one never did, and nothing ran after the restart.
  assert.equal(after['commands.run'] ?? 0, before['commands.run'] ?? 0, JSON.stringify(after));
  assert.ok((after['commands.indeterminate'] ?? 0) > (before['commands.indeterminate'] ?? 0), JSON.stringify(after));
});
