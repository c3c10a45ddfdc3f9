/**
 * The executor with real processes: no shell, scrubbed environment, group-wide timeout, output cap.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExecError, execute, shellStatus } from '../../agent/executor';

let dir: string;

function script(name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

describe('agent executor', () => {
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-exec-'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('runs argv without a shell: metacharacters are printed literally', async () => {
    const args = ['; rm -rf /', '$(reboot)', '`id`', '| cat /etc/passwd', '&& echo pwned', '> /tmp/x', "'quoted'", '*'];
    const r = await execute({ argv: ['echo', ...args], timeoutMs: 5000, home: dir });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.toString(), `${args.join(' ')}\n`);
    assert.equal(r.truncated, false);
  });

  test('the environment is scrubbed: a secret of the parent is absent; PATH, LANG, HOME are the agent\'s', async () => {
    process.env.ORCH_TEST_SECRET = 'hunter2-should-not-leak';
    try {
      const r = await execute({ argv: ['/usr/bin/env'], timeoutMs: 5000, home: dir });
      const env = r.stdout.toString();
      assert.ok(!env.includes('hunter2'), env);
      const lines = env.trim().split('\n').sort();
      assert.deepEqual(lines, [`HOME=${dir}`, 'LANG=C.UTF-8', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    } finally {
      delete process.env.ORCH_TEST_SECRET;
    }
  });

  test('stdin is closed and the working directory is honoured', async () => {
    const s = script('stdin.sh', 'pwd; cat; echo "rc=$?"');
    const r = await execute({ argv: [s], timeoutMs: 5000, home: dir, cwd: dir });
    assert.equal(r.stdout.toString(), `${fs.realpathSync(dir)}\nrc=0\n`);
  });

  test('a timeout kills the whole process group, grandchildren included', async () => {
    const pidFile = path.join(dir, 'grandchild.pid');
    // The grandchild ignores SIGTERM, so only the SIGKILL that follows the grace period can end it.
    const s = script('tree.sh', `sh -c 'trap "" TERM; echo $$ > ${pidFile}; sleep 100' &\nsleep 100`);
    const started = Date.now();
    const r = await execute({ argv: [s], timeoutMs: 500, killGraceMs: 300, home: dir });
    const elapsed = Date.now() - started;
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, null);
    assert.equal(r.signal, 'SIGTERM');
    assert.equal(shellStatus(r), 143);
    assert.ok(elapsed < 5000, `took ${elapsed} ms`);
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.ok(grandchild > 0);
    assert.ok(await waitFor(() => !alive(grandchild), 3000), `grandchild ${grandchild} still alive`);
    assert.ok(!alive(r.pid));
  });

  test('a command that leaves a background process behind does not hang the executor, and the leftover is ended', async () => {
    const pidFile = path.join(dir, 'bg.pid');
    const s = script('bg.sh', `sleep 100 &\necho $! > ${pidFile}\necho done`);
    const r = await execute({ argv: [s], timeoutMs: 10_000, home: dir });
    assert.equal(r.exitCode, 0);
    assert.equal(r.timedOut, false);
    assert.ok(r.durationMs < 5000);
    const bg = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.ok(await waitFor(() => !alive(bg), 3000), `background ${bg} still alive`);
  });

  test('output over the cap is truncated and flagged, and the process is drained to its end', async () => {
    const s = script('loud.sh', 'head -c 300000 /dev/zero | tr "\\0" a; echo tail >&2; exit 3');
    const r = await execute({ argv: [s], timeoutMs: 10_000, home: dir, maxOutputBytes: 1000 });
    assert.equal(r.stdout.length, 1000);
    assert.equal(r.stdout.toString(), 'a'.repeat(1000));
    assert.equal(r.stderr.toString(), 'tail\n');
    assert.equal(r.truncated, true);
    assert.equal(r.exitCode, 3);
  });

  test('the default cap is 1 MiB per stream', async () => {
    const s = script('big.sh', 'head -c 1100000 /dev/zero');
    const r = await execute({ argv: [s], timeoutMs: 10_000, home: dir });
    assert.equal(r.stdout.length, 1024 * 1024);
    assert.equal(r.truncated, true);
  });

  test('output exactly at the cap is not truncated', async () => {
    const r = await execute({ argv: ['printf', 'abcd'], timeoutMs: 5000, home: dir, maxOutputBytes: 4 });
    assert.equal(r.stdout.toString(), 'abcd');
    assert.equal(r.truncated, false);
  });

  test('exit codes and signals are reported', async () => {
    assert.equal((await execute({ argv: ['false'], timeoutMs: 5000, home: dir })).exitCode, 1);
    const s = script('selfkill.sh', 'kill -KILL $$');
    const r = await execute({ argv: [s], timeoutMs: 5000, home: dir });
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(r.timedOut, false);
    assert.equal(shellStatus(r), 137);
  });

  test('a nonexistent executable is a clear error, not a result', async () => {
    await assert.rejects(execute({ argv: ['orch-no-such-command-xyz'], timeoutMs: 1000, home: dir }), (e: unknown) => e instanceof ExecError && e.code === 'executable_not_found');
    await assert.rejects(execute({ argv: [path.join(dir, 'missing')], timeoutMs: 1000, home: dir }), (e: unknown) => e instanceof ExecError && e.code === 'executable_not_found');
    // The caller's PATH is never searched: a script in a directory only the parent's PATH names is not found.
    const s = script('only-on-parent-path', 'echo found');
    const saved = process.env.PATH;
    process.env.PATH = `${dir}:${saved}`;
    try {
      await assert.rejects(execute({ argv: ['only-on-parent-path'], timeoutMs: 1000, home: dir }), (e: unknown) => e instanceof ExecError && e.code === 'executable_not_found');
    } finally {
      process.env.PATH = saved;
    }
    assert.ok(fs.existsSync(s));
  });

  test('a missing working directory is a clear error', async () => {
    await assert.rejects(execute({ argv: ['true'], timeoutMs: 1000, home: dir, cwd: path.join(dir, 'nope') }), (e: unknown) => e instanceof ExecError && e.code === 'bad_cwd');
  });
});
