/**
 * The client side of the relay protocol (protocol/RELAY.md), used by desktops and agents: wss with the relay's
 * certificate pinned by SPKI hash on every connection, the challenge login, and reconnection with exponential
 * backoff and jitter. Envelopes go in and out as opaque bytes; sealing and opening is the caller's business.
 *
 * Trust: the pin is the only thing trusted. For a relay with a self-signed certificate the client first fetches
 * the certificate in a TLS handshake that sends nothing (Node refuses the unknown chain and closes it), keeps it
 * only if its SPKI hash equals the pin, and then connects with that certificate as the sole CA and the pin checked
 * again in checkServerIdentity and once more on the socket after the upgrade. `rejectUnauthorized` stays at its
 * default (true) everywhere. A relay with a publicly trusted certificate (Let's Encrypt) validates against the
 * system CAs and is pinned the same way.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import WebSocket from 'ws';
import { MAX_ENVELOPE_BYTES } from './envelope';
import { constantTimeEqual } from './primitives';
import {
  CloseCode,
  MAX_FRAME_BYTES,
  MAX_KEYS_PER_ADMIN_FRAME,
  PERMIT_HASH_BYTES,
  PERMIT_SECRET_BYTES,
  REQUEST_ID_BYTES,
  answerChallenge,
  answerChallengeWithPermit,
  decodeFrame,
  encodeEnvelopeFrame,
  encodeKeyListFrame,
  encodePermitFrame,
  pinToRelayId,
  readChallenge,
  spkiPin,
  spkiSha256,
} from './relay-handshake';
import { randomBytes } from './primitives';

export { spkiPin } from './relay-handshake';

export interface RelayIdentity {
  /** Ed25519 public key, 32 bytes. */
  publicKey: Buffer;
  /** libsodium Ed25519 secret key, 64 bytes. */
  secretKey: Buffer;
}

export interface RelayClientOptions {
  /** wss://host:port/v1/relay */
  url: string;
  /** 'sha256/<base64 of SHA-256 of the certificate's SPKI DER>' as `orch-relay start` prints it. */
  pin: string;
  identity: RelayIdentity;
  /** Every envelope the relay delivers to us (opaque bytes; the caller opens and checks them). */
  onEnvelope: (wire: Buffer) => void;
  /** ERROR frames that refuse one of our envelopes (`rate_limited`, `unknown_recipient`, `queue_full`, ...);
   *  `ref` is that envelope's msgId. Optional; they are logged either way. */
  onRelayError?: (error: { code: string; ref?: string }) => void;
  /** Structured, metadata only. */
  log?: (event: Record<string, unknown>) => void;
  /** Backoff between attempts: doubles from minMs to maxMs, each delay drawn from [d/2, d]. Default 500 ms .. 30 s. */
  reconnect?: { minMs?: number; maxMs?: number };
  /** The relay's certificate (PEM), if the caller has it; skips fetching it. It must still match the pin. */
  ca?: string;
  /** How long one attempt may take from TCP connect to AUTH_OK. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * A join permit's secret (32 bytes, derivePermitSecret of the invite's join secret), for a key the relay does not
   * admit yet. The first login is then an AUTH_JOIN; once one has succeeded the permit is spent and later logins
   * are plain AUTH (they succeed once the admin has allowed this key, and get `not_admitted` until then).
   */
  joinPermitSecret?: Buffer;
  /** How long allow/deny/registerPermit wait for the relay's ADMIN_OK. Default 10 s. */
  adminTimeoutMs?: number;
}

export type RelayClientErrorCode =
  /** Not connected to the relay right now (send) or it could not be reached (connect attempt). */
  | 'relay_unavailable'
  /** The relay's certificate does not have the pinned SPKI hash. */
  | 'pin_mismatch'
  /** The relay's challenge names another relay than the one pinned. */
  | 'relay_id_mismatch'
  /** The relay refused our login. */
  | 'auth_failed'
  /** Another connection with our key logged in; this client stops reconnecting. */
  | 'replaced'
  /** The relay does not admit our key (yet). Retried with backoff: the admin may allow the key meanwhile. */
  | 'not_admitted'
  /** The relay refused our join permit (unknown, expired or already used). Not retried at start. */
  | 'permit_refused'
  /** The relay refused an admin request (ALLOW, DENY, PERMIT); `relayCode` says why (not_admin, allowlist_full, ...). */
  | 'admin_refused'
  /** The relay broke the protocol (unexpected or malformed frames). */
  | 'protocol_error'
  /** close() was called. */
  | 'closed'
  /** The envelope is larger than any relay frame can carry. */
  | 'too_large'
  /** The options cannot work (bad URL, bad pin, wrong key lengths). */
  | 'bad_options';

/** Thrown or rejected by RelayClient; tell failures apart by `code`. */
export class RelayClientError extends Error {
  override readonly name = 'RelayClientError';
  constructor(
    readonly code: RelayClientErrorCode,
    message: string,
    /** The relay's ERROR code, for `admin_refused`. */
    readonly relayCode?: string,
  ) {
    super(message);
  }
}

/** Errors that will not go away by trying again soon with the same settings: the first start() gives up on them.
 *  `not_admitted` is not one: the admin may allow the key at any time (an agent starts before it is registered). */
const FATAL_AT_START: ReadonlySet<RelayClientErrorCode> = new Set(['pin_mismatch', 'relay_id_mismatch', 'auth_failed', 'replaced', 'bad_options', 'permit_refused']);

/** ERROR codes the relay closes a login with, and what the client makes of them. */
const LOGIN_REFUSALS: Record<string, RelayClientErrorCode> = {
  auth_failed: 'auth_failed',
  auth_timeout: 'auth_failed',
  not_admitted: 'not_admitted',
  permit_refused: 'permit_refused',
  too_many_connections: 'relay_unavailable',
  login_rate_limited: 'relay_unavailable',
  shutting_down: 'relay_unavailable',
};

/** OpenSSL verification failures as Node reports them (DEPTH_ZERO_SELF_SIGNED_CERT, CERT_SIGNATURE_FAILURE, ...). */
const CERTIFICATE_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/**
 * Delay before reconnect attempt `attempt` (0-based): the ceiling doubles from minMs up to maxMs, and the delay
 * is drawn uniformly from [ceiling/2, ceiling], so clients cut off together (a relay restart) do not all come
 * back in the same millisecond, yet none waits less than half its step.
 */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

function certificatePem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

/**
 * Connects, logs in and stays connected.
 *
 * @example
 * const client = new RelayClient({ url, pin, identity: desktop.sign, onEnvelope: (wire) => inbox.push(wire) });
 * await client.start();
 * await client.send(sealEnvelope({ ... }));
 */
export class RelayClient {
  private readonly events = new EventEmitter();
  private readonly relayId: Buffer;
  private readonly target: { host: string; port: number; servername: string | undefined };
  private readonly minMs: number;
  private readonly maxMs: number;
  private ws: WebSocket | null = null;
  private authenticated = false;
  private closed = false;
  private stopReconnecting = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** undefined: not fetched yet; null: the system CAs vouch for the relay; string: the pinned self-signed cert. */
  private trustedCa: string | null | undefined;
  private refetchCertificate = false;
  private startWaiter: { resolve: () => void; reject: (e: RelayClientError) => void } | undefined;
  private startPromise: Promise<void> | undefined;
  private permitSecret: Buffer | undefined;
  private readonly adminRequests = new Map<string, { resolve: (changed: number) => void; reject: (e: RelayClientError) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly options: RelayClientOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new RelayClientError('bad_options', `url "${options.url}" is not a URL`);
    }
    if (url.protocol !== 'wss:') throw new RelayClientError('bad_options', `url must start with wss:// (got ${url.protocol}//)`);
    try {
      this.relayId = pinToRelayId(options.pin);
    } catch (err) {
      throw new RelayClientError('bad_options', (err as Error).message);
    }
    if (options.identity.publicKey.length !== 32 || options.identity.secretKey.length !== 64) {
      throw new RelayClientError('bad_options', 'identity must be an Ed25519 key pair (32-byte public, 64-byte secret key)');
    }
    if (options.joinPermitSecret !== undefined && options.joinPermitSecret.length !== PERMIT_SECRET_BYTES) {
      throw new RelayClientError('bad_options', `joinPermitSecret must be ${PERMIT_SECRET_BYTES} bytes`);
    }
    this.permitSecret = options.joinPermitSecret;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    this.target = { host, port: url.port ? Number(url.port) : 443, servername: net.isIP(host) ? undefined : host };
    this.minMs = options.reconnect?.minMs ?? 500;
    this.maxMs = Math.max(this.minMs, options.reconnect?.maxMs ?? 30_000);
    if (options.ca !== undefined) {
      if (!constantTimeEqual(spkiSha256(options.ca), this.relayId)) {
        throw new RelayClientError('pin_mismatch', `the given ca certificate has pin ${spkiPin(options.ca)}, expected ${options.pin}`);
      }
      this.trustedCa = options.ca;
    }
  }

  /** True while logged in to the relay. */
  get connected(): boolean {
    return this.authenticated;
  }

  on(event: 'connected' | 'disconnected', fn: () => void): void {
    this.events.on(event, fn);
  }

  /**
   * Connect and log in. Resolves after the first successful login; from then on the client reconnects by itself.
   * Rejects when the first attempts meet something retrying cannot fix (pin_mismatch, relay_id_mismatch,
   * auth_failed, replaced, permit_refused) or when close() is called; an unreachable relay, and a relay that does
   * not admit this key yet (not_admitted), are retried until they let it in.
   */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new RelayClientError('closed', 'the client was closed'));
    if (this.authenticated) return Promise.resolve();
    if (this.startPromise && this.startWaiter) return this.startPromise;
    this.stopReconnecting = false;
    this.startPromise = new Promise<void>((resolve, reject) => {
      this.startWaiter = { resolve, reject };
      if (!this.ws && !this.timer) void this.connect();
    });
    return this.startPromise;
  }

  /** Hand one sealed envelope to the relay. Resolves once written to the socket; the relay's verdict, if it
   *  refuses, arrives later through onRelayError. */
  send(wire: Buffer): Promise<void> {
    if (wire.length > MAX_ENVELOPE_BYTES) {
      return Promise.reject(new RelayClientError('too_large', `envelope of ${wire.length} bytes; the limit is ${MAX_ENVELOPE_BYTES}`));
    }
    const ws = this.ws;
    if (!this.authenticated || !ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RelayClientError('relay_unavailable', 'not connected to the relay'));
    }
    return new Promise<void>((resolve, reject) => {
      ws.send(encodeEnvelopeFrame(wire), (err) => (err ? reject(new RelayClientError('relay_unavailable', `send failed: ${err.message}`)) : resolve()));
    });
  }

  /**
   * As an admin key of the relay: let `keys` (Ed25519 public keys, 32 bytes each) log in. Resolves with how many
   * were not already allowed by this admin, once the relay has written them to disk; rejects with `admin_refused`
   * (relayCode `not_admin`, `allowlist_full`) or `relay_unavailable`. Idempotent: allowing a key twice changes nothing.
   *
   * @example await desktop.allow([agentSignPublicKey]);
   */
  allow(keys: Buffer[]): Promise<number> {
    return this.keyListRequest('allow', keys);
  }

  /** As an admin key: this admin no longer allows `keys`; a key nobody allows any more is logged out. Resolves with
   *  how many keys this admin had allowed. */
  deny(keys: Buffer[]): Promise<number> {
    return this.keyListRequest('deny', keys);
  }

  /**
   * As an admin key: register a join permit, SHA-256 of the secret a joining client will present
   * (permitHash(derivePermitSecret(joinSecret))), valid until `expiresAt` (Unix ms, at most 7 days ahead).
   * Rejects with `admin_refused` (relayCode `not_admin`, `permit_invalid`, `permits_full`).
   */
  async registerPermit(permitHash: Buffer, expiresAt: number): Promise<void> {
    if (permitHash.length !== PERMIT_HASH_BYTES) throw new RelayClientError('bad_options', `a permit hash is ${PERMIT_HASH_BYTES} bytes`);
    await this.adminRequest((requestId) => encodePermitFrame({ requestId, permitHash, expiresAt }));
  }

  private async keyListRequest(type: 'allow' | 'deny', keys: Buffer[]): Promise<number> {
    if (keys.some((k) => k.length !== 32)) throw new RelayClientError('bad_options', 'keys must be 32-byte Ed25519 public keys');
    let changed = 0;
    for (let i = 0; i < keys.length; i += MAX_KEYS_PER_ADMIN_FRAME) {
      const chunk = keys.slice(i, i + MAX_KEYS_PER_ADMIN_FRAME);
      changed += await this.adminRequest((requestId) => encodeKeyListFrame({ type, requestId, keys: chunk }));
    }
    return changed;
  }

  private adminRequest(frame: (requestId: Buffer) => Buffer): Promise<number> {
    const ws = this.ws;
    if (!this.authenticated || !ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RelayClientError('relay_unavailable', 'not connected to the relay'));
    }
    const requestId = randomBytes(REQUEST_ID_BYTES);
    const id = requestId.toString('hex');
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.adminRequests.delete(id);
        reject(new RelayClientError('relay_unavailable', 'the relay did not answer the admin request in time'));
      }, this.options.adminTimeoutMs ?? 10_000);
      this.adminRequests.set(id, { resolve, reject, timer });
      ws.send(frame(requestId), (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.adminRequests.delete(id);
        reject(new RelayClientError('relay_unavailable', `send failed: ${err.message}`));
      });
    });
  }

  private failAdminRequests(): void {
    for (const [id, r] of this.adminRequests) {
      clearTimeout(r.timer);
      r.reject(new RelayClientError('relay_unavailable', 'the connection to the relay closed before it answered'));
      this.adminRequests.delete(id);
    }
  }

  /** Disconnect and stop reconnecting. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.settleStart(new RelayClientError('closed', 'the client was closed'));
    const ws = this.ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, 'client_closed');
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2000).unref();
    });
  }

  // ------------------------------------------------------------------------------------------- internals

  private log(event: Record<string, unknown>): void {
    this.options.log?.({ component: 'relay-client', ...event });
  }

  private settleStart(result: RelayClientError | null): void {
    const waiter = this.startWaiter;
    if (!waiter) return;
    this.startWaiter = undefined;
    if (result) waiter.reject(result);
    else waiter.resolve();
  }

  /**
   * Fetch the relay's certificate in a handshake that sends no application data. Node (rejectUnauthorized left
   * true) refuses a self-signed chain and destroys the socket right after the handshake, but the certificate is
   * readable in the 'secure' event that precedes that check. Nothing from this socket is trusted: the caller
   * compares the certificate's SPKI hash with the pin before using it as a CA.
   */
  private fetchCertificate(): Promise<{ der: Buffer; systemTrusted: boolean }> {
    return new Promise((resolve, reject) => {
      let der: Buffer | undefined;
      const socket = tls.connect({ host: this.target.host, port: this.target.port, servername: this.target.servername });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RelayClientError('relay_unavailable', 'TLS handshake timed out'));
      }, this.options.connectTimeoutMs ?? 10_000);
      socket.prependListener('secure', () => {
        const raw = socket.getPeerCertificate(true)?.raw;
        if (raw) der = Buffer.from(raw);
      });
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.destroy();
        if (der) resolve({ der, systemTrusted: true });
        else reject(new RelayClientError('relay_unavailable', 'the relay presented no certificate'));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        if (der) resolve({ der, systemTrusted: false });
        else reject(new RelayClientError('relay_unavailable', `cannot reach ${this.target.host}:${this.target.port}: ${err.code ?? err.message}`));
      });
    });
  }

  private pinMismatch(seenDer: Buffer): RelayClientError {
    const seen = spkiPin(seenDer);
    this.log({ event: 'relay_pin_mismatch', level: 'error', expected: this.options.pin, seen, hint: 'the relay certificate changed, or this is not your relay; re-pin only if the relay operator confirms the new pin' });
    return new RelayClientError('pin_mismatch', `relay certificate pin ${seen} does not match the pinned ${this.options.pin}`);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    this.timer = undefined;
    try {
      if (this.trustedCa === undefined) {
        const { der, systemTrusted } = await this.fetchCertificate();
        if (!constantTimeEqual(spkiSha256(der), this.relayId)) throw this.pinMismatch(der);
        this.trustedCa = systemTrusted ? null : certificatePem(der);
      }
      if (this.closed) return;
      await this.openAndLogin();
    } catch (err) {
      const e = err instanceof RelayClientError ? err : new RelayClientError('relay_unavailable', (err as Error).message);
      this.onAttemptFailed(e);
    }
  }

  private onAttemptFailed(e: RelayClientError): void {
    this.ws = null;
    // A pin mismatch may mean the relay got a new certificate: fetch it again next time rather than trust a cache.
    if ((e.code === 'pin_mismatch' || this.refetchCertificate) && this.options.ca === undefined) this.trustedCa = undefined;
    this.refetchCertificate = false;
    if (e.code === 'replaced') this.stopReconnecting = true;
    if (this.startWaiter && FATAL_AT_START.has(e.code)) {
      this.stopReconnecting = true;
      this.settleStart(e);
    }
    if (this.closed || this.stopReconnecting) {
      this.log({ event: 'relay_gave_up', level: 'error', code: e.code, message: e.message });
      return;
    }
    const delayMs = backoffDelay(this.attempt, this.minMs, this.maxMs);
    this.attempt += 1;
    this.log({ event: 'relay_reconnect_scheduled', level: 'warn', code: e.code, message: e.message, delayMs, attempt: this.attempt });
    this.timer = setTimeout(() => void this.connect(), delayMs);
  }

  /** One connection: TLS (pinned), WebSocket, CHALLENGE → AUTH → AUTH_OK. Resolves when the socket closes. */
  private openAndLogin(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const expected = this.relayId;
      const tlsOptions: tls.ConnectionOptions = {
        ...(this.trustedCa ? { ca: [this.trustedCa] } : {}),
        // Called for every full handshake. Resumed sessions skip it in Node, so the pin is checked again on the
        // socket in 'upgrade' below; ws does not offer sessions for resumption in the first place.
        checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => {
          if (!cert.raw || !constantTimeEqual(spkiSha256(Buffer.from(cert.raw)), expected)) {
            return Object.assign(new Error('relay certificate pin mismatch'), { code: 'ERR_ORCH_PIN_MISMATCH', der: cert.raw });
          }
          return undefined;
        },
      };
      const ws = new WebSocket(this.options.url, {
        ...(tlsOptions as WebSocket.ClientOptions),
        maxPayload: MAX_FRAME_BYTES,
        perMessageDeflate: false,
        handshakeTimeout: this.options.connectTimeoutMs ?? 10_000,
      });
      this.ws = ws;
      let failure: RelayClientError | undefined;
      let loginTimer: NodeJS.Timeout | undefined = setTimeout(() => {
        failure ??= new RelayClientError('relay_unavailable', 'login did not finish in time');
        ws.terminate();
      }, this.options.connectTimeoutMs ?? 10_000);
      let sawChallenge = false;

      ws.on('upgrade', (res) => {
        const socket = res.socket as tls.TLSSocket;
        const raw = socket.getPeerCertificate?.(true)?.raw;
        if (!raw || !constantTimeEqual(spkiSha256(Buffer.from(raw)), expected)) {
          failure = raw ? this.pinMismatch(Buffer.from(raw)) : new RelayClientError('pin_mismatch', 'no peer certificate on the socket');
          ws.terminate();
        }
      });

      ws.on('message', (data, isBinary) => {
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
        if (!isBinary) {
          failure ??= new RelayClientError('protocol_error', 'text frame from the relay');
          ws.terminate();
          return;
        }
        if (!sawChallenge) {
          sawChallenge = true;
          const c = readChallenge(buf, expected);
          if (!c.ok) {
            // The relay may refuse a connection before any challenge (too many connections): an ERROR frame first.
            const first = decodeFrame(buf);
            if (first.ok && first.frame.type === 'error') {
              failure = new RelayClientError(LOGIN_REFUSALS[first.frame.code] ?? 'protocol_error', `relay refused the connection: ${first.frame.code}`);
              return; // the relay closes the socket next
            }
            failure = new RelayClientError(c.reason === 'relay_id_mismatch' ? 'relay_id_mismatch' : 'protocol_error', `bad challenge: ${c.reason}`);
            this.log({ event: 'relay_challenge_refused', level: 'error', reason: c.reason });
            ws.terminate();
            return;
          }
          const answer = { challenge: c.challenge, relayId: expected, identity: this.options.identity, clientTime: Date.now() };
          ws.send(this.permitSecret ? answerChallengeWithPermit({ ...answer, permitSecret: this.permitSecret }) : answerChallenge(answer));
          return;
        }
        const decoded = decodeFrame(buf);
        if (!decoded.ok) {
          this.log({ event: 'relay_frame_refused', level: 'warn', reason: decoded.reason, bytes: buf.length });
          return;
        }
        const frame = decoded.frame;
        if (!this.authenticated) {
          if (frame.type === 'authOk' && constantTimeEqual(frame.clientKey, this.options.identity.publicKey)) {
            clearTimeout(loginTimer);
            loginTimer = undefined;
            this.authenticated = true;
            this.attempt = 0;
            this.permitSecret = undefined; // spent: later logins are plain AUTH
            this.log({ event: 'relay_connected', level: 'info', url: this.options.url, queued: frame.queued });
            this.settleStart(null);
            this.events.emit('connected');
            return;
          }
          if (frame.type === 'error') {
            failure = new RelayClientError(LOGIN_REFUSALS[frame.code] ?? 'protocol_error', `relay refused the login: ${frame.code}`);
            if (frame.code === 'not_admitted') {
              this.log({ event: 'relay_not_admitted', level: 'warn', hint: "the relay does not admit this key yet: its admin (the desktop) registers it when it enrolls this agent; retrying" });
            }
            return; // the relay closes the socket next
          }
          failure = new RelayClientError('protocol_error', `unexpected ${frame.type} frame before AUTH_OK`);
          ws.terminate();
          return;
        }
        if (frame.type === 'envelope') {
          this.options.onEnvelope(frame.wire);
        } else if (frame.type === 'adminOk') {
          const id = frame.requestId.toString('hex');
          const r = this.adminRequests.get(id);
          if (r) {
            clearTimeout(r.timer);
            this.adminRequests.delete(id);
            r.resolve(frame.changed);
          }
        } else if (frame.type === 'error' && frame.ref !== undefined && this.adminRequests.has(frame.ref)) {
          const r = this.adminRequests.get(frame.ref)!;
          clearTimeout(r.timer);
          this.adminRequests.delete(frame.ref);
          r.reject(new RelayClientError('admin_refused', `the relay refused the admin request: ${frame.code}`, frame.code));
        } else if (frame.type === 'error') {
          if (frame.code === 'replaced') failure = new RelayClientError('replaced', 'another connection logged in with this key');
          if (frame.code === 'not_admitted') failure = new RelayClientError('not_admitted', 'the relay no longer admits this key');
          this.log({ event: 'relay_error_frame', level: 'warn', code: frame.code, ref: frame.ref });
          if (frame.ref !== undefined) this.options.onRelayError?.({ code: frame.code, ref: frame.ref });
          else this.options.onRelayError?.({ code: frame.code });
        } else {
          this.log({ event: 'relay_frame_refused', level: 'warn', reason: 'unexpected_frame', type: frame.type });
        }
      });

      ws.on('error', (err: Error & { code?: string; der?: Buffer }) => {
        if (err.code === 'ERR_ORCH_PIN_MISMATCH') {
          failure ??= err.der ? this.pinMismatch(Buffer.from(err.der)) : new RelayClientError('pin_mismatch', err.message);
        } else {
          // A certificate that does not chain to the one we pinned (the relay's certificate changed, or something
          // else answers on its address): fetch and compare it on the next attempt, so the log says which pin
          // was seen instead of a bare TLS error, forever.
          if (err.code !== undefined && CERTIFICATE_ERROR.test(err.code)) this.refetchCertificate = true;
          failure ??= new RelayClientError('relay_unavailable', `${err.code ?? 'error'}: ${err.message}`);
        }
      });

      ws.on('close', (code, reasonBuf) => {
        clearTimeout(loginTimer);
        const wasConnected = this.authenticated;
        this.authenticated = false;
        this.failAdminRequests();
        if (this.ws === ws) this.ws = null;
        const reason = reasonBuf.toString('latin1').slice(0, 64);
        if (code === CloseCode.replaced) failure ??= new RelayClientError('replaced', 'another connection logged in with this key');
        if (code === CloseCode.authFailed) failure ??= new RelayClientError('auth_failed', 'the relay refused the login');
        if (code === CloseCode.notAdmitted) failure ??= new RelayClientError('not_admitted', 'the relay does not admit this key');
        if (code === CloseCode.permitRefused) failure ??= new RelayClientError('permit_refused', 'the relay refused the join permit');
        if (wasConnected) {
          this.log({ event: 'relay_disconnected', level: 'warn', code, reason });
          this.events.emit('disconnected');
        }
        if (this.closed) return resolve();
        reject(failure ?? new RelayClientError('relay_unavailable', `connection closed (${code}${reason ? ` ${reason}` : ''})`));
      });
    });
  }
}
