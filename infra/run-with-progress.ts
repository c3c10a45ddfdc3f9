/**
 * Runs a long build step (`go build`, `go install`) as a child process: logs "  ... PROGRESS (N s)" every
 * `everyMs` while it runs, and on failure rejects with the step, how it ended and the last 20 lines it printed.
 */
import { spawn } from 'node:child_process';

export class StepFailedError extends Error {
  override readonly name = 'StepFailedError';
}

export function runWithProgress(opts: {
  command: string;
  args: string[];
  cwd?: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** What the progress line says, e.g. "still building the agent". */
  progress: string;
  everyMs: number;
  /** How the failure names the step, e.g. "building the agent (`go build` in agent/)". */
  step: string;
}): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tail: string[] = [];
    const child = spawn(opts.command, opts.args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split(/\r?\n/)) {
        if (line.trim() === '') continue;
        tail.push(line);
        if (tail.length > 20) tail.shift();
      }
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setInterval(() => opts.log(`  ... ${opts.progress} (${Math.round((Date.now() - started) / 1000)} s)`), opts.everyMs);
    child.on('error', (err) => {
      clearInterval(timer);
      reject(new StepFailedError(`${opts.step}: could not run ${opts.command}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearInterval(timer);
      if (code === 0) return resolve();
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      reject(new StepFailedError(`${opts.step} ${how}${tail.length ? `:\n    ${tail.join('\n    ')}` : ''}`));
    });
  });
}
