/**
 * The rows every bench writes for `npm run bench`'s one table (bench/report.ts): written only where
 * ORCH_BENCH_JSON points, read back skipping what is not a row, and printed as one Markdown table. And every
 * bench's command line (bench/args.ts): `--help`, and usage errors with exit code 2 that name the bench.
 */
import { afterEach, describe, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from '../support/assert';
import { BENCH_JSON_ENV, benchRow, formatBenchTable, readBenchRows, type BenchRow } from '../../bench/report';

const saved = process.env[BENCH_JSON_ENV];
afterEach(() => {
  if (saved === undefined) delete process.env[BENCH_JSON_ENV];
  else process.env[BENCH_JSON_ENV] = saved;
});

const row: BenchRow = {
  bench: 'envelope',
  figure: 'seal+open 1 KiB',
  value: 4829.4,
  unit: 'ops/s',
  baseline: 'the same libsodium primitives called directly',
  baselineValue: 5598,
  ratio: 1.1592,
  goal: '<= 1.1x',
};

describe('bench rows', () => {
  test('benchRow appends one JSON line to the file ORCH_BENCH_JSON names, and writes nothing without it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-bench-report-'));
    try {
      const file = path.join(dir, 'rows.jsonl');
      delete process.env[BENCH_JSON_ENV];
      benchRow(row);
      assert.equal(fs.existsSync(file), false);
      process.env[BENCH_JSON_ENV] = file;
      benchRow(row);
      benchRow({ bench: 'audit', figure: 'verify 1,000,000 rows in memory', value: 2.5, unit: 's' });
      const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
      assert.equal(lines.length, 2);
      assert.deepEqual(JSON.parse(lines[0]!), row);
      assert.deepEqual(readBenchRows(fs.readFileSync(file, 'utf8')).rows.map((r) => r.bench), ['envelope', 'audit']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('readBenchRows keeps the rows in order and counts lines that are not rows', () => {
    const text = [JSON.stringify(row), 'not json', JSON.stringify({ bench: 'x' }), '', JSON.stringify({ ...row, bench: 'cli' })].join('\n');
    const { rows, skipped } = readBenchRows(text);
    assert.deepEqual(rows.map((r) => r.bench), ['envelope', 'cli']);
    assert.equal(skipped, 2);
  });

  test('formatBenchTable: one Markdown row per figure with its baseline, the ratio and the goal', () => {
    const table = formatBenchTable([row, { bench: 'audit', figure: 'a | b', value: 0.1234, unit: 's' }]).split('\n');
    assert.equal(table.length, 4);
    assert.match(table[0]!, /^\| bench +\| figure +\| measured +\| baseline +\| baseline measured +\| ratio +\| goal +\|$/);
    assert.match(table[1]!, /^\| -+ \| -+ \| -+ \| -+ \| -+ \| -+ \| -+ \|$/);
    assert.match(table[2]!, /^\| envelope \| seal\+open 1 KiB +\| 4,829 ops\/s +\| the same libsodium primitives called directly \| 5,598 ops\/s +\| 1\.16x \| <= 1\.1x +\|$/);
    // A pipe in a cell is escaped; absent baseline, ratio and goal leave their cells empty.
    assert.match(table[3]!, /^\| audit +\| a \\\| b +\| 0\.123 s +\| +\| +\| +\| +\|$/);
    for (const line of table) assert.equal(line.length, table[0]!.length);
  });
});

/** A bench run as `npm run bench:NAME` runs it (tsx), with `args`: its exit code and output. */
function runBench(file: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    execFile(process.execPath, ['--import', 'tsx', path.join(root, 'bench', file), ...args], { cwd: root, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

describe('bench command lines', () => {
  test('--help prints the usage; a bad number or list item is a one-line error naming the bench, exit 2', async () => {
    const [help, badNumber, badList] = await Promise.all([
      runBench('envelope.bench.ts', ['--help']),
      runBench('envelope.bench.ts', ['--seconds', 'abc']),
      runBench('run-all.ts', ['--only', 'envelope,nope']),
    ]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^npm run bench:envelope \[-- OPTIONS\][^\n]*\n\n {2}--seconds S /);
    assert.deepEqual(badNumber, { code: 2, stdout: '', stderr: 'npm run bench:envelope: --seconds takes a positive number, not "abc"\n(--help for usage)\n' });
    assert.equal(badList.code, 2);
    assert.match(badList.stderr, /^npm run bench: --only takes engine, relay, [^\n]* \(comma-separated\), not "envelope,nope"\n\(--help for usage\)\n$/);
  });
});
