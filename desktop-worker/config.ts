/**
 * Orch's configuration: one typed module reads the environment and files, validates at start-up, and fails with
 * a message that names the setting and how to fix it. Every environment variable Orch reads is listed here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadClientConnectConfig, type ClientConnectConfig } from '@temporalio/envconfig';
import { OrchError } from '../protocol/errors';
import { DEFAULT_PRICES, priceTableProblems, type PriceTable } from '../workflows/prices';
import { DEFAULT_TASK_QUEUE } from '../workflows/shared';
import { orchHome } from '../infra/paths';

export const Env = {
  home: 'ORCH_HOME',
  taskQueue: 'ORCH_TASK_QUEUE',
  pricesFile: 'ORCH_PRICES_FILE',
  temporalPort: 'ORCH_TEMPORAL_PORT',
  temporalUiPort: 'ORCH_TEMPORAL_UI_PORT',
  workflowBundle: 'ORCH_WORKFLOW_BUNDLE',
  /** The port of the relay `orch up` runs for the local agent (default 7443). */
  relayPort: 'ORCH_RELAY_PORT',
  /**
   * The named relay (`orch relay list`) that `orch agent add` enrolls through when --relay is not given. Replaces
   * ORCH_RELAY_URL / ORCH_RELAY_PIN, which only `orch agent list --ping` read: relays are named and pinned now.
   */
  relay: 'ORCH_RELAY',
  /**
   * The tenants whose runs may resolve the worker's environment secrets (`API_KEY_*`, `SECRET_*`, `TOKEN_*`,
   * `PASSWORD_*`), comma-separated: they belong to those tenants only. Unset: every tenant (one worker, one tenant).
   */
  envSecretTenants: 'ORCH_ENV_SECRET_TENANTS',
  /** The Temporal SDK's log level for `orch up` (WARN by default). */
  logLevel: 'ORCH_LOG_LEVEL',
  /** Days the dev server `orch up` runs keeps closed runs (its namespace's retention); default 30. */
  retentionDays: 'ORCH_RETENTION_DAYS',
  anthropicKey: 'ANTHROPIC_API_KEY',
  anthropicBaseUrl: 'ANTHROPIC_BASE_URL',
  // Read by @temporalio/envconfig; any of them means "use that Temporal, start no dev server".
  temporalAddress: 'TEMPORAL_ADDRESS',
  temporalProfile: 'TEMPORAL_PROFILE',
  temporalConfigFile: 'TEMPORAL_CONFIG_FILE',
  temporalNamespace: 'TEMPORAL_NAMESPACE',
} as const;

/** One setting Orch reads from the environment: what `orch config` shows and the README's table lists. */
export interface SettingSpec {
  env: string;
  /** The default, in words (a path's default depends on the OS). */
  default: string;
  meaning: string;
  /** Its value is never printed (a key or a password). */
  secret?: boolean;
  /** Set by Orch itself for its own child processes, not by people: not in the README's table. */
  internal?: boolean;
  /** No longer read (Orch warns when it is set): not in `orch config`. */
  retired?: boolean;
}

/**
 * Every environment variable Orch reads, in one table. test/unit/config-table.test.ts keeps it, the source tree
 * (every `ORCH_*` name written in it) and the README's Configuration table in step.
 */
export const SETTINGS: readonly SettingSpec[] = [
  { env: 'ORCH_HOME', default: 'the OS app-data dir (~/.local/share/orch, ~/Library/Application Support/Orch, %APPDATA%\\Orch)', meaning: 'tenants, the dev server database, identity, logs' },
  { env: 'ORCH_CACHE_DIR', default: 'the OS cache dir (~/.cache/orch, ...)', meaning: 'the Temporal CLI build and the local agent build' },
  { env: 'ORCH_TEMPORAL_CLI', default: 'found or built (pinned 1.5.1)', meaning: 'an explicit temporal binary' },
  { env: 'ORCH_AGENT_BIN', default: 'built from agent/', meaning: 'an explicit orch-agent binary for orch up and the tests' },
  { env: 'ORCH_TEMPORAL_PORT', default: '7233', meaning: "the dev server's gRPC port (127.0.0.1)" },
  { env: 'ORCH_TEMPORAL_UI_PORT', default: 'the gRPC port + 1000 (8233)', meaning: "the dev server's UI port (127.0.0.1)" },
  { env: 'ORCH_TASK_QUEUE', default: 'orch', meaning: "the worker's task queue" },
  { env: 'ORCH_PRICES_FILE', default: '<ORCH_HOME>/prices.json', meaning: 'price overrides' },
  { env: 'ANTHROPIC_API_KEY', default: '(none)', meaning: 'Claude access for the worker', secret: true },
  { env: 'ANTHROPIC_BASE_URL', default: "Anthropic's API", meaning: 'another Messages API endpoint' },
  { env: 'ORCH_LOG_LEVEL', default: 'WARN', meaning: "the Temporal SDK's log level under orch up" },
  { env: 'ORCH_RETENTION_DAYS', default: String(30), meaning: 'how long the dev server keeps closed runs (1..3650)' },
  { env: 'ORCH_WORKFLOW_BUNDLE', default: '(bundled at start)', meaning: 'a prebundled workflow file, loaded only with its FILE.sig' },
  { env: 'ORCH_RELAY_PORT', default: '7443', meaning: 'the local relay orch up runs' },
  { env: 'ORCH_KEYRING_PASSWORD', default: '(asked)', meaning: "headless Linux: the password of Orch's own keyring", secret: true },
  { env: 'ORCH_KEYCHAIN_SERVICE', default: 'orch', meaning: 'the keychain service name the keys are stored under' },
  { env: 'ORCH_ENV_SECRET_TENANTS', default: 'every tenant', meaning: "the tenants whose runs may use the worker's environment secrets" },
  { env: 'ORCH_RELAY', default: '(none)', meaning: 'the named relay orch agent invite and add use without --relay' },
  { env: 'ORCH_AGENT_HOME', default: '/var/lib/orch-agent', meaning: "the agent's state directory (read by orch-agent)" },
  { env: 'ORCH_RELAY_DATA_DIR', default: 'the relay data dir under ORCH_HOME', meaning: "orch-relay's state (certificate, admitted keys)" },
  { env: 'ORCH_RELAY_ADMIN_KEYS', default: '(none)', meaning: "orch-relay's admin keys, comma-separated" },
  { env: 'ORCH_CLI_TSX', default: '0', meaning: '1: run the orch command from its TypeScript sources instead of the compiled CLI' },
  { env: 'ORCH_DEBUG', default: '(off)', meaning: 'print stack traces of unexpected errors' },
  { env: 'TEMPORAL_ADDRESS', default: '(a local dev server)', meaning: 'use that Temporal instead of a dev server (also TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE, TEMPORAL_NAMESPACE, ...)' },
  { env: 'TEMPORAL_PROFILE', default: '(none)', meaning: 'a Temporal client profile' },
  { env: 'TEMPORAL_CONFIG_FILE', default: '(none)', meaning: "Temporal's client configuration file" },
  { env: 'TEMPORAL_NAMESPACE', default: 'default', meaning: 'the namespace' },
  { env: 'ORCH_GO', default: 'go on PATH', meaning: 'the go binary npm run build:agent uses' },
  { env: 'ORCH_SESSION_KEYRING', default: '(unset)', meaning: 'set by orch up inside the keyring it starts', internal: true },
  { env: 'ORCH_CI_KEYRING', default: '(unset)', meaning: "set by infra/ci-keyring.sh inside the test suite's keyring", internal: true },
  { env: 'ORCH_RELAY_URL', default: '(not read)', meaning: 'retired: name relays with orch relay add', retired: true },
  { env: 'ORCH_RELAY_PIN', default: '(not read)', meaning: 'retired: name relays with orch relay add', retired: true },
  { env: 'ORCH_UP_PIDFILE', default: '(unset)', meaning: "set by orch up for its keyring's session script", internal: true },
];

/** One row of `orch config`: the effective value of a setting and where it came from. */
export interface EffectiveSetting {
  env: string;
  value: string;
  source: 'environment' | 'default';
  meaning: string;
}

/** Each public setting's value in `env` (secrets shown as set or not, never their value). */
export function effectiveSettings(env: NodeJS.ProcessEnv = process.env): EffectiveSetting[] {
  return SETTINGS.filter((s) => !s.internal && !s.retired).map((s) => {
    const raw = env[s.env];
    const set = raw !== undefined && raw !== '';
    const value = !set ? s.default : s.secret ? '(set, not shown)' : raw;
    return { env: s.env, value, source: set ? 'environment' : 'default', meaning: s.meaning };
  });
}

export class ConfigError extends OrchError {
  constructor(setting: string, message: string) {
    super('bad_config', `${setting}: ${message}`);
  }
}

export type TemporalTarget =
  | { kind: 'dev-server'; ip: string; port: number; uiPort: number; namespace: string }
  | { kind: 'external'; connect: ClientConnectConfig; namespace: string; description: string };

export interface OrchConfig {
  home: string;
  taskQueue: string;
  temporal: TemporalTarget;
  anthropic: { apiKey?: string; baseURL?: string };
  prices: PriceTable;
  pricesFile: string;
  workflowBundle?: string;
  relayPort: number;
  /** The dev server's retention of closed runs, in days (ORCH_RETENTION_DAYS, default 30). */
  retentionDays: number;
}

export const DEFAULT_RETENTION_DAYS = 30;

function retentionDays(env: NodeJS.ProcessEnv): number {
  const raw = env[Env.retentionDays];
  if (raw === undefined || raw === '') return DEFAULT_RETENTION_DAYS;
  const days = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || days < 1 || days > 3650) throw new ConfigError(Env.retentionDays, `"${raw}" is not a number of days from 1 to 3650`);
  return days;
}

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError(name, `"${raw}" is not a TCP port (1-65535)`);
  return n;
}

/** The default price table, extended or overridden by the operator's prices file when there is one. */
export function loadPrices(file: string): PriceTable {
  if (!fs.existsSync(file)) return DEFAULT_PRICES;
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(Env.pricesFile, `${file} is not valid JSON (${(err as Error).message})`);
  }
  const problems = priceTableProblems(parsed);
  if (problems.length) throw new ConfigError(Env.pricesFile, `${file}: ${problems.join('; ')}`);
  return { ...DEFAULT_PRICES, ...(parsed as PriceTable) };
}

export function loadTemporalTarget(env: NodeJS.ProcessEnv = process.env): TemporalTarget {
  const external = env[Env.temporalAddress] || env[Env.temporalProfile] || env[Env.temporalConfigFile];
  if (!external) {
    const p = port(env, Env.temporalPort, 7233);
    return { kind: 'dev-server', ip: '127.0.0.1', port: p, uiPort: port(env, Env.temporalUiPort, p + 1000), namespace: 'default' };
  }
  let connect: ClientConnectConfig;
  try {
    connect = loadClientConnectConfig({ profile: env[Env.temporalProfile] || undefined, overrideEnvVars: env as Record<string, string> });
  } catch (err) {
    throw new ConfigError('TEMPORAL_* / profile', `could not load the Temporal client configuration: ${(err as Error).message}`);
  }
  const namespace = connect.namespace ?? 'default';
  const address = connect.connectionOptions.address ?? '127.0.0.1:7233';
  return { kind: 'external', connect, namespace, description: `${address} (namespace ${namespace})` };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): OrchConfig {
  // A relative ORCH_HOME is taken from the current directory (orchHome resolves it).
  const home = orchHome(env);
  const taskQueue = env[Env.taskQueue] || DEFAULT_TASK_QUEUE;
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(taskQueue)) throw new ConfigError(Env.taskQueue, `"${taskQueue}" is not a valid task queue name`);
  const pricesFile = env[Env.pricesFile] || path.join(home, 'prices.json');
  const bundle = env[Env.workflowBundle];
  if (bundle && !fs.existsSync(bundle)) throw new ConfigError(Env.workflowBundle, `${bundle} does not exist (run \`npm run build\` or unset it)`);
  return {
    home,
    taskQueue,
    temporal: loadTemporalTarget(env),
    anthropic: { apiKey: env[Env.anthropicKey] || undefined, baseURL: env[Env.anthropicBaseUrl] || undefined },
    prices: loadPrices(pricesFile),
    pricesFile,
    workflowBundle: bundle || undefined,
    relayPort: port(env, Env.relayPort, 7443),
    retentionDays: retentionDays(env),
  };
}
