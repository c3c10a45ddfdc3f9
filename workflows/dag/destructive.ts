/**
 * Known destructive command patterns. A command node whose argv matches one is destructive whatever its
 * `destructive` flag says, so it must sit directly behind an approval gate.
 *
 * The check is deliberately conservative: a false positive costs one approval click, a false negative can
 * cost a server. It looks at the argv as the agent will run it (no shell), and also looks *into* things that
 * run other commands:
 *   - wrappers: sudo, doas, env, nohup, nice, ionice, timeout, stdbuf, chroot, xargs, exec, command, busybox,
 *     setsid, flock, time, strace, watch, runuser, su, docker/podman exec|run, kubectl exec, ssh - every later
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
 *   too-complex-to-check    checking needed more than WORK_BUDGET steps (deeply nested quoting): treated as
 *                           destructive, because a gate is the safe answer when we cannot tell
 *
 * Limits (why the flag exists too): commands chosen at run time (argv built from params) are checked on the
 * template text at compile time and must be checked again on the rendered argv by the runner; obfuscation
 * beyond quoting (base64 | sh, variables holding command names, `$'\x72m'`) is not decoded.
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
  'parallel', 'caffeinate', 'fakeroot', 'sg', 'catchsegv',
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

function matchCommand(argv: readonly string[], start: number, depth: number, memo: Map<number, Match | null>): Match {
  spend(argv.length - start);
  const cmd = basename(argv[start] ?? '');
  const args = argv.slice(start + 1);

  const specific = matchSpecific(cmd, args, depth);
  if (specific) return specific;

  if (SHELLS.has(cmd)) {
    // Every non-option argument may be the -c script (`bash -o pipefail -c '...'`, `sh -ec '...'`).
    const runsScript = args.some((a) => /^-[A-Za-z]*c[A-Za-z]*$/.test(a) || /^-(command|Command|c)$/i.test(a));
    if (runsScript) {
      for (const a of args) {
        if (isOption(a)) continue;
        const m = scanScript(a, depth + 1, false);
        if (m) return m;
      }
    }
    return undefined;
  }

  if (INTERPRETER.test(cmd)) {
    for (const a of args) {
      if (isOption(a)) continue;
      const m = scanScript(a, depth + 1, true);
      if (m) return m;
    }
    return undefined;
  }

  const wraps = WRAPPERS.has(cmd) || CONTAINER_TOOLS.has(cmd) || KUBE_TOOLS.has(cmd);
  if (wraps) {
    if (SCRIPT_WRAPPERS.has(cmd)) {
      for (const a of args) {
        if (isOption(a)) continue;
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
      const m = matchCommandAt(argv, i, depth, memo);
      if (m) return m;
    }
  }
  return undefined;
}

function matchSpecific(cmd: string, args: readonly string[], depth: number): Match {
  switch (cmd) {
    case 'rm':
      return rmIsRecursiveOrForced(args) ? 'rm-recursive-or-force' : undefined;
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
      return args.some((a) => SYSTEMCTL_POWER.has(a) || SYSTEMCTL_POWER_TARGET.test(a)) ? 'systemctl-power' : undefined;
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
      return chmodPattern(args);
    case 'chown':
    case 'chgrp':
      return hasRecursiveCapitalR(args) && args.some((a) => !isOption(a) && isSystemPath(a)) ? 'chown-recursive-root' : undefined;
    case 'tee':
      return args.some((a) => !isOption(a) && BLOCK_DEVICE.test(a)) ? 'device-write' : undefined;
    case 'cp':
    case 'mv':
    case 'ddrescue':
    case 'pv':
    case 'install': {
      const operands = args.filter((a) => !isOption(a));
      const last = operands[operands.length - 1];
      return last !== undefined && BLOCK_DEVICE.test(last) ? 'device-write' : undefined;
    }
    case 'find':
      return findPattern(args, depth);
    case 'crontab':
      return args.some((a) => /^-[A-Za-z]*r/.test(a) && !a.startsWith('--')) ? 'crontab-remove' : undefined;
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
  const { commands, substitutions, quoted } = tokenizeShell(script);
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
}

/** A small POSIX-ish word splitter: enough to find command names and their arguments, not a full parser. */
function tokenizeShell(text: string): Tokens {
  const commands: string[][] = [];
  const substitutions: string[] = [];
  const quoted: string[] = [];
  let current: string[] = [];
  let word = '';
  let inWord = false;
  let skipNextWord = false;

  const endWord = (): void => {
    if (inWord) {
      if (skipNextWord) skipNextWord = false;
      else current.push(word);
    }
    word = '';
    inWord = false;
  };
  const endCommand = (): void => {
    endWord();
    skipNextWord = false;
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
      i++;
      while (i < text.length && '<>&|'.includes(text[i] ?? '')) i++;
      skipNextWord = true;
      continue;
    }
    word += ch;
    inWord = true;
    i++;
  }
  endCommand();
  return { commands, substitutions, quoted };
}
