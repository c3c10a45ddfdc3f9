/**
 * One table of settings (infra/settings.ts SETTINGS): every environment variable name the code reads is in it, no
 * other source file writes such a name (the constants are derived from the table), the README's Configuration
 * table lists exactly its public entries, and `orch config` shows each setting's value and source (never a
 * secret's value) and fails on an invalid one. That nothing else reads process.env is ESLint's job
 * (eslint.config.mjs, no-restricted-properties).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import ts from 'typescript';
import assert from '../support/assert';
import { ConfigError, Env, SETTINGS, effectiveSettings, integerSetting, listSetting, logLevelSetting, portSetting, retiredSettingsSet, setting } from '../../infra/settings';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const SOURCE_DIRS = ['desktop-worker', 'infra', 'activities', 'relay', 'protocol', 'workflows', 'bin'];

function sourceFiles(): string[] {
  const files: string[] = [];
  for (const dir of SOURCE_DIRS) {
    for (const name of fs.readdirSync(path.join(root, dir), { recursive: true }) as string[]) {
      if (/\.(ts|mjs|cjs)$/.test(name) && !name.includes('node_modules')) files.push(path.join(root, dir, name));
    }
  }
  return files;
}

/** The names the code reads: string literals that are whole ORCH_* names, and process.env.X / env.X accesses. */
function namesInCode(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of sourceFiles()) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/['"`](ORCH_[A-Z0-9_]+)['"`]|\benv\.((?:ORCH|ANTHROPIC|TEMPORAL)_[A-Z0-9_]+)/g)) {
      const name = m[1] ?? m[2]!;
      if (!found.has(name)) found.set(name, path.relative(root, file));
    }
  }
  return found;
}

/**
 * Where a TypeScript source file outside infra/settings.ts names a setting in code (not in a comment): a string
 * literal, a `env.NAME` access or a `NAME:` key that is a name from the table.
 */
function namesWrittenOutsideTable(): string[] {
  const names = new Set(SETTINGS.map((s) => s.env));
  const found: string[] = [];
  for (const file of sourceFiles().filter((f) => f.endsWith('.ts') && !f.endsWith(path.join('infra', 'settings.ts')))) {
    const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      let name: string | undefined;
      if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) name = node.text;
      else if (ts.isPropertyAccessExpression(node)) name = node.name.text;
      else if (ts.isPropertyAssignment(node) && ts.isIdentifier(node.name)) name = node.name.text;
      if (name !== undefined && names.has(name)) found.push(`${name} (${path.relative(root, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1})`);
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

/** The names in the first column of the README's Configuration table. */
function namesInReadme(): string[] {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 5));
  const names: string[] = [];
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const first = line.split('|')[1]!;
    for (const m of first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.push(m[1]!);
  }
  return names;
}

describe('the settings table', () => {
  test('every environment variable the code reads is in SETTINGS', () => {
    const known = new Set(SETTINGS.map((s) => s.env));
    const missing = [...namesInCode()].filter(([name]) => !known.has(name)).map(([name, file]) => `${name} (${file})`);
    assert.deepEqual(missing, [], 'add them to SETTINGS in infra/settings.ts and to the README');
    assert.equal(new Set(SETTINGS.map((s) => s.env)).size, SETTINGS.length, 'a setting listed twice');
    assert.equal(new Set(SETTINGS.map((s) => s.key)).size, SETTINGS.length, 'a key used twice');
  });

  test('no second list: the TypeScript sources name a setting only through Env (derived from the table)', () => {
    assert.deepEqual(namesWrittenOutsideTable(), [], 'use Env.<key> from infra/settings.ts instead of writing the name');
    for (const s of SETTINGS) assert.equal((Env as Record<string, string>)[s.key], s.env);
  });

  test('the launchers (bin/*.mjs) read only settings of the table, and only through bin/launcher-env.mjs', () => {
    const known = new Set(SETTINGS.map((s) => s.env));
    const read: string[] = [];
    const elsewhere: string[] = [];
    for (const name of fs.readdirSync(path.join(root, 'bin')).filter((n) => n.endsWith('.mjs') && n !== 'launcher-env.mjs')) {
      const code = fs.readFileSync(path.join(root, 'bin', name), 'utf8').replace(/^\s*\/\/.*$/gm, '');
      for (const m of code.matchAll(/launcherSetting\(([^)]*)\)/g)) {
        // A name that is not a plain string in quotes would escape this check.
        const quoted = /^\s*(['"`])([A-Z0-9_]+)\1\s*$/.exec(m[1]!);
        assert.ok(quoted, `bin/${name}: launcherSetting(${m[1]}) takes a setting's name in quotes`);
        read.push(quoted[2]!);
      }
      if (/process\s*\.\s*env\b/.test(code)) elsewhere.push(name);
    }
    assert.ok(read.includes('ORCH_CLI_TSX') && read.includes('ORCH_GO'), `the scan found the launchers' settings: ${read.join(', ')}`);
    assert.deepEqual(read.filter((n) => !known.has(n)), [], 'add them to SETTINGS in infra/settings.ts');
    assert.deepEqual(elsewhere, [], 'read the environment through bin/launcher-env.mjs');
  });

  test('typed readers: an empty value is the default, a bad one is a ConfigError (bad_config) naming the setting', () => {
    assert.equal(setting(Env.taskQueue, { ORCH_TASK_QUEUE: '' }), undefined);
    assert.equal(setting(Env.taskQueue, { ORCH_TASK_QUEUE: 'q' }), 'q');
    assert.equal(portSetting(Env.relayPort, 7443, {}), 7443);
    assert.equal(portSetting(Env.relayPort, 7443, { ORCH_RELAY_PORT: '8443' }), 8443);
    expect(() => portSetting(Env.relayPort, 7443, { ORCH_RELAY_PORT: '70000' })).toThrow(/^ORCH_RELAY_PORT: "70000" is not a TCP port/);
    expect(() => integerSetting(Env.retentionDays, { min: 1, max: 3650, fallback: 30, what: 'a number of days' }, { ORCH_RETENTION_DAYS: '2x' })).toThrow(ConfigError);
    assert.deepEqual(listSetting(Env.relayAdminKeys, { ORCH_RELAY_ADMIN_KEYS: 'ab, cd  ef' }), ['ab', 'cd', 'ef']);
    assert.equal(logLevelSetting({}), 'info');
    assert.equal(logLevelSetting({ ORCH_LOG_LEVEL: 'INFO' }), 'info');
    try {
      logLevelSetting({ ORCH_LOG_LEVEL: 'loud' });
      assert.fail('a bad log level was accepted');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'bad_config');
      assert.match(err.message, /^ORCH_LOG_LEVEL: "loud" is not a log level/);
    }
    assert.deepEqual(retiredSettingsSet({ ORCH_RELAY_URL: 'wss://x', ORCH_RELAY: 'r' }), ['ORCH_RELAY_URL']);
  });

  test("the README's Configuration table lists exactly the public settings", () => {
    const publicNames = SETTINGS.filter((s) => !s.internal && !s.retired).map((s) => s.env).sort();
    const readme = namesInReadme();
    assert.deepEqual([...new Set(readme)].sort(), publicNames);
    assert.equal(readme.length, new Set(readme).size, 'a name listed twice in the README');
  });

  test('effective settings: the source of each value; a secret is never shown', () => {
    const rows = effectiveSettings({ ORCH_TASK_QUEUE: 'q1', ANTHROPIC_API_KEY: 'sk-do-not-print', ORCH_RETENTION_DAYS: '' });
    const by = new Map(rows.map((r) => [r.env, r]));
    assert.deepEqual([by.get('ORCH_TASK_QUEUE')!.value, by.get('ORCH_TASK_QUEUE')!.source], ['q1', 'environment']);
    assert.deepEqual([by.get('ORCH_RETENTION_DAYS')!.value, by.get('ORCH_RETENTION_DAYS')!.source], ['30', 'default']);
    assert.equal(by.get('ANTHROPIC_API_KEY')!.source, 'environment');
    assert.ok(!JSON.stringify(rows).includes('sk-do-not-print'));
    assert.ok(!by.has('ORCH_SESSION_KEYRING') && !by.has('ORCH_RELAY_URL'), 'internal and retired settings are not shown');
  });

  test('orch config prints them and fails, naming the setting, on an invalid one', async () => {
    const env = { ...process.env, ORCH_HOME: fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'orch-config-')), ORCH_TASK_QUEUE: 'q1', ANTHROPIC_API_KEY: 'sk-do-not-print' };
    delete (env as Record<string, string | undefined>).TEMPORAL_ADDRESS;
    const ok = await run(process.execPath, ['bin/orch.mjs', 'config', '--json'], { cwd: root, env });
    const shown = JSON.parse(ok.stdout) as { ok: boolean; settings: Array<{ env: string; source: string }>; resolved: { taskQueue: string; home: string } };
    assert.equal(shown.ok, true);
    assert.equal(shown.resolved.taskQueue, 'q1');
    assert.equal(shown.resolved.home, env.ORCH_HOME);
    assert.ok(!ok.stdout.includes('sk-do-not-print'));
    const text = await run(process.execPath, ['bin/orch.mjs', 'config'], { cwd: root, env });
    assert.match(text.stdout, /^ORCH_TASK_QUEUE\s+env\s+q1$/m);
    const bad = await run(process.execPath, ['bin/orch.mjs', 'config'], { cwd: root, env: { ...env, ORCH_RETENTION_DAYS: '0' } }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((bad as { code: number }).code, 1);
    assert.match((bad as { stderr: string }).stderr, /orch config: ORCH_RETENTION_DAYS: "0" is not a number of days/);
    fs.rmSync(env.ORCH_HOME, { recursive: true, force: true });
  }, 120_000);
});
