/**
 * Structured logs: one JSON object per line. Metadata only (key fingerprints, sizes, types, reasons); the relay
 * never has a body to log, and nothing here accepts one.
 */
import { createHash } from 'node:crypto';
import pino from 'pino';
import { createLogger, type Logger } from '../infra/log';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | undefined | null>;
export type RelayLog = (level: LogLevel, event: string, fields?: LogFields) => void;

/** Short, stable name for a public key in logs: the first 16 hex digits of SHA-256 over the key bytes. */
export function keyFingerprint(keyHex: string): string {
  return createHash('sha256').update(Buffer.from(keyHex, 'hex')).digest('hex').slice(0, 16);
}

/**
 * The relay's log over Orch's one logger (infra/log.ts: pino, JSON lines, `component: "relay"`, the level from
 * ORCH_LOG_LEVEL): stdout by default, where `orch-relay start` and its systemd unit or container collect it.
 */
export function jsonLineLog(logger: Logger = createLogger({ component: 'relay', destination: pino.destination({ fd: 1, sync: true }) })): RelayLog {
  return (level, event, fields = {}) => logger[level]({ event, ...fields });
}

/**
 * Limits how many lines one event name may write per second, so a client sending garbage in a loop cannot turn
 * the log into the flood. Counters still count every occurrence; the log says how many lines it skipped.
 */
export function throttledLog(inner: RelayLog, perEventPerSecond = 20): RelayLog {
  const windows = new Map<string, { second: number; n: number; skipped: number }>();
  return (level, event, fields) => {
    const second = Math.floor(Date.now() / 1000);
    let w = windows.get(event);
    if (!w || w.second !== second) {
      if (w && w.skipped > 0) inner('warn', 'log_lines_skipped', { skippedEvent: event, skipped: w.skipped });
      w = { second, n: 0, skipped: 0 };
      windows.set(event, w);
    }
    if (w.n >= perEventPerSecond) {
      w.skipped += 1;
      return;
    }
    w.n += 1;
    inner(level, event, fields);
  };
}
