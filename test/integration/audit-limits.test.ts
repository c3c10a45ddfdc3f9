/**
 * What the compiler and `orch run` cannot see (a workflow id typed into the Temporal UI's Start Workflow form or
 * given by any other client) still fails at once with the audit log's own code, `audit_entry_invalid`, and is not
 * retried: before, the refused row was retried ten times with backoff, minutes of a run that could never go on.
 * Real dev server, real worker with the Orch plugin, real tenant audit log.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from '../support/assert';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { startTestWorker, uid, type TestWorker } from '../support/harness';
import { MAX_WORKFLOW_ID_LENGTH } from '../../workflows/dag/limits';

let w: TestWorker;
beforeAll(async () => {
  w = await startTestWorker();
});
afterAll(async () => {
  await w?.stop();
});

test('a workflow id longer than the audit row holds fails the run at once with audit_entry_invalid', async () => {
  const dag = { name: 'long-id', version: 1, cost_cap_usd: 1, nodes: [{ id: 'wait', type: 'approval_gate', message: 'never decided', timeout_seconds: 60 }] };
  const workflowId = `${uid('long')}-${'x'.repeat(200)}`;
  assert.ok(workflowId.length > MAX_WORKFLOW_ID_LENGTH);
  const started = Date.now();
  const handle = await w.client.workflow.start('runDag', { taskQueue: w.taskQueue, workflowId, args: [{ tenant: 'engine-test', dag, params: {} }] });
  await assert.rejects(handle.result(), (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
    assert.equal(err.cause.type, 'audit_entry_invalid');
    assert.match(err.cause.message, /idempotencyKey must be a non-empty string of at most 256 characters/);
    return true;
  });
  // One attempt: ten with backoff would take minutes.
  assert.ok(Date.now() - started < 20_000, `${Date.now() - started} ms`);
  // Nothing of this run reached the tenant's chain.
  assert.ok(![...w.store.auditLog('engine-test').rows()].some((r) => JSON.stringify(r.details).includes(workflowId)));
});
