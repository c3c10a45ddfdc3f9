/**
 * The relay as its own process (bin/orch-relay.mjs), over real TLS sockets, with real RelayClients and raw
 * WebSocket peers that speak the frames by hand to misbehave. Each test uses fresh keys, so rate buckets and
 * queues never leak between tests.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { rawRelayPeer, type RawPeer } from '../support/raw-relay-peer';
import { MAX_ENVELOPE_BYTES, ENVELOPE_OVERHEAD_BYTES, HEADER_FIXED_BYTES, openEnvelope, ReplayWindow } from '../../protocol/envelope';
import { randomBytes } from '../../protocol/primitives';
import { RelayClientError } from '../../protocol/relay-client';
import { MAX_FRAME_BYTES, answerChallenge, encodeEnvelopeFrame, pinToRelayId } from '../../protocol/relay-handshake';
import { freePort } from '../support/harness';
import {
  ROOT,
  errorCode,
  httpGet as getUrl,
  metrics as relayMetrics,
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

const QUEUE_MAX_COUNT = 3;
const QUEUE_MAX_BYTES = 20_000;
const QUEUE_TTL_MS = 1500;
const RATE = 20;
const AUTH_TIMEOUT_MS = 1500;

// ------------------------------------------------------------------------------------------ the relay process

let dataDir: string;
let port: number;
let relay: RelayProc;
let certPem: string;
/** Everything every relay process of this suite printed, for the no-plaintext check. */
let allOutput = '';

/** The suite's relay, on its port and data folder (a restart keeps both, so its pin). */
function startRelayProcess(): Promise<RelayProc> {
  return startRelay(
    [
      '--rate-per-second', String(RATE), '--rate-burst', String(RATE), '--queue-max-count', String(QUEUE_MAX_COUNT),
      '--queue-max-bytes', String(QUEUE_MAX_BYTES), '--queue-ttl-seconds', String(QUEUE_TTL_MS / 1000), '--auth-timeout-ms', String(AUTH_TIMEOUT_MS),
      // This suite is about login and routing with fresh keys; admission and the per-IP limits have their own suite
      // (relay-admission.test.ts). So: open, with the per-IP limits out of the way.
      '--open', '--max-connections-per-ip', '1000', '--ip-login-rate', '1000', '--ip-login-burst', '1000',
    ],
    { dataDir, port, onOutput: (text) => (allOutput += text) },
  );
}

// ---------------------------------------------------------------------------------------------- helpers

const suite = relaySuite();
/** A RelayClient with an inbox; it fetches the relay's certificate itself and checks only the pin. */
const makePeer = (p: Party = party(), pin = relay.pin): Peer => suite.makePeer(relay, p, { pin, givenCertificate: false });

async function connectedPeer(p?: Party): Promise<Peer> {
  const peer = makePeer(p);
  await peer.client.start();
  return peer;
}

function httpsGet(pathname: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    // Verified against the relay's own certificate (it names 127.0.0.1), like any careful HTTPS client.
    const req = https.get({ host: '127.0.0.1', port, path: pathname, ca: certPem, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

const httpGet = (pathname: string, headers: Record<string, string> = {}) => getUrl(`${relay.metricsUrl}${pathname}`, headers);
const metrics = () => relayMetrics(relay);
const metric = async (name: string) => (await metrics()).get(name) ?? 0;

/** A WebSocket that speaks frames by hand, for the tests that misbehave on purpose. */
const rawPeer = (): RawPeer => rawRelayPeer({ url: relay.url, pin: relay.pin, certPem });

async function rawLogin(p: Party): Promise<RawPeer> {
  const raw = await suite.rawLogin(relay, p);
  await raw.next('authOk');
  return raw;
}

/**
 * Bytes of the relay process's memory, read through /proc/PID/mem (allowed for our own child). Returns whether
 * each needle occurs in any readable mapping.
 */
function searchProcessMemory(pid: number, needles: Buffer[]): boolean[] {
  const found = needles.map(() => false);
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  const chunk = Buffer.alloc(8 * 1024 * 1024);
  const overlap = Math.max(...needles.map((n) => n.length));
  try {
    for (const line of maps) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (r)[w-]/.exec(line);
      if (!m || line.includes('[vvar]') || line.includes('[vsyscall]')) continue;
      const start = parseInt(m[1]!, 16);
      const end = parseInt(m[2]!, 16);
      if (end - start > 1024 * 1024 * 1024) continue;
      for (let pos = start; pos < end; pos += chunk.length - overlap) {
        let n = 0;
        try {
          n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, end - pos), pos);
        } catch {
          break;
        }
        const view = chunk.subarray(0, n);
        needles.forEach((needle, i) => {
          if (!found[i] && view.indexOf(needle) >= 0) found[i] = true;
        });
        if (n < chunk.length) break;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return found;
}

// ------------------------------------------------------------------------------------------------ suite

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-relay-it-'));
  port = await freePort();
  relay = await startRelayProcess();
  certPem = fs.readFileSync(path.join(dataDir, 'relay-cert.pem'), 'utf8');
});

afterAll(async () => {
  await suite.closeAll();
  if (relay) await stopRelayProcess(relay);
});

describe('relay (own process, real TLS)', () => {
  test('the certificate was made on first start: key 0600, pin printed and equal to the served certificate', async () => {
    assert.equal(fs.statSync(path.join(dataDir, 'relay-key.pem')).mode & 0o777, 0o600);
    assert.match(relay.output(), /"event":"certificate_created"/);
    const { spkiPin } = await import('../../protocol/relay-client');
    assert.equal(spkiPin(certPem), relay.pin);
  });

  test('/healthz and /metrics answer on the loopback metrics listener, with no CORS headers for any origin; the public port serves neither', async () => {
    assert.match(relay.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    for (const p of ['/healthz', '/metrics']) assert.equal((await httpsGet(p)).status, 404, `${p} on the public port`);
    const h = await httpGet('/healthz', { Origin: 'https://evil.example' });
    assert.equal(h.status, 200);
    assert.equal(JSON.parse(h.body).status, 'ok');
    assert.equal(h.headers['access-control-allow-origin'], undefined);
    const m = await httpGet('/metrics');
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /^text\/plain/);
    for (const name of ['orch_relay_connections', 'orch_relay_authenticated', 'orch_relay_forwarded_total', 'orch_relay_queued', 'orch_relay_rate_limited_total']) {
      assert.match(m.body, new RegExp(`^${name} \\d+$`, 'm'), name);
    }
    assert.match(m.body, /^orch_relay_dropped_total\{reason="forged_from"\} \d+$/m);
  });

  test('a browser page from another origin cannot open the WebSocket', async () => {
    const ws = new WebSocket(relay.url, { ca: certPem, headers: { Origin: 'https://evil.example' } });
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => {});
    });
    ws.terminate();
    assert.equal(status, 401);
  });

  test('two clients exchange sealed envelopes; the plaintext appears in no relay log and not in its memory', async () => {
    const desktop = await connectedPeer();
    const agent = await connectedPeer();
    const marker = `ORCH-SECRET-${randomBytes(12).toString('hex')}`;
    const before = await metric('orch_relay_forwarded_total');

    await desktop.client.send(seal(desktop.p, agent.p, JSON.stringify({ kind: 'ping', nonce: marker })));
    await agent.waitFor(1);
    const opened = openEnvelope(agent.inbox[0]!, {
      recipientSignPublicKey: agent.p.sign.publicKey,
      recipientBox: agent.p.box,
      senderSignPublicKey: desktop.p.sign.publicKey,
      now: Date.now(),
      window: new ReplayWindow(),
    });
    assert.ok(opened.ok, opened.ok ? '' : opened.reason);
    assert.equal(JSON.parse(opened.body.toString()).nonce, marker);

    await agent.client.send(seal(agent.p, desktop.p, `echo ${marker}`));
    await desktop.waitFor(1);
    const back = openEnvelope(desktop.inbox[0]!, {
      recipientSignPublicKey: desktop.p.sign.publicKey,
      recipientBox: desktop.p.box,
      senderSignPublicKey: agent.p.sign.publicKey,
      now: Date.now(),
      window: new ReplayWindow(),
    });
    assert.ok(back.ok);
    assert.equal(back.body.toString(), `echo ${marker}`);
    assert.equal((await metric('orch_relay_forwarded_total')) - before, 2);

    // A control that the scan can see: an envelope held in an offline queue, whose header `type` is in clear.
    // Its body carries the marker too, sealed.
    const offline = party();
    void (await connectedPeer(offline)).client.close();
    await until('offline peer gone', async () => (await metric('orch_relay_authenticated')) <= 2);
    const control = `ctl.${randomBytes(10).toString('hex')}`;
    await desktop.client.send(seal(desktop.p, offline, `queued ${marker}`, control));
    await until('control queued', async () => (await metric('orch_relay_queued')) >= 1);

    assert.ok(!allOutput.includes(marker), 'the plaintext marker is in the relay output');
    assert.ok(allOutput.length > 0);
    const [controlFound, markerFound] = searchProcessMemory(relay.child.pid!, [Buffer.from(control), Buffer.from(marker)]);
    assert.equal(controlFound, true, 'the memory scan did not find the queued header: the scan itself is broken');
    assert.equal(markerFound, false, 'the plaintext marker is in the relay process memory');
  });

  test('logins with someone else\'s key are refused: bad signature, replayed answer, answer to another challenge', async () => {
    const victim = await connectedPeer();
    const attacker = party();
    const relayId = pinToRelayId(relay.pin);
    const failuresBefore = await metric('orch_relay_auth_failures_total{reason="bad_signature"}');

    // 1. claims the victim's key, signs with its own
    const a = rawPeer();
    const sig = answerChallenge({ challenge: await a.challenge, relayId, identity: attacker.sign, clientTime: Date.now() });
    victim.p.sign.publicKey.copy(sig, 2); // the claimed key, right after type and version
    a.ws.send(sig);
    assert.equal(errorCode(await a.next('error')), 'auth_failed');
    assert.equal((await a.closed).code, 4002);

    // 2. a genuine answer, recorded on one connection and replayed on another
    const genuine = rawPeer();
    const recorded = answerChallenge({ challenge: await genuine.challenge, relayId, identity: victim.p.sign, clientTime: Date.now() });
    genuine.ws.close();
    const replay = rawPeer();
    await replay.challenge;
    replay.ws.send(recorded);
    assert.equal(errorCode(await replay.next('error')), 'auth_failed');
    assert.equal((await replay.closed).code, 4002);

    // 3. two connections at once: the answer to the first one's challenge sent on the second
    const c1 = rawPeer();
    const c2 = rawPeer();
    const [ch1] = await Promise.all([c1.challenge, c2.challenge]);
    c2.ws.send(answerChallenge({ challenge: ch1, relayId, identity: victim.p.sign, clientTime: Date.now() }));
    assert.equal(errorCode(await c2.next('error')), 'auth_failed');
    assert.equal((await c2.closed).code, 4002);
    c1.ws.close();

    assert.equal((await metric('orch_relay_auth_failures_total{reason="bad_signature"}')) - failuresBefore, 3);
    // The victim's own connection was never displaced.
    assert.equal(victim.client.connected, true);
    const friend = await connectedPeer();
    await friend.client.send(seal(friend.p, victim.p, 'still here'));
    await victim.waitFor(1);
  });

  test('anything before the login, or no login in time, closes the connection', async () => {
    const early = rawPeer();
    await early.challenge;
    early.ws.send(encodeEnvelopeFrame(seal(party(), party(), 'x')));
    assert.equal(errorCode(await early.next('error')), 'not_authenticated');
    assert.equal((await early.closed).code, 4004);

    const before = await metric('orch_relay_auth_failures_total{reason="timeout"}');
    const silent = rawPeer();
    await silent.challenge;
    const t0 = Date.now();
    assert.equal((await silent.closed).code, 4001);
    assert.ok(Date.now() - t0 < AUTH_TIMEOUT_MS + 1000);
    assert.equal((await metric('orch_relay_auth_failures_total{reason="timeout"}')) - before, 1);
  });

  test('an envelope whose `from` is not the connection\'s key is refused with its msgId and counted; the connection stays', async () => {
    const mallory = await connectedPeer();
    const alice = party();
    const bob = await connectedPeer();
    const before = await metric('orch_relay_dropped_total{reason="forged_from"}');
    const forged = seal(alice, bob.p, 'pretending to be alice'); // validly signed by alice, sent by mallory
    await mallory.client.send(forged);
    await until('forged_from error', () => mallory.errors.length === 1);
    assert.deepEqual(mallory.errors[0], { code: 'forged_from', ref: msgIdOf(forged) });
    assert.equal((await metric('orch_relay_dropped_total{reason="forged_from"}')) - before, 1);
    await mallory.client.send(seal(mallory.p, bob.p, 'honest'));
    await bob.waitFor(1);
    assert.equal(bob.inbox.length, 1);
    assert.equal(msgIdOf(bob.inbox[0]!) === msgIdOf(forged), false);
  });

  test('offline queue: delivered on connect in order, bounded in count and in bytes; unknown recipients refused', async () => {
    const sender = await connectedPeer();
    const recipient = party();
    void (await connectedPeer(recipient)).client.close(); // logged in once: the relay now queues for it
    await sleep(100);
    const sent: string[] = [];
    for (let i = 0; i < QUEUE_MAX_COUNT; i++) {
      const w = seal(sender.p, recipient, `queued ${i}`);
      sent.push(msgIdOf(w));
      await sender.client.send(w);
    }
    const overflow = seal(sender.p, recipient, 'one too many');
    const fullBefore = await metric('orch_relay_dropped_total{reason="queue_full"}');
    await sender.client.send(overflow);
    await until('queue_full', () => sender.errors.some((e) => e.code === 'queue_full' && e.ref === msgIdOf(overflow)));
    assert.equal((await metric('orch_relay_dropped_total{reason="queue_full"}')) - fullBefore, 1);

    const back = makePeer(recipient);
    await back.client.start();
    await back.waitFor(QUEUE_MAX_COUNT);
    await sleep(100);
    assert.deepEqual(back.inbox.map(msgIdOf), sent);

    // bytes: two envelopes of ~12 kB do not fit in 20 kB
    const big = party();
    void (await connectedPeer(big)).client.close();
    await sleep(100);
    const first = seal(sender.p, big, randomBytes(12_000));
    const second = seal(sender.p, big, randomBytes(12_000));
    await sender.client.send(first);
    await sender.client.send(second);
    await until('queue_full by bytes', () => sender.errors.some((e) => e.code === 'queue_full' && e.ref === msgIdOf(second)));
    assert.equal(sender.errors.some((e) => e.ref === msgIdOf(first)), false);

    // a key that never logged in
    const nobody = party();
    const w = seal(sender.p, nobody, 'to nobody');
    await sender.client.send(w);
    await until('unknown_recipient', () => sender.errors.some((e) => e.code === 'unknown_recipient' && e.ref === msgIdOf(w)));
  });

  test('queued envelopes past their time to live are dropped and counted, never delivered', async () => {
    const sender = await connectedPeer();
    const late = party();
    void (await connectedPeer(late)).client.close();
    await sleep(100);
    // Earlier tests left envelopes queued; they expire too. Start from empty queues so the count below is ours.
    await until('earlier queues expired', async () => (await metric('orch_relay_queued')) === 0, QUEUE_TTL_MS + 3000);
    const before = await metric('orch_relay_dropped_total{reason="ttl_expired"}');
    await sender.client.send(seal(sender.p, late, 'will expire'));
    await until('queued', async () => (await metric('orch_relay_queued')) === 1);
    await until('expired', async () => (await metric('orch_relay_queued')) === 0, QUEUE_TTL_MS + 3000);
    assert.equal((await metric('orch_relay_dropped_total{reason="ttl_expired"}')) - before, 1);
    const back = makePeer(late);
    await back.client.start();
    await sleep(300);
    assert.equal(back.inbox.length, 0);
  });

  test(`rate limit: ${RATE}/s with burst ${RATE} per key; the excess is refused and counted, the connection kept`, async () => {
    const fast = await connectedPeer();
    const sink = await connectedPeer();
    const before = await metric('orch_relay_rate_limited_total');
    const total = RATE * 2;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: total }, (_, i) => fast.client.send(seal(fast.p, sink.p, `n${i}`))));
    const elapsed = Date.now() - t0;
    await until('all answered', () => sink.inbox.length + fast.errors.length >= total);
    await sleep(100);
    const allowedMax = RATE + Math.ceil(((elapsed + 100) * RATE) / 1000);
    assert.ok(sink.inbox.length >= RATE && sink.inbox.length <= allowedMax, `delivered ${sink.inbox.length}, expected ${RATE}..${allowedMax}`);
    assert.equal(fast.errors.length, total - sink.inbox.length);
    assert.ok(fast.errors.every((e) => e.code === 'rate_limited' && typeof e.ref === 'string'));
    assert.equal((await metric('orch_relay_rate_limited_total')) - before, fast.errors.length);
    assert.equal(fast.client.connected, true);
    await sleep(300); // ~6 tokens back
    const n = sink.inbox.length;
    await fast.client.send(seal(fast.p, sink.p, 'after the pause'));
    await sink.waitFor(n + 1);
  });

  test('a frame of 1 MiB + 2 bytes is refused with `oversize`; the largest envelope (1 MiB) passes; the relay keeps serving', async () => {
    const a = party();
    const b = await connectedPeer();
    const raw = await rawLogin(a);
    const before = await metric('orch_relay_dropped_total{reason="oversize"}');
    raw.ws.send(Buffer.concat([encodeEnvelopeFrame(seal(a, b.p, 'x')), Buffer.alloc(MAX_FRAME_BYTES)]).subarray(0, MAX_FRAME_BYTES + 1));
    assert.equal(errorCode(await raw.next('error')), 'oversize');
    assert.equal((await metric('orch_relay_dropped_total{reason="oversize"}')) - before, 1);

    // exactly MAX_ENVELOPE_BYTES on the wire: a frame of MAX_FRAME_BYTES
    const typeLength = 'ping'.length;
    const body = randomBytes(MAX_ENVELOPE_BYTES - HEADER_FIXED_BYTES - typeLength - ENVELOPE_OVERHEAD_BYTES);
    const biggest = seal(a, b.p, body);
    assert.equal(biggest.length, MAX_ENVELOPE_BYTES);
    raw.ws.send(encodeEnvelopeFrame(biggest));
    await b.waitFor(1, 10_000);
    assert.ok(b.inbox[0]!.equals(biggest));

    // far beyond: the ws layer closes that connection (1009), counted too; others carry on
    const huge = await rawLogin(party());
    huge.ws.send(Buffer.alloc(5 * 1024 * 1024, 4));
    assert.equal((await huge.closed).code, 1009);
    await until('oversize counted', async () => (await metric('orch_relay_dropped_total{reason="oversize"}')) - before === 2);
    assert.equal((await httpGet('/healthz')).status, 200);
    raw.ws.close();
  });

  test('malformed frames get their error frame and counter; the connection stays', async () => {
    const a = party();
    const raw = await rawLogin(a);
    const m0 = await metrics();
    raw.ws.send(Buffer.from([0x7f, 1, 2, 3]));
    assert.equal(errorCode(await raw.next('error')), 'unknown_frame_type');
    raw.ws.send(Buffer.concat([Buffer.from([0x04]), randomBytes(200)]));
    assert.equal(errorCode(await raw.next('error')), 'malformed_envelope');
    raw.ws.send('{"event":"hello"}');
    assert.equal(errorCode(await raw.next('error')), 'malformed_frame');
    raw.ws.send(Buffer.alloc(0));
    assert.equal(errorCode(await raw.next('error')), 'malformed_frame');
    const m1 = await metrics();
    const delta = (k: string) => (m1.get(k) ?? 0) - (m0.get(k) ?? 0);
    assert.equal(delta('orch_relay_dropped_total{reason="unknown_frame_type"}'), 1);
    assert.equal(delta('orch_relay_dropped_total{reason="malformed_envelope"}'), 1);
    assert.equal(delta('orch_relay_dropped_total{reason="malformed_frame"}'), 2);
    assert.equal(raw.ws.readyState, WebSocket.OPEN);
    raw.ws.close();
  });

  test('a client with the wrong pin refuses to connect (pin_mismatch, both pins logged); the right pin connects', async () => {
    const wrongPin = `sha256/${randomBytes(32).toString('base64')}`;
    const wrong = makePeer(party(), wrongPin);
    await assert.rejects(wrong.client.start(), (err: unknown) => err instanceof RelayClientError && err.code === 'pin_mismatch');
    const logged = wrong.logs.find((l) => l.event === 'relay_pin_mismatch');
    assert.equal(logged?.expected, wrongPin);
    assert.equal(logged?.seen, relay.pin);
    assert.equal(wrong.client.connected, false);
    await assert.rejects(wrong.client.send(Buffer.alloc(10)), (err: unknown) => err instanceof RelayClientError && err.code === 'relay_unavailable');
    const right = await connectedPeer();
    assert.equal(right.client.connected, true);
  });

  test('a second login with the same key replaces the first, which stops reconnecting', async () => {
    const p = party();
    const first = await connectedPeer(p);
    const before = await metric('orch_relay_replaced_total');
    let firstDisconnected = false;
    first.client.on('disconnected', () => (firstDisconnected = true));
    const second = await connectedPeer(p);
    await until('first replaced', () => firstDisconnected);
    assert.equal((await metric('orch_relay_replaced_total')) - before, 1);
    await sleep(1000); // longer than the reconnect ceiling: the first must not have come back and kicked the second
    assert.equal(first.client.connected, false);
    assert.equal(second.client.connected, true);
  });

  test('the relay restarted: clients reconnect by themselves, same pin, and traffic flows again', async () => {
    const a = await connectedPeer();
    const b = await connectedPeer();
    let reconnects = 0;
    a.client.on('connected', () => reconnects++);
    b.client.on('connected', () => reconnects++);
    assert.equal(await stopRelayProcess(relay, 'SIGKILL'), null);
    await until('both see the relay gone', () => !a.client.connected && !b.client.connected);
    await assert.rejects(a.client.send(seal(a.p, b.p, 'while down')), (err: unknown) => err instanceof RelayClientError && err.code === 'relay_unavailable');
    const oldPin = relay.pin;
    relay = await startRelayProcess();
    assert.equal(relay.pin, oldPin);
    assert.doesNotMatch(relay.output(), /certificate_created/);
    await until('both reconnected', () => reconnects >= 2 && a.client.connected && b.client.connected, 10_000);
    await a.client.send(seal(a.p, b.p, 'after the restart'));
    await b.waitFor(1);
    assert.ok(!allOutput.includes('after the restart'));
  });

  test('an impostor with another certificate on the relay\'s address: a connected client refuses it (pin_mismatch, both pins logged), and comes back to the real relay', async () => {
    const a = await connectedPeer();
    const genuineDir = dataDir;
    assert.equal(await stopRelayProcess(relay, 'SIGKILL'), null);
    await until('client sees the relay gone', () => !a.client.connected);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-relay-impostor-'));
    const impostor = await startRelayProcess();
    try {
      assert.notEqual(impostor.pin, relay.pin);
      await until('pin mismatch logged', () => a.logs.some((l) => l.event === 'relay_pin_mismatch' && l.seen === impostor.pin && l.expected === relay.pin), 8000);
      assert.equal(a.client.connected, false);
      assert.doesNotMatch(impostor.output(), /"event":"authenticated"/);
    } finally {
      await stopRelayProcess(impostor, 'SIGKILL');
      dataDir = genuineDir;
    }
    let reconnected = false;
    a.client.on('connected', () => (reconnected = true));
    relay = await startRelayProcess();
    await until('reconnected to the genuine relay', () => reconnected && a.client.connected, 10_000);
  });

  test('orch-relay exits 2 on bad arguments, 1 when it cannot start, 0 on SIGTERM', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const c = spawn(process.execPath, [path.join(ROOT, 'bin/orch-relay.mjs'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        c.stderr!.on('data', (d) => (err += d));
        c.on('exit', (code) => resolve({ code, err }));
      });
    const bad = await run(['start', '--port', 'eighty']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--port/);
    assert.equal((await run(['start', '--frobnicate'])).code, 2);
    assert.equal((await run(['--help'])).code, 0);
    const busy = await run(['start', '--open', '--port', String(port), '--data-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'orch-relay-busy-'))]);
    assert.equal(busy.code, 1);
    assert.match(busy.err, /in use.*--port/);
    assert.equal(await stopRelayProcess(relay, 'SIGTERM'), 0);
  });
});
