/**
 * Named, pinned relays on the desktop (issue 7): `orch relay add/list/remove` (the registry in agents.sqlite, 0600,
 * each change audited in every tenant's chain), `orch agent add --relay` and its defaults, and the command
 * transport's routing: each agent's envelopes go to its own relay's link, and a relay that is down fails only its
 * agents' commands with a retryable relay_unavailable naming the relay. The end to end version, with real relays
 * and agents in network namespaces, is test/integration/multihost.test.ts.
 */
import { describe, test, beforeAll, afterAll } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AgentRegistry, RelayState } from '../../desktop-worker/agent-registry';
import { RelayCommandTransport, type RelayLink, type RelayRouter } from '../../desktop-worker/agent-transport';
import { main as orchMain } from '../../desktop-worker/cli';
import { RelayRegistry, checkRelayPin, checkRelayUrl } from '../../desktop-worker/relay-registry';
import { TenantStore } from '../../desktop-worker/tenant-store';
import { parseHeaderUnverified } from '../../protocol/envelope';
import { ed25519KeyPair, x25519KeyPair } from '../../protocol/primitives';
import { OrchError } from '../../protocol/errors';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-relays-test-'));
let n = 0;
const freshHome = () => {
  const h = path.join(work, `home-${++n}`);
  fs.mkdirSync(h, { mode: 0o700 });
  return h;
};
const pin = (byte: number) => `sha256/${Buffer.alloc(32, byte).toString('base64')}`;
const hex = (b: Buffer) => b.toString('hex');
const newAgentKeys = () => ({ sign: ed25519KeyPair(), box: x25519KeyPair() });

let savedHome: string | undefined;
beforeAll(() => {
  savedHome = process.env.ORCH_HOME;
});
afterAll(() => {
  if (savedHome === undefined) delete process.env.ORCH_HOME;
  else process.env.ORCH_HOME = savedHome;
  fs.rmSync(work, { recursive: true, force: true });
});

/** `orch ...` in this process against `home`. */
async function orch(home: string, argv: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  process.env.ORCH_HOME = home;
  Object.assign(process.env, env);
  try {
    const code = await orchMain(argv, { log: (l) => (stdout += `${l}\n`), err: (l) => (stderr += `${l}\n`) });
    return { code, stdout, stderr };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function addAgentArgs(name: string, keys = newAgentKeys()): string[] {
  return ['agent', 'add', name, '--key', hex(keys.sign.publicKey), '--box-key', hex(keys.box.publicKey), '--tier', 'standard'];
}

describe('orch relay add / list / remove', () => {
  test('add, list with agent counts, remove; the file is private; each change is in every tenant chain', async () => {
    const home = freshHome();
    const store = new TenantStore(home);
    store.create('acme');
    store.create('beta');
    store.close();

    const added = await orch(home, ['relay', 'add', 'eu-1', '--url', 'wss://relay.example:7443/v1/relay', '--pin', pin(1), '--json']);
    assert.equal(added.code, 0, added.stderr);
    assert.equal(JSON.parse(added.stdout).name, 'eu-1');
    assert.equal(fs.statSync(path.join(home, 'agents.sqlite')).mode & 0o777, 0o600);
    assert.equal((await orch(home, ['relay', 'add', 'us-1', '--url', 'wss://10.0.0.9:443/v1/relay', '--pin', pin(2)])).code, 0);
    assert.equal((await orch(home, [...addAgentArgs('web-1'), '--relay', 'eu-1'])).code, 0);

    const listed = await orch(home, ['relay', 'list', '--json']);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as Array<{ name: string; url: string; pin: string; agents: number }>).map((r) => [r.name, r.url, r.pin, r.agents]),
      [
        ['eu-1', 'wss://relay.example:7443/v1/relay', pin(1), 1],
        ['us-1', 'wss://10.0.0.9/v1/relay', pin(2), 0],
      ],
    );
    const text = await orch(home, ['relay', 'list']);
    assert.match(text.stdout, /^eu-1\s+wss:\/\/relay\.example:7443\/v1\/relay\s+sha256\/\S+\s+1 agent$/m);

    const inUse = await orch(home, ['relay', 'remove', 'eu-1', '--json']);
    assert.equal(inUse.code, 1);
    assert.equal(JSON.parse(inUse.stdout).error.code, 'relay_in_use');
    assert.match(inUse.stderr, /web-1/);
    assert.equal((await orch(home, ['relay', 'remove', 'us-1'])).code, 0);
    const gone = await orch(home, ['relay', 'remove', 'us-1', '--json']);
    assert.equal(JSON.parse(gone.stdout).error.code, 'unknown_relay');

    const audit = new TenantStore(home);
    try {
      for (const tenant of ['acme', 'beta']) {
        const actions = [...audit.auditLog(tenant).rows()].map((r) => `${r.action}:${r.subject}`);
        for (const expected of ['add_relay:eu-1', 'add_relay:us-1', 'enroll_agent:web-1', 'remove_relay:us-1']) {
          assert.ok(actions.includes(expected), `${tenant}: ${expected} in ${actions.join(', ')}`);
        }
        assert.equal(actions.filter((a) => a === 'remove_relay:us-1').length, 1, 'a refused or failed removal is not audited');
        assert.equal(audit.auditLog(tenant).verify().ok, true);
      }
    } finally {
      audit.close();
    }
  });

  test('bad names, URLs and pins are refused with one line, exit 1 (bad_input); usage mistakes exit 2', async () => {
    const home = freshHome();
    const cases: Array<[string, string[]]> = [
      ['http URL', ['relay', 'add', 'r1', '--url', 'https://relay.example/v1/relay', '--pin', pin(1)]],
      ['ws without TLS', ['relay', 'add', 'r1', '--url', 'ws://relay.example:7443/v1/relay', '--pin', pin(1)]],
      ['wrong path', ['relay', 'add', 'r1', '--url', 'wss://relay.example:7443/', '--pin', pin(1)]],
      ['credentials', ['relay', 'add', 'r1', '--url', 'wss://u:p@relay.example:7443/v1/relay', '--pin', pin(1)]],
      ['query', ['relay', 'add', 'r1', '--url', 'wss://relay.example:7443/v1/relay?x=1', '--pin', pin(1)]],
      ['not a URL', ['relay', 'add', 'r1', '--url', 'relay.example', '--pin', pin(1)]],
      ['short pin', ['relay', 'add', 'r1', '--url', 'wss://relay.example:7443/v1/relay', '--pin', 'sha256/AAAA']],
      ['pin without prefix', ['relay', 'add', 'r1', '--url', 'wss://relay.example:7443/v1/relay', '--pin', Buffer.alloc(32).toString('base64')]],
      ['path name', ['relay', 'add', '../x', '--url', 'wss://relay.example:7443/v1/relay', '--pin', pin(1)]],
      ['long name', ['relay', 'add', 'r'.repeat(51), '--url', 'wss://relay.example:7443/v1/relay', '--pin', pin(1)]],
    ];
    for (const [what, argv] of cases) {
      const r = await orch(home, [...argv, '--json']);
      assert.equal(r.code, 1, `${what}: exit 1\n${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).error.code, 'bad_input', what);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one error line`);
    }
    assert.equal((await orch(home, ['relay', 'add', 'r1', '--pin', pin(1)])).code, 2, 'missing --url');
    assert.equal((await orch(home, ['relay', 'add', 'r1', '--url', 'wss://relay.example:7443/v1/relay'])).code, 2, 'missing --pin');
    assert.equal((await orch(home, ['relay', 'add'])).code, 2, 'missing NAME');
    assert.equal((await orch(home, ['relay', 'list', '--url', 'x'])).code, 2, '--url does not apply to list');
    assert.equal((await orch(home, ['relay', 'frobnicate'])).code, 2);
    assert.equal((await orch(home, ['relay'])).code, 2);
    const help = await orch(home, ['relay', 'add', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /orch relay add NAME --url wss:\/\/HOST:PORT\/v1\/relay --pin sha256/);
    assert.deepEqual(JSON.parse((await orch(home, ['relay', 'list', '--json'])).stdout), []);
    const dup = await orch(home, ['relay', 'add', 'r1', '--url', 'wss://relay.example:7443/v1/relay', '--pin', pin(1)]);
    assert.equal(dup.code, 0);
    const again = await orch(home, ['relay', 'add', 'r1', '--url', 'wss://relay.example:7443/v1/relay', '--pin', pin(1), '--json']);
    assert.equal(JSON.parse(again.stdout).error.code, 'relay_exists');
  });

  test('checkRelayUrl and checkRelayPin normalise what they accept', () => {
    assert.equal(checkRelayUrl('wss://Relay.Example:7443/v1/relay'), 'wss://relay.example:7443/v1/relay');
    assert.equal(checkRelayUrl('wss://[::1]:7443/v1/relay'), 'wss://[::1]:7443/v1/relay');
    assert.equal(checkRelayPin(pin(9)), pin(9));
    assert.throws(() => checkRelayPin(`${pin(9)}x`), (err) => err instanceof OrchError && err.code === 'bad_input');
  });

  test('upsert (the local relay of orch up) reports whether anything changed', () => {
    const home = freshHome();
    const relays = RelayRegistry.open(home);
    try {
      assert.equal(relays.upsert({ name: 'local', url: 'wss://127.0.0.1:7443/v1/relay', pin: pin(3) }).change, 'added');
      assert.equal(relays.upsert({ name: 'local', url: 'wss://127.0.0.1:7443/v1/relay', pin: pin(3) }).change, 'none');
      assert.equal(relays.upsert({ name: 'local', url: 'wss://127.0.0.1:7444/v1/relay', pin: pin(3) }).change, 'updated');
      assert.equal(relays.get('local')?.url, 'wss://127.0.0.1:7444/v1/relay');
    } finally {
      relays.close();
    }
  });
});

describe('orch agent add --relay: every agent through one named relay', () => {
  test('defaults: --relay, else ORCH_RELAY, else "local" when configured or when nothing is, else the only relay; more than one needs --relay', async () => {
    const home = freshHome();
    const none = await orch(home, addAgentArgs('a0'));
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stderr, /no relay is configured yet.*"local"/);
    await orch(home, ['relay', 'add', 'eu-1', '--url', 'wss://eu.example:7443/v1/relay', '--pin', pin(1)]);
    const relayOf = async (name: string) => (JSON.parse((await orch(home, ['agent', 'list', '--json'])).stdout) as Array<{ name: string; relay: string }>).find((a) => a.name === name)?.relay;
    assert.equal((await orch(home, addAgentArgs('a1'))).code, 0);
    assert.equal(await relayOf('a1'), 'eu-1', 'the only relay');
    await orch(home, ['relay', 'add', 'us-1', '--url', 'wss://us.example:7443/v1/relay', '--pin', pin(2)]);
    const ambiguous = await orch(home, [...addAgentArgs('a2'), '--json']);
    assert.equal(ambiguous.code, 1);
    assert.equal(JSON.parse(ambiguous.stdout).error.code, 'unknown_relay');
    assert.match(ambiguous.stderr, /more than one relay is configured \(eu-1, us-1\).*--relay/);
    assert.equal((await orch(home, addAgentArgs('a2'), { ORCH_RELAY: 'us-1' })).code, 0);
    assert.equal(await relayOf('a2'), 'us-1', 'ORCH_RELAY');
    assert.equal((await orch(home, [...addAgentArgs('a3'), '--relay', 'eu-1'], { ORCH_RELAY: 'us-1' })).code, 0);
    assert.equal(await relayOf('a3'), 'eu-1', '--relay wins over ORCH_RELAY');
    const unknown = await orch(home, [...addAgentArgs('a4'), '--relay', 'mars', '--json']);
    assert.equal(JSON.parse(unknown.stdout).error.code, 'unknown_relay');
    assert.equal((await orch(home, [...addAgentArgs('a4'), '--relay', 'wss://eu.example:7443/v1/relay'])).code, 2, 'a URL where a name goes: usage');
    await orch(home, ['relay', 'add', 'local', '--url', 'wss://127.0.0.1:7443/v1/relay', '--pin', pin(3)]);
    assert.equal((await orch(home, addAgentArgs('a5'))).code, 0);
    assert.equal(await relayOf('a5'), 'local', '"local" once configured');

    const byRelay = await orch(home, ['agent', 'list', '--relay', 'eu-1', '--json']);
    assert.deepEqual((JSON.parse(byRelay.stdout) as Array<{ name: string }>).map((a) => a.name), ['a1', 'a3']);
    const retired = await orch(home, ['agent', 'list'], { ORCH_RELAY_URL: 'wss://old.example/v1/relay' });
    assert.match(retired.stderr, /ORCH_RELAY_URL is no longer read/);
    assert.match(retired.stdout, /^a1\s+standard\s+offline \(never seen\)\s+eu-1\s+-\s+-\s+-\s+SHA256:/m);
  });
});

describe('routing: each agent through its own relay', () => {
  const desktop = { sign: ed25519KeyPair(), box: x25519KeyPair() };

  class FakeLink implements RelayLink {
    readonly sent: Buffer[] = [];
    constructor(public connected: boolean) {}
    async send(wire: Buffer): Promise<void> {
      if (!this.connected) throw new Error('not connected');
      this.sent.push(wire);
    }
  }

  test('envelopes go to the agent relay; a relay that is down fails only its agents, retryable, naming the relay', async () => {
    const home = freshHome();
    const registry = AgentRegistry.open(home);
    const state = RelayState.open(home);
    const keys = { a: newAgentKeys(), b: newAgentKeys(), c: newAgentKeys() };
    registry.add({ name: 'on-a', signKeyHex: hex(keys.a.sign.publicKey), boxKeyHex: hex(keys.a.box.publicKey), tier: 'standard', relay: 'edge-a' });
    registry.add({ name: 'on-b', signKeyHex: hex(keys.b.sign.publicKey), boxKeyHex: hex(keys.b.box.publicKey), tier: 'standard', relay: 'edge-b' });
    registry.add({ name: 'nowhere', signKeyHex: hex(keys.c.sign.publicKey), boxKeyHex: hex(keys.c.box.publicKey), tier: 'standard', relay: 'gone' });
    const links: Record<string, FakeLink> = { 'edge-a': new FakeLink(true), 'edge-b': new FakeLink(false) };
    const router: RelayRouter = {
      linkFor: async (name) => links[name],
      failureOf: (name) => (name === 'edge-b' ? { code: 'pin_mismatch', message: 'the certificate does not have the pinned key' } : undefined),
    };
    const transport = new RelayCommandTransport({ identity: desktop, registry, state, router, resultGraceMs: 50 });
    try {
      // A ping to on-a is sealed to on-a and handed to edge-a's link only.
      assert.equal(await transport.ping('on-a', 50), undefined, 'nobody answers the fake link');
      assert.equal(links['edge-a']!.sent.length, 1);
      const header = parseHeaderUnverified(links['edge-a']!.sent[0]!);
      assert.ok(header.ok);
      assert.equal(header.header.to, hex(keys.a.sign.publicKey));

      const request = (agent: string) => ({ tenant: 't', agent, argv: ['uptime'], timeoutSeconds: 1, commandId: `wf/run/${agent}` });
      const down = await transport.run(request('on-b')).then(
        () => assert.fail('edge-b is down'),
        (err: unknown) => err as { type?: string; nonRetryable?: boolean; message: string },
      );
      assert.equal(down.type, 'relay_unavailable');
      assert.equal(down.nonRetryable, false);
      assert.match(down.message, /relay "edge-b" \(pin_mismatch: .*\).*agent "on-b"/);
      assert.equal(links['edge-b']!.sent.length, 0);

      const unconfigured = await transport.run(request('nowhere')).then(
        () => assert.fail('relay "gone" is not configured'),
        (err: unknown) => err as { type?: string; message: string },
      );
      assert.equal(unconfigured.type, 'relay_unavailable');
      assert.match(unconfigured.message, /relay "gone", which is not configured/);

      // on-a still works while edge-b is down: its command goes out (and, with nobody answering, times out retryably).
      const noAnswer = await transport.run(request('on-a')).then(
        () => assert.fail('nobody answers'),
        (err: unknown) => err as { type?: string },
      );
      assert.equal(noAnswer.type, 'agent_no_answer');
      assert.equal(links['edge-a']!.sent.length, 2);
    } finally {
      transport.close();
      registry.close();
      state.close();
    }
  });

  test('an agents.sqlite from before named relays: agents read as enrolled through "local", and gain the new columns', () => {
    const home = freshHome();
    const keys = newAgentKeys();
    // The schema of the first release, with one agent in it.
    const db = new Database(path.join(home, 'agents.sqlite'));
    db.exec('CREATE TABLE agents (name TEXT PRIMARY KEY, sign_key TEXT NOT NULL UNIQUE, box_key TEXT NOT NULL, tier TEXT NOT NULL, allowlist TEXT, added_at TEXT NOT NULL, last_seen TEXT)');
    db.prepare('INSERT INTO agents VALUES (?, ?, ?, ?, NULL, ?, NULL)').run('old-1', hex(keys.sign.publicKey), hex(keys.box.publicKey), 'standard', new Date().toISOString());
    db.close();
    const registry = AgentRegistry.open(home);
    try {
      const old = registry.get('old-1');
      assert.equal(old?.relay, 'local');
      assert.equal(old?.pong, null);
      registry.recordPong(hex(keys.sign.publicKey), { agentVersion: '0.1.0', tier: 'standard', commandsRun: 7, commandsRefused: 2 });
      assert.deepEqual(
        (({ agentVersion, tier, commandsRun, commandsRefused }) => ({ agentVersion, tier, commandsRun, commandsRefused }))(registry.get('old-1')!.pong!),
        { agentVersion: '0.1.0', tier: 'standard', commandsRun: 7, commandsRefused: 2 },
      );
      assert.ok(registry.get('old-1')?.lastSeen, 'a pong is being heard from');
    } finally {
      registry.close();
    }
    const relays = RelayRegistry.open(home);
    try {
      assert.equal(relays.agentCounts().get('local'), 1);
    } finally {
      relays.close();
    }
  });
});
