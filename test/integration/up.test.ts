/**
 * `orch up` as a new user runs it (the quick start's `npm start`): the real command as a child process gets the
 * Temporal CLI, starts the dev server with its database under ORCH_HOME and the UI, creates the demo tenant, and
 * runs the worker. A demo run parks at its gate; Ctrl-C (SIGINT) stops everything; `orch up` again resumes the
 * parked run, which finishes when approved. Also: with TEMPORAL_ADDRESS set, `orch up` starts no dev server and
 * runs the same worker against that Temporal.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startFakeAnthropic, type FakeAnthropic } from '../support/anthropic';
import { eventually, freePort, suiteEnv, tempHome, uid } from '../support/harness';
import { runOrch } from '../support/orch-process';

let anthropic: FakeAnthropic;

beforeAll(async () => {
  anthropic = await startFakeAnthropic();
});
afterAll(async () => {
  // A test that failed midway leaves its `orch up` (and the dev server, relay and agent under it) running: stop it.
  for (const child of started) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await anthropic?.stop();
});

const started: ChildProcess[] = [];


interface Up {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number>;
}

async function startUp(env: NodeJS.ProcessEnv, args: string[] = []): Promise<Up> {
  const child = spawn(process.execPath, ['bin/orch.mjs', 'up', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  await eventually(async () => out.includes('Orch is up.') || child.exitCode !== null, 120_000, '`orch up` to be up');
  assert.equal(child.exitCode, null, `orch up exited early:\n${out}`);
  return { child, output: () => out, exited };
}

/**
 * Whether `orch up` (started as `pid`) runs in a process with bin/up-process.mjs's settings: `pid` or a process under
 * it (bin/orch.mjs starts it again with them; on a headless machine, inside the keyring session) is node running
 * `orch up` with --max-semi-space-size=1 and MALLOC_ARENA_MAX=2 (issue 11). Linux's /proc.
 */
function upRunsWithItsSettings(pid: number): boolean {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone since the listing
    }
  }
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...(children.get(all[i]!) ?? []));
  return all.some((p) => {
    try {
      const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const env = fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0');
      return argv.includes('--max-semi-space-size=1') && argv.some((a) => a.endsWith('orch.mjs')) && argv.includes('up') && env.includes('MALLOC_ARENA_MAX=2');
    } catch {
      return false;
    }
  });
}

function orch(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return runOrch(args, { ...process.env, ...env });
}

test('orch up: dev server + UI + demo tenant; a parked run survives Ctrl-C and finishes after the next orch up', async () => {
  const port = await freePort();
  const uiPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ORCH_HOME: tempHome(),
    ORCH_TEMPORAL_PORT: String(port),
    ORCH_TEMPORAL_UI_PORT: String(uiPort),
    ORCH_RELAY_PORT: String(await freePort()),
    ANTHROPIC_API_KEY: anthropic.apiKey,
    ANTHROPIC_BASE_URL: anthropic.baseURL,
    TEMPORAL_ADDRESS: '',
    MALLOC_ARENA_MAX: '',
  };
  let up = await startUp(env);
  assert.ok(upRunsWithItsSettings(up.child.pid!), 'orch up runs with its node flags and MALLOC_ARENA_MAX');
  assert.match(up.output(), new RegExp(`Temporal UI\\s+http://127\\.0\\.0\\.1:${uiPort}`));
  assert.match(up.output(), /tenant "demo" with DAG "demo-review"/);
  const ui = await fetch(`http://127.0.0.1:${uiPort}/`);
  assert.equal(ui.status, 200, 'the Temporal UI answers');

  const workflowId = uid('demo');
  const run = await orch(['run', 'demo-review', '--tenant', 'demo', '--param', 'service=api', '--id', workflowId], env);
  assert.equal(run.code, 0, run.stderr);
  await eventually(async () => {
    const s = await orch(['status', workflowId, '--json'], env);
    return s.code === 0 && JSON.parse(s.stdout).status?.pendingGates?.length === 1;
  }, 60_000, 'the demo run to wait at its gate');

  up.child.kill('SIGINT');
  assert.equal(await up.exited, 0, up.output());
  assert.match(up.output(), /Orch stopped/);
  const down = await orch(['status', workflowId], env);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot reach Temporal/);

  // The second start reuses what the first one made: the workflow bundle is not built again (issue 11).
  up = await startUp(env, ['--timings']);
  assert.doesNotMatch(up.output(), /bundled Orch's workflows/);
  // The timeline lists phases by their start: the dev server's comes before the bundle check, the tenant store and
  // the relay, which wait for its process to start (issue 11).
  assert.match(up.output(), /start-up timeline[^]*Temporal dev server \(\d+ ms\)[^]*workflow bundle \(\d+ ms\)[^]*worker \(\d+ ms\)/);
  assert.match(up.output(), /start-up timeline[^]*Temporal dev server \(\d+ ms\)[^]*tenant store and demo \(\d+ ms\)[^]*local relay and agent \(\d+ ms\)/);
  // The worker took over the workflow threads started while the dev server started (early-workflow-threads.ts).
  assert.match(up.output(), /start-up timeline[^]*workflow threads \(early\) \(\d+ ms\)/);
  const started = fs.readFileSync(path.join(env.ORCH_HOME!, 'logs', 'worker.log'), 'utf8').split('\n').filter((l) => l.includes('"worker_started"'));
  assert.equal(started.length, 2, 'one worker_started per orch up');
  assert.equal(JSON.parse(started[1]!).earlyWorkflowThreads, true, started[1]);
  try {
    const approve = await orch(['approve', workflowId, 'approve', '--comment', 'after restart'], env);
    assert.equal(approve.code, 0, approve.stderr);
    const done = await eventually(async () => {
      const s = await orch(['status', workflowId, '--json'], env);
      const parsed = s.code === 0 ? JSON.parse(s.stdout) : undefined;
      return parsed?.temporalStatus === 'COMPLETED' ? parsed : undefined;
    }, 60_000, 'the resumed run to complete');
    const claudeCalls = (await anthropic.messages()).filter((r) => r.prompt.includes('"api"'));
    assert.equal(claudeCalls.length, 1, 'the Claude node ran once, before the restart');
    // The first command ran on the local agent through the relay; its output reached Claude as data.
    assert.match(claudeCalls[0]!.prompt, /<server-output node="disks">\nFilesystem/);
    const uptime = (done.status.nodes as Array<{ id: string; state: string; summary?: string }>).find((n) => n.id === 'uptime');
    assert.equal(uptime?.state, 'succeeded');
    assert.match(uptime?.summary ?? '', /^exit 0: .*load average/);

    // The tenant's audit log holds the whole story, chained and signed, and verifies.
    const log = await orch(['audit', 'log', '--tenant', 'demo', '--json'], env);
    assert.equal(log.code, 0, log.stderr);
    const actions = (JSON.parse(log.stdout) as Array<{ action: string; subject: string; actor: string }>).map((r) => `${r.action}:${r.subject}`);
    for (const expected of ['create_tenant:demo', 'register_dag:demo-review', 'enroll_agent:local', 'run_workflow:demo-review@2', 'command_sent:disks', 'command_result:disks', 'claude_call:checklist', 'approve_gate:approve', 'command_sent:uptime', 'run_finished:demo-review@2']) {
      assert.ok(actions.includes(expected), `${expected} in ${actions.join(', ')}`);
    }
    const verify = await orch(['audit', 'verify', '--tenant', 'demo'], env);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /OK/);
  } finally {
    up.child.kill('SIGINT');
    await up.exited;
  }
});

test('a start-up failure after the dev server and the Temporal runtime started (the relay port taken) exits 1 with what to do, and leaves nothing running', async () => {
  const port = await freePort();
  const relayPort = await freePort();
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(relayPort, '127.0.0.1', resolve));
  try {
    const env: NodeJS.ProcessEnv = {
      ORCH_HOME: tempHome(),
      ORCH_TEMPORAL_PORT: String(port),
      ORCH_TEMPORAL_UI_PORT: String(await freePort()),
      ORCH_RELAY_PORT: String(relayPort),
      TEMPORAL_ADDRESS: '',
    };
    // The runtime would keep a failed `orch up` alive: it must exit on its own.
    const failed = await Promise.race([orch(['up', '--no-demo'], env), new Promise<undefined>((r) => setTimeout(() => r(undefined), 120_000).unref())]);
    assert.ok(failed, 'orch up exited after its failure');
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, new RegExp(`port ${relayPort} \\(the local relay\\) is in use on 127\\.0\\.0\\.1: .*ORCH_RELAY_PORT.*--no-local-agent`));
    assert.doesNotMatch(failed.stderr, /^\s+at /m, 'no stack trace');
    // The dev server it had started is stopped.
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(false)));
      socket.once('error', () => resolve(true));
    });
    assert.ok(refused, 'the dev server is not left running');
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
});

test('orch up with TEMPORAL_ADDRESS runs the same worker against that Temporal and starts no dev server', async () => {
  const taskQueue = uid('up-external');
  const env: NodeJS.ProcessEnv = {
    ORCH_HOME: tempHome(),
    TEMPORAL_ADDRESS: suiteEnv().address,
    ORCH_TASK_QUEUE: taskQueue,
    ORCH_RELAY_PORT: String(await freePort()),
    ANTHROPIC_API_KEY: anthropic.apiKey,
    ANTHROPIC_BASE_URL: anthropic.baseURL,
  };
  const up = await startUp(env);
  try {
    assert.match(up.output(), new RegExp(`using Temporal at ${suiteEnv().address.replace(/\./g, '\\.')}`));
    assert.doesNotMatch(up.output(), /starting the Temporal dev server/);
    const workflowId = uid('external');
    const run = await orch(['run', 'demo-review', '--tenant', 'demo', '--id', workflowId], env);
    assert.equal(run.code, 0, run.stderr);
    await eventually(async () => {
      const s = await orch(['status', workflowId, '--json'], env);
      return s.code === 0 && JSON.parse(s.stdout).status?.pendingGates?.length === 1;
    }, 60_000, 'the run to reach its gate on the external Temporal');
    assert.equal((await orch(['approve', workflowId, 'approve'], env)).code, 0);
  } finally {
    up.child.kill('SIGINT');
    assert.equal(await up.exited, 0);
  }
});

test('on Linux without a desktop session, orch up keeps its keys in a keyring of its own, unlocked by a password', async () => {
  const home = tempHome();
  const base: NodeJS.ProcessEnv = {
    ORCH_HOME: home,
    DBUS_SESSION_BUS_ADDRESS: '',
    ORCH_TEMPORAL_PORT: String(await freePort()),
    ORCH_TEMPORAL_UI_PORT: String(await freePort()),
    ORCH_RELAY_PORT: String(await freePort()),
  };
  // No password and no terminal to type it: refused, with what to do.
  const noPassword = await orch(['up'], base);
  assert.equal(noPassword.code, 1);
  assert.match(noPassword.stderr, /ORCH_KEYRING_PASSWORD/);

  const up = await startUp({ ...base, ORCH_KEYRING_PASSWORD: 'correct horse', MALLOC_ARENA_MAX: '' });
  let fingerprint: string;
  try {
    // The keyring session starts its `orch up` with the process settings (no second launcher in between).
    assert.ok(upRunsWithItsSettings(up.child.pid!), 'orch up runs with its node flags and MALLOC_ARENA_MAX');
    // Another terminal (no session bus of its own) finds the keyring through ORCH_HOME.
    const who = await orch(['whoami', '--json'], base);
    assert.equal(who.code, 0, who.stderr);
    fingerprint = JSON.parse(who.stdout).fingerprint as string;
    assert.match(fingerprint, /^SHA256:/);
  } finally {
    up.child.kill('SIGINT');
    assert.equal(await up.exited, 0, up.output());
  }
  const keyringFiles = fs.readdirSync(path.join(home, 'keyring', 'keyrings'));
  assert.ok(keyringFiles.length > 0, 'the keyring is on disk, encrypted by gnome-keyring');

  const wrong = await orch(['up'], { ...base, ORCH_KEYRING_PASSWORD: 'wrong' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /stayed locked: the password is wrong/);

  const again = await startUp({ ...base, ORCH_KEYRING_PASSWORD: 'correct horse' });
  try {
    const who = await orch(['whoami', '--json'], base);
    assert.equal(JSON.parse(who.stdout).fingerprint, fingerprint, 'the same identity after a restart');
    // Killed outright (SIGKILL), the process users see takes the `orch up` inside the keyring session with it (before,
    // that one ran on by itself in its own process group).
    const inner = Number(fs.readFileSync(path.join(home, 'run', 'orch-up.pid'), 'utf8'));
    assert.ok(inner > 0 && inner !== again.child.pid, 'the inner orch up has a pid of its own');
    again.child.kill('SIGKILL');
    await again.exited;
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return !/^[^)]*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); // a zombie has ended
      } catch {
        return false;
      }
    };
    await eventually(async () => !alive(inner), 15_000, 'the inner orch up to end with the outer one');
    // And nothing it started runs on: no dev server on its database, no local agent in its state directory.
    const leftOver = () =>
      fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n) && alive(Number(n))).filter((n) => {
        try {
          return fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').includes(home);
        } catch {
          return false;
        }
      });
    await eventually(async () => leftOver().length === 0, 15_000, 'the dev server and the agent to end with orch up');
  } finally {
    if (again.child.exitCode === null && again.child.signalCode === null) again.child.kill('SIGINT');
    await again.exited;
  }
});
