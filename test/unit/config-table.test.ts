/**
 * One table of settings (desktop-worker/config.ts SETTINGS): every environment variable name the code reads is in
 * it, the README's Configuration table lists exactly its public entries, and `orch config` shows each setting's
 * value and source (never a secret's value) and fails on an invalid one.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { SETTINGS, effectiveSettings } from '../../desktop-worker/config';

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
    assert.deepEqual(missing, [], 'add them to SETTINGS in desktop-worker/config.ts and to the README');
    assert.equal(new Set(SETTINGS.map((s) => s.env)).size, SETTINGS.length, 'a setting listed twice');
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
