/**
 * What the relay does with each connection, independent of NestJS: admission and the login
 * (protocol/relay-handshake.ts), then routing ENVELOPE frames by their unverified header (protocol/envelope.ts
 * parseHeaderUnverified) and applying the admin frames (ALLOW, DENY, PERMIT). The relay holds no endpoint keys and
 * never opens a body; it checks only what it can: that the sender is who logged in and may log in, that the frame
 * is well formed and within limits, and that the sender, its address and the relay as a whole stay within bounds.
 */
import net from 'node:net';
import type { WebSocket } from 'ws';
import { parseHeaderUnverified } from '../protocol/envelope';
import { constantTimeEqual } from '../protocol/primitives';
import {
  CloseCode,
  DEFAULT_ANSWER_WINDOW_MS,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  FrameType,
  MAX_FRAME_BYTES,
  RELAY_PROTOCOL_VERSION,
  decodeFrame,
  encodeAdminOkFrame,
  encodeAuthOkFrame,
  encodeErrorFrame,
  issueChallenge,
  verifyAuth,
  type Frame,
  type IssuedChallenge,
  type RelayErrorCode,
} from '../protocol/relay-handshake';
import type { Admission } from './admission';
import { keyFingerprint, type RelayLog } from './log';
import { RelayMetrics, type AdminRefusal, type CloseReason, type DropReason } from './metrics';
import { OfflineQueue, type QueueConfig } from './offline-queue';
import type { SeenKeys } from './seen-keys';
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
  /** Any key may log in (true), or only admitted keys and holders of a join permit (false, the default). */
  open: boolean;
  /** Per source address (IPv6 by /64): sockets not bound to an admitted key, and logins by keys not admitted. */
  perIp: { maxConnections: number; loginRate: RateConfig };
  /** A logged-in connection with no frame and no pong for this long is closed; it is pinged at a third of it. */
  idleTimeoutMs: number;
  /** Bytes handed to sockets and not yet written, all connections together; beyond it new traffic gets relay_full. */
  maxBufferedBytes: number;
  /** A join-permit session: at most this many envelopes (all to its admin), and closed after maxSessionMs. */
  join: { maxEnvelopes: number; maxSessionMs: number };
}

interface JoinSession {
  /** The admin that registered the permit: the only recipient this session may send to. */
  admin: string;
  sent: number;
  until: number;
}

interface Connection {
  id: number;
  ws: WebSocket;
  remote: string;
  /** Source address group for the per-IP limits. */
  ip: string;
  /** The challenge sent on this connection; null once answered (right or wrong), so it is single-use. */
  issued: IssuedChallenge | null;
  key: string | null;
  keyBytes: Buffer | null;
  authTimer: NodeJS.Timeout | undefined;
  /** Set once the relay has decided to close it: later frames are ignored, not judged (and counted) again. */
  closing: boolean;
  /** Counted in its address's connection count (true until it is bound to an admitted key). */
  countedOnIp: boolean;
  lastActive: number;
  /** Bytes handed to ws for this socket and not yet written; released (subtracted from the total) at close. */
  pending: number;
  released: boolean;
  join: JoinSession | null;
}

/** The ws library's hard cap on one message once logged in. Frames between MAX_FRAME_BYTES and this get an
 *  `oversize` ERROR frame and the connection stays; beyond it ws closes the socket with 1009 before buffering more.
 *  It is also the most a socket can make the relay hold for a message still arriving. */
export const WS_MAX_PAYLOAD = MAX_FRAME_BYTES + 64 * 1024;
/** Before the login the only valid frame is AUTH (106 bytes) or AUTH_JOIN (138): an unauthenticated socket may not
 *  make the relay hold more than this for one message. */
export const PRE_AUTH_MAX_PAYLOAD = 1024;

/**
 * Set the largest message ws accepts on this socket from now on. ws has no public setting per socket, so this
 * sets its receiver's field (ws 8.x checks it in each frame header, before buffering the payload); with a ws
 * that has no such field it does nothing and the server-wide WS_MAX_PAYLOAD holds.
 */
function setMaxPayload(ws: WebSocket, bytes: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (receiver && typeof receiver._maxPayload === 'number') receiver._maxPayload = bytes;
}

/** Key fingerprints for a log line: the first 20, and how many more. */
function fingerprintList(keys: string[]): string {
  const shown = keys.slice(0, 20).map(keyFingerprint).join(',');
  return keys.length > 20 ? `${shown},+${keys.length - 20}` : shown;
}

/** What one pending socket write costs besides its bytes (measured: ~1 KiB per queued ws frame with its callback). */
export const WRITE_OVERHEAD_BYTES = 1024;

/** The group a source address is limited as: IPv4 as is (also IPv4-mapped IPv6), IPv6 by its /64. */
export function addressGroup(address: string): string {
  const a = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
  if (!net.isIPv6(a)) return a;
  const [head = '', tail = ''] = a.split('::');
  const left = head ? head.split(':') : [];
  const right = a.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = a.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

export class RelayCore {
  readonly metrics = new RelayMetrics();
  readonly queue: OfflineQueue;
  private readonly limiter: RateLimiter;
  private readonly loginLimiter: RateLimiter;
  private readonly sessions = new Map<string, Connection>();
  private readonly connections = new Set<Connection>();
  private readonly perIpConnections = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly keepalive: NodeJS.Timeout;
  private nextId = 1;
  private lastRateSweep = 0;
  private buffered = 0;
  private joinSessions = 0;

  constructor(
    private readonly config: RelayCoreConfig,
    private readonly seenKeys: SeenKeys,
    private readonly admission: Admission,
    private readonly log: RelayLog,
    private readonly now: () => number = Date.now,
  ) {
    this.queue = new OfflineQueue(config.queue);
    this.limiter = new RateLimiter(config.rate);
    this.loginLimiter = new RateLimiter(config.perIp.loginRate);
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(1000, config.queue.ttlMs / 4)));
    this.sweeper.unref();
    this.keepalive = setInterval(() => this.checkIdle(), Math.max(50, Math.floor(config.idleTimeoutMs / 3)));
    this.keepalive.unref();
  }

  /** Called for every accepted WebSocket on the relay path. The relay speaks first: a fresh challenge. */
  handleConnection(ws: WebSocket, address: string, port: number | string): void {
    const remote = `${address}:${port}`;
    const ip = addressGroup(address);
    if (this.connections.size >= this.config.maxConnections) return this.refuseConnection(ws, 'too_many_connections', remote);
    const fromIp = this.perIpConnections.get(ip) ?? 0;
    if (fromIp >= this.config.perIp.maxConnections) return this.refuseConnection(ws, 'too_many_connections_from_ip', remote);
    this.perIpConnections.set(ip, fromIp + 1);

    setMaxPayload(ws, PRE_AUTH_MAX_PAYLOAD);
    const { issued, frame } = issueChallenge(this.config.relayId, this.now());
    const conn: Connection = {
      id: this.nextId++,
      ws,
      remote,
      ip,
      issued,
      key: null,
      keyBytes: null,
      authTimer: undefined,
      closing: false,
      countedOnIp: true,
      lastActive: this.now(),
      pending: 0,
      released: false,
      join: null,
    };
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
      conn.lastActive = this.now();
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      this.onFrame(conn, buf, isBinary);
    });
    ws.on('pong', () => (conn.lastActive = this.now()));
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

  private refuseConnection(ws: WebSocket, reason: 'too_many_connections' | 'too_many_connections_from_ip', remote: string): void {
    this.metrics.drop(reason);
    this.log('warn', 'connection_refused', { reason, remote });
    if (ws.readyState === ws.OPEN) ws.send(encodeErrorFrame('too_many_connections'));
    ws.close(CloseCode.tryAgainLater, 'too_many_connections');
    setTimeout(() => ws.terminate(), 2000).unref();
  }

  private uncountIp(conn: Connection): void {
    if (!conn.countedOnIp) return;
    conn.countedOnIp = false;
    const n = (this.perIpConnections.get(conn.ip) ?? 1) - 1;
    if (n <= 0) this.perIpConnections.delete(conn.ip);
    else this.perIpConnections.set(conn.ip, n);
  }

  private onClose(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    clearTimeout(conn.authTimer);
    this.metrics.connections -= 1;
    this.uncountIp(conn);
    this.buffered -= conn.pending;
    conn.pending = 0;
    conn.released = true;
    if (conn.key !== null && this.sessions.get(conn.key) === conn) {
      this.sessions.delete(conn.key);
      this.metrics.authenticated -= 1;
      if (conn.join) this.joinSessions -= 1;
      this.log('info', 'disconnected', { key: keyFingerprint(conn.key), conn: conn.id });
    }
  }

  /** Hand a frame to the socket, counting it as buffered until ws has written it out. Each frame is charged its
   *  size plus WRITE_OVERHEAD_BYTES: a pending write costs Node about that much besides its bytes, so a flood of
   *  tiny frames is bounded by the same numbers as a few large ones. */
  private send(conn: Connection, frame: Buffer): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    const n = frame.length + WRITE_OVERHEAD_BYTES;
    conn.pending += n;
    this.buffered += n;
    conn.ws.send(frame, () => {
      if (conn.released) return;
      conn.pending -= n;
      this.buffered -= n;
    });
  }

  /** The relay's own frames to a client (ERROR, ADMIN_OK): a client that lets them pile up is not reading, and is cut
   *  off rather than let it make the relay buffer answers to its own garbage without bound. */
  private sendControl(conn: Connection, frame: Buffer): void {
    if (conn.pending + frame.length + WRITE_OVERHEAD_BYTES > this.config.backpressureBytes) return this.cutOff(conn, 'not_reading');
    this.send(conn, frame);
  }

  private cutOff(conn: Connection, reason: CloseReason): void {
    if (conn.closing) return;
    conn.closing = true;
    this.metrics.count(this.metrics.closed, reason);
    this.log('warn', 'connection_closed', { reason, conn: conn.id, key: conn.key ? keyFingerprint(conn.key) : null });
    conn.ws.terminate();
  }

  private refuse(conn: Connection, reason: DropReason & RelayErrorCode, fields: Record<string, string | number | null> = {}, ref?: string): void {
    this.metrics.drop(reason);
    this.log('warn', 'frame_refused', { reason, conn: conn.id, key: conn.key ? keyFingerprint(conn.key) : null, ...fields });
    this.sendControl(conn, encodeErrorFrame(reason, ref));
  }

  private closeWith(conn: Connection, code: RelayErrorCode, closeCode: number): void {
    if (conn.closing) return;
    conn.closing = true;
    this.send(conn, encodeErrorFrame(code));
    conn.ws.close(closeCode, code);
    // A peer that does not answer the close (dead, or not reading) is cut off rather than waited for.
    setTimeout(() => conn.ws.terminate(), 2000).unref();
  }

  private onFrame(conn: Connection, frame: Buffer, isBinary: boolean): void {
    if (conn.closing) return;
    if (conn.key === null) return this.onLoginFrame(conn, frame, isBinary);
    if (!isBinary || frame.length < 1) return this.refuse(conn, 'malformed_frame', { bytes: frame.length });
    if (frame.length > MAX_FRAME_BYTES) return this.refuse(conn, 'oversize', { bytes: frame.length });
    switch (frame[0]) {
      case FrameType.envelope:
        return this.onEnvelope(conn, frame);
      case FrameType.allow:
      case FrameType.deny:
      case FrameType.permit:
        return this.onAdminFrame(conn, frame);
      case FrameType.auth:
      case FrameType.authJoin:
        return this.refuse(conn, 'already_authenticated');
      case FrameType.challenge:
      case FrameType.authOk:
      case FrameType.error:
      case FrameType.adminOk:
        return this.refuse(conn, 'malformed_frame', { frameType: frame[0]! });
      default:
        return this.refuse(conn, 'unknown_frame_type', { frameType: frame[0]! });
    }
  }

  private onLoginFrame(conn: Connection, frame: Buffer, isBinary: boolean): void {
    if (!isBinary || (frame[0] !== FrameType.auth && frame[0] !== FrameType.authJoin)) {
      this.metrics.drop('not_authenticated');
      this.metrics.authFailure('not_authenticated');
      this.log('warn', 'auth_failed', { reason: 'not_authenticated', remote: conn.remote, conn: conn.id, frameType: frame[0] ?? null });
      return this.closeWith(conn, 'not_authenticated', CloseCode.protocolError);
    }
    // Logins by keys the relay does not admit take a token from their address's bucket first (the key is only
    // claimed here; a false claim of an admitted key skips the bucket but fails the signature check next).
    const claimed = frame.length >= 34 ? frame.subarray(2, 34).toString('hex') : '';
    if (!this.admission.isAdmitted(claimed) && !this.loginLimiter.take(conn.ip, this.now())) {
      this.metrics.authFailure('login_rate_limited');
      this.log('warn', 'auth_failed', { reason: 'login_rate_limited', remote: conn.remote, conn: conn.id });
      return this.closeWith(conn, 'login_rate_limited', CloseCode.tryAgainLater);
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
    const key = verdict.clientKey.toString('hex');
    const admitted = this.admission.isAdmitted(key);
    let join: JoinSession | null = null;
    // An admitted key logs in as usual whichever frame it used; a permit it brought is left unused.
    if (!admitted && verdict.permitSecret) {
      let use: ReturnType<Admission['usePermit']>;
      try {
        use = this.admission.usePermit(verdict.permitSecret, this.now());
      } catch (err) {
        // Its use could not be recorded, so it is not accepted: single use holds even when the disk does not.
        this.log('error', 'permit_write_failed', { conn: conn.id, error: (err as Error).message.slice(0, 200) });
        return this.closeWith(conn, 'permit_refused', CloseCode.permitRefused);
      }
      if (!use.ok) {
        this.metrics.count(this.metrics.permitRefused, use.reason);
        this.metrics.authFailure('permit_refused');
        this.log('warn', 'auth_failed', { reason: use.reason, key: keyFingerprint(key), remote: conn.remote, conn: conn.id });
        return this.closeWith(conn, 'permit_refused', CloseCode.permitRefused);
      }
      join = { admin: use.admin, sent: 0, until: this.now() + this.config.join.maxSessionMs };
      this.metrics.joinLogins += 1;
    } else if (!admitted && !this.config.open) {
      this.metrics.authFailure('not_admitted');
      this.log('warn', 'auth_failed', { reason: 'not_admitted', key: keyFingerprint(key), remote: conn.remote, conn: conn.id });
      return this.closeWith(conn, 'not_admitted', CloseCode.notAdmitted);
    }
    clearTimeout(conn.authTimer);
    setMaxPayload(conn.ws, WS_MAX_PAYLOAD);
    conn.key = key;
    conn.keyBytes = verdict.clientKey;
    conn.join = join;
    if (admitted) this.uncountIp(conn);
    this.metrics.authOk += 1;
    this.metrics.authenticated += 1;
    if (join) this.joinSessions += 1;

    // One live connection per key: the newest wins. A client that lost its network reconnects before the relay
    // notices the old socket is dead, and must not be locked out by it.
    const previous = this.sessions.get(key);
    this.sessions.set(key, conn);
    if (previous) {
      this.metrics.replaced += 1;
      this.metrics.authenticated -= 1;
      if (previous.join) this.joinSessions -= 1;
      previous.join = null;
      this.log('warn', 'connection_replaced', { key: keyFingerprint(key), oldConn: previous.id, conn: conn.id });
      this.closeWith(previous, 'replaced', CloseCode.replaced);
    }
    // A join session is not remembered: a permit holder that never gets admitted leaves nothing behind.
    if (!join) this.seenKeys.touch(key, this.now());

    const { live, expired } = this.queue.drain(key, this.now());
    for (const item of expired) this.dropExpired(key, item.msgId, item.frame.length);
    this.log('info', 'authenticated', {
      key: keyFingerprint(key),
      remote: conn.remote,
      conn: conn.id,
      queued: live.length,
      as: join ? 'join' : admitted ? 'admitted' : 'open',
      ...(join ? { admin: keyFingerprint(join.admin) } : {}),
    });
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
      this.sendControl(conn, encodeErrorFrame('rate_limited', msgId));
      return;
    }
    if (!parsed.ok) return this.refuse(conn, parsed.reason === 'oversize' ? 'oversize' : 'malformed_envelope', { bytes: wire.length, detail: parsed.reason });
    const { header } = parsed;
    const meta = { bytes: wire.length, type: header.type, to: keyFingerprint(header.to) };
    // Header bytes 1..33 are `from`; comparing bytes avoids trusting the hex round trip.
    if (!constantTimeEqual(wire.subarray(1, 33), conn.keyBytes!)) {
      return this.refuse(conn, 'forged_from', { ...meta, claimed: keyFingerprint(header.from) }, header.msgId);
    }
    if (conn.join) {
      // A permit holder may talk to the admin that invited it, a few times, and to nobody else.
      if (header.to !== conn.join.admin || conn.join.sent >= this.config.join.maxEnvelopes) {
        return this.refuse(conn, 'join_restricted', { ...meta, sent: conn.join.sent }, header.msgId);
      }
    }
    const recipient = this.sessions.get(header.to);
    if (recipient) {
      if (recipient.pending > this.config.backpressureBytes) return this.refuse(conn, 'recipient_backpressure', meta, header.msgId);
      if (this.buffered + frame.length + WRITE_OVERHEAD_BYTES > this.config.maxBufferedBytes) return this.refuse(conn, 'relay_full', { ...meta, buffered: this.buffered }, header.msgId);
      if (conn.join) conn.join.sent += 1;
      this.send(recipient, frame);
      this.metrics.forwarded += 1;
      return;
    }
    const queueable = this.admission.isAdmitted(header.to) || (this.config.open && this.seenKeys.has(header.to));
    if (!queueable) return this.refuse(conn, 'unknown_recipient', meta, header.msgId);
    const queued = this.queue.enqueue(header.to, { frame, msgId: header.msgId, expiresAt: this.now() + this.config.queue.ttlMs });
    if (!queued.ok) return this.refuse(conn, queued.reason, meta, header.msgId);
    if (conn.join) conn.join.sent += 1;
    this.metrics.queuedTotal += 1;
  }

  private refuseAdmin(conn: Connection, reason: AdminRefusal, requestId: string): void {
    this.metrics.count(this.metrics.adminRefused, reason);
    this.log('warn', 'admin_refused', { reason, conn: conn.id, key: keyFingerprint(conn.key!) });
    this.sendControl(conn, encodeErrorFrame(reason, requestId));
  }

  /** ALLOW, DENY, PERMIT: only from an admin key, applied and written to disk before ADMIN_OK. */
  private onAdminFrame(conn: Connection, frame: Buffer): void {
    const key = conn.key!;
    if (!this.limiter.take(key, this.now())) {
      this.metrics.rateLimited += 1;
      this.sendControl(conn, encodeErrorFrame('rate_limited'));
      return;
    }
    const decoded = decodeFrame(frame);
    if (!decoded.ok) return this.refuse(conn, decoded.reason === 'unknown_frame_type' ? 'unknown_frame_type' : 'malformed_frame', { frameType: frame[0]!, bytes: frame.length });
    const f = decoded.frame;
    if ((f.type !== 'allow' && f.type !== 'deny' && f.type !== 'permit') || f.version !== RELAY_PROTOCOL_VERSION) {
      return this.refuse(conn, 'malformed_frame', { frameType: frame[0]! });
    }
    const requestId = f.requestId.toString('hex');
    if (!this.admission.isAdmin(key)) return this.refuseAdmin(conn, 'not_admin', requestId);
    try {
      this.applyAdminFrame(conn, key, f);
    } catch (err) {
      // The allowlist or permits could not be written: nothing is acknowledged that a restart would forget.
      this.log('error', 'admin_write_failed', { conn: conn.id, error: (err as Error).message.slice(0, 200), hint: 'check the data directory (space, permissions)' });
      this.refuseAdmin(conn, 'storage_failed', requestId);
    }
  }

  private applyAdminFrame(conn: Connection, key: string, f: Extract<Frame, { type: 'allow' | 'deny' | 'permit' }>): void {
    const requestId = f.requestId.toString('hex');
    const now = this.now();
    let changed: number;
    if (f.type === 'permit') {
      const added = this.admission.addPermit(key, f.permitHash.toString('hex'), f.expiresAt, now);
      if (!added.ok) return this.refuseAdmin(conn, added.reason, requestId);
      changed = 1;
      this.log('info', 'permit_registered', { admin: keyFingerprint(key), expiresAt: new Date(f.expiresAt).toISOString() });
    } else if (f.type === 'allow') {
      const result = this.applyAllow(key, f.keys.map((k) => k.toString('hex')));
      if (!result.ok) return this.refuseAdmin(conn, result.reason, requestId);
      changed = result.changed;
    } else {
      const keys = f.keys.map((k) => k.toString('hex'));
      const result = this.admission.deny(key, keys);
      changed = result.changed;
      for (const k of result.unadmitted) this.onUnadmitted(k);
      this.log('info', 'keys_denied', { admin: keyFingerprint(key), keys: keys.length, changed, fingerprints: fingerprintList(keys) });
    }
    this.metrics.count(this.metrics.adminOk, f.type);
    this.sendControl(conn, encodeAdminOkFrame({ requestId: f.requestId, changed }));
  }

  private applyAllow(admin: string, keys: string[]) {
    const result = this.admission.allow(admin, keys);
    if (!result.ok) return result;
    for (const k of result.admitted) this.onAdmitted(k);
    this.log('info', 'keys_allowed', { admin: keyFingerprint(admin), keys: keys.length, changed: result.changed, fingerprints: fingerprintList(keys) });
    return result;
  }

  /** ALLOW without a connection, for a process that embeds the relay and is itself the admin (`orch up`). */
  allow(admin: string, keys: string[]): void {
    if (!this.admission.isAdmin(admin)) throw new RangeError(`${keyFingerprint(admin)} is not an admin key of this relay`);
    if (keys.some((k) => !/^[0-9a-f]{64}$/.test(k))) throw new RangeError('keys must be 64 lowercase hex digits');
    const result = this.applyAllow(admin, keys);
    if (!result.ok) throw new RangeError(`cannot allow more keys: ${result.reason}`);
  }

  /** A key just became admitted: never evicted from the seen table, and a live session of it is a normal one now. */
  private onAdmitted(key: string): void {
    this.seenKeys.pin(key);
    const session = this.sessions.get(key);
    if (!session) return;
    if (session.join) {
      session.join = null;
      this.joinSessions -= 1;
      this.seenKeys.touch(key, this.now());
      this.log('info', 'join_admitted', { key: keyFingerprint(key), conn: session.id });
    }
    this.uncountIp(session);
  }

  /** A key is no longer admitted by anyone: its live session ends, unless the relay is open to every key. */
  private onUnadmitted(key: string): void {
    this.seenKeys.unpin(key, this.now());
    if (this.config.open) return;
    const session = this.sessions.get(key);
    if (!session) return;
    this.metrics.count(this.metrics.closed, 'not_admitted');
    this.closeWith(session, 'not_admitted', CloseCode.notAdmitted);
  }

  private dropExpired(recipient: string, msgId: string, bytes: number): void {
    this.metrics.drop('ttl_expired');
    this.log('warn', 'queue_expired', { to: keyFingerprint(recipient), msgId, bytes });
  }

  /** Keepalive: ping the quiet, close the silent (no frame and no pong for idleTimeoutMs), end join sessions on time. */
  private checkIdle(): void {
    const now = this.now();
    const pingAfter = this.config.idleTimeoutMs / 3;
    for (const conn of this.connections) {
      if (conn.key === null || conn.closing) continue;
      if (conn.join && now > conn.join.until) {
        this.metrics.count(this.metrics.closed, 'join_expired');
        this.closeWith(conn, 'join_expired', CloseCode.joinExpired);
        continue;
      }
      const quiet = now - conn.lastActive;
      if (quiet > this.config.idleTimeoutMs) {
        this.metrics.count(this.metrics.closed, 'idle_timeout');
        this.log('info', 'connection_closed', { reason: 'idle_timeout', conn: conn.id, key: keyFingerprint(conn.key) });
        this.closeWith(conn, 'idle_timeout', CloseCode.idleTimeout);
      } else if (quiet >= pingAfter && conn.ws.readyState === conn.ws.OPEN) {
        conn.ws.ping();
      }
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const { recipient, item } of this.queue.sweep(now)) this.dropExpired(recipient, item.msgId, item.frame.length);
    if (now - this.lastRateSweep > 60_000) {
      this.lastRateSweep = now;
      this.limiter.sweep(now);
      this.loginLimiter.sweep(now);
      this.admission.sweepPermits(now);
    }
  }

  renderMetrics(): string {
    return this.metrics.render({
      queued: this.queue.count,
      queuedBytes: this.queue.bytes,
      seenKeys: this.seenKeys.size,
      bufferedBytes: this.buffered,
      allowedKeys: this.admission.allowedKeys().length,
      adminKeys: this.admission.adminKeys.size,
      permits: this.admission.permitCount,
      joinSessions: this.joinSessions,
      openMode: this.config.open,
    });
  }

  /** Close every connection with `shutting_down` and stop the timers. */
  stop(): void {
    clearInterval(this.sweeper);
    clearInterval(this.keepalive);
    for (const conn of [...this.connections]) {
      clearTimeout(conn.authTimer);
      conn.closing = false;
      this.closeWith(conn, 'shutting_down', CloseCode.shuttingDown);
    }
    this.seenKeys.close();
  }
}
