/**
 * The relay's entry points: `startRelay` (in-process, used by tests and `orch up`'s local stack) and `runRelayCli`
 * (`orch-relay start ...`, `orch relay start ...`). The public HTTPS port serves only the WebSocket protocol on
 * /v1/relay; /healthz and /metrics are on a separate plain-HTTP listener, 127.0.0.1 by default.
 */
import 'reflect-metadata';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:https';
import { Command, CommanderError } from 'commander';
import { NestFactory } from '@nestjs/core';
import type { LoggerService } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { WsAdapter } from '@nestjs/platform-ws';
import { RELAY_PATH } from '../protocol/relay-handshake';
import { listSetting, processEnv, setting } from '../infra/settings';
import { Admission, AdmissionConfigError, readAdminKeysFile, ADMIN_KEYS_FILE } from './admission';
import { CertificateError, loadOrCreateCertificate } from './certificate';
import { jsonLineLog, throttledLog, type LogFields, type LogLevel, type RelayLog } from './log';
import { DEFAULT_QUEUE, type QueueConfig } from './offline-queue';
import { RelayCore } from './relay-core';
import { MetricsModule, RelayModule } from './relay.module';
import { DEFAULT_MAX_SEEN_KEYS, SeenKeys } from './seen-keys';
import { DEFAULT_RATE, type RateConfig } from './token-bucket';
import {
  DEFAULT_AUTH_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_IP_LOGIN_RATE,
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  DEFAULT_METRICS_LISTEN,
  DEFAULT_RELAY_HOST,
  DEFAULT_RELAY_PORT,
  RELAY_ADMIN_KEYS_ENV,
  RELAY_DATA_DIR_ENV,
  RELAY_START_HELP,
  RELAY_START_SUMMARY,
  addRelayStartOptions,
  relayStartValues,
  type RelayStartValues,
} from './cli-options';

export const DEFAULT_BACKPRESSURE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_JOIN_MAX_ENVELOPES = 4;
export const DEFAULT_JOIN_SESSION_MS = 10 * 60_000;

export interface StartRelayOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** The operator's certificate and key (PEM); both or neither. Without them a self-signed pair in dataDir is used. */
  certFile?: string;
  keyFile?: string;
  dataDir: string;
  rate?: Partial<RateConfig>;
  queue?: Partial<QueueConfig>;
  authTimeoutMs?: number;
  /** Open sockets at most (default 10,000). */
  maxConnections?: number;
  /**
   * Who may log in. Given without `open: true`: admitted keys only, that is the admin keys (these plus the ones
   * in `<dataDir>/admin-keys`) and the keys they ALLOW, plus holders of a join permit; with no admin key at all the
   * relay refuses to start. With `open: true`, any key may log in, within the per-IP limits. Left out entirely:
   * open (logged as `admission_open`), for in-process embeddings and tests; pass it.
   */
  admission?: { adminKeys?: string[]; open?: boolean };
  /** Per source address (IPv6 by /64): sockets not bound to an admitted key (default 64), and a token bucket for
   *  logins by keys that are not admitted (default 1 per second, burst 30). */
  perIp?: { maxConnections?: number; loginRate?: Partial<RateConfig> };
  /** Close a logged-in connection with no frame and no pong for this long (default 90 s); pinged at a third of it. */
  idleTimeoutMs?: number;
  /** Bytes waiting to be written to all sockets together before new traffic is refused with relay_full (64 MiB). */
  maxBufferedBytes?: number;
  /** Bytes waiting to be written to one socket before traffic to it is refused with recipient_backpressure (8 MiB). */
  backpressureBytes?: number;
  /** Keys remembered as having logged in, besides admitted keys (which are never forgotten). Default 100,000. */
  maxSeenKeys?: number;
  /** Join-permit sessions: envelopes they may send (default 4) and how long they may stay (default 10 min). */
  join?: { maxEnvelopes?: number; maxSessionMs?: number };
  /** 'HOST:PORT' of the plain-HTTP listener for /healthz and /metrics (default '127.0.0.1:0'); null for none. */
  metricsListen?: string | null;
  /** Browser origins allowed to open the WebSocket; default none. */
  allowedOrigins?: string[];
  /** Receives every log record (metadata only). Default: JSON lines on stdout. */
  log?: (record: Record<string, unknown>) => void;
}

export interface RunningRelay {
  /** wss://HOST:PORT/v1/relay */
  url: string;
  pin: string;
  port: number;
  certPem: string;
  /** http://HOST:PORT of /healthz and /metrics, or null when not served. */
  metricsUrl: string | null;
  /**
   * For an embedding process that is itself the admin (`orch up`'s local stack): allow `keys` (hex) as `admin` would
   * with an ALLOW frame, without a connection. `admin` must be one of the relay's admin keys.
   */
  allowKeys(admin: string, keys: string[]): void;
  stop(): Promise<void>;
}

export class RelayConfigError extends Error {
  override readonly name = 'RelayConfigError';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
  }
}

function positiveInteger(setting: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new RelayConfigError(setting, `must be a positive integer, got ${value}`);
  return value;
}

function positiveNumber(setting: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RelayConfigError(setting, `must be a positive number, got ${value}`);
  return value;
}

/** 'HOST:PORT' or '[V6]:PORT' → parts; throws RelayConfigError. */
export function parseListen(setting: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new RelayConfigError(setting, `expected HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464), got "${value}"`);
  return { host: (m[1] ?? m[2])!, port };
}

function nestLogger(log: RelayLog): LoggerService {
  const write = (level: LogLevel) => (message: unknown, ...rest: unknown[]) => {
    // Nest passes an Error or a string plus a context name; only the text and the name are kept.
    const text = message instanceof Error ? `${message.name}: ${message.message}` : String(message);
    const context = rest.length ? String(rest[rest.length - 1]) : undefined;
    log(level, 'nest', { message: text.slice(0, 500), context });
  };
  return { log: write('info'), error: write('error'), warn: write('warn'), debug: write('debug'), verbose: write('debug') };
}

/**
 * Start a relay and resolve once it listens.
 *
 * @example
 * const relay = await startRelay({ host: '127.0.0.1', port: 0, dataDir: '/tmp/relay' });
 * console.log(relay.url, relay.pin); await relay.stop();
 */
export async function startRelay(opts: StartRelayOptions): Promise<RunningRelay> {
  const rate: RateConfig = {
    perSecond: positiveNumber('rate.perSecond', opts.rate?.perSecond, DEFAULT_RATE.perSecond),
    burst: positiveInteger('rate.burst', opts.rate?.burst, DEFAULT_RATE.burst),
  };
  const queue: QueueConfig = {
    maxCount: positiveInteger('queue.maxCount', opts.queue?.maxCount, DEFAULT_QUEUE.maxCount),
    maxBytes: positiveInteger('queue.maxBytes', opts.queue?.maxBytes, DEFAULT_QUEUE.maxBytes),
    ttlMs: positiveInteger('queue.ttlMs', opts.queue?.ttlMs, DEFAULT_QUEUE.ttlMs),
    maxTotalBytes: positiveInteger('queue.maxTotalBytes', opts.queue?.maxTotalBytes, DEFAULT_QUEUE.maxTotalBytes),
    maxTotalCount: positiveInteger('queue.maxTotalCount', opts.queue?.maxTotalCount, DEFAULT_QUEUE.maxTotalCount),
  };
  const authTimeoutMs = positiveInteger('authTimeoutMs', opts.authTimeoutMs, DEFAULT_AUTH_TIMEOUT_MS);
  const maxConnections = positiveInteger('maxConnections', opts.maxConnections, DEFAULT_MAX_CONNECTIONS);
  const perIp = {
    maxConnections: positiveInteger('perIp.maxConnections', opts.perIp?.maxConnections, DEFAULT_MAX_CONNECTIONS_PER_IP),
    loginRate: {
      perSecond: positiveNumber('perIp.loginRate.perSecond', opts.perIp?.loginRate?.perSecond, DEFAULT_IP_LOGIN_RATE.perSecond),
      burst: positiveInteger('perIp.loginRate.burst', opts.perIp?.loginRate?.burst, DEFAULT_IP_LOGIN_RATE.burst),
    },
  };
  const idleTimeoutMs = positiveInteger('idleTimeoutMs', opts.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS);
  const maxBufferedBytes = positiveInteger('maxBufferedBytes', opts.maxBufferedBytes, DEFAULT_MAX_BUFFERED_BYTES);
  const backpressureBytes = positiveInteger('backpressureBytes', opts.backpressureBytes, DEFAULT_BACKPRESSURE_BYTES);
  const maxSeenKeys = positiveInteger('maxSeenKeys', opts.maxSeenKeys, DEFAULT_MAX_SEEN_KEYS);
  const join = {
    maxEnvelopes: positiveInteger('join.maxEnvelopes', opts.join?.maxEnvelopes, DEFAULT_JOIN_MAX_ENVELOPES),
    maxSessionMs: positiveInteger('join.maxSessionMs', opts.join?.maxSessionMs, DEFAULT_JOIN_SESSION_MS),
  };
  const metricsListen = opts.metricsListen === null ? null : parseListen('metricsListen', opts.metricsListen ?? DEFAULT_METRICS_LISTEN);
  // No `admission` at all (an embedding that predates admission, or a test): open, said loudly in the log. Every
  // operator-facing entry point passes it: `orch-relay start` admits only admitted keys unless told --open.
  const open = opts.admission === undefined || opts.admission.open === true;
  let admission: Admission;
  try {
    admission = new Admission(opts.dataDir, [...(opts.admission?.adminKeys ?? []), ...readAdminKeysFile(opts.dataDir)]);
  } catch (err) {
    if (err instanceof AdmissionConfigError) throw new RelayConfigError('admission', err.message);
    throw err;
  }
  if (!open && admission.adminKeys.size === 0) {
    throw new RelayConfigError(
      'admission',
      `no admin key, so no key could ever be admitted: give the desktop's signing key (\`orch whoami\`) with --admin-key HEX or in ${path.join(opts.dataDir, ADMIN_KEYS_FILE)}, or choose --open (any key, per-IP limits)`,
    );
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new RelayConfigError('port', `must be 0-65535, got ${opts.port}`);

  const sink = opts.log;
  const baseLog: RelayLog = sink
    ? (level: LogLevel, event: string, fields: LogFields = {}) => sink({ ts: new Date().toISOString(), level, component: 'relay', event, ...fields })
    : jsonLineLog();
  const log = throttledLog(baseLog);

  const cert = await loadOrCreateCertificate({ dataDir: opts.dataDir, host: opts.host, certFile: opts.certFile, keyFile: opts.keyFile });
  if (cert.created) log('info', 'certificate_created', { certFile: cert.certFile, keyFile: cert.keyFile, pin: cert.pin });

  const seenKeys = new SeenKeys(opts.dataDir, maxSeenKeys, (key) => admission.isAdmitted(key));
  const core = new RelayCore(
    { relayId: cert.relayId, rate, queue, authTimeoutMs, maxConnections, backpressureBytes, open, perIp, idleTimeoutMs, maxBufferedBytes, join },
    seenKeys,
    admission,
    log,
  );
  let app: NestExpressApplication | undefined;
  let metricsApp: NestExpressApplication | undefined;
  try {
    app = await NestFactory.create<NestExpressApplication>(
      RelayModule.forRelay({ core, log, allowedOrigins: opts.allowedOrigins ?? [] }),
      { httpsOptions: { key: cert.keyPem, cert: cert.certPem }, logger: nestLogger(log), bodyParser: false, abortOnError: false },
    );
    app.disable('x-powered-by');
    app.useWebSocketAdapter(new WsAdapter(app, { messageParser: () => undefined as never }));
    await app.listen(opts.port, opts.host);
    if (metricsListen) {
      metricsApp = await NestFactory.create<NestExpressApplication>(MetricsModule.forRelay(core), { logger: nestLogger(log), bodyParser: false, abortOnError: false });
      metricsApp.disable('x-powered-by');
      await metricsApp.listen(metricsListen.port, metricsListen.host);
    }
  } catch (err) {
    core.stop();
    await app?.close().catch(() => {});
    throw err;
  }
  let metricsUrl: string | null = null;
  if (metricsApp) {
    const address = (metricsApp.getHttpServer() as Server).address() as AddressInfo;
    metricsUrl = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  }
  const server = app.getHttpServer() as Server;
  // Before the upgrade a socket is Node's, not the relay's: bound it too. The only request served is the WebSocket
  // upgrade, so its headers must come quickly, and sockets in all (upgraded or not) stay near maxConnections.
  server.headersTimeout = Math.min(server.headersTimeout, authTimeoutMs);
  server.requestTimeout = Math.min(server.requestTimeout || Infinity, authTimeoutMs + 5000);
  server.maxConnections = maxConnections + 256;
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = opts.host === '0.0.0.0' || opts.host === '::' ? os.hostname() : opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `wss://${hostForUrl}:${port}${RELAY_PATH}`;
  log('info', 'relay_started', {
    url,
    pin: cert.pin,
    certFile: cert.certFile,
    dataDir: opts.dataDir,
    ratePerSecond: rate.perSecond,
    rateBurst: rate.burst,
    queueMaxCount: queue.maxCount,
    queueMaxBytes: queue.maxBytes,
    queueTtlMs: queue.ttlMs,
    admission: open ? 'open' : 'admitted_keys',
    maxConnections,
    maxConnectionsPerIp: perIp.maxConnections,
    ipLoginRate: perIp.loginRate.perSecond,
    ipLoginBurst: perIp.loginRate.burst,
    idleTimeoutMs,
    maxBufferedBytes,
    queueMaxTotalBytes: queue.maxTotalBytes,
    queueMaxTotalCount: queue.maxTotalCount,
    adminKeys: admission.adminKeys.size,
    allowedKeys: admission.allowedKeys().length,
    metricsUrl,
    hint: `give clients --relay ${url} --relay-pin ${cert.pin}`,
  });
  if (open) log('warn', 'admission_open', { hint: 'any key may log in (--open); per-IP limits apply. Leave out --open and give --admin-key to admit only your keys' });

  let stopped: Promise<void> | undefined;
  return {
    url,
    pin: cert.pin,
    port,
    certPem: cert.certPem,
    metricsUrl,
    allowKeys: (admin, keys) => core.allow(admin, keys),
    stop: () =>
      (stopped ??= (async () => {
        core.stop();
        await app.close();
        await metricsApp?.close();
        log('info', 'relay_stopped', {});
      })()),
  };
}

// ------------------------------------------------------------------------------------------------ CLI

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Resolves when the relay should stop; default: the first SIGINT or SIGTERM. */
  stopSignal?: Promise<void>;
}

const defaultIo: CliIo = { out: (l) => process.stdout.write(l + '\n'), err: (l) => process.stderr.write(l + '\n') };

function defaultDataDir(): string {
  const fromEnv = setting(RELAY_DATA_DIR_ENV);
  if (fromEnv) return fromEnv;
  const base = processEnv().XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'orch-relay');
}

function adminKeyArg(setting: string, raw: string): string {
  const key = raw.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(key)) throw new RelayConfigError(setting, `expected an Ed25519 public key, 64 hex digits (\`orch whoami\` shows the desktop's), got "${raw.slice(0, 80)}"`);
  return key;
}

function cliNumber(name: string, raw: unknown, integer: boolean, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (raw === undefined) return undefined;
  const text = String(raw);
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new RelayConfigError(`--${name}`, `"${text}" is not ${integer ? 'an integer' : 'a number'} in ${min}..${max}`);
  }
  return n;
}

/** The `start` command on commander, its options from relay/cli-options.ts: `orch-relay start`, `orch relay start`. */
function relayProgram(io: CliIo, ran: { code: number }): { program: Command; start: Command } {
  // Help and mistakes through io; a mistake is thrown (ParseFailure), reported below as one line and the usage.
  const prepare = (cmd: Command) =>
    cmd
      .configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, '')), writeErr: (s) => io.err(s.replace(/\n$/, '')), outputError: () => {} })
      .configureHelp({ styleTitle: (s) => (s === 'Usage:' ? 'usage:' : s) })
      .showSuggestionAfterError(true)
      .exitOverride();
  const program = prepare(new Command('orch-relay')).description(RELAY_START_SUMMARY).usage('start [options]');
  const start = prepare(program.command('start')).summary(RELAY_START_SUMMARY).description(`${RELAY_START_SUMMARY} (also: orch relay start [options])`);
  addRelayStartOptions(start).addHelpText('after', `\n${RELAY_START_HELP}`);
  start.action(async () => {
    ran.code = await runRelayStart(relayStartValues(start), io);
  });
  return { program, start };
}

/**
 * `orch-relay start ...`. argv excludes the program name (process.argv.slice(2)). Resolves with the exit code once
 * the relay has stopped: 0 stopped (or --help), 1 could not start, 2 a usage mistake (one line saying what, one
 * with the usage).
 */
export async function runRelayCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const ran = { code: 0 };
  const { program } = relayProgram(io, ran);
  // The relay has one command: its help is the help of `orch-relay`.
  const args = argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') ? ['start', '--help'] : argv;
  try {
    await program.parseAsync(args, { from: 'user' });
    return ran.code;
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    const problem = err.code === 'commander.help' ? 'expects the command "start"' : err.message.replace(/^error: /, '').replace(/\n\(Did you mean (.*)\?\)$/, ' (did you mean $1?)').split('\n')[0];
    io.err(`orch-relay: ${problem}`);
    io.err('usage: orch-relay start [options]   (orch-relay start --help)');
    return 2;
  }
}

/**
 * Runs a relay with the options `start` was given (keyed by option name), until SIGINT or SIGTERM (io.stopSignal).
 * `orch relay start` calls it with the desktop's key added as an admin key.
 */
export async function runRelayStart(values: RelayStartValues, io: CliIo = defaultIo): Promise<number> {
  const str = (name: string): string | undefined => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  if ((str('cert') === undefined) !== (str('key') === undefined)) {
    io.err('orch-relay: --cert and --key go together (the certificate and its private key, both PEM)');
    return 2;
  }
  let options: StartRelayOptions;
  try {
    const ttlSeconds = cliNumber('queue-ttl-seconds', values['queue-ttl-seconds'], false, 0.001);
    const idleSeconds = cliNumber('idle-timeout-seconds', values['idle-timeout-seconds'], false, 0.001);
    const metricsListen = str('metrics-listen');
    const adminKeys = Array.isArray(values['admin-key']) ? values['admin-key'] : [];
    options = {
      host: str('host') ?? DEFAULT_RELAY_HOST,
      port: cliNumber('port', values.port, true, 0, 65535) ?? DEFAULT_RELAY_PORT,
      dataDir: path.resolve(str('data-dir') ?? defaultDataDir()),
      certFile: str('cert'),
      keyFile: str('key'),
      rate: { perSecond: cliNumber('rate-per-second', values['rate-per-second'], false, 0.001), burst: cliNumber('rate-burst', values['rate-burst'], true, 1) },
      queue: {
        maxCount: cliNumber('queue-max-count', values['queue-max-count'], true, 1),
        maxBytes: cliNumber('queue-max-bytes', values['queue-max-bytes'], true, 1),
        ttlMs: ttlSeconds === undefined ? undefined : Math.max(1, Math.round(ttlSeconds * 1000)),
        maxTotalCount: cliNumber('queue-max-total-count', values['queue-max-total-count'], true, 1),
        maxTotalBytes: cliNumber('queue-max-total-bytes', values['queue-max-total-bytes'], true, 1),
      },
      authTimeoutMs: cliNumber('auth-timeout-ms', values['auth-timeout-ms'], true, 1),
      admission: {
        adminKeys: [
          ...adminKeys.map((k) => adminKeyArg('--admin-key', k)),
          ...listSetting(RELAY_ADMIN_KEYS_ENV).map((k) => adminKeyArg(`$${RELAY_ADMIN_KEYS_ENV}`, k)),
        ],
        open: values.open === true,
      },
      metricsListen: metricsListen === 'off' ? null : metricsListen,
      maxConnections: cliNumber('max-connections', values['max-connections'], true, 1),
      perIp: {
        maxConnections: cliNumber('max-connections-per-ip', values['max-connections-per-ip'], true, 1),
        loginRate: { perSecond: cliNumber('ip-login-rate', values['ip-login-rate'], false, 0.001), burst: cliNumber('ip-login-burst', values['ip-login-burst'], true, 1) },
      },
      idleTimeoutMs: idleSeconds === undefined ? undefined : Math.max(1, Math.round(idleSeconds * 1000)),
      maxBufferedBytes: cliNumber('max-buffered-bytes', values['max-buffered-bytes'], true, 1),
      maxSeenKeys: cliNumber('max-seen-keys', values['max-seen-keys'], true, 1),
    };
    if (options.host.trim() === '') throw new RelayConfigError('--host', 'must not be empty');
    if (metricsListen !== undefined && metricsListen !== 'off') parseListen('--metrics-listen', metricsListen);
  } catch (err) {
    io.err(`orch-relay: ${(err as Error).message}`);
    return 2;
  }

  let relay: RunningRelay;
  try {
    relay = await startRelay(options);
  } catch (err) {
    if (err instanceof RelayConfigError) {
      io.err(`orch-relay: ${err.message}`);
      return 2;
    }
    const e = err as NodeJS.ErrnoException & { port?: number; address?: string };
    // A listen error names the port it was about: the public one (--port) or the metrics one (--metrics-listen).
    const metricsPort = e.port !== undefined && e.port !== options.port;
    const flag = metricsPort ? '--metrics-listen' : '--port';
    const where = metricsPort ? `${e.address}:${e.port}` : `${options.host}:${options.port}`;
    const what =
      err instanceof CertificateError
        ? `${err.message} (${err.code})`
        : e.code === 'EADDRINUSE'
          ? `${where} is in use; pick another with ${flag}`
          : e.code === 'EACCES'
            ? `not allowed to listen on ${where} (ports below 1024 need privileges); pick another with ${flag}`
            : e.code === 'EADDRNOTAVAIL'
              ? `${metricsPort ? e.address : options.host} is not an address of this machine; check ${metricsPort ? '--metrics-listen' : '--host'}`
              : (e.message ?? String(err));
    io.err(`orch-relay: could not start: ${what}`);
    return 1;
  }
  const stopSignal =
    io.stopSignal ??
    new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  await stopSignal;
  await relay.stop();
  return 0;
}
