/**
 * Replays every workflow history the suite produced on its dev server against the current workflow bundle. A
 * change to workflow code that is not deterministic fails here with DeterminismViolationError.
 */
import { test } from '@jest/globals';
import assert from '../support/assert';
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { suiteEnv } from '../support/harness';

test('every history the suite produced replays without a determinism violation', async () => {
  const { address, bundlePath } = suiteEnv();
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection });
    // Only Orch runs: the dev-server suite starts a few workflows of arbitrary types on its own servers, not here.
    const histories = client.workflow.list({ query: 'ExecutionStatus != "Running"' }).intoHistories();
    const failures: string[] = [];
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: bundlePath } }, histories)) {
      replayed++;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.name}: ${result.error.message}`);
    }
    process.stdout.write(`# replayed ${replayed} histories\n`);
    assert.deepEqual(failures, []);
    if (!process.env.ORCH_TEST_PARTIAL) assert.ok(replayed > 0, 'no histories to replay: the suite produced no closed workflows');
  } finally {
    await connection.close();
  }
});
