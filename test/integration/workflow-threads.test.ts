/**
 * The Orch worker's workflow threads (desktop-worker/workflow-threads.ts): by default without the SDK's stack capture
 * of every promise, so the `__stack_trace` query (the Temporal UI's "Stack Trace" tab) answers that stack traces are
 * not enabled, while a failure made in workflow code keeps its source-mapped stack; with ORCH_WORKFLOW_STACK_TRACES=1
 * the worker runs the SDK's own threads and the query shows where the run waits. Real dev server, real workers
 * (the harness's worker is the class orch up uses).
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { eventually, startTestWorker, uid, type TestWorker } from '../support/harness';
import { statusQuery } from '../../workflows/shared';

let lean: TestWorker;
let full: TestWorker;
beforeAll(async () => {
  lean = await startTestWorker();
  process.env.ORCH_WORKFLOW_STACK_TRACES = '1';
  try {
    full = await startTestWorker();
  } finally {
    delete process.env.ORCH_WORKFLOW_STACK_TRACES;
  }
});
afterAll(async () => {
  await lean?.stop();
  await full?.stop();
});

const gated = (timeoutSeconds: number) => ({ name: 'stacks', version: 1, cost_cap_usd: 1, nodes: [{ id: 'gate', type: 'approval_gate', message: 'go?', timeout_seconds: timeoutSeconds }] });

async function parked(w: TestWorker, timeoutSeconds = 60): Promise<WorkflowHandle> {
  const handle = await w.client.workflow.start('runDag', { taskQueue: w.taskQueue, workflowId: uid('stacks'), args: [{ tenant: 'engine-test', dag: gated(timeoutSeconds), params: {} }] });
  await eventually(async () => (await handle.query(statusQuery)).pendingGates.length === 1, 20_000, 'the run to wait at its gate');
  return handle;
}

/** The failure of a run whose gate times out: an ApplicationFailure thrown by workflow code. */
async function timedOutStack(w: TestWorker): Promise<string> {
  const handle = await parked(w, 1);
  const err = await handle.result().then(
    () => assert.fail('the gate did not time out'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, String(err));
  assert.equal((err.cause as { type?: string }).type, 'approval_timeout');
  return err.cause?.stack ?? '';
}

describe('workflow threads', () => {
  test('by default: no stack capture of promises; the stack trace query says so, and the run is untouched', async () => {
    const handle = await parked(lean);
    await assert.rejects(handle.query('__stack_trace'), /stack traces are not enabled on this worker/);
    assert.equal((await handle.query(statusQuery)).state, 'waiting_approval');
    await handle.terminate('test done');
  });

  test('with ORCH_WORKFLOW_STACK_TRACES=1: the stack trace query shows where the run waits', async () => {
    const handle = await parked(full);
    const stack = await handle.query<string>('__stack_trace');
    assert.match(stack, /gateNode/);
    await handle.terminate('test done');
  });

  test('a failure thrown by workflow code keeps its source-mapped stack, with or without the capture', async () => {
    for (const w of [lean, full]) {
      assert.match(await timedOutStack(w), /at \S+ \(\S*workflows\/runner\.ts:\d+:\d+\)/);
    }
  });
});
