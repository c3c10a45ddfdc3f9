#!/usr/bin/env node
// The `orch` command. It runs the compiled CLI (dist/cli/orch.cjs, bin/build-cli.mjs); in a source checkout it
// rebuilds it first when a file it was built from changed, so a clone works without a build step and an edit takes
// effect at the next command. ORCH_CLI_TSX=1 runs the TypeScript sources through tsx instead (and so does a failed
// build). The bundle is compiled with V8's code cache (dist/cli/orch.cjs.<size>-<mtime>.v8, written after the first
// run), so later starts skip parsing and compiling most of it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { childEnv, launcherSetting } from './launcher-env.mjs';
import { missingUpSettings, upRunsInSessionKeyring } from './up-process.mjs';

const args = process.argv.slice(2);
// The reader stopped reading (`orch --help | head`): stop quietly instead of dying on EPIPE with a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});
const self = fileURLToPath(import.meta.url);

/** The code cache's header: the commands whose compiled functions it holds, as JSON, then a newline, then V8's data. */
const CODE_CACHE_MAGIC = 'orch-code-cache ';
/** Commands a cache is extended for at most; after that it is left as it is. */
const CODE_CACHE_MAX_COMMANDS = 32;

/** The cache of `cacheFile` (undefined if missing or not in this format): the commands it covers and V8's data. */
function readCodeCache(cacheFile) {
  let buf;
  try {
    buf = fs.readFileSync(cacheFile);
  } catch {
    return undefined;
  }
  const newline = buf.indexOf(10);
  if (newline < 0 || buf.toString('latin1', 0, CODE_CACHE_MAGIC.length) !== CODE_CACHE_MAGIC) return undefined;
  try {
    const commands = JSON.parse(buf.toString('utf8', CODE_CACHE_MAGIC.length, newline));
    if (!Array.isArray(commands) || !commands.every((c) => typeof c === 'string')) return undefined;
    return { commands, data: buf.subarray(newline + 1) };
  } catch {
    return undefined;
  }
}

/**
 * '' for a node started without flags, else a short tag of them: V8 refuses a cache made under other flags (`orch up`
 * runs with --max-semi-space-size, bin/up-process.mjs), so each set of flags has a cache of its own instead of each
 * start under the other set discarding and rewriting the one cache.
 */
function flagsTag(execArgv) {
  if (execArgv.length === 0) return '';
  let h = 0x811c9dc5; // FNV-1a, 32 bits: a name, not a check (V8 checks the flags itself)
  for (const ch of execArgv.join('\0')) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
  return `-${h.toString(16).padStart(8, '0')}`;
}

/**
 * Loads the bundle as require() would, but through a vm.Script that reads and writes V8's code cache. The cache is
 * named after the bundle's size and modification time (V8 itself checks only the source's length), so a cache can
 * never serve another build (bin/build-cli.mjs deletes old ones), and after node's flags (flagsTag).
 *
 * A cache holds the functions compiled by the time it was written, so it is written after a command ran, and
 * written again (with what it held, since those functions were compiled from it, plus this command's) the first time
 * each other command runs: otherwise whichever command ran first would decide what every later command finds
 * compiled (`orch dag validate` after a first `orch --help` compiled its YAML reading at every start). The header
 * lists the commands it covers (the CLI's commandName: `dag validate`, `status`, `help`).
 */
function requireWithCodeCache(file) {
  const st = fs.statSync(file);
  const cacheFile = `${file}.${st.size}-${Math.trunc(st.mtimeMs)}${flagsTag(process.execArgv)}.v8`;
  const cache = readCodeCache(cacheFile);
  const dir = path.dirname(file);
  // No import() in here (node 20 has none in a vm.Script without a flag): bin/build-cli.mjs refuses a bundle with one.
  const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData: cache?.data });
  const mod = new Module(file, undefined);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(dir);
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, dir);
  mod.loaded = true;
  const accepted = cache !== undefined && !script.cachedDataRejected;
  // After the command ran, so the functions it compiled are in the cache too. A read-only install just goes without.
  process.once('exit', () => {
    try {
      const command = typeof mod.exports.commandName === 'function' ? mod.exports.commandName(args) : undefined;
      const covered = accepted ? cache.commands : [];
      if (accepted && (command === undefined || covered.includes(command) || covered.length >= CODE_CACHE_MAX_COMMANDS)) return;
      // Rebuilt since this process loaded it (another orch command, or a long `orch up`): a cache of the old build
      // would only be left behind, so none is written.
      const now = fs.statSync(file);
      if (now.size !== st.size || Math.trunc(now.mtimeMs) !== Math.trunc(st.mtimeMs)) return;
      const commands = command === undefined ? covered : [...covered, command];
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, Buffer.concat([Buffer.from(`${CODE_CACHE_MAGIC}${JSON.stringify(commands)}\n`), script.createCachedData()]));
      fs.renameSync(tmp, cacheFile);
    } catch {
      // no cache: the next start compiles the bundle again
    }
  });
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

/**
 * Runs this command again in a child process with node flags and environment variables added, forwarding the signals
 * this process gets (a terminal's Ctrl-C reaches both; `orch up` stops once however often it is asked); the child has
 * this process's stdin, stdout and stderr. Resolves to its exit code; a child killed by a signal kills this process
 * with the same signal. A signal that cannot be forwarded (SIGKILL, as a supervisor or a test stops a process) closes
 * the pipe on the child's descriptor 3 (ORCH_UP_LAUNCHER_FD), and the child then ends at once too
 * (dieWithLauncher): whoever holds this process's pid stops the whole of `orch up`.
 */
function rerunWith(nodeFlags, envVars) {
  const child = spawn(process.execPath, [...process.execArgv, ...nodeFlags, self, ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env: childEnv({ ...envVars, ['ORCH_UP_LAUNCHER_FD']: '3' }),
  });
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const forward = (signal) => child.kill(signal);
  for (const s of signals) process.on(s, forward);
  return new Promise((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`orch up: could not start node (${err.message})\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      for (const s of signals) process.off(s, forward);
      if (signal) process.kill(process.pid, signal);
      resolve(code ?? 1);
    });
  });
}

/**
 * In the `orch up` a launcher started (rerunWith, or the keyring session): when the launcher's end of the pipe closes,
 * it died; so does this.
 */
async function dieWithLauncher(fd) {
  const net = await import('node:net');
  const pipe = new net.Socket({ fd, readable: true, writable: false });
  // At once, as a SIGKILL would (no activity, no shutdown step runs on), but through the 'exit' hooks, which kill the
  // servers this process started: a dev server would otherwise outlive it, holding its port and database.
  const die = () => process.exit(137);
  pipe.on('error', die);
  pipe.on('end', die);
  pipe.resume();
  // Holds nothing open: `orch up` exits as it would without it.
  pipe.unref();
}

const up = args[0] === 'up' && !args.includes('--help') && !args.includes('-h');
const launcherFd = launcherSetting('ORCH_UP_LAUNCHER_FD');
if (up && launcherFd !== undefined && /^\d+$/.test(launcherFd)) await dieWithLauncher(Number(launcherFd));
// `orch up` runs with bin/up-process.mjs's process-start settings (its worker's memory): before anything is loaded,
// this process starts it again with those it lacks. The keyring session of a headless Linux machine starts its
// `orch up` with them itself (session-keyring.ts).
if (up && !upRunsInSessionKeyring(childEnv())) {
  const missing = missingUpSettings(process.execArgv, childEnv());
  if (missing.nodeFlags.length > 0 || Object.keys(missing.env).length > 0) process.exit(await rerunWith(missing.nodeFlags, missing.env));
  if (launcherSetting('ORCH_DEBUG')) {
    process.stderr.write(`orch up: node ${process.execArgv.join(' ') || '(no flags)'}, MALLOC_ARENA_MAX=${childEnv().MALLOC_ARENA_MAX ?? '(unset)'}\n`);
  }
}

const cli = await loadCli();
if (up) {
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
