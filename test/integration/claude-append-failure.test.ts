/**
 * A Claude call that was answered but whose `claude_call` audit row cannot be written (the activity's own append
 * and then the workflow's both refused): the run fails with the audit log's stable type, and the cost ledger counts
 * the call once, at its real usage, not again at its worst case.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { startFakeAnthropic, type FakeAnthropic } from '../support/anthropic';
import { startTestWorker, tempHome, uid, type TestWorker } from '../support/harness';
import { TenantStore } from '../../desktop-worker/tenant-store';
import type { AuditSink } from '../../activities';
import { statusQuery } from '../../workflows/shared';

let anthropic: FakeAnthropic;
let w: TestWorker;
let store: TenantStore;

beforeAll(async () => {
  anthropic = await startFakeAnthropic();
  const home = tempHome();
  store = new TenantStore(home);
  // The tenant's real log, which refuses every claude_call row as invalid (as it refuses an oversize row).
  const audit: AuditSink = {
    append: (record) => {
      if (record.action === 'claude_call') throw Object.assign(new Error('claude_call rows are refused by this test'), { code: 'audit_entry_invalid' });
      return store.append(record);
    },
  };
  w = await startTestWorker({ claude: () => ({ apiKey: anthropic.apiKey, baseURL: anthropic.baseURL }), audit }, home);
});

afterAll(async () => {
  store?.close();
  await w?.stop();
  await anthropic?.stop();
});

describe('a Claude call whose audit row cannot be written', () => {
  test('fails the run with audit_entry_invalid and counts the call once, at its real usage', async () => {
    const m = uid('appendfails');
    const handle = await w.client.workflow.start('runDag', {
      taskQueue: w.taskQueue,
      workflowId: uid('engine'),
      args: [{ tenant: 'engine-test', dag: { name: 'appendfails', version: 1, cost_cap_usd: 1, nodes: [{ id: 'ask', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 1000, prompt: `${m} hi` }] }, params: {} }],
    });
    const err = await handle.result().then(
      () => assert.fail('the run succeeded without its claude_call row'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, `expected a workflow failure, got ${String(err)}`);
    assert.equal(err.cause.type, 'audit_entry_invalid');
    assert.match(err.cause.message, /claude_call/);
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
