/**
 * A grammar of argvs around commands that delete, write or execute something (`effectful`), commands that only read
 * (`harmless`), wrappers that run their argument as it is (`passThrough`) and interpreters handed it as code
 * (`executing`), nested by `wrapped`. Used by the destructive check's property test
 * (test/unit/destructive-property.test.ts) and, sampled with a fixed seed, by the known answers shared with the Go
 * agent (generate-destructive-vectors.ts).
 */
import fc from 'fast-check';

export type Argv = string[];


/** POSIX shell quoting, so a wrapped command survives `sh -c` / `su -c` / `env -S` as the same words. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
export const joined = (argv: Argv): string => argv.map(shellQuote).join(' ');

export const argvPath = fc.constantFrom('/etc/passwd', '/var/lib/app/data.db', 'notes.txt', '/srv/www', '/tmp/x', '/root/.ssh/authorized_keys');
const unit = fc.constantFrom('nginx', 'sshd', 'postgresql.service');
const opt = <T extends string>(...values: T[]) => fc.constantFrom<string[]>([], ...values.map((v) => [v]));

/** Commands that delete, write or execute/change something on the server, with their usual options. */
export const effectful: fc.Arbitrary<Argv> = fc.oneof(
  // delete
  fc.tuple(fc.constantFrom<string[]>([], ['-f'], ['-r'], ['-rf'], ['-i'], ['-v'], ['--recursive'], ['-d']), argvPath, opt('--')).map(([o, p, dd]) => ['rm', ...o, ...dd, p]),
  fc.tuple(fc.constantFrom('unlink', 'rmdir', '/bin/rm', '/usr/bin/unlink'), argvPath).map(([c, p]) => [c, p]),
  argvPath.map((p) => ['shred', '-u', '-z', p]),
  argvPath.map((p) => ['find', p, '-name', '*.log', '-delete']),
  argvPath.map((p) => ['truncate', '-s', '0', p]),
  argvPath.map((p) => ['rsync', '-a', '--delete', '/empty/', p]),
  // write
  fc.tuple(opt('-a', '--append'), argvPath).map(([o, p]) => ['tee', ...o, p]),
  fc.tuple(fc.constantFrom('cp', 'mv', 'install', 'ln'), opt('-f', '-s', '-v', '-p'), argvPath).map(([c, o, p]) => [c, ...o, '/tmp/payload', p]),
  fc.tuple(fc.constantFrom('-i', '-i.bak', '--in-place', '-Ei', '-ni'), argvPath).map(([o, p]) => ['sed', o, 's/a/b/', p]),
  argvPath.map((p) => ['dd', 'if=/dev/zero', `of=${p}`, 'bs=1M']),
  fc.tuple(fc.constantFrom('chmod', 'chown', 'chgrp'), opt('-R', '-v'), argvPath).map(([c, o, p]) => [c, ...o, c === 'chmod' ? '777' : 'nobody', p]),
  argvPath.map((p) => ['crontab', p]),
  argvPath.map((p) => ['curl', '-fsSL', '-o', p, 'https://example.invalid/x']),
  argvPath.map((p) => ['wget', '-q', 'https://example.invalid/x', '-P', p]),
  argvPath.map((p) => ['sh', '-c', `echo x > ${shellQuote(p)}`]),
  argvPath.map((p) => ['bash', '-c', `echo x >> ${shellQuote(p)} 2>/dev/null`]),
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
export const harmless: fc.Arbitrary<Argv> = fc.oneof(
  argvPath.map((p) => ['cat', p]),
  argvPath.map((p) => ['ls', '-la', p]),
  fc.constantFrom<Argv>(['uptime'], ['df', '-h'], ['echo', 'hello world'], ['systemctl', 'status', 'nginx'], ['journalctl', '-u', 'nginx', '-n', '50']),
  argvPath.map((p) => ['grep', '-c', 'root', p]),
  argvPath.map((p) => ['stat', p]),
);

export type Wrapper = fc.Arbitrary<(inner: Argv) => Argv>;
const wrap = (arb: fc.Arbitrary<Argv>, fn: (prefix: Argv, inner: Argv) => Argv): Wrapper => arb.map((prefix) => (inner: Argv) => fn(prefix, inner));
const prefixed = (arb: fc.Arbitrary<Argv>): Wrapper => wrap(arb, (prefix, inner) => [...prefix, ...inner]);

/** Wrappers that run their argument as it is: with a harmless inner command they stay harmless. */
export const passThrough: Wrapper = fc.oneof(
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
export const executing: Wrapper = fc.oneof(
  wrap(fc.constantFrom<Argv>(['python3', '-c'], ['python', '-c']), (p, inner) => [...p, `import os; os.system(${JSON.stringify(joined(inner))})`]),
  wrap(fc.constantFrom<Argv>(['python3', '-c']), (p, inner) => [...p, `import subprocess; subprocess.run(${JSON.stringify(inner)})`]),
  wrap(fc.constantFrom<Argv>(['perl', '-e'], ['perl', '-we']), (p, inner) => [...p, `system(${JSON.stringify(joined(inner))})`]),
  wrap(fc.constantFrom<Argv>(['perl', '-e']), (p, inner) => [...p, `exec @ARGV`, ...inner]),
  wrap(fc.constantFrom<Argv>(['awk'], ['gawk'], ['mawk']), (p, inner) => [...p, `BEGIN { system(${JSON.stringify(joined(inner))}) }`]),
  wrap(fc.constantFrom<Argv>(['node', '-e']), (p, inner) => [...p, `require("child_process").execFileSync(${JSON.stringify(inner[0])}, ${JSON.stringify(inner.slice(1))})`]),
  wrap(fc.constantFrom<Argv>(['ruby', '-e']), (p, inner) => [...p, `system(*${JSON.stringify(inner)})`]),
);

/** Up to three wrappers around an inner command. */
export function wrapped(inner: fc.Arbitrary<Argv>, wrappers: Wrapper): fc.Arbitrary<Argv> {
  return fc.tuple(inner, fc.array(wrappers, { maxLength: 3 })).map(([argv, ws]) => ws.reduce((acc, w) => w(acc), argv));
}
