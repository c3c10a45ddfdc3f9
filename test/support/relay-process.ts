/**
 * A relay started as its own process (`orch-relay start ...`, `orch relay start ...`): collects what it prints and
 * waits for its `relay_started` line, which carries the URL and the certificate pin. Fails, with the output, when the
 * process exits first or does not start in time.
 */
import type { ChildProcess } from 'node:child_process';

export interface StartedRelayProcess {
  url: string;
  pin: string;
  metricsUrl?: string;
  /** Everything it printed so far (stdout and stderr, when piped). */
  output(): string;
}

export function relayStarted(child: ChildProcess, what = 'the relay', timeoutMs = 60_000): Promise<StartedRelayProcess> {
  let out = '';
  let done = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`${what} did not start within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const finish = (err: Error | undefined, started?: { url: string; pin: string; metricsUrl?: string }) => {
      done = true;
      clearTimeout(timer);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve({ ...started!, output: () => out });
    };
    const onData = (d: Buffer | string) => {
      out += d.toString();
      if (done) return;
      const line = out.split('\n').find((l) => l.includes('"event":"relay_started"'));
      if (line) finish(undefined, JSON.parse(line) as { url: string; pin: string; metricsUrl?: string });
    };
    const onExit = (code: number | null) => finish(new Error(`${what} exited ${code} before it started:\n${out}`));
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', onExit);
    if (child.exitCode !== null) onExit(child.exitCode);
  });
}
