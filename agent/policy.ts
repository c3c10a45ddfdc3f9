/**
 * What the agent is willing to run. The desktop only *asks*: the agent's own tier and allowlist decide, so a
 * stolen desktop key (or a bug upstream) can do no more on this server than its operator granted here.
 *
 * A command runs only if every check passes, in this order (the first failure is the refusal, and its rule
 * name is stable: `command_not_allowed: <rule>: <detail>`):
 *
 *   1. input       empty-argv, nul-byte, arg-too-long, argv-too-long, too-many-args, cwd
 *   2. executable  executable-path (relative paths such as ./x or bin/x), executable-not-found (a bare name is
 *                  looked up in {@link SAFE_PATH} only, never the caller's PATH)
 *   3. destructive destructive-pattern (tiers below infrastructure): workflows/dag/destructive.ts
 *   4. tier        tier: read-only allows only commands known to read (cat, ls, systemctl status, ...);
 *                  standard adds service operations (systemctl restart, service X reload, nginx -s reload, ...);
 *                  infrastructure adds nothing of its own and leaves it to the allowlist
 *   5. allowlist   not-allowlisted (no entry for this executable), args-mismatch, path-traversal
 *   6. cwd         cwd (an entry's `cwd` list does not contain the request's working directory)
 *
 * There is no shell anywhere, so shell metacharacters (`;`, `|`, `$(...)`, backquotes, `>`) are plain bytes of
 * an argument: `echo '; rm -rf /'` prints that text. They are not refused for that reason; an allowlist pattern
 * decides whether such an argument is acceptable.
 *
 * The allowlist file (YAML or JSON, the same shape; agent/README.md has the full description):
 *
 *   version: 1
 *   tier: standard                 # optional: caps the enrolled tier (the stricter of the two applies)
 *   commands:
 *     - executable: systemctl      # bare name (looked up in SAFE_PATH) or an absolute path
 *       args: [restart, { regex: 'nginx|php-fpm' }]    # one pattern per argument position
 *     - executable: journalctl
 *       args: ['-u', { regex: '[a-z0-9@._-]+' }]
 *       rest: { regex: '-n|--no-pager|[0-9]{1,5}' }    # every further argument must match this
 *     - executable: cat
 *       args: [{ path: /var/log }]  # an absolute path inside /var/log: no '..', no symlink out of it
 *     - executable: /opt/deploy/run.sh
 *       rest: any                   # any further arguments (still subject to steps 1-4)
 *       cwd: [/opt/deploy]          # optional: where it may run (default: anywhere absolute)
 *
 * A pattern is a string (exact match), `{ regex: R }` (the whole argument must match R, anchored for you),
 * `{ path: DIR }`, or `any`.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { destructivePattern } from '../workflows/dag/destructive';
import { MAX_ARG_BYTES, MAX_ARGV_BYTES, MAX_ARGV_ENTRIES, MAX_PATH_LENGTH } from '../protocol/agent-messages';
import { AgentSetupError, checkOwnedAndPrivate } from './identity';

/** The only PATH the agent ever searches or hands to a command. */
export const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const TIERS = ['read-only', 'standard', 'infrastructure'] as const;
export type Tier = (typeof TIERS)[number];

export const POLICY_RULES = [
  'empty-argv',
  'nul-byte',
  'arg-too-long',
  'argv-too-long',
  'too-many-args',
  'executable-path',
  'executable-not-found',
  'destructive-pattern',
  'tier',
  'not-allowlisted',
  'args-mismatch',
  'path-traversal',
  'cwd',
] as const;
export type PolicyRule = (typeof POLICY_RULES)[number];

export type ArgPattern = { exact: string } | { regex: RegExp; source: string } | { path: string } | { any: true };

export interface AllowEntry {
  /** As written in the file (bare name or absolute path). */
  executable: string;
  args: ArgPattern[];
  rest?: ArgPattern;
  cwd?: string[];
}

export interface Allowlist {
  tier?: Tier;
  entries: AllowEntry[];
}

export interface Policy {
  tier: Tier;
  allowlist: Allowlist;
  /** Test hook: the directories searched for bare names. Production uses SAFE_PATH. */
  searchPath?: string;
}

export type PolicyDecision =
  | { allowed: true; executable: string; argv: string[]; cwd: string; entryIndex: number }
  | { allowed: false; rule: PolicyRule; reason: string };

/** The stricter of two tiers. */
export function stricterTier(a: Tier, b: Tier | undefined): Tier {
  if (b === undefined) return a;
  return TIERS.indexOf(a) <= TIERS.indexOf(b) ? a : b;
}

export function isTier(v: unknown): v is Tier {
  return typeof v === 'string' && (TIERS as readonly string[]).includes(v);
}

/** The effective tier of a policy: the enrolled tier, capped by the allowlist's own `tier` if it has one. */
export function effectiveTier(policy: Policy): Tier {
  return stricterTier(policy.tier, policy.allowlist.tier);
}

// ------------------------------------------------------------------------------------- allowlist file

export class AllowlistError extends AgentSetupError {
  constructor(message: string) {
    super('bad_config', message);
  }
}

/** Parse allowlist text (YAML, which includes JSON). Throws AllowlistError naming the bad field. */
export function parseAllowlist(text: string, source = 'allowlist'): Allowlist {
  let doc: unknown;
  try {
    doc = YAML.parse(text, { maxAliasCount: 0 });
  } catch (err) {
    throw new AllowlistError(`${source}: not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  const bad = (where: string, why: string): never => {
    throw new AllowlistError(`${source}: ${where}: ${why}`);
  };
  if (doc === null || doc === undefined) return { entries: [] };
  if (typeof doc !== 'object' || Array.isArray(doc)) return bad('top level', 'must be a mapping with `version` and `commands`');
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d)) if (!['version', 'tier', 'commands'].includes(key)) bad(key, 'unknown field');
  if (d.version !== 1) bad('version', 'must be 1');
  if (d.tier !== undefined && !isTier(d.tier)) bad('tier', `must be one of ${TIERS.join(', ')}`);
  const commands = d.commands ?? [];
  if (!Array.isArray(commands)) return bad('commands', 'must be a list');
  const entries = commands.map((raw, i): AllowEntry => {
    const at = `commands[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad(at, 'must be a mapping');
    const e = raw as Record<string, unknown>;
    for (const key of Object.keys(e)) if (!['executable', 'args', 'rest', 'cwd'].includes(key)) bad(`${at}.${key}`, 'unknown field');
    const exe = e.executable;
    if (typeof exe !== 'string' || exe.length === 0 || exe.length > MAX_PATH_LENGTH || exe.includes('\u0000')) {
      return bad(`${at}.executable`, 'must be a non-empty string');
    }
    if (!exe.startsWith('/') && exe.includes('/')) bad(`${at}.executable`, 'must be a bare name or an absolute path');
    if (exe.startsWith('/') && exe.split('/').some((s) => s === '..' || s === '.')) bad(`${at}.executable`, 'must not contain . or .. segments');
    const argsRaw = e.args ?? [];
    if (!Array.isArray(argsRaw)) return bad(`${at}.args`, 'must be a list of patterns');
    const args = argsRaw.map((p, j) => parsePattern(p, `${at}.args[${j}]`, bad));
    const entry: AllowEntry = { executable: exe, args };
    if (e.rest !== undefined) entry.rest = parsePattern(e.rest, `${at}.rest`, bad);
    if (e.cwd !== undefined) {
      if (!Array.isArray(e.cwd) || e.cwd.some((c) => typeof c !== 'string' || !isCleanAbsolute(c))) {
        bad(`${at}.cwd`, 'must be a list of absolute paths without . or .. segments');
      }
      entry.cwd = (e.cwd as string[]).map((c) => path.posix.normalize(c));
    }
    return entry;
  });
  const out: Allowlist = { entries };
  if (d.tier !== undefined) out.tier = d.tier as Tier;
  return out;
}

function parsePattern(p: unknown, at: string, bad: (where: string, why: string) => never): ArgPattern {
  if (p === 'any') return { any: true };
  if (typeof p === 'string') return { exact: p };
  if (typeof p === 'number') return { exact: String(p) };
  if (typeof p === 'object' && p !== null && !Array.isArray(p)) {
    const o = p as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.regex === 'string') {
      try {
        // Anchored here so an entry author cannot forget it; 'u' makes the pattern see characters, not code units.
        return { regex: new RegExp(`^(?:${o.regex})$`, 'u'), source: o.regex };
      } catch (err) {
        return bad(at, `invalid regex: ${(err as Error).message}`);
      }
    }
    if (keys.length === 1 && typeof o.path === 'string') {
      if (!isCleanAbsolute(o.path)) return bad(at, 'path must be an absolute directory without . or .. segments');
      return { path: path.posix.normalize(o.path) };
    }
  }
  return bad(at, 'a pattern is a string, { regex: R }, { path: DIR } or any');
}

function isCleanAbsolute(p: string): boolean {
  return p.startsWith('/') && p.length <= MAX_PATH_LENGTH && !p.includes('\u0000') && !p.split('/').some((s) => s === '..' || s === '.');
}

/**
 * Read an allowlist file. It decides what runs as root, so like a key file it must belong to the agent's user
 * and not be writable by anyone else.
 */
export function loadAllowlistFile(file: string): Allowlist {
  if (!fs.existsSync(file)) throw new AllowlistError(`allowlist ${file} does not exist; write one (see agent/README.md) or enroll with --allow FILE`);
  checkOwnedAndPrivate(file, 0o022, 'allowlist');
  return parseAllowlist(fs.readFileSync(file, 'utf8'), file);
}

// ---------------------------------------------------------------------------------- executable lookup

function isExecutableFile(p: string): boolean {
  try {
    if (!fs.statSync(p).isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolve a bare name in `searchPath` (never the caller's PATH) or check an absolute path. Returns the
 * canonical path: the directory with symlinks resolved, the file name kept. The name is kept on purpose:
 * multi-call binaries (busybox) act on the name they are run as, so `/bin/ls` and `/bin/rm` must stay
 * different even when both are links to the same file.
 */
export function resolveExecutable(name: string, searchPath: string = SAFE_PATH): string | undefined {
  if (name.includes('\u0000') || name.length === 0) return undefined;
  const candidates = name.startsWith('/') ? [name] : name.includes('/') ? [] : searchPath.split(':').filter((d) => d.startsWith('/')).map((d) => path.join(d, name));
  for (const c of candidates) {
    if (!isExecutableFile(c)) continue;
    try {
      return path.join(fs.realpathSync(path.dirname(c)), path.basename(c));
    } catch {
      continue;
    }
  }
  return undefined;
}

function systemDirs(searchPath: string): Set<string> {
  const out = new Set<string>();
  for (const d of searchPath.split(':')) {
    try {
      out.add(fs.realpathSync(d));
    } catch {
      // a directory that does not exist here holds nothing
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------ tier capabilities

/** Returns why the arguments do not fit the tier, or undefined when they do. */
type ArgCheck = (args: readonly string[]) => string | undefined;

const anyArgs: ArgCheck = () => undefined;

/**
 * Refuse options that write or run something. Long options are refused by any prefix getopt_long would accept
 * (`--rot` is `--rotate`), short ones anywhere in a cluster; both fail closed when a value happens to look like one.
 */
function denyOptions(longs: string[], shorts = ''): ArgCheck {
  return (args) => {
    for (const a of args) {
      if (a === '--') break;
      if (a.startsWith('--')) {
        const name = a.split('=')[0]!;
        if (name.length > 2 && longs.some((l) => l.startsWith(name))) return `option ${name} can change the system`;
      } else if (a.startsWith('-') && a.length > 1) {
        for (const ch of a.slice(1)) if (shorts.includes(ch)) return `option -${ch} can change the system`;
      }
    }
    return undefined;
  };
}

/** Every argument must be one of `allowed` (for commands where almost any positional argument writes). */
function onlyArgs(allowed: string[]): ArgCheck {
  return (args) => {
    const bad = args.find((a) => !allowed.includes(a));
    return bad === undefined ? undefined : `argument "${bad.slice(0, 40)}" is not known to be read-only`;
  };
}

const SYSTEMCTL_READ_VERBS = ['status', 'is-active', 'is-enabled', 'is-failed', 'show', 'cat', 'list-units', 'list-unit-files', 'list-timers', 'list-sockets', 'list-dependencies', 'list-jobs', 'get-default'];
const SYSTEMCTL_SERVICE_VERBS = ['start', 'stop', 'restart', 'reload', 'try-restart', 'reload-or-restart', 'try-reload-or-restart', 'reset-failed', 'daemon-reload'];
const SYSTEMCTL_FLAGS = ['--no-pager', '--plain', '-l', '--full', '-a', '--all', '-q', '--quiet', '--no-legend', '--value', '--system', '--no-block', '--no-ask-password', '--show-types', '--failed', '-r', '--recursive'];
const SYSTEMCTL_VALUE_OPTIONS = ['-t', '--type', '-p', '--property', '-P', '--state', '-n', '--lines', '-o', '--output'];

/**
 * systemctl is checked by a real option grammar: the verb is the first argument that is not an option or an
 * option's value. Unknown options are refused (`-H` runs on another host, `-M` in a container), because an
 * option we do not know might take a value and make us read the wrong word as the verb.
 */
function systemctlVerbs(verbs: string[]): ArgCheck {
  return (args) => {
    let verb: string | undefined;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '--') return 'systemctl "--" is not supported here';
      if (a.startsWith('--')) {
        const name = a.split('=')[0]!;
        if (SYSTEMCTL_FLAGS.includes(a)) continue;
        if (SYSTEMCTL_VALUE_OPTIONS.includes(name)) {
          if (!a.includes('=')) i++;
          continue;
        }
        return `systemctl option ${name} is not allowed in this tier`;
      }
      if (a.startsWith('-') && a.length > 1) {
        if (SYSTEMCTL_FLAGS.includes(a)) continue;
        const first = `-${a[1]!}`;
        if (SYSTEMCTL_VALUE_OPTIONS.includes(first)) {
          if (a.length === 2) i++;
          continue;
        }
        if ([...a.slice(1)].every((ch) => SYSTEMCTL_FLAGS.includes(`-${ch}`))) continue;
        return `systemctl option ${a.slice(0, 20)} is not allowed in this tier`;
      }
      if (verb === undefined) verb = a;
    }
    if (verb === undefined) return undefined; // bare `systemctl` lists units
    return verbs.includes(verb) ? undefined : `systemctl ${verb.slice(0, 40)} is not allowed in this tier`;
  };
}

const IP_OBJECTS = ['addr', 'address', 'a', 'link', 'l', 'route', 'r', 'ro', 'neigh', 'neighbor', 'neighbour', 'n', 'rule', 'ru', 'maddr', 'maddress', 'm'];
const IP_FLAGS = ['-4', '-6', '-s', '-stats', '-d', '-details', '-br', '-brief', '-c', '-color', '-j', '-json', '-p', '-pretty', '-o', '-oneline', '-h', '-human'];

/** `ip [flags] OBJECT [show|list|ls|lst|get ...]`: iproute2 accepts verb prefixes (`ip a a` is add), so only these. */
const ipReadOnly: ArgCheck = (args) => {
  let i = 0;
  while (i < args.length && IP_FLAGS.includes(args[i]!)) i++;
  if (i === args.length) return undefined;
  if (!IP_OBJECTS.includes(args[i]!)) return `ip ${args[i]!.slice(0, 20)} is not allowed in this tier`;
  const verb = args[i + 1];
  if (verb === undefined || ['show', 'list', 'ls', 'lst', 'get'].includes(verb)) return undefined;
  return `ip ${args[i]} ${verb.slice(0, 20)} is not allowed in this tier`;
};

const dateReadOnly: ArgCheck = (args) => {
  const p = denyOptions(['--set'], 's')(args);
  if (p) return p;
  const positional = args.find((a) => !a.startsWith('-') && !a.startsWith('+'));
  return positional === undefined ? undefined : 'date with an operand sets the clock';
};

/** Commands that only read, with the argument checks that keep them so. */
const READ_ONLY: Record<string, ArgCheck> = {
  cat: anyArgs,
  head: anyArgs,
  tail: anyArgs,
  ls: anyArgs,
  stat: anyArgs,
  wc: anyArgs,
  grep: anyArgs,
  readlink: anyArgs,
  realpath: anyArgs,
  md5sum: anyArgs,
  sha1sum: anyArgs,
  sha256sum: anyArgs,
  sha512sum: anyArgs,
  df: anyArgs,
  du: anyArgs,
  free: anyArgs,
  uptime: anyArgs,
  uname: anyArgs,
  id: anyArgs,
  whoami: anyArgs,
  nproc: anyArgs,
  pwd: anyArgs,
  ps: anyArgs,
  pgrep: anyArgs,
  lsblk: anyArgs,
  lscpu: anyArgs,
  lsof: anyArgs,
  findmnt: anyArgs,
  w: anyArgs,
  who: anyArgs,
  last: anyArgs,
  getent: anyArgs,
  netstat: anyArgs,
  echo: anyArgs,
  printf: anyArgs,
  true: anyArgs,
  false: anyArgs,
  sleep: anyArgs,
  date: dateReadOnly,
  hostname: onlyArgs(['-a', '--alias', '-A', '--all-fqdns', '-d', '--domain', '-f', '--fqdn', '--long', '-i', '--ip-address', '-I', '--all-ip-addresses', '-s', '--short', '-y', '--yp', '--nis']),
  ss: denyOptions(['--kill', '--diag'], 'KD'),
  dmesg: denyOptions(['--clear', '--read-clear', '--console-off', '--console-on', '--console-level'], 'cCDEn'),
  sort: denyOptions(['--output', '--compress-program'], 'o'),
  find: (args) => {
    const bad = args.find((a) => ['-exec', '-execdir', '-ok', '-okdir', '-delete', '-fprint', '-fprint0', '-fprintf', '-fls'].includes(a));
    return bad ? `find ${bad} can change the system` : undefined;
  },
  journalctl: denyOptions(['--rotate', '--vacuum-size', '--vacuum-time', '--vacuum-files', '--flush', '--sync', '--relinquish-var', '--smart-relinquish-var', '--setup-keys', '--update-catalog', '--cursor-file']),
  systemctl: systemctlVerbs(SYSTEMCTL_READ_VERBS),
  ip: ipReadOnly,
  timedatectl: (args) => denyOptions(['--host', '--machine'], 'HM')(args) ?? (args.every((a) => a.startsWith('-') || ['status', 'show', 'show-timesync', 'timesync-status', 'list-timezones'].includes(a)) ? undefined : 'timedatectl can only show in this tier'),
  hostnamectl: (args) => denyOptions(['--host', '--machine'], 'HM')(args) ?? (args.every((a) => a.startsWith('-') || a === 'status') ? undefined : 'hostnamectl can only show status in this tier'),
  nginx: onlyArgs(['-t', '-T', '-v', '-V', '-q']),
  apachectl: onlyArgs(['-t', 'configtest', '-v', '-V', '-S', '-M']),
  apache2ctl: onlyArgs(['-t', 'configtest', '-v', '-V', '-S', '-M']),
};

/** What the standard tier adds: restarting and reloading services, and the like. */
const STANDARD_EXTRA: Record<string, ArgCheck> = {
  systemctl: systemctlVerbs([...SYSTEMCTL_READ_VERBS, ...SYSTEMCTL_SERVICE_VERBS]),
  service: (args) =>
    args.length === 2 && ['start', 'stop', 'restart', 'reload', 'force-reload', 'try-restart', 'status'].includes(args[1]!) && !args[0]!.startsWith('-')
      ? undefined
      : 'service takes NAME start|stop|restart|reload|force-reload|try-restart|status in this tier',
  nginx: (args) => (args.length === 2 && args[0] === '-s' && ['reload', 'reopen'].includes(args[1]!) ? undefined : READ_ONLY.nginx!(args)),
  apachectl: onlyArgs(['-t', 'configtest', '-v', '-V', '-S', '-M', 'graceful', 'restart', '-k', 'start']),
  apache2ctl: onlyArgs(['-t', 'configtest', '-v', '-V', '-S', '-M', 'graceful', 'restart', '-k', 'start']),
};

function tierProblem(tier: Tier, executable: string, args: readonly string[], searchPath: string): string | undefined {
  if (tier === 'infrastructure') return undefined;
  if (!systemDirs(searchPath).has(path.dirname(executable))) {
    return `${executable} is outside the system directories, so it is not known to be ${tier === 'read-only' ? 'read-only' : 'a service operation'}; it needs tier infrastructure`;
  }
  const name = path.basename(executable);
  const check = (tier === 'standard' ? STANDARD_EXTRA[name] : undefined) ?? READ_ONLY[name];
  if (!check) return `${name} is not a ${tier} command`;
  return check(args);
}

// ------------------------------------------------------------------------------------------ evaluation

type MatchFailure = { rule: 'args-mismatch' | 'path-traversal'; detail: string };

function matchPattern(p: ArgPattern, arg: string): MatchFailure | undefined {
  if ('any' in p) return undefined;
  if ('exact' in p) return arg === p.exact ? undefined : { rule: 'args-mismatch', detail: `expected "${p.exact}"` };
  if ('regex' in p) return p.regex.test(arg) ? undefined : { rule: 'args-mismatch', detail: `does not match /${p.source}/` };
  if (!arg.startsWith('/')) return { rule: 'args-mismatch', detail: `must be an absolute path inside ${p.path}` };
  if (arg.split('/').some((s) => s === '..')) return { rule: 'path-traversal', detail: `contains a .. segment` };
  const normal = path.posix.normalize(arg);
  const inside = (root: string, p2: string) => root === '/' || p2 === root || p2.startsWith(`${root}/`);
  if (!inside(p.path, normal)) return { rule: 'path-traversal', detail: `is outside ${p.path}` };
  // A symlink inside the directory can point anywhere; judge where it leads when it exists.
  let real: string | undefined;
  try {
    real = fs.realpathSync(normal);
  } catch {
    real = undefined;
  }
  if (real !== undefined) {
    let realRoot = p.path;
    try {
      realRoot = fs.realpathSync(p.path);
    } catch {
      // keep the written root
    }
    if (!inside(realRoot, real)) return { rule: 'path-traversal', detail: `leads outside ${p.path} through a symbolic link` };
  }
  return undefined;
}

function matchEntry(entry: AllowEntry, args: readonly string[]): MatchFailure | undefined {
  if (args.length < entry.args.length || (entry.rest === undefined && args.length !== entry.args.length)) {
    return { rule: 'args-mismatch', detail: `expects ${entry.args.length}${entry.rest ? ' or more' : ''} arguments, got ${args.length}` };
  }
  for (let i = 0; i < args.length; i++) {
    const p = i < entry.args.length ? entry.args[i]! : entry.rest!;
    const f = matchPattern(p, args[i]!);
    if (f) return { rule: f.rule, detail: `argument ${i + 1} ${f.detail}` };
  }
  return undefined;
}

function refuse(rule: PolicyRule, detail: string): PolicyDecision {
  return { allowed: false, rule, reason: `command_not_allowed: ${rule}: ${detail}` };
}

/**
 * Decide whether `argv` may run. Pure apart from reading the file system (executable lookup, symlinks).
 *
 * @example
 * const d = evaluateCommand({ argv: ['systemctl', 'restart', 'nginx'] }, { tier: 'standard', allowlist });
 * if (!d.allowed) reply({ status: 'refused', reason: d.reason });
 */
export function evaluateCommand(req: { argv: readonly string[]; cwd?: string }, policy: Policy): PolicyDecision {
  const { argv } = req;
  const searchPath = policy.searchPath ?? SAFE_PATH;
  const tier = effectiveTier(policy);

  // 1. input
  if (!Array.isArray(argv) || argv.length === 0 || typeof argv[0] !== 'string' || argv[0] === '') return refuse('empty-argv', 'argv must name an executable');
  if (argv.length > MAX_ARGV_ENTRIES) return refuse('too-many-args', `more than ${MAX_ARGV_ENTRIES} arguments`);
  let total = 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (typeof a !== 'string' || a.includes('\u0000')) return refuse('nul-byte', `argument ${i} contains a NUL byte`);
    const bytes = Buffer.byteLength(a, 'utf8');
    if (bytes > MAX_ARG_BYTES) return refuse('arg-too-long', `argument ${i} is longer than ${MAX_ARG_BYTES} bytes`);
    total += bytes;
  }
  if (total > MAX_ARGV_BYTES) return refuse('argv-too-long', `arguments are longer than ${MAX_ARGV_BYTES} bytes together`);
  const cwd = req.cwd ?? '/';
  if (typeof cwd !== 'string' || !isCleanAbsolute(cwd)) return refuse('cwd', 'cwd must be an absolute path without . or .. segments');

  // 2. executable
  const name = argv[0]!;
  if (!name.startsWith('/') && name.includes('/')) return refuse('executable-path', `"${name.slice(0, 80)}" is a relative path; use a bare name or an absolute path`);
  const executable = resolveExecutable(name, searchPath);
  if (!executable) {
    return refuse('executable-not-found', name.startsWith('/') ? `${name.slice(0, 200)} is not an executable file` : `"${name.slice(0, 80)}" is not in ${searchPath}`);
  }
  const args = argv.slice(1);

  // 3. destructive patterns, on the argv as it will run
  if (tier !== 'infrastructure') {
    const pattern = destructivePattern([executable, ...args]);
    if (pattern) return refuse('destructive-pattern', `matches ${pattern}, which tier ${tier} never runs`);
  }

  // 4. tier
  const tierIssue = tierProblem(tier, executable, args, searchPath);
  if (tierIssue) return refuse('tier', `${tierIssue} (tier ${tier})`);

  // 5. allowlist: the first entry that matches wins; otherwise report the closest failure
  let closest: MatchFailure | undefined;
  let sawExecutable = false;
  let cwdRefused = false;
  for (let i = 0; i < policy.allowlist.entries.length; i++) {
    const entry = policy.allowlist.entries[i]!;
    if (resolveExecutable(entry.executable, searchPath) !== executable) continue;
    sawExecutable = true;
    const failure = matchEntry(entry, args);
    if (failure) {
      if (!closest || failure.rule === 'path-traversal') closest = failure;
      continue;
    }
    // 6. cwd
    if (entry.cwd && !entry.cwd.includes(path.posix.normalize(cwd))) {
      cwdRefused = true;
      continue;
    }
    return { allowed: true, executable, argv: [executable, ...args], cwd, entryIndex: i };
  }
  if (!sawExecutable) return refuse('not-allowlisted', `no allowlist entry for ${executable}`);
  if (cwdRefused) return refuse('cwd', `${cwd.slice(0, 200)} is not one of the directories the matching entry allows`);
  return refuse(closest!.rule, `${executable}: ${closest!.detail}`);
}
