/**
 * Hand-written workflows: text that reaches `command()` from workflow input is text, even when it reads
 * `${secrets.NAME}`; only `secret('NAME')` written in the workflow code is resolved (inside the activity) and
 * masked. Real path: a real dev server, a real worker with the Orch plugin and the tests' bundle, and a real Go
 * agent (read-only tier) over sealed envelopes, which runs `echo`: what the agent printed is what it received.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from '../support/assert';
import type { ActivityDeps } from '../../activities';
import type { SecretSource } from '../../activities/secrets';
import { eventually, startTestWorker, tempHome, uid, type TestWorker } from '../support/harness';
import { WorkflowFailedError } from '@temporalio/client';
import { approveSignal, statusQuery } from '../../workflows/shared';
import { startPipeAgent, type PipeAgent } from '../support/stdio-agent';

const TENANT = 'engine-test';
const VALUE = `value-${randomBytes(12).toString('hex')}`;
let pipe: PipeAgent;
let w: TestWorker;

beforeAll(async () => {
  const home = tempHome();
  pipe = await startPipeAgent({ home, tenants: [TENANT], allow: ['echo'], tier: 'read-only' });
  const secrets: SecretSource = { secretValues: async () => new Map([['API_KEY', VALUE]]) };
  w = await startTestWorker({ commands: pipe.transport, secrets } as Partial<ActivityDeps>, home);
});

afterAll(async () => {
  const home = w?.home;
  await w?.stop();
  await pipe?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

test('workflow input naming a secret reaches the agent as text; secret() in the code is resolved and masked', async () => {
  const text = 'input: ${secrets.API_KEY} $${x} ${secrets.NOPE}';
  const handle = await w.client.workflow.start('echoInputBesideSecret', {
    taskQueue: w.taskQueue,
    workflowId: uid('api-secret'),
    args: [{ tenant: TENANT, agent: 'web-1', text }],
  });
  const stdout = (await handle.result()) as string;
  // The agent echoed the input character for character (a resolved reference would come back as ***, and the
  // unknown ${secrets.NOPE} would have failed the command with secret_missing), and the value of secret('API_KEY').
  assert.equal(stdout, `${text} code:***\n`);
  // The value itself is nowhere in the history.
  assert.ok(!JSON.stringify(await handle.fetchHistory()).includes(VALUE));
});

test('a gate releases the argv as command() sends it: text holding ${ is approved and then passes the check', async () => {
  const argv = ['echo', 'literal ${x} from input'];
  const handle = await w.client.workflow.start('releasedThenRun', {
    taskQueue: w.taskQueue,
    workflowId: uid('api-release'),
    args: [{ tenant: TENANT, released: argv, run: argv }],
  });
  await eventually(async () => (await handle.query(statusQuery)).pendingGates.length > 0, 30_000, 'the gate');
  await handle.signal(approveSignal, { gate: 'g', decision: 'approve', approver: 'ui-user' });
  // Not approval_mismatch: the release and the command are the same template. The workflow's agent "nowhere" is
  // not enrolled, so the command then fails at the transport.
  await assert.rejects(handle.result(), (err: unknown) => {
    assert.equal(((err as WorkflowFailedError).cause as { type?: string }).type, 'agent_unavailable');
    return true;
  });
});
