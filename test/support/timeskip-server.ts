/**
 * A Temporal server with workflow time skipping turned on, as its own process: the binary the suite's global
 * setup builds from test/support/timeskip-server (Go, go.temporal.io/server; exported as ORCH_TEST_TIMESKIP_SERVER),
 * in memory, on a free 127.0.0.1 port, namespace `default`.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnUntilListening } from './processes';

export interface TimeSkipServer {
  address: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startTimeSkipServer(): Promise<TimeSkipServer> {
  const bin = process.env.ORCH_TEST_TIMESKIP_SERVER;
  if (!bin) throw new Error('ORCH_TEST_TIMESKIP_SERVER is not set: run this test under `npm test`, whose global setup builds the time-skipping server');
  const { child, port, stop } = await spawnUntilListening(bin, [], 'the time-skipping server', { timeoutMs: 60_000, captureStderr: true });
  return {
    address: `127.0.0.1:${port}`,
    child,
    stop,
  };
}
