/**
 * Nodes whose audit rows cannot be written, against the real dev server, worker, fake Anthropic server and Go agent
 * (over a pipe), with the tenant's real log behind a sink that refuses chosen rows:
 * - a Claude call that was answered but whose `claude_call` row cannot be written (the activity's own append and
 *   then the workflow's both refused): the run fails with the audit log's stable type, and the cost ledger counts
 *   the call once, at its real usage, not again at its worst case;
 * - a command whose `command_sent` row cannot be written is never sent: the run fails with that type and no wire
 *   went to the agent;
 * - a command whose `command_sent` append fails once for a passing reason (a busy database) is retried, sent once
 *   and runs once.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { startFakeAnthropic, type FakeAnthropic } from '../support/anthropic';
import { startTestWorker, tempHome, uid, type TestWorker } from '../support/harness';
import { startPipeAgent, type PipeAgent } from '../support/stdio-agent';
import { TenantStore } from '../../desktop-worker/tenant-store';
import type { AuditSink } from '../../activities';
import { statusQuery, type RunResult } from '../../workflows/shared';

const TENANT = 'engine-test';
/** command_sent rows whose argv holds this are refused as invalid; those holding BUSY fail once as a busy database. */
const REFUSED = 'refuse-this-row';
const BUSY = 'busy-once';
let anthropic: FakeAnthropic;
let pipe: PipeAgent;
let w: TestWorker;
let store: TenantStore;
const busyFailed = new Set<string>();
const toAgent: Buffer[] = [];

beforeAll(async () => {
  anthropic = await startFakeAnthropic();
  const home = tempHome();
  store = new TenantStore(home);
  pipe = await startPipeAgent({ home, tenants: [TENANT], allow: ['echo'] });
  // Every wire the desktop sends to the agent, counted on its way into the real pipe.
  const send = pipe.link.send.bind(pipe.link);
  pipe.link.send = (wire: Buffer) => {
    toAgent.push(wire);
    return send(wire);
  };
  // The tenant's real log, which refuses chosen rows as invalid (as it refuses an oversize row) or as busy once.
  const audit: AuditSink = {
    append: (record) => {
      if (record.action === 'claude_call') throw Object.assign(new Error('claude_call rows are refused by this test'), { code: 'audit_entry_invalid' });
      const details = JSON.stringify(record.details ?? {});
      if (record.action === 'command_sent' && details.includes(REFUSED)) {
        throw Object.assign(new Error('this command_sent row is refused by this test'), { code: 'audit_entry_invalid' });
      }
      if (record.action === 'command_sent' && details.includes(BUSY) && !busyFailed.has(details)) {
        busyFailed.add(details);
        throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
      }
      return store.append(record);
    },
  };
  w = await startTestWorker({ claude: () => ({ apiKey: anthropic.apiKey, baseURL: anthropic.baseURL }), commands: pipe.transport, audit }, home);
});

afterAll(async () => {
  store?.close();
  await w?.stop();
  await pipe?.close();
  await anthropic?.stop();
});

/** The run's failure (an ApplicationFailure), or a test failure if it succeeded. */
async function failureOf(handle: { result(): Promise<unknown> }, what: string): Promise<ApplicationFailure> {
  const err = await handle.result().then(
    () => assert.fail(`the run succeeded ${what}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, `expected a workflow failure, got ${String(err)}`);
  return err.cause;
}

const echoDag = (name: string, marker: string) => ({
  name,
  version: 1,
  cost_cap_usd: 1,
  nodes: [{ id: 'say', type: 'command', agent: 'web-1', argv: ['echo', marker] }],
});

describe('a Claude call whose audit row cannot be written', () => {
  test('fails the run with audit_entry_invalid and counts the call once, at its real usage', async () => {
    const m = uid('appendfails');
    const handle = await w.client.workflow.start('runDag', {
      taskQueue: w.taskQueue,
      workflowId: uid('engine'),
      args: [{ tenant: TENANT, dag: { name: 'appendfails', version: 1, cost_cap_usd: 1, nodes: [{ id: 'ask', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 1000, prompt: `${m} hi` }] }, params: {} }],
    });
    const failure = await failureOf(handle, 'without its claude_call row');
    assert.equal(failure.type, 'audit_entry_invalid');
    assert.match(failure.message, /claude_call/);
    const reqs = (await anthropic.messages()).filter((r) => r.prompt.includes(m));
    assert.equal(reqs.length, 1, 'the call was sent once');
    const status = await handle.query(statusQuery);
    // The worst case of this call is over $0.005 (1,000 output tokens of claude-haiku-4-5); its real usage is a few
    // tokens. Counted twice, spent would be the real cost plus that worst case.
    assert.ok(status.cost.spentUsd > 0, 'the answered call is counted');
    assert.ok(status.cost.spentUsd < 0.001, `spent $${status.cost.spentUsd}: the call's real usage once, not its worst case again`);
    assert.equal(status.cost.reservedUsd, 0);
  });
});

describe('a command whose command_sent row cannot be written', () => {
  test('is never sent: the run fails with audit_entry_invalid and nothing went to the agent', async () => {
    const sentBefore = toAgent.length;
    const answersBefore = pipe.link.delivered.length;
    const handle = await w.client.workflow.start('runDag', { taskQueue: w.taskQueue, workflowId: uid('sentfails'), args: [{ tenant: TENANT, dag: echoDag('sentfails', `${REFUSED} ${uid('m')}`), params: {} }] });
    const failure = await failureOf(handle, 'without its command_sent row');
    assert.equal(failure.type, 'audit_entry_invalid');
    assert.match(failure.message, /command_sent/);
    assert.equal(toAgent.length, sentBefore, 'a wire went to the agent for a command whose command_sent row was never written');
    assert.equal(pipe.link.delivered.length, answersBefore, 'the agent answered something');
  });

  test('a busy database on the first try is retried: the command is sent once and runs once', async () => {
    const marker = `${BUSY} ${uid('m')}`;
    const sentBefore = toAgent.length;
    const handle = await w.client.workflow.start('runDag', { taskQueue: w.taskQueue, workflowId: uid('sentbusy'), args: [{ tenant: TENANT, dag: echoDag('sentbusy', marker), params: {} }] });
    const result = (await handle.result()) as RunResult;
    assert.equal(result.state, 'succeeded');
    assert.equal(busyFailed.size, 1, 'the busy failure happened once');
    assert.match(JSON.stringify(result), new RegExp(marker), 'the command ran and its output came back');
    assert.equal(toAgent.length, sentBefore + 1, 'one wire to the agent: the command was sent once');
  });
});
