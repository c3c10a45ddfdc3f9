/**
 * The relay's entry points: `startRelay` (in-process, used by tests and `orch relay start`) and `runRelayCli`
 * (`orch-relay start ...`). One HTTPS port serves the WebSocket protocol on /v1/relay plus /healthz and /metrics.
 */
import 'reflect-metadata';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:https';
import { parseArgs } from 'node:util';
import { NestFactory } from '@nestjs/core';
import type { LoggerService } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { WsAdapter } from '@nestjs/platform-ws';
import { RELAY_PATH } from '../protocol/relay-handshake';
import { CertificateError, loadOrCreateCertificate } from './certificate';
import { jsonLineLog, throttledLog, type LogFields, type LogLevel, type RelayLog } from './log';
import { DEFAULT_QUEUE, type QueueConfig } from './offline-queue';
import { RelayCore } from './relay-core';
import { RelayModule } from './relay.module';
import { SeenKeys } from './seen-keys';
import { DEFAULT_RATE, type RateConfig } from './token-bucket';

export const DEFAULT_RELAY_PORT = 7443;
export const DEFAULT_RELAY_HOST = '127.0.0.1';
export const DEFAULT_AUTH_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CONNECTIONS = 10_000;
/** Environment variable for the data directory when --data-dir is not given. */
export const RELAY_DATA_DIR_ENV = 'ORCH_RELAY_DATA_DIR';

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
  };
  const authTimeoutMs = positiveInteger('authTimeoutMs', opts.authTimeoutMs, DEFAULT_AUTH_TIMEOUT_MS);
  const maxConnections = positiveInteger('maxConnections', opts.maxConnections, DEFAULT_MAX_CONNECTIONS);
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new RelayConfigError('port', `must be 0-65535, got ${opts.port}`);

  const sink = opts.log;
  const baseLog: RelayLog = sink
    ? (level: LogLevel, event: string, fields: LogFields = {}) => sink({ ts: new Date().toISOString(), level, component: 'relay', event, ...fields })
    : jsonLineLog();
  const log = throttledLog(baseLog);

  const cert = await loadOrCreateCertificate({ dataDir: opts.dataDir, host: opts.host, certFile: opts.certFile, keyFile: opts.keyFile });
  if (cert.created) log('info', 'certificate_created', { certFile: cert.certFile, keyFile: cert.keyFile, pin: cert.pin });

  const seenKeys = new SeenKeys(opts.dataDir);
  const core = new RelayCore({ relayId: cert.relayId, rate, queue, authTimeoutMs, maxConnections, backpressureBytes: 8 * 1024 * 1024 }, seenKeys, log);
  let app: NestExpressApplication;
  try {
    app = await NestFactory.create<NestExpressApplication>(
      RelayModule.forRelay({ core, log, allowedOrigins: opts.allowedOrigins ?? [] }),
      { httpsOptions: { key: cert.keyPem, cert: cert.certPem }, logger: nestLogger(log), bodyParser: false, abortOnError: false },
    );
    app.disable('x-powered-by');
    app.useWebSocketAdapter(new WsAdapter(app, { messageParser: () => undefined as never }));
    await app.listen(opts.port, opts.host);
  } catch (err) {
    core.stop();
    throw err;
  }
  const server = app.getHttpServer() as Server;
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
    hint: `give clients --relay ${url} --relay-pin ${cert.pin}`,
  });

  let stopped: Promise<void> | undefined;
  return {
    url,
    pin: cert.pin,
    port,
    certPem: cert.certPem,
    stop: () =>
      (stopped ??= (async () => {
        core.stop();
        await app.close();
        log('info', 'relay_stopped', {});
      })()),
  };
}

// ------------------------------------------------------------------------------------------------ CLI

const USAGE = `Usage: orch-relay start [options]    (also: orch relay start [options])

Runs the Orch relay: routes sealed envelopes between desktops and agents over wss, on one HTTPS port that also
serves GET /healthz and GET /metrics. Without --cert/--key it makes a self-signed certificate in the data
directory on first start and prints its pin; give that pin to agents and desktops (--relay-pin).

Options:
  --host HOST                 address to listen on (default ${DEFAULT_RELAY_HOST}; 0.0.0.0 for all)
  --port PORT                 TCP port, 0 for any free one (default ${DEFAULT_RELAY_PORT})
  --data-dir DIR              certificate, key and known keys (default $${RELAY_DATA_DIR_ENV} or ~/.local/share/orch-relay)
  --cert FILE --key FILE      serve this PEM certificate and key instead of the self-signed pair
  --rate-per-second N         envelopes per second per key (default ${DEFAULT_RATE.perSecond})
  --rate-burst N              token bucket size per key (default ${DEFAULT_RATE.burst})
  --queue-max-count N         envelopes held per offline recipient (default ${DEFAULT_QUEUE.maxCount})
  --queue-max-bytes N         bytes held per offline recipient (default ${DEFAULT_QUEUE.maxBytes})
  --queue-ttl-seconds N       how long a queued envelope waits (default ${DEFAULT_QUEUE.ttlMs / 1000})
  --auth-timeout-ms N         close connections that have not logged in by then (default ${DEFAULT_AUTH_TIMEOUT_MS})
  -h, --help                  this text

Exit codes: 0 stopped by SIGINT/SIGTERM (or --help), 1 could not start, 2 bad arguments.`;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Resolves when the relay should stop; default: the first SIGINT or SIGTERM. */
  stopSignal?: Promise<void>;
}

const defaultIo: CliIo = { out: (l) => process.stdout.write(l + '\n'), err: (l) => process.stderr.write(l + '\n') };

function defaultDataDir(): string {
  const fromEnv = process.env[RELAY_DATA_DIR_ENV];
  if (fromEnv) return fromEnv;
  const base = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'orch-relay');
}

function cliNumber(name: string, raw: string | undefined, integer: boolean, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new RelayConfigError(`--${name}`, `"${raw}" is not ${integer ? 'an integer' : 'a number'} in ${min}..${max}`);
  }
  return n;
}

/**
 * `orch-relay start ...`. argv excludes the program name (process.argv.slice(2)); `orch relay start` passes what
 * follows `relay`. Resolves with the exit code once the relay has stopped.
 */
export async function runRelayCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        'rate-per-second': { type: 'string' },
        'rate-burst': { type: 'string' },
        'queue-max-count': { type: 'string' },
        'queue-max-bytes': { type: 'string' },
        'queue-ttl-seconds': { type: 'string' },
        'auth-timeout-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.err(`orch-relay: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] === 'help') {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'start') {
    io.err(`orch-relay: expected the command "start"${positionals.length ? `, got "${positionals.join(' ')}"` : ''}\n\n${USAGE}`);
    return 2;
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    io.err('orch-relay: --cert and --key go together (the certificate and its private key, both PEM)');
    return 2;
  }
  let options: StartRelayOptions;
  try {
    const ttlSeconds = cliNumber('queue-ttl-seconds', values['queue-ttl-seconds'], false, 0.001);
    options = {
      host: values.host ?? DEFAULT_RELAY_HOST,
      port: cliNumber('port', values.port, true, 0, 65535) ?? DEFAULT_RELAY_PORT,
      dataDir: path.resolve(values['data-dir'] ?? defaultDataDir()),
      certFile: values.cert,
      keyFile: values.key,
      rate: { perSecond: cliNumber('rate-per-second', values['rate-per-second'], false, 0.001), burst: cliNumber('rate-burst', values['rate-burst'], true, 1) },
      queue: {
        maxCount: cliNumber('queue-max-count', values['queue-max-count'], true, 1),
        maxBytes: cliNumber('queue-max-bytes', values['queue-max-bytes'], true, 1),
        ttlMs: ttlSeconds === undefined ? undefined : Math.max(1, Math.round(ttlSeconds * 1000)),
      },
      authTimeoutMs: cliNumber('auth-timeout-ms', values['auth-timeout-ms'], true, 1),
    };
    if (options.host.trim() === '') throw new RelayConfigError('--host', 'must not be empty');
  } catch (err) {
    io.err(`orch-relay: ${(err as Error).message}`);
    return 2;
  }

  let relay: RunningRelay;
  try {
    relay = await startRelay(options);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const what =
      err instanceof CertificateError
        ? `${err.message} (${err.code})`
        : e.code === 'EADDRINUSE'
          ? `port ${options.port} on ${options.host} is in use; pick another with --port`
          : e.code === 'EACCES'
            ? `not allowed to listen on ${options.host}:${options.port} (ports below 1024 need privileges); pick another with --port`
            : e.code === 'EADDRNOTAVAIL'
              ? `${options.host} is not an address of this machine; check --host`
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
