/**
 * Property test of the two checks that stand between an argv and a server:
 *
 * - the desktop's destructive check (workflows/dag/destructive.ts): a grammar of wrappers and options builds argvs
 *   around commands that delete, write or execute something, nested up to three deep; every one must be flagged. A
 *   control wraps harmless commands in the same pass-through wrappers and requires that none is flagged, so the
 *   first cannot pass by flagging everything;
 * - the Go agent's approval rule (protocol/APPROVAL.md): a standard or infrastructure agent runs a command its own
 *   read-only check does not clear only with a signed approval. Every generated argv is put to the real agent binary
 *   (`orch-agent explain --stdin`, one process answering a JSON line per argv with the agent's own policy code)
 *   and must be one that agent would refuse without an approval, whatever the desktop said: a miss of the desktop's
 *   list is harmless because of it. Its control: plain read-only commands clear the agent's check (so the agent
 *   half does not pass by refusing everything).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import fc from 'fast-check';
import { resolveAgentBinary } from '../../infra/agent-binary';
import { destructivePattern } from '../../workflows/dag/destructive';

interface AgentView {
  allowed: boolean;
  readOnly: boolean;
  approvalRequired: boolean;
}

/** The real Go agent's policy, asked one argv per line (`orch-agent explain --tier infrastructure --stdin`). */
class AgentPolicy {
  private buffered = '';
  private readonly waiting: Array<(line: string) => void> = [];
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.on('data', (d: Buffer) => {
      this.buffered += d.toString();
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.waiting.shift()?.(line);
      }
    });
  }

  static async start(dir: string): Promise<AgentPolicy> {
    const bin = await resolveAgentBinary({ log: () => undefined });
    // Infrastructure: the widest tier, whose policy lets through whatever the allowlist names; only the approval
    // rule then stands between these argvs and the server.
    const allow = nodePath.join(dir, 'allow.yaml');
    fs.writeFileSync(allow, 'version: 1\ntier: infrastructure\ncommands:\n  - executable: echo\n    rest: any\n');
    const child = spawn(bin, ['explain', '--tier', 'infrastructure', '--allow', allow, '--state-dir', nodePath.join(dir, 'state'), '--stdin'], { stdio: ['pipe', 'pipe', 'pipe'] });
    return new AgentPolicy(child);
  }

  ask(argv: string[]): Promise<AgentView> {
    return new Promise((resolve, reject) => {
      this.waiting.push((line) => {
        try {
          resolve(JSON.parse(line) as AgentView);
        } catch {
          reject(new Error(`orch-agent explain answered ${line}`));
        }
      });
      this.child.stdin.write(`${JSON.stringify(argv)}\n`);
    });
  }

  async stop(): Promise<void> {
    this.child.stdin.end();
    await new Promise((r) => this.child.once('exit', r));
  }
}

let agent: AgentPolicy;
const work = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'orch-destructive-property-'));
beforeAll(async () => {
  agent = await AgentPolicy.start(work);
}, 600_000);
afterAll(async () => {
  await agent?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

/** True when a standard or infrastructure agent would not run argv without an approval. */
async function agentRefusesWithoutApproval(argv: string[]): Promise<boolean> {
  return !(await agent.ask(argv)).readOnly;
}

const RUNS = 3000;

type Argv = string[];

/** POSIX shell quoting, so a wrapped command survives `sh -c` / `su -c` / `env -S` as the same words. */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
const joined = (argv: Argv): string => argv.map(shellQuote).join(' ');

const path = fc.constantFrom('/etc/passwd', '/var/lib/app/data.db', 'notes.txt', '/srv/www', '/tmp/x', '/root/.ssh/authorized_keys');
const unit = fc.constantFrom('nginx', 'sshd', 'postgresql.service');
const opt = <T extends string>(...values: T[]) => fc.constantFrom<string[]>([], ...values.map((v) => [v]));

/** Commands that delete, write or execute/change something on the server, with their usual options. */
const effectful: fc.Arbitrary<Argv> = fc.oneof(
  // delete
  fc.tuple(fc.constantFrom<string[]>([], ['-f'], ['-r'], ['-rf'], ['-i'], ['-v'], ['--recursive'], ['-d']), path, opt('--')).map(([o, p, dd]) => ['rm', ...o, ...dd, p]),
  fc.tuple(fc.constantFrom('unlink', 'rmdir', '/bin/rm', '/usr/bin/unlink'), path).map(([c, p]) => [c, p]),
  path.map((p) => ['shred', '-u', '-z', p]),
  path.map((p) => ['find', p, '-name', '*.log', '-delete']),
  path.map((p) => ['truncate', '-s', '0', p]),
  path.map((p) => ['rsync', '-a', '--delete', '/empty/', p]),
  // write
  fc.tuple(opt('-a', '--append'), path).map(([o, p]) => ['tee', ...o, p]),
  fc.tuple(fc.constantFrom('cp', 'mv', 'install', 'ln'), opt('-f', '-s', '-v', '-p'), path).map(([c, o, p]) => [c, ...o, '/tmp/payload', p]),
  fc.tuple(fc.constantFrom('-i', '-i.bak', '--in-place', '-Ei', '-ni'), path).map(([o, p]) => ['sed', o, 's/a/b/', p]),
  path.map((p) => ['dd', 'if=/dev/zero', `of=${p}`, 'bs=1M']),
  fc.tuple(fc.constantFrom('chmod', 'chown', 'chgrp'), opt('-R', '-v'), path).map(([c, o, p]) => [c, ...o, c === 'chmod' ? '777' : 'nobody', p]),
  path.map((p) => ['crontab', p]),
  path.map((p) => ['curl', '-fsSL', '-o', p, 'https://example.invalid/x']),
  path.map((p) => ['wget', '-q', 'https://example.invalid/x', '-P', p]),
  path.map((p) => ['sh', '-c', `echo x > ${shellQuote(p)}`]),
  path.map((p) => ['bash', '-c', `echo x >> ${shellQuote(p)} 2>/dev/null`]),
  // execute / change state
  fc.constantFrom<Argv>(['kill', '-9', '1'], ['pkill', '-f', 'nginx'], ['killall', 'sshd']),
  fc.tuple(fc.constantFrom('stop', 'restart', 'disable', 'mask', 'start', 'reload'), unit).map(([v, u]) => ['systemctl', v, u]),
  fc.tuple(unit, fc.constantFrom('stop', 'restart')).map(([u, v]) => ['service', u, v]),
  fc.constantFrom<Argv>(['iptables', '-F'], ['iptables', '-P', 'INPUT', 'DROP'], ['nft', 'flush', 'ruleset'], ['ufw', 'disable']),
  fc.constantFrom<Argv>(['userdel', '-r', 'alice'], ['useradd', 'mallory'], ['passwd', 'root'], ['usermod', '-aG', 'sudo', 'mallory']),
  fc.constantFrom<Argv>(['reboot'], ['shutdown', '-h', 'now'], ['mkfs.ext4', '/dev/sdb1'], ['wipefs', '-a', '/dev/sdb']),
  fc.constantFrom<Argv>(['apt-get', 'remove', '-y', 'openssh-server'], ['umount', '/data'], ['sysctl', '-w', 'kernel.panic=1'], ['ip', 'link', 'set', 'eth0', 'down']),
  fc.constantFrom<Argv>(['sh', '-c', 'curl -fsSL https://example.invalid/i.sh | sh']),
);

/** Commands that only read. */
const harmless: fc.Arbitrary<Argv> = fc.oneof(
  path.map((p) => ['cat', p]),
  path.map((p) => ['ls', '-la', p]),
  fc.constantFrom<Argv>(['uptime'], ['df', '-h'], ['echo', 'hello world'], ['systemctl', 'status', 'nginx'], ['journalctl', '-u', 'nginx', '-n', '50']),
  path.map((p) => ['grep', '-c', 'root', p]),
  path.map((p) => ['stat', p]),
);

type Wrapper = fc.Arbitrary<(inner: Argv) => Argv>;
const wrap = (arb: fc.Arbitrary<Argv>, fn: (prefix: Argv, inner: Argv) => Argv): Wrapper => arb.map((prefix) => (inner: Argv) => fn(prefix, inner));
const prefixed = (arb: fc.Arbitrary<Argv>): Wrapper => wrap(arb, (prefix, inner) => [...prefix, ...inner]);

/** Wrappers that run their argument as it is: with a harmless inner command they stay harmless. */
const passThrough: Wrapper = fc.oneof(
  prefixed(fc.tuple(opt('-i'), fc.constantFrom<string[]>([], ['LANG=C'], ['PATH=/usr/bin', 'HOME=/root'])).map(([i, vars]) => ['env', ...i, ...vars])),
  prefixed(fc.constantFrom<Argv>(['nice'], ['nice', '-n', '19'], ['nice', '--adjustment=5'], ['/usr/bin/nice', '-n10'])),
  prefixed(fc.constantFrom<Argv>(['ionice', '-c', '3'], ['ionice', '-c2', '-n7'], ['ionice', '--class', 'idle'])),
  prefixed(fc.constantFrom<Argv>(['timeout', '5'], ['timeout', '-s', 'KILL', '30s'], ['timeout', '--kill-after=5', '60'], ['timeout', '--preserve-status', '1m'])),
  prefixed(fc.constantFrom<Argv>(['stdbuf', '-oL'], ['stdbuf', '-i0', '-o0', '-e0'])),
  prefixed(fc.constantFrom<Argv>(['setsid'], ['setsid', '-f'], ['setsid', '--wait'])),
  prefixed(fc.constantFrom<Argv>(['chroot', '/mnt/sysroot'], ['chroot', '--userspec=0:0', '/'])),
  prefixed(fc.constantFrom<Argv>(['nsenter', '-t', '1', '-m', '-u', '-n', '-i'], ['nsenter', '--target', '1', '--mount', '--'], ['nsenter', '-a', '-t1'])),
  prefixed(fc.constantFrom<Argv>(['unshare', '-m'], ['unshare', '--mount', '--fork', '--'], ['unshare', '-rn'])),
  prefixed(fc.constantFrom<Argv>(['sudo'], ['sudo', '-u', 'root'], ['sudo', '-E', '--'], ['sudo', '-n', '-H', '-u', 'postgres'], ['doas'], ['doas', '-u', 'root'], ['pkexec'])),
  prefixed(fc.constantFrom<Argv>(['busybox'], ['/bin/busybox'])),
  prefixed(fc.constantFrom<Argv>(['nohup'], ['flock', '/run/lock/x'], ['setpriv', '--reuid=0', '--'], ['runuser', '-u', 'root', '--'])),
  wrap(fc.constantFrom<Argv>(['sh', '-c'], ['bash', '-c'], ['bash', '-lc'], ['sh', '-ec'], ['bash', '-o', 'pipefail', '-c'], ['dash', '-c']), (p, inner) => [...p, joined(inner)]),
  wrap(fc.constantFrom<Argv>(['su', '-c'], ['su', '-', 'root', '-c']), (p, inner) => [...p, joined(inner), ...(p.length === 2 ? ['root'] : [])]),
  wrap(fc.constantFrom<Argv>(['env', '-S'], ['env', '--split-string']), (p, inner) => [...p, joined(inner)]),
  // xargs appends what it reads: the wrapped command is what it runs.
  prefixed(fc.constantFrom<Argv>(['xargs'], ['xargs', '-0'], ['xargs', '-I{}'], ['xargs', '-n', '1', '-P', '4'])),
  wrap(fc.constantFrom<Argv>(['-exec'], ['-execdir'], ['-ok']), (p, inner) => ['find', '/srv', '-name', 'x', ...p, ...inner, '{}', ';']),
);

/** Interpreters handed the command as code: they execute it, so they are flagged whatever they run. */
const executing: Wrapper = fc.oneof(
  wrap(fc.constantFrom<Argv>(['python3', '-c'], ['python', '-c']), (p, inner) => [...p, `import os; os.system(${JSON.stringify(joined(inner))})`]),
  wrap(fc.constantFrom<Argv>(['python3', '-c']), (p, inner) => [...p, `import subprocess; subprocess.run(${JSON.stringify(inner)})`]),
  wrap(fc.constantFrom<Argv>(['perl', '-e'], ['perl', '-we']), (p, inner) => [...p, `system(${JSON.stringify(joined(inner))})`]),
  wrap(fc.constantFrom<Argv>(['perl', '-e']), (p, inner) => [...p, `exec @ARGV`, ...inner]),
  wrap(fc.constantFrom<Argv>(['awk'], ['gawk'], ['mawk']), (p, inner) => [...p, `BEGIN { system(${JSON.stringify(joined(inner))}) }`]),
  wrap(fc.constantFrom<Argv>(['node', '-e']), (p, inner) => [...p, `require("child_process").execFileSync(${JSON.stringify(inner[0])}, ${JSON.stringify(inner.slice(1))})`]),
  wrap(fc.constantFrom<Argv>(['ruby', '-e']), (p, inner) => [...p, `system(*${JSON.stringify(inner)})`]),
);

/** Up to three wrappers around an inner command. */
function wrapped(inner: fc.Arbitrary<Argv>, wrappers: Wrapper): fc.Arbitrary<Argv> {
  return fc.tuple(inner, fc.array(wrappers, { maxLength: 3 })).map(([argv, ws]) => ws.reduce((acc, w) => w(acc), argv));
}

/** Flagged on the desktop, or refused by a standard/infrastructure agent without an approval. */
async function refused(argv: Argv): Promise<boolean> {
  return destructivePattern(argv) !== undefined || (await agentRefusesWithoutApproval(argv));
}

describe('destructive check, property', () => {
  test('every argv that deletes, writes or executes, under any wrappers and options, is flagged or refused by the agent without an approval', async () => {
    await fc.assert(
      fc.asyncProperty(wrapped(effectful, fc.oneof(passThrough, executing)), async (argv) => {
        assert.ok(await refused(argv), `neither flagged nor refused: ${JSON.stringify(argv)}`);
      }),
      { numRuns: RUNS },
    );
  });

  test('the desktop check alone flags every one of them too', () => {
    fc.assert(
      fc.property(wrapped(effectful, fc.oneof(passThrough, executing)), (argv) => {
        assert.ok(destructivePattern(argv) !== undefined, `not flagged: ${JSON.stringify(argv)}`);
      }),
      { numRuns: RUNS },
    );
  });

  test('the agent alone refuses every one of them without an approval (a desktop miss is harmless)', async () => {
    await fc.assert(
      fc.asyncProperty(wrapped(effectful, fc.oneof(passThrough, executing)), async (argv) => {
        assert.ok(await agentRefusesWithoutApproval(argv), `the agent would run it without an approval: ${JSON.stringify(argv)}`);
      }),
      { numRuns: RUNS },
    );
  });

  test('the agent\'s control: plain read-only commands need no approval', async () => {
    await fc.assert(
      fc.asyncProperty(harmless, async (argv) => {
        assert.equal(await agentRefusesWithoutApproval(argv), false, `refused: ${JSON.stringify(argv)}`);
      }),
      { numRuns: 200 },
    );
  });

  test('any command run by interpreter code (os.system, subprocess, system(), exec, child_process) is flagged', () => {
    fc.assert(
      fc.property(wrapped(harmless, passThrough), executing, (argv, interpreter) => {
        assert.ok(destructivePattern(interpreter(argv)) !== undefined, `not flagged: ${JSON.stringify(interpreter(argv))}`);
      }),
      { numRuns: 500 },
    );
  });

  test('the control: read-only commands under the same pass-through wrappers are not flagged', () => {
    fc.assert(
      fc.property(wrapped(harmless, passThrough), (argv) => {
        assert.equal(destructivePattern(argv), undefined, `flagged: ${JSON.stringify(argv)}`);
      }),
      { numRuns: RUNS },
    );
  });
});
