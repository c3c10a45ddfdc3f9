/**
 * The agent checks the approval itself (protocol/APPROVAL.md), through the real path: the worker's relay transport
 * (connectRelayTransport, as `orch up` builds it) seals commands to real Go agents (`orch-agent run`) behind a real
 * relay. The tenant's approvers are kept by desktop-worker/approvers.ts (what `orch approver add/remove` calls);
 * the transport sends the agent the tenant's approver list before a command, and the agent stores it.
 *
 * An infrastructure agent allowed to run `touch`: without an approval the command is refused `approval_required`
 * and the file it would have made does not exist; with an attestation signed by a trusted approver it runs; signed
 * by an untrusted key, for another command id, or for another argv, it is refused. After `orch approver remove`, the
 * removed approver's approvals are refused. A standard agent's `systemctl restart` (state-changing, allowed by its
 * tier) is refused without an approval and runs with one. Read-only commands need none.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { startAgentProcess } from '../support/agent-binary';
import { runAgentCli } from '../support/stdio-agent';
import { AgentRegistry } from '../../desktop-worker/agent-registry';
import { connectRelayTransport } from '../../desktop-worker/agent-transport';
import { addApprover, removeApprover } from '../../desktop-worker/approvers';
import { TenantStore } from '../../desktop-worker/tenant-store';
import { releaseDigest, signApproval, type CommandApproval, type ReleasedCommand } from '../../protocol/approval';
import { ed25519KeyPair, x25519KeyPair, type SignKeyPair } from '../../protocol/primitives';
import { OrchError } from '../../protocol/errors';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-agent-approval-'));
const hex = (b: Buffer) => b.toString('hex');
const desktop = { sign: ed25519KeyPair(), box: x25519KeyPair() };
const alice = ed25519KeyPair();
const mallory = ed25519KeyPair();
const out = path.join(work, 'out');
const WF = `wf-approval-${process.pid}`;
const RUN = 'run-1';

let relay: { url: string; pin: string; stop(): Promise<void> };
let link: Awaited<ReturnType<typeof connectRelayTransport>>;
const agents: Array<{ child: ChildProcessWithoutNullStreams; stateDir: string }> = [];
let home: string;

async function startAgent(name: string, tier: string, allow: string): Promise<string> {
  const stateDir = path.join(work, `agent-${name}`);
  const allowFile = path.join(work, `allow-${name}.yaml`);
  fs.writeFileSync(allowFile, allow);
  const enrolled = await runAgentCli(['enroll', '--relay', relay.url, '--relay-pin', relay.pin, '--desktop', hex(desktop.sign.publicKey),
    '--desktop-box-key', hex(desktop.box.publicKey), '--tier', tier, '--allow', allowFile, '--state-dir', stateDir, '--json']);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  const info = JSON.parse(enrolled.stdout) as { signKey: string; boxKey: string };
  const reg = AgentRegistry.open(home);
  reg.add({ name, signKeyHex: info.signKey, boxKeyHex: info.boxKey, tier, tenants: ['acme'] });
  reg.close();
  const { child } = await startAgentProcess(['run', '--state-dir', stateDir]);
  agents.push({ child, stateDir });
  return stateDir;
}

function attestation(signer: SignKeyPair, released: ReleasedCommand[], over: { tenant?: string; runId?: string } = {}): CommandApproval {
  const statement = {
    v: 1 as const,
    type: 'orch-approval' as const,
    tenant: over.tenant ?? 'acme',
    workflowId: WF,
    runId: over.runId ?? RUN,
    gate: 'approve',
    decision: 'approve' as const,
    releaseDigest: releaseDigest(released),
    approverKey: hex(signer.publicKey),
    at: Date.now(),
    comment: 'ok',
  };
  return { approvals: [signApproval(statement, signer.secretKey)], released };
}

const touchEntry = (node: string, file: string): ReleasedCommand => ({
  commandId: `${WF}/${RUN}/${node}`,
  node,
  agent: 'infra-1',
  tier: 'infrastructure',
  argv: ['touch', path.join(out, file)],
  destructive: false,
});

function refusalOf(err: unknown): string {
  assert.ok(err instanceof OrchError, `not an OrchError: ${String(err)}`);
  assert.equal(err.code, 'command_not_allowed');
  return String((err.details as { reason?: string } | undefined)?.reason ?? err.message);
}

async function status(stateDir: string): Promise<{ counters: Record<string, number>; approvers: Record<string, { version: number; keys: string[] }> }> {
  const r = await runAgentCli(['status', '--state-dir', stateDir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

beforeAll(async () => {
  fs.mkdirSync(out);
  const { startRelay } = await import('../../relay/main');
  relay = await startRelay({ host: '127.0.0.1', port: 0, dataDir: path.join(work, 'relay'), log: () => {} });
  home = path.join(work, 'home');
  const store = new TenantStore(home);
  store.create('acme');
  store.close();
  addApprover('acme', 'alice', hex(alice.publicKey), { home, actor: 'test' });
  await startAgent('infra-1', 'infrastructure', 'version: 1\ncommands:\n  - executable: touch\n    rest: any\n  - executable: echo\n    rest: any\n');
  await startAgent('std-1', 'standard', 'version: 1\ncommands:\n  - executable: systemctl\n    rest: any\n');
  link = await connectRelayTransport({ home, identity: desktop, relay: { url: relay.url, pin: relay.pin }, heartbeatMs: 0, resultGraceMs: 10_000 });
  assert.equal(link.connected, true, JSON.stringify(link.startError));
}, 90_000);

afterAll(async () => {
  await link?.close();
  for (const a of agents) {
    if (a.child.exitCode === null) {
      const exited = new Promise((r) => a.child.once('exit', r));
      a.child.kill('SIGTERM');
      await exited;
    }
  }
  await relay?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('an infrastructure agent runs a state-changing command only with a valid approval', () => {
  const run = (node: string, file: string, approval?: CommandApproval) =>
    link.transport.run({
      tenant: 'acme',
      agent: 'infra-1',
      argv: ['touch', path.join(out, file)],
      timeoutSeconds: 10,
      commandId: `${WF}/${RUN}/${node}`,
      ...(approval ? { approval } : {}),
    });
  const made = (file: string) => fs.existsSync(path.join(out, file));

  test('refused approval_required, before running anything, for each way an attestation fails', async () => {
    const released = [touchEntry('a', 'a'), touchEntry('b', 'b'), touchEntry('c', 'c'), touchEntry('d', 'd')];
    const cases: Array<[string, string, string, CommandApproval | undefined, string]> = [
      ['no approval', 'a', 'a', undefined, 'no_attestation'],
      ['signed by a key the agent does not trust', 'b', 'b', attestation(mallory, released), 'untrusted_approver'],
      ['an approval for another command id', 'x', 'x', attestation(alice, released), 'not_released'],
      ['an approval for another argv', 'c', 'c-other', attestation(alice, released), 'argv_mismatch'],
      ['an approval of another run', 'd', 'd', attestation(alice, released, { runId: 'run-2' }), 'wrong_run'],
    ];
    for (const [what, node, file, approval, check] of cases) {
      const reason = await run(node, file, approval).then(
        () => assert.fail(`${what}: the command ran`),
        (err: unknown) => refusalOf(err),
      );
      assert.match(reason, new RegExp(`approval_required: ${check}: `), what);
      assert.equal(reason.includes(out), false, `${what}: the refusal quotes argv`);
      assert.equal(made(file), false, `${what}: the file the command would have made exists`);
    }
    const s = await status(agents[0]!.stateDir);
    assert.equal(s.counters['commands.approval_required'], cases.length);
    assert.equal(s.counters['commands.refused'], cases.length);
    assert.equal(s.counters['commands.run'] ?? 0, 0);
  });

  test('with an attestation signed by a trusted approver it runs; read-only commands need none', async () => {
    const result = await run('ok', 'ok', attestation(alice, [touchEntry('ok', 'ok')]));
    assert.equal(result.exitCode, 0);
    assert.equal(made('ok'), true);
    const echo = await link.transport.run({ tenant: 'acme', agent: 'infra-1', argv: ['echo', 'hi'], timeoutSeconds: 10, commandId: `${WF}/${RUN}/echo` });
    assert.equal(echo.stdout, 'hi\n');
    // The agent learnt alice's key from the worker (the approvers message), and status lists it.
    const s = await status(agents[0]!.stateDir);
    assert.deepEqual(s.approvers.acme, { version: 1, keys: [hex(alice.publicKey)] });
  });

  test('after orch approver remove, that approver\'s approvals are refused', async () => {
    removeApprover('acme', 'alice', { home, actor: 'test' });
    addApprover('acme', 'bob', hex(mallory.publicKey), { home, actor: 'test' });
    // The worker's heartbeat sends the new list without waiting for a command.
    await link.transport.syncApprovers();
    assert.deepEqual((await status(agents[0]!.stateDir)).approvers.acme, { version: 3, keys: [hex(mallory.publicKey)] });
    const reason = await run('after', 'after', attestation(alice, [touchEntry('after', 'after')])).then(
      () => assert.fail('ran with a removed approver'),
      (err: unknown) => refusalOf(err),
    );
    assert.match(reason, /approval_required: untrusted_approver: /);
    assert.equal(made('after'), false);
    // The new approver's approval works.
    await run('bob', 'bob', attestation(mallory, [touchEntry('bob', 'bob')]));
    assert.equal(made('bob'), true);
  });
});

describe('a standard agent', () => {
  // A unit that does not exist: systemctl fails, but it ran (the agent let it through).
  const argv = ['systemctl', 'restart', 'orch-approval-test-no-such-unit.service'];
  const entry: ReleasedCommand = { commandId: `${WF}/${RUN}/restart`, node: 'restart', agent: 'std-1', tier: 'standard', argv, destructive: false };

  test('refuses a service restart without an approval and runs it with one', async () => {
    const reason = await link.transport.run({ tenant: 'acme', agent: 'std-1', argv, timeoutSeconds: 20, commandId: `${WF}/${RUN}/restart-unapproved` }).then(
      () => assert.fail('ran without an approval'),
      (err: unknown) => refusalOf(err),
    );
    assert.match(reason, /approval_required: no_attestation: /);
    const ran = await link.transport.run({ tenant: 'acme', agent: 'std-1', argv, timeoutSeconds: 20, commandId: entry.commandId, approval: attestation(mallory, [entry]) });
    assert.equal(typeof ran.exitCode, 'number', 'the agent ran it (systemctl answered, whatever its exit code)');
    const s = await status(agents[1]!.stateDir);
    assert.equal(s.counters['commands.approval_required'], 1);
    assert.equal(s.counters['commands.run'], 1);
  });
});
