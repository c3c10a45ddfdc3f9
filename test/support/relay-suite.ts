/**
 * What the relay's own suites share (relay.test.ts: login and routing; relay-admission.test.ts: admission, permits
 * and limits): the relay as its own process (bin/orch-relay.mjs) on loopback, parties with fresh keys and sealed
 * envelopes between them, RelayClients with an inbox, raw WebSocket peers that log in by hand, and the relay's
 * /metrics counters. Each suite calls `relaySuite()` once and closes what it opened with `closeAll()`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type WebSocket from 'ws';
import { keyToHex, newMsgId, sealEnvelope } from '../../protocol/envelope';
import { ed25519KeyPair, x25519KeyPair, type BoxKeyPair, type SignKeyPair } from '../../protocol/primitives';
import { RelayClient, type RelayClientOptions } from '../../protocol/relay-client';
import { answerChallenge, answerChallengeWithPermit, pinToRelayId, type Frame } from '../../protocol/relay-handshake';
import { freePort } from './harness';
import { rawRelayPeer, type RawPeer } from './raw-relay-peer';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// ------------------------------------------------------------------------------------------ the relay process

export interface RelayProc {
  child: ChildProcess;
  /** Everything it printed (stdout and stderr). */
  output: () => string;
  url: string;
  pin: string;
  /** http://127.0.0.1:PORT of /healthz and /metrics (the operator's listener, not the public port). */
  metricsUrl: string;
  certPem: string;
  dataDir: string;
  port: number;
  /** The arguments after `start --host 127.0.0.1 --port PORT --data-dir DIR`. */
  args: string[];
}

/**
 * `orch-relay start --host 127.0.0.1 --port PORT --data-dir DIR ...args` (a free port and a fresh folder unless
 * given); resolves once it printed `relay_started`. `onOutput` also gets everything it prints.
 */
export async function startRelayProcess(args: string[], opts: { dataDir?: string; port?: number; onOutput?: (text: string) => void } = {}): Promise<RelayProc> {
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'orch-relay-it-'));
  const port = opts.port ?? (await freePort());
  const full = [path.join(ROOT, 'bin/orch-relay.mjs'), 'start', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, ...args];
  const child = spawn(process.execPath, full, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const onData = (d: Buffer) => {
    out += d.toString();
    opts.onOutput?.(d.toString());
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const started = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay not ready in 20 s:\n${out}`)), 20_000);
    child.stdout!.on('data', () => {
      const line = out.split('\n').find((l) => l.includes('"event":"relay_started"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, string>);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code}:\n${out}`));
    });
  });
  return {
    child,
    output: () => out,
    url: started.url!,
    pin: started.pin!,
    metricsUrl: started.metricsUrl!,
    certPem: fs.readFileSync(path.join(dataDir, 'relay-cert.pem'), 'utf8'),
    dataDir,
    port,
    args,
  };
}

/** Signals the relay (SIGTERM unless told) and resolves with its exit code once it has exited (at once if it had). */
export async function stopRelayProcess(p: RelayProc, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode;
  return new Promise((resolve) => {
    p.child.once('exit', (code) => resolve(code));
    p.child.kill(signal);
  });
}

/** GET on the relay's operator listener (/healthz, /metrics). */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

/** The relay's /metrics, series name (labels included) to value. */
export async function metrics(relay: Pick<RelayProc, 'metricsUrl'>): Promise<Map<string, number>> {
  const { body } = await httpGet(`${relay.metricsUrl}/metrics`);
  const m = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

export const metric = async (relay: Pick<RelayProc, 'metricsUrl'>, name: string) => (await metrics(relay)).get(name) ?? 0;

// ---------------------------------------------------------------------------------------------- parties

export interface Party {
  sign: SignKeyPair;
  box: BoxKeyPair;
  /** The signing public key in hex: the party's address on the relay. */
  hex: string;
}

export const party = (): Party => {
  const sign = ed25519KeyPair();
  return { sign, box: x25519KeyPair(), hex: keyToHex(sign.publicKey) };
};

const counters = new Map<string, bigint>();

/** An envelope from one party to another, under the pair's next counter. */
export function seal(from: Party, to: Party, body: Buffer | string = 'x', type = 'ping'): Buffer {
  const key = `${from.hex}>${to.hex}`;
  const counter = (counters.get(key) ?? 0n) + 1n;
  counters.set(key, counter);
  return sealEnvelope({
    header: { from: from.hex, to: to.hex, msgId: newMsgId(), counter, ts: Date.now(), type },
    body: typeof body === 'string' ? Buffer.from(body) : body,
    senderSign: from.sign,
    recipientBoxPublicKey: to.box.publicKey,
  });
}

export const msgIdOf = (wire: Buffer): string => wire.subarray(65, 81).toString('hex');

export function errorCode(f: Frame): string {
  assert.equal(f.type, 'error');
  return (f as Extract<Frame, { type: 'error' }>).code;
}

// ------------------------------------------------------------------------------------------------ peers

/** A RelayClient with an inbox. */
export interface Peer {
  p: Party;
  client: RelayClient;
  inbox: Buffer[];
  errors: Array<{ code: string; ref?: string }>;
  logs: Array<Record<string, unknown>>;
  /** Resolves once the inbox holds n envelopes. */
  waitFor: (n: number, timeoutMs?: number) => Promise<void>;
}

type RelayAddress = Pick<RelayProc, 'url' | 'pin' | 'certPem'>;
/**
 * What a peer changes of the defaults. `givenCertificate: false`: the client is not handed the relay's certificate
 * (RelayClientOptions.ca) and fetches it, checking only the pin, as a client that meets an impostor does.
 */
type PeerOptions = Partial<Pick<RelayClientOptions, 'pin' | 'joinPermitSecret' | 'reconnect'>> & { givenCertificate?: boolean };
type RawOptions = { localAddress?: string; autoPong?: boolean };

/** The peers of one suite, so that `closeAll()` can close every one of them. */
export function relaySuite() {
  const peers: Peer[] = [];
  const rawSockets: WebSocket[] = [];

  function makePeer(relay: RelayAddress, p: Party = party(), { givenCertificate = true, ...opts }: PeerOptions = {}): Peer {
    const inbox: Buffer[] = [];
    const errors: Array<{ code: string; ref?: string }> = [];
    const logs: Array<Record<string, unknown>> = [];
    const client = new RelayClient({
      url: relay.url,
      pin: relay.pin,
      identity: p.sign,
      ...(givenCertificate ? { ca: relay.certPem } : {}),
      onEnvelope: (wire) => inbox.push(Buffer.from(wire)),
      onRelayError: (e) => errors.push(e),
      log: (e) => logs.push(e),
      reconnect: { minMs: 100, maxMs: 800 },
      ...opts,
    });
    const peer: Peer = {
      p,
      client,
      inbox,
      errors,
      logs,
      waitFor: async (n, timeoutMs = 5000) => until(`${n} envelopes (have ${inbox.length})`, () => inbox.length >= n, timeoutMs),
    };
    peers.push(peer);
    return peer;
  }

  async function connectedPeer(relay: RelayAddress, p?: Party, opts?: PeerOptions): Promise<Peer> {
    const peer = makePeer(relay, p, opts);
    await peer.client.start();
    return peer;
  }

  /** A WebSocket that speaks frames by hand, for the tests that misbehave on purpose. */
  function rawPeer(relay: RelayAddress, opts: RawOptions = {}): RawPeer {
    const peer = rawRelayPeer(relay, opts);
    rawSockets.push(peer.ws);
    return peer;
  }

  /** A raw peer that answered the login challenge as `p` (with a join permit's secret if given); not yet authenticated. */
  async function rawLogin(relay: RelayAddress, p: Party, opts: RawOptions & { permitSecret?: Buffer } = {}): Promise<RawPeer> {
    const { permitSecret, ...wsOpts } = opts;
    const raw = rawPeer(relay, wsOpts);
    const challenge = await raw.challenge;
    const answer = { challenge, relayId: pinToRelayId(relay.pin), identity: p.sign, clientTime: Date.now() };
    raw.ws.send(permitSecret ? answerChallengeWithPermit({ ...answer, permitSecret }) : answerChallenge(answer));
    return raw;
  }

  async function closeAll(): Promise<void> {
    for (const ws of rawSockets) ws.terminate();
    for (const p of peers) await p.client.close();
  }

  return { makePeer, connectedPeer, rawPeer, rawLogin, closeAll };
}
