/**
 * The default approval gate timeout, 24 hours, tested as 24 hours: a DAG whose gate has no `timeout_seconds`
 * runs on a real Temporal server with workflow time skipping (server-side, `frontend.WorkflowTimeSkippingEnabled`;
 * test/support/timeskip-server), which moves the run's clock over its timers when nothing else is in flight.
 *
 * - Skipped through, with no decision, the run fails with approval_timeout "not decided within 86400 s", in
 *   seconds of real time, and its history shows the gate's 24-hour timer fired.
 * - Control: fast-forwarded 23 h 59 min, the same gate is still pending (no timeout yet), and an approval then
 *   completes the run. A shorter default would have fired there; a longer one shows in the timer's 86,400 s.
 *
 * Not `TestWorkflowEnvironment.createTimeSkipping()`: it downloads Temporal's Java test server from
 * temporal.download, which this project's machines cannot reach; see test/support/timeskip-server-binary.ts.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from '../support/assert';
import { Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { startTestWorker, eventually, uid, type TestWorker } from '../support/harness';
import { startTimeSkipServer, type TimeSkipServer } from '../support/timeskip-server';
import { SEARCH_ATTRIBUTE_TYPES, approveSignal, pendingGatesQuery } from '../../workflows/shared';

let server: TimeSkipServer;
let w: TestWorker;

beforeAll(async () => {
  server = await startTimeSkipServer();
  // Orch's search attributes first, as Orch's dev server gets them at start.
  const connection = await Connection.connect({ address: server.address });
  try {
    await connection.operatorService.addSearchAttributes({
      namespace: 'default',
      searchAttributes: Object.fromEntries(Object.keys(SEARCH_ATTRIBUTE_TYPES).map((k) => [k, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
    });
  } finally {
    await connection.close();
  }
  w = await startTestWorker({}, undefined, server.address);
}, 120_000);

afterAll(async () => {
  await w?.stop();
  await server?.stop();
});

const gated = { name: 'gated', version: 1, cost_cap_usd: 1, nodes: [{ id: 'ok', type: 'approval_gate', message: 'proceed?' }] };

function start(): Promise<WorkflowHandle> {
  return w.client.workflow.start('runDag', { taskQueue: w.taskQueue, workflowId: uid('gate24h'), args: [{ tenant: 'engine-test', dag: gated, params: {} }] });
}

/** Turns time skipping on for a run, optionally only up to `fastForwardSeconds` ahead of its current time. */
async function skipTime(handle: WorkflowHandle, fastForwardSeconds?: number): Promise<string | undefined> {
  const id = fastForwardSeconds === undefined ? undefined : uid('ff');
  await w.client.workflowService.updateWorkflowExecutionOptions({
    namespace: 'default',
    workflowExecution: { workflowId: handle.workflowId },
    workflowExecutionOptions: {
      timeSkippingConfig: { enabled: true, ...(id ? { fastForwardConfig: { id, duration: msToTs(fastForwardSeconds! * 1000) } } : {}) },
    },
    updateMask: { paths: ['time_skipping_config'] },
  });
  return id;
}

async function waitForGate(handle: WorkflowHandle): Promise<void> {
  await eventually(async () => (await handle.query(pendingGatesQuery)).some((g) => g.gate === 'ok'), 30_000, 'the gate to wait');
}

test('a gate with the default timeout, no decision: the run fails with approval_timeout after 24 hours of skipped time', async () => {
  const handle = await start();
  await waitForGate(handle);
  const began = Date.now();
  await skipTime(handle);
  let failure: ApplicationFailure | undefined;
  try {
    await handle.result();
  } catch (err) {
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
    failure = err.cause;
  }
  const realSeconds = (Date.now() - began) / 1000;
  assert.ok(failure, 'the run succeeded');
  assert.equal(failure.type, 'approval_timeout');
  assert.match(failure.message, /approval gate "ok" was not decided within 86400 s/);
  assert.ok(realSeconds < 120, `took ${realSeconds} s of real time`);
  const history = await handle.fetchHistory();
  const timers = (history.events ?? []).filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_TIMER_STARTED);
  assert.deepEqual(
    timers.map((e) => Number(e.timerStartedEventAttributes?.startToFireTimeout?.seconds ?? 0)),
    [86_400],
  );
  assert.ok((history.events ?? []).some((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_TIMER_FIRED), 'the gate timer did not fire');
  process.stderr.write(`[gate-24h] 24 h gate timed out after ${realSeconds.toFixed(1)} s of real time\n`);
}, 180_000);

test('control: fast-forwarded 23 h 59 min, the same gate is still pending, and an approval completes the run', async () => {
  const handle = await start();
  await waitForGate(handle);
  const ff = await skipTime(handle, 23 * 3600 + 59 * 60);
  const done = await w.client.workflowService.pollWorkflowExecutionTimeSkipping({ namespace: 'default', workflowExecution: { workflowId: handle.workflowId }, fastForwardId: ff! });
  // The run's clock went 23 h 59 min ahead, and the gate is still waiting.
  assert.equal(done.fastForwardInfo?.hasCompleted, true, JSON.stringify(done.toJSON()));
  const gates = await handle.query(pendingGatesQuery);
  assert.equal(gates.length, 1);
  await handle.signal(approveSignal, { gate: 'ok', decision: 'approve', approver: 'alice' });
  await handle.result();
}, 180_000);
