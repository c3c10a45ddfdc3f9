/**
 * Registered DAGs as Temporal workflow types: a DAG registered in a tenant runs when workflow type <its name> is
 * started with {"tenant", "params"} (what the Temporal UI's Start Workflow form sends); the definition and its
 * hash are loaded once, by an activity, so a later edit never changes a running workflow. Also: the hand-written
 * example workflow, and search attributes for auditors.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { useClaudeWorker } from '../support/claude-worker';
import { eventually, uid } from '../support/harness';
import { approveSignal, pendingGatesQuery, statusQuery, type RunResult } from '../../workflows/shared';

const claude = useClaudeWorker();

const dagV = (name: string, version: number, marker: string) => ({
  name,
  version,
  cost_cap_usd: 0.5,
  params: { service: { type: 'string', default: 'nginx' } },
  nodes: [
    { id: 'gate', type: 'approval_gate', message: 'restart ${params.service}?' },
    { id: `v${version}-note`, type: 'claude', model: 'claude-haiku-4-5', max_tokens: 20, needs: ['gate'], prompt: `${marker} v${version} ${'${params.service}'}` },
  ],
});

async function failureType(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    return err.cause.type ?? undefined;
  }
  assert.fail('expected the run to fail');
}

describe('registered DAGs', () => {
  test('a registered DAG is a workflow type; the run is pinned to the definition it started with', async () => {
    const tenant = uid('acme');
    const name = uid('restart-web');
    const marker = uid('pin');
    claude.w.store.create(tenant);
    const v1 = claude.w.store.registerDag(tenant, dagV(name, 1, marker), 'v1');
    const handle = await claude.w.client.workflow.start(name, { taskQueue: claude.w.taskQueue, workflowId: uid('reg'), args: [{ tenant, params: { service: 'api' } }] });
    await eventually(async () => (await handle.query(pendingGatesQuery)).length === 1, 20_000, 'the gate');
    const status = await handle.query(statusQuery);
    assert.equal(status.dagHash, v1.hash);
    assert.equal(status.pendingGates[0]!.message, 'restart api?');

    // Edit the DAG while the run waits: the run must still finish as version 1.
    const v2 = claude.w.store.registerDag(tenant, dagV(name, 2, marker), 'v2');
    assert.notEqual(v2.hash, v1.hash);
    await handle.signal(approveSignal, { gate: 'gate', decision: 'approve', approver: 'alice' });
    const result = (await handle.result()) as RunResult;
    assert.deepEqual(Object.keys(result.outputs).sort(), ['gate', 'v1-note']);
    const calls = (await claude.anthropic.messages()).filter((r) => r.prompt.includes(marker));
    assert.deepEqual(calls.map((c) => c.prompt), [`${marker} v1 api`]);

    // The hash is in the history (the loadDag activity's result) and the memo.
    const history = await handle.fetchHistory();
    const completed = JSON.stringify(history.events?.filter((e) => e.activityTaskCompletedEventAttributes) ?? []);
    assert.ok(completed.length > 0);
    const description = await handle.describe();
    assert.equal(description.memo?.dagHash, v1.hash);

    // A new run takes version 2.
    const h2 = await claude.w.client.workflow.start(name, { taskQueue: claude.w.taskQueue, workflowId: uid('reg2'), args: [{ tenant }] });
    await eventually(async () => (await h2.query(pendingGatesQuery)).length === 1, 20_000, 'the gate of run 2');
    assert.equal((await h2.query(statusQuery)).dagHash, v2.hash);
    await h2.signal(approveSignal, { gate: 'gate', decision: 'approve', approver: 'alice' });
    assert.ok(Object.keys(((await h2.result()) as RunResult).outputs).includes('v2-note'));
  });

  test('search attributes let an auditor list runs by tenant, DAG and state', async () => {
    const tenant = uid('audit');
    const name = uid('listed');
    claude.w.store.create(tenant);
    claude.w.store.registerDag(tenant, dagV(name, 1, uid('sa')), 'v1');
    const handle = await claude.w.client.workflow.start(name, { taskQueue: claude.w.taskQueue, workflowId: uid('sa'), args: [{ tenant }] });
    const query = `OrchTenant = "${tenant}" AND OrchDag = "${name}" AND OrchState = "waiting_approval"`;
    await eventually(async () => {
      for await (const wf of claude.w.client.workflow.list({ query })) if (wf.workflowId === handle.workflowId) return true;
      return false;
    }, 30_000, 'visibility to list the waiting run');
    await handle.signal(approveSignal, { gate: 'gate', decision: 'approve', approver: 'alice' });
    await handle.result();
    await eventually(async () => {
      for await (const wf of claude.w.client.workflow.list({ query: `OrchTenant = "${tenant}" AND OrchState = "succeeded"` })) if (wf.workflowId === handle.workflowId) return true;
      return false;
    }, 30_000, 'visibility to list the finished run');
  });

  test('unknown tenant, unknown DAG, bad params and bad input fail with their own types, and nothing runs', async () => {
    const tenant = uid('known');
    const name = uid('strict');
    claude.w.store.create(tenant);
    claude.w.store.registerDag(
      tenant,
      {
        name,
        version: 1,
        cost_cap_usd: 0.5,
        params: { count: { type: 'integer', required: true } },
        nodes: [{ id: 'gate', type: 'approval_gate', message: 'count is ${params.count}' }],
      },
      'v1',
    );
    const start = (type: string, input: unknown) =>
      claude.w.client.workflow.start(type, { taskQueue: claude.w.taskQueue, workflowId: uid('bad'), args: [input] }).then((h) => h.result());
    assert.equal(await failureType(start(name, { tenant: uid('nobody') })), 'unknown_tenant');
    assert.equal(await failureType(start(uid('no-such-dag'), { tenant })), 'unknown_dag');
    assert.equal(await failureType(start(name, { tenant })), 'bad_params');
    assert.equal(await failureType(start(name, { tenant, params: { count: 'many' } })), 'bad_params');
    assert.equal(await failureType(start(name, { tenant: '../etc' })), 'bad_input');
    assert.equal(await failureType(start(name, 'just a string')), 'bad_input');
  });
});

describe('the example hand-written workflow', () => {
  test('restartWithReview: Claude reviews, a person approves, then the guarded restart reaches the agent step', async () => {
    const handle = await claude.w.client.workflow.start('restartWithReview', {
      taskQueue: claude.w.taskQueue,
      workflowId: uid('example'),
      args: [{ tenant: 't', agent: 'web-1', service: 'nginx', statusText: 'active (running) since Mon' }],
    });
    await eventually(async () => (await handle.query(pendingGatesQuery)).length === 1, 20_000, 'the confirm gate');
    const gate = (await handle.query(pendingGatesQuery))[0]!;
    assert.match(gate.message, /Claude says: fake reply to:/);
    await handle.signal(approveSignal, { gate: 'confirm', decision: 'approve', approver: 'alice' });
    // No agent is enrolled with this worker: the restart passed the destructive check and stopped at the agent.
    assert.equal(await failureType(handle.result()), 'agent_unavailable');
    const status = await handle.query(statusQuery);
    assert.equal(status.nodes.find((n) => n.id === 'restart')?.error?.type, 'agent_unavailable');
    const review = (await claude.anthropic.messages()).find((r) => r.prompt.includes('active (running) since Mon'));
    assert.match(review!.prompt, /<server-output node="status">/);
  });

  test('restartWithReview rejected: no restart is attempted', async () => {
    const handle = await claude.w.client.workflow.start('restartWithReview', {
      taskQueue: claude.w.taskQueue,
      workflowId: uid('example-reject'),
      args: [{ tenant: 't', agent: 'web-1', service: 'nginx', statusText: 'degraded' }],
    });
    await eventually(async () => (await handle.query(pendingGatesQuery)).length === 1, 20_000, 'the confirm gate');
    await handle.signal(approveSignal, { gate: 'confirm', decision: 'reject', approver: 'bob', comment: 'not during peak' });
    assert.equal(await failureType(handle.result()), 'approval_rejected');
    const status = await handle.query(statusQuery);
    assert.equal(status.nodes.find((n) => n.id === 'restart'), undefined, 'the restart node never started');
  });
});
