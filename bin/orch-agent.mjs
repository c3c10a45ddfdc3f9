#!/usr/bin/env node
// The `orch-agent` command (the daemon on managed servers). TypeScript runs through tsx's loader, no build step.
import { register } from 'tsx/esm/api';
register();
const { runAgentCli } = await import('../agent/main.ts');
process.exitCode = await runAgentCli(process.argv.slice(2));
