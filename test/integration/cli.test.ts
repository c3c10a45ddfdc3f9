/**
 * The `orch` command as an operator uses it: the real bin/orch.mjs as a child process, against the suite's real
 * Temporal dev server (through TEMPORAL_ADDRESS, i.e. @temporalio/envconfig, the same path as a cluster), with a
 * worker on the test's own task queue sharing ORCH_HOME.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeAnthropic, type FakeAnthropic } from '../support/anthropic';
import { SUITE_TENANTS, eventually, startTestWorker, suiteEnv, tempHome, type TestWorker } from '../support/harness';
import { runOrch, startOrch, type Ran } from '../support/orch-process';
import { watchHistory } from '../../desktop-worker/commands/follow';
import { statusQuery } from '../../workflows/shared';

let anthropic: FakeAnthropic;
let w: TestWorker;
let home: string;
let dagDir: string;


function orchEnv(extraEnv: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, ORCH_HOME: home, TEMPORAL_ADDRESS: suiteEnv().address, ORCH_TASK_QUEUE: w.taskQueue, ...extraEnv };
}

function orch(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return runOrch(args, orchEnv(extraEnv));
}

function writeDag(name: string, text: string): string {
  const file = path.join(dagDir, name);
  fs.writeFileSync(file, text);
  return file;
}

const GOOD = `
name: cli-demo
version: 3
cost_cap_usd: 0.1
params:
  service: { type: string, default: nginx }
nodes:
  - id: note
    type: claude
    model: claude-haiku-4-5
    max_tokens: 20
    prompt: "cli says restart \${params.service}"
  - id: ok
    type: approval_gate
    needs: [note]
    message: "restart \${params.service}?"
`;

beforeAll(async () => {
  anthropic = await startFakeAnthropic();
  home = tempHome();
  w = await startTestWorker({ claude: () => ({ apiKey: anthropic.apiKey, baseURL: anthropic.baseURL }) }, home);
  dagDir = fs.mkdtempSync(path.join(home, 'dags-'));
  // The desktop identity (keys in the test run's own keychain): tenant creation and DAG registration sign with it.
  const init = await orch(['init']);
  assert.equal(init.code, 0, init.stderr);
});

afterAll(async () => {
  await w?.stop();
  await anthropic?.stop();
});

describe('orch CLI', () => {
  test('--help on every command, exit 0; no command or an unknown one is a usage error (2)', async () => {
    for (const c of ['up', 'tenant', 'dag', 'run', 'approve', 'status', 'init', 'whoami', 'agent', 'relay']) {
      const r = await orch([c, '--help']);
      assert.equal(r.code, 0, c);
      assert.match(r.stdout, /^usage: orch /, c);
    }
    assert.equal((await orch(['--help'])).code, 0);
    assert.equal((await orch([])).code, 2);
    const unknown = await orch(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const badFlag = await orch(['status', 'x', '--frob']);
    assert.equal(badFlag.code, 2);
    assert.doesNotMatch(badFlag.stderr, /\n\s+at /, 'no stack trace');
  });

  test('tenant create validates names and never writes outside ORCH_HOME', async () => {
    const ok = await orch(['tenant', 'create', 'acme', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const file = JSON.parse(ok.stdout).file as string;
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal((await orch(['tenant', 'create', 'acme'])).code, 1, 'exists already');
    for (const bad of ['../x', 'a/b', '..', '', 'x'.repeat(200), 'dot.name']) {
      const r = await orch(['tenant', 'create', bad]);
      assert.equal(r.code, bad === '' ? 2 : 1, `tenant ${JSON.stringify(bad)}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
    const others = new Set(SUITE_TENANTS.map((t) => `${t}.sqlite`));
    assert.deepEqual(fs.readdirSync(path.join(home, 'tenants')).filter((f) => f.endsWith('.sqlite') && !others.has(f)), ['acme.sqlite']);
    assert.deepEqual(fs.readdirSync(home).filter((f) => !['tenants', 'identity.json'].includes(f) && !f.startsWith('dags-')), [], 'nothing else written');
    const list = await orch(['tenant', 'list', '--json']);
    assert.ok((JSON.parse(list.stdout) as string[]).includes('acme'));
  });

  test('dag validate reports every problem with its node, one line each, exit 1; a good file exits 0', async () => {
    const good = writeDag('good.yaml', GOOD);
    const v = await orch(['dag', 'validate', good]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /OK — DAG "cli-demo" v3, 2 nodes/);
    const bad = writeDag('bad.yaml', `name: bad\nversion: 1\ncost_cap_usd: 1\nnodes:\n  - {id: a, type: command, agent: web-1, argv: [rm, -rf, /srv]}\n  - {id: b, type: claude, model: gpt-9, max_tokens: 10, prompt: hi, needs: [zz]}\n`);
    const r = await orch(['dag', 'validate', bad, '--json']);
    assert.equal(r.code, 1);
    const issues = JSON.parse(r.stdout).issues as Array<{ code: string; node?: string }>;
    const codes = issues.map((i) => `${i.node}:${i.code}`);
    assert.ok(codes.includes('a:destructive_without_gate'), codes.join(','));
    assert.ok(issues.some((i) => i.node === 'b' && /model/.test(i.code)), codes.join(','));
    assert.ok(issues.some((i) => i.node === 'b' && /parent/.test(i.code)), codes.join(','));
    const missing = await orch(['dag', 'validate', path.join(dagDir, 'nope.yaml')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read/);
    const broken = await orch(['dag', 'validate', writeDag('broken.yaml', 'name: [unclosed\n')]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /line \d+/i);
  });

  test('register, run --follow with an approval from a second terminal, status --json', async () => {
    const file = writeDag('cli-demo.yaml', GOOD);
    const unknownTenant = await orch(['dag', 'register', file, '--tenant', 'ghost']);
    assert.equal(unknownTenant.code, 1);
    assert.match(unknownTenant.stderr, /tenant "ghost" does not exist/);
    assert.equal((await orch(['tenant', 'create', 'ops'])).code, 0);
    const reg = await orch(['dag', 'register', file, '--tenant', 'ops', '--json']);
    assert.equal(reg.code, 0, reg.stderr);
    assert.match(JSON.parse(reg.stdout).hash, /^[0-9a-f]{64}$/);

    const badParam = await orch(['run', 'cli-demo', '--tenant', 'ops', '--param', 'nope=1']);
    assert.equal(badParam.code, 1);
    assert.match(badParam.stderr, /nope/);
    assert.equal((await orch(['run', 'cli-demo', '--tenant', 'ops', '--param', 'novalue'])).code, 2);

    const workflowId = `cli-run-${Date.now()}`;
    const following = startOrch(['run', 'cli-demo', '--tenant', 'ops', '--param', 'service=api', '--follow', '--id', workflowId], orchEnv());
    // The approver acts on the gate --follow shows; orch status shows the same gate.
    await eventually(async () => following.stdout().includes('waiting for approval at gate "ok"'), 30_000, 'the run to wait at its gate');
    const waiting = await orch(['status', workflowId, '--json']);
    assert.equal(waiting.code, 0, waiting.stderr);
    assert.deepEqual(JSON.parse(waiting.stdout).status.pendingGates.map((g: { gate: string }) => g.gate), ['ok']);
    const wrongGate = await orch(['approve', workflowId, 'nope']);
    assert.equal(wrongGate.code, 1);
    assert.match(wrongGate.stderr, /waiting at: ok/);
    const approve = await orch(['approve', workflowId, 'ok', '--comment', 'go', '--approver', 'dana']);
    assert.equal(approve.code, 0, approve.stderr);
    // The run's static summary and details, as the Temporal UI shows them at the top of the run's page.
    const described = await w.client.workflow.getHandle(workflowId).describe();
    assert.equal(await described.staticSummary(), 'cli-demo v3 · tenant ops · service=api');
    const staticDetails = (await described.staticDetails()) ?? '';
    assert.match(staticDetails, /^\*\*cli-demo\*\* v3 for tenant `ops`, started by .+ with `orch run`\./);
    assert.match(staticDetails, /Cost cap 0\.10 USD · DAG sha256 `[0-9a-f]{16}`…/);
    assert.match(staticDetails, /\| service \| api \|/);
    assert.match(staticDetails, /Nodes: `note` \(claude\), `ok` \(approval_gate\)/);
    assert.ok(staticDetails.includes(`orch status ${workflowId}`));
    const followed = await following.result;
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /waiting for approval at gate "ok" \(until [^)]+\): restart api\?/);
    assert.match(followed.stdout, /releases 0 command\(s\), digest [0-9a-f]{64}/);
    assert.match(followed.stdout, /succeeded/);
    const status = await orch(['status', workflowId, '--json']);
    const parsed = JSON.parse(status.stdout);
    assert.equal(parsed.temporalStatus, 'COMPLETED');
    // The desktop's key is not in the tenant's approver list: signed, but recorded as unverified (label "dana").
    assert.match(parsed.status.nodes[1].summary, /approved by dana: go \[unverified\]/);
    assert.ok((await anthropic.messages()).some((r) => r.prompt.includes('cli says restart api')));
  });

  test('a rejected gate makes run --follow exit 1 with the failure type; --json follows as JSON lines', async () => {
    const workflowId = `cli-reject-${Date.now()}`;
    const following = startOrch(['run', 'cli-demo', '--tenant', 'ops', '--follow', '--id', workflowId], orchEnv());
    const followingJson = startOrch(['run', 'cli-demo', '--tenant', 'ops', '--follow', '--json', '--id', `${workflowId}-json`], orchEnv());
    for (const [id, f] of [[workflowId, following], [`${workflowId}-json`, followingJson]] as const) {
      await eventually(async () => f.stdout().includes(`orch approve ${id} ok`), 30_000, 'the gate');
      assert.equal((await orch(['approve', id, 'ok', '--reject', '--comment', 'no'])).code, 0);
    }
    const r = await following.result;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /approval_rejected/);
    assert.match(r.stdout, /cost: \$\d+\.\d{6} spent, \$\d+\.\d{6} reserved, cap \$0\.1/);

    const j = await followingJson.result;
    assert.equal(j.code, 1);
    const events = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; node?: string; state?: string; gate?: string; approve?: string; status?: string; error?: { type: string } });
    assert.ok(events.some((e) => e.event === 'node' && e.node === 'note' && e.state === 'succeeded'), j.stdout);
    assert.ok(events.some((e) => e.event === 'cost'), j.stdout);
    const gate = events.find((e) => e.event === 'gate');
    assert.equal(gate?.gate, 'ok');
    assert.equal(gate?.approve, `orch approve ${workflowId}-json ok`);
    const end = events[events.length - 1]!;
    assert.deepEqual([end.event, end.status, end.error?.type], ['end', 'failed', 'approval_rejected']);
  });

  test('run --follow on a terminal redraws the run in place', async () => {
    const workflowId = `cli-live-${Date.now()}`;
    // A pseudo-terminal from util-linux's script(1): orch sees a TTY on stdout.
    const cmd = ['node', 'bin/orch.mjs', 'run', 'cli-demo', '--tenant', 'ops', '--follow', '--id', workflowId].join(' ');
    const env = orchEnv();
    let out = '';
    const live = new Promise<{ code: number; out: string }>((resolve) => {
      const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..'), env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code) => resolve({ code: code ?? 1, out }));
    });
    // The approver acts on what the live block shows: the gate, then its approve command.
    await eventually(async () => out.includes(`orch approve ${workflowId} ok`), 30_000, 'the live block to show the gate');
    assert.equal((await orch(['approve', workflowId, 'ok'])).code, 0);
    const r = await live;
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /\x1b\[\d+F\x1b\[J/, 'redrawn in place');
    assert.match(r.out, /waiting for approval at gate "ok"/);
    assert.match(r.out, new RegExp(`orch approve ${workflowId} ok`));
    assert.match(r.out, new RegExp(`run ${workflowId} succeeded`));
  });

  test('--follow learns of each change from the run history\'s long poll, and the poll ends when the run closes', async () => {
    const workflowId = `cli-watch-${Date.now()}`;
    const started = await orch(['run', 'cli-demo', '--tenant', 'ops', '--id', workflowId, '--json']);
    assert.equal(started.code, 0, started.stderr);
    const handle = w.client.workflow.getHandle(workflowId);
    let changes = 0;
    let gateSeenAt = -1;
    const watching = watchHistory(handle, () => changes++, new AbortController().signal);
    await eventually(async () => {
      const s = await handle.query(statusQuery);
      if (s.pendingGates.length === 1 && gateSeenAt < 0) gateSeenAt = changes;
      return gateSeenAt >= 0;
    }, 30_000, 'the gate');
    assert.ok(gateSeenAt >= 1, 'the events up to the gate were reported');
    assert.equal((await orch(['approve', workflowId, 'ok'])).code, 0);
    // No abort: the long poll returns by itself once the run has closed and its last events were read.
    await watching;
    assert.ok(changes > gateSeenAt, `the approval and the close were reported (${changes} change(s), ${gateSeenAt} by the gate)`);
    assert.equal((await handle.describe()).status.name, 'COMPLETED');
  });

  test('unreachable Temporal and unknown workflows: one clear line, exit 1', async () => {
    const r = await orch(['status', 'whatever'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach Temporal at 127\.0\.0\.1:1/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const unknown = await orch(['status', 'no-such-workflow-id']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no workflow "no-such-workflow-id"/);
  });
});
