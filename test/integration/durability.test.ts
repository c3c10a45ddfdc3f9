/**
 * Durability: a run parked at a gate survives a SIGKILLed worker and a restarted dev server (same SQLite
 * database), then finishes when approved. The worker is its own process here so it can really be killed.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startDevServer, type DevServer } from '../../desktop-worker/dev-server';
import { approveSignal, pendingGatesQuery, SEARCH_ATTRIBUTE_TYPES, type RunResult } from '../../workflows/shared';
import { startFakeAnthropic, type FakeAnthropic } from '../support/anthropic';
import { eventually, suiteEnv, uid } from '../support/harness';
import { startProcess, type Proc } from '../support/processes';
import { upProcess } from '../../bin/up-process.mjs';

const cliPath = process.env.ORCH_TEMPORAL_CLI;
let dir: string;
let server: DevServer;
let anthropic: FakeAnthropic;
const procs: Proc[] = [];

async function devServer(): Promise<DevServer> {
  return startDevServer({
    cliPath: cliPath!,
    dbFile: path.join(dir, 'temporal.db'),
    port: 0,
    headless: true,
    searchAttributes: SEARCH_ATTRIBUTE_TYPES,
    logFile: path.join(dir, 'temporal.log'),
  });
}

async function worker(address: string, taskQueue: string): Promise<Proc> {
  // Started as `orch up` is (its node flags and environment).
  const up = upProcess({ ...process.env, ANTHROPIC_API_KEY: anthropic.apiKey, ANTHROPIC_BASE_URL: anthropic.baseURL });
  const p = await startProcess(['test/support/worker-process.ts', address, taskQueue, path.join(dir, 'home'), suiteEnv().bundlePath, '--tenant', 't'], /worker ready/, up.env, undefined, up.nodeFlags);
  procs.push(p);
  return p;
}

async function client(address: string): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address });
  return { client: new Client({ connection }), close: () => connection.close() };
}

const gatedDag = (marker: string) => ({
  name: 'durable',
  version: 1,
  cost_cap_usd: 1,
  nodes: [
    { id: 'before', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 20, prompt: `${marker} before` },
    { id: 'gate', type: 'approval_gate', needs: ['before'], message: 'continue?' },
    { id: 'after', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 20, needs: ['gate'], prompt: `${marker} after` },
  ],
});

beforeAll(async () => {
  assert.ok(cliPath, 'ORCH_TEMPORAL_CLI is set by test/run.ts');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-durable-'));
  anthropic = await startFakeAnthropic();
  server = await devServer();
});

afterAll(async () => {
  for (const p of procs) await p.kill();
  await server?.stop();
  await anthropic?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a run parked at a gate survives a killed worker and finishes with a new one; nothing runs twice', async () => {
  const taskQueue = uid('durable-tq');
  const marker = uid('kill-worker');
  const w1 = await worker(server.address, taskQueue);
  const { client: c, close } = await client(server.address);
  try {
    const handle = await c.workflow.start('runDag', { taskQueue, workflowId: uid('durable'), args: [{ tenant: 't', dag: gatedDag(marker) }] });
    await eventually(async () => (await handle.query(pendingGatesQuery)).length === 1, 30_000, 'the gate');
    await w1.kill('SIGKILL');
    await worker(server.address, taskQueue);
    await handle.signal(approveSignal, { gate: 'gate', decision: 'approve', approver: 'alice' });
    const result = (await handle.result()) as RunResult;
    assert.equal(result.state, 'succeeded');
    const calls = (await anthropic.messages()).filter((r) => r.prompt.includes(marker));
    assert.deepEqual(calls.map((r) => r.prompt.split(' ')[1]), ['before', 'after'], 'each Claude node called exactly once');
  } finally {
    await close();
  }
});

test('the dev server restarted on the same database still holds the parked run, which then finishes', async () => {
  const taskQueue = uid('restart-tq');
  const marker = uid('restart-server');
  let w = await worker(server.address, taskQueue);
  let conn = await client(server.address);
  const workflowId = uid('parked');
  const handle = await conn.client.workflow.start('runDag', { taskQueue, workflowId, args: [{ tenant: 't', dag: gatedDag(marker) }] });
  await eventually(async () => (await handle.query(pendingGatesQuery)).length === 1, 30_000, 'the gate');
  await conn.close();
  await w.kill('SIGKILL');
  await server.stop();

  server = await devServer();
  conn = await client(server.address);
  try {
    const parked = conn.client.workflow.getHandle(workflowId);
    assert.equal((await parked.describe()).status.name, 'RUNNING');
    w = await worker(server.address, taskQueue);
    await eventually(async () => (await parked.query(pendingGatesQuery)).length === 1, 30_000, 'the gate after restart');
    await parked.signal(approveSignal, { gate: 'gate', decision: 'approve', approver: 'alice' });
    const result = (await parked.result()) as RunResult;
    assert.equal(result.state, 'succeeded');
    const calls = (await anthropic.messages()).filter((r) => r.prompt.includes(marker));
    assert.equal(calls.length, 2);
  } finally {
    await conn.close();
  }
});
