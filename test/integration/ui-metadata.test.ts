/**
 * What the Temporal UI shows of a run, read back the way the UI reads it: the summary on every activity and timer
 * (`userMetadata.summary` on the history's scheduled/started events) and the run's current details (the SDK's
 * `__temporal_workflow_metadata` query, which the UI calls). A real dev server, a real worker with the Orch plugin,
 * the local Anthropic-protocol server.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { useClaudeWorker } from '../support/claude-worker';
import { eventually, uid } from '../support/harness';
import { approveSignal, pendingGatesQuery } from '../../workflows/shared';

const claude = useClaudeWorker();

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** Every summary in the history, with the kind of event it is on. */
function summariesOf(history: History): Array<{ event: string; summary: string }> {
  const out: Array<{ event: string; summary: string }> = [];
  for (const e of history.events ?? []) {
    const p = e.userMetadata?.summary;
    if (!p) continue;
    const event = e.activityTaskScheduledEventAttributes ? 'activity' : e.timerStartedEventAttributes ? 'timer' : e.timerCanceledEventAttributes ? 'timer cancelled' : e.markerRecordedEventAttributes ? 'local activity' : 'other';
    out.push({ event, summary: defaultPayloadConverter.fromPayload<string>(p as Payload) });
  }
  return out;
}

async function currentDetails(handle: WorkflowHandle): Promise<string> {
  const meta = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return meta.currentDetails ?? '';
}

describe('the run as the Temporal UI shows it', () => {
  test('activities and timers carry summaries naming their node; current details show the nodes, the cost and how to approve', async () => {
    const workflowId = uid('ui-meta');
    const m = uid('m');
    const handle = await claude.w.client.workflow.start('runDag', {
      taskQueue: claude.w.taskQueue,
      workflowId,
      args: [
        {
          tenant: 'engine-test',
          params: { service: 'nginx' },
          dag: {
            name: 'ui-review',
            version: 3,
            cost_cap_usd: 0.05,
            params: { service: { type: 'string' } },
            nodes: [
              { id: 'checklist', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 400, prompt: `${m} checklist for \${params.service}` },
              { id: 'approve', type: 'approval_gate', needs: ['checklist'], message: 'Restart ${params.service}?' },
              // No agent web-1 is enrolled: the command is scheduled (with its summary) and fails agent_unavailable.
              { id: 'disks', type: 'command', needs: ['approve'], agent: 'web-1', argv: ['df', '-h', '--token=${secrets.DISK_TOKEN}', '${params.service}'] },
            ],
          },
        },
      ],
    });
    await eventually(async () => (await handle.query(pendingGatesQuery)).some((g) => g.gate === 'approve'), 20_000, 'the gate to wait');

    const waiting = await currentDetails(handle);
    assert.match(waiting, /\*\*ui-review\*\* v3 · tenant `engine-test` · \*\*waiting for approval\*\*/);
    assert.match(waiting, /Cost: 0\.0\d+ USD spent \+ 0\.00 USD reserved of the 0\.05 USD cap/);
    assert.match(waiting, /\| checklist \| claude \| ✓ succeeded \|/);
    assert.match(waiting, /\| approve \| approval_gate \| ‖ waiting for approval \|/);
    assert.match(waiting, /\| disks \| command \| · pending \|/);
    assert.match(waiting, /- `disks` on `web-1` \(unknown\): `df -h --token=\$\{secrets\.DISK_TOKEN\} nginx`/, 'what the gate releases, secret as a reference');
    assert.ok(waiting.includes(`orch approve ${workflowId} approve --comment "checked"`), waiting);
    assert.ok(waiting.includes('{"gate":"approve","decision":"approve","approver":"YOUR NAME","comment":"checked"}'), waiting);

    await handle.signal(approveSignal, { gate: 'approve', decision: 'approve', approver: 'tester', comment: 'ok' });
    await assert.rejects(handle.result());

    const ended = await currentDetails(handle);
    assert.match(ended, /· \*\*failed\*\*/);
    assert.match(ended, /Failed at node `disks`: `agent_unavailable`/);
    assert.match(ended, /\| approve \| approval_gate \| ✓ succeeded \| approved by tester: ok \[unverified\] \|/);
    assert.ok(!ended.includes('orch approve'), 'no approve line once no gate waits');

    const found = summariesOf(await handle.fetchHistory());
    process.stdout.write(`# summaries in the history of ${workflowId}:\n${found.map((f) => `#   ${f.event}: ${f.summary}`).join('\n')}\n# current details at the gate:\n${waiting}\n`);
    const has = (event: string, summary: string) =>
      assert.ok(found.some((f) => f.event === event && f.summary === summary), `no ${event} with summary "${summary}" in ${JSON.stringify(found, null, 1)}`);
    has('activity', 'checklist: claude-haiku-4-5, max 400 tokens');
    has('activity', 'disks: df -h --token=${secrets.DISK_TOKEN} nginx on web-1');
    has('timer', 'approval gate "approve" (24 h)');
    // The command's activity writes its own command_sent row (patch orch-command-activity-audit-v1): no local activity for it.
    assert.ok(!found.some((f) => f.summary.startsWith('orch: audit append (command_')), 'no audit append local activity around a command');
    has('local activity', 'orch: audit append (run_workflow ui-review@3)');
    // A Claude node whose byte bound fits the cap counts no tokens first (patch orch-claude-bound-and-activity-audit-v1).
    assert.ok(!found.some((f) => f.summary.startsWith('orch: count input tokens')), 'no token count for a call whose byte bound fits');
    has('local activity', 'orch: load run config (model prices)');
    // Every activity and timer is named: none is left without a summary.
    const history = await handle.fetchHistory();
    const unnamed = (history.events ?? []).filter((e) => (e.activityTaskScheduledEventAttributes || e.timerStartedEventAttributes) && !e.userMetadata?.summary);
    assert.equal(unnamed.length, 0, 'activities or timers without a summary');
    assert.ok(found.every((f) => f.summary.length <= 200 && !f.summary.includes('\n')));
  });
});
