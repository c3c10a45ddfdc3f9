#!/usr/bin/env node
// The `orch-relay` command (the relay as a service). TypeScript sources run through tsx's loader, as for `orch`.
import { register } from 'tsx/esm/api';
register();
const { runRelayCli } = await import('../relay/main.ts');
process.exitCode = await runRelayCli(process.argv.slice(2));
