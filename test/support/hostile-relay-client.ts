/**
 * A hostile client of a relay, run as its own process inside a host of a test network (multihost-faults.test.ts):
 *
 *   node --import tsx test/support/hostile-relay-client.ts flood URL CERT_PEM_FILE COUNT CONCURRENCY
 *     COUNT logins, each from a fresh Ed25519 key on a new connection, CONCURRENCY at a time. A login that
 *     succeeds keeps its socket open (holding what it got) until the end. Prints one JSON line: how each ended.
 *   node --import tsx test/support/hostile-relay-client.ts flood-bytes URL CERT_PEM_FILE MIB
 *     Logs in two fresh keys (open relay): R, which then stops reading its socket, and S, which sends envelopes of
 *     1 MiB (less a KiB) addressed to R until MIB MiB are out, as fast as the relay takes them, and reads the relay's
 *     refusals. Prints one JSON line.
 *
 * Every loop is bounded by its arguments; each connection has a deadline. The certificate is checked against the
 * pin of the file given (the hostile side behaves like a client, so the relay sees real logins, not TLS errors).
 */
import fs from 'node:fs';
import type tls from 'node:tls';
import WebSocket from 'ws';
import { ENVELOPE_OVERHEAD_BYTES, MAX_ENVELOPE_BYTES, keyToHex, newMsgId, sealEnvelope } from '../../protocol/envelope';
import { constantTimeEqual, ed25519KeyPair, x25519KeyPair, type SignKeyPair } from '../../protocol/primitives';
import { answerChallenge, decodeFrame, encodeEnvelopeFrame, readChallenge, spkiSha256 } from '../../protocol/relay-handshake';

const CONNECT_DEADLINE_MS = 15_000;

interface Session {
  ws: WebSocket;
  /** 'auth_ok', or why it ended: an ERROR code, `close_<code>`, or `error_<what>`. */
  outcome: string;
}

function connect(url: string, ca: string, relayId: Buffer, key: SignKeyPair, onFrame?: (data: Buffer) => void): Promise<Session> {
  return new Promise((resolve) => {
    const tlsOptions: tls.ConnectionOptions = {
      ca: [ca],
      // The pin is the trust anchor, as in protocol/relay-client.ts; the self-signed certificate names no host.
      checkServerIdentity: (_host: string, cert: tls.PeerCertificate) =>
        cert.raw && constantTimeEqual(spkiSha256(Buffer.from(cert.raw)), relayId) ? undefined : new Error('relay certificate pin mismatch'),
    };
    const ws = new WebSocket(url, {
      ...(tlsOptions as WebSocket.ClientOptions),
      perMessageDeflate: false,
      handshakeTimeout: CONNECT_DEADLINE_MS,
    });
    let settled = false;
    let error: string | undefined;
    const done = (outcome: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ws, outcome });
    };
    const timer = setTimeout(() => {
      done('deadline');
      ws.terminate();
    }, CONNECT_DEADLINE_MS);
    ws.on('message', (data: Buffer) => {
      if (!settled) {
        const challenge = readChallenge(data, relayId);
        if (challenge.ok) {
          ws.send(answerChallenge({ challenge: challenge.challenge, relayId, identity: key, clientTime: Date.now() }));
          return;
        }
        const decoded = decodeFrame(data);
        if (decoded.ok && decoded.frame.type === 'authOk') return done('auth_ok');
        if (decoded.ok && decoded.frame.type === 'error') {
          error = decoded.frame.code;
          return;
        }
        return done(`unexpected_${challenge.reason}`);
      }
      onFrame?.(data);
    });
    ws.on('close', (code) => done(error ?? `close_${code}`));
    ws.on('error', (err: NodeJS.ErrnoException) => done(error ?? `error_${err.code ?? err.message}`));
  });
}

async function flood(url: string, ca: string, relayId: Buffer, count: number, concurrency: number): Promise<void> {
  const outcomes: Record<string, number> = {};
  const held: WebSocket[] = [];
  let next = 0;
  const began = Date.now();
  const lane = async () => {
    while (next < count) {
      next += 1;
      const s = await connect(url, ca, relayId, ed25519KeyPair());
      outcomes[s.outcome] = (outcomes[s.outcome] ?? 0) + 1;
      if (s.outcome === 'auth_ok') held.push(s.ws);
      else s.ws.terminate();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  const heldOpen = held.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  process.stdout.write(`${JSON.stringify({ mode: 'flood', count, outcomes, heldOpen, ms: Date.now() - began })}\n`);
  for (const ws of held) ws.terminate();
}

async function floodBytes(url: string, ca: string, relayId: Buffer, mib: number): Promise<void> {
  const recipient = { sign: ed25519KeyPair(), box: x25519KeyPair() };
  const sender = ed25519KeyPair();
  const r = await connect(url, ca, relayId, recipient.sign);
  if (r.outcome !== 'auth_ok') throw new Error(`recipient login: ${r.outcome}`);
  // From here on R reads nothing: the relay's writes to it pile up in the kernel, then in the relay.
  r.ws.pause();
  const refusals: Record<string, number> = {};
  let senderClosed: string | undefined;
  const s = await connect(url, ca, relayId, sender, (data) => {
    const f = decodeFrame(data);
    if (f.ok && f.frame.type === 'error') refusals[f.frame.code] = (refusals[f.frame.code] ?? 0) + 1;
  });
  if (s.outcome !== 'auth_ok') throw new Error(`sender login: ${s.outcome}`);
  s.ws.on('close', (code) => (senderClosed = `close_${code}`));
  // As large as an envelope gets (the header's own bytes left out of the body).
  const body = Buffer.alloc(MAX_ENVELOPE_BYTES - ENVELOPE_OVERHEAD_BYTES - 1024, 0x61);
  let sentBytes = 0;
  const began = Date.now();
  for (let i = 0; sentBytes < mib * 1024 * 1024 && i < mib + 10 && !senderClosed; i++) {
    const wire = sealEnvelope({
      header: { from: keyToHex(sender.publicKey), to: keyToHex(recipient.sign.publicKey), msgId: newMsgId(), counter: BigInt(i + 1), ts: Date.now(), type: 'command' },
      body,
      senderSign: sender,
      recipientBoxPublicKey: recipient.box.publicKey,
    });
    const frame = encodeEnvelopeFrame(wire);
    await new Promise<void>((resolve) => s.ws.send(frame, () => resolve()));
    sentBytes += frame.length;
  }
  // Let the relay's answers to the last frames arrive.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  process.stdout.write(`${JSON.stringify({ mode: 'flood-bytes', sentBytes, refusals, senderClosed: senderClosed ?? null, ms: Date.now() - began })}\n`);
  s.ws.terminate();
  r.ws.terminate();
}

async function main(argv: string[]): Promise<void> {
  const [mode, url, certFile, a, b] = argv;
  if (!mode || !url || !certFile) throw new Error('usage: hostile-relay-client.ts flood|flood-bytes URL CERT_PEM ...');
  const ca = fs.readFileSync(certFile, 'utf8');
  const relayId = spkiSha256(ca);
  const int = (v: string | undefined, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`"${v}": want an integer 1..${max}`);
    return n;
  };
  if (mode === 'flood') await flood(url, ca, relayId, int(a, 100_000), int(b, 1_000));
  else if (mode === 'flood-bytes') await floodBytes(url, ca, relayId, int(a, 1_024));
  else throw new Error(`unknown mode ${mode}`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`hostile-relay-client: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
