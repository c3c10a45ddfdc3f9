#!/usr/bin/env node
// The `orch` command. It runs the compiled CLI (dist/cli/orch.cjs, bin/build-cli.mjs), rebuilding it first when a
// source file changed since it was built, so a clone works without a build step and an edit takes effect at the
// next command. ORCH_CLI_TSX=1 runs the TypeScript sources through tsx instead (and so does a failed build).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
// The reader stopped reading (`orch --help | head`): stop quietly instead of dying on EPIPE with a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});
const self = fileURLToPath(import.meta.url);

async function loadCli() {
  if (process.env.ORCH_CLI_TSX !== '1') {
    try {
      const { CLI_BUNDLE, bundleIsFresh, buildCli } = await import('./build-cli.mjs');
      if (!bundleIsFresh()) await buildCli({ quiet: true });
      return createRequire(import.meta.url)(CLI_BUNDLE);
    } catch (err) {
      if (process.env.ORCH_DEBUG) process.stderr.write(`orch: running from TypeScript sources (${String(err?.message ?? err).split('\n')[0]})\n`);
    }
  }
  const { register } = await import('tsx/esm/api');
  register();
  return import('../desktop-worker/cli-entry.ts');
}

const cli = await loadCli();
if (args[0] === 'up' && !args.includes('--help') && !args.includes('-h')) {
  // On Linux without a desktop session, `orch up` runs inside a keyring of its own (see session-keyring.ts).
  const outcome = await cli.runUpInSessionKeyring(args, self);
  if (outcome.kind === 'ran') process.exit(outcome.exitCode);
  if (outcome.kind === 'unavailable') {
    process.stderr.write(`orch up: ${outcome.message}\n`);
    process.exit(1);
  }
}
cli.adoptSessionBus();
process.exitCode = await cli.main(args);
