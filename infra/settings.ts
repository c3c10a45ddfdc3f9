/**
 * Orch's settings: the one table of every environment variable Orch reads, and the one module that reads the
 * process environment. The desktop worker (desktop-worker/config.ts builds its typed configuration on it), the
 * relay and infra/ all import it; ESLint refuses `process.env` everywhere else (eslint.config.mjs).
 *
 * Code that takes an `env` parameter (tests hand in their own) defaults it to {@link processEnv}. The name
 * constants are derived from the table ({@link Env}), so no second list of names exists.
 *
 * @example
 * const queue = setting(Env.taskQueue) ?? 'orch';
 * const port = portSetting(Env.relayPort, 7443); // throws ConfigError naming ORCH_RELAY_PORT on "70000"
 */
import { OrchError } from '../protocol/errors';

/** One setting Orch reads from the environment: what `orch config` shows and the README's table lists. */
export interface SettingSpec {
  /** The name code uses for it: `Env.<key>`. */
  key: string;
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

/** The Temporal SDK log levels, and pino's: ORCH_LOG_LEVEL takes either spelling, in any case. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const DEFAULT_LOG_LEVEL: LogLevelName = 'info';
export const DEFAULT_RETENTION_DAYS = 30;

/**
 * Every environment variable Orch reads, in one table. test/unit/config-table.test.ts keeps it, the source tree
 * (no `ORCH_*` name is written anywhere else) and the README's Configuration table in step.
 */
const TABLE = [
  { key: 'home', env: 'ORCH_HOME', default: 'the OS app-data dir (~/.local/share/orch, ~/Library/Application Support/Orch, %APPDATA%\\Orch)', meaning: 'tenants, the dev server database, identity, logs' },
  { key: 'cacheDir', env: 'ORCH_CACHE_DIR', default: 'the OS cache dir (~/.cache/orch, ...)', meaning: "the Temporal CLI build, the local agent build and orch up's workflow bundle" },
  { key: 'temporalCli', env: 'ORCH_TEMPORAL_CLI', default: 'found or built (pinned 1.5.1)', meaning: 'an explicit temporal binary' },
  { key: 'agentBin', env: 'ORCH_AGENT_BIN', default: 'built from agent/', meaning: 'an explicit orch-agent binary for orch up and the tests' },
  { key: 'temporalPort', env: 'ORCH_TEMPORAL_PORT', default: '7233', meaning: "the dev server's gRPC port (127.0.0.1)" },
  { key: 'temporalUiPort', env: 'ORCH_TEMPORAL_UI_PORT', default: 'the gRPC port + 1000 (8233)', meaning: "the dev server's UI port (127.0.0.1)" },
  { key: 'taskQueue', env: 'ORCH_TASK_QUEUE', default: 'orch', meaning: "the worker's task queue" },
  { key: 'pricesFile', env: 'ORCH_PRICES_FILE', default: '<ORCH_HOME>/prices.json', meaning: 'price overrides' },
  { key: 'anthropicKey', env: 'ANTHROPIC_API_KEY', default: '(none)', meaning: 'Claude access for the worker', secret: true },
  { key: 'anthropicBaseUrl', env: 'ANTHROPIC_BASE_URL', default: "Anthropic's API", meaning: 'another Messages API endpoint' },
  { key: 'logLevel', env: 'ORCH_LOG_LEVEL', default: DEFAULT_LOG_LEVEL, meaning: 'the level of the JSON logs (trace, debug, info, warn, error, silent): the worker and Temporal SDK under orch up, the relay, the CLI diagnostics' },
  { key: 'retentionDays', env: 'ORCH_RETENTION_DAYS', default: String(DEFAULT_RETENTION_DAYS), meaning: 'how long the dev server keeps closed runs (1..3650)' },
  { key: 'maxCachedWorkflows', env: 'ORCH_MAX_CACHED_WORKFLOWS', default: '25', meaning: "the runs the worker keeps in memory (Temporal's sticky cache, 0..10000); runs parked at a gate beyond it are replayed when released" },
  { key: 'workflowStackTraces', env: 'ORCH_WORKFLOW_STACK_TRACES', default: '0', meaning: "1: the worker's workflow threads keep the Temporal SDK's stack capture of every promise, for the Temporal UI's Stack Trace tab on Orch runs (a quarter of a workflow thread's time; without it that tab says stack traces are not enabled)" },
  { key: 'workflowBundle', env: 'ORCH_WORKFLOW_BUNDLE', default: '(bundled at start)', meaning: 'a prebundled workflow file, loaded only with its FILE.sig' },
  { key: 'relayPort', env: 'ORCH_RELAY_PORT', default: '7443', meaning: 'the local relay orch up runs' },
  { key: 'keyringPassword', env: 'ORCH_KEYRING_PASSWORD', default: '(asked)', meaning: "headless Linux: the password of Orch's own keyring", secret: true },
  { key: 'keychainService', env: 'ORCH_KEYCHAIN_SERVICE', default: 'orch', meaning: 'the keychain service name the keys are stored under' },
  { key: 'envSecretTenants', env: 'ORCH_ENV_SECRET_TENANTS', default: 'every tenant', meaning: "the tenants whose runs may use the worker's environment secrets" },
  { key: 'relay', env: 'ORCH_RELAY', default: '(none)', meaning: 'the named relay orch agent invite and add use without --relay' },
  { key: 'agentHome', env: 'ORCH_AGENT_HOME', default: '/var/lib/orch-agent', meaning: "the agent's state directory (read by orch-agent)" },
  { key: 'relayDataDir', env: 'ORCH_RELAY_DATA_DIR', default: '$XDG_DATA_HOME/orch-relay (~/.local/share/orch-relay)', meaning: "orch-relay's state (certificate, admitted keys)" },
  { key: 'relayAdminKeys', env: 'ORCH_RELAY_ADMIN_KEYS', default: '(none)', meaning: "orch-relay's admin keys, comma-separated" },
  { key: 'cliTsx', env: 'ORCH_CLI_TSX', default: '0', meaning: '1: run the orch command from its TypeScript sources instead of the compiled CLI' },
  { key: 'debug', env: 'ORCH_DEBUG', default: '(off)', meaning: 'log stack traces of unexpected errors (a JSON line on stderr, component "cli"); orch up also prints its start-up timeline' },
  { key: 'temporalAddress', env: 'TEMPORAL_ADDRESS', default: '(a local dev server)', meaning: 'use that Temporal instead of a dev server (also TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE, TEMPORAL_NAMESPACE, ...)' },
  { key: 'temporalProfile', env: 'TEMPORAL_PROFILE', default: '(none)', meaning: 'a Temporal client profile' },
  { key: 'temporalConfigFile', env: 'TEMPORAL_CONFIG_FILE', default: '(none)', meaning: "Temporal's client configuration file" },
  { key: 'temporalNamespace', env: 'TEMPORAL_NAMESPACE', default: 'default', meaning: 'the namespace' },
  { key: 'go', env: 'ORCH_GO', default: 'go on PATH', meaning: 'the go binary npm run build:agent uses' },
  { key: 'sessionKeyring', env: 'ORCH_SESSION_KEYRING', default: '(unset)', meaning: 'set by orch up inside the keyring it starts', internal: true },
  { key: 'ciKeyring', env: 'ORCH_CI_KEYRING', default: '(unset)', meaning: "set by infra/ci-keyring.sh inside the test suite's keyring", internal: true },
  { key: 'relayUrl', env: 'ORCH_RELAY_URL', default: '(not read)', meaning: 'retired: name relays with orch relay add', retired: true },
  { key: 'relayPin', env: 'ORCH_RELAY_PIN', default: '(not read)', meaning: 'retired: name relays with orch relay add', retired: true },
  { key: 'soak', env: 'ORCH_SOAK', default: '(unset)', meaning: 'set by npm run test:soak for the test files: the soak, fault and kill loops in their long form', internal: true },
  { key: 'upPidfile', env: 'ORCH_UP_PIDFILE', default: '(unset)', meaning: "set by orch up for its keyring's session script", internal: true },
  { key: 'upLauncherFd', env: 'ORCH_UP_LAUNCHER_FD', default: '(unset)', meaning: "set by bin/orch.mjs for the orch up it starts again: the descriptor of a pipe to the launcher, whose end means the launcher died", internal: true },
  { key: 'upStartedAt', env: 'ORCH_UP_STARTED_AT', default: '(unset)', meaning: 'set by orch up for itself inside its keyring: when it started (epoch ms), for its start-up timeline', internal: true },
] as const satisfies readonly SettingSpec[];

export const SETTINGS: readonly SettingSpec[] = TABLE;

type Row = (typeof TABLE)[number];
export type SettingKey = Row['key'];
export type SettingName = Row['env'];

/** Each setting's environment variable name by its key, derived from the table: `Env.taskQueue === 'ORCH_TASK_QUEUE'`. */
export const Env = Object.freeze(Object.fromEntries(TABLE.map((s) => [s.key, s.env]))) as { readonly [R in Row as R['key']]: R['env'] };

/** The settings no longer read: Orch warns when one is set. */
export const RETIRED_SETTINGS: readonly SettingName[] = TABLE.filter((s: SettingSpec) => s.retired).map((s) => s.env);

export type Environment = NodeJS.ProcessEnv;

/**
 * The process environment. The only read of `process.env` in Orch's code: functions that take an `env` parameter
 * default it to this, and child processes get `{ ...processEnv(), ... }`.
 */
export function processEnv(): Environment {
  return process.env;
}

/** A bad setting: the message names it and says what it takes. Code `bad_config` (the README's Errors table). */
export class ConfigError extends OrchError {
  constructor(setting: string, message: string) {
    super('bad_config', `${setting}: ${message}`);
  }
}

/** A setting's value, or undefined when it is unset or empty (an empty variable means "the default"). */
export function setting(name: SettingName, env: Environment = processEnv()): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw;
}

/** True when the setting is `1` (or `true`, `yes`, `on`); anything else set is also true for ORCH_DEBUG-style flags. */
export function flagSetting(name: SettingName, env: Environment = processEnv()): boolean {
  const v = setting(name, env);
  return v !== undefined && !/^(0|false|no|off)$/i.test(v.trim());
}

/** An integer setting within [min, max], or `fallback` when unset; a ConfigError names it otherwise. */
export function integerSetting(name: SettingName, range: { min: number; max: number; fallback: number; what: string }, env: Environment = processEnv()): number {
  const raw = setting(name, env);
  if (raw === undefined) return range.fallback;
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || n < range.min || n > range.max) throw new ConfigError(name, `"${raw}" is not ${range.what} from ${range.min} to ${range.max}`);
  return n;
}

/** A TCP port setting, or `fallback` when unset. */
export function portSetting(name: SettingName, fallback: number, env: Environment = processEnv()): number {
  const raw = setting(name, env);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError(name, `"${raw}" is not a TCP port (1-65535)`);
  return n;
}

/** A list setting (comma or whitespace separated), empty when unset. */
export function listSetting(name: SettingName, env: Environment = processEnv()): string[] {
  return (setting(name, env) ?? '').split(/[\s,]+/).filter(Boolean);
}

/** ORCH_LOG_LEVEL as a pino level name (the SDK's upper-case names are accepted too); `info` when unset. */
export function logLevelSetting(env: Environment = processEnv()): LogLevelName {
  const raw = setting(Env.logLevel, env);
  if (raw === undefined) return DEFAULT_LOG_LEVEL;
  const level = raw.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ConfigError(Env.logLevel, `"${raw}" is not a log level (${LOG_LEVELS.join(', ')})`);
  return level as LogLevelName;
}

/** The settings of {@link RETIRED_SETTINGS} that are set in `env`. */
export function retiredSettingsSet(env: Environment = processEnv()): SettingName[] {
  return RETIRED_SETTINGS.filter((name) => setting(name, env) !== undefined);
}

/** One row of `orch config`: the effective value of a setting and where it came from. */
export interface EffectiveSetting {
  env: string;
  value: string;
  source: 'environment' | 'default';
  meaning: string;
}

/** Each public setting's value in `env` (secrets shown as set or not, never their value). */
export function effectiveSettings(env: Environment = processEnv()): EffectiveSetting[] {
  return SETTINGS.filter((s) => !s.internal && !s.retired).map((s) => {
    const raw = env[s.env];
    const set = raw !== undefined && raw !== '';
    const value = !set ? s.default : s.secret ? '(set, not shown)' : raw;
    return { env: s.env, value, source: set ? 'environment' : 'default', meaning: s.meaning };
  });
}
