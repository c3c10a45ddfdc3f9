/**
 * Hand-written workflows: text that reaches `command()` from workflow input is text, even when it reads
 * `${secrets.NAME}`; only `secret('NAME')` written in the workflow code is resolved (inside the activity) and
 * masked. Real path: a real dev server, a real worker with the Orch plugin and the tests' bundle, and a real Go
 * agent (read-only tier) over sealed envelopes, which runs `echo`: what the agent printed is what it received.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from '../support/assert';
import type { ActivityDeps } from '../../activities';
import type { SecretSource } from '../../activities/secrets';
import { eventually, startTestWorker, tempHome, uid, type TestWorker } from '../support/harness';
import { WorkflowFailedError } from '@temporalio/client';
import { approveSignal, statusQuery } from '../../workflows/shared';
import { enrollAgent, pipeTransport, startStdioAgent, type AgentProc } from '../support/stdio-agent';
import { AgentRegistry } from '../../desktop-worker/agent-registry';
import { ed25519KeyPair, x25519KeyPair } from '../../protocol/primitives';

const TENANT = 'engine-test';
const VALUE = `value-${randomBytes(12).toString('hex')}`;
const desktop = { sign: ed25519KeyPair(), box: x25519KeyPair() };
let agent: AgentProc;
let pipe: ReturnType<typeof pipeTransport>;
let w: TestWorker;

beforeAll(async () => {
  const home = tempHome();
  const enrolled = await enrollAgent(desktop, path.join(home, 'agent-state'), 'version: 1\ncommands:\n  - executable: echo\n    rest: any\n', 'read-only');
  const registry = AgentRegistry.open(home);
  registry.add({ name: 'web-1', signKeyHex: enrolled.signKey, boxKeyHex: enrolled.boxKey, tier: 'read-only', tenants: [TENANT] });
  registry.close();
  agent = await startStdioAgent(enrolled);
  pipe = pipeTransport(desktop, home, agent);
  const secrets: SecretSource = { secretValues: async () => new Map([['API_KEY', VALUE]]) };
  w = await startTestWorker({ commands: pipe.transport, secrets } as Partial<ActivityDeps>, home);
});

afterAll(async () => {
  const home = w?.home;
  await w?.stop();
  pipe?.close();
  await agent?.stop();
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
