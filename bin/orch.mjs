#!/usr/bin/env node
// The `orch` command. TypeScript sources run through tsx's loader, so a clone works without a build step.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';
register();
const args = process.argv.slice(2);
const keyring = await import('../desktop-worker/session-keyring.ts');
if (args[0] === 'up' && !args.includes('--help') && !args.includes('-h')) {
  // On Linux without a desktop session, `orch up` runs inside a keyring of its own (see session-keyring.ts).
  const outcome = await keyring.runUpInSessionKeyring(args, fileURLToPath(import.meta.url));
  if (outcome.kind === 'ran') process.exit(outcome.exitCode);
  if (outcome.kind === 'unavailable') {
    process.stderr.write(`orch up: ${outcome.message}\n`);
    process.exit(1);
  }
}
keyring.adoptSessionBus();
const { main } = await import('../desktop-worker/cli.ts');
process.exitCode = await main(args);
