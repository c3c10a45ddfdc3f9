/**
 * Signed approvals through the real path (issue 8): `orch up` (dev server, worker, local relay and agent) as a
 * child process, approvers as people with keys in their own ORCH_HOME (`orch init`, keys in the OS keychain),
 * added to the tenant with `orch approver add`, approving with `orch approve` as their own process. Each case
 * checks what the approver sees (the released commands and their digest), whether the gate opened or refused
 * (with the reason the sender is told), and the audit rows: who, verified or not, what digest.
 *
 * The hand-written workflow cases (a command that changed after its approval; signal-time limits) run on the
 * suite's dev server with a test worker, since `orch up` loads only Orch's own workflows.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { signApproval, signStart } from '../../desktop-worker/approval-signing';
import { loadDesktopIdentity, removeDesktopIdentity } from '../../desktop-worker/identity';
import { ed25519KeyPair } from '../../protocol/primitives';
import { MAX_APPROVAL_COMMENT_LENGTH } from '../../workflows/dag/limits';
import { approveSignal, approveUpdate, statusQuery, type PendingGate, type RunStatus } from '../../workflows/shared';
import { eventually, freePort, startTestWorker, type TestWorker, uid } from '../support/harness';
import { encryptedDataConverter, loadPayloadCodec } from '../../desktop-worker/payload-codec';
import { runOrch, type Ran } from '../support/orch-process';
import { loadConfig } from '../../desktop-worker/config';
import { RunNotFoundError, UpdateRefusedError, openRunTransport, temporalHttpFile } from '../../desktop-worker/run-transport';

let dir: string;
const homes: Record<'operator' | 'alice' | 'bob' | 'carol', string> = { operator: '', alice: '', bob: '', carol: '' };
const keys: Record<string, string> = {};
let env: NodeJS.ProcessEnv;
let temporalAddress: string;
let client: Client;
let connection: Connection;
const service = uid('orch-test-approvals');
let up: { child: ChildProcess; exited: Promise<number>; logFile: string } | undefined;

type Who = keyof typeof homes;


function orch(who: Who, args: string[]): Promise<Ran> {
  return runOrch(args, { ...env, ORCH_HOME: homes[who] });
}

interface AuditRow {
  actor: string;
  action: string;
  subject: string;
  details: Record<string, unknown>;
}

async function auditRows(workflowId: string): Promise<AuditRow[]> {
  const r = await orch('operator', ['audit', 'log', '--tenant', 'demo', '--run', workflowId, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as AuditRow[];
}

async function start(dag: string): Promise<string> {
  const workflowId = uid(dag);
  const r = await orch('operator', ['run', dag, '--tenant', 'demo', '--id', workflowId, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return workflowId;
}

/**
 * A run of `dag` with its default params, started from this process as `orch run` starts it: signed by the
 * operator's key (so four eyes is proven), on orch up's task queue. For tests about what comes after the start: an
 * `orch run` process loads the SDK's gRPC client, about 4 s under load, while the HTTP transport's commands take 1 s.
 */
async function startHere(dag: string, workflowId = uid(dag)): Promise<string> {
  const { sign } = await loadDesktopIdentity({ home: homes.operator, service });
  const params = { what: 'v1' };
  const start = signStart(sign, { tenant: 'demo', workflowId, workflowType: dag, params });
  await client.workflow.start(dag, { taskQueue: 'orch', workflowId, args: [{ tenant: 'demo', params, start }] });
  return workflowId;
}

async function waitingGate(workflowId: string): Promise<PendingGate> {
  return eventually(async () => (await client.workflow.getHandle(workflowId).query(statusQuery)).pendingGates[0], 60_000, `${workflowId} to wait at its gate`);
}

async function finished(workflowId: string): Promise<{ ok: true } | { ok: false; type: string | undefined; message: string }> {
  try {
    await client.workflow.getHandle(workflowId).result();
    return { ok: true };
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? (err.cause as { type?: string; message: string }) : { message: String(err) };
    return { ok: false, type: cause.type, message: cause.message };
  }
}

const GATED = (name: string, gate: Record<string, unknown>) =>
  JSON.stringify({
    name,
    version: 1,
    cost_cap_usd: 0.01,
    params: { what: { type: 'string', default: 'v1', pattern: '[a-z0-9]+' } },
    nodes: [
      { id: 'gate', type: 'approval_gate', message: 'release ${params.what}?', timeout_seconds: 600, ...gate },
      { id: 'act', type: 'command', agent: 'local', argv: ['echo', 'released ${params.what}'], destructive: true, needs: ['gate'] },
    ],
  });

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-approvals-'));
  for (const who of Object.keys(homes) as Who[]) homes[who] = path.join(dir, who);
  const port = await freePort();
  temporalAddress = `127.0.0.1:${port}`;
  env = {
    ...process.env,
    ORCH_KEYCHAIN_SERVICE: service,
    ORCH_TEMPORAL_PORT: String(port),
    ORCH_TEMPORAL_UI_PORT: String(await freePort()),
    ORCH_RELAY_PORT: String(await freePort()),
    TEMPORAL_ADDRESS: '',
  };
  const logFile = path.join(dir, 'orch-up.log');
  const log = fs.openSync(logFile, 'w', 0o600);
  const child = spawn(process.execPath, ['bin/orch.mjs', 'up'], { env: { ...env, ORCH_HOME: homes.operator }, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  up = { child, exited, logFile };
  // Each approver is a person with their own keys (here: their own ORCH_HOME, keys in the same keychain service).
  for (const who of ['alice', 'bob', 'carol'] as Who[]) {
    const init = await orch(who, ['init']);
    assert.equal(init.code, 0, init.stderr);
  }
  await eventually(async () => fs.readFileSync(logFile, 'utf8').includes('Orch is up.') || child.exitCode !== null, 120_000, '`orch up` to be up');
  assert.equal(child.exitCode, null, `orch up exited early:\n${fs.readFileSync(logFile, 'utf8')}`);
  const boxKeys: Partial<Record<Who, string>> = {};
  for (const who of Object.keys(homes) as Who[]) {
    const r = await orch(who, ['whoami', '--json']);
    assert.equal(r.code, 0, r.stderr);
    keys[who] = (JSON.parse(r.stdout) as { signPublicKey: string }).signPublicKey;
    boxKeys[who] = (JSON.parse(r.stdout) as { boxPublicKey: string }).boxPublicKey;
  }
  // What the worker stores in Temporal is encrypted (desktop-worker/payload-codec.ts): each approver's desktop gets
  // the operator's payload keys (sealed to it, signed by the operator) to read the run's gates.
  for (const who of ['alice', 'bob', 'carol'] as Who[]) {
    const file = path.join(dir, `payload-keys-${who}.json`);
    const exported = await orch('operator', ['keys', 'export', '--to', boxKeys[who]!, '--out', file]);
    assert.equal(exported.code, 0, exported.stderr);
    const imported = await orch(who, ['keys', 'import', file, '--from', keys.operator!]);
    assert.equal(imported.code, 0, imported.stderr);
  }
  // The tenant's approvers: alice, bob, and the operator's own key as "dora". Carol's key is nobody's.
  for (const [name, who] of [['alice', 'alice'], ['bob', 'bob'], ['dora', 'operator']] as const) {
    const add = await orch('operator', ['approver', 'add', name, '--key', keys[who]!, '--tenant', 'demo']);
    assert.equal(add.code, 0, add.stderr);
  }
  for (const [name, gate] of [
    ['approve-one', { approvers: ['alice', 'bob', 'dora'] }],
    ['approve-two', { approvers: ['alice', 'bob'], min_approvals: 2 }],
    ['approve-solo', { approvers: ['alice'] }],
  ] as const) {
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, GATED(name, gate));
    const reg = await orch('operator', ['dag', 'register', file, '--tenant', 'demo']);
    assert.equal(reg.code, 0, reg.stderr);
  }
  connection = await Connection.connect({ address: temporalAddress });
  client = new Client({ connection, dataConverter: encryptedDataConverter(await loadPayloadCodec(homes.operator)) });
}, 240_000);

afterAll(async () => {
  await connection?.close();
  if (up && up.child.exitCode === null) {
    up.child.kill('SIGINT');
    await up.exited;
  }
  for (const who of Object.keys(homes) as Who[]) await removeDesktopIdentity({ home: homes[who], service }).catch(() => {});
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('signed approvals on a registered DAG (orch up, real agent)', () => {
  test('the approver sees every released command and its digest; a listed approver\'s signature opens the gate; the audit row says who, verified, what digest', async () => {
    const workflowId = await start('approve-one');
    const gate = await waitingGate(workflowId);
    assert.equal(gate.released.length, 1);
    assert.deepEqual(gate.released[0], {
      commandId: gate.released[0]!.commandId,
      node: 'act',
      agent: 'local',
      tier: 'read-only',
      argv: ['echo', 'released v1'],
      destructive: true,
    });
    assert.match(gate.released[0]!.commandId, new RegExp(`^${workflowId}/[0-9a-f-]+/act$`));
    assert.match(gate.releaseDigest, /^[0-9a-f]{64}$/);
    assert.equal(gate.distinctFromStarter, true, 'default for a gate that releases a destructive command');
    assert.equal(gate.starterKey, keys.operator, 'orch run signed the start with the operator key, a known one');
    assert.equal(gate.needed, 1);

    const shown = await orch('operator', ['status', workflowId]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /act on local \(read-only\) DESTRUCTIVE: \["echo","released v1"\]/);
    assert.ok(shown.stdout.includes(gate.releaseDigest), 'orch status shows the digest');

    const ok = await orch('alice', ['approve', workflowId, 'gate', '--comment', 'looks right']);
    assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
    assert.match(ok.stdout, /as alice \(signature verified\): approved/);
    assert.deepEqual(await finished(workflowId), { ok: true });

    const rows = await auditRows(workflowId);
    const approved = rows.find((r) => r.action === 'approve_gate');
    assert.ok(approved, 'an approve_gate row');
    assert.equal(approved.actor, 'alice');
    assert.equal(approved.details.verified, true);
    assert.equal(approved.details.releaseDigest, gate.releaseDigest);
    assert.equal(approved.details.comment, 'looks right');
    const approvals = approved.details.approvals as Array<{ approver: string; key: string; verified: boolean; signed: { statement: { releaseDigest: string } } }>;
    assert.deepEqual(approvals.map((a) => [a.approver, a.key, a.verified]), [['alice', keys.alice, true]]);
    assert.equal(approvals[0]!.signed.statement.releaseDigest, gate.releaseDigest);
    const sent = rows.find((r) => r.action === 'command_sent' && r.subject === 'act');
    assert.deepEqual(sent?.details.approvedBy, [keys.alice], 'the command went out with alice\'s approval attached');
  }, 120_000);

  test('unsigned, a key outside the approver list and the run\'s starter are refused with reasons; nothing runs; a rejection is verified too', async () => {
    const workflowId = await start('approve-one');
    await waitingGate(workflowId);
    const handle = client.workflow.getHandle(workflowId);

    // A plain signal (the Temporal UI): refused, and the run says why.
    await handle.signal(approveSignal, { gate: 'gate', decision: 'approve', approver: 'alice' });
    // The same as an update: the validator rejects it with the reason.
    await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ gate: 'gate', decision: 'approve', approver: 'alice' }] }), (err: Error) => {
      assert.match(String((err as { cause?: Error }).cause?.message ?? err.message), /unsigned/);
      return true;
    });
    // A statement naming alice's key but signed by another key: the signature does not verify.
    const gateNow = (await handle.query(statusQuery)).pendingGates[0]!;
    const forged = signApproval(ed25519KeyPair(), {
      tenant: 'demo',
      workflowId,
      runId: (await handle.describe()).runId,
      gate: 'gate',
      decision: 'approve',
      releaseDigest: gateNow.releaseDigest,
      comment: '',
    });
    forged.statement.approverKey = keys.alice!;
    await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ gate: 'gate', decision: 'approve', approver: 'alice', signed: forged }] }), (err: Error) => {
      assert.match(String((err as { cause?: Error }).cause?.message ?? err.message), /the signature does not verify/);
      return true;
    });
    const carol = await orch('carol', ['approve', workflowId, 'gate']);
    assert.equal(carol.code, 1);
    assert.match(carol.stderr, /refused the approve of gate "gate": key [0-9a-f]{16}… is not in tenant "demo"'s approver list/);
    const starter = await orch('operator', ['approve', workflowId, 'gate']);
    assert.equal(starter.code, 1);
    assert.match(starter.stderr, /four eyes: "dora" started this run/);
    assert.doesNotMatch(starter.stderr, /\n\s+at /, 'no stack trace');

    const status: RunStatus = await eventually(async () => {
      const st = await handle.query(statusQuery);
      return (st.pendingGates[0]?.refused.length ?? 0) >= 3 ? st : undefined;
    }, 30_000, 'the three refused signals to be listed');
    assert.equal(status.state, 'waiting_approval');
    const refused = status.pendingGates[0]!.refused;
    assert.match(refused[0]!.reason, /^unsigned: gate "gate" names approvers/);
    // A refused update changes nothing in the run (the forged one above); orch approve then sends the same decision
    // as a signal, refused again and listed with its reason for everyone who looks.
    assert.equal(refused.length, 3);
    assert.ok(refused.some((r) => r.key === keys.carol && /approver list/.test(r.reason)));
    assert.ok(refused.some((r) => r.key === keys.operator && /four eyes/.test(r.reason)));
    assert.equal(status.nodes.find((n) => n.id === 'act')?.state, 'pending', 'the released command did not run');
    const shown = await orch('operator', ['status', workflowId]);
    assert.match(shown.stdout, /refused approve from alice: unsigned/);
    assert.deepEqual((await auditRows(workflowId)).filter((r) => /gate|command/.test(r.action)).map((r) => r.action), [], 'no gate or command row while refused');
    // Each refused decision that reached the run has its own audit row: who, which key, what was refused and why.
    const refusedRows = await eventually(async () => {
      const rows = (await auditRows(workflowId)).filter((r) => r.action === 'approval_refused');
      return rows.length >= 3 ? rows : undefined;
    }, 30_000, 'the refused decisions in the audit log');
    assert.equal(refusedRows.length, 3);
    assert.ok(refusedRows.every((r) => r.subject === 'gate' && r.details.releaseDigest === status.pendingGates[0]!.releaseDigest));
    assert.ok(refusedRows.some((r) => r.details.approver === 'alice' && /^unsigned/.test(String(r.details.reason))));
    assert.ok(refusedRows.some((r) => r.details.key === keys.carol && /approver list/.test(String(r.details.reason))));
    assert.ok(refusedRows.some((r) => r.details.key === keys.operator && /four eyes/.test(String(r.details.reason))));

    const reject = await orch('bob', ['approve', workflowId, 'gate', '--reject', '--comment', 'not now']);
    assert.equal(reject.code, 0, reject.stderr);
    const end = await finished(workflowId);
    assert.equal(end.ok, false);
    assert.equal((end as { type?: string }).type, 'approval_rejected');
    const row = (await auditRows(workflowId)).find((r) => r.action === 'reject_gate');
    assert.equal(row?.actor, 'bob');
    assert.equal(row?.details.verified, true);
    assert.equal(row?.details.comment, 'not now');
  }, 120_000);

  test('four eyes with a single approver: a run with no signed start fails at the gate (four_eyes_unproven); started with orch run, the approver who is not the starter opens it', async () => {
    // Started by a plain Temporal client (as the UI's Start Workflow would): nobody proves who started it.
    const unsigned = uid('solo-unsigned');
    await client.workflow.start('approve-solo', { taskQueue: 'orch', workflowId: unsigned, args: [{ tenant: 'demo', params: {} }] });
    const outcome = await finished(unsigned);
    assert.equal(outcome.ok, false);
    assert.equal(outcome.ok ? undefined : outcome.type, 'four_eyes_unproven');
    assert.match(outcome.ok ? '' : outcome.message, /names a single approver, but this run's starter is not proven/);
    assert.deepEqual((await auditRows(unsigned)).filter((r) => /gate|command/.test(r.action)).map((r) => r.action), [], 'nothing released');

    // The control: orch run signs the start (the operator), so alice's approval proves four eyes.
    const signed = await start('approve-solo');
    await waitingGate(signed);
    const approved = await orch('alice', ['approve', signed, 'gate']);
    assert.equal(approved.code, 0, approved.stderr);
    assert.deepEqual(await finished(signed), { ok: true });
  });

  test('min_approvals: 2 needs two distinct keys: one approval leaves the gate waiting, the same key twice is refused', async () => {
    const workflowId = await start('approve-two');
    const gate = await waitingGate(workflowId);
    assert.equal(gate.needed, 2);
    const first = await orch('alice', ['approve', workflowId, 'gate']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /still needs 1 more distinct approval/);
    const again = await orch('alice', ['approve', workflowId, 'gate']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /"alice" already approved gate "gate"; it needs 2 distinct approvers/);
    const status = await client.workflow.getHandle(workflowId).query(statusQuery);
    assert.deepEqual(status.pendingGates[0]!.approvals.map((a) => a.approver), ['alice']);
    assert.equal(status.nodes.find((n) => n.id === 'act')?.state, 'pending');

    const second = await orch('bob', ['approve', workflowId, 'gate']);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(await finished(workflowId), { ok: true });
    const row = (await auditRows(workflowId)).find((r) => r.action === 'approve_gate');
    assert.equal(row?.details.verified, true);
    assert.equal(row?.details.releaseDigest, gate.releaseDigest);
    assert.deepEqual((row?.details.approvals as Array<{ approver: string; key: string }>).map((a) => [a.approver, a.key]), [
      ['alice', keys.alice],
      ['bob', keys.bob],
    ]);
  }, 120_000);

  test('orch approve refuses a comment longer than the audit row holds before sending anything', async () => {
    const workflowId = await start('approve-one');
    await waitingGate(workflowId);
    const long = await orch('alice', ['approve', workflowId, 'gate', '--comment', 'x'.repeat(MAX_APPROVAL_COMMENT_LENGTH + 1)]);
    assert.equal(long.code, 1);
    assert.match(long.stderr, /a comment holds at most 1000 characters/);
    const ok = await orch('alice', ['approve', workflowId, 'gate', '--comment', 'x'.repeat(MAX_APPROVAL_COMMENT_LENGTH)]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await finished(workflowId), { ok: true });
  }, 120_000);
});

describe('the CLI\'s Temporal transport (run-transport.ts) over the HTTP API of the dev server orch up runs', () => {
  const debugEnv = (who: Who) => ({ ...env, ORCH_HOME: homes[who], ORCH_DEBUG: '1' });
  const transportOf = (r: Ran) => (/"event":"temporal_transport","via":"(\w+)"/.exec(r.stderr) ?? [])[1];

  test('orch up publishes the port; orch status and a signed orch approve go over it: the same answers as over gRPC, the signature verified, the audit row written', async () => {
    const published = JSON.parse(fs.readFileSync(temporalHttpFile(homes.operator), 'utf8')) as { address: string; httpPort: number };
    assert.equal(published.address, temporalAddress);
    const workflowId = await startHere('approve-one');
    await waitingGate(workflowId);
    // Over the published port, and the same ORCH_HOME told to use the same server as a cluster (TEMPORAL_ADDRESS):
    // the SDK's gRPC client. At once: nothing changes the run between the two.
    const [overHttp, overGrpc] = await Promise.all([
      runOrch(['status', workflowId, '--json'], debugEnv('operator')),
      runOrch(['status', workflowId, '--json'], { ...debugEnv('operator'), TEMPORAL_ADDRESS: temporalAddress }),
    ]);
    assert.equal(overHttp.code, 0, overHttp.stderr);
    assert.equal(transportOf(overHttp), 'http');
    assert.equal(overGrpc.code, 0, overGrpc.stderr);
    assert.equal(transportOf(overGrpc), 'grpc');
    assert.deepEqual(JSON.parse(overHttp.stdout), JSON.parse(overGrpc.stdout), 'the encrypted status decoded the same both ways');
    assert.equal((JSON.parse(overHttp.stdout) as { status: RunStatus }).status.pendingGates[0]!.gate, 'gate');
    // Bob's desktop on this machine, told where this dev server's HTTP API is (as orch up tells its own ORCH_HOME).
    fs.mkdirSync(path.join(homes.bob, 'run'), { recursive: true });
    fs.copyFileSync(temporalHttpFile(homes.operator), temporalHttpFile(homes.bob));
    try {
      const ok = await runOrch(['approve', workflowId, 'gate', '--comment', 'over http ✓'], debugEnv('bob'));
      assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
      assert.equal(transportOf(ok), 'http');
      assert.match(ok.stdout, /as bob \(signature verified\): approved/);
    } finally {
      fs.rmSync(temporalHttpFile(homes.bob), { force: true });
    }
    assert.deepEqual(await finished(workflowId), { ok: true });
    const approved = (await auditRows(workflowId)).find((r) => r.action === 'approve_gate');
    assert.equal(approved?.actor, 'bob');
    assert.equal(approved?.details.verified, true);
    assert.equal(approved?.details.comment, 'over http ✓');
  }, 120_000);

  test('orch runs lists over the HTTP API when the port is published, the same rows and table as over gRPC; with a published port that does not answer, orch runs and a signed orch approve fall back to gRPC', async () => {
    const workflowId = await startHere('approve-one');
    await waitingGate(workflowId);
    const args = ['runs', '--tenant', 'demo', '--state', 'waiting'];
    // Visibility is eventually consistent, and other runs of this file may still be changing state: list both ways
    // until the run is there and both agree.
    const [overHttp, overGrpc] = await eventually(async () => {
      const both = await Promise.all([runOrch([...args, '--json'], debugEnv('operator')), runOrch([...args, '--json'], { ...debugEnv('operator'), TEMPORAL_ADDRESS: temporalAddress })]);
      for (const r of both) assert.equal(r.code, 0, r.stderr);
      const [h, g] = both.map((r) => JSON.parse(r.stdout) as Array<{ workflowId: string; state: string }>);
      return h!.some((r) => r.workflowId === workflowId && r.state === 'waiting_approval') && JSON.stringify(h) === JSON.stringify(g) ? both : undefined;
    }, 30_000, 'the waiting run listed the same both ways');
    assert.equal(transportOf(overHttp!), 'http');
    assert.equal(transportOf(overGrpc!), 'grpc');
    const table = await runOrch(args, debugEnv('operator'));
    assert.equal(transportOf(table), 'http');
    assert.match(table.stdout, new RegExp(`${workflowId}\\s+demo\\s+approve-one\\s+waiting_approval\\s+\\d{4}-`));
    // Alice's desktop told of an HTTP port nothing listens on (an `orch up` that died): the same list over gRPC, and
    // her approval too (orch approve asks the run before the probe has answered: asked again over gRPC).
    const dead = await freePort();
    fs.mkdirSync(path.join(homes.alice, 'run'), { recursive: true });
    fs.writeFileSync(temporalHttpFile(homes.alice), JSON.stringify({ address: temporalAddress, httpPort: dead, namespace: 'default', pid: 1 }));
    try {
      const fallback = await runOrch([...args, '--json'], debugEnv('alice'));
      assert.equal(fallback.code, 0, fallback.stderr);
      assert.equal(transportOf(fallback), 'grpc');
      assert.ok((JSON.parse(fallback.stdout) as Array<{ workflowId: string }>).some((r) => r.workflowId === workflowId));
      const approved = await runOrch(['approve', workflowId, 'gate'], debugEnv('alice'));
      assert.equal(approved.code, 0, `${approved.stdout}\n${approved.stderr}`);
      assert.equal(transportOf(approved), 'grpc');
      assert.match(approved.stdout, /as alice \(signature verified\): approved/);
    } finally {
      fs.rmSync(temporalHttpFile(homes.alice), { force: true });
    }
    assert.deepEqual(await finished(workflowId), { ok: true });
  }, 120_000);

  test('an update or a signal goes to the run it names, never to a later run of the same workflow id; a refusal\'s encrypted reason is read', async () => {
    const workflowId = await startHere('approve-one');
    await waitingGate(workflowId);
    const first = (await client.workflow.getHandle(workflowId).describe()).runId;
    await client.workflow.getHandle(workflowId).terminate('replaced by a second run');
    await startHere('approve-one', workflowId);
    await waitingGate(workflowId);
    const second = (await client.workflow.getHandle(workflowId).describe()).runId;
    assert.notEqual(second, first);
    const transport = await openRunTransport(loadConfig({ ...env, ORCH_HOME: homes.operator }), { workflowId });
    try {
      assert.equal(transport.via, 'http');
      assert.equal((await transport.describe(workflowId)).runId, second);
      assert.deepEqual(await transport.query(workflowId, undefined, statusQuery.name), await client.workflow.getHandle(workflowId).query(statusQuery));
      const unsigned = { gate: 'gate', decision: 'approve', approver: 'nobody' };
      await assert.rejects(transport.signal(workflowId, first, approveSignal.name, [unsigned]), RunNotFoundError);
      await assert.rejects(transport.update(workflowId, first, approveUpdate.name, [unsigned]), RunNotFoundError);
      const untouched = await transport.query<RunStatus>(workflowId, second, statusQuery.name);
      assert.deepEqual([untouched.pendingGates[0]!.approvals, untouched.pendingGates[0]!.refused ?? []], [[], []], 'nothing reached the second run');
      // The run's refusal comes back as a failure whose message the worker's codec encrypted.
      await assert.rejects(transport.update(workflowId, second, approveUpdate.name, [unsigned]), (err: unknown) => err instanceof UpdateRefusedError && /unsigned/.test(err.reason));
    } finally {
      await transport.close();
      await client.workflow.getHandle(workflowId).terminate('test over');
    }
  }, 120_000);
});

describe('hand-written workflows (test worker on the suite dev server)', () => {
  let w: TestWorker;
  beforeAll(async () => {
    w = await startTestWorker();
  });
  afterAll(async () => {
    await w?.stop();
  });

  const run = (released: string[], argv: string[]) =>
    w.client.workflow.start('releasedThenRun', { taskQueue: w.taskQueue, workflowId: uid('released'), args: [{ tenant: 't', released, run: argv }] });

  test('a command that changed after its approval is refused (approval_mismatch) and never sent; the unchanged one goes on', async () => {
    const changed = await run(['rm', '-rf', '/tmp/orch-a'], ['rm', '-rf', '/tmp/orch-b']);
    const same = await run(['rm', '-rf', '/tmp/orch-a'], ['rm', '-rf', '/tmp/orch-a']);
    for (const h of [changed, same]) {
      await eventually(async () => (await h.query(statusQuery)).pendingGates.length > 0, 30_000, 'the gate');
      // A gate that names no approvers takes a plain signal (the Temporal UI), recorded as unverified.
      await h.signal(approveSignal, { gate: 'g', decision: 'approve', approver: 'ui-user' });
    }
    await assert.rejects(changed.result(), (err: WorkflowFailedError) => {
      assert.equal((err.cause as { type?: string }).type, 'approval_mismatch');
      assert.match(String(err.cause?.message), /not the command gate "g" was approved for/);
      return true;
    });
    // The unchanged command passes the check and reaches the transport (none in this worker: agent_unavailable).
    await assert.rejects(same.result(), (err: WorkflowFailedError) => {
      assert.equal((err.cause as { type?: string }).type, 'agent_unavailable');
      return true;
    });
    const rows = [...w.store.auditLog('t').rows()].filter((r) => (r.details as { workflowId?: string } | null)?.workflowId === changed.workflowId);
    const gateRow = rows.find((r) => r.action === 'approve_gate');
    assert.equal(gateRow?.actor, 'ui-user');
    assert.equal((gateRow?.details as { verified?: boolean }).verified, false, 'a plain signal is recorded as unverified');
    assert.match(String((gateRow?.details as { releaseDigest?: string }).releaseDigest), /^[0-9a-f]{64}$/);
    assert.equal(rows.filter((r) => r.action === 'command_sent').length, 0, 'the changed command was never sent');
  }, 90_000);

  test('a signal longer than the audit row holds is refused when it arrives, with a documented error; the gate still waits', async () => {
    const h = await run(['true'], ['true']);
    await eventually(async () => (await h.query(statusQuery)).pendingGates.length > 0, 30_000, 'the gate');
    await h.signal(approveSignal, { gate: 'g', decision: 'approve', approver: 'ui-user', comment: 'y'.repeat(MAX_APPROVAL_COMMENT_LENGTH + 1) });
    await h.signal(approveSignal, { gate: 'g', decision: 'approve', approver: 'u'.repeat(101) });
    await assert.rejects(h.executeUpdate(approveUpdate, { args: [{ gate: 'g', decision: 'approve', approver: 'ui-user', comment: 'y'.repeat(5000) }] }));
    const status = await eventually(async () => {
      const s = await h.query(statusQuery);
      return s.ignoredSignals.length >= 2 ? s : undefined;
    });
    assert.match(status.ignoredSignals[0]!.reason, /^comment_too_long: a comment holds at most 1000 characters/);
    assert.match(status.ignoredSignals[1]!.reason, /approver must be a name of 1 to 100 characters/);
    assert.equal(status.pendingGates.length, 1, 'still waiting');
    await h.signal(approveSignal, { gate: 'g', decision: 'approve', approver: 'ui-user', comment: 'fine' });
    await assert.rejects(h.result(), (err: WorkflowFailedError) => (err.cause as { type?: string }).type === 'agent_unavailable');
  }, 90_000);
});
