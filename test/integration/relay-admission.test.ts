/**
 * The relay facing the internet (protocol/RELAY.md "Admission", "Join permits", "Limits"): the relay as its own
 * process (bin/orch-relay.mjs) over real TLS sockets on loopback, real RelayClients, and raw WebSocket peers that
 * speak the frames by hand. Different source addresses in 127.0.0.0/8 stand for different hosts.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import type { RawPeer } from '../support/raw-relay-peer';
import {
  ROOT,
  errorCode,
  httpGet,
  metric,
  metrics,
  msgIdOf,
  party,
  relaySuite,
  seal,
  sleep,
  startRelayProcess as startRelay,
  stopRelayProcess,
  until,
  type Party,
  type Peer,
  type RelayProc,
} from '../support/relay-suite';
import { HEADER_FIXED_BYTES, ENVELOPE_OVERHEAD_BYTES, MAX_ENVELOPE_BYTES } from '../../protocol/envelope';
import { randomBytes } from '../../protocol/primitives';
import { RelayClientError } from '../../protocol/relay-client';
import { answerChallengeWithPermit, derivePermitSecret, permitHash, pinToRelayId } from '../../protocol/relay-handshake';

// ------------------------------------------------------------------------------------------ relay processes

const relays: RelayProc[] = [];

async function startRelayProcess(args: string[], dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-relay-adm-')), port?: number): Promise<RelayProc> {
  const proc = await startRelay(args, { dataDir, ...(port === undefined ? {} : { port }) });
  relays.push(proc);
  return proc;
}

function runRelayCli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [path.join(ROOT, 'bin/orch-relay.mjs'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    c.stderr!.on('data', (d) => (out += d));
    c.on('exit', (code) => resolve({ code, out }));
  });
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

// ---------------------------------------------------------------------------------------------- peers

const suite = relaySuite();
const { rawPeer, rawLogin } = suite;
const makePeer = (relay: RelayProc, p?: Party, extra: { joinPermitSecret?: Buffer } = {}): Peer => suite.makePeer(relay, p, { reconnect: { minMs: 100, maxMs: 400 }, ...extra });

async function connectedPeer(relay: RelayProc, p?: Party, extra?: { joinPermitSecret?: Buffer }): Promise<Peer> {
  const peer = makePeer(relay, p, extra);
  await peer.client.start();
  return peer;
}

/** A join secret as `orch agent invite` would make it, and what the relay sees of it. */
function newPermit(): { secret: Buffer; hash: Buffer } {
  const secret = derivePermitSecret(randomBytes(32));
  return { secret, hash: permitHash(secret) };
}

afterAll(async () => {
  await suite.closeAll();
  for (const r of relays) await stopRelayProcess(r, 'SIGKILL');
});

// ------------------------------------------------------------------------------------------------ suites

describe('admission (default: only keys the operator allows)', () => {
  const desktop = party();
  let relay: RelayProc;

  beforeAll(async () => {
    relay = await startRelayProcess(['--admin-key', desktop.hex, '--idle-timeout-seconds', '1.5', '--auth-timeout-ms', '2000']);
  });

  test('without --admin-key or --open the relay refuses to start and says what to do', async () => {
    const r = await runRelayCli(['start', '--port', '0', '--data-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'orch-relay-noadmin-'))]);
    assert.equal(r.code, 2);
    assert.match(r.out, /no admin key.*--admin-key HEX.*--open/s);
    const bad = await runRelayCli(['start', '--port', '0', '--admin-key', 'zz', '--data-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'orch-relay-badadmin-'))]);
    assert.equal(bad.code, 2);
    assert.match(bad.out, /--admin-key/);
    const help = await runRelayCli(['--help']);
    assert.equal(help.code, 0);
    for (const flag of ['--admin-key', '--open', '--metrics-listen', '--max-connections-per-ip', '--ip-login-rate', '--idle-timeout-seconds', '--max-buffered-bytes', '--queue-max-total-count', '--max-seen-keys']) {
      assert.ok(help.out.includes(flag), `--help mentions ${flag}`);
    }
  });

  test('/metrics and /healthz are on the loopback metrics listener (Prometheus text), not on the public port', async () => {
    assert.match(relay.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    const h = await httpGet(`${relay.metricsUrl}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(JSON.parse(h.body).status, 'ok');
    const m = await httpGet(`${relay.metricsUrl}/metrics`);
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(m.body, /^# TYPE orch_relay_admin_keys gauge$/m);
    assert.match(m.body, /^orch_relay_admin_keys 1$/m);
    assert.match(m.body, /^orch_relay_open_mode 0$/m);
    for (const p of ['/metrics', '/healthz']) {
      const status = await new Promise<number>((resolve, reject) =>
        https.get({ host: '127.0.0.1', port: relay.port, path: p, ca: relay.certPem }, (res) => resolve(res.statusCode ?? 0)).on('error', reject),
      );
      assert.equal(status, 404, `${p} on the public port`);
    }
  });

  test('before the login a socket may not send more than 1 KiB in one message (1009); after it, a whole frame', async () => {
    const early = rawPeer(relay);
    await early.challenge;
    early.ws.send(Buffer.alloc(64 * 1024, 0x02));
    assert.equal((await early.closed).code, 1009);
    const admin = await rawLogin(relay, desktop);
    await admin.next('authOk');
    admin.ws.send(Buffer.concat([Buffer.from([0x04]), randomBytes(200 * 1024)]));
    assert.equal(errorCode(await admin.next('error')), 'malformed_envelope');
    assert.equal(admin.ws.readyState, WebSocket.OPEN);
    admin.ws.close();
  });

  test('an unknown key is refused with not_admitted (close 4006), counted; a RelayClient keeps retrying and gets in once allowed', async () => {
    const before = await metric(relay, 'orch_relay_auth_failures_total{reason="not_admitted"}');
    const stranger = party();
    const raw = await rawLogin(relay, stranger);
    assert.equal(errorCode(await raw.next('error')), 'not_admitted');
    assert.equal((await raw.closed).code, 4006);
    assert.equal((await metric(relay, 'orch_relay_auth_failures_total{reason="not_admitted"}')) - before, 1);

    const agent = makePeer(relay, stranger);
    let started = false;
    void agent.client.start().then(() => (started = true));
    await until('not_admitted logged by the client', () => agent.logs.some((l) => l.event === 'relay_not_admitted'));
    assert.equal(started, false);
    const admin = await connectedPeer(relay, desktop);
    assert.equal(await admin.client.allow([stranger.sign.publicKey]), 1);
    await until('the agent got in after being allowed', () => started, 5000);
    assert.equal(await admin.client.allow([stranger.sign.publicKey]), 0, 'allowing twice changes nothing');

    await admin.client.send(seal(desktop, stranger, 'hello agent'));
    await until('delivered', () => agent.inbox.length === 1);
    await agent.client.send(seal(stranger, desktop, 'hello desktop'));
    await until('delivered back', () => admin.inbox.length === 1);

    const file = path.join(relay.dataDir, 'allowed-keys.json');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.ok(fs.readFileSync(file, 'utf8').includes(stranger.hex));
    await agent.client.close();
    await admin.client.close();
  });

  test('ALLOW, DENY and PERMIT from a key that is not an admin are refused (not_admin), counted, and change nothing', async () => {
    const admin = await connectedPeer(relay, desktop);
    const agentParty = party();
    await admin.client.allow([agentParty.sign.publicKey]);
    const agent = await connectedPeer(relay, agentParty);
    const before = await metric(relay, 'orch_relay_admin_refused_total{reason="not_admin"}');
    const friend = party();
    await assert.rejects(agent.client.allow([friend.sign.publicKey]), (e: unknown) => e instanceof RelayClientError && e.code === 'admin_refused' && e.relayCode === 'not_admin');
    await assert.rejects(agent.client.deny([agentParty.sign.publicKey]), (e: unknown) => e instanceof RelayClientError && e.relayCode === 'not_admin');
    await assert.rejects(agent.client.registerPermit(newPermit().hash, Date.now() + 60_000), (e: unknown) => e instanceof RelayClientError && e.relayCode === 'not_admin');
    assert.equal((await metric(relay, 'orch_relay_admin_refused_total{reason="not_admin"}')) - before, 3);
    const raw = await rawLogin(relay, friend);
    assert.equal(errorCode(await raw.next('error')), 'not_admitted');
    assert.equal(agent.client.connected, true, 'the refusal keeps the connection');
    await agent.client.close();
    await admin.client.close();
  });

  test('DENY logs the key out (not_admitted) and keeps it out; the allowlist survives a restart', async () => {
    const admin = await connectedPeer(relay, desktop);
    const gone = party();
    const kept = party();
    await admin.client.allow([gone.sign.publicKey, kept.sign.publicKey]);
    const raw = await rawLogin(relay, gone);
    await raw.next('authOk');
    assert.equal(await admin.client.deny([gone.sign.publicKey]), 1);
    assert.equal(errorCode(await raw.next('error')), 'not_admitted');
    assert.equal((await raw.closed).code, 4006);
    assert.equal(errorCode(await (await rawLogin(relay, gone)).next('error')), 'not_admitted');
    await admin.client.close();

    await stopRelayProcess(relay);
    relay = await startRelayProcess(relay.args, relay.dataDir, relay.port);
    const back = await rawLogin(relay, kept);
    await back.next('authOk');
    back.ws.close();
    assert.equal(errorCode(await (await rawLogin(relay, gone)).next('error')), 'not_admitted');
  });

  test('idle timeout: a logged-in socket that answers no ping is closed (idle_timeout, 4008); one that answers stays', async () => {
    const admin = await connectedPeer(relay, desktop);
    const mute = party();
    const chatty = party();
    await admin.client.allow([mute.sign.publicKey, chatty.sign.publicKey]);
    const before = await metric(relay, 'orch_relay_closed_total{reason="idle_timeout"}');
    const silent = await rawLogin(relay, mute, { autoPong: false });
    await silent.next('authOk');
    const alive = await rawLogin(relay, chatty);
    await alive.next('authOk');
    const t0 = Date.now();
    const closed = await silent.closed;
    assert.equal(closed.code, 4008);
    assert.ok(Date.now() - t0 < 1500 + 1500, `closed after ${Date.now() - t0} ms`);
    assert.equal((await metric(relay, 'orch_relay_closed_total{reason="idle_timeout"}')) - before, 1);
    await sleep(1000);
    assert.equal(alive.ws.readyState, WebSocket.OPEN, 'a client that answers pings is not idle');
    alive.ws.close();
    await admin.client.close();
  });
});

describe('join permits', () => {
  const desktop = party();
  let relay: RelayProc;
  let admin: Peer;
  let agent: Peer;

  beforeAll(async () => {
    relay = await startRelayProcess(['--admin-key', desktop.hex]);
    admin = await connectedPeer(relay, desktop);
    const agentParty = party();
    await admin.client.allow([agentParty.sign.publicKey]);
    agent = await connectedPeer(relay, agentParty);
  });

  test('a permit lets one unknown key in, to reach only its admin and only a few times; ALLOW makes it a normal key', async () => {
    const permit = newPermit();
    await admin.client.registerPermit(permit.hash, Date.now() + 60_000);
    const joiner = await connectedPeer(relay, party(), { joinPermitSecret: permit.secret });
    assert.equal(await metric(relay, 'orch_relay_join_sessions'), 1);

    const toAdmin = seal(joiner.p, desktop, 'join request');
    await joiner.client.send(toAdmin);
    await until('join request delivered to the admin', () => admin.inbox.some((w) => msgIdOf(w) === msgIdOf(toAdmin)));

    const toAgent = seal(joiner.p, agent.p, 'not for you');
    await joiner.client.send(toAgent);
    await until('join_restricted', () => joiner.errors.some((e) => e.code === 'join_restricted' && e.ref === msgIdOf(toAgent)));
    for (let i = 0; i < 3; i++) await joiner.client.send(seal(joiner.p, desktop, `more ${i}`));
    const fifth = seal(joiner.p, desktop, 'one too many');
    await joiner.client.send(fifth);
    await until('over the budget', () => joiner.errors.some((e) => e.code === 'join_restricted' && e.ref === msgIdOf(fifth)));
    assert.equal(agent.inbox.length, 0);

    // The admin's answer reaches the joiner, and once allowed the joiner is an ordinary key on the same connection.
    await admin.client.send(seal(desktop, joiner.p, 'welcome'));
    await until('answer delivered', () => joiner.inbox.length === 1);
    await admin.client.allow([joiner.p.sign.publicKey]);
    assert.equal(await metric(relay, 'orch_relay_join_sessions'), 0);
    await joiner.client.send(seal(joiner.p, agent.p, 'now allowed'));
    await until('delivered to the agent', () => agent.inbox.length === 1);
    assert.equal(joiner.client.connected, true);
  });

  test('a permit is single-use: a second key with the same secret is refused (permit_reused), counted', async () => {
    const permit = newPermit();
    await admin.client.registerPermit(permit.hash, Date.now() + 60_000);
    const first = await rawLogin(relay, party(), { permitSecret: permit.secret });
    await first.next('authOk');
    const before = await metric(relay, 'orch_relay_permit_refused_total{reason="permit_reused"}');
    const second = await rawLogin(relay, party(), { permitSecret: permit.secret });
    assert.equal(errorCode(await second.next('error')), 'permit_refused');
    assert.equal((await second.closed).code, 4007);
    assert.equal((await metric(relay, 'orch_relay_permit_refused_total{reason="permit_reused"}')) - before, 1);
    const client = makePeer(relay, party(), { joinPermitSecret: permit.secret });
    await assert.rejects(client.client.start(), (e: unknown) => e instanceof RelayClientError && e.code === 'permit_refused');
    first.ws.close();
  });

  test('expired and forged permits are refused and counted; a bad signature over a good permit does not spend it', async () => {
    const short = newPermit();
    await admin.client.registerPermit(short.hash, Date.now() + 300);
    await sleep(600);
    const m0 = await metrics(relay);
    const late = await rawLogin(relay, party(), { permitSecret: short.secret });
    assert.equal(errorCode(await late.next('error')), 'permit_refused');
    const forged = await rawLogin(relay, party(), { permitSecret: randomBytes(32) });
    assert.equal(errorCode(await forged.next('error')), 'permit_refused');
    const m1 = await metrics(relay);
    const delta = (k: string) => (m1.get(k) ?? 0) - (m0.get(k) ?? 0);
    assert.equal(delta('orch_relay_permit_refused_total{reason="permit_expired"}'), 1);
    assert.equal(delta('orch_relay_permit_refused_total{reason="permit_unknown"}'), 1);

    // The secret swapped after signing: the signature covers it, so the login fails and the permit stays unused.
    const good = newPermit();
    await admin.client.registerPermit(good.hash, Date.now() + 60_000);
    const raw = rawPeer(relay);
    const thief = party();
    const frame = answerChallengeWithPermit({ challenge: await raw.challenge, relayId: pinToRelayId(relay.pin), identity: thief.sign, clientTime: Date.now(), permitSecret: randomBytes(32) });
    good.secret.copy(frame, frame.length - 32);
    raw.ws.send(frame);
    assert.equal(errorCode(await raw.next('error')), 'auth_failed');
    const ok = await rawLogin(relay, party(), { permitSecret: good.secret });
    await ok.next('authOk');
    ok.ws.close();

    // A permit's expiry must be in the future and at most 7 days ahead.
    await assert.rejects(admin.client.registerPermit(newPermit().hash, Date.now() - 1), (e: unknown) => e instanceof RelayClientError && e.relayCode === 'permit_invalid');
    await assert.rejects(admin.client.registerPermit(newPermit().hash, Date.now() + 8 * 24 * 3600_000), (e: unknown) => e instanceof RelayClientError && e.relayCode === 'permit_invalid');
  });
});

describe('open mode: any key, within per-IP limits', () => {
  const desktop = party();
  let relay: RelayProc;

  beforeAll(async () => {
    relay = await startRelayProcess(['--open', '--admin-key', desktop.hex, '--max-connections-per-ip', '5', '--ip-login-rate', '0.5', '--ip-login-burst', '3']);
  });

  test('any key logs in; the sixth socket from one address is refused (too_many_connections, 1013), other addresses are not', async () => {
    // The warning follows the start line on another stream: wait for it rather than race it.
    for (let i = 0; i < 100 && !/"event":"admission_open"/.test(relay.output()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(relay.output(), /"event":"admission_open"/);
    const open = await Promise.all(Array.from({ length: 5 }, () => rawPeer(relay, { localAddress: '127.0.0.2' })));
    await Promise.all(open.map((r) => r.challenge));
    const sixth = rawPeer(relay, { localAddress: '127.0.0.2' });
    assert.equal(errorCode(await sixth.next('error')), 'too_many_connections');
    assert.equal((await sixth.closed).code, 1013);
    const elsewhere = rawPeer(relay, { localAddress: '127.0.0.3' });
    await elsewhere.challenge;
    assert.ok((await metric(relay, 'orch_relay_dropped_total{reason="too_many_connections_from_ip"}')) >= 1);
    // The admin's own key does not count against its address.
    const admin = await rawLogin(relay, desktop, { localAddress: '127.0.0.3' });
    await admin.next('authOk');
    for (const r of [...open, elsewhere, admin]) r.ws.close();
  });

  test('logins by keys that are not admitted are rate-limited per address (login_rate_limited, 1013); admitted keys are not', async () => {
    const ok: RawPeer[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await rawLogin(relay, party(), { localAddress: '127.0.0.4' });
      await r.next('authOk');
      ok.push(r);
    }
    const limited = await rawLogin(relay, party(), { localAddress: '127.0.0.4' });
    assert.equal(errorCode(await limited.next('error')), 'login_rate_limited');
    assert.equal((await limited.closed).code, 1013);
    const admin = await rawLogin(relay, desktop, { localAddress: '127.0.0.4' });
    await admin.next('authOk');
    const other = await rawLogin(relay, party(), { localAddress: '127.0.0.5' });
    await other.next('authOk');
    assert.ok((await metric(relay, 'orch_relay_auth_failures_total{reason="login_rate_limited"}')) >= 1);
    for (const r of [...ok, admin, other]) r.ws.close();
  });
});

describe('1,000 fresh keys in open mode', () => {
  const desktop = party();
  const agent = party();
  const passerby = party();
  let relay: RelayProc;

  beforeAll(async () => {
    relay = await startRelayProcess(['--open', '--admin-key', desktop.hex, '--max-seen-keys', '100', '--ip-login-rate', '100000', '--ip-login-burst', '100000', '--max-connections-per-ip', '1000']);
  });

  test('do not evict admitted keys from the seen-keys table: the offline agent still gets queued envelopes', async () => {
    const admin = await connectedPeer(relay, desktop);
    await admin.client.allow([agent.sign.publicKey]);
    for (const p of [agent, passerby]) {
      const r = await rawLogin(relay, p);
      await r.next('authOk');
      r.ws.close();
      await r.closed;
    }
    const t0 = Date.now();
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          const r = await rawLogin(relay, party());
          await r.next('authOk', 20_000);
          r.ws.close();
          await r.closed;
        }),
      );
    }
    const elapsed = Date.now() - t0;
    assert.equal(await metric(relay, 'orch_relay_auth_ok_total') >= 1002, true);
    assert.ok((await metric(relay, 'orch_relay_seen_keys')) <= 100 + 2, 'the table stays bounded');

    const toAgent = seal(desktop, agent, 'still known');
    await admin.client.send(toAgent);
    const toPasserby = seal(desktop, passerby, 'forgotten');
    await admin.client.send(toPasserby);
    await until('passerby evicted', () => admin.errors.some((e) => e.code === 'unknown_recipient' && e.ref === msgIdOf(toPasserby)));
    assert.equal(admin.errors.some((e) => e.ref === msgIdOf(toAgent)), false, 'the agent is not unknown');
    const back = await connectedPeer(relay, agent);
    await until('queued envelope delivered', () => back.inbox.some((w) => msgIdOf(w) === msgIdOf(toAgent)));
    process.stdout.write(`1000 fresh logins in ${elapsed} ms\n`);
  }, 120_000);
});

describe('global memory bounds', () => {
  const desktop = party();
  const MiB = 1024 * 1024;
  let relay: RelayProc;

  beforeAll(async () => {
    relay = await startRelayProcess([
      '--admin-key', desktop.hex,
      '--rate-per-second', '100000', '--rate-burst', '100000',
      '--max-buffered-bytes', String(20 * MiB),
      '--queue-max-bytes', String(8 * MiB), '--queue-max-total-bytes', String(16 * MiB), '--queue-max-total-count', '1000',
    ]);
  });

  test('100 MiB to unread recipients: refused with recipient_backpressure / relay_full / queue_full, RSS stays bounded', async () => {
    const admin = await connectedPeer(relay, desktop);
    const readers = [party(), party(), party(), party()];
    const PER_TARGET = 15;
    const offline = [party(), party(), party()];
    await admin.client.allow([...readers, ...offline].map((p) => p.sign.publicKey));
    // Connected recipients that never read: their TCP windows fill and the relay's socket buffers grow.
    const stuck: RawPeer[] = [];
    for (const p of readers) {
      const r = await rawLogin(relay, p);
      await r.next('authOk');
      (r.ws as unknown as { _socket: net.Socket })._socket.pause();
      stuck.push(r);
    }
    const baseline = rssBytes(relay.child.pid!);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(relay.child.pid!))), 25);

    // One largest envelope per recipient, sent again and again (the relay does not look at msgIds).
    const bodyBytes = MAX_ENVELOPE_BYTES - HEADER_FIXED_BYTES - 'ping'.length - ENVELOPE_OVERHEAD_BYTES;
    const targets = [...readers, ...offline];
    const wires = targets.map((p) => seal(desktop, p, randomBytes(bodyBytes)));
    const raw = await rawLogin(relay, party()); // not admitted: refused, just to keep it honest
    assert.equal(errorCode(await raw.next('error')), 'not_admitted');
    const sender = admin.client;
    // Recipient by recipient, 15 MiB each (105 MiB in all): the first unread ones reach their own 8 MiB bound, the
    // next ones the relay-wide one; the offline ones their queue's bound, then the relay-wide queue bound.
    let sent = 0;
    for (const w of wires) {
      for (let k = 0; k < PER_TARGET; k++) {
        await sender.send(w);
        sent += w.length;
        if (k % 4 === 3) await sleep(5); // let the relay answer; a sender that never reads would be cut off
      }
    }
    const total = wires.length * PER_TARGET;
    await until('all answered', async () => (await metric(relay, 'orch_relay_forwarded_total')) + (await metric(relay, 'orch_relay_queued_total')) + admin.errors.length >= total, 30_000);
    clearInterval(sampler);
    const m = await metrics(relay);
    const codes = new Set(admin.errors.map((e) => e.code));
    assert.ok(codes.has('recipient_backpressure'), `codes: ${[...codes].join(',')}`);
    assert.ok(codes.has('relay_full'), `codes: ${[...codes].join(',')}`);
    assert.ok(codes.has('queue_full'), `codes: ${[...codes].join(',')}`);
    assert.ok((m.get('orch_relay_buffered_bytes') ?? 0) <= 20 * MiB + MAX_ENVELOPE_BYTES + 1);
    assert.ok((m.get('orch_relay_queued_bytes') ?? 0) <= 16 * MiB);
    const growth = peak - baseline;
    process.stdout.write(`relay RSS baseline ${(baseline / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB (+${(growth / MiB).toFixed(1)} MiB) for ${(sent / MiB).toFixed(0)} MiB sent; buffered ${m.get('orch_relay_buffered_bytes')}, queued ${m.get('orch_relay_queued_bytes')}\n`);
    // Bound: 20 MiB buffered + 16 MiB queued + a message being received + garbage awaiting collection.
    assert.ok(growth < 160 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
    // The relay still serves: a fresh admitted pair exchanges an envelope.
    const a = party();
    const b = party();
    await admin.client.allow([a.sign.publicKey, b.sign.publicKey]);
    const pa = await connectedPeer(relay, a);
    const pb = await connectedPeer(relay, b);
    await pa.client.send(seal(a, b, 'still working'));
    await until('delivered', () => pb.inbox.length === 1);
    for (const r of stuck) r.ws.terminate();
  }, 120_000);

  test('a client that sends garbage and never reads the ERROR frames is cut off (not_reading), not buffered for', async () => {
    const p = party();
    const admin = await connectedPeer(relay, desktop);
    await admin.client.allow([p.sign.publicKey]);
    const r = await rawLogin(relay, p);
    await r.next('authOk');
    (r.ws as unknown as { _socket: net.Socket })._socket.pause();
    const before = await metric(relay, 'orch_relay_closed_total{reason="not_reading"}');
    const junk = Buffer.from([0x7f]);
    for (let i = 0; i < 2_000_000 && r.ws.readyState === WebSocket.OPEN; i++) {
      r.ws.send(junk);
      if (i % 10_000 === 0) await sleep(1);
    }
    await until('cut off', async () => (await metric(relay, 'orch_relay_closed_total{reason="not_reading"}')) - before === 1, 20_000);
    assert.ok((await metric(relay, 'orch_relay_buffered_bytes')) < 20 * 1024 * 1024);
    r.ws.terminate();
  }, 60_000);

  test('envelopes for a relay-wide full queue are refused with relay_full, never dropped silently', async () => {
    assert.ok((await metric(relay, 'orch_relay_dropped_total{reason="relay_full"}')) >= 1);
    assert.ok((await metric(relay, 'orch_relay_queued')) <= 1000);
  });
});
