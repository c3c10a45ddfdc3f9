/**
 * `orch plan` as an operator runs it: the real bin/orch.mjs as a child process, asking the local
 * Anthropic-protocol server (its own process, answering tool_use from a script each test sets), with agents
 * enrolled in the desktop's real agents.sqlite, allowlists checked by the real Go agent binary (`orch-agent
 * explain`), DAGs signed and registered in the tenant's database, and the planner's calls audited in its chain.
 * One run goes through `--run` to the suite's Temporal dev server and a worker on this test's task queue.
 */
import { afterAll, beforeAll, beforeEach, describe, test } from '@jest/globals';
import assert from '../support/assert';
import crypto from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startFakeAnthropic, type FakeAnthropic } from '../support/anthropic';
import { startTestWorker, suiteEnv, tempHome, type TestWorker } from '../support/harness';
import { AgentRegistry } from '../../desktop-worker/agent-registry';
import { DEFAULT_PLAN_MODEL } from '../../desktop-worker/commands/plan';
import { DEFAULT_PRICES } from '../../workflows/prices';
import { runOrch, type Ran } from '../support/orch-process';

let anthropic: FakeAnthropic;
let w: TestWorker;
let home: string;


function orch(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return runOrch(args, {
    ...process.env,
    ORCH_HOME: home,
    TEMPORAL_ADDRESS: suiteEnv().address,
    ORCH_TASK_QUEUE: w.taskQueue,
    ANTHROPIC_API_KEY: anthropic.apiKey,
    ANTHROPIC_BASE_URL: anthropic.baseURL,
    ...extraEnv,
  });
}

/** What the model answers next: each element one /v1/messages answer (a tool call with that DAG, or text). */
async function script(...answers: Array<{ tool_input: unknown } | { text: string }>): Promise<void> {
  const r = await fetch(`${anthropic.baseURL}/_script`, { method: 'POST', body: JSON.stringify({ answers }) });
  assert.equal(r.status, 200);
}

interface Recorded {
  path: string;
  prompt: string;
  system?: string;
  tools?: string[];
  messageCount: number;
}
const planCalls = async () => ((await anthropic.requests()) as unknown as Recorded[]).filter((r) => r.path === '/v1/messages');

function auditRows(tenant: string): Array<{ actor: string; action: string; subject: string; details: Record<string, unknown> }> {
  const db = new Database(path.join(home, 'tenants', `${tenant}.sqlite`), { readonly: true });
  try {
    const rows = db.prepare('SELECT actor, action, subject, details FROM audit ORDER BY seq').all() as Array<{ actor: string; action: string; subject: string; details: string }>;
    return rows.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }));
  } finally {
    db.close();
  }
}

const ALLOW_WEB = `version: 1
commands:
  - executable: systemctl
    args: [is-active, { regex: 'nginx' }]
  - executable: systemctl
    args: [restart, { regex: 'nginx' }]
`;
const ALLOW_DB = `version: 1
commands:
  - executable: rm
    args: ['-rf', { path: /srv/app }]
  - executable: df
    args: ['-h']
`;

function enroll(name: string, tier: string, allowlist: string, tenants: string[]): void {
  const registry = AgentRegistry.open(home);
  try {
    const key = () => crypto.randomBytes(32).toString('hex');
    registry.add({ name, signKeyHex: key(), boxKeyHex: key(), tier, allowlist, tenants });
  } finally {
    registry.close();
  }
}

const restartPlan = (extra: Record<string, unknown> = {}) => ({
  name: 'restart-nginx',
  version: 1,
  cost_cap_usd: 0.05,
  nodes: [
    { id: 'check', type: 'command', agent: 'web-1', argv: ['systemctl', 'is-active', 'nginx'] },
    { id: 'restart', type: 'command', agent: 'web-1', argv: ['systemctl', 'restart', 'nginx'], needs: ['check'], destructive: true },
    { id: 'explain', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 200, prompt: 'Say what happened: ${nodes.check.output}', needs: ['restart'] },
  ],
  ...extra,
});

const cleanupPlan = (target: string) => ({
  name: 'clean-cache',
  version: 1,
  cost_cap_usd: 0.01,
  nodes: [
    { id: 'space', type: 'command', agent: 'db-1', argv: ['df', '-h'] },
    // Deletes, and the model did not say destructive: true.
    { id: 'wipe', type: 'command', agent: 'db-1', argv: ['rm', '-rf', target], needs: ['space'] },
  ],
});

beforeAll(async () => {
  anthropic = await startFakeAnthropic();
  home = tempHome();
  w = await startTestWorker({ claude: () => ({ apiKey: anthropic.apiKey, baseURL: anthropic.baseURL }) }, home);
  for (const args of [['init'], ['tenant', 'create', 'acme'], ['tenant', 'create', 'other']]) {
    const r = await orch(args);
    assert.equal(r.code, 0, r.stderr);
  }
  enroll('web-1', 'standard', ALLOW_WEB, ['acme']);
  enroll('db-1', 'infrastructure', ALLOW_DB, ['acme']);
  enroll('mail-9', 'standard', ALLOW_WEB, ['other']);
}, 120_000);

afterAll(async () => {
  await w?.stop();
  await anthropic?.stop();
});

beforeEach(async () => {
  await anthropic.reset();
});

describe('orch plan', () => {
  test('--help, and a missing request is a usage error', async () => {
    const help = await orch(['plan', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: orch plan --tenant T "REQUEST"/);
    assert.match(help.stdout, /--max-cost-usd/);
    const usage = await orch(['plan', '--tenant', 'acme']);
    assert.equal(usage.code, 2);
    const noKey = await orch(['plan', '--tenant', 'acme', 'restart nginx'], { ANTHROPIC_API_KEY: '' });
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /ANTHROPIC_API_KEY is not set/);
    assert.doesNotMatch(noKey.stderr, /\n\s+at /);
  });

  test('a plan without gates gets them, is shown with its worst case against the cap, and nothing is stored', async () => {
    await script({ tool_input: restartPlan() });
    const r = await orch(['plan', '--tenant', 'acme', 'restart nginx on web-1 if it is running']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /inserted approval gate "approve-restart" in front of destructive node "restart" \(the model left it ungated\)/);
    assert.match(r.stdout, /worst-case cost: \$0\.00\d+ \(every Claude node at max_tokens\) against the cap of \$0\.05/);
    assert.match(r.stdout, /- id: approve-restart\n\s+type: approval_gate/);
    assert.match(r.stdout, /nothing stored/);
    // What the model was asked: tool use with the schema, the tenant's agents with tiers and allowlists, and no
    // agent of another tenant.
    const [call] = await planCalls();
    assert.deepEqual(call!.tools, ['submit_dag']);
    assert.match(call!.system ?? '', /- web-1 \(tier standard\)/);
    assert.match(call!.system ?? '', /- db-1 \(tier infrastructure\)/);
    assert.match(call!.system ?? '', /args: \[restart, \{ regex: 'nginx' \}\]/);
    assert.doesNotMatch(call!.system ?? '', /mail-9/);
    const list = await orch(['dag', 'list', '--tenant', 'acme', '--json']);
    assert.deepEqual(JSON.parse(list.stdout), []);
    // The planner's call is in the tenant's chain like a node's, and the chain verifies.
    const row = auditRows('acme').filter((a) => a.action === 'claude_call').pop();
    assert.ok(row, 'claude_call row');
    assert.equal(row.subject, 'plan');
    assert.equal(row.details.purpose, 'plan');
    assert.equal(row.details.model, DEFAULT_PLAN_MODEL);
    assert.ok(DEFAULT_PRICES[DEFAULT_PLAN_MODEL], 'the default model is priced');
    assert.ok((row.details.costUsd as number) > 0 && (row.details.inputTokens as number) > 0);
    const verify = await orch(['audit', 'verify', '--tenant', 'acme']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });

  test('a plan that deletes without destructive: true is marked and gated; --register signs it; a changed destructive node needs approval again', async () => {
    await script({ tool_input: cleanupPlan('/srv/app/cache') });
    const r = await orch(['plan', '--tenant', 'acme', 'free space on db-1', '--register', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(
      out.notes.map((n: { code: string; node: string }) => `${n.code}:${n.node}`),
      ['marked_destructive:wipe', 'gate_inserted:wipe'],
    );
    assert.match(out.yaml, /destructive: true/);
    assert.deepEqual(out.destructiveNodes, ['wipe']);
    assert.equal(out.registered.version, '1');
    const dags = JSON.parse((await orch(['dag', 'list', '--tenant', 'acme', '--json'])).stdout) as Array<{ name: string; version: string; signed: boolean }>;
    assert.deepEqual(dags.map((d) => `${d.name}@${d.version}:${d.signed}`), ['clean-cache@1:true']);

    // Regenerated with only a non-destructive change: a diff, a new version, no new approval needed.
    const quieter = cleanupPlan('/srv/app/cache');
    quieter.nodes[0]!.argv = ['df', '-h'];
    (quieter.nodes[0] as Record<string, unknown>).timeout_seconds = 30;
    await script({ tool_input: quieter });
    const same = await orch(['plan', '--tenant', 'acme', 'free space on db-1, faster']);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /diff against the registered v1:\n\+ version: 2\n- version: 1\n\+ {5}timeout_seconds: 30\nno destructive node or gate changed/);
    assert.match(same.stdout, /no destructive node or gate changed/);

    // The delete's target changes: a new signed version that needs approval again; v1 stays as it was until registered.
    await script({ tool_input: cleanupPlan('/srv/app/tmp') });
    const changed = await orch(['plan', '--tenant', 'acme', 'free space on db-1 in tmp too', '--register']);
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /^- {7}- \/srv\/app\/cache$/m);
    assert.match(changed.stdout, /^\+ {7}- \/srv\/app\/tmp$/m);
    assert.match(changed.stdout, /changed: wipe; v2 is a new signed version and needs approval again at its gates \(runs of v1 are unaffected\)/);
    assert.match(changed.stdout, /registered "clean-cache" v2 in tenant "acme" \(signed/);
    const regs = auditRows('acme').filter((a) => a.action === 'register_dag' && a.subject === 'clean-cache');
    assert.deepEqual(regs.map((a) => a.details.version), ['1', '2']);
  });

  test('unknown agents, refused commands and a cost over the cap are refused with the reason, and nothing is stored', async () => {
    const cases: Array<{ plan: unknown; code: string; reason: RegExp }> = [
      {
        plan: { name: 'mail', version: 1, cost_cap_usd: 0.01, nodes: [{ id: 'q', type: 'command', agent: 'mail-9', argv: ['systemctl', 'is-active', 'nginx'] }] },
        code: 'unknown_agent',
        reason: /agent "mail-9" is not enrolled in this tenant.*tenant "acme" has db-1, web-1/,
      },
      {
        plan: { name: 'stop', version: 1, cost_cap_usd: 0.01, nodes: [{ id: 'ok', type: 'approval_gate', message: 'stop?' }, { id: 'stop', type: 'command', agent: 'web-1', argv: ['systemctl', 'stop', 'nginx'], needs: ['ok'], destructive: true }] },
        code: 'command_not_allowed',
        reason: /node "stop": agent web-1 \(tier standard\) would refuse `systemctl stop nginx`: rule args-mismatch/,
      },
      {
        plan: { name: 'wipe', version: 1, cost_cap_usd: 0.01, nodes: [{ id: 'ok', type: 'approval_gate', message: 'wipe?' }, { id: 'w', type: 'command', agent: 'web-1', argv: ['rm', '-rf', '/srv/app'], needs: ['ok'], destructive: true }] },
        code: 'command_not_allowed',
        reason: /agent web-1 \(tier standard\) would refuse `rm -rf \/srv\/app`: rule destructive-pattern/,
      },
      {
        plan: { name: 'essay', version: 1, cost_cap_usd: 0.01, nodes: [{ id: 'e', type: 'claude', model: 'claude-sonnet-4-5', prompt: 'write', max_tokens: 100000 }] },
        code: 'plan_over_cost_cap',
        reason: /worst case \$1\.50\d+ \(every Claude node at max_tokens\) is over its cost cap \$0\.01/,
      },
    ];
    for (const [i, c] of cases.entries()) {
      await script({ tool_input: c.plan });
      const r = await orch(['plan', '--tenant', 'acme', 'do it', '--register', '--json']);
      assert.equal(r.code, 1, `${c.code}: ${r.stdout}`);
      const out = JSON.parse(r.stdout) as { ok: boolean; refusals: Array<{ code: string; message: string }> };
      assert.equal(out.ok, false);
      assert.ok(out.refusals.some((f) => f.code === c.code && c.reason.test(f.message)), `${c.code}: ${JSON.stringify(out.refusals)}`);
      if (i > 0) continue;
      // The same refusal as a person reads it (once: each CLI process takes seconds to start).
      await script({ tool_input: c.plan });
      const text = await orch(['plan', '--tenant', 'acme', 'do it', '--register']);
      assert.equal(text.code, 1);
      assert.match(text.stderr, /refused the plan .* nothing was stored/);
      assert.match(text.stderr, c.reason);
      assert.doesNotMatch(text.stderr, /\n\s+at /);
    }
    const names = (JSON.parse((await orch(['dag', 'list', '--tenant', 'acme', '--json'])).stdout) as Array<{ name: string }>).map((d) => d.name);
    for (const n of ['mail', 'stop', 'wipe', 'essay']) assert.ok(!names.includes(n), n);
  });

  test('an answer off the schema is sent back once with the problems, then reported; a corrected one is accepted', async () => {
    const bad = { name: 'x', version: 1, cost_cap_usd: '1', nodes: [{ id: 'a', type: 'command', agent: 'web-1', argv: 'systemctl restart nginx' }] };
    await script({ tool_input: bad }, { text: 'I cannot' });
    const r = await orch(['plan', '--tenant', 'acme', 'restart nginx', '--json']);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    assert.equal(out.error.code, 'plan_invalid');
    assert.match(out.error.message, /after 2 attempts: the answer did not call the submit_dag tool/);
    const calls = await planCalls();
    assert.equal(calls.length, 2, 'one retry, no more');
    assert.equal(calls[1]!.messageCount, 3, 'the retry continues the conversation');
    assert.match(calls[1]!.prompt, /does not match the schema:\ncost_cap_usd: must be number[^\n]*\nnodes\[0\]\.argv: must be array/);

    await anthropic.reset();
    await script({ tool_input: bad }, { tool_input: restartPlan({ name: 'retried' }) });
    const ok = await orch(['plan', '--tenant', 'acme', 'restart nginx', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const planned = JSON.parse(ok.stdout) as { name: string; planner: { attempts: number } };
    assert.equal(planned.name, 'retried');
    assert.equal(planned.planner.attempts, 2);
    const rows = auditRows('acme').filter((a) => a.action === 'claude_call' && a.subject === 'plan').slice(-2);
    assert.deepEqual(rows.map((a) => a.details.attempt), [1, 2], 'both calls audited');
  });

  test("the planner's own call is capped: over --max-cost-usd nothing is sent, and the refusal is audited", async () => {
    await script({ tool_input: restartPlan() });
    const r = await orch(['plan', '--tenant', 'acme', 'restart nginx', '--max-cost-usd', '0.001']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the planner's call would pass its cost cap: .* > --max-cost-usd \$0\.001; raise --max-cost-usd or lower --max-tokens/);
    assert.equal((await planCalls()).length, 0, 'no billable request was made');
    const last = auditRows('acme').pop()!;
    assert.equal(last.action, 'cost_cap_exceeded');
    assert.equal(last.subject, 'plan');
    assert.equal(last.details.capUsd, 0.001);
    const fits = await orch(['plan', '--tenant', 'acme', 'restart nginx', '--max-cost-usd', '0.5', '--max-tokens', '1000']);
    assert.equal(fits.code, 0, fits.stderr);
  });

  test('--run registers and starts it as orch run does', async () => {
    await script({
      tool_input: { name: 'summarise', version: 1, cost_cap_usd: 0.01, nodes: [{ id: 'say', type: 'claude', model: 'claude-haiku-4-5', prompt: 'say hello', max_tokens: 50 }] },
    });
    const r = await orch(['plan', '--tenant', 'acme', 'say hello', '--run', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const [planned, started] = r.stdout.split(/\n(?=\{)/).map((t) => JSON.parse(t) as Record<string, unknown>);
    assert.equal((planned!.registered as { version: string }).version, '1');
    assert.equal(started!.dag, 'summarise');
    const result = (await w.client.workflow.getHandle(started!.workflowId as string).result()) as { costUsd: number };
    assert.ok(result.costUsd > 0);
  }, 60_000);
});
