/**
 * The remote-relay story as an operator lives it, every part the real program (issue 7): on a test network of
 * Linux namespaces (test/support/netns.ts), a relay and two servers each in a namespace of their own (`orch-relay
 * start --admin-key <orch whoami>`; on each server the one line `orch agent invite` printed, `orch-agent join`,
 * then `orch-agent run`), and on the desktop `orch init`, `orch relay add`, `orch up --no-local-agent` (against the
 * suite's Temporal, so no dev server of its own), `orch agent invite --relay-url` (the desktop reaches the relay
 * through a port forward, the servers at its own address) and a registered DAG started with `orch run --follow`
 * that runs a command on both agents.
 * `orch up --no-local-agent` starts no local relay or agent: the worker reaches the agents only through the
 * named relay, and has the relay admit them.
 *
 * Needs root (network namespaces) and the suite's OS keychain; fails, never skips, without them.
 */
import { describe, test, expect, beforeAll, afterAll } from '@jest/globals';
import assert from '../support/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, suiteEnv, uid } from '../support/harness';
import { createTestNetwork, type NetHost, type TestNetwork } from '../support/netns';
import { agentBinary } from '../support/agent-binary';
import { relayStarted } from '../support/relay-process';
import { runOrch, startOrch } from '../support/orch-process';

const root = fileURLToPath(new URL('../..', import.meta.url));
const RELAY_PORT = 7443;
const AGENTS = ['web-1', 'web-2'] as const;

let work: string;
let env: NodeJS.ProcessEnv;
let network: TestNetwork;
let up: { child: ChildProcess; output: () => string; exited: Promise<number> } | undefined;
let script: string;

function orch(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runOrch(args, env);
}

function json<T>(r: { code: number; stdout: string; stderr: string }): T {
  assert.equal(r.code, 0, r.stderr || r.stdout);
  return JSON.parse(r.stdout) as T;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-multihost-up-'));
  fs.chmodSync(work, 0o755);
  env = {
    ...process.env,
    ORCH_HOME: path.join(work, 'desktop'),
    TEMPORAL_ADDRESS: suiteEnv().address,
    ORCH_TASK_QUEUE: uid('mh-up'),
  };
  script = path.join(work, 'where.sh');
  fs.writeFileSync(script, `#!/bin/sh\necho "$1 $(/usr/sbin/ip -o -4 addr show dev eth0)"\n`, { mode: 0o755 });
  const allow = path.join(work, 'allow.yaml');
  fs.writeFileSync(allow, `version: 1\ntier: infrastructure\ncommands:\n  - executable: ${script}\n    rest: { regex: '[a-z0-9-]+' }\n`);

  network = await createTestNetwork();
  const desktopHost = await network.addHost('desktop');
  const relayHost = await network.addHost('relay');
  const agentHosts: NetHost[] = [];
  for (const a of AGENTS) agentHosts.push(await network.addHost(a));

  // The desktop's identity first: the relay's operator gives it as the relay's admin key.
  const me = json<{ signPublicKey: string; boxPublicKey: string }>(await orch(['init', '--json']));
  const relay = network.spawn(relayHost, process.execPath, ['bin/orch-relay.mjs', 'start', '--host', relayHost.ip, '--port', String(RELAY_PORT), '--data-dir', path.join(work, 'relay'), '--admin-key', me.signPublicKey], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const started = await relayStarted(relay);

  const port = await network.forwardToLoopback(desktopHost, relayHost.ip, RELAY_PORT);
  assert.equal((await orch(['relay', 'add', 'edge', '--url', `wss://127.0.0.1:${port}/v1/relay`, '--pin', started.pin])).code, 0);
  assert.equal((await orch(['tenant', 'create', 'ops'])).code, 0);
  // The script is not read-only, so the infrastructure agents run it only with a signed approval: the operator is
  // the tenant's approver (the agents learn the list when they join) and approves the gates with `orch approve`.
  assert.equal((await orch(['approver', 'add', 'operator', '--key', me.signPublicKey, '--tenant', 'ops'])).code, 0);

  const child = spawn(process.execPath, ['bin/orch.mjs', 'up', '--no-local-agent', '--no-demo'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  up = { child, output: () => out, exited };
  await eventually(async () => out.includes('Orch is up.') || child.exitCode !== null, 120_000, '`orch up --no-local-agent` to be up');
  assert.equal(child.exitCode, null, `orch up exited early:\n${out}`);
  // Two commands per server, no key copied by hand: the desktop prints a line, the server runs it. The worker of
  // `orch up` registers each invite with the relay, answers the join, pins the agent and has the relay admit it.
  for (const [i, name] of AGENTS.entries()) {
    const host = agentHosts[i]!;
    const stateDir = path.join(work, `agent-${name}`);
    const invited = await orch(['agent', 'invite', name, '--tenant', 'ops', '--tier', 'infrastructure', '--allow', allow, '--relay', 'edge', '--relay-url', started.url, '--json']);
    assert.equal(invited.code, 0, invited.stderr);
    const { token } = JSON.parse(invited.stdout) as { token: string };
    const joined = await network.run(host, agentBinary(), ['join', '--state-dir', stateDir, '--timeout', '60s', '--json', token], { env: { ...process.env } });
    assert.equal(joined.code, 0, `${joined.stdout}\n${joined.stderr}\n${up.output()}`);
    assert.equal((JSON.parse(joined.stdout) as { name: string }).name, name);
    network.spawn(host, agentBinary(), ['run', '--state-dir', stateDir], { cwd: root, stdio: 'ignore' });
  }
}, 300_000);

afterAll(async () => {
  if (up && up.child.exitCode === null) {
    up.child.kill('SIGINT');
    await Promise.race([up.exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (up.child.exitCode === null) up.child.kill('SIGKILL');
  }
  await network?.teardown();
  if (work) fs.rmSync(work, { recursive: true, force: true });
}, 60_000);

describe('orch up --no-local-agent, with agents on other hosts behind a named relay', () => {
  test('orch up starts no local relay or agent (the servers joined through "edge" while it ran)', () => {
    // It started with no agent and no invite, so it opened no relay connection up front; the joins above went
    // through "edge" (the worker registered each invite there and answered the join).
    const out = up!.output();
    expect(out).not.toMatch(/relay "local"/);
    expect(fs.existsSync(path.join(env.ORCH_HOME!, 'agent'))).toBe(false);
  });

  test('a registered DAG runs a command on both agents through `orch run --follow`', async () => {
    const dag = path.join(work, 'where.yaml');
    fs.writeFileSync(
      dag,
      `name: where\nversion: 1\ncost_cap_usd: 1\nnodes:\n  - id: approve\n    type: approval_gate\n    message: run where.sh on both?\n${AGENTS.map((a) => `  - id: ${a.replace('-', '_')}\n    type: command\n    needs: [approve]\n    agent: ${a}\n    argv: [${script}, ${a}]\n    timeout_seconds: 20\n`).join('')}`,
    );
    const registered = await orch(['dag', 'register', dag, '--tenant', 'ops']);
    assert.equal(registered.code, 0, registered.stderr);
    const workflowId = uid('where');
    const following = startOrch(['run', 'where', '--tenant', 'ops', '--id', workflowId, '--follow'], env);
    // The operator approves what --follow shows them: each agent's argv, before the approval.
    await eventually(async () => following.stdout().includes('waiting for approval at gate "approve"'), 60_000, 'orch run --follow to show the gate');
    assert.equal((await orch(['approve', workflowId, 'approve'])).code, 0);
    const run = await following.result;
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}\n${up!.output()}`);
    // --follow showed what the gate releases: each agent's argv, before the approval.
    expect(run.stdout).toContain(`web_1 on web-1 (infrastructure): ${JSON.stringify([script, 'web-1'])}`);
    expect(run.stdout).toMatch(new RegExp(`run ${workflowId} succeeded`));
    const status = json<{ status: { nodes: Array<{ id: string; state: string; summary?: string }> } }>(await orch(['status', workflowId, '--json']));
    for (const a of AGENTS) {
      const node = status.status.nodes.find((n) => n.id === a.replace('-', '_'));
      expect(node?.state).toBe('succeeded');
      // Each ran on its own host: its output names that host's address.
      expect(node?.summary).toContain(`${a} `);
      expect(node?.summary).toContain(network.host(a).ip);
    }
  });

  test("a tenant's DAG naming another tenant's agent is refused at validate time, and at run time once the agent left the tenant", async () => {
    assert.equal((await orch(['tenant', 'create', 'other'])).code, 0);
    // Validate time: tenant "other" has no agents; the issue names the node.
    const dag = path.join(work, 'cross.yaml');
    fs.writeFileSync(dag, `name: cross\nversion: 1\ncost_cap_usd: 1\nnodes:\n  - id: hop\n    type: command\n    agent: web-1\n    argv: [${script}, hop]\n    timeout_seconds: 20\n`);
    const validated = await orch(['dag', 'validate', dag, '--tenant', 'other']);
    expect(validated.code).not.toBe(0);
    expect(validated.stdout + validated.stderr).toMatch(/node "hop".*agent "web-1" is not enrolled in this tenant/s);
    expect((await orch(['dag', 'register', dag, '--tenant', 'other'])).code).not.toBe(0);

    // Run time: registered in "ops" while web-2 serves it; web-2 leaves "ops" while the run waits at a gate, so only
    // the run-time check stands between the run and that agent.
    const twoStep = path.join(work, 'two-step.yaml');
    fs.writeFileSync(
      twoStep,
      `name: two-step\nversion: 1\ncost_cap_usd: 1\nnodes:\n  - id: start\n    type: approval_gate\n    message: begin\n  - id: first\n    type: command\n    needs: [start]\n    agent: web-1\n    argv: [${script}, first]\n    timeout_seconds: 20\n  - id: gate\n    type: approval_gate\n    needs: [first]\n    message: go on\n  - id: second\n    type: command\n    agent: web-2\n    needs: [gate]\n    argv: [${script}, second]\n    timeout_seconds: 20\n`,
    );
    assert.equal((await orch(['dag', 'register', twoStep, '--tenant', 'ops'])).code, 0);
    const workflowId = uid('cross');
    assert.equal((await orch(['run', 'two-step', '--tenant', 'ops', '--id', workflowId])).code, 0);
    type St = { status: { state: string; nodes: Array<{ id: string; state: string; error?: { type: string } }> } };
    // `orch status` exits 1 for a failed run; its JSON says why either way.
    const statusOf = async (): Promise<St> => JSON.parse((await orch(['status', workflowId, '--json'])).stdout) as St;
    await eventually(async () => (await orch(['approve', workflowId, 'start'])).code === 0, 60_000, 'the run to wait at its first gate and take the approval');
    await eventually(async () => (await statusOf()).status.nodes.find((n) => n.id === 'gate')?.state === 'waiting_approval', 60_000, 'the run to wait at its gate');
    assert.equal((await orch(['agent', 'tenants', 'web-2', '--tenant', 'other'])).code, 0);
    const approved = await orch(['approve', workflowId, 'gate', '--comment', 'go']);
    assert.equal(approved.code, 0, approved.stderr);
    const status = await eventually(async () => {
      const st = await statusOf();
      return st.status.state === 'failed' || st.status.state === 'succeeded' ? st : undefined;
    }, 60_000, 'the run to end');
    expect(status.status.state).toBe('failed');
    expect(status.status.nodes.find((n) => n.id === 'first')?.state).toBe('succeeded');
    const second = status.status.nodes.find((n) => n.id === 'second');
    expect(second?.state).toBe('failed');
    expect(second?.error?.type).toBe('agent_not_in_tenant');
    // Back, for the tests below.
    assert.equal((await orch(['agent', 'tenants', 'web-2', '--tenant', 'ops'])).code, 0);
  });

  test('orch agent list shows each agent online behind "edge", with its version from its pong', async () => {
    const rows = await eventually(async () => {
      const listed = json<Array<{ name: string; relay: string; online: boolean; agentVersion: string | null }>>(await orch(['agent', 'list', '--json']));
      return listed.every((r) => r.online && r.agentVersion) ? listed : undefined;
    }, 60_000, 'both agents to be online with a version');
    expect(rows.map((r) => [r.name, r.relay])).toEqual(AGENTS.map((a) => [a, 'edge']));
    const relays = json<Array<{ name: string; agents: number }>>(await orch(['relay', 'list', '--json']));
    expect(relays.map((r) => [r.name, r.agents])).toEqual([['edge', 2]]);
  });

  test('after Ctrl-C, orch agent list --ping asks each agent now, through its own relay', async () => {
    // The relay keeps one session per key: --ping is for when `orch up` is not running.
    up!.child.kill('SIGINT');
    expect(await up!.exited).toBe(0);
    const rows = json<Array<{ name: string; online: boolean; source: string; relay: string }>>(await orch(['agent', 'list', '--ping', '--json']));
    expect(rows.map((r) => [r.name, r.online, r.source, r.relay])).toEqual(AGENTS.map((a) => [a, true, 'ping', 'edge']));
  });
});
