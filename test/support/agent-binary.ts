/**
 * The Go agent binary the integration tests run: test/suite-setup.ts resolves it once (infra/agent-binary.ts, a
 * cached `go build` of agent/) and exports it as ORCH_AGENT_BIN. Tests spawn it directly, never through a Node
 * wrapper, so a signal a test sends (SIGKILL in the kill tests) reaches the agent itself.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { ORCH_AGENT_BIN_ENV } from '../../infra/agent-binary';

export function agentBinary(): string {
  const bin = process.env[ORCH_AGENT_BIN_ENV];
  if (!bin) throw new Error(`${ORCH_AGENT_BIN_ENV} is not set: run the integration tests through jest (test/suite-setup.ts resolves the agent), or set it to a built orch-agent`);
  return bin;
}

/**
 * Spawns `orch-agent ARGS` (`run ...`) and resolves once it logs that it is ready; its stderr (the JSON log) keeps
 * being collected for `stderr()`. Rejects with that log if it exits first, or kills it and rejects if it is not ready within 30 s.
 */
export async function startAgentProcess(args: string[], opts: { cwd?: string } = {}): Promise<{ child: ChildProcessWithoutNullStreams; stderr(): string }> {
  const child = spawn(agentBinary(), args, { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent not ready in 30 s:\n${stderr}`));
    }, 30_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('"event":"ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited ${code}:\n${stderr}`));
    });
  });
  return { child, stderr: () => stderr };
}
