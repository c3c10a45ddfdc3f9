/**
 * A bare WebSocket to a relay that speaks only frames (protocol/RELAY.md), for tests that send what a RelayClient
 * never would: it records every frame the relay sends, and resolves `challenge` with the login challenge.
 */
import WebSocket from 'ws';
import { decodeFrame, pinToRelayId, readChallenge, type Frame } from '../../protocol/relay-handshake';

export interface RawPeer {
  ws: WebSocket;
  frames: Frame[];
  /** The next frame of this type the relay sent (waiting for it up to timeoutMs), taken off `frames`. */
  next: (type: Frame['type'], timeoutMs?: number) => Promise<Frame>;
  closed: Promise<{ code: number; reason: string }>;
  challenge: Promise<Buffer>;
}

export function rawRelayPeer(relay: { url: string; pin: string; certPem: string }, opts: { localAddress?: string; autoPong?: boolean } = {}): RawPeer {
  const ws = new WebSocket(relay.url, { ca: relay.certPem, maxPayload: 8 * 1024 * 1024, ...opts });
  const frames: Frame[] = [];
  let resolveChallenge: (b: Buffer) => void;
  const challenge = new Promise<Buffer>((r) => (resolveChallenge = r));
  const relayId = pinToRelayId(relay.pin);
  ws.on('message', (data: Buffer) => {
    const buf = Buffer.from(data);
    const c = readChallenge(buf, relayId);
    if (c.ok) resolveChallenge(c.challenge);
    const d = decodeFrame(buf);
    if (d.ok) frames.push(d.frame);
  });
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  const next = async (type: Frame['type'], timeoutMs = 5000) => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = frames.findIndex((f) => f.type === type);
      if (i >= 0) return frames.splice(i, 1)[0]!;
      if (Date.now() > end) throw new Error(`no ${type} frame; have ${frames.map((f) => f.type).join(',')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { ws, frames, next, closed, challenge };
}
