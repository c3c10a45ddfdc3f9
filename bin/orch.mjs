#!/usr/bin/env node
// The `orch` command. TypeScript sources run through tsx's loader, so a clone works without a build step.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../desktop-worker/cli.ts');
process.exitCode = await main(process.argv.slice(2));
