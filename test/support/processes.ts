/** Child processes for tests: start one, wait for its ready line, stop or kill it. */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Proc {
  child: ChildProcess;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startProcess(args: string[], readyLine: RegExp, env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000, nodeFlags: readonly string[] = []): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...nodeFlags, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const onData = (d: Buffer) => {
    out += d.toString();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${args[0]} not ready in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = () => {
      if (readyLine.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`process ${args[0]} exited with ${code} before it was ready:\n${out}`));
    });
  });
  return {
    child,
    output: () => out,
    kill: (signal = 'SIGKILL') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}

export interface ListeningChild {
  child: ChildProcess;
  /** The port from the child's `listening PORT` line. */
  port: number;
  /** Resolves with the exit code when the child ends. */
  exited: Promise<number | null>;
  /** SIGTERM, then waits for the exit (at once if the child has already ended). */
  stop(): Promise<void>;
}

/**
 * Spawns `cmd args` and waits for its ready line, `listening PORT` on stdout (what the fakes and local servers
 * print). Rejects, naming `what`, when the child exits first or has not listened within `timeoutMs`; with
 * `captureStderr` the end of its stderr goes into that error (otherwise stderr is the test's).
 */
export async function spawnUntilListening(
  cmd: string,
  args: string[],
  what: string,
  opts: { timeoutMs?: number; captureStderr?: boolean } = {},
): Promise<ListeningChild> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', opts.captureStderr ? 'pipe' : 'inherit'] });
  let errText = '';
  child.stderr?.on('data', (d: Buffer) => (errText = (errText + d.toString()).slice(-4000)));
  const tail = () => (errText ? `: ${errText}` : '');
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start in ${timeoutMs / 1000} s${tail()}`)), timeoutMs);
    timer.unref();
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /listening (\d+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before listening${tail()}`));
    });
  });
  return {
    child,
    port,
    exited,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
