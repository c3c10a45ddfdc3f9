/**
 * `orch runs` and `orch runs show` through the real CLI process against the suite's Temporal dev server: runs are
 * listed from Temporal's visibility store by tenant, DAG and state, and one run is shown beside the audit rows it
 * wrote; a run Temporal does not have is shown from its audit rows, filters cannot be injected into the query.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import assert from '../support/assert';
import { eventually, startTestWorker, suiteEnv, uid, type TestWorker } from '../support/harness';
import { Worker } from '@temporalio/worker';
import { approveSignal, statusQuery } from '../../workflows/shared';
import { runOrch } from '../support/orch-process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

let w: TestWorker;
const TENANT = 't';
const doneId = uid('runs-done');
const waitingId = uid('runs-waiting');
/** A run terminated while it waited: its OrchState stays waiting_approval, but it is not waiting any more. */
const terminatedId = uid('runs-terminated');
const dagName = uid('runs-dag');

function orch(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runOrch(args, { ...process.env, ORCH_HOME: w.home, TEMPORAL_ADDRESS: suiteEnv().address, ORCH_TASK_QUEUE: w.taskQueue });
}

type Row = { workflowId: string; tenant: string; dag: string; state: string; temporalStatus: string };
const listed = async (args: string[]): Promise<Row[]> => {
  const r = await orch(['runs', ...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Row[];
};

beforeAll(async () => {
  w = await startTestWorker();
  const dag = { name: dagName, version: 1, cost_cap_usd: 1, nodes: [{ id: 'gate', type: 'approval_gate', message: 'go?' }] };
  await w.client.workflow.start('runDag', { taskQueue: w.taskQueue, workflowId: waitingId, args: [{ tenant: TENANT, dag }] });
  const done = await w.client.workflow.start('runDag', { taskQueue: w.taskQueue, workflowId: doneId, args: [{ tenant: TENANT, dag }] });
  await eventually(async () => (await done.query(statusQuery)).state === 'waiting_approval', 30_000, 'the run to wait at its gate');
  const stale = await w.client.workflow.start('runDag', {
    taskQueue: uid('no-worker'),
    workflowId: terminatedId,
    args: [],
    searchAttributes: { OrchTenant: [TENANT], OrchDag: [dagName], OrchState: ['waiting_approval'] },
  });
  await stale.terminate('test: terminated while waiting');
  await done.signal(approveSignal, { gate: 'gate', decision: 'approve', approver: 'tester' });
  await done.result();
  // Visibility is eventually consistent: wait until both runs are listed in their states.
  await eventually(async () => {
    const rows = await listed(['--tenant', TENANT, '--dag', dagName]);
    const s = (id: string) => rows.find((r) => r.workflowId === id)?.state;
    return s(doneId) === 'succeeded' && s(waitingId) === 'waiting_approval' && rows.find((r) => r.workflowId === terminatedId)?.temporalStatus === 'TERMINATED';
  }, 60_000, 'both runs in visibility');
}, 120_000);

afterAll(async () => {
  await w?.client.workflow.getHandle(waitingId).terminate('test over').catch(() => undefined);
  await w?.stop();
});

describe('orch runs', () => {
  test('lists runs by tenant and DAG, and filters by state', async () => {
    const all = await listed(['--tenant', TENANT, '--dag', dagName]);
    expect(all.map((r) => r.workflowId).sort()).toEqual([doneId, waitingId, terminatedId].sort());
    expect(all.every((r) => r.tenant === TENANT && r.dag === dagName)).toBe(true);
    // Only the run still waiting: not the one terminated at its gate, whose OrchState still says waiting_approval.
    expect((await listed(['--tenant', TENANT, '--dag', dagName, '--state', 'waiting'])).map((r) => r.workflowId)).toEqual([waitingId]);
    expect((await listed(['--tenant', TENANT, '--dag', dagName, '--state', 'succeeded'])).map((r) => r.workflowId)).toEqual([doneId]);
    expect(await listed(['--tenant', 'engine-test', '--dag', dagName])).toEqual([]);
    const text = await orch(['runs', '--tenant', TENANT, '--dag', dagName]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`${waitingId}\\s+${TENANT}\\s+${dagName}\\s+waiting_approval`));
  });

  test('bad filters are usage errors, and cannot reach the query', async () => {
    const state = await orch(['runs', '--state', 'sleeping']);
    expect(state.code).toBe(2);
    expect(state.stderr).toMatch(/--state must be one of running, waiting, failed, succeeded/);
    const injected = await orch(['runs', '--tenant', "t' OR OrchTenant IS NOT NULL OR '"]);
    expect(injected.code).not.toBe(0);
    expect(injected.stdout).toBe('');
    expect((await orch(['runs', '--dag', "x' OR '1'='1"])).code).toBe(2);
    expect((await orch(['runs', '--limit', '0'])).code).toBe(2);
  });

  test('orch runs show: the node table beside the audit rows the run wrote', async () => {
    const r = await orch(['runs', 'show', doneId, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as { statusError?: string; tenant: string; temporal: { status: string }; status: { nodes: Array<{ id: string; state: string }> } | null; audit: Array<{ action: string; details: { workflowId?: string } }> };
    expect(shown.tenant).toBe(TENANT);
    expect(shown.temporal.status).toBe('COMPLETED');
    expect(shown.statusError).toBeUndefined();
    expect(shown.status?.nodes.find((n) => n.id === 'gate')?.state).toBe('succeeded');
    const actions = shown.audit.map((a) => a.action);
    expect(actions).toContain('approve_gate');
    expect(shown.audit.every((a) => a.details.workflowId === doneId)).toBe(true);
    const text = await orch(['runs', 'show', doneId]);
    expect(text.stdout).toMatch(/audit rows \(\d+\):/);
    expect(text.stdout).toContain('approve_gate');
    // The chain holding the rows is checked: this home has no desktop identity, so its hash links only.
    const chain = (JSON.parse(r.stdout) as { chain: { ok: boolean; hashesOnly: boolean } }).chain;
    expect(chain).toMatchObject({ ok: true, hashesOnly: true });
    expect(text.stdout).toMatch(/OK: tenant "t" audit chain verified, \d+ rows.*hash links only/);
  });

  test("orch runs show says when the chain holding the run's rows is broken, and exits 1", async () => {
    const file = path.join(w.home, 'tenants', `${TENANT}.sqlite`);
    assert.ok(fs.existsSync(file), file);
    const db = new Database(file);
    const row = db.prepare("SELECT seq, details FROM audit WHERE action = 'approve_gate' AND details LIKE ?").get(`%${doneId}%`) as { seq: number; details: string };
    try {
      db.prepare('UPDATE audit SET details = ? WHERE seq = ?').run(row.details.replace('"tester"', '"mallory"'), row.seq);
      const r = await orch(['runs', 'show', doneId, '--json']);
      expect(r.code).toBe(1);
      const chain = (JSON.parse(r.stdout) as { chain: { ok: boolean; firstBadSeq: number; rowsInDoubt: number } }).chain;
      expect(chain.ok).toBe(false);
      expect(chain.firstBadSeq).toBe(row.seq);
      expect(chain.rowsInDoubt).toBeGreaterThan(0);
      const text = await orch(['runs', 'show', doneId]);
      expect(text.code).toBe(1);
      expect(text.stderr).toMatch(new RegExp(`BROKEN: tenant "t" audit chain breaks at seq ${row.seq}: .*of this run's rows are at or past the break`));
    } finally {
      db.prepare('UPDATE audit SET details = ? WHERE seq = ?').run(row.details, row.seq);
      db.close();
    }
    expect((await orch(['runs', 'show', doneId])).code).toBe(0);
  });

  test("the runs' histories replay (a query on a closed run, or a restarted worker, replays them)", async () => {
    for (const id of [doneId, waitingId]) {
      const history = await w.client.workflow.getHandle(id).fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: { codePath: suiteEnv().bundlePath } }, history, id);
    }
  });

  test('a run Temporal does not have: shown from its audit rows with --tenant, else a clear error', async () => {
    const none = await orch(['runs', 'show', 'no-such-run']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/Temporal has no run "no-such-run".*--tenant/);
    const noRows = await orch(['runs', 'show', 'no-such-run', '--tenant', TENANT]);
    expect(noRows.code).toBe(1);
    expect(noRows.stderr).toMatch(/no audit row of tenant "t" names it/);
  });
});
