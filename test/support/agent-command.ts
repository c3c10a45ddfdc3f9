/**
 * `orch agent ...` in the test's own process, with ORCH_HOME pointing at `home`: the same command object and argument
 * parsing as `bin/orch.mjs agent ...`, its output captured, a usage error as exit 2.
 */
import { parseArgs } from 'node:util';
import { agentCommand, agentOptions } from '../../desktop-worker/commands/agents';

export async function orchAgent(home: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: agentOptions, allowPositionals: true, strict: true });
  } catch (err) {
    return { code: 2, stdout: '', stderr: (err as Error).message };
  }
  const saved = process.env.ORCH_HOME;
  process.env.ORCH_HOME = home;
  let stdout = '';
  let stderr = '';
  try {
    const code = await agentCommand(parsed as { values: Record<string, unknown>; positionals: string[] }, {
      log: (l) => (stdout += `${l}\n`),
      err: (l) => (stderr += `${l}\n`),
    });
    return { code, stdout, stderr };
  } finally {
    if (saved === undefined) delete process.env.ORCH_HOME;
    else process.env.ORCH_HOME = saved;
  }
}
