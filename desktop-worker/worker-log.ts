/**
 * The worker's logs under `orch up`: one pino logger (infra/log.ts) writing <ORCH_HOME>/logs/worker.log, with
 * warnings and errors also on the terminal, and the Temporal SDK's Runtime logger on top of it, so the SDK's lines
 * (and the Rust core's, forwarded) arrive as JSON lines with `component: "temporal-sdk"`.
 *
 * @example
 * const log = installWorkerLogging(config.home); // before the first NativeConnection or Worker
 */
import { Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { createLogger, forComponent, logFile, temporalLevel, temporalLogger, type Logger } from '../infra/log';
import { logLevelSetting, processEnv, type Environment } from '../infra/settings';

/** The file of the worker's and the SDK's lines. */
export function workerLogFile(home: string): string {
  return logFile(home, 'worker.log');
}

/**
 * Installs the Temporal Runtime with Orch's logger (once per process: the Runtime is process-wide) and returns the
 * worker's logger (`component: "worker"`).
 */
export function installWorkerLogging(home: string, env: Environment = processEnv()): Logger {
  const level = logLevelSetting(env);
  const log = createLogger({ component: 'worker', level, file: workerLogFile(home), alsoToStderr: 'warn' });
  Runtime.install({
    logger: temporalLogger(forComponent(log, 'temporal-sdk')),
    telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: temporalLevel(level) }) } },
  });
  return log;
}
