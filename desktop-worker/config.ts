/**
 * Orch's configuration for the desktop worker and the CLI: the typed view of the settings (infra/settings.ts, the
 * one table of environment variables and the one reader of the process environment) and the files they point at,
 * validated at start-up; a bad one fails with a message that names the setting and how to fix it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadClientConnectConfig, type ClientConnectConfig } from '@temporalio/envconfig';
import { DEFAULT_PRICES, priceTableProblems, type PriceTable } from '../workflows/prices';
import { DEFAULT_TASK_QUEUE } from '../workflows/shared';
import { orchHome } from '../infra/paths';
import { DEFAULT_MAX_CACHED_WORKFLOWS } from './worker-tuning';
import { ConfigError, DEFAULT_RETENTION_DAYS, Env, integerSetting, portSetting, processEnv, setting, type Environment } from '../infra/settings';

export { ConfigError, DEFAULT_RETENTION_DAYS, Env, SETTINGS, effectiveSettings, type EffectiveSetting, type SettingSpec } from '../infra/settings';

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
  /** The worker's sticky workflow cache size (ORCH_MAX_CACHED_WORKFLOWS; desktop-worker/worker-tuning.ts). */
  maxCachedWorkflows: number;
}

function retentionDays(env: Environment): number {
  return integerSetting(Env.retentionDays, { min: 1, max: 3650, fallback: DEFAULT_RETENTION_DAYS, what: 'a number of days' }, env);
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

export function loadTemporalTarget(env: Environment = processEnv()): TemporalTarget {
  const external = setting(Env.temporalAddress, env) ?? setting(Env.temporalProfile, env) ?? setting(Env.temporalConfigFile, env);
  if (!external) {
    const p = portSetting(Env.temporalPort, 7233, env);
    return { kind: 'dev-server', ip: '127.0.0.1', port: p, uiPort: portSetting(Env.temporalUiPort, p + 1000, env), namespace: 'default' };
  }
  let connect: ClientConnectConfig;
  try {
    connect = loadClientConnectConfig({ profile: setting(Env.temporalProfile, env), overrideEnvVars: env as Record<string, string> });
  } catch (err) {
    throw new ConfigError('TEMPORAL_* / profile', `could not load the Temporal client configuration: ${(err as Error).message}`);
  }
  const namespace = connect.namespace ?? 'default';
  const address = connect.connectionOptions.address ?? '127.0.0.1:7233';
  return { kind: 'external', connect, namespace, description: `${address} (namespace ${namespace})` };
}

export function loadConfig(env: Environment = processEnv()): OrchConfig {
  // A relative ORCH_HOME is taken from the current directory (orchHome resolves it).
  const home = orchHome(env);
  const taskQueue = setting(Env.taskQueue, env) ?? DEFAULT_TASK_QUEUE;
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(taskQueue)) throw new ConfigError(Env.taskQueue, `"${taskQueue}" is not a valid task queue name`);
  const pricesFile = setting(Env.pricesFile, env) ?? path.join(home, 'prices.json');
  const bundle = setting(Env.workflowBundle, env);
  if (bundle && !fs.existsSync(bundle)) throw new ConfigError(Env.workflowBundle, `${bundle} does not exist (run \`npm run build\` or unset it)`);
  return {
    home,
    taskQueue,
    temporal: loadTemporalTarget(env),
    anthropic: { apiKey: setting(Env.anthropicKey, env), baseURL: setting(Env.anthropicBaseUrl, env) },
    prices: loadPrices(pricesFile),
    pricesFile,
    workflowBundle: bundle || undefined,
    relayPort: portSetting(Env.relayPort, 7443, env),
    retentionDays: retentionDays(env),
    maxCachedWorkflows: integerSetting(Env.maxCachedWorkflows, { min: 0, max: 10_000, fallback: DEFAULT_MAX_CACHED_WORKFLOWS, what: 'a number of runs' }, env),
  };
}
