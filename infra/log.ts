/**
 * Orch's one logger: pino, JSON lines, one `component` field on every line (worker, temporal-sdk, relay,
 * relay-transport, codec-server, cli), the level from ORCH_LOG_LEVEL (default info). Logs carry metadata only:
 * names, fingerprints, sizes, reasons; never a payload, a plaintext or a key.
 *
 * A line looks like {"level":"warn","ts":"2026-12-01T23:59:59.000Z","component":"relay-transport","event":"envelope_rejected","reason":"bad_signature",...}.
 *
 * @example
 * const log = createLogger({ component: 'relay-transport', file: logFile(home, 'relay-client.log') });
 * log.warn({ event: 'envelope_rejected', reason: 'replay', from: 'ab12cd34' });
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LogLevel as TemporalLogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import pino, { type DestinationStream, type Level, type Logger } from 'pino';
import { ensurePrivateDir } from './paths';
import { Env, logLevelSetting, processEnv, setting, type Environment, type LogLevelName } from './settings';

export type { Logger };

/** Where a logger writes: a file it appends to (mode 0600), a stream, or stderr when neither is given. */
export interface LoggerOptions {
  component: string;
  /** Default: ORCH_LOG_LEVEL (info when unset). */
  level?: LogLevelName;
  /** A JSON-lines file, appended to; its folder is made private (0700). */
  file?: string;
  /** Any writable (a test's memory stream, process.stdout). */
  destination?: DestinationStream;
  /** Also copy lines of this level and above to stderr (the terminal of `orch up`). */
  alsoToStderr?: Level;
  env?: Environment;
}

/** `<home>/logs/<name>`: where `orch up` keeps its logs. */
export function logFile(home: string, name: string): string {
  return path.join(home, 'logs', name);
}

function fileStream(file: string): DestinationStream {
  ensurePrivateDir(path.dirname(file));
  // Synchronous appends: a crash or process.exit loses no line, and the volumes here are small.
  const fd = fs.openSync(file, 'a', 0o600);
  return pino.destination({ fd, sync: true });
}

/** A pino logger with Orch's line shape: `level` as a word, `ts` as ISO time, `component` from the options. */
export function createLogger(opts: LoggerOptions): Logger {
  const level = opts.level ?? logLevelSetting(opts.env ?? processEnv());
  const main: DestinationStream = opts.destination ?? (opts.file ? fileStream(opts.file) : pino.destination({ fd: 2, sync: true }));
  let stream = main;
  let loggerLevel: LogLevelName = level;
  if (opts.alsoToStderr && (opts.destination || opts.file)) {
    const streams: pino.StreamEntry[] = [{ level: opts.alsoToStderr, stream: pino.destination({ fd: 2, sync: true }) }];
    if (level !== 'silent') streams.push({ level, stream: main });
    stream = pino.multistream(streams);
    if (level === 'silent' || pino.levels.values[opts.alsoToStderr]! < pino.levels.values[level]!) loggerLevel = opts.alsoToStderr;
  }
  const root = pino(
    {
      level: loggerLevel,
      base: null,
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
  return componentChild(root, opts.component);
}

/** The loggers' roots, so another component's logger on the same output has one `component` field, not two. */
const roots = new WeakMap<Logger, Logger>();

function componentChild(root: Logger, component: string): Logger {
  const child = root.child({ component });
  roots.set(child, root);
  return child;
}

/** A logger writing where `logger` writes, at its level, for another component. */
export function forComponent(logger: Logger, component: string): Logger {
  return componentChild(roots.get(logger) ?? logger, component);
}

/**
 * The logger for the diagnostics of a command a person runs (`orch ...`): JSON lines on stderr, at ORCH_LOG_LEVEL when
 * it is set and at warn otherwise, so a command's normal output is not interleaved with routine events.
 */
export function diagnosticLogger(component: string, env: Environment = processEnv()): Logger {
  return createLogger({ component, level: setting(Env.logLevel, env) === undefined ? 'warn' : logLevelSetting(env), env });
}

/** A record with an optional `level` and `component` (the shape the relay client and the transport emit). */
export type LogEvent = Record<string, unknown>;

const LEVEL_NAMES = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/**
 * The `(event) => void` callback the relay client, the desktop's relay transport and the codec server take, writing
 * into `logger`: the record's `level` (default info) picks the level, its `component` (if any) replaces the logger's.
 */
export function eventSink(logger: Logger): (event: LogEvent) => void {
  return (event) => {
    const { level, component, ...fields } = event;
    delete fields.ts; // the logger stamps its own
    const lvl = typeof level === 'string' && LEVEL_NAMES.has(level) ? (level as Level) : 'info';
    const target = typeof component === 'string' ? forComponent(logger, component) : logger;
    target[lvl](fields);
  };
}

const TEMPORAL_TO_PINO: Record<TemporalLogLevel, Level> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/** ORCH_LOG_LEVEL as the Temporal SDK's level names (for the core's log filter). */
export function temporalLevel(level: LogLevelName): TemporalLogLevel {
  if (level === 'silent' || level === 'fatal') return 'ERROR';
  return level.toUpperCase() as TemporalLogLevel;
}

/**
 * The Temporal SDK's Logger interface over pino, for `Runtime.install({ logger })`: the SDK's lines (and the core's,
 * when forwarded) become JSON lines of `logger`, with the SDK's metadata (sdkComponent, taskQueue, workflowId...)
 * as fields and its message as `msg`.
 */
export function temporalLogger(logger: Logger): TemporalLogger {
  const write = (level: TemporalLogLevel, message: string, meta?: LogMetadata) => {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(meta ?? {})) {
      // Orch's own fields keep their meaning; an Error (a failed task) as its name and message.
      const key = k === 'level' || k === 'component' || k === 'ts' || k === 'msg' ? `sdk_${k}` : k;
      fields[key] = v instanceof Error ? `${v.name}: ${v.message}` : v;
    }
    logger[TEMPORAL_TO_PINO[level]](fields, message);
  };
  return {
    log: write,
    trace: (m, meta) => write('TRACE', m, meta),
    debug: (m, meta) => write('DEBUG', m, meta),
    info: (m, meta) => write('INFO', m, meta),
    warn: (m, meta) => write('WARN', m, meta),
    error: (m, meta) => write('ERROR', m, meta),
  };
}
