/**
 * One DAG with every node type through the real path: a sealed command on a real Go agent, Claude through a local
 * server speaking the Anthropic Messages API, an approval gate released by signal, and a command after the gate
 * (argv never takes another node's output: only prompts and gate messages do). Its history is also the `dag-every-node-type` fixture that every later
 * `npm test` replays (test/support/history-fixtures.ts).
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { startFakeAnthropic, type FakeAnthropic } from '../support/anthropic';
import { eventually, startTestWorker, tempHome, uid, type TestWorker } from '../support/harness';
import { startPipeAgent, type PipeAgent } from '../support/stdio-agent';
import type { WorkflowHandle } from '@temporalio/client';
import { approveSignal, pendingGatesQuery, statusQuery, type RunResult } from '../../workflows/shared';

const TENANT = 'engine-test';
let anthropic: FakeAnthropic;
let pipe: PipeAgent;
let w: TestWorker;

/** The tenant's audit rows of one run, in chain order. */
function runRows(workflowId: string) {
  return [...w.store.auditLog(TENANT).rows({ workflowId })];
}

/** The types of the local activities a run ran (its `core_local_activity` markers), in order. */
function localActivityTypes(history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>>): string[] {
  return (history.events ?? [])
    .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')
    .map((e) => (JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details!.data!.payloads![0]!.data!).toString('utf8')) as { activity_type: string }).activity_type);
}

beforeAll(async () => {
  const home = tempHome();
  anthropic = await startFakeAnthropic();
  pipe = await startPipeAgent({ home, tenants: [TENANT], allow: ['echo'] });
  w = await startTestWorker({ claude: () => ({ apiKey: anthropic.apiKey, baseURL: anthropic.baseURL }), commands: pipe.transport }, home);
});

afterAll(async () => {
  await w?.stop();
  await pipe?.close();
  await anthropic?.stop();
  if (w) fs.rmSync(w.home, { recursive: true, force: true });
});

describe('a DAG with every node type', () => {
  test('command → Claude → approval gate → command, through a real agent, Claude server and signal', async () => {
    const m = uid('every');
    const dag = {
      name: 'every-node-type',
      version: 1,
      cost_cap_usd: 1,
      nodes: [
        { id: 'probe', type: 'command', agent: 'web-1', argv: ['echo', `probe ${m}`] },
        { id: 'review', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 50, needs: ['probe'], prompt: `${m} review: \${nodes.probe.output}` },
        { id: 'approve', type: 'approval_gate', message: 'apply?', needs: ['review'] },
        { id: 'apply', type: 'command', agent: 'web-1', argv: ['echo', 'applied', m], needs: ['approve'] },
      ],
    };
    const handle = await w.client.workflow.start('runDag', { taskQueue: w.taskQueue, workflowId: uid('every-node'), args: [{ tenant: TENANT, dag, params: {} }] });
    await eventually(async () => (await handle.query(pendingGatesQuery)).some((g) => g.gate === 'approve'), 30_000, 'the gate to wait');
    await handle.signal(approveSignal, { gate: 'approve', decision: 'approve', approver: 'alice', comment: 'go' });
    const result = (await handle.result()) as RunResult;
    assert.equal(result.state, 'succeeded');
    const status = await handle.query(statusQuery);
    assert.deepEqual(status.nodes.map((n) => [n.id, n.state]), [['probe', 'succeeded'], ['review', 'succeeded'], ['approve', 'succeeded'], ['apply', 'succeeded']]);
    // Claude saw the agent's real output, inside the server-output wrapper.
    const asked = (await anthropic.messages()).filter((r) => r.prompt.includes(m));
    assert.equal(asked.length, 1);
    assert.match(asked[0]!.prompt, new RegExp(`<server-output[^>]*>[\\s\\S]*probe ${m}`));
    assert.match(JSON.stringify(result), /applied/);
    // The commands' rows come from their own activity (patch orch-command-activity-audit-v1): command_sent before
    // the command went out, command_result after, in the run's order, once each; the chain verifies.
    assert.deepEqual(runRows(handle.workflowId).map((r) => `${r.action}:${r.subject}`), [
      'run_workflow:every-node-type@1',
      'command_sent:probe',
      'command_result:probe',
      'claude_call:review',
      'approve_gate:approve',
      'command_sent:apply',
      'command_result:apply',
      'run_finished:every-node-type@1',
    ]);
    const sent = runRows(handle.workflowId).find((r) => r.action === 'command_sent' && r.subject === 'probe')!;
    assert.deepEqual(sent.details, { workflowId: handle.workflowId, runId: handle.firstExecutionRunId, agent: 'web-1', argv: ['echo', `probe ${m}`], commandId: `${handle.workflowId}/${handle.firstExecutionRunId}/probe` });
    assert.equal(w.store.auditLog(TENANT).verify().ok, true);
    // Of Orch's own local activities only the start's, the gate's and the end's appends remain.
    assert.deepEqual(localActivityTypes(await handle.fetchHistory()).filter((t) => t === 'appendAudit'), ['appendAudit', 'appendAudit', 'appendAudit']);
  });

  test('a command whose relay is down is retried until it is back, then runs once', async () => {
    const m = uid('retried');
    pipe.link.connected = false;
    const dag = { name: 'retried', version: 1, cost_cap_usd: 1, nodes: [{ id: 'once', type: 'command', agent: 'web-1', argv: ['echo', m] }] };
    const handle = await w.client.workflow.start('runDag', { taskQueue: w.taskQueue, workflowId: uid('retried'), args: [{ tenant: TENANT, dag, params: {} }] });
    // At least one attempt fails with relay_unavailable before the link comes back.
    await eventually(
      async () => {
        const desc = await handle.describe();
        return (desc.raw.pendingActivities ?? []).some((a) => (a.attempt ?? 0) >= 2);
      },
      30_000,
      'a second attempt of the command',
    );
    const before = pipe.link.delivered.length;
    pipe.link.connected = true;
    const result = (await handle.result()) as RunResult;
    assert.equal(result.state, 'succeeded');
    assert.match(JSON.stringify(result), new RegExp(m));
    assert.equal(pipe.link.delivered.length - before, 1, 'one result came back: the command ran once');
    // Every attempt wrote command_sent under the same key: one row of each, in order, and the chain verifies.
    assert.deepEqual(runRows(handle.workflowId).map((r) => `${r.action}:${r.subject}`), ['run_workflow:retried@1', 'command_sent:once', 'command_result:once', 'run_finished:retried@1']);
    assert.equal(w.store.auditLog(TENANT).verify().ok, true);
  });
});
