/**
 * The audit row's limits are stated once (workflows/dag/limits.ts) and held where the user writes the values: a
 * gate message or an argv too large for its row fails to compile (dag validate/register/run), a param that makes
 * an argv too large and an `--id` too long fail `orch run` before anything starts. The derived limits are checked
 * against a real AuditLog: values at the limit are appended, so nothing that passes the checks can be refused
 * by the audit append at run time.
 */
import { afterAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../../activities';
import { AUDIT_LIMITS, AuditLog, AuditLogError } from '../../desktop-worker/audit-log';
import { compileDag, runAuditIssues } from '../../workflows/dag/compile';
import * as L from '../../workflows/dag/limits';
import { DEFAULT_PRICES } from '../../workflows/prices';

const dir = mkdtempSync(join(tmpdir(), 'orch-audit-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const freshLog = () => new AuditLog(new Database(join(dir, `${randomUUID()}.sqlite`)), 'acme');

const MAX_ID = 'n'.repeat(L.MAX_NAME_LENGTH);
/** Every step the runner writes (workflows/session.ts), with the longest node id and counters. */
const STEPS = ['start', 'end', `gate/${MAX_ID}`, `command/${MAX_ID}/sent`, `command/${MAX_ID}/result`, `claude/${MAX_ID}/99/cap`, `claude/${MAX_ID}/99`];

/** A string of exactly `bytes` bytes as a JSON string in UTF-8, made of the costliest characters (6 bytes each). */
function costly(bytes: number): string {
  const controls = '\u0001'.repeat(Math.floor((bytes - 2) / 6));
  return controls + 'a'.repeat(bytes - 2 - controls.length * 6);
}

describe('one statement of the audit row limits', () => {
  test('the audit log enforces exactly the limits in limits.ts', () => {
    assert.equal(AUDIT_LIMITS, L.AUDIT_ROW_LIMITS);
  });

  test('jsonUtf8Bytes counts what the row stores', () => {
    for (const v of ['plain', 'é€😀', '\u0001"\\', ['a', 'b\n'], '\uD800 lone']) assert.equal(L.jsonUtf8Bytes(v), Buffer.byteLength(JSON.stringify(v), 'utf8'));
    assert.equal(L.jsonUtf8Bytes(costly(1000)), 1000);
  });
});

describe('values at the limits fit a real audit row', () => {
  const workflowId = 'w'.repeat(L.MAX_WORKFLOW_ID_LENGTH);
  const runId = randomUUID();

  test('the longest workflow id with every step the runner writes', () => {
    const log = freshLog();
    for (const step of STEPS) {
      assert.ok(step.length <= L.MAX_AUDIT_STEP_LENGTH, step);
      log.append({ actor: 'orch', action: 'run_workflow', subject: 's', details: {}, idempotencyKey: `${workflowId}/${runId}/${step}` });
    }
    // One character more and the longest step no longer fits: the limit is the row's, not a guess.
    const longest = 'x'.repeat(L.MAX_AUDIT_STEP_LENGTH);
    assert.throws(() => log.append({ actor: 'orch', action: 'x', subject: 's', idempotencyKey: `${workflowId}w/${runId}/${longest}` }), AuditLogError);
  });

  test('the largest gate message, with the row it is written in', () => {
    freshLog().append({
      actor: 'a'.repeat(100),
      action: 'approve_gate',
      subject: MAX_ID,
      details: { workflowId, runId, comment: null, message: costly(L.MAX_GATE_MESSAGE_AUDIT_BYTES) },
    });
  });

  test('the largest argv, with the row it is written in', () => {
    const argv = ['echo', costly(L.MAX_ARGV_AUDIT_BYTES - 9)];
    assert.equal(L.jsonUtf8Bytes(argv), L.MAX_ARGV_AUDIT_BYTES);
    freshLog().append({
      actor: 'orch',
      action: 'command_sent',
      subject: MAX_ID,
      details: { workflowId, runId, agent: 'a'.repeat(L.MAX_AGENT_NAME_LENGTH), argv, commandId: `${workflowId}/${runId}/${MAX_ID}` },
    });
  });
});

const compile = (nodes: unknown[], params: Record<string, unknown> = {}) =>
  compileDag({ name: 'limits', version: 1, cost_cap_usd: 1, params, nodes }, { knownModels: Object.keys(DEFAULT_PRICES) });
const codesOf = (r: ReturnType<typeof compile>) => (r.ok ? [] : r.issues.map((i) => `${i.code} ${i.field}`));

describe('refused at compile time, naming the node and field', () => {
  test('a gate message over the row limit (a 50,000-character message compiled before)', () => {
    const long = compile([{ id: 'ok', type: 'approval_gate', message: 'm'.repeat(50_000) }]);
    assert.deepEqual(codesOf(long), ['too_large_for_audit nodes[0].message']);
    assert.ok(!long.ok && /bytes in the gate's audit row, over the limit of 16384/.test(long.issues[0]!.message));
    assert.deepEqual(codesOf(compile([{ id: 'ok', type: 'approval_gate', message: costly(L.MAX_GATE_MESSAGE_AUDIT_BYTES) }])), []);
    assert.deepEqual(codesOf(compile([{ id: 'ok', type: 'approval_gate', message: costly(L.MAX_GATE_MESSAGE_AUDIT_BYTES + 1) }])), ['too_large_for_audit nodes[0].message']);
  });

  test('an argv over the row limit (each element within its own limit)', () => {
    const argv = ['echo', ...Array.from({ length: 9 }, () => 'x'.repeat(L.MAX_ARGV_ELEMENT_LENGTH))];
    assert.deepEqual(codesOf(compile([{ id: 'big', type: 'command', agent: 'web-1', argv }])), ['too_large_for_audit nodes[0].argv']);
    const fits = ['echo', ...Array.from({ length: 7 }, () => 'x'.repeat(L.MAX_ARGV_ELEMENT_LENGTH))];
    assert.deepEqual(codesOf(compile([{ id: 'big', type: 'command', agent: 'web-1', argv: fits }])), []);
  });

  test('params that make an argv too large fail before the run (orch run), and fitting ones pass', () => {
    const r = compile([{ id: 'put', type: 'command', agent: 'web-1', argv: ['echo', '${params.a}', '${params.a}', '${params.a}', '${params.a}', '${params.a}'] }], {
      a: { type: 'string' },
    });
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.deepEqual(runAuditIssues(r.dag, { a: 'short' }), []);
    const issues = runAuditIssues(r.dag, { a: 'é'.repeat(4000) });
    assert.deepEqual(issues.map((i) => [i.code, i.node]), [['too_large_for_audit', 'put']]);
    assert.match(issues[0]!.message, /argv with these params takes \d+ bytes/);
  });
});

describe('workflow ids', () => {
  test('up to MAX_WORKFLOW_ID_LENGTH (90) characters', () => {
    assert.equal(L.MAX_WORKFLOW_ID_LENGTH, 90);
    assert.equal(L.workflowIdProblem('w'.repeat(90)), undefined);
    assert.match(L.workflowIdProblem('w'.repeat(91)) ?? '', /91 characters, over the limit of 90/);
  });

  test('orch run --id refuses a longer id before reading anything, with a one-line error', async () => {
    const cli = fileURLToPath(new URL('../../bin/orch.mjs', import.meta.url));
    const run = (id: string) =>
      new Promise<{ code: number; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [cli, 'run', 'some-dag', '--tenant', 'acme', '--id', id], {
          env: { ...process.env, ORCH_HOME: join(dir, 'home') },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('exit', (code) => resolve({ code: code ?? 1, stderr }));
      });
    const long = await run('r'.repeat(91));
    assert.equal(long.code, 2, long.stderr);
    assert.match(long.stderr, /--id: the workflow id is 91 characters, over the limit of 90/);
    assert.ok(!/\n\s+at /.test(long.stderr), long.stderr);
    // 90 passes the check and fails later, for another reason (no such tenant here).
    const fits = await run('r'.repeat(90));
    assert.doesNotMatch(fits.stderr, /--id/);
  });
});

describe('a row the log refuses at run time', () => {
  test('the appendAudit activity fails at once, non-retryable, as audit_entry_invalid', async () => {
    const log = freshLog();
    const acts = createActivities({
      registry: { loadDag: () => ({ source: {}, hash: '' }) },
      prices: () => DEFAULT_PRICES,
      claude: () => ({}),
      audit: { append: (r) => ({ seq: log.append(r).seq }) },
    });
    const base = { tenant: 'acme', actor: 'orch', action: 'run_workflow', subject: 's', idempotencyKey: randomUUID() };
    for (const bad of [{ ...base, idempotencyKey: 'k'.repeat(257) }, { ...base, details: { text: 'lone \uD800' } }]) {
      await assert.rejects(acts.appendAudit(bad), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure, String(err));
        assert.equal(err.type, 'audit_entry_invalid');
        assert.equal(err.nonRetryable, true);
        return true;
      });
    }
    assert.deepEqual(await acts.appendAudit({ ...base, details: { text: 'fine' } }), { seq: 1 });
  });
});
