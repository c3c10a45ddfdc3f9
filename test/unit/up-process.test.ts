/**
 * The process `orch up` runs in (issue 11: the worker under 300 MB with 1,000 runs parked): bin/orch.mjs starts
 * `orch up` again with bin/up-process.mjs's node flags and environment when it lacks them, hands back its exit code,
 * keeps a value the user gave, and test/support/worker-process.ts (bench:parked, durability.test.ts) refuses to run
 * without them. That a running `orch up` has them and stops on Ctrl-C through its launcher: test/integration/up.test.ts.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { UP_ENV, UP_NODE_FLAGS, missingUpSettings, upProcess, upRunsInSessionKeyring } from '../../bin/up-process.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** This environment without the settings (and without jest's NODE_OPTIONS), plus `extra`. */
function envWithout(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  for (const name of Object.keys(UP_ENV)) delete env[name];
  return env;
}

async function exitOf(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  try {
    const r = await run(file, args, { cwd: root, env });
    return { code: 0, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stderr: e.stderr ?? '' };
  }
}

// The two commands this file runs, started together (each is a node start, seconds on a loaded machine).
let upRun: { code: number; stderr: string };
let workerRun: { code: number; stderr: string };
beforeAll(async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-up-process-'));
  // A session bus (not used: the command stops at its unknown option), so no keyring session is started.
  const upEnv = envWithout({ ORCH_HOME: home, ORCH_DEBUG: '1', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' });
  const workerArgs = ['--import', 'tsx', 'test/support/worker-process.ts', '127.0.0.1:1', 'q', '/nonexistent', '/nonexistent'];
  [upRun, workerRun] = await Promise.all([exitOf(process.execPath, ['bin/orch.mjs', 'up', '--no-such-option'], upEnv), exitOf(process.execPath, workerArgs, envWithout({}))]);
});

describe("orch up's process", () => {
  test('the settings: a small young generation and two malloc arenas', () => {
    assert.deepEqual([...UP_NODE_FLAGS], ['--max-semi-space-size=1']);
    assert.deepEqual({ ...UP_ENV }, { MALLOC_ARENA_MAX: '2' });
  });

  test('bin/orch.mjs runs `orch up` with them, and hands back its exit code', () => {
    const r = upRun;
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^orch up: node --max-semi-space-size=1, MALLOC_ARENA_MAX=2$/m);
    assert.match(r.stderr, /unknown option '--no-such-option'/);
  });

  test('a value the user gave wins; what is missing is added', () => {
    assert.deepEqual(missingUpSettings([], {}), { nodeFlags: ['--max-semi-space-size=1'], env: { MALLOC_ARENA_MAX: '2' } });
    assert.deepEqual(missingUpSettings(['--max_semi_space_size=4'], { MALLOC_ARENA_MAX: '8' }), { nodeFlags: [], env: {} });
    assert.deepEqual(missingUpSettings([], { NODE_OPTIONS: '--trace-warnings --max-semi-space-size=2', MALLOC_ARENA_MAX: '' }), { nodeFlags: [], env: { MALLOC_ARENA_MAX: '2' } });
    const up = upProcess({ PATH: '/bin', MALLOC_ARENA_MAX: '4' });
    assert.deepEqual(up, { nodeFlags: ['--max-semi-space-size=1'], env: { PATH: '/bin', MALLOC_ARENA_MAX: '4' } });
    // Where the keyring session starts `orch up` instead (it adds them itself).
    assert.equal(upRunsInSessionKeyring({}, 'linux'), true);
    assert.equal(upRunsInSessionKeyring({ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/bus' }, 'linux'), false);
    assert.equal(upRunsInSessionKeyring({ ORCH_SESSION_KEYRING: '1' }, 'linux'), false);
    assert.equal(upRunsInSessionKeyring({}, 'darwin'), false);
  });

  test('the worker process of the bench and the fault tests refuses to run without them', () => {
    const r = workerRun;
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /not started as `orch up` is .*lacks --max-semi-space-size=1 MALLOC_ARENA_MAX=2/);
  });
});
