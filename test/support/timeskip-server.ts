/**
 * A Temporal server with workflow time skipping turned on, as its own process: the binary the suite's global
 * setup builds from test/support/timeskip-server (Go, go.temporal.io/server; exported as ORCH_TEST_TIMESKIP_SERVER),
 * in memory, on a free 127.0.0.1 port, namespace `default`.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface TimeSkipServer {
  address: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startTimeSkipServer(): Promise<TimeSkipServer> {
  const bin = process.env.ORCH_TEST_TIMESKIP_SERVER;
  if (!bin) throw new Error('ORCH_TEST_TIMESKIP_SERVER is not set: run this test under `npm test`, whose global setup builds the time-skipping server');
  const child = spawn(bin, [], { stdio: ['ignore', 'pipe', 'pipe'] });
  let errText = '';
  child.stderr!.on('data', (d: Buffer) => (errText = (errText + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /listening (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    void exited.then((code) => reject(new Error(`the time-skipping server exited with ${code} before listening: ${errText}`)));
    setTimeout(() => reject(new Error(`the time-skipping server did not start in 60 s: ${errText}`)), 60_000).unref();
  });
  return {
    address: `127.0.0.1:${port}`,
    child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
