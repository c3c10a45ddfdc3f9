/**
 * The desktop's side of agents: the registry (`orch agent add/list/remove`, bad input), the relay state
 * (counters and replay windows on disk), and RelayCommandTransport against a REAL agent process (`orch-agent run
 * --stdio`: the same handler, ledger, policy and executor as behind the relay, with a pipe where the relay would
 * be), running real commands. The run through a real relay is in the last suite.
 *
 * The desktop identity here is made in memory: these tests are about the transport, the keychain has its own
 * file (keychain.test.ts).
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { orchAgent } from '../support/agent-command';
import { startAgentProcess } from '../support/agent-binary';
import { PipeLink, enrollAgent as enrollStdioAgent, runAgentCli, startStdioAgent, type AgentProc, type DesktopKeys } from '../support/stdio-agent';
import { fileURLToPath } from 'node:url';
import { AgentRegistry, RelayState, MAX_ALLOWLIST_BYTES } from '../../desktop-worker/agent-registry';
import { RelayCommandTransport, connectRelayTransport } from '../../desktop-worker/agent-transport';
import { encodeMessage } from '../../protocol/agent-messages';
import { keyToHex, newMsgId, sealEnvelope } from '../../protocol/envelope';
import { ed25519KeyPair, x25519KeyPair } from '../../protocol/primitives';
import { OrchError } from '../../protocol/errors';

const root = fileURLToPath(new URL('../..', import.meta.url));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-agent-transport-test-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

let dirCount = 0;
const freshDir = (name: string) => path.join(work, `${name}-${++dirCount}`);

const hex = (b: Buffer) => b.toString('hex');

// --------------------------------------------------------------------------------------------- registry

describe('orch agent add / list / remove', () => {
  const sign = ed25519KeyPair();
  const box = x25519KeyPair();
  const good = ['--key', hex(sign.publicKey), '--box-key', hex(box.publicKey), '--tier', 'standard'];

  test('add, list, remove, with the file private', async () => {
    const home = freshDir('home');
    const allow = path.join(work, 'allow.yaml');
    fs.writeFileSync(allow, 'version: 1\ncommands:\n  - executable: uptime\n');
    const added = await orchAgent(home, ['add', 'web-1', ...good, '--allow', allow, '--json']);
    assert.equal(added.code, 0, added.stderr);
    assert.equal(JSON.parse(added.stdout).name, 'web-1');
    if (process.platform !== 'win32') assert.equal(fs.statSync(path.join(home, 'agents.sqlite')).mode & 0o777, 0o600);

    const listed = await orchAgent(home, ['list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].signPublicKey, hex(sign.publicKey));
    assert.equal(rows[0].boxPublicKey, hex(box.publicKey));
    assert.equal(rows[0].tier, 'standard');
    assert.equal(rows[0].hasAllowlist, true);
    assert.equal(rows[0].online, false, 'never heard from: offline');
    assert.equal(rows[0].source, 'last_seen');
    assert.equal(rows[0].lastSeen, null);
    const registry = AgentRegistry.open(home);
    assert.equal(registry.get('web-1')?.allowlist, fs.readFileSync(allow, 'utf8'));
    registry.close();

    const text = await orchAgent(home, ['list']);
    assert.match(text.stdout, /^web-1\s+standard\s+offline \(never seen\)/m);

    const removed = await orchAgent(home, ['remove', 'web-1']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(JSON.parse((await orchAgent(home, ['list', '--json'])).stdout), []);
    const again = await orchAgent(home, ['remove', 'web-1', '--json']);
    assert.equal(again.code, 1);
    assert.equal(JSON.parse(again.stdout).error.code, 'unknown_agent');
  });

  test('refuses bad keys, tiers and names with bad_input, and adds nothing', async () => {
    const home = freshDir('home');
    // A point of order 8 on Curve25519: a "shared secret" with it is known to everyone.
    const lowOrder = 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800';
    const cases: Array<[string, string[]]> = [
      ['short key', ['add', 'a1', '--key', hex(sign.publicKey).slice(1), '--box-key', hex(box.publicKey), '--tier', 'standard']],
      ['long key', ['add', 'a1', '--key', `${hex(sign.publicKey)}00`, '--box-key', hex(box.publicKey), '--tier', 'standard']],
      ['non-hex key', ['add', 'a1', '--key', `zz${hex(sign.publicKey).slice(2)}`, '--box-key', hex(box.publicKey), '--tier', 'standard']],
      ['0x prefix', ['add', 'a1', '--key', `0x${hex(sign.publicKey).slice(2)}`, '--box-key', hex(box.publicKey), '--tier', 'standard']],
      ['all-zero key', ['add', 'a1', '--key', '0'.repeat(64), '--box-key', hex(box.publicKey), '--tier', 'standard']],
      ['low-order box key', ['add', 'a1', '--key', hex(sign.publicKey), '--box-key', lowOrder, '--tier', 'standard']],
      ['same key twice', ['add', 'a1', '--key', hex(sign.publicKey), '--box-key', hex(sign.publicKey), '--tier', 'standard']],
      ['unknown tier', ['add', 'a1', ...good.slice(0, 4), '--tier', 'admin']],
      ['tier case', ['add', 'a1', ...good.slice(0, 4), '--tier', 'Standard']],
      ['path name', ['add', '../etc', ...good]],
      ['slash name', ['add', 'web/1', ...good]],
      ['space name', ['add', 'web 1', ...good]],
      ['unicode name', ['add', 'wéb', ...good]],
      ['prototype name', ['add', '__proto__', ...good]],
      ['long name', ['add', 'a'.repeat(51), ...good]],
    ];
    for (const [what, argv] of cases) {
      const r = await orchAgent(home, [...argv, '--json']);
      assert.equal(r.code, 1, `${what}: exit 1\n${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).error.code, 'bad_input', what);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one error line`);
    }
    assert.equal((await orchAgent(home, ['add', '', ...good])).code, 2, 'an empty name is a missing NAME: usage');
    assert.deepEqual(JSON.parse((await orchAgent(home, ['list', '--json'])).stdout), [], 'nothing was added');
    const fifty = await orchAgent(home, ['add', 'a'.repeat(50), ...good]);
    assert.equal(fifty.code, 0, `a 50-character name is fine: ${fifty.stderr}`);
  });

  test('duplicates, missing options and misplaced options', async () => {
    const home = freshDir('home');
    assert.equal((await orchAgent(home, ['add', 'web-1', ...good])).code, 0);
    const dupName = await orchAgent(home, ['add', 'web-1', '--key', hex(ed25519KeyPair().publicKey), '--box-key', hex(x25519KeyPair().publicKey), '--tier', 'standard', '--json']);
    assert.equal(JSON.parse(dupName.stdout).error.code, 'agent_exists');
    const dupKey = await orchAgent(home, ['add', 'web-2', ...good, '--json']);
    assert.equal(JSON.parse(dupKey.stdout).error.code, 'agent_key_in_use');

    assert.equal((await orchAgent(home, ['add', 'web-3', '--box-key', hex(box.publicKey), '--tier', 'standard'])).code, 2, 'missing --key');
    assert.equal((await orchAgent(home, ['add', 'web-3', '--key', hex(sign.publicKey), '--tier', 'standard'])).code, 2, 'missing --box-key');
    assert.equal((await orchAgent(home, ['add', 'web-3', '--key', hex(sign.publicKey), '--box-key', hex(box.publicKey)])).code, 2, 'missing --tier');
    assert.equal((await orchAgent(home, ['add', ...good])).code, 2, 'missing NAME');
    assert.equal((await orchAgent(home, ['list', '--tier', 'standard'])).code, 2, '--tier does not apply to list');
    assert.equal((await orchAgent(home, ['list', '--relay', 'wss://127.0.0.1:1/v1/relay'])).code, 2, '--relay goes with --ping');
    assert.equal((await orchAgent(home, ['list', '--ping', '--relay', 'wss://127.0.0.1:1/v1/relay'])).code, 2, 'a relay needs its pin');
    assert.equal((await orchAgent(home, ['frobnicate'])).code, 2);
    assert.equal((await orchAgent(home, ['add', 'web-3', ...good, '--bogus'])).code, 2);

    const missing = await orchAgent(home, ['add', 'web-3', '--key', hex(ed25519KeyPair().publicKey), '--box-key', hex(x25519KeyPair().publicKey), '--tier', 'standard', '--allow', path.join(work, 'nope.yaml'), '--json']);
    assert.equal(JSON.parse(missing.stdout).error.code, 'bad_input');
    const big = path.join(work, 'big.yaml');
    fs.writeFileSync(big, 'x'.repeat(MAX_ALLOWLIST_BYTES + 1));
    const tooBig = await orchAgent(home, ['add', 'web-3', '--key', hex(ed25519KeyPair().publicKey), '--box-key', hex(x25519KeyPair().publicKey), '--tier', 'standard', '--allow', big, '--json']);
    assert.equal(JSON.parse(tooBig.stdout).error.code, 'bad_input');
    assert.equal(AgentRegistry.open(home).list().length, 1);
  });
});

describe('relay state on disk', () => {
  test('counters strictly increase across reopen, separately per pair', () => {
    const home = freshDir('home');
    const [me, a, b] = [ed25519KeyPair(), ed25519KeyPair(), ed25519KeyPair()].map((k) => hex(k.publicKey)) as [string, string, string];
    let state = RelayState.open(home);
    assert.equal(state.nextCounter(me, a), 1n);
    assert.equal(state.nextCounter(me, a), 2n);
    assert.equal(state.nextCounter(me, b), 1n);
    state.close();
    state = RelayState.open(home);
    assert.equal(state.nextCounter(me, a), 3n, 'a restart continues, never reuses');
    assert.equal(state.lastCounter(me, b), 1n);
    state.close();
    if (process.platform !== 'win32') assert.equal(fs.statSync(path.join(home, 'relay-state.sqlite')).mode & 0o777, 0o600);
  });

  test('a window change is committed only when accepted', () => {
    const home = freshDir('home');
    const state = RelayState.open(home);
    state.withWindow('aa', 'bb', (w) => {
      w.accept(5n);
      return { accept: false, value: undefined };
    });
    assert.equal(state.withWindow('aa', 'bb', (w) => ({ accept: false, value: w.highest })), 0n);
    state.withWindow('aa', 'bb', (w) => {
      w.accept(5n);
      return { accept: true, value: undefined };
    });
    state.close();
    const reopened = RelayState.open(home);
    assert.equal(reopened.withWindow('aa', 'bb', (w) => ({ accept: false, value: w.check(5n) })), 'replay');
    reopened.close();
  });
});

// ------------------------------------------------------------------------- transport with a real agent

const ALLOWLIST = `version: 1
commands:
  - executable: echo
    rest: any
  - executable: date
    args: ["+%s.%N"]
  - executable: ls
    args: ["/nonexistent-orch-test"]
  - executable: sleep
    args: [{ regex: "[0-9]+" }]
`;

const enrollAgent = (desktop: DesktopKeys) => enrollStdioAgent(desktop, freshDir('agent'), ALLOWLIST);
const startAgent = startStdioAgent;

function errorType(err: unknown): string | undefined {
  if (err instanceof OrchError) return err.code;
  return (err as { type?: string }).type;
}

describe('RelayCommandTransport with a real agent', () => {
  const desktop: DesktopKeys = { sign: ed25519KeyPair(), box: x25519KeyPair() };
  let home: string;
  let agent: AgentProc;
  let registry: AgentRegistry;
  let state: RelayState;
  let transport: RelayCommandTransport;
  let link: PipeLink;
  let seq = 0;
  const commandId = () => `wf-${process.pid}/run-1/node-${++seq}`;
  const request = (argv: string[], id = commandId(), timeoutSeconds = 20) => ({ tenant: 't', agent: 'web-1', argv, timeoutSeconds, commandId: id });

  function connect(): void {
    registry = AgentRegistry.open(home);
    state = RelayState.open(home);
    const t = new RelayCommandTransport({ identity: desktop, registry, state, resultGraceMs: 10_000 });
    transport = t;
    link = new PipeLink(agent, (w) => t.handleEnvelope(w));
    t.attach(link);
  }

  function disconnect(): void {
    transport.close();
    link.close();
    registry.close();
    state.close();
  }

  beforeAll(async () => {
    home = freshDir('home');
    const enrolled = await enrollAgent(desktop);
    const reg = AgentRegistry.open(home);
    reg.add({ name: 'web-1', signKeyHex: enrolled.signKey, boxKeyHex: enrolled.boxKey, tier: 'standard' });
    reg.close();
    agent = await startAgent(enrolled);
    connect();
  });

  afterAll(async () => {
    disconnect();
    await agent?.stop();
  });

  test('runs a real command; shell metacharacters are plain arguments', async () => {
    const before = Date.now();
    const result = await transport.run(request(['echo', 'hello', '$(id)', ';', 'rm', '-rf', '/', '|', '`x`']));
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, 'hello $(id) ; rm -rf / | `x`\n');
    assert.equal(result.truncated, false);
    assert.ok(registry.get('web-1')!.lastSeen! >= new Date(before).toISOString(), 'last_seen moved');
    assert.equal(transport.rejects.total, 0);
  });

  test('a non-zero exit comes back as a result, not an error', async () => {
    const result = await transport.run(request(['ls', '/nonexistent-orch-test']));
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr, /nonexistent-orch-test/);
  });

  test('a retried command id gets the stored result; the command ran once', async () => {
    const id = commandId();
    const first = await transport.run(request(['date', '+%s.%N'], id));
    const second = await transport.run(request(['date', '+%s.%N'], id));
    assert.equal(first.exitCode, 0);
    assert.equal(second.stdout, first.stdout, 'nanosecond clock output identical: answered from the ledger, not run again');
  });

  test('refused by the agent: command_not_allowed with the reason, nothing run', async () => {
    await assert.rejects(transport.run(request(['cat', '/etc/shadow'])), (err) => {
      assert.equal(errorType(err), 'command_not_allowed');
      assert.match((err as Error).message, /command_not_allowed/);
      return true;
    });
  });

  test('unknown agent: agent_unavailable, nothing sent', async () => {
    const sentBefore = state.lastCounter(keyToHex(desktop.sign.publicKey), agent.signKey);
    await assert.rejects(transport.run({ ...request(['echo', 'x']), agent: 'web-404' }), (err) => errorType(err) === 'agent_unavailable');
    assert.equal(state.lastCounter(keyToHex(desktop.sign.publicKey), agent.signKey), sentBefore);
  });

  test('relay down: relay_unavailable (retryable); no answer: agent_no_answer (retryable)', async () => {
    link.connected = false;
    await assert.rejects(transport.run(request(['echo', 'x'])), (err) => errorType(err) === 'relay_unavailable' && (err as { nonRetryable?: boolean }).nonRetryable === false);
    link.connected = true;
    const quick = new RelayCommandTransport({ identity: desktop, registry, state, relay: { connected: true, send: async () => {} }, resultGraceMs: 300 });
    await assert.rejects(quick.run(request(['echo', 'x'], commandId(), 1)), (err) => errorType(err) === 'agent_no_answer' && (err as { nonRetryable?: boolean }).nonRetryable === false);
  });

  test('ping: an authenticated pong from the agent', async () => {
    const pong = await transport.ping('web-1', 10_000);
    assert.equal(pong?.kind, 'pong');
    assert.equal(pong?.tier, 'standard');
  });

  test('replayed, tampered, forged and cross-agent results are not accepted', async () => {
    const id = commandId();
    const delivered = link.delivered.length;
    await transport.run(request(['echo', 'once'], id));
    const reply = link.delivered[delivered]!;
    const accepted = transport.stats.accepted;

    transport.handleEnvelope(reply);
    assert.equal(transport.rejects.get('replay'), 1, 'the same reply again is a replay');

    for (const i of [0, 40, 100, reply.length - 70, reply.length - 1]) {
      const bad = Buffer.from(reply);
      bad[i] = bad[i]! ^ 0x01;
      transport.handleEnvelope(bad);
    }
    assert.equal(transport.stats.accepted, accepted, 'no flipped envelope accepted');

    // A validly sealed result from a key that is not enrolled.
    const stranger = ed25519KeyPair();
    const forged = sealEnvelope({
      header: { from: keyToHex(stranger.publicKey), to: keyToHex(desktop.sign.publicKey), msgId: newMsgId(), counter: 1n, ts: Date.now(), type: 'result' },
      body: encodeMessage({ kind: 'result', commandId: id, status: 'finished', exitCode: 0, stdout: 'forged' }),
      senderSign: stranger,
      recipientBoxPublicKey: desktop.box.publicKey,
    });
    transport.handleEnvelope(forged);
    assert.equal(transport.rejects.get('unknown_sender'), 1);

    // Another ENROLLED agent answering a command that was sent to web-1 settles nothing.
    const other = { sign: ed25519KeyPair(), box: x25519KeyPair() };
    registry.add({ name: 'web-2', signKeyHex: hex(other.sign.publicKey), boxKeyHex: hex(other.box.publicKey), tier: 'standard' });
    const waitingId = commandId();
    const silent = new RelayCommandTransport({ identity: desktop, registry, state, relay: { connected: true, send: async () => {} }, resultGraceMs: 1500 });
    const pending = silent.run({ ...request(['echo', 'x'], waitingId, 1) });
    const crossAgent = sealEnvelope({
      header: { from: hex(other.sign.publicKey), to: keyToHex(desktop.sign.publicKey), msgId: newMsgId(), counter: 1n, ts: Date.now(), type: 'result' },
      body: encodeMessage({ kind: 'result', commandId: waitingId, status: 'finished', exitCode: 0, stdout: 'not yours' }),
      senderSign: other.sign,
      recipientBoxPublicKey: desktop.box.publicKey,
    });
    silent.handleEnvelope(crossAgent);
    assert.equal(silent.stats.accepted, 1, 'it authenticates (web-2 is enrolled)...');
    assert.equal(silent.stats.unmatched, 1, '...but does not answer a command sent to web-1');
    await assert.rejects(pending, (err) => errorType(err) === 'agent_no_answer');
    registry.remove('web-2');
  });

  test('a restarted desktop continues its counters and remembers its window', async () => {
    const lastReply = link.delivered.at(-1)!;
    disconnect();
    connect();
    // The agent's window would refuse a reused counter: this works only because the counter was persisted.
    const result = await transport.run(request(['echo', 'after restart']));
    assert.equal(result.stdout, 'after restart\n');
    transport.handleEnvelope(lastReply);
    assert.equal(transport.rejects.get('replay'), 1, 'an old reply is a replay after the restart too');
  });

  test('with its counters lost, the desktop is refused by the agent (so persistence is what makes it work)', async () => {
    const lostHome = freshDir('home');
    const reg = AgentRegistry.open(lostHome);
    reg.add({ name: 'web-1', signKeyHex: agent.signKey, boxKeyHex: agent.boxKey, tier: 'standard' });
    const fresh = new RelayCommandTransport({ identity: desktop, registry: reg, state: RelayState.open(lostHome), resultGraceMs: 1500 });
    const freshLink = new PipeLink(agent, (w) => fresh.handleEnvelope(w));
    fresh.attach(freshLink);
    await assert.rejects(fresh.run(request(['echo', 'x'], commandId(), 1)), (err) => errorType(err) === 'agent_no_answer');
    fresh.close();
    freshLink.close();
    reg.close();
  });
});

// ----------------------------------------------------------------------- through a real relay, end to end

describe('RelayCommandTransport through a real relay and a real agent', () => {
  const desktop: DesktopKeys = { sign: ed25519KeyPair(), box: x25519KeyPair() };
  let relay: Awaited<ReturnType<typeof import('../../relay/main').startRelay>>;
  let agentChild: ChildProcessWithoutNullStreams | undefined;
  let link: Awaited<ReturnType<typeof connectRelayTransport>>;
  let home: string;
  let seq = 0;
  const request = (argv: string[], id = `wf-relay-${process.pid}/run/n${++seq}`) => ({ tenant: 't', agent: 'db-1', argv, timeoutSeconds: 20, commandId: id });

  beforeAll(async () => {
    const { startRelay } = await import('../../relay/main');
    relay = await startRelay({ host: '127.0.0.1', port: 0, dataDir: freshDir('relay'), log: () => {} });
    const stateDir = freshDir('agent');
    const allow = path.join(work, `allow-relay.yaml`);
    fs.writeFileSync(allow, ALLOWLIST);
    const enrolled = await runAgentCli([
      'enroll', '--relay', relay.url, '--relay-pin', relay.pin,
      '--desktop', hex(desktop.sign.publicKey), '--desktop-box-key', hex(desktop.box.publicKey),
      '--tier', 'standard', '--allow', allow, '--state-dir', stateDir, '--json',
    ]);
    assert.equal(enrolled.code, 0, enrolled.stderr);
    const info = JSON.parse(enrolled.stdout);
    home = freshDir('home');
    const reg = AgentRegistry.open(home);
    reg.add({ name: 'db-1', signKeyHex: info.signKey, boxKeyHex: info.boxKey, tier: 'standard' });
    reg.close();

    agentChild = (await startAgentProcess(['run', '--state-dir', stateDir], { cwd: root })).child;
    link = await connectRelayTransport({ home, identity: desktop, relay: { url: relay.url, pin: relay.pin }, heartbeatMs: 0, resultGraceMs: 10_000 });
    assert.equal(link.connected, true, `desktop logged in to the relay: ${JSON.stringify(link.startError)}`);
  });

  afterAll(async () => {
    await link?.close();
    if (agentChild && agentChild.exitCode === null) {
      const exited = new Promise((r) => agentChild!.once('exit', r));
      agentChild.kill('SIGTERM');
      await exited;
    }
    await relay?.stop();
  });

  test('a command runs on the agent and its output comes back', async () => {
    const result = await link.transport.run(request(['echo', 'through', 'the relay']));
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, 'through the relay\n');
    const refused = link.transport.run(request(['cat', '/etc/shadow']));
    await assert.rejects(refused, (err) => errorType(err) === 'command_not_allowed');
    assert.equal(link.transport.rejects.total, 0);
  });

  test('the heartbeat keeps last_seen fresh, so `orch agent list` shows the agent online', async () => {
    const before = Date.now();
    link.transport.startHeartbeat(60_000);
    const deadline = Date.now() + 10_000;
    let row: Record<string, unknown> | undefined;
    while (Date.now() < deadline) {
      row = JSON.parse((await orchAgent(home, ['list', '--json'])).stdout)[0];
      if (row && typeof row.lastSeen === 'string' && Date.parse(row.lastSeen) >= before) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(row?.online, true, JSON.stringify(row));
    assert.equal(row?.source, 'last_seen');
  });

  test('a relay whose certificate does not match the pin is refused', async () => {
    const wrongPin = `sha256/${Buffer.alloc(32, 7).toString('base64')}`;
    const other = await connectRelayTransport({ home: freshDir('home'), identity: { sign: ed25519KeyPair(), box: x25519KeyPair() }, relay: { url: relay.url, pin: wrongPin }, heartbeatMs: 0, waitMs: 5000 });
    try {
      assert.equal(other.connected, false);
      assert.equal(other.startError?.code, 'pin_mismatch');
    } finally {
      await other.close();
    }
  });
});
