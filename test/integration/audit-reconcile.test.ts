/**
 * `orch audit reconcile --tenant T` (the real CLI as a child process) against the suite's real dev server: it
 * holds the tenant's audit log against the runs Temporal lists for the tenant (search attribute OrchTenant).
 *
 * Every finding comes from something that really happened, not from rows written by hand:
 * - run_without_audit: a run of the tenant executed by a worker that has no audit sink (a developer's own
 *   worker): the workflow set OrchTenant itself, but no row was written;
 * - run_without_finish: an audited run parked at its gate and then terminated in Temporal, so its run_finished
 *   row never came;
 * - audit_without_run: an audited, finished run deleted from Temporal (what the namespace's retention does).
 * A tenant whose runs all finished under an audited worker reconciles clean, exit 0.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import type { WorkflowHandle } from '@temporalio/client';
import { approveSignal, pendingGatesQuery, type RunResult } from '../../workflows/shared';
import { eventually, startTestWorker, suiteEnv, uid, type TestWorker } from '../support/harness';

const TENANT = uid('rec');
let audited: TestWorker;
let unaudited: TestWorker;

interface Report {
  tenant: string;
  runs: number;
  auditedRuns: number;
  findings: Array<{ kind: string; workflowId: string; runId: string; detail: string }>;
}

function reconcile(json: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, ORCH_HOME: audited.home, TEMPORAL_ADDRESS: suiteEnv().address, TEMPORAL_NAMESPACE: 'default' };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/orch.mjs', 'audit', 'reconcile', '--tenant', TENANT, ...(json ? ['--json'] : [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/**
 * Reconciles until the report satisfies `ok`. Temporal's visibility follows a run's changes within moments, but a
 * deletion is processed asynchronously and, on a loaded 2-core machine, can take tens of seconds to leave the list.
 */
async function reconcileUntil(ok: (r: Report, code: number) => boolean, what: string): Promise<{ report: Report; code: number }> {
  let last = '';
  try {
    return await eventually(async () => {
      const r = await reconcile(true);
      last = `${r.code} ${r.stdout} ${r.stderr}`;
      const report = JSON.parse(r.stdout) as Report;
      return ok(report, r.code) ? { report, code: r.code } : undefined;
    }, 90_000, what);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last reconcile: ${last}`);
  }
}

const gatedDag = { name: 'reconciled', version: 1, cost_cap_usd: 1, nodes: [{ id: 'gate', type: 'approval_gate', message: 'go?' }] };

async function startRun(worker: TestWorker, prefix: string): Promise<WorkflowHandle> {
  const handle = await worker.client.workflow.start('runDag', { taskQueue: worker.taskQueue, workflowId: uid(prefix), args: [{ tenant: TENANT, dag: gatedDag }] });
  await eventually(async () => (await handle.query(pendingGatesQuery)).length === 1, 30_000, `the gate of ${handle.workflowId}`);
  return handle;
}

async function finishRun(worker: TestWorker, prefix: string): Promise<{ workflowId: string; runId: string }> {
  const handle = await startRun(worker, prefix);
  await handle.signal(approveSignal, { gate: 'gate', decision: 'approve', approver: 'alice' });
  assert.equal(((await handle.result()) as RunResult).state, 'succeeded');
  return { workflowId: handle.workflowId, runId: (await handle.describe()).runId };
}

beforeAll(async () => {
  audited = await startTestWorker();
  audited.store.create(TENANT, 'tester');
  // A worker without an audit sink: it runs the same workflows, and records nothing.
  unaudited = await startTestWorker({ audit: undefined });
});

afterAll(async () => {
  await unaudited?.stop();
  await audited?.stop();
});

test('a tenant whose runs all have their audit rows reconciles clean', async () => {
  const run = await finishRun(audited, 'rec-clean');
  const { report, code } = await reconcileUntil((r) => r.runs === 1, 'the finished run in visibility');
  assert.equal(code, 0, JSON.stringify(report));
  assert.deepEqual(report.findings, []);
  assert.equal(report.auditedRuns, 1);
  const rows = [...audited.store.auditLog(TENANT).rows({ workflowId: run.workflowId })].map((r) => r.action);
  assert.ok(rows.includes('run_workflow') && rows.includes('run_finished'), rows.join(','));
  const text = await reconcile(false);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^OK: every run has its audit rows/m);
});

test('reconcile names a run without audit rows, a run without its finish row, and rows without a run', async () => {
  // Executed by the worker that records nothing: Temporal lists it for the tenant, the log has no row of it.
  const unrecorded = await finishRun(unaudited, 'rec-unaudited');
  assert.equal([...audited.store.auditLog(TENANT).rows({ workflowId: unrecorded.workflowId })].length, 0);

  // Audited start, then terminated in Temporal while parked: no run_finished row.
  const parked = await startRun(audited, 'rec-terminated');
  await parked.terminate('reconcile test');
  const terminated = { workflowId: parked.workflowId, runId: (await parked.describe()).runId };

  // Audited from start to finish, then deleted from Temporal: its rows name a run Temporal no longer has.
  const deleted = await finishRun(audited, 'rec-deleted');
  await audited.client.workflowService.deleteWorkflowExecution({ namespace: 'default', workflowExecution: deleted });

  const expected = [
    { kind: 'run_without_audit', ...unrecorded },
    { kind: 'run_without_finish', ...terminated },
    { kind: 'audit_without_run', ...deleted },
  ].sort((a, b) => a.kind.localeCompare(b.kind));
  const summary = (r: Report) =>
    JSON.stringify(r.findings.map((f) => ({ kind: f.kind, workflowId: f.workflowId, runId: f.runId })).sort((a, b) => a.kind.localeCompare(b.kind)));
  const { report, code } = await reconcileUntil((r) => summary(r) === JSON.stringify(expected), 'all three findings');
  assert.equal(code, 1, 'any finding exits 1');
  assert.equal(report.runs, 3, 'Temporal lists the clean, the unaudited and the terminated run');
  assert.equal(report.auditedRuns, 3, 'the log names the clean, the terminated and the deleted run');

  const text = await reconcile(false);
  assert.equal(text.code, 1);
  for (const f of expected) assert.ok(text.stdout.includes(`${f.kind}: ${f.workflowId} (run ${f.runId})`), text.stdout);
});
