/**
 * The rows every bench writes for `npm run bench`'s one table (bench/report.ts): written only where
 * ORCH_BENCH_JSON points, read back skipping what is not a row, and printed as one Markdown table.
 */
import { afterEach, describe, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
