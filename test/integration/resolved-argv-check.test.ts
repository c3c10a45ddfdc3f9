/**
 * The destructive check runs again in the runCommand activity on the argv with secrets resolved: a DAG whose
 * command is `sh -c ${secrets.NAME}` compiles and passes the workflow's check (the reference is not destructive),
 * but when the secret's value is `rm -rf DIR` the activity refuses it before anything is sent: the run fails with
 * destructive_without_gate naming the node, the directory is still there, no envelope reached the real Go agent,
 * and the tenant's audit log holds a command_refused row with the pattern and without the secret's value. The
 * control: the same value echoed (not run) is not destructive and reaches the agent.
 * Real dev server, worker, Go agent (over a pipe) and tenant store; the secret comes from the worker's environment
 * (the SECRET_* convention).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { startTestWorker, tempHome, uid, type TestWorker } from '../support/harness';
import { startPipeAgent, type PipeAgent } from '../support/stdio-agent';
import type { RunResult } from '../../workflows/shared';

const TENANT = 't';
const SECRET = 'SECRET_RESOLVED_ARGV_TEST';
let pipe: PipeAgent;
let w: TestWorker;
let victim: string;

beforeAll(async () => {
  const home = tempHome();
  victim = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-victim-'));
  fs.writeFileSync(path.join(victim, 'data'), 'keep me');
  pipe = await startPipeAgent({ home, tenants: [TENANT], allow: ['sh', 'echo'] });
  w = await startTestWorker({ commands: pipe.transport }, home);
});

afterAll(async () => {
  delete process.env[SECRET];
  await w?.stop();
  await pipe?.close();
  if (w) fs.rmSync(w.home, { recursive: true, force: true });
  if (victim) fs.rmSync(victim, { recursive: true, force: true });
});

const scriptDag = (name: string) => ({
  name,
  version: 1,
  cost_cap_usd: 1,
  nodes: [{ id: 'run-script', type: 'command', agent: 'web-1', argv: ['sh', '-c', `\${secrets.${SECRET}}`] }],
});

async function outcome(dag: unknown): Promise<{ result?: RunResult; failure?: ApplicationFailure }> {
  const handle = await w.client.workflow.start('runDag', { taskQueue: w.taskQueue, workflowId: uid('resolved'), args: [{ tenant: TENANT, dag, params: {} }] });
  try {
    return { result: (await handle.result()) as RunResult };
  } catch (err) {
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
    return { failure: err.cause };
  }
}

describe('the destructive check on the argv with secrets resolved', () => {
  test('the control: a secret value that only looks destructive (echoed, not run) reaches the agent', async () => {
    const marker = uid('harmless');
    process.env[SECRET] = `rm -rf ${marker}`;
    const dag = { name: 'harmless', version: 1, cost_cap_usd: 1, nodes: [{ id: 'say', type: 'command', agent: 'web-1', argv: ['echo', `\${secrets.${SECRET}}`] }] };
    const before = pipe.link.delivered.length;
    const { result, failure } = await outcome(dag);
    assert.equal(failure, undefined, failure?.message);
    assert.equal(result?.state, 'succeeded');
    assert.ok(pipe.link.delivered.length > before, 'the agent answered');
  });

  test('a secret that makes the argv `rm -rf DIR` is refused in the activity: not sent, audited, destructive_without_gate', async () => {
    process.env[SECRET] = `rm -rf ${victim}`;
    const before = pipe.link.delivered.length;
    const { failure } = await outcome(scriptDag('wipe'));
    assert.ok(failure, 'the run succeeded');
    assert.equal(failure.type, 'destructive_without_gate');
    assert.equal((failure.details?.[0] as { node?: string } | undefined)?.node, 'run-script');
    assert.ok(!failure.message.includes(victim), 'the failure shows the secret value');
    assert.ok(fs.existsSync(path.join(victim, 'data')), 'the directory was deleted');
    assert.equal(pipe.link.delivered.length, before, 'the agent answered something: the command was sent');
    const refused = [...w.store.auditLog(TENANT).rows({ action: 'command_refused' })];
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.subject, 'run-script');
    assert.equal(refused[0]!.details.pattern, 'rm-recursive-or-force');
    assert.equal(refused[0]!.details.reason, 'destructive_without_gate');
    assert.ok(!JSON.stringify(refused[0]).includes(victim), 'the audit row shows the secret value');
  });
});
