/**
 * Histories recorded by an earlier version (test/fixtures/histories, `npm run record:histories`) replay against
 * the current workflow code: runs parked at a gate, mid-retry or failed stay readable and resumable after an
 * upgrade. A change that breaks one fails here; ship it behind `patched()` (or a new workflow type) instead.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { Worker } from '@temporalio/worker';
import { suiteEnv } from '../support/harness';
import { FIXTURE_KINDS, factsOf, readFixtures } from '../support/history-fixtures';

const fixtures = readFixtures();

describe('committed histories replay against the current workflow code', () => {
  test('a fixture of every kind is committed', () => {
    const have = new Set(fixtures.map((f) => f.kind));
    assert.deepEqual(FIXTURE_KINDS.map((k) => k.kind).filter((k) => !have.has(k)), [], 'run `npm run record:histories` and commit test/fixtures/histories');
    // Each file is still what its name says (a hand-edited or mislabelled fixture would prove nothing).
    for (const f of fixtures) {
      const kind = FIXTURE_KINDS.find((k) => k.kind === f.kind);
      assert.ok(kind, `${f.kind}: unknown kind`);
      assert.ok(kind.matches(factsOf(f.history)), `${f.kind}: the history is not a ${kind.about}`);
    }
  });

  for (const f of fixtures) {
    test(`${f.kind} (${f.workflowId})`, async () => {
      const { bundlePath } = suiteEnv();
      await Worker.runReplayHistory({ workflowBundle: { codePath: bundlePath } }, f.history, f.workflowId);
    });
  }
});
