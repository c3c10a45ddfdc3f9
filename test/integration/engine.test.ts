/**
 * The engine against a real Temporal dev server, a real worker with the Orch plugin, and a real local HTTP
 * server speaking the Anthropic Messages API (its own process): parallel branches, approval gates (approve,
 * reject, timeout, the 24-hour default timer), the destructive-command check at compile and run time, and the
 * cost cap.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { useClaudeWorker } from '../support/claude-worker';
import { eventually, uid } from '../support/harness';
import { approveSignal, pendingGatesQuery, statusQuery, type RunResult } from '../../workflows/shared';

const claude = useClaudeWorker();

const MODEL = 'claude-haiku-4-5';

function startInline(dag: unknown, params: Record<string, unknown> = {}): Promise<WorkflowHandle> {
  return claude.w.client.workflow.start('runDag', {
    taskQueue: claude.w.taskQueue,
    workflowId: uid('engine'),
    args: [{ tenant: 'engine-test', dag, params }],
  });
}

/** Starts an inline DAG of version 1 named `name`, with cost cap `capUsd`. */
const startDag = (name: string, capUsd: number, nodes: unknown[]) => startInline({ name, version: 1, cost_cap_usd: capUsd, nodes });

/** A Claude node on MODEL. */
const ask = (id: string, maxTokens: number, prompt: string, needs?: string[]) => ({ id, type: 'claude', model: MODEL, max_tokens: maxTokens, prompt, ...(needs ? { needs } : {}) });

/** Starts one of the developer-API test workflows (test/support/test-workflows.ts) with `input`. */
function startApi(type: 'destructiveWithGates' | 'parallelClaude', idPrefix: string, input: Record<string, unknown>): Promise<WorkflowHandle> {
  return claude.w.client.workflow.start(type, { taskQueue: claude.w.taskQueue, workflowId: uid(idPrefix), args: [{ tenant: 't', ...input }] });
}

/** The run's rows in the engine-test tenant's audit log. */
const auditRowsOf = (handle: WorkflowHandle) =>
  [...claude.w.store.auditLog('engine-test').rows()].filter((r) => (r.details as { workflowId?: string }).workflowId === handle.workflowId);

/** The failure a run ended with: its stable type and the node named in its details. */
async function failureOf(handle: WorkflowHandle): Promise<{ type?: string; message: string; node?: string }> {
  try {
    await handle.result();
  } catch (err) {
    assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
    const cause = err.cause;
    assert.ok(cause instanceof ApplicationFailure, `expected ApplicationFailure cause, got ${String(cause)}`);
    const details = cause.details?.[0] as { node?: string } | undefined;
    return { type: cause.type ?? undefined, message: cause.message, node: details?.node };
  }
  assert.fail('the run succeeded but was expected to fail');
}

async function waitForGate(handle: WorkflowHandle, gate: string): Promise<void> {
  await eventually(async () => (await handle.query(pendingGatesQuery)).some((g) => g.gate === gate), 20_000, `gate ${gate} to wait`);
}

const messagesWith = async (marker: string) => (await claude.anthropic.messages()).filter((r) => r.prompt.includes(marker));

describe('DAG runs', () => {
  test('independent branches run in parallel and a join sees both parents, wrapped as server output', async () => {
    const m = uid('par');
    const handle = await startDag('parallel', 1, [
      ask('a', 50, `${m} left`),
      ask('b', 50, `${m} right`),
      ask('join', 50, `${m} join ${'${nodes.a.output}'} ${'${nodes.b.output}'}`, ['a', 'b']),
    ]);
    const result = (await handle.result()) as RunResult;
    assert.equal(result.state, 'succeeded');
    assert.deepEqual(Object.keys(result.outputs).sort(), ['a', 'b', 'join']);
    const reqs = await messagesWith(m);
    assert.equal(reqs.length, 3);
    assert.ok(reqs[2]!.prompt.includes(`${m} join`), 'the join node is called last');
    assert.match(reqs[2]!.prompt, /<server-output node="a">\nfake reply to: .* left\n<\/server-output>/);
    assert.match(reqs[2]!.prompt, /<server-output node="b">/);
    assert.match(reqs[2]!.system ?? '', /server-output/i, 'the system prompt says tagged text is data');
    const status = await handle.query(statusQuery);
    assert.deepEqual(status.nodes.map((n) => n.state), ['succeeded', 'succeeded', 'succeeded']);
    assert.equal(status.state, 'succeeded');
    assert.ok(status.cost.spentUsd > 0 && status.cost.reservedUsd === 0);
    assert.equal(result.costUsd, status.cost.spentUsd);
  });

  test('a command node without an enrolled agent fails with agent_unavailable, naming the node', async () => {
    const handle = await startDag('cmd', 1, [
      { id: 'uptime', type: 'command', agent: 'web-1', argv: ['uptime'] },
      { id: 'after', type: 'command', agent: 'web-1', argv: ['true'], needs: ['uptime'] },
    ]);
    const f = await failureOf(handle);
    assert.equal(f.type, 'agent_unavailable');
    assert.equal(f.node, 'uptime');
    const status = await handle.query(statusQuery);
    assert.equal(status.nodes.find((n) => n.id === 'after')?.state, 'skipped');
    assert.equal(status.failure?.node, 'uptime');
  });
});

describe('approval gates', () => {
  const gated = (m: string, gate: Record<string, unknown> = {}) => ({
    name: 'gated',
    version: 1,
    cost_cap_usd: 1,
    nodes: [
      { id: 'ok', type: 'approval_gate', message: 'proceed?', ...gate },
      ask('next', 20, `${m} after the gate`, ['ok']),
    ],
  });

  test('approved: the run goes on, and the decision is in status', async () => {
    const m = uid('approve');
    const handle = await startInline(gated(m));
    await waitForGate(handle, 'ok');
    const pending = await handle.query(pendingGatesQuery);
    assert.equal(pending[0]?.message, 'proceed?');
    assert.equal((await handle.query(statusQuery)).state, 'waiting_approval');
    await handle.signal(approveSignal, { gate: 'ok', decision: 'approve', approver: 'alice', comment: 'looks fine' });
    const result = (await handle.result()) as RunResult;
    assert.equal(result.state, 'succeeded');
    const status = await handle.query(statusQuery);
    assert.match(status.nodes[0]!.summary ?? '', /approved by alice: looks fine/);
    assert.equal((await messagesWith(m)).length, 1);
  });

  test('rejected: the run fails with approval_rejected and no child runs', async () => {
    const m = uid('reject');
    const handle = await startInline(gated(m));
    await waitForGate(handle, 'ok');
    await handle.signal(approveSignal, { gate: 'ok', decision: 'reject', approver: 'bob', comment: 'not now' });
    const f = await failureOf(handle);
    assert.equal(f.type, 'approval_rejected');
    assert.equal(f.node, 'ok');
    assert.equal((await messagesWith(m)).length, 0);
    assert.equal((await handle.query(statusQuery)).nodes[1]!.state, 'skipped');
  });

  test('timed out (short override): the run fails with approval_timeout and no child runs', async () => {
    const m = uid('timeout');
    const handle = await startInline(gated(m, { timeout_seconds: 2 }));
    const f = await failureOf(handle);
    assert.equal(f.type, 'approval_timeout');
    assert.equal(f.node, 'ok');
    assert.equal((await messagesWith(m)).length, 0);
  });

  test('an unknown gate and a malformed signal are ignored, with reasons (signed approvers: approvals.test.ts)', async () => {
    const handle = await startInline(gated(uid('list'), { timeout_seconds: 60 }));
    await waitForGate(handle, 'ok');
    await handle.signal(approveSignal, { gate: 'nope', decision: 'approve', approver: 'carol' });
    await handle.signal(approveSignal, { gate: 'ok', decision: 'yes please', approver: 'carol' } as never);
    const status = await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.ignoredSignals.length === 2 ? s : undefined;
    });
    assert.match(status.ignoredSignals[0]!.reason, /not waiting/);
    assert.match(status.ignoredSignals[1]!.reason, /malformed/);
    assert.equal(status.pendingGates.length, 1, 'still waiting');
    await handle.signal(approveSignal, { gate: 'ok', decision: 'approve', approver: 'carol' });
    assert.equal(((await handle.result()) as RunResult).state, 'succeeded');
  });

  test('a gate naming an approver the tenant does not have fails the run with unknown_approver (no plain signal can pass it)', async () => {
    const handle = await startInline(gated(uid('unknown'), { approvers: ['carol'], timeout_seconds: 60 }));
    const f = await failureOf(handle);
    assert.equal(f.type, 'unknown_approver');
    assert.equal(f.node, 'ok');
  });

  test('the default timeout is a 24-hour timer in the workflow history', async () => {
    const handle = await startInline(gated(uid('default')));
    await waitForGate(handle, 'ok');
    const history = await handle.fetchHistory();
    const timers = (history.events ?? []).filter((e) => e.timerStartedEventAttributes);
    assert.equal(timers.length, 1);
    const seconds = Number(timers[0]!.timerStartedEventAttributes!.startToFireTimeout!.seconds);
    assert.equal(seconds, 86_400);
    await handle.signal(approveSignal, { gate: 'ok', decision: 'approve', approver: 'alice' });
    await handle.result();
  });
});

describe('destructive commands', () => {
  test('refused at compile time without an approval_gate parent', async () => {
    const handle = await startDag('wipe', 1, [{ id: 'wipe', type: 'command', agent: 'db-1', argv: ['rm', '-rf', '/var/lib/app'] }]);
    const f = await failureOf(handle);
    assert.equal(f.type, 'dag_compile_error');
    assert.match(f.message, /wipe/);
    assert.match(f.message, /gate/);
  });

  test('refused at run time when a parameter makes a command destructive', async () => {
    const handle = await startInline(
      {
        name: 'script',
        version: 1,
        cost_cap_usd: 1,
        params: { script: { type: 'string' } },
        nodes: [{ id: 'run-script', type: 'command', agent: 'web-1', argv: ['sh', '-c', '${params.script}'] }],
      },
      { script: 'rm -rf /srv/data' },
    );
    const f = await failureOf(handle);
    assert.equal(f.type, 'destructive_without_gate');
    assert.equal(f.node, 'run-script');
  });

  test('the developer API refuses a destructive command with no approved gate of this run', async () => {
    for (const after of [[], ['never-opened']]) {
      const handle = await startApi('destructiveWithGates', 'api-destructive', { argv: ['mkfs.ext4', '/dev/sdb'], after });
      const f = await failureOf(handle);
      assert.equal(f.type, 'destructive_without_gate', `after=${JSON.stringify(after)}`);
    }
    // Flagged destructive, harmless argv: still refused.
    const flagged = await startApi('destructiveWithGates', 'api-flag', { argv: ['true'], after: [], flag: true });
    assert.equal((await failureOf(flagged)).type, 'destructive_without_gate');
  });

  test('the developer API lets it through after an approved gate (it then needs an agent)', async () => {
    const handle = await startApi('destructiveWithGates', 'api-gated', { argv: ['rm', '-rf', '/tmp/x'], after: ['g'], openGate: 'g' });
    await waitForGate(handle, 'g');
    await handle.signal(approveSignal, { gate: 'g', decision: 'approve', approver: 'alice' });
    const f = await failureOf(handle);
    assert.equal(f.type, 'agent_unavailable', 'passed the destructive check and reached the agent step');
  });
});

describe('cost cap', () => {
  test('a call whose worst case passes the cap fails with cost_cap_exceeded and sends no request', async () => {
    const m = uid('cap');
    const handle = await startDag('expensive', 0.01, [ask('big', 4000, `${m} write a lot`)]);
    const f = await failureOf(handle);
    assert.equal(f.type, 'cost_cap_exceeded');
    assert.equal(f.node, 'big');
    assert.equal((await messagesWith(m)).length, 0, 'no Messages request for that node');
    const status = await handle.query(statusQuery);
    assert.equal(status.cost.spentUsd, 0);
  });

  test('two parallel calls whose sum passes the cap never both call', async () => {
    const m = uid('pair');
    // Each worst case is about $0.0051 (haiku 4.5: $1/MTok in, $5/MTok out, 1000 max tokens); the cap fits one.
    const handle = await startDag('pair', 0.008, [
      ask('left', 1000, `${m} left`),
      ask('right', 1000, `${m} right`),
    ]);
    const f = await failureOf(handle);
    assert.equal(f.type, 'cost_cap_exceeded');
    assert.ok(f.node === 'left' || f.node === 'right');
    // The first to reserve may or may not have sent its request before the failure cancelled it; never both.
    assert.ok((await messagesWith(m)).length <= 1, 'never both sent');
  });

  test('two parallel calls whose sum fits the cap both run', async () => {
    const m = uid('fits');
    const handle = await startDag('pair', 0.011, [
      ask('left', 1000, `${m} left`),
      ask('right', 1000, `${m} right`),
    ]);
    assert.equal(((await handle.result()) as RunResult).state, 'succeeded');
    assert.equal((await messagesWith(m)).length, 2);
  });

  test('a call whose byte bound fits the cap reserves it and asks for no token count', async () => {
    const m = uid('bound');
    const handle = await startDag('bound', 1, [ask('only', 1000, `${m} hello`)]);
    assert.equal(((await handle.result()) as RunResult).state, 'succeeded');
    const paths = (await claude.anthropic.requests()).filter((r) => r.prompt.includes(m)).map((r) => r.path);
    assert.deepEqual(paths, ['/v1/messages']);
  });

  test('a call whose byte bound passes the cap but whose counted tokens fit is counted, then runs', async () => {
    const m = uid('count');
    // Worst case with the byte bound (about 480 tokens of system prompt and prompt): $0.00548; counted exactly
    // (ceil(characters / 4), about 105 tokens): $0.00511. The cap lies between them.
    const handle = await startDag('count', 0.0053, [ask('only', 1000, `${m} hello`)]);
    assert.equal(((await handle.result()) as RunResult).state, 'succeeded');
    const paths = (await claude.anthropic.requests()).filter((r) => r.prompt.includes(m)).map((r) => r.path);
    assert.deepEqual(paths, ['/v1/messages/count_tokens', '/v1/messages']);
  });

  test('the same through the developer API', async () => {
    const handle = await startApi('parallelClaude', 'api-pair', { capUsd: 0.008, maxTokens: 1000, model: MODEL });
    assert.equal((await failureOf(handle)).type, 'cost_cap_exceeded');
  });

  test('real usage replaces the reservation, so a later call fits', async () => {
    const m = uid('settle');
    const handle = await startDag('chain', 0.008, [
      ask('first', 1000, `${m} first`),
      ask('second', 1000, `${m} second`, ['first']),
    ]);
    const result = (await handle.result()) as RunResult;
    assert.equal(result.state, 'succeeded');
    assert.equal((await messagesWith(m)).length, 2);
    assert.ok(result.costUsd < 0.001, `spent ${result.costUsd}: the real usage, not the worst case`);
  });

  test('an overloaded answer (529) is retried with a fresh reservation and billed once', async () => {
    const m = uid('retry');
    await claude.anthropic.failNext(529, 1);
    const handle = await startDag('retry', 1, [ask('flaky', 30, `${m} hello`)]);
    const result = (await handle.result()) as RunResult;
    const reqs = await messagesWith(m);
    assert.deepEqual(reqs.map((r) => r.answered), [529, 200]);
    const status = await handle.query(statusQuery);
    assert.equal(status.nodes[0]!.costUsd, result.costUsd);
  });
});

describe('audit trail of a run', () => {
  test('start, gate decision, Claude call with cost, and the end land once each in the tenant chain, which verifies', async () => {
    const m = uid('audited');
    const handle = await startDag('audited', 1, [
      { id: 'ok', type: 'approval_gate', message: 'go?' },
      ask('ask', 20, `${m} ask`, ['ok']),
    ]);
    await waitForGate(handle, 'ok');
    await handle.signal(approveSignal, { gate: 'ok', decision: 'approve', approver: 'erin', comment: 'fine' });
    const result = (await handle.result()) as RunResult;
    const rows = auditRowsOf(handle);
    assert.deepEqual(
      rows.map((r) => `${r.actor}:${r.action}:${r.subject}`),
      ['orch:run_workflow:audited@1', 'erin:approve_gate:ok', 'orch:claude_call:ask', 'orch:run_finished:audited@1'],
    );
    assert.equal((rows[2]!.details as { costUsd: number }).costUsd, result.costUsd);
    assert.equal((rows[1]!.details as { comment: string }).comment, 'fine');
    assert.equal(claude.w.store.auditLog('engine-test').verify().ok, true);
  });

  test('a Claude call appends its claude_call row from its own activity: no local activity for it or a token count', async () => {
    const m = uid('rowfromactivity');
    const handle = await startDag('rowfromactivity', 1, [
      ask('first', 20, `${m} first`),
      ask('second', 20, `${m} second`, ['first']),
    ]);
    const result = (await handle.result()) as RunResult;
    const rows = auditRowsOf(handle);
    assert.deepEqual(
      rows.map((r) => `${r.action}:${r.subject}`),
      ['run_workflow:rowfromactivity@1', 'claude_call:first', 'claude_call:second', 'run_finished:rowfromactivity@1'],
    );
    const costs = rows.slice(1, 3).map((r) => (r.details as { costUsd: number; attempt: number; runId: string }));
    assert.equal(costs[0]!.costUsd + costs[1]!.costUsd, result.costUsd);
    assert.deepEqual(costs.map((c) => c.attempt), [1, 1]);
    // The run's local activities: only the start's and the end's appends remain of Orch's own per-node steps.
    const history = await handle.fetchHistory();
    const localTypes = (history.events ?? [])
      .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')
      .map((e) => (JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details!.data!.payloads![0]!.data!).toString('utf8')) as { activity_type: string }).activity_type);
    assert.deepEqual(localTypes.filter((t) => t === 'appendAudit' || t === 'countClaudeTokens'), ['appendAudit', 'appendAudit']);
  });
});
