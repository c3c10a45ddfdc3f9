/**
 * Known destructive and state-changing command patterns. A command node whose argv matches one is destructive
 * whatever its `destructive` flag says, so it must sit directly behind an approval gate. The runner checks the
 * argv again before the command activity, and the runCommand activity checks it once more with secrets resolved
 * (activities/index.ts), so a secret's value cannot turn a harmless-looking argv into `rm -rf`.
 *
 * The check is deliberately conservative: a false positive costs one approval click, a false negative can
 * cost a server. It looks at the argv as the agent will run it (no shell), and also looks *into* things that
 * run other commands:
 *   - wrappers: sudo, doas, pkexec, env, nohup, nice, ionice, timeout, stdbuf, chroot, nsenter, unshare, xargs,
 *     exec, command, busybox, setsid, setpriv, capsh, flock, time, strace, watch, runuser, su, gosu, su-exec,
 *     numactl, cgexec, prlimit, eatmydata, faketime, sshpass, ip (netns exec), docker/podman exec|run, kubectl
 *     exec, ssh, ... (the WRAPPERS set below) - every later
 *     argument position is tried as the start of the wrapped command (so unknown option values such as
 *     `sudo -u root` do not hide it);
 *   - shells (`sh -c`, `bash -lc`, `zsh -c`, ...): the script text is split into simple commands (quotes,
 *     `;`, `&&`, `||`, `|`, `&`, newlines, `$(...)`, backquotes, redirections) and each is checked again;
 *   - interpreters (`python -c`, `perl -e`, `node -e`, `ruby -e`, `awk`, ...): the code is checked like a
 *     script, and so is every quoted string in it (a string there is usually handed to system()).
 *   - `find ... -exec CMD` and `find ... -delete`.
 * Executables given by path count by basename (`/bin/rm` is `rm`). Nesting is followed up to MAX_DEPTH.
 *
 * Patterns (the returned name, then what it matches):
 *   rm-recursive-or-force   rm with -r, -R, -f (any cluster: -rf, -fr, -Rf, -vf), --recursive, --force (or an
 *                           unambiguous prefix such as --rec), --no-preserve-root; options after file names count
 *                           (GNU rm permutes), nothing after `--` does
 *   mkfs                    mkfs, mkfs.*, mke2fs, mkswap
 *   dd-of                   dd with an of= operand
 *   shutdown, reboot, halt, poweroff   those commands, any arguments
 *   init-runlevel           init / telinit 0 or 6
 *   systemctl-power         systemctl poweroff|reboot|halt|kexec|soft-reboot|rescue|emergency, or isolate of
 *                           the matching .target
 *   wipefs, shred           those commands, any arguments
 *   partition-write         fdisk, sfdisk, gdisk, sgdisk, cfdisk, cgdisk, parted unless used in a read-only
 *                           mode only (fdisk -l, sfdisk --dump, sgdisk --print, parted DEV print, ...)
 *   sql-drop-table          `DROP TABLE` in any argv element, any case, SQL comments ignored (psql -c "...")
 *   sql-drop-database       `DROP DATABASE` / `DROP SCHEMA` in any argv element; dropdb; mysqladmin drop
 *   sql-truncate            `TRUNCATE [TABLE] name` in any argv element
 *   sql-delete-all          `DELETE FROM name` with no WHERE in the same argv element
 *   kubectl-delete          kubectl (or oc) with a `delete` argument
 *   docker-rm-force         docker/podman/nerdctl rm (or container rm, rmi) with -f/--force
 *   docker-prune            docker/podman system|container|volume|image|network|builder prune
 *   chmod-recursive-root    chmod -R (any mode) on / or a top-level system directory (/etc, /usr, ...)
 *   chmod-recursive-777     chmod -R 777 (or a+rwx, ugo+rwx, 0777) on anything
 *   chown-recursive-root    chown -R / chgrp -R on / or a top-level system directory
 *   device-write            a shell redirection `> /dev/sd*` (or hd, vd, xvd, nvme, mmcblk, md, dm-, loop,
 *                           mapper/, disk/), or tee/cp/mv/ddrescue/pv writing to such a device
 *   find-delete             find with -delete, or -exec/-execdir/-ok running rm, shred or unlink
 *   crontab-remove          crontab -r
 *   lvm-remove              lvremove, vgremove, pvremove
 *   zfs-destroy             zfs destroy, zpool destroy
 *   redis-flush             redis-cli flushall / flushdb
 *   pipe-to-shell           in a shell script: curl/wget ... | sh (seeds: "curl ... | bash", "wget ... | sh")
 *   fork-bomb               in a shell script: `:(){ :|:& };:` and renamed variants
 *   file-delete             rm without -r/-f, unlink, rmdir, rsync --delete / --remove-source-files
 *   file-write              tee to a file (not /dev/null, /dev/stdout, ...), cp, mv, install, ln, sed -i, perl/ruby
 *                           -i, rsync, scp, patch, curl -o/-O, wget (unless to stdout), find -fprint/-fls, a shell
 *                           redirection `> FILE`, `>> FILE`, `&> FILE` (not to /dev/null, not `2>&1`)
 *   file-truncate           truncate, fallocate
 *   permission-change       chmod, chown, chgrp (any, beyond the -R cases above), setfacl, chattr
 *   process-kill            kill, pkill, killall, ... (not kill -l, kill -0)
 *   service-change          systemctl start|stop|restart|reload|enable|disable|mask|daemon-reload|..., service NAME
 *                           ACTION, rc-service, invoke-rc.d, /etc/init.d/NAME ACTION (status only is read-only)
 *   crontab-change          crontab FILE, crontab -, crontab -e (only -l, with -u USER, is read-only)
 *   firewall-change         iptables/ip6tables/ebtables with a change option (or none of -L/-S/-C), *-restore,
 *                           nft other than list/describe/monitor, ufw other than status, firewall-cmd --add/--remove/...
 *   account-change          userdel, useradd, usermod, group*, chpasswd, adduser, deluser, gpasswd, vipw, visudo,
 *                           passwd (not -S), chage (not -l)
 *   package-change          apt/apt-get/yum/dnf/zypper/apk/snap/pip install|remove|purge|upgrade|..., dpkg -i/-r/-P,
 *                           rpm -e/-i/-U, pacman -S/-R/-U
 *   mount-change            umount, swapoff, swapon, losetup (not listing), mount with a device, -a, -o, --bind
 *   sysctl-write            sysctl -w, -p, --system, or NAME=VALUE
 *   network-change          ip ... add|del|set|flush|change|replace, ifup, ifdown, ifconfig IFACE ..., nmcli up|down|...
 *   interpreter-side-effect inline interpreter code (python -c, perl -e, node -e, ruby -e, php -r, awk programs) that
 *                           calls system/exec/popen/spawn/subprocess, unlink/remove/rmtree/rename/kill/chmod/write,
 *                           opens a file for writing, uses backquotes or eval; awk print > FILE, print | CMD, getline
 *   too-complex-to-check    checking needed more than WORK_BUDGET steps (deeply nested quoting): treated as
 *                           destructive, because a gate is the safe answer when we cannot tell
 *
 * Limits (why the flag exists too): commands chosen at run time (argv built from params) are checked on the
 * template text at compile time and must be checked again on the rendered argv by the runner; obfuscation
 * beyond quoting (base64 | sh, variables holding command names, `$'\x72m'`) is not decoded; a script or program
 * given by file (`bash deploy.sh`, `python3 job.py`) is not read; creating files or directories (touch, mkdir),
 * SQL writes other than the patterns above, and git's own destructive commands are not flagged. A pattern list can
 * never be complete: standard and infrastructure agents refuse any command their own read-only check does not
 * clear unless it carries a signed approval, which is what makes a miss here harmless.
 *
 * The Go agent's port (agent/internal/policy/destructive.go) shares the original pattern names, wrappers and work
 * budget; the state-changing patterns from file-delete on are desktop-only so far.
 */

/** How deep nested shells, interpreters and find -exec are followed. */
export const MAX_DEPTH = 8;

/** Names returned by `destructivePattern`, for documentation and tests. */
export const DESTRUCTIVE_PATTERN_NAMES = [
  'rm-recursive-or-force',
  'mkfs',
  'dd-of',
  'shutdown',
  'reboot',
  'halt',
  'poweroff',
  'init-runlevel',
  'systemctl-power',
  'wipefs',
  'shred',
  'partition-write',
  'sql-drop-table',
  'sql-drop-database',
  'sql-truncate',
  'sql-delete-all',
  'kubectl-delete',
  'docker-rm-force',
  'docker-prune',
  'chmod-recursive-root',
  'chmod-recursive-777',
  'chown-recursive-root',
  'device-write',
  'find-delete',
  'crontab-remove',
  'lvm-remove',
  'zfs-destroy',
  'redis-flush',
  'pipe-to-shell',
  'fork-bomb',
  'file-delete',
  'file-write',
  'file-truncate',
  'permission-change',
  'process-kill',
  'service-change',
  'crontab-change',
  'firewall-change',
  'account-change',
  'package-change',
  'mount-change',
  'sysctl-write',
  'network-change',
  'interpreter-side-effect',
  'too-complex-to-check',
] as const;

export type DestructivePatternName = (typeof DESTRUCTIVE_PATTERN_NAMES)[number];

/**
 * The name of the known destructive pattern `argv` matches, or undefined.
 *
 * @example destructivePattern(['sudo', '/bin/rm', '-rf', '/var/lib/app']) // 'rm-recursive-or-force'
 * @example destructivePattern(['echo', 'rm -rf /'])                      // undefined (echo only prints)
 */
export function destructivePattern(argv: readonly string[]): DestructivePatternName | undefined {
  if (!Array.isArray(argv)) return undefined;
  const words = argv.map((w) => (typeof w === 'string' ? w : ''));
  budget = WORK_BUDGET;
  try {
    return matchArgv(words, 0);
  } catch (e) {
    if (e === OUT_OF_BUDGET) return 'too-complex-to-check';
    throw e;
  }
}

/**
 * Characters and words examined per call. Nested quoting can make the same text be looked at once per level;
 * past this budget the command is called destructive ('too-complex-to-check'): it then needs a gate, which is
 * the safe answer, and compiling stays fast inside a workflow task.
 */
export const WORK_BUDGET = 4_000_000;
const OUT_OF_BUDGET = { reason: 'destructive-pattern work budget exhausted' };
let budget = WORK_BUDGET;

function spend(units: number): void {
  budget -= units;
  if (budget < 0) throw OUT_OF_BUDGET;
}

type Match = DestructivePatternName | undefined;

function matchArgv(argv: readonly string[], depth: number): Match {
  if (depth > MAX_DEPTH || argv.length === 0) return undefined;
  return matchCommandAt(argv, 0, depth, new Map()) ?? matchSqlInArgs(argv);
}

/** Memoised per start index: wrappers try every later position, and wrappers can nest. */
function matchCommandAt(argv: readonly string[], start: number, depth: number, memo: Map<number, Match | null>): Match {
  const cached = memo.get(start);
  if (cached !== undefined) return cached ?? undefined;
  memo.set(start, null);
  const result = matchCommand(argv, start, depth, memo);
  memo.set(start, result ?? null);
  return result;
}

const WRAPPERS = new Set([
  'sudo', 'doas', 'env', 'nohup', 'nice', 'ionice', 'timeout', 'stdbuf', 'chroot', 'xargs', 'exec', 'command',
  'builtin', 'busybox', 'setsid', 'flock', 'time', 'strace', 'ltrace', 'unbuffer', 'chrt', 'taskset', 'runuser',
  'su', 'watch', 'eval', 'ssh', 'script', 'systemd-run', 'nsenter', 'unshare', 'firejail', 'torsocks', 'proxychains',
  'parallel', 'caffeinate', 'fakeroot', 'sg', 'catchsegv', 'pkexec', 'setpriv', 'capsh', 'numactl', 'cgexec', 'prlimit',
  'sshpass', 'gosu', 'su-exec', 'tini', 'dumb-init', 'chpst', 'eatmydata', 'nocache', 'faketime', 'trickle', 'cpulimit',
  'ip', 'start-stop-daemon', 'valgrind', 'stdbuf', 'doas', 'sudoedit',
]);
/** Wrappers whose arguments are (also) joined into a shell command line. */
const SCRIPT_WRAPPERS = new Set(['su', 'watch', 'eval', 'ssh', 'script', 'runuser', 'parallel', 'sg']);
const CONTAINER_TOOLS = new Set(['docker', 'podman', 'nerdctl']);
const KUBE_TOOLS = new Set(['kubectl', 'oc']);
const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'rbash', 'yash', 'fish', 'csh', 'tcsh', 'pwsh', 'powershell']);
const INTERPRETER = /^(python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|deno|bun|php[0-9.]*|lua[0-9.]*|luajit|tclsh[0-9.]*|awk|gawk|mawk|nawk|osascript)$/;

function basename(path: string): string {
  const i = path.lastIndexOf('/');
  return i >= 0 ? path.slice(i + 1) : path;
}

function isOption(arg: string): boolean {
  return arg.length > 1 && arg.startsWith('-');
}

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;
/** A path a wrapper may run as a command: in a bin/sbin/libexec directory, an init script, or ./NAME. */
const EXECUTABLE_PATH = /(^|\/)(s?bin|libexec|init\.d|rc\.d)\/[^/]+$|^\.\.?\/[^/]+$/;
/** The dynamic loader runs the program named by its first operand (`/lib64/ld-linux-x86-64.so.2 /bin/rm -rf /`). */
const DYNAMIC_LOADER = /^ld(-linux[^/]*)?\.so/;

/**
 * Whether an argument may be script text: an option is not, and neither is a lone file path (`awk -F: '{...}'
 * /etc/passwd` reads the file; it does not run `passwd`) unless it names an executable (EXECUTABLE_PATH).
 */
function worthScanning(a: string): boolean {
  if (isOption(a)) return false;
  return /[\s;&|`$()<>]/.test(a) || !a.includes('/') || EXECUTABLE_PATH.test(a);
}

function matchCommand(argv: readonly string[], start: number, depth: number, memo: Map<number, Match | null>): Match {
  spend(argv.length - start);
  const cmd = basename(argv[start] ?? '');
  const args = argv.slice(start + 1);

  // `/etc/init.d/nginx stop`: the script's name says nothing, its action does.
  if (/^\/etc\/(init\.d|rc\.d)\//.test(argv[start] ?? '') && args.some((a) => a !== 'status')) return 'service-change';

  const specific = matchSpecific(cmd, args, depth);
  if (specific) return specific;

  if (SHELLS.has(cmd)) {
    // Every non-option argument may be the -c script (`bash -o pipefail -c '...'`, `sh -ec '...'`).
    const runsScript = args.some((a) => /^-[A-Za-z]*c[A-Za-z]*$/.test(a) || /^-(command|Command|c)$/i.test(a));
    if (runsScript) {
      for (const a of args) {
        if (!worthScanning(a)) continue;
        const m = scanScript(a, depth + 1, false);
        if (m) return m;
      }
    }
    return undefined;
  }

  if (INTERPRETER.test(cmd)) {
    // perl -i / ruby -i edit files in place (`perl -pi -e 's/a/b/' /etc/x`).
    if (/^(perl|ruby)/.test(cmd) && args.some((a) => /^-[A-Za-z]*i/.test(a) && !a.startsWith('--'))) return 'file-write';
    const inline = hasInlineCode(cmd, args);
    for (const a of args) {
      if (!worthScanning(a)) continue;
      const m = scanScript(a, depth + 1, true);
      if (m) return m;
      // Code given on the command line that runs, deletes or writes something itself (os.system, unlink,
      // shutil.rmtree, awk's system() or print > file, ...): destructive whatever it names.
      if (inline && INTERPRETER_SIDE_EFFECT.test(a)) return 'interpreter-side-effect';
      if (inline && AWK.test(cmd) && AWK_SIDE_EFFECT.test(a)) return 'interpreter-side-effect';
    }
    return undefined;
  }

  const wraps = WRAPPERS.has(cmd) || CONTAINER_TOOLS.has(cmd) || KUBE_TOOLS.has(cmd) || DYNAMIC_LOADER.test(cmd);
  if (wraps) {
    if (SCRIPT_WRAPPERS.has(cmd)) {
      for (const a of args) {
        if (!worthScanning(a)) continue;
        const m = scanScript(a, depth + 1, false);
        if (m) return m;
      }
    }
    // `env -S 'rm -rf /'` splits its argument into a command line.
    if (cmd === 'env') {
      for (let i = 0; i < args.length; i++) {
        const a = args[i] ?? '';
        const inline = a.startsWith('--split-string=') ? a.slice(15) : /^-[A-Za-z]*S./.test(a) ? a.slice(a.indexOf('S') + 1) : undefined;
        const next = a === '-S' || a === '--split-string' || /^-[A-Za-z]*S$/.test(a) ? args[i + 1] : undefined;
        for (const text of [inline, next]) {
          if (text === undefined) continue;
          const m = scanScript(text, depth + 1, false);
          if (m) return m;
        }
      }
    }
    for (let i = start + 1; i < argv.length; i++) {
      const a = argv[i] ?? '';
      if (isOption(a) || ASSIGNMENT.test(a) || a === '--') continue;
      // An operand such as /etc/passwd or /srv/kill is a file, not the `passwd` or `kill` command.
      if (a.includes('/') && !EXECUTABLE_PATH.test(a)) continue;
      const m = matchCommandAt(argv, i, depth, memo);
      if (m) return m;
    }
  }
  return undefined;
}

function matchSpecific(cmd: string, args: readonly string[], depth: number): Match {
  switch (cmd) {
    case 'rm':
      return rmIsRecursiveOrForced(args) ? 'rm-recursive-or-force' : 'file-delete';
    case 'unlink':
    case 'rmdir':
    case 'srm':
      return 'file-delete';
    case 'truncate':
    case 'fallocate':
      return 'file-truncate';
    case 'sed':
      return args.some((a) => a === '--in-place' || a.startsWith('--in-place=') || (/^-[A-Za-z]*i/.test(a) && !a.startsWith('--'))) ? 'file-write' : undefined;
    case 'rsync':
      return args.some((a) => a.startsWith('--delete') || a.startsWith('--remove-source-files')) ? 'file-delete' : 'file-write';
    case 'scp':
    case 'sftp':
    case 'sudoedit':
    case 'patch':
      return 'file-write';
    case 'curl':
      return curlWrites(args) ? 'file-write' : undefined;
    case 'wget':
      return wgetWrites(args) ? 'file-write' : undefined;
    case 'kill':
    case 'pkill':
    case 'killall':
    case 'killall5':
    case 'skill':
    case 'slay':
      return killSignals(cmd, args) ? 'process-kill' : undefined;
    case 'service':
    case 'rc-service':
    case 'invoke-rc.d': {
      const positionals = args.filter((a) => !isOption(a));
      return positionals.length >= 2 && positionals.slice(1).some((a) => a !== 'status') ? 'service-change' : undefined;
    }
    case 'iptables':
    case 'ip6tables':
    case 'iptables-legacy':
    case 'ip6tables-legacy':
    case 'iptables-nft':
    case 'ip6tables-nft':
    case 'ebtables':
    case 'arptables':
      return iptablesWrites(args) ? 'firewall-change' : undefined;
    case 'iptables-restore':
    case 'ip6tables-restore':
    case 'nft':
      return cmd === 'nft' && nftReadOnly(args) ? undefined : 'firewall-change';
    case 'ufw': {
      const first = args.find((a) => !isOption(a));
      return first === undefined || ['status', 'version', 'show', 'help'].includes(first) || (first === 'app' && args.includes('list')) ? undefined : 'firewall-change';
    }
    case 'firewall-cmd':
      return args.some((a) => /^--(add|remove|change|set|reload|complete-reload|runtime-to-permanent|new|delete|lockdown|panic|load|reset|direct)/.test(a)) ? 'firewall-change' : undefined;
    case 'userdel':
    case 'useradd':
    case 'usermod':
    case 'groupadd':
    case 'groupdel':
    case 'groupmod':
    case 'chpasswd':
    case 'chgpasswd':
    case 'deluser':
    case 'adduser':
    case 'delgroup':
    case 'addgroup':
    case 'newusers':
    case 'gpasswd':
    case 'vipw':
    case 'vigr':
    case 'visudo':
      return args.length === 1 && (args[0] === '--help' || args[0] === '-h' || (cmd === 'visudo' && args[0] === '-c')) ? undefined : 'account-change';
    case 'passwd':
      return args.some((a) => a === '-S' || a === '--status') ? undefined : 'account-change';
    case 'chage':
      return args.some((a) => a === '-l' || a === '--list') ? undefined : 'account-change';
    case 'apt':
    case 'apt-get':
    case 'aptitude':
    case 'yum':
    case 'dnf':
    case 'zypper':
    case 'apk':
    case 'snap':
    case 'pip':
    case 'pip3':
      return args.some((a) => PACKAGE_VERBS.has(a)) ? 'package-change' : undefined;
    case 'dpkg':
      return args.some((a) => /^(-[irP]|--(install|remove|purge|configure|unpack))$/.test(a)) ? 'package-change' : undefined;
    case 'rpm':
      return args.some((a) => /^(-[eiUF][A-Za-z]*|--(erase|install|upgrade|freshen))$/.test(a)) ? 'package-change' : undefined;
    case 'pacman':
      return args.some((a) => /^-[SRU]/.test(a) || /^--(sync|remove|upgrade)$/.test(a)) ? 'package-change' : undefined;
    case 'umount':
    case 'swapoff':
    case 'swapon':
    case 'losetup':
      return args.length === 0 || (cmd === 'swapon' && args.every((a) => a === '--show' || a === '-s' || a === '--summary')) || (cmd === 'losetup' && args.every((a) => a === '-a' || a === '-l' || a === '--list' || a === '--all'))
        ? undefined
        : 'mount-change';
    case 'mount':
      return args.some((a) => !isOption(a) || a === '-a' || a === '--all' || a.startsWith('-o') || a === '--bind' || a === '--move') ? 'mount-change' : undefined;
    case 'sysctl':
      return args.some((a) => a.includes('=') || /^-[A-Za-z]*[wp]/.test(a) || a === '--write' || a === '--load' || a === '--system') ? 'sysctl-write' : undefined;
    case 'ip':
      return args.some((a) => ['add', 'del', 'delete', 'set', 'flush', 'change', 'replace', 'append', 'prepend', 'attach', 'detach'].includes(a)) ? 'network-change' : undefined;
    case 'ifdown':
    case 'ifup':
      return 'network-change';
    case 'ifconfig':
      return args.filter((a) => !isOption(a)).length >= 2 ? 'network-change' : undefined;
    case 'nmcli':
      return args.some((a) => ['down', 'up', 'delete', 'modify', 'disconnect', 'off', 'add', 'reload'].includes(a)) ? 'network-change' : undefined;
    case 'setfacl':
    case 'chattr':
      return 'permission-change';
    case 'mkfs':
    case 'mke2fs':
    case 'mkswap':
      return 'mkfs';
    case 'dd':
      return args.some((a) => a.startsWith('of=')) ? 'dd-of' : undefined;
    case 'shutdown':
    case 'reboot':
    case 'halt':
    case 'poweroff':
    case 'wipefs':
    case 'shred':
      return cmd;
    case 'init':
    case 'telinit':
      return args.some((a) => a === '0' || a === '6') ? 'init-runlevel' : undefined;
    case 'systemctl':
      if (args.some((a) => SYSTEMCTL_POWER.has(a) || SYSTEMCTL_POWER_TARGET.test(a))) return 'systemctl-power';
      return args.some((a) => SYSTEMCTL_CHANGE.has(a)) ? 'service-change' : undefined;
    case 'fdisk':
    case 'sfdisk':
    case 'gdisk':
    case 'sgdisk':
    case 'cfdisk':
    case 'cgdisk':
      return partitionToolWrites(cmd, args) ? 'partition-write' : undefined;
    case 'parted':
      return partedWrites(args) ? 'partition-write' : undefined;
    case 'dropdb':
      return 'sql-drop-database';
    case 'mysqladmin':
      return args.some((a) => a.toLowerCase() === 'drop') ? 'sql-drop-database' : undefined;
    case 'chmod':
      return chmodPattern(args) ?? (args.some((a) => !isOption(a) || a.startsWith('--reference')) ? 'permission-change' : undefined);
    case 'chown':
    case 'chgrp':
      if (hasRecursiveCapitalR(args) && args.some((a) => !isOption(a) && isSystemPath(a))) return 'chown-recursive-root';
      return args.some((a) => !isOption(a) || a.startsWith('--reference')) ? 'permission-change' : undefined;
    case 'tee': {
      const files = args.filter((a) => !isOption(a));
      if (files.some((a) => BLOCK_DEVICE.test(a))) return 'device-write';
      return files.some((a) => !HARMLESS_TARGET.test(a)) ? 'file-write' : undefined;
    }
    case 'cp':
    case 'mv':
    case 'ddrescue':
    case 'pv':
    case 'install':
    case 'ln':
    case 'link': {
      const operands = args.filter((a) => !isOption(a));
      const last = operands[operands.length - 1];
      if (last !== undefined && BLOCK_DEVICE.test(last)) return 'device-write';
      // pv only reads its files and writes stdout; the others write (or replace) their last operand or -t DIR.
      if (cmd === 'pv') return undefined;
      return operands.length > 0 || args.some((a) => a.startsWith('-t') || a.startsWith('--target-directory')) ? 'file-write' : undefined;
    }
    case 'find':
      return findPattern(args, depth);
    case 'crontab': {
      if (args.some((a) => /^-[A-Za-z]*r/.test(a) && !a.startsWith('--'))) return 'crontab-remove';
      // Only listing (-l, with -u USER) leaves the crontab as it is; a file, `-` or -e replaces it.
      const rest = args.filter((a, i) => a !== '-l' && a !== '-u' && args[i - 1] !== '-u' && !/^-u./.test(a));
      return rest.length > 0 ? 'crontab-change' : undefined;
    }
    case 'lvremove':
    case 'vgremove':
    case 'pvremove':
      return 'lvm-remove';
    case 'zfs':
    case 'zpool':
      return args.includes('destroy') ? 'zfs-destroy' : undefined;
    case 'redis-cli':
      return args.some((a) => /^flush(all|db)$/i.test(a)) ? 'redis-flush' : undefined;
    default:
      break;
  }
  if (cmd.startsWith('mkfs.')) return 'mkfs';
  if (KUBE_TOOLS.has(cmd) && args.includes('delete')) return 'kubectl-delete';
  if (CONTAINER_TOOLS.has(cmd)) return containerPattern(args);
  return undefined;
}

function rmIsRecursiveOrForced(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a.startsWith('--')) {
      const name = a.slice(2).split('=')[0] ?? '';
      if (name.length === 0) continue;
      if ('recursive'.startsWith(name) || 'force'.startsWith(name) || ('no-preserve-root'.startsWith(name) && name.length >= 2)) return true;
    } else if (isOption(a) && /[rRf]/.test(a.slice(1))) {
      return true;
    }
  }
  return false;
}

const SYSTEMCTL_POWER = new Set(['poweroff', 'reboot', 'halt', 'kexec', 'soft-reboot', 'rescue', 'emergency']);
const SYSTEMCTL_POWER_TARGET = /^(poweroff|reboot|halt|kexec|soft-reboot|rescue|emergency)\.target$/;
/** systemctl verbs that change a unit or the manager (everything but status, show, cat, list-*, is-*, help). */
const SYSTEMCTL_CHANGE = new Set(['start', 'stop', 'restart', 'reload', 'try-restart', 'reload-or-restart', 'try-reload-or-restart',
  'condrestart', 'force-reload', 'enable', 'disable', 'reenable', 'mask', 'unmask', 'kill', 'clean', 'freeze', 'thaw', 'isolate',
  'set-default', 'daemon-reload', 'daemon-reexec', 'link', 'preset', 'preset-all', 'revert', 'edit', 'set-property',
  'set-environment', 'unset-environment', 'import-environment', 'reset-failed', 'switch-root', 'suspend', 'hibernate',
  'hybrid-sleep', 'suspend-then-hibernate', 'add-wants', 'add-requires', 'bind', 'mount-image']);

const PACKAGE_VERBS = new Set(['install', 'reinstall', 'remove', 'purge', 'autoremove', 'upgrade', 'full-upgrade', 'dist-upgrade',
  'erase', 'downgrade', 'update', 'add', 'del', 'uninstall', 'refresh', 'revert', 'build-dep', 'dup', 'patch', 'in', 'rm', 'up']);

/** Files that writing to changes nothing on the server. */
const HARMLESS_TARGET = /^(\/dev\/(null|stdout|stderr|tty|fd\/[0-9]+)|-)$/;

function curlWrites(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a.startsWith('--remote-name')) return true;
    if (a === '--output') {
      if (args[i + 1] !== '-') return true;
    } else if (a.startsWith('--output=')) {
      if (a !== '--output=-') return true;
    } else if (/^-[A-Za-z]/.test(a) && !a.startsWith('--')) {
      // A short cluster: -O writes the remote name; after -o, the rest of the cluster (or the next argument) is the file.
      const o = a.search(/[oO]/);
      if (o < 0) continue;
      if (a[o] === 'O') return true;
      const value = a.length > o + 1 ? a.slice(o + 1) : args[i + 1];
      if (value !== '-') return true;
    }
  }
  return false;
}

function wgetWrites(args: readonly string[]): boolean {
  if (args.includes('--spider')) return false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--output-document=-' || a === '-O-' || /^-[A-Za-z]*O-$/.test(a)) return false;
    if ((a === '-O' || a === '--output-document' || /^-[A-Za-z]+O$/.test(a)) && args[i + 1] === '-') return false;
  }
  return true;
}

/** kill -l / -L (list signals), --help, --version and kill -0 (does the process exist?) send nothing. */
function killSignals(cmd: string, args: readonly string[]): boolean {
  if (args.length === 0) return false;
  if (args.some((a) => ['-l', '-L', '--list', '--table', '--help', '-V', '--version'].includes(a))) return false;
  if (cmd === 'kill' && (args[0] === '-0' || args[0] === '-s0' || (args[0] === '-s' && args[1] === '0'))) return false;
  return true;
}

const IPTABLES_CHANGE = /^(-[AIDRFXNPZE][A-Za-z]*|--(append|insert|delete|replace|flush|delete-chain|new-chain|new|policy|zero|rename-chain))$/;

function iptablesWrites(args: readonly string[]): boolean {
  if (args.some((a) => IPTABLES_CHANGE.test(a))) return true;
  // Without a change option it lists (-L, -S), checks (-C) or prints help; anything else is unknown: say so.
  return !args.some((a) => /^-[A-Za-z]*[LSC]/.test(a) && !a.startsWith('--') || ['--list', '--list-rules', '--check', '--help', '-h', '--version', '-V'].includes(a));
}

function nftReadOnly(args: readonly string[]): boolean {
  if (args.some((a) => a === '-f' || a.startsWith('--file') || /^-[A-Za-z]*f/.test(a) && !a.startsWith('--') || a === '-i' || a === '--interactive')) return false;
  const first = args.find((a) => !isOption(a));
  return first === 'list' || first === 'describe' || first === 'monitor' || args.includes('--help') || args.includes('-h') || args.includes('-v') || args.includes('--version');
}

/** Interpreter options that take the program text from the next argument (or glued to them). */
function hasInlineCode(cmd: string, args: readonly string[]): boolean {
  if (AWK.test(cmd)) return !args.some((a) => a === '-f' || a.startsWith('--file') || /^-[A-Za-z]*f/.test(a) && !a.startsWith('--'));
  return args.some((a) => /^-[A-Za-z]*[ceErp]/.test(a) && !a.startsWith('--') || ['--eval', '--print', '--command', '--exec'].includes(a.split('=')[0] ?? '') || a === 'eval');
}

const AWK = /^(awk|gawk|mawk|nawk)$/;
/**
 * Calls that run a program, delete, move, write or signal, in the interpreters' usual spellings. Deliberately broad
 * (a false positive costs one approval): system, exec*, popen, spawn*, subprocess, child_process, unlink, remove,
 * rmtree, rmdir, rename, kill, chmod, chown, truncate, write* (not to stdout or stderr), open(.., 'w'), perl's
 * open(F, ">file"), backquotes, eval.
 */
const INTERPRETER_SIDE_EFFECT = new RegExp(
  [
    String.raw`\b(system|exec[A-Za-z_]*|popen[0-9]?|spawn[A-Za-z_]*|subprocess|child_process|fork|shell_exec|passthru|proc_open|qx|syscall)\b`,
    String.raw`\b(unlink[A-Za-z]*|remove[A-Za-z]*|rmtree|rmdir|rmSync|rm_rf?|rm|rename[A-Za-z]*|kill[A-Za-z]*|chmod|chown|truncate|symlink|mkfifo|appendFile[A-Za-z]*|copyFile[A-Za-z]*|copyfile|copytree|cpSync)\b`,
    String.raw`\b(os\.replace|shutil\.(move|copy[a-z0-9]*))\b`,
    String.raw`(?<!(stdout|stderr|console|STDOUT|STDERR)\.)\b(write[A-Za-z_]*|syswrite)\b`,
    String.raw`\bopen\s*\([^)]*,\s*['"][^'"]*[wax+]`,
    String.raw`\bopen\s*\(?\s*[A-Za-z_$]*\s*,?\s*['"]\s*\+?[>|]`,
    String.raw`\bFile\.(write|open|delete)`,
    String.raw`\b(eval|__import__|importlib|ctypes)\b`,
    String.raw`\b(Deno\.(run|Command)|Bun\.spawn)\b`,
    '`',
  ].join('|'),
);
/** awk: system(), print/printf > file or | command, getline from a command, |& coprocess. */
const AWK_SIDE_EFFECT = /\bsystem\s*\(|\bprintf?\b[^;{}]*(>|\|)|\|\s*getline|\|&|\bclose\s*\(/;

/** Expands `-abc` into `-a -b -c` and `--name=value` into `--name`; digits glued to a short option are values. */
function optionNames(args: readonly string[]): string[] {
  const names: string[] = [];
  for (const a of args) {
    if (a === '--') break;
    if (a.startsWith('--')) names.push(a.split('=')[0] ?? a);
    else if (isOption(a)) {
      for (const ch of a.slice(1).replace(/[0-9=].*$/, '')) names.push('-' + ch);
    }
  }
  return names;
}

interface PartitionToolReadOnly {
  /** Options that never write. */
  readOnly: ReadonlySet<string>;
  /** Options that make the tool do one read-only thing and exit (without one, it is interactive or scripted). */
  exitModes: ReadonlySet<string> | 'any';
}

const PARTITION_TOOLS: Record<string, PartitionToolReadOnly> = {
  fdisk: {
    readOnly: new Set(['-l', '--list', '-x', '--list-details', '-h', '--help', '-V', '--version', '-u', '--units']),
    exitModes: new Set(['-l', '--list', '-x', '--list-details', '-h', '--help', '-V', '--version']),
  },
  sfdisk: {
    readOnly: new Set(['-l', '--list', '-d', '--dump', '-J', '--json', '-s', '--show-size', '-g', '--show-geometry',
      '-V', '--verify', '-h', '--help', '-v', '--version', '-F', '--list-free', '-q', '--quiet']),
    exitModes: new Set(['-l', '--list', '-d', '--dump', '-J', '--json', '-s', '--show-size', '-g', '--show-geometry',
      '-V', '--verify', '-h', '--help', '-v', '--version', '-F', '--list-free']),
  },
  gdisk: { readOnly: new Set(['-l', '-h', '--help']), exitModes: new Set(['-l', '-h', '--help']) },
  sgdisk: {
    readOnly: new Set(['-p', '--print', '-v', '--verify', '-i', '--info', '-O', '--print-mbr', '-L', '--list-types',
      '-P', '--pretend', '-h', '-?', '--help', '-V', '--version', '-b', '--backup']),
    exitModes: 'any',
  },
  cfdisk: { readOnly: new Set(['-h', '--help', '-V', '--version']), exitModes: new Set(['-h', '--help', '-V', '--version']) },
  cgdisk: { readOnly: new Set(['-h', '--help', '-V', '--version']), exitModes: new Set(['-h', '--help', '-V', '--version']) },
};

function partitionToolWrites(cmd: string, args: readonly string[]): boolean {
  const tool = PARTITION_TOOLS[cmd];
  if (!tool) return true;
  const names = optionNames(args);
  if (names.some((n) => !tool.readOnly.has(n))) return true;
  if (tool.exitModes === 'any') return false;
  const modes = tool.exitModes;
  return !names.some((n) => modes.has(n));
}

const PARTED_READ_ONLY_WORDS = new Set(['print', 'p', 'help', 'version', 'unit', 's', 'b', 'kb', 'mb', 'gb', 'tb',
  'kib', 'mib', 'gib', 'tib', '%', 'cyl', 'chs', 'compact', 'free', 'all', 'list', 'devices']);

function partedWrites(args: readonly string[]): boolean {
  const names = optionNames(args);
  if (names.some((n) => n === '-l' || n === '--list' || n === '-h' || n === '--help' || n === '-v' || n === '--version')) {
    return names.some((n) => !['-l', '--list', '-h', '--help', '-v', '--version', '-m', '--machine', '-s', '--script'].includes(n));
  }
  const positionals = args.filter((a) => !isOption(a));
  const commands = positionals.slice(1);
  // `parted /dev/sda` alone is interactive: anything can be typed at it.
  if (commands.length === 0) return true;
  return commands.some((c) => !PARTED_READ_ONLY_WORDS.has(c.toLowerCase()));
}

function hasRecursiveCapitalR(args: readonly string[]): boolean {
  return args.some((a) => a === '--recursive' || (isOption(a) && !a.startsWith('--') && a.slice(1).includes('R')));
}

const SYSTEM_DIRS = new Set(['/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/opt', '/proc',
  '/root', '/run', '/sbin', '/srv', '/sys', '/usr', '/var', '/*']);

/** `/`, `//`, `/./`, `/etc/`, `/usr/.` all count; `/etc/app` does not. */
function isSystemPath(p: string): boolean {
  if (!p.startsWith('/')) return false;
  const segments = p.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return true; // `/tmp/../` walks back to the root; be conservative
  const normal = '/' + segments.join('/');
  return SYSTEM_DIRS.has(normal);
}

const WORLD_WRITABLE_MODE = /^(0?0?777|[0-7]?777|(a|ugo|ogu|uog|gou|guo|oug)?[+=]rwx[Xst]*)$/;

function chmodPattern(args: readonly string[]): Match {
  if (!hasRecursiveCapitalR(args)) return undefined;
  const operands = args.filter((a) => !isOption(a));
  if (operands.slice(1).some(isSystemPath)) return 'chmod-recursive-root';
  // With --reference there is no mode operand; otherwise the first operand is the mode.
  if (operands[0] !== undefined && WORLD_WRITABLE_MODE.test(operands[0])) return 'chmod-recursive-777';
  return undefined;
}

const BLOCK_DEVICE = /^\/dev\/(sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|md\d|dm-\d|loop\d|mapper\/|disk\/)/;
const DEVICE_REDIRECT = /[0-9&]?>[>|&]?\s*\/dev\/(sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|md\d|dm-\d|loop\d|mapper\/|disk\/)/;

function findPattern(args: readonly string[], depth: number): Match {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '-delete') return 'find-delete';
    if (a === '-fprint' || a === '-fprint0' || a === '-fprintf' || a === '-fls') return 'file-write';
    if (a === '-exec' || a === '-execdir' || a === '-ok' || a === '-okdir') {
      let end = i + 1;
      while (end < args.length && args[end] !== ';' && args[end] !== '+' && args[end] !== '\\;') end++;
      const sub = args.slice(i + 1, end);
      const subCmd = basename(sub[0] ?? '');
      if (subCmd === 'rm' || subCmd === 'shred' || subCmd === 'unlink') return 'find-delete';
      const m = matchArgv(sub, depth + 1);
      if (m) return m;
      i = end;
    }
  }
  return undefined;
}

const CONTAINER_OBJECTS = new Set(['system', 'container', 'volume', 'image', 'network', 'builder', 'buildx', 'pod']);
const CONTAINER_SUBCOMMANDS = new Set([...CONTAINER_OBJECTS, 'rm', 'rmi', 'exec', 'run', 'ps', 'logs', 'inspect', 'start', 'stop',
  'restart', 'kill', 'pull', 'push', 'build', 'images', 'cp', 'compose', 'create', 'top', 'stats', 'info', 'version', 'login', 'tag']);

function containerPattern(args: readonly string[]): Match {
  const positionals = args.filter((a) => !isOption(a));
  // The subcommand is the first known word: `docker exec web rm -rf /data` is an exec, checked as a wrapper.
  const at = positionals.findIndex((p) => CONTAINER_SUBCOMMANDS.has(p));
  if (at < 0) return undefined;
  const sub = positionals[at] ?? '';
  const next = positionals[at + 1] ?? '';
  const removes = sub === 'rm' || sub === 'rmi' || (CONTAINER_OBJECTS.has(sub) && (next === 'rm' || next === 'remove'));
  const forced = args.some((a) => a === '--force' || (isOption(a) && !a.startsWith('--') && a.slice(1).includes('f')));
  if (removes && forced) return 'docker-rm-force';
  if (CONTAINER_OBJECTS.has(sub) && next === 'prune') return 'docker-prune';
  return undefined;
}

/** SQL is checked in every element: psql -c, mysql -e, sqlite3 DB "...", clickhouse --query, ... */
function matchSqlInArgs(argv: readonly string[]): Match {
  for (const a of argv) {
    const m = matchSql(a);
    if (m) return m;
  }
  return undefined;
}

function matchSql(text: string): Match {
  spend(text.length);
  if (!/drop|truncate|delete/i.test(text)) return undefined;
  const sql = text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/--[^\n]*/g, ' ');
  if (/\bdrop\s+(temporary\s+)?table\b/i.test(sql)) return 'sql-drop-table';
  if (/\bdrop\s+(database|schema)\b/i.test(sql)) return 'sql-drop-database';
  if (/\btruncate\s+(table\s+)?(only\s+)?[A-Za-z_"`[]/i.test(sql)) return 'sql-truncate';
  if (/\bdelete\s+from\s+\S/i.test(sql) && !/\bwhere\b/i.test(sql)) return 'sql-delete-all';
  return undefined;
}

const PIPE_TO_SHELL = /\b(curl|wget|fetch)\b[^\n;&|]*\|\s*(sudo\s+(-\S+\s+)*)?(env\s+)?(\/\S*\/)?(ba|da|z|k|mk|a)?sh\b/;
const FORK_BOMB = /([A-Za-z_:][A-Za-z0-9_:]*)\s*\(\)\s*\{[^}]*\1\s*\|\s*\1\s*&/;

/** Words that start a compound command or prefix a simple one; skipped to find the command name. */
const SHELL_PREFIX_WORDS = new Set(['if', 'then', 'else', 'elif', 'do', 'while', 'until', '!', '{', '}', 'time', 'coproc']);

/**
 * Checks a shell script (or interpreter code). `stringsAreScripts`: for interpreter code, each quoted string
 * with a space in it is also checked as a script, since such strings are what code hands to system().
 */
function scanScript(text: string, depth: number, stringsAreScripts: boolean): Match {
  if (depth > MAX_DEPTH || text.length === 0) return undefined;
  spend(text.length);
  const script = text.replace(/\$\{IFS\}|\$IFS\b/g, ' ');
  if (DEVICE_REDIRECT.test(script)) return 'device-write';
  if (PIPE_TO_SHELL.test(script)) return 'pipe-to-shell';
  if (FORK_BOMB.test(script)) return 'fork-bomb';
  const { commands, substitutions, quoted, redirects } = tokenizeShell(script);
  if (redirects.some((target) => !HARMLESS_TARGET.test(target))) return 'file-write';
  for (const words of commands) {
    let i = 0;
    while (i < words.length && (SHELL_PREFIX_WORDS.has(words[i] ?? '') || ASSIGNMENT.test(words[i] ?? ''))) i++;
    const m = matchArgv(words.slice(i), depth);
    if (m) return m;
  }
  for (const s of substitutions) {
    const m = scanScript(s, depth + 1, stringsAreScripts);
    if (m) return m;
  }
  if (stringsAreScripts) {
    for (const q of quoted) {
      if (!/\s/.test(q)) continue;
      const m = scanScript(q, depth + 1, true);
      if (m) return m;
    }
  }
  return undefined;
}

interface Tokens {
  commands: string[][];
  /** Double-quoted words holding `$(...)` or backquotes: their commands run too. */
  substitutions: string[];
  /** Contents of every quoted string. */
  quoted: string[];
  /** Targets of output redirections (`> f`, `>> f`, `&> f`, `>| f`), not fd duplications (`2>&1`). */
  redirects: string[];
}

/** A small POSIX-ish word splitter: enough to find command names and their arguments, not a full parser. */
function tokenizeShell(text: string): Tokens {
  const commands: string[][] = [];
  const substitutions: string[] = [];
  const quoted: string[] = [];
  const redirects: string[] = [];
  let current: string[] = [];
  let word = '';
  let inWord = false;
  let skipNextWord = false;
  /** The operator of the redirection whose target is the next word ('' for input). */
  let redirectOp = '';

  const endWord = (): void => {
    if (inWord) {
      if (skipNextWord) {
        skipNextWord = false;
        // `>&2`, `2>&1`, `>&-` duplicate or close a descriptor; any other output target is a file.
        if (redirectOp.includes('>') && !(redirectOp.endsWith('&') && /^(\d+|-)$/.test(word))) redirects.push(word);
      } else current.push(word);
    }
    word = '';
    inWord = false;
  };
  const endCommand = (): void => {
    endWord();
    skipNextWord = false;
    redirectOp = '';
    if (current.length > 0) commands.push(current);
    current = [];
  };

  let i = 0;
  while (i < text.length) {
    const ch = text[i] ?? '';
    if (ch === '\\') {
      const next = text[i + 1];
      if (next === '\n') { i += 2; continue; }
      if (next !== undefined) { word += next; inWord = true; }
      i += 2;
      continue;
    }
    if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      const body = end < 0 ? text.slice(i + 1) : text.slice(i + 1, end);
      word += body;
      inWord = true;
      quoted.push(body);
      i = end < 0 ? text.length : end + 1;
      continue;
    }
    if (ch === '"') {
      let body = '';
      let j = i + 1;
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && j + 1 < text.length && '"\\$`\n'.includes(text[j + 1] ?? '')) {
          if (text[j + 1] !== '\n') body += text[j + 1];
          j += 2;
        } else {
          body += text[j];
          j++;
        }
      }
      word += body;
      inWord = true;
      quoted.push(body);
      if (body.includes('$(') || body.includes('`')) substitutions.push(body);
      i = j + 1;
      continue;
    }
    if (ch === '#' && !inWord) {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
      continue;
    }
    if (ch === ' ' || ch === '\t' || ch === '\r') { endWord(); i++; continue; }
    if (ch === '\n' || ch === ';' || ch === '&' || ch === '|' || ch === '(' || ch === ')' || ch === '`') {
      endCommand();
      i++;
      continue;
    }
    if (ch === '$' && text[i + 1] === '(') { endCommand(); i += 2; continue; }
    if (ch === '>' || ch === '<') {
      // A file descriptor number glued to the operator (`2>`) is not an argument; the next word is the target.
      if (inWord && /^\d+$/.test(word)) { word = ''; inWord = false; }
      endWord();
      const opStart = i;
      i++;
      while (i < text.length && '<>&|'.includes(text[i] ?? '')) i++;
      const op = text.slice(opStart, i);
      // `<<`, `<<<` (here-documents and strings) and `<` read; `>`, `>>`, `>|`, `<>` write.
      redirectOp = op.startsWith('<') && !op.startsWith('<>') ? '' : op;
      skipNextWord = true;
      continue;
    }
    word += ch;
    inWord = true;
    i++;
  }
  endCommand();
  return { commands, substitutions, quoted, redirects };
}
