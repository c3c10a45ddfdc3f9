/**
 * The options of `orch-relay start` (and `orch relay start`, the same command under orch), on commander: one table
 * that gives both the parser and the generated help. Light on purpose: `orch --help` builds this command without
 * loading the relay itself (relay/main.ts, NestJS).
 */
import { Option, type Command } from 'commander';
import { Env } from '../infra/settings';
import { ADMIN_KEYS_FILE } from './admission';
import { DEFAULT_QUEUE } from './offline-queue';
import { DEFAULT_MAX_SEEN_KEYS } from './seen-keys';
import { DEFAULT_RATE, type RateConfig } from './token-bucket';

export const DEFAULT_RELAY_PORT = 7443;
export const DEFAULT_RELAY_HOST = '127.0.0.1';
export const DEFAULT_AUTH_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CONNECTIONS = 10_000;
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 64;
export const DEFAULT_IP_LOGIN_RATE: RateConfig = { perSecond: 1, burst: 30 };
export const DEFAULT_IDLE_TIMEOUT_MS = 90_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
/** Where /healthz and /metrics listen unless told: loopback, a free port (printed at start). */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:0';
/** Environment variable for the data directory when --data-dir is not given. */
export const RELAY_DATA_DIR_ENV = Env.relayDataDir;
/** Environment variable with admin keys (comma- or space-separated), added to --admin-key (for containers). */
export const RELAY_ADMIN_KEYS_ENV = Env.relayAdminKeys;

/** The option names (as on the command line, without "--"), with their value placeholder (none: a switch) and help. */
export const RELAY_START_OPTIONS: ReadonlyArray<{ name: string; value?: string; multiple?: true; help: string }> = [
  { name: 'host', value: 'HOST', help: `address to listen on (default ${DEFAULT_RELAY_HOST}; 0.0.0.0 for all)` },
  { name: 'port', value: 'PORT', help: `TCP port, 0 for any free one (default ${DEFAULT_RELAY_PORT})` },
  { name: 'data-dir', value: 'DIR', help: `certificate, key, admin keys, allowed keys, permits, known keys (default $${RELAY_DATA_DIR_ENV} or ~/.local/share/orch-relay)` },
  { name: 'cert', value: 'FILE', help: 'serve this PEM certificate (with --key) instead of the self-signed pair' },
  { name: 'key', value: 'FILE', help: 'the PEM private key of --cert' },
  { name: 'admin-key', value: 'HEX', multiple: true, help: `an admin (desktop) Ed25519 public key, 64 hex digits; repeat for several (also: $${RELAY_ADMIN_KEYS_ENV}, comma-separated)` },
  { name: 'open', help: 'admit any key (public relay); without it, only admitted keys and join permits' },
  { name: 'metrics-listen', value: 'HOST:PORT', help: `where /healthz and /metrics listen, plain HTTP (default ${DEFAULT_METRICS_LISTEN}: loopback, a free port, printed at start); "off" for none` },
  { name: 'max-connections', value: 'N', help: `open sockets in all (default ${DEFAULT_MAX_CONNECTIONS})` },
  { name: 'max-connections-per-ip', value: 'N', help: `sockets per address (IPv6: per /64) not bound to an admitted key (default ${DEFAULT_MAX_CONNECTIONS_PER_IP})` },
  { name: 'ip-login-rate', value: 'N', help: `logins per second per address by keys not admitted (default ${DEFAULT_IP_LOGIN_RATE.perSecond})` },
  { name: 'ip-login-burst', value: 'N', help: `token bucket size of that (default ${DEFAULT_IP_LOGIN_RATE.burst})` },
  { name: 'idle-timeout-seconds', value: 'N', help: `close a logged-in connection silent (no frame, no pong) this long (default ${DEFAULT_IDLE_TIMEOUT_MS / 1000})` },
  { name: 'max-buffered-bytes', value: 'N', help: `bytes waiting to be written to all sockets before new traffic gets relay_full (default ${DEFAULT_MAX_BUFFERED_BYTES})` },
  { name: 'rate-per-second', value: 'N', help: `envelopes per second per key (default ${DEFAULT_RATE.perSecond})` },
  { name: 'rate-burst', value: 'N', help: `token bucket size per key (default ${DEFAULT_RATE.burst})` },
  { name: 'queue-max-count', value: 'N', help: `envelopes held per offline recipient (default ${DEFAULT_QUEUE.maxCount})` },
  { name: 'queue-max-bytes', value: 'N', help: `bytes held per offline recipient (default ${DEFAULT_QUEUE.maxBytes})` },
  { name: 'queue-max-total-count', value: 'N', help: `envelopes held for all offline recipients (default ${DEFAULT_QUEUE.maxTotalCount})` },
  { name: 'queue-max-total-bytes', value: 'N', help: `bytes held for all offline recipients (default ${DEFAULT_QUEUE.maxTotalBytes})` },
  { name: 'queue-ttl-seconds', value: 'N', help: `how long a queued envelope waits (default ${DEFAULT_QUEUE.ttlMs / 1000})` },
  { name: 'max-seen-keys', value: 'N', help: `keys remembered as having logged in, admitted keys not counted (default ${DEFAULT_MAX_SEEN_KEYS})` },
  { name: 'auth-timeout-ms', value: 'N', help: `close connections that have not logged in by then (default ${DEFAULT_AUTH_TIMEOUT_MS})` },
];

export const RELAY_START_SUMMARY = 'run the Orch relay: routes sealed envelopes between desktops and agents over wss';

export const RELAY_START_HELP = `Without --cert/--key it makes a self-signed certificate in the data directory on first start and prints its
pin; give that pin to agents and desktops (--relay-pin).

Admission: by default only keys the operator allows may log in. Give each desktop's signing key (\`orch whoami\`)
as an admin key (--admin-key, or one per line in DATA_DIR/${ADMIN_KEYS_FILE}, mode 0600); a desktop then registers the
agents it enrolls with the relay itself, over its own connection. --open lets any key log in instead, within the
per-IP limits. GET /healthz and GET /metrics (Prometheus) are served on a separate plain-HTTP listener, never on
the public port.

Exit codes: 0 stopped by SIGINT/SIGTERM (or --help), 1 could not start, 2 bad arguments or settings.`;

/** What `start` was given, keyed by option name: strings, `true` for --open, a list for --admin-key. */
export type RelayStartValues = Partial<Record<string, string | boolean | string[]>>;

/** Adds the options of `start` to a commander command. */
export function addRelayStartOptions(cmd: Command): Command {
  for (const o of RELAY_START_OPTIONS) {
    const opt = new Option(`--${o.name}${o.value ? ` <${o.value}>` : ''}`, o.help);
    if (o.multiple) opt.argParser((v: string, previous: unknown) => [...((previous as string[] | undefined) ?? []), v]);
    cmd.addOption(opt);
  }
  return cmd;
}

/** The values commander parsed for `start`, keyed by option name (`data-dir`) as relay/main.ts reads them. */
export function relayStartValues(cmd: Command): RelayStartValues {
  const opts = cmd.opts();
  const values: RelayStartValues = {};
  for (const o of RELAY_START_OPTIONS) {
    const v = opts[o.name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] as string | boolean | string[] | undefined;
    if (v !== undefined) values[o.name] = v;
  }
  return values;
}
