#!/usr/bin/env node
// The `orch` command. It runs the compiled CLI (dist/cli/orch.cjs, bin/build-cli.mjs); in a source checkout it
// rebuilds it first when a file it was built from changed, so a clone works without a build step and an edit takes
// effect at the next command. ORCH_CLI_TSX=1 runs the TypeScript sources through tsx instead (and so does a failed
// build). The bundle is compiled with V8's code cache (dist/cli/orch.cjs.<size>-<mtime>.v8, written after the first
// run), so later starts skip parsing and compiling most of it.
import fs from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { launcherSetting } from './launcher-env.mjs';

const args = process.argv.slice(2);
// The reader stopped reading (`orch --help | head`): stop quietly instead of dying on EPIPE with a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});
const self = fileURLToPath(import.meta.url);

/**
 * Loads the bundle as require() would, but through a vm.Script that reads and writes V8's code cache. The cache is
 * named after the bundle's size and modification time (V8 itself checks only the source's length), so a cache can
 * never serve another build; bin/build-cli.mjs deletes old ones.
 */
function requireWithCodeCache(file) {
  const st = fs.statSync(file);
  const cacheFile = `${file}.${st.size}-${Math.trunc(st.mtimeMs)}.v8`;
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const dir = path.dirname(file);
  // No import() in here (node 20 has none in a vm.Script without a flag): bin/build-cli.mjs refuses a bundle with one.
  const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
  const mod = new Module(file, undefined);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(dir);
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, dir);
  mod.loaded = true;
  if (cachedData === undefined || script.cachedDataRejected) {
    // After the command ran, so the functions it compiled are in the cache too. A read-only install just goes without.
    process.once('exit', () => {
      try {
        // Rebuilt since this process loaded it (another orch command, or a long `orch up`): a cache of the old build
        // would only be left behind, so none is written.
        const now = fs.statSync(file);
        if (now.size !== st.size || Math.trunc(now.mtimeMs) !== Math.trunc(st.mtimeMs)) return;
        const tmp = `${cacheFile}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, cacheFile);
      } catch {
        // no cache: the next start compiles the bundle again
      }
    });
  }
  return mod.exports;
}

async function loadCli() {
  if (launcherSetting('ORCH_CLI_TSX') !== '1') {
    try {
      const { CLI_BUNDLE, bundleIsFresh, buildCli } = await import('./build-cli.mjs');
      if (!bundleIsFresh()) await buildCli({ quiet: true });
      return requireWithCodeCache(CLI_BUNDLE);
    } catch (err) {
      if (launcherSetting('ORCH_DEBUG')) process.stderr.write(`orch: running from TypeScript sources (${String(err?.message ?? err).split('\n')[0]})\n`);
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
const exitCode = await cli.main(args);
// `orch up` is over (stopped, or failed to start): the Temporal runtime it installs while the dev server starts would
// keep node running, so it exits here (its logs are written synchronously).
if (args[0] === 'up') process.exit(exitCode);
process.exitCode = exitCode;
