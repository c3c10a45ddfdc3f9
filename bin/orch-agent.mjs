#!/usr/bin/env node
// `orch-agent` for developers in a checkout: finds or builds the Go agent for this machine (infra/agent-binary.ts:
// ORCH_AGENT_BIN, else the cache, else `go build` of agent/) and runs it with these arguments, stdio inherited,
// SIGINT/SIGTERM passed on, and its exit code (128 + n if a signal ended it). On a server, run the binary itself
// (`npm run build:agent` writes dist/orch-agent-linux-amd64 and -arm64); tests and `orch up` spawn it directly.
import { spawn } from 'node:child_process';
import { tsImport } from 'tsx/esm/api';

const { resolveAgentBinary } = await tsImport('../infra/agent-binary.ts', import.meta.url);
let bin;
try {
  bin = await resolveAgentBinary({ log: (line) => process.stderr.write(`orch-agent: ${line}\n`) });
} catch (err) {
  process.stderr.write(`orch-agent: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
const child = spawn(bin, process.argv.slice(2), { stdio: 'inherit' });
const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  });
}
child.on('error', (err) => {
  process.stderr.write(`orch-agent: could not start ${bin}: ${err.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  process.exit(code ?? 128 + (SIGNAL_NUMBERS[signal] ?? 1));
});
