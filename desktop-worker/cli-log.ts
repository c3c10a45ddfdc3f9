/**
 * The `orch` command's diagnostics (not its output for people, which stays plain text on stdout and stderr): JSON
 * lines on stderr from Orch's one logger, `component: "cli"`.
 */
import { createLogger, diagnosticLogger } from '../infra/log';
import { Env, flagSetting } from '../infra/settings';

/** With ORCH_DEBUG set, the stack of an unexpected error (a bug, not a user's mistake) as one log line. */
export function logUnexpectedError(command: string, err: unknown): void {
  if (!flagSetting(Env.debug)) return;
  const e = err instanceof Error ? err : new Error(String(err));
  diagnosticLogger('cli').error({ event: 'unexpected_error', command, error: `${e.name}: ${e.message}`, stack: e.stack ?? null });
}

/** With ORCH_DEBUG set, which way a command reached Temporal (run-transport.ts): `http` or `grpc`, and where. */
export function logTemporalTransport(via: 'http' | 'grpc', where: string): void {
  if (!flagSetting(Env.debug)) return;
  // At debug level whatever ORCH_LOG_LEVEL says: ORCH_DEBUG asked for it.
  createLogger({ component: 'cli', level: 'debug' }).debug({ event: 'temporal_transport', via, where });
}
