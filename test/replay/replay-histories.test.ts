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
import fs from 'node:fs';
import { productionBundleForReplay, suiteEnv } from '../support/harness';
import { FIXTURE_KINDS, factsOf, writeFixture } from '../support/history-fixtures';

test('every history the suite produced replays without a determinism violation', async () => {
  const { address, bundlePath } = suiteEnv();
  const connection = await Connection.connect({ address });
  const record = process.env.ORCH_RECORD_HISTORIES === '1';
  const recorded = new Map<string, string>();
  try {
    const client = new Client({ connection });
    // Listed raw: runs of `orch up` with the payload codec (test/integration/payload-codec.test.ts and others) carry
    // encrypted memos that a plain client cannot decode. Their histories are encrypted too, so this bundle without the
    // keys cannot replay them: they are skipped here and replayed with the codec by the codec's own test.
    const executions: Array<{ workflowId: string; runId: string }> = [];
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await connection.workflowService.listWorkflowExecutions({ namespace: 'default', query: 'ExecutionStatus != "Running"', nextPageToken });
      for (const e of page.executions ?? []) executions.push({ workflowId: e.execution!.workflowId!, runId: e.execution!.runId! });
      nextPageToken = page.nextPageToken && page.nextPageToken.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
    const encrypted = (h: Awaited<ReturnType<ReturnType<typeof client.workflow.getHandle>['fetchHistory']>>) => {
      const input = h.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      const encoding = input?.metadata?.encoding;
      return encoding ? Buffer.from(encoding).toString() === 'binary/encrypted' : false;
    };
    const failures: string[] = [];
    let replayed = 0;
    let skipped = 0;
    const kept: { workflowId: string; history: Parameters<typeof factsOf>[0] }[] = [];
    // Runs of test/integration/production-worker.test.ts ran the production bundle (Orch's workflows alone, no inline
    // runDag): they are replayed against that bundle, which that file left in the suite's scratch folder.
    const fromProduction = (e: { workflowId: string }) => e.workflowId.startsWith('prod-');
    async function* keep(which: (e: { workflowId: string }) => boolean) {
      for (const e of executions.filter(which)) {
        const history = await client.workflow.getHandle(e.workflowId, e.runId).fetchHistory();
        if (encrypted(history)) {
          skipped++;
          continue;
        }
        if (record && !fromProduction(e)) kept.push({ workflowId: e.workflowId, history: history as Parameters<typeof factsOf>[0] });
        yield { workflowId: e.workflowId, history };
      }
    }
    for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: bundlePath } }, keep((e) => !fromProduction(e)))) {
      replayed++;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.name}: ${result.error.message}`);
    }
    let replayedProduction = 0;
    if (executions.some(fromProduction)) {
      const productionBundle = productionBundleForReplay(process.env.ORCH_TEST_WORK_DIR ?? '');
      assert.ok(fs.existsSync(productionBundle), `the suite has runs of the production bundle (prod-*) but not that bundle (${productionBundle})`);
      for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: productionBundle } }, keep(fromProduction))) {
        replayedProduction++;
        if (result.error) failures.push(`${result.workflowId} (production bundle): ${result.error.name}: ${result.error.message}`);
      }
    }
    process.stdout.write(
      `# replayed ${replayed} histories on the test bundle and ${replayedProduction} on the production bundle (${skipped} skipped: encrypted by the payload codec)\n`,
    );
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
