/**
 * `orch ...` as a user runs it: `node bin/orch.mjs` as its own process in the repository, with this environment
 * (ORCH_HOME, TEMPORAL_ADDRESS, ...), optionally something on stdin; resolves with its exit code and output.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The `orch` command's entry point, for a test that spawns it itself (to kill it, say). */
export const ORCH_BIN = path.join(ROOT, 'bin/orch.mjs');

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export function runOrch(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Ran> {
  return startOrch(args, env, input).result;
}

/**
 * `orch ...` started as runOrch does, for a test that acts on what it has printed so far (a gate `orch run
 * --follow` shows, say) before it ends.
 */
export function startOrch(args: string[], env: NodeJS.ProcessEnv, input?: string): { result: Promise<Ran>; stdout: () => string } {
  let stdout = '';
  const result = new Promise<Ran>((resolve) => {
    const child = spawn(process.execPath, ['bin/orch.mjs', ...args], { cwd: ROOT, env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (input !== undefined) child.stdin!.end(input);
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
  return { result, stdout: () => stdout };
}
