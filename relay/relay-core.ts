/**
 * What the relay does with each connection, independent of NestJS: the login (protocol/relay-handshake.ts), then
 * routing ENVELOPE frames by their unverified header (protocol/envelope.ts parseHeaderUnverified). The relay
 * holds no endpoint keys and never opens a body; it checks only what it can: that the sender is who logged in,
 * that the frame is well formed and within limits, and that the sender stays within its rate.
 */
import type { WebSocket } from 'ws';
import { parseHeaderUnverified } from '../protocol/envelope';
import { constantTimeEqual } from '../protocol/primitives';
import {
  CloseCode,
  DEFAULT_ANSWER_WINDOW_MS,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  FrameType,
  MAX_FRAME_BYTES,
  encodeAuthOkFrame,
  encodeErrorFrame,
  issueChallenge,
  verifyAuth,
  type IssuedChallenge,
  type RelayErrorCode,
} from '../protocol/relay-handshake';
import { keyFingerprint, type RelayLog } from './log';
import { RelayMetrics, type DropReason } from './metrics';
import { OfflineQueue, type QueueConfig } from './offline-queue';
import { SeenKeys } from './seen-keys';
import { RateLimiter, type RateConfig } from './token-bucket';

export interface RelayCoreConfig {
  relayId: Buffer;
  rate: RateConfig;
  queue: QueueConfig;
  /** A connection that has not logged in by then is closed. */
  authTimeoutMs: number;
  answerWindowMs?: number;
  maxClockSkewMs?: number;
  /** A recipient whose socket has more than this many bytes unsent gets no more until it drains. */
  backpressureBytes: number;
  /** Open sockets, logged in or not; beyond it new ones are closed with 1013 (try again later). */
  maxConnections: number;
}

interface Connection {
  id: number;
  ws: WebSocket;
  remote: string;
  /** The challenge sent on this connection; null once answered (right or wrong), so it is single-use. */
  issued: IssuedChallenge | null;
  key: string | null;
  keyBytes: Buffer | null;
  authTimer: NodeJS.Timeout | undefined;
  /** Set once the relay has decided to close it: later frames are ignored, not judged (and counted) again. */
  closing: boolean;
}

export class RelayCore {
  readonly metrics = new RelayMetrics();
  readonly queue: OfflineQueue;
  private readonly limiter: RateLimiter;
  private readonly sessions = new Map<string, Connection>();
  private readonly connections = new Set<Connection>();
  private readonly sweeper: NodeJS.Timeout;
  private nextId = 1;
  private lastRateSweep = 0;

  constructor(
    private readonly config: RelayCoreConfig,
    private readonly seenKeys: SeenKeys,
    private readonly log: RelayLog,
    private readonly now: () => number = Date.now,
  ) {
    this.queue = new OfflineQueue(config.queue);
    this.limiter = new RateLimiter(config.rate);
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(1000, config.queue.ttlMs / 4)));
    this.sweeper.unref();
  }

  /** Called for every accepted WebSocket on the relay path. The relay speaks first: a fresh challenge. */
  handleConnection(ws: WebSocket, remote: string): void {
    if (this.connections.size >= this.config.maxConnections) {
      this.metrics.drop('too_many_connections');
      this.log('warn', 'connection_refused', { reason: 'too_many_connections', remote });
      ws.close(1013, 'too_many_connections');
      return;
    }
    const { issued, frame } = issueChallenge(this.config.relayId, this.now());
    const conn: Connection = { id: this.nextId++, ws, remote, issued, key: null, keyBytes: null, authTimer: undefined, closing: false };
    this.connections.add(conn);
    this.metrics.connections += 1;
    conn.authTimer = setTimeout(() => {
      if (conn.key !== null) return;
      this.metrics.authFailure('timeout');
      this.log('warn', 'auth_failed', { reason: 'timeout', remote, conn: conn.id });
      this.closeWith(conn, 'auth_timeout', CloseCode.authTimeout);
    }, this.config.authTimeoutMs);
    conn.authTimer.unref();

    ws.on('message', (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      this.onFrame(conn, buf, isBinary);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws reports a message over its maxPayload here and then closes the socket with 1009.
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.metrics.drop('oversize');
        this.log('warn', 'frame_refused', { reason: 'oversize', conn: conn.id, key: conn.key ? keyFingerprint(conn.key) : null });
      } else {
        this.log('warn', 'socket_error', { code: err.code ?? 'unknown', conn: conn.id });
      }
    });
    ws.on('close', () => this.onClose(conn));
    this.send(conn, frame);
  }

  private onClose(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    clearTimeout(conn.authTimer);
    this.metrics.connections -= 1;
    if (conn.key !== null && this.sessions.get(conn.key) === conn) {
      this.sessions.delete(conn.key);
      this.metrics.authenticated -= 1;
      this.log('info', 'disconnected', { key: keyFingerprint(conn.key), conn: conn.id });
    }
  }

  private send(conn: Connection, frame: Buffer): void {
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(frame);
  }

  private refuse(conn: Connection, reason: DropReason & RelayErrorCode, fields: Record<string, string | number | null> = {}, ref?: string): void {
    this.metrics.drop(reason);
    this.log('warn', 'frame_refused', { reason, conn: conn.id, key: conn.key ? keyFingerprint(conn.key) : null, ...fields });
    this.send(conn, encodeErrorFrame(reason, ref));
  }

  private closeWith(conn: Connection, code: RelayErrorCode, closeCode: number): void {
    conn.closing = true;
    this.send(conn, encodeErrorFrame(code));
    conn.ws.close(closeCode, code);
  }

  private onFrame(conn: Connection, frame: Buffer, isBinary: boolean): void {
    if (conn.closing) return;
    if (conn.key === null) return this.onLoginFrame(conn, frame, isBinary);
    if (!isBinary || frame.length < 1) return this.refuse(conn, 'malformed_frame', { bytes: frame.length });
    if (frame.length > MAX_FRAME_BYTES) return this.refuse(conn, 'oversize', { bytes: frame.length });
    switch (frame[0]) {
      case FrameType.envelope:
        return this.onEnvelope(conn, frame);
      case FrameType.auth:
        return this.refuse(conn, 'already_authenticated');
      case FrameType.challenge:
      case FrameType.authOk:
      case FrameType.error:
        return this.refuse(conn, 'malformed_frame', { frameType: frame[0]! });
      default:
        return this.refuse(conn, 'unknown_frame_type', { frameType: frame[0]! });
    }
  }

  private onLoginFrame(conn: Connection, frame: Buffer, isBinary: boolean): void {
    if (!isBinary || frame[0] !== FrameType.auth) {
      this.metrics.drop('not_authenticated');
      this.metrics.authFailure('not_authenticated');
      this.log('warn', 'auth_failed', { reason: 'not_authenticated', remote: conn.remote, conn: conn.id, frameType: frame[0] ?? null });
      return this.closeWith(conn, 'not_authenticated', CloseCode.protocolError);
    }
    const issued = conn.issued;
    conn.issued = null; // one answer per challenge, right or wrong
    const verdict = verifyAuth(frame, issued, this.now(), {
      answerWindowMs: this.config.answerWindowMs ?? DEFAULT_ANSWER_WINDOW_MS,
      maxClockSkewMs: this.config.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS,
    });
    if (!verdict.ok) {
      this.metrics.authFailure(verdict.reason);
      this.log('warn', 'auth_failed', { reason: verdict.reason, remote: conn.remote, conn: conn.id });
      return this.closeWith(conn, 'auth_failed', CloseCode.authFailed);
    }
    clearTimeout(conn.authTimer);
    const key = verdict.clientKey.toString('hex');
    conn.key = key;
    conn.keyBytes = verdict.clientKey;
    this.metrics.authOk += 1;
    this.metrics.authenticated += 1;

    // One live connection per key: the newest wins. A client that lost its network reconnects before the relay
    // notices the old socket is dead, and must not be locked out by it.
    const previous = this.sessions.get(key);
    this.sessions.set(key, conn);
    if (previous) {
      this.metrics.replaced += 1;
      this.metrics.authenticated -= 1;
      this.log('warn', 'connection_replaced', { key: keyFingerprint(key), oldConn: previous.id, conn: conn.id });
      this.closeWith(previous, 'replaced', CloseCode.replaced);
    }
    this.seenKeys.touch(key, this.now());

    const { live, expired } = this.queue.drain(key, this.now());
    for (const item of expired) this.dropExpired(key, item.msgId, item.frame.length);
    this.log('info', 'authenticated', { key: keyFingerprint(key), remote: conn.remote, conn: conn.id, queued: live.length });
    this.send(conn, encodeAuthOkFrame({ clientKey: verdict.clientKey, queued: live.length }));
    for (const item of live) {
      this.send(conn, item.frame);
      this.metrics.deliveredFromQueue += 1;
      this.metrics.forwarded += 1;
    }
  }

  private onEnvelope(conn: Connection, frame: Buffer): void {
    const wire = frame.subarray(1);
    const parsed = parseHeaderUnverified(wire);
    const msgId = parsed.ok ? parsed.header.msgId : undefined;
    // The bucket is taken before anything else is judged, so garbage counts against the sender's rate too.
    if (!this.limiter.take(conn.key!, this.now())) {
      this.metrics.rateLimited += 1;
      this.log('warn', 'rate_limited', { key: keyFingerprint(conn.key!), conn: conn.id });
      this.send(conn, encodeErrorFrame('rate_limited', msgId));
      return;
    }
    if (!parsed.ok) return this.refuse(conn, parsed.reason === 'oversize' ? 'oversize' : 'malformed_envelope', { bytes: wire.length, detail: parsed.reason });
    const { header } = parsed;
    const meta = { bytes: wire.length, type: header.type, to: keyFingerprint(header.to) };
    // Header bytes 1..33 are `from`; comparing bytes avoids trusting the hex round trip.
    if (!constantTimeEqual(wire.subarray(1, 33), conn.keyBytes!)) {
      return this.refuse(conn, 'forged_from', { ...meta, claimed: keyFingerprint(header.from) }, header.msgId);
    }
    const recipient = this.sessions.get(header.to);
    if (recipient) {
      if (recipient.ws.bufferedAmount > this.config.backpressureBytes) {
        return this.refuse(conn, 'recipient_backpressure', meta, header.msgId);
      }
      this.send(recipient, frame);
      this.metrics.forwarded += 1;
      return;
    }
    if (!this.seenKeys.has(header.to)) return this.refuse(conn, 'unknown_recipient', meta, header.msgId);
    const queued = this.queue.enqueue(header.to, { frame, msgId: header.msgId, expiresAt: this.now() + this.config.queue.ttlMs });
    if (!queued.ok) return this.refuse(conn, 'queue_full', meta, header.msgId);
    this.metrics.queuedTotal += 1;
  }

  private dropExpired(recipient: string, msgId: string, bytes: number): void {
    this.metrics.drop('ttl_expired');
    this.log('warn', 'queue_expired', { to: keyFingerprint(recipient), msgId, bytes });
  }

  private sweep(): void {
    const now = this.now();
    for (const { recipient, item } of this.queue.sweep(now)) this.dropExpired(recipient, item.msgId, item.frame.length);
    if (now - this.lastRateSweep > 60_000) {
      this.lastRateSweep = now;
      this.limiter.sweep(now);
    }
  }

  renderMetrics(): string {
    return this.metrics.render({ queued: this.queue.count, queuedBytes: this.queue.bytes, seenKeys: this.seenKeys.size });
  }

  /** Close every connection with `shutting_down` and stop the timers. */
  stop(): void {
    clearInterval(this.sweeper);
    for (const conn of [...this.connections]) {
      clearTimeout(conn.authTimer);
      this.closeWith(conn, 'shutting_down', CloseCode.shuttingDown);
    }
    this.seenKeys.close();
  }
}
