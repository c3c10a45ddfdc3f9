/**
 * Replays every workflow history the suite produced on its dev server against the current workflow bundle. A
 * change to workflow code that is not deterministic fails here with DeterminismViolationError.
 *
 * With ORCH_RECORD_HISTORIES=1 (`npm run record:histories`) it also keeps one history of each kind in
 * test/support/history-fixtures.ts as a committed fixture (test/fixtures/histories), which every later
 * `npm test` replays (test/replay/fixture-histories.test.ts).
 */
import { test } from '@jest/globals';
import assert from '../support/assert';
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { suiteEnv } from '../support/harness';
import { FIXTURE_KINDS, factsOf, writeFixture } from '../support/history-fixtures';

test('every history the suite produced replays without a determinism violation', async () => {
  const { address, bundlePath } = suiteEnv();
  const connection = await Connection.connect({ address });
  const record = process.env.ORCH_RECORD_HISTORIES === '1';
  const recorded = new Map<string, string>();
  try {
    const client = new Client({ connection });
    const histories = client.workflow.list({ query: 'ExecutionStatus != "Running"' }).intoHistories();
    const failures: string[] = [];
    let replayed = 0;
    const kept: { workflowId: string; history: Parameters<typeof factsOf>[0] }[] = [];
    async function* keep() {
      for await (const h of histories) {
        if (record) kept.push({ workflowId: h.workflowId, history: h.history as Parameters<typeof factsOf>[0] });
        yield h;
      }
    }
    for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: bundlePath } }, keep())) {
      replayed++;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.name}: ${result.error.message}`);
    }
    process.stdout.write(`# replayed ${replayed} histories\n`);
    assert.deepEqual(failures, []);
    if (!process.env.ORCH_TEST_PARTIAL) assert.ok(replayed > 0, 'no histories to replay: the suite produced no closed workflows');
    if (record) {
      for (const { kind, matches } of FIXTURE_KINDS) {
        const found = kept.find((k) => matches(factsOf(k.history)));
        if (found) recorded.set(kind, writeFixture(kind, found.workflowId, found.history));
      }
      process.stdout.write(`# recorded ${recorded.size} fixtures:\n${[...recorded.values()].map((f) => `#   ${f}`).join('\n')}\n`);
      const missing = FIXTURE_KINDS.filter((k) => !recorded.has(k.kind)).map((k) => `${k.kind} (${k.about})`);
      assert.deepEqual(missing, [], 'these kinds of run were not produced by the recorded suites');
    }
  } finally {
    await connection.close();
  }
});
