/**
 * The `orch` command tree on commander (desktop-worker/cli-program.ts), as a user meets it: the real bin/orch.mjs as
 * its own process. Usage mistakes exit 2 with one line naming the problem and one with the usage, for every
 * command alike; with --json every failure, usage or not, is the same object on stdout; every subcommand has
 * generated help; `orch completion bash` completes in a real bash.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, test } from '@jest/globals';
import assert from '../support/assert';

const root = fileURLToPath(new URL('../..', import.meta.url));
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-cli-framework-'));
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: root, env: { ...process.env, ORCH_HOME: home } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const orch = (args: string[]) => run(process.execPath, ['bin/orch.mjs', ...args]);

/** A usage mistake: exit 2, `orch NAME: PROBLEM` then `usage: orch NAME ...`, nothing on stdout; with --json the same and the error object. */
async function assertUsageError(args: string[], name: string, problem: RegExp, usage: RegExp, hasJson = true): Promise<void> {
  const text = await orch(args);
  const where = `orch ${args.join(' ')}`;
  assert.equal(text.code, 2, `${where}: exit 2\n${text.stderr}`);
  const lines = text.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, `${where}: the problem and the usage\n${text.stderr}`);
  const prefix = name ? `orch ${name}: ` : 'orch: ';
  assert.ok(lines[0]!.startsWith(prefix), `${where}: ${lines[0]}`);
  assert.match(lines[0]!.slice(prefix.length), problem, where);
  assert.match(lines[1]!, usage, where);
  assert.match(lines[1]!, /\(see orch .*--help\)$/, where);
  assert.equal(text.stdout, '', where);
  if (!hasJson) return;

  const json = await orch([...args, '--json']);
  assert.equal(json.code, 2, `${where} --json`);
  assert.equal(json.stderr, text.stderr, `${where} --json: the same lines on stderr`);
  assert.deepEqual(JSON.parse(json.stdout), { error: { code: 'usage', message: lines[0]!.slice(prefix.length) } }, `${where} --json`);
}

describe('usage mistakes, the same for every command', () => {
  test('unknown options, missing and extra arguments, unknown commands and subcommands, bad option values', async () => {
    await assertUsageError(['status', 'x', '--frob'], 'status', /^unknown option '--frob'$/, /^usage: orch status WORKFLOW_ID \[--json\]/);
    await assertUsageError(['status'], 'status', /^missing required argument 'workflow_id'$/, /^usage: orch status WORKFLOW_ID/);
    await assertUsageError(['approve', 'wf', 'gate', 'extra'], 'approve', /^too many arguments for 'approve'/, /^usage: orch approve WORKFLOW_ID GATE_ID/);
    await assertUsageError(['run', 'some-dag'], 'run', /^--tenant T is required/, /^usage: orch run DAG --tenant T/);
    await assertUsageError(['agent', 'add', 'web-1', '--tier', 'standard'], 'agent', /^--key is required/, /^usage: orch agent add NAME --key HEX/);
    await assertUsageError(['agent', 'list', '--tier', 'standard'], 'agent', /^unknown option '--tier'/, /^usage: orch agent list /);
    await assertUsageError(['agent', 'frobnicate'], 'agent', /^unknown subcommand "frobnicate" \(one of: invite, invites, add, list, tenants, remove\)$/, /^usage: orch agent invite\|invites\|add\|list\|tenants\|remove \.\.\./);
    await assertUsageError(['relay'], 'relay', /^expects a subcommand: add, list, remove, start$/, /^usage: orch relay add\|list\|remove\|start/);
    await assertUsageError(['runs', '--state', 'sleeping'], 'runs', /^--state must be one of running, waiting, failed, succeeded$/, /^usage: orch runs \[--tenant T\]/);
    await assertUsageError(['dag', 'validate'], 'dag', /^missing required argument 'file'$/, /^usage: orch dag validate FILE/);
    await assertUsageError(['completion', 'fish'], 'completion', /Allowed choices are bash, zsh/, /^usage: orch completion bash\|zsh/, false);
    await assertUsageError(['frobnicate'], '', /^unknown command "frobnicate"$/, /^usage: orch COMMAND \[options\]/);
  }, 120_000);

  test('a failure that is not a usage mistake: one line, exit 1, and under --json the same object for every command', async () => {
    const cases: Array<[string[], string, string]> = [
      [['run', 'nope', '--tenant', 'ghost'], 'run', 'identity_missing'],
      [['agent', 'add', 'web-1', '--key', 'zz', '--box-key', 'zz', '--tier', 'standard'], 'agent', 'bad_input'],
      [['tenant', 'create', 'a/b'], 'tenant', 'bad_input'],
      [['dag', 'validate', path.join(home, 'nope.yaml')], 'dag', 'bad_input'],
      [['secret', 'list', '--tenant', 'a/b'], 'secret', 'bad_input'],
    ];
    for (const [args, name, code] of cases) {
      const where = `orch ${args.join(' ')}`;
      const r = await orch([...args, '--json']);
      assert.equal(r.code, 1, `${where}\n${r.stderr}`);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `${where}: one line\n${r.stderr}`);
      const body = JSON.parse(r.stdout) as { error: { code: string; message: string } };
      assert.deepEqual(Object.keys(body), ['error'], where);
      assert.deepEqual(Object.keys(body.error), ['code', 'message'], where);
      assert.equal(body.error.code, code, where);
      assert.equal(lines[0], `orch ${name}: ${body.error.message}`, where);
    }
  }, 120_000);
});

describe('options between a command group and its subcommand', () => {
  test('orch agent --json list is orch agent list --json (every group, value options too); an option the subcommand lacks is still a usage mistake', async () => {
    const pairs: Array<[string[], string[]]> = [
      [['agent', '--json', 'list'], ['agent', 'list', '--json']],
      [['tenant', '--json', 'list'], ['tenant', 'list', '--json']],
      [['dag', '--tenant', 'ghost', '--json', 'list'], ['dag', 'list', '--tenant', 'ghost', '--json']],
      [['dag', '--tenant=ghost', 'list', '--json'], ['dag', 'list', '--tenant=ghost', '--json']],
    ];
    for (const [before, after] of pairs) {
      const [a, b] = [await orch(before), await orch(after)];
      assert.deepEqual(a, b, `orch ${before.join(' ')} answers as orch ${after.join(' ')}`);
      assert.ok(a.stdout.startsWith('[') || a.stdout.includes('"error"'), `orch ${before.join(' ')}: JSON on stdout\n${a.stdout}${a.stderr}`);
    }
    assert.equal((await orch(['tenant', '--json', 'list'])).code, 0);
    await assertUsageError(['agent', '--tier', 'standard', 'list'], 'agent', /^unknown subcommand "standard"|unknown option '--tier'/, /^usage: orch agent /, false);
  }, 120_000);
});

describe('generated help', () => {
  test('--help on a subcommand: its usage, its own options with their help, exit 0', async () => {
    const invite = await orch(['agent', 'invite', '--help']);
    assert.equal(invite.code, 0, invite.stderr);
    assert.match(invite.stdout, /^usage: orch agent invite NAME --tenant T/);
    assert.match(invite.stdout, /--expires <EXPIRES>\s+how long the invite is good for/);
    assert.doesNotMatch(invite.stdout, /--box-key/, 'only the options of invite');
    const show = await orch(['runs', 'show', '--help']);
    assert.equal(show.code, 0);
    assert.match(show.stdout, /^usage: orch runs show WORKFLOW_ID/);
    const start = await orch(['relay', 'start', '--help']);
    assert.equal(start.code, 0);
    assert.match(start.stdout, /^usage: orch relay start \[options\]/);
    assert.match(start.stdout, /--admin-key <HEX>/);
    // `orch help COMMAND` is the same help.
    const viaHelp = await orch(['help', 'status']);
    assert.equal(viaHelp.code, 0);
    assert.equal(viaHelp.stdout, (await orch(['status', '--help'])).stdout);
    // A reader that has stopped reading (`orch audit --help | head -1`) ends orch quietly, not with an EPIPE stack
    // trace: here the reader is gone before orch writes at all.
    const piped = await run('bash', ['-c', '{ sleep 0.5; node bin/orch.mjs audit --help; echo "exit $?" >&2; } | true']);
    assert.equal(piped.stderr, 'exit 0\n');
    const top = await orch(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /^usage: orch COMMAND \[options\]/);
    assert.match(top.stdout, /\n {2}completion <shell> +print a shell completion script/);
  }, 120_000);
});

describe('orch completion', () => {
  /** Completes `line` (the cursor at its end) with the script sourced into a real bash, as the shell does on Tab. */
  async function complete(line: string): Promise<string[]> {
    const script = path.join(home, 'orch.bash');
    const made = await orch(['completion', 'bash']);
    assert.equal(made.code, 0, made.stderr);
    fs.writeFileSync(script, made.stdout);
    const words = line.split(' ');
    const program = [
      `source ${JSON.stringify(script)}`,
      // The completion function registered for orch, called as bash calls it on Tab.
      `fn=$(complete -p orch | sed -E 's/.* -F ([^ ]+) .*/\\1/')`,
      `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; COMP_LINE='${line}'; COMP_POINT=${line.length}`,
      '"$fn" orch "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    const r = await run('bash', ['--norc', '--noprofile', '-c', program]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean).sort();
  }

  test('bash: commands, subcommands and options of the command typed so far', async () => {
    assert.deepEqual(await complete('orch ru'), ['run', 'runs']);
    assert.deepEqual(await complete('orch runs --st'), ['--state']);
    assert.deepEqual(await complete('orch agent '), ['add', 'invite', 'invites', 'list', 'remove', 'tenants']);
    assert.deepEqual(await complete('orch agent add web-1 --ti'), ['--tier']);
    assert.deepEqual(await complete('orch runs show wf-1 --'), ['--help', '--json', '--tenant']);
    // An option's value is left to the shell: after --tenant, nothing of orch's own is offered.
    assert.deepEqual(await complete('orch run x --tenant '), []);
    assert.deepEqual(await complete('orch completion '), ['bash', 'zsh']);
  }, 120_000);

  /**
   * Completes the words with the zsh script sourced into a real zsh (after compinit, which it registers with), its
   * function called as zsh's completion system calls it, with `words` and CURRENT; compadd, which only exists inside a
   * completion widget, is replaced by a function that keeps the candidates matching the word under the cursor, as
   * compadd does with PREFIX.
   */
  async function completeZsh(words: string[]): Promise<string[]> {
    const script = path.join(home, 'orch.zsh');
    const made = await orch(['completion', 'zsh']);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^#compdef orch\n/);
    fs.writeFileSync(script, made.stdout);
    const program = [
      'autoload -Uz compinit && compinit -u -D',
      `source ${JSON.stringify(script)}`,
      '[[ ${_comps[orch]} == _orch ]] || { print -u2 "not registered with compdef"; exit 3; }',
      'compadd() { local w; shift; for w in "$@"; do [[ $w == ${words[CURRENT]}* ]] && print -r -- $w; done; return 0; }',
      '_files() { print -r -- "<files>"; }',
      `words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}`,
      '_orch',
    ].join('\n');
    const r = await run('zsh', ['-f', '-c', program]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean).sort();
  }

  // zsh is not on every machine (bash is): where it is missing, the test installs Debian's package first (as root or
  // with password-less sudo, as the end-to-end test gets Chromium: infra/apt-install.sh), and fails saying so if it
  // cannot.
  const hasZsh = () => ['/bin/zsh', '/usr/bin/zsh', '/usr/local/bin/zsh'].some((f) => fs.existsSync(f));
  test('zsh: the same completions, through compdef', async () => {
    if (!hasZsh()) {
      const got = await run('bash', [path.join(root, 'infra/apt-install.sh'), 'the shell of the zsh completion test', 'zsh']);
      assert.ok(got.code === 0 && hasZsh(), `zsh is missing and could not be installed (install it: apt-get install zsh):\n${got.stderr}`);
    }
    assert.deepEqual(await completeZsh(['orch', 'ru']), ['run', 'runs']);
    assert.deepEqual(await completeZsh(['orch', 'runs', '--st']), ['--state']);
    assert.deepEqual(await completeZsh(['orch', 'agent', 'add', 'web-1', '--ti']), ['--tier']);
    assert.deepEqual(await completeZsh(['orch', 'run', 'x', '--tenant', '']), ['<files>']);
  }, 300_000);
});
