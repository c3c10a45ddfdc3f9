/**
 * The join flow (protocol/JOIN.md) with real processes on loopback: a relay that admits only its admin's keys, the
 * desktop's relay connections as the worker of `orch up` makes them (connectRelayTransports), `orch agent invite`
 * and `orch agent invites`, and the real agent binary (`orch-agent join`, then `orch-agent run`).
 *
 * Also: join requests that are replayed, expired, reused or forged are refused and counted; a token whose relay pin
 * is wrong sends nothing (the relay sees no login); tenants: the desktop refuses to send a command of a tenant the
 * agent does not serve (agent_not_in_tenant), and the agent refuses one it does not serve (tenant_not_served).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { orchAgent } from '../support/agent-command';
import { agentBinary, startAgentProcess } from '../support/agent-binary';
import { runAgentCli } from '../support/stdio-agent';
import { AgentRegistry } from '../../desktop-worker/agent-registry';
import { fingerprintOf } from '../../desktop-worker/identity';
import { connectRelayTransports, type ConnectedRelays } from '../../desktop-worker/relay-pool';
import { RelayRegistry } from '../../desktop-worker/relay-registry';
import { TenantStore } from '../../desktop-worker/tenant-store';
import { addApprover } from '../../desktop-worker/approvers';
import { keyToHex, newMsgId, sealEnvelope } from '../../protocol/envelope';
import { JOIN_TOKEN_PREFIX, decodeInviteToken, encodeInviteToken, encodeJoinMessage, joinProof } from '../../protocol/join';
import { ed25519KeyPair, x25519KeyPair, type BoxKeyPair, type SignKeyPair } from '../../protocol/primitives';
import { startRelay, type RunningRelay } from '../../relay/main';
import { loadDesktopIdentity, readPublicIdentity } from '../../desktop-worker/identity';
import { startTestWorker, suiteEnv, tempHome, type TestWorker } from '../support/harness';
import { runOrch } from '../support/orch-process';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-join-test-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (name: string) => path.join(work, `${name}-${++dirs}`);
const hex = (b: Buffer) => b.toString('hex');

const ALLOWLIST = 'version: 1\ncommands:\n  - executable: echo\n    rest: any\n';

interface Desktop {
  sign: SignKeyPair;
  box: BoxKeyPair;
}

/** identity.json as `orch init` writes it (the private keys stay in this process: the test is not about the keychain). */
function writeIdentity(home: string, d: Desktop): void {
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  const identity = {
    v: 1,
    sign: { alg: 'ed25519', publicKey: hex(d.sign.publicKey) },
    box: { alg: 'x25519', publicKey: hex(d.box.publicKey) },
    fingerprint: fingerprintOf(d.sign.publicKey, d.box.publicKey),
    keychain: { service: 'orch-test-join', account: 'join-test' },
    createdAt: new Date().toISOString(),
  };
  fs.writeFileSync(path.join(home, 'identity.json'), JSON.stringify(identity), { mode: 0o600 });
}

/** SIGTERMs every agent still running and waits for each to exit. */
async function stopAgents(agents: ChildProcessWithoutNullStreams[]): Promise<void> {
  for (const a of agents) {
    if (a.exitCode !== null) continue;
    const exited = new Promise((r) => a.once('exit', r));
    a.kill('SIGTERM');
    await exited;
  }
}

async function metric(relay: RunningRelay, name: string): Promise<number> {
  const text = await (await fetch(`${relay.metricsUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) total += Number(line.split(' ').pop());
  return total;
}

function errorType(err: unknown): string | undefined {
  const e = err as { type?: string; code?: string };
  return e.type ?? e.code;
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('invite, join, run: relay, worker side and agent as real processes', () => {
  const desktop: Desktop = { sign: ed25519KeyPair(), box: x25519KeyPair() };
  let relay: RunningRelay;
  let home: string;
  let links: ConnectedRelays;
  const agents: ChildProcessWithoutNullStreams[] = [];
  let joinedAgent: { child: ChildProcessWithoutNullStreams; stderr(): string } | undefined;
  let relayDir: string;
  const events: Array<Record<string, unknown>> = [];
  let seq = 0;
  const request = (tenant: string, argv: string[]) => ({ tenant, agent: 'web-1', argv, timeoutSeconds: 20, commandId: `wf-join-${process.pid}/run/n${++seq}` });

  beforeAll(async () => {
    relayDir = freshDir('relay');
    relay = await startRelay({ host: '127.0.0.1', port: 0, dataDir: relayDir, log: () => {}, admission: { adminKeys: [hex(desktop.sign.publicKey)] } });
    home = freshDir('home');
    writeIdentity(home, desktop);
    const relays = RelayRegistry.open(home);
    relays.add({ name: 'edge', url: relay.url, pin: relay.pin });
    relays.close();
    const tenants = new TenantStore(home);
    tenants.create('acme', 'test');
    tenants.create('globex', 'test');
    tenants.close();
    links = await connectRelayTransports({ home, identity: desktop, heartbeatMs: 0, resultGraceMs: 10_000, inviteSyncMs: 200, log: (e) => events.push(e) });
  });

  afterAll(async () => {
    await links?.close();
    await stopAgents(agents);
    await relay?.stop();
  });

  test('orch agent invite prints one line; orch-agent join pins the agent, which then runs commands of its tenant', async () => {
    const allow = path.join(work, 'allow.yaml');
    fs.writeFileSync(allow, ALLOWLIST);
    const invited = await orchAgent(home, ['invite', 'web-1', '--tenant', 'acme', '--tier', 'standard', '--allow', allow, '--relay', 'edge', '--expires', '10m']);
    assert.equal(invited.code, 0, invited.stderr);
    const line = invited.stdout.trim();
    assert.equal(line.split('\n').length, 1, 'one line');
    assert.match(line, /^sudo orch-agent join --install orchjoin1\.[A-Za-z0-9_-]+$/);
    const token = line.split(' ').pop()!;
    const decoded = decodeInviteToken(token);
    assert.equal(decoded.relayUrl, relay.url);
    assert.equal(decoded.desktopSign.equals(desktop.sign.publicKey), true);

    // Only hashes of the secret on the desktop: the secret's hex appears nowhere in agents.sqlite.
    const db = fs.readFileSync(path.join(home, 'agents.sqlite'));
    assert.equal(db.includes(Buffer.from(hex(decoded.joinSecret))), false);
    assert.equal(db.includes(decoded.joinSecret), false);
    assert.equal(fs.statSync(path.join(home, 'agents.sqlite')).mode & 0o777, 0o600);

    const pending = JSON.parse((await orchAgent(home, ['invites', '--json'])).stdout);
    assert.equal(pending.invites[0].state, 'pending');

    // The worker registers the permit with the relay within its sync interval.
    await until('the permit registered', () => (events.some((e) => e.event === 'relay_permit_registered') ? true : undefined));

    const stateDir = freshDir('agent');
    const joined = await runAgentCli(['join', '--state-dir', stateDir, '--timeout', '30s', '--json', token]);
    assert.equal(joined.code, 0, `${joined.stdout}\n${joined.stderr}`);
    const outcome = JSON.parse(joined.stdout);
    assert.equal(outcome.name, 'web-1');
    assert.equal(outcome.tier, 'standard');
    assert.deepEqual(outcome.tenants, ['acme']);
    assert.equal(fs.readFileSync(path.join(stateDir, 'allowlist.yaml'), 'utf8'), ALLOWLIST);
    assert.equal(fs.statSync(path.join(stateDir, 'agent-ed25519.key')).mode & 0o777, 0o600);
    const cfg = JSON.parse(fs.readFileSync(path.join(stateDir, 'agent.json'), 'utf8'));
    assert.equal(cfg.relay.pin, relay.pin);
    assert.equal(cfg.desktop.signKey, hex(desktop.sign.publicKey));
    assert.deepEqual(cfg.tenants, ['acme']);
    const status = await runAgentCli(['status', '--state-dir', stateDir, '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(JSON.parse(status.stdout).tenants, ['acme']);
    assert.equal(JSON.parse(status.stdout).name, 'web-1');

    const registry = AgentRegistry.open(home);
    const agent = registry.get('web-1');
    registry.close();
    assert.equal(agent?.signPublicKey.toString('hex'), outcome.signKey);
    assert.deepEqual(agent?.tenants, ['acme']);
    assert.equal(agent?.relay, 'edge');

    const after = JSON.parse((await orchAgent(home, ['invites', '--json'])).stdout);
    assert.equal(after.invites[0].state, 'used');
    assert.equal(after.invites[0].usedBy, outcome.signKey);

    // enroll_agent in the invite's tenant's chain only; invite_agent before it.
    const store = new TenantStore(home);
    const acme = [...store.auditLog('acme').rows()].map((r) => r.action);
    const globex = [...store.auditLog('globex').rows()].map((r) => r.action);
    store.close();
    assert.ok(acme.includes('invite_agent') && acme.includes('enroll_agent'), acme.join(','));
    assert.ok(!globex.includes('enroll_agent') && !globex.includes('invite_agent'), globex.join(','));

    // The same token again (another server, or the same one twice): the relay's permit is spent.
    const again = await runAgentCli(['join', '--state-dir', freshDir('agent'), '--timeout', '10s', token]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /permit_refused/);

    // `orch-agent run` logs in with plain AUTH: the desktop allowed the key.
    const started = await startAgentProcess(['run', '--state-dir', stateDir]);
    agents.push(started.child);
    joinedAgent = started;
    const result = await links.transport.run(request('acme', ['echo', 'joined']));
    assert.equal(result.stdout, 'joined\n');
    assert.equal(result.exitCode, 0);
  });

  test('a run of another tenant: the desktop does not send it (agent_not_in_tenant); the agent refuses one it does not serve', async () => {
    await assert.rejects(links.transport.run(request('globex', ['echo', 'nope'])), (err) => errorType(err) === 'agent_not_in_tenant');
    // The desktop now says web-1 serves globex too, but the agent joined for acme only: it refuses, before its ledger.
    assert.equal((await orchAgent(home, ['tenants', 'web-1', '--tenant', 'acme', '--tenant', 'globex'])).code, 0);
    await assert.rejects(links.transport.run(request('globex', ['echo', 'nope'])), (err) => {
      const e = err as { code?: string; message?: string };
      return e.code === 'command_not_allowed' && /tenant_not_served/.test(e.message ?? '');
    });
    assert.equal((await orchAgent(home, ['tenants', 'web-1', '--tenant', 'acme'])).code, 0);
  });

  test('replayed, expired, reused and forged join requests are refused and counted', async () => {
    const invite = async (name: string, expires = '10m') => {
      const r = await orchAgent(home, ['invite', name, '--tenant', 'acme', '--tier', 'read-only', '--relay', 'edge', '--expires', expires, '--json']);
      assert.equal(r.code, 0, r.stderr);
      return decodeInviteToken(JSON.parse(r.stdout).token);
    };
    const request = (tok: ReturnType<typeof decodeInviteToken>, opts: { proof?: Buffer; secret?: Buffer; sign?: SignKeyPair } = {}) => {
      const sign = opts.sign ?? ed25519KeyPair();
      const box = x25519KeyPair();
      const secret = opts.secret ?? tok.joinSecret;
      const proof = opts.proof ?? joinProof({ joinSecret: secret, agentSign: sign.publicKey, agentBox: box.publicKey, desktopSign: tok.desktopSign, desktopBox: tok.desktopBox, relayPin: tok.relayPin, expiresAt: tok.expiresAt });
      const body = encodeJoinMessage({ kind: 'join_request', signKey: hex(sign.publicKey), boxKey: hex(box.publicKey), hostname: 'test', agentVersion: 'test', joinSecret: hex(secret), proof: hex(proof) });
      return sealEnvelope({ header: { from: keyToHex(sign.publicKey), to: keyToHex(tok.desktopSign), msgId: newMsgId(), counter: 1n, ts: Date.now(), type: 'join_request' }, body, senderSign: sign, recipientBoxPublicKey: tok.desktopBox });
    };
    const refused = async () => JSON.parse((await orchAgent(home, ['invites', '--json'])).stdout).refused as Record<string, { count: number }>;
    const count = async (reason: string) => (await refused())[reason]?.count ?? 0;
    const registry = AgentRegistry.open(home);
    const enrolled = () => registry.list().map((a) => a.name);
    try {
      // Accepted once; the same envelope again is a replay.
      const a = await invite('join-a');
      const wire = request(a);
      links.transport.handleEnvelope(wire);
      await until('join-a pinned', () => (enrolled().includes('join-a') ? true : undefined));
      links.transport.handleEnvelope(wire);
      await until('replay counted', async () => ((await count('replay')) >= 1 ? true : undefined));

      // The same invite with another key: reused.
      links.transport.handleEnvelope(request(a));
      await until('reused counted', async () => ((await count('reused')) >= 1 ? true : undefined));

      // Expired: an invite of 1 s, used after it ended.
      const b = await invite('join-b', '1s');
      await new Promise((r) => setTimeout(r, 1500));
      links.transport.handleEnvelope(request(b));
      await until('expired counted', async () => ((await count('expired')) >= 1 ? true : undefined));

      // Forged: a proof that is not the secret's, a secret no invite has, a tampered signature.
      const c = await invite('join-c');
      links.transport.handleEnvelope(request(c, { proof: Buffer.alloc(32, 1) }));
      links.transport.handleEnvelope(request(c, { secret: Buffer.alloc(32, 2) }));
      const tampered = request(c);
      tampered[tampered.length - 1]! ^= 1;
      links.transport.handleEnvelope(tampered);
      await until('forgeries counted', async () => {
        const r = await refused();
        return (r.bad_proof?.count ?? 0) >= 1 && (r.unknown_invite?.count ?? 0) >= 1 && (r.bad_signature?.count ?? 0) >= 1 ? true : undefined;
      });
      assert.ok(!enrolled().includes('join-b') && !enrolled().includes('join-c'), 'nothing pinned for refused requests');
      assert.equal(enrolled().filter((n) => n === 'join-a').length, 1);
      assert.ok(events.some((e) => e.event === 'join_refused' && e.reason === 'bad_proof'), 'the worker log names the reason');
      const text = await orchAgent(home, ['invites']);
      assert.match(text.stdout, /refused join requests: .*bad_proof 1/);
    } finally {
      registry.close();
    }
  });

  test('the join answer carries the approver keys of the joined tenant, and the agent keeps them (APPROVAL.md)', async () => {
    const store = new TenantStore(home);
    store.create('signed', 'test');
    store.close();
    const approver = hex(ed25519KeyPair().publicKey);
    addApprover('signed', 'alice', approver, { home, actor: 'test' });
    const permitsBefore = events.filter((e) => e.event === 'relay_permit_registered').length;
    const invited = await orchAgent(home, ['invite', 'db-9', '--tenant', 'signed', '--tier', 'infrastructure', '--relay', 'edge', '--expires', '10m']);
    assert.equal(invited.code, 0, invited.stderr);
    await until('the permit registered', () => (events.filter((e) => e.event === 'relay_permit_registered').length > permitsBefore ? true : undefined));
    const stateDir = freshDir('agent');
    const joined = await runAgentCli(['join', '--state-dir', stateDir, '--timeout', '30s', '--json', invited.stdout.trim().split(' ').pop()!]);
    assert.equal(joined.code, 0, `${joined.stdout}\n${joined.stderr}`);
    const status = JSON.parse((await runAgentCli(['status', '--state-dir', stateDir, '--json'])).stdout);
    assert.deepEqual(status.approvers, { signed: { version: 1, keys: [approver] } });
    assert.equal(fs.statSync(path.join(stateDir, 'approvers.json')).mode & 0o777, 0o600);
    const text = (await runAgentCli(['status', '--state-dir', stateDir])).stdout;
    assert.match(text, new RegExp(`signed \\(version 1\\): 1 key\\(s\\)\\n +${approver}`));
  });

  test('a token whose relay pin is wrong: nothing is sent, the relay sees no login, the invite stays unused', async () => {
    const r = await orchAgent(home, ['invite', 'web-pin', '--tenant', 'acme', '--tier', 'read-only', '--relay', 'edge', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const tok = decodeInviteToken(JSON.parse(r.stdout).token);
    const wrong = encodeInviteToken({ ...tok, relayPin: Buffer.alloc(32, 9) });
    const before = {
      logins: await metric(relay, 'orch_relay_auth_ok_total'),
      joins: await metric(relay, 'orch_relay_join_logins_total'),
      failures: await metric(relay, 'orch_relay_auth_failures_total'),
      permits: await metric(relay, 'orch_relay_permit_refused_total'),
    };
    const joined = await runAgentCli(['join', '--state-dir', freshDir('agent'), '--timeout', '10s', wrong]);
    assert.equal(joined.code, 1);
    assert.match(joined.stderr, /pin_mismatch: .*nothing was sent/);
    assert.equal(joined.stderr.trim().split('\n').filter((l) => !l.startsWith('{')).length, 1, 'one error line');
    assert.deepEqual(
      {
        logins: await metric(relay, 'orch_relay_auth_ok_total'),
        joins: await metric(relay, 'orch_relay_join_logins_total'),
        failures: await metric(relay, 'orch_relay_auth_failures_total'),
        permits: await metric(relay, 'orch_relay_permit_refused_total'),
      },
      before,
    );
    const invites = JSON.parse((await orchAgent(home, ['invites', '--json'])).stdout).invites as Array<{ name: string; state: string }>;
    assert.equal(invites.find((i) => i.name === 'web-pin')?.state, 'pending');
  });

  test('join --install (as root) writes the systemd unit from the template, pointed at this binary and state dir', async () => {
    if (process.getuid?.() !== 0) {
      const r = await orchAgent(home, ['invite', 'web-noroot', '--tenant', 'acme', '--tier', 'read-only', '--relay', 'edge', '--json']);
      const j = await runAgentCli(['join', '--install', '--state-dir', freshDir('agent'), JSON.parse(r.stdout).token]);
      assert.equal(j.code, 1);
      assert.match(j.stderr, /needs root/);
      return;
    }
    const r = await orchAgent(home, ['invite', 'web-2', '--tenant', 'acme', '--tier', 'read-only', '--relay', 'edge', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const unitDir = freshDir('systemd');
    const stateDir = freshDir('agent');
    const joined = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(agentBinary(), ['join', '--install', '--state-dir', stateDir, '--timeout', '30s', JSON.parse(r.stdout).token], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ORCH_AGENT_SYSTEMD_DIR: unitDir },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
    assert.equal(joined.code, 0, joined.stderr);
    const unit = fs.readFileSync(path.join(unitDir, 'orch-agent.service'), 'utf8');
    assert.match(unit, new RegExp(`^ExecStart=\\S+ run --state-dir ${stateDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    assert.match(unit, /^\[Install\]$/m);
    assert.equal(fs.statSync(path.join(unitDir, 'orch-agent.service')).mode & 0o777, 0o644);
    assert.match(joined.stdout, /systemctl is not available here|started it/);
  });

  test('bad tokens and usage: one-line errors, exit codes 1 and 2, nothing written', async () => {
    const dir = freshDir('agent');
    const bad = await runAgentCli(['join', '--state-dir', dir, `${JOIN_TOKEN_PREFIX}AAAA`]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not a valid Orch invite token/);
    assert.equal(fs.existsSync(dir), false, 'a bad token writes nothing');
    assert.equal((await runAgentCli(['join'])).code, 2);
    const noTenant = await orchAgent(home, ['invite', 'x1', '--tier', 'standard']);
    assert.equal(noTenant.code, 2);
    const unknownTenant = await orchAgent(home, ['invite', 'x1', '--tier', 'standard', '--tenant', 'nope', '--json']);
    assert.equal(unknownTenant.code, 1);
    assert.equal(JSON.parse(unknownTenant.stdout).error.code, 'unknown_tenant');
    assert.equal((await orchAgent(home, ['invite', 'x1', '--tier', 'standard', '--tenant', 'acme', '--expires', '8d'])).code, 2);
  });
  test('invite --relay-url: the token carries the address servers reach the relay at; a bad one is refused, nothing stored', async () => {
    const invited = await orchAgent(home, ['invite', 'web-7', '--tenant', 'acme', '--tier', 'read-only', '--relay', 'edge', '--relay-url', 'wss://relay.example.test:7443/v1/relay', '--json']);
    assert.equal(invited.code, 0, invited.stderr);
    const decoded = decodeInviteToken(JSON.parse(invited.stdout).token);
    assert.equal(decoded.relayUrl, 'wss://relay.example.test:7443/v1/relay');
    assert.equal(decoded.relayPin.equals(Buffer.from(relay.pin.slice('sha256/'.length), 'base64')), true, 'the pin is the relay\'s own');
    const before = JSON.parse((await orchAgent(home, ['invites', '--json'])).stdout).invites.length;
    const bad = await orchAgent(home, ['invite', 'web-8', '--tenant', 'acme', '--tier', 'read-only', '--relay', 'edge', '--relay-url', 'http://relay.example.test/v1/relay']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /wss:\/\//);
    assert.equal(JSON.parse((await orchAgent(home, ['invites', '--json'])).stdout).invites.length, before);
  });

  test('orch agent remove while no worker runs: the next worker has the relay deny the agent, which is logged out and kept out', async () => {
    assert.ok(joinedAgent, 'the first test joined web-1 and started it');
    const registry = AgentRegistry.open(home);
    const key = registry.get('web-1')!.signPublicKey.toString('hex');
    registry.close();
    const allowed = () => fs.readFileSync(path.join(relayDir, 'allowed-keys.json'), 'utf8');
    assert.ok(allowed().includes(key), 'admitted while enrolled');
    const before = joinedAgent.stderr().length;
    // The worker stops; the agent is removed meanwhile. The removal is kept on disk until a relay confirms the DENY.
    await links.close();
    const removed = await orchAgent(home, ['remove', 'web-1']);
    assert.equal(removed.code, 0, removed.stderr);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(allowed().includes(key), 'no worker ran: the relay still admits it');
    const pending = AgentRegistry.open(home);
    assert.deepEqual(pending.pendingDenies('edge').map((k) => k.toString('hex')), [key]);
    pending.close();
    // The next worker (no agent uses "edge" any more) connects to deny it, and clears the record once confirmed.
    events.length = 0;
    links = await connectRelayTransports({ home, identity: desktop, heartbeatMs: 0, resultGraceMs: 10_000, inviteSyncMs: 200, log: (e) => events.push(e) });
    await until('the relay to deny the removed agent', () => (events.some((e) => e.event === 'relay_agents_denied') ? true : undefined));
    const done = AgentRegistry.open(home);
    assert.deepEqual(done.pendingDenies('edge'), []);
    done.close();
    // The relay logs the agent out, and its reconnects are refused: it no longer holds a session there.
    await until('the agent to be logged out', () => (/"event":"(relay_disconnected|auth_failed)"/.test(joinedAgent!.stderr().slice(before)) ? true : undefined));
    assert.equal(allowed().includes(key), false, 'the relay no longer admits the key (kept on disk across its restarts)');
  });
});

/**
 * As a new user would, from the README's "Adding servers": `orch init`, `orch relay add`, `orch agent invite`,
 * `orch-agent join` and `orch-agent run` on the "server", then `orch dag register` and `orch run` (the real
 * bin/orch.mjs) against the suite's Temporal dev server, with a worker whose command transport is the desktop's relay
 * connections. The identity is in the test run's own keychain (npm test runs the suite in a fresh Secret Service).
 */
describe('invite, join, then orch run end to end (real Temporal, relay, agent)', () => {
  let relay: RunningRelay;
  let home: string;
  let w: TestWorker;
  let links: ConnectedRelays;
  const agents: ChildProcessWithoutNullStreams[] = [];

  function orch(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return runOrch(args, { ...process.env, ORCH_HOME: home, TEMPORAL_ADDRESS: suiteEnv().address, ORCH_TASK_QUEUE: w?.taskQueue ?? 'join-test-setup' });
  }

  const dag = (name: string, agent: string) => `
name: ${name}
version: 1
cost_cap_usd: 0.1
nodes:
  - id: hello
    type: command
    agent: ${agent}
    argv: [echo, joined-through-orch-run]
    timeout_seconds: 30
`;

  beforeAll(async () => {
    home = tempHome();
    const init = await orch(['init']);
    assert.equal(init.code, 0, init.stderr);
    const identity = readPublicIdentity(home)!;
    relay = await startRelay({ host: '127.0.0.1', port: 0, dataDir: freshDir('relay'), log: () => {}, admission: { adminKeys: [identity.sign.publicKey] } });
    for (const args of [['relay', 'add', 'edge', '--url', relay.url, '--pin', relay.pin], ['tenant', 'create', 'acme'], ['tenant', 'create', 'globex']]) {
      const r = await orch(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    const desktop = await loadDesktopIdentity({ home });
    links = await connectRelayTransports({ home, identity: desktop, heartbeatMs: 0, resultGraceMs: 10_000, inviteSyncMs: 200 });
    // The worker of `orch up`, in this process: its command transport is the desktop's relay connections.
    w = await startTestWorker({ commands: links.transport }, home);
  });

  afterAll(async () => {
    await links?.close();
    await stopAgents(agents);
    await w?.stop(); // also removes home
    await relay?.stop();
  });

  test('a joined server runs a command of its tenant through orch run; another tenant cannot name it', async () => {
    const allow = path.join(work, 'allow-run.yaml');
    fs.writeFileSync(allow, ALLOWLIST);
    const invited = await orch(['agent', 'invite', 'web-1', '--tenant', 'acme', '--tier', 'standard', '--allow', allow, '--relay', 'edge']);
    assert.equal(invited.code, 0, invited.stderr);
    const token = invited.stdout.trim().split(' ').pop()!;
    const stateDir = freshDir('agent');
    const joined = await runAgentCli(['join', '--state-dir', stateDir, '--timeout', '30s', token]);
    assert.equal(joined.code, 0, `${joined.stdout}\n${joined.stderr}`);
    assert.match(joined.stdout, /Joined as agent "web-1" \(tier standard, tenants acme\)/);
    const started = await startAgentProcess(['run', '--state-dir', stateDir]);
    agents.push(started.child);

    const file = path.join(home, 'hello.yaml');
    fs.writeFileSync(file, dag('join-hello', 'web-1'));
    const registered = await orch(['dag', 'register', file, '--tenant', 'acme']);
    assert.equal(registered.code, 0, registered.stderr);
    const ran = await orch(['run', 'join-hello', '--tenant', 'acme', '--follow', '--json']);
    assert.equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
    assert.match(ran.stdout, /joined-through-orch-run/);

    // Tenant globex: validate and register refuse the node that names acme's agent.
    const validated = await orch(['dag', 'validate', file, '--tenant', 'globex']);
    assert.equal(validated.code, 1);
    assert.match(validated.stderr, /hello.*agent "web-1" is not enrolled in this tenant/s);
    assert.equal((await orch(['dag', 'register', file, '--tenant', 'globex'])).code, 1);
    assert.equal((await orch(['dag', 'validate', file])).code, 0, 'without --tenant, validate does not look at agents');

    // Removed from acme after registering: orch run refuses at once, and a run started anyway fails agent_not_in_tenant.
    const moved = await orch(['agent', 'tenants', 'web-1', '--tenant', 'globex']);
    assert.equal(moved.code, 0, moved.stderr);
    const refused = await orch(['run', 'join-hello', '--tenant', 'acme']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not enrolled in this tenant/);
    const handle = await w.client.workflow.start('join-hello', { taskQueue: w.taskQueue, workflowId: `join-hello-${process.pid}-${Date.now()}`, args: [{ tenant: 'acme', params: {} }] });
    const chain: string[] = [];
    try {
      await handle.result();
    } catch (err) {
      for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) chain.push(`${(e as { type?: string }).type ?? ''} ${(e as Error).message}`);
    }
    assert.ok(chain.some((l) => l.includes('agent_not_in_tenant')), chain.join('\n'));
  });
});
