/**
 * One row per benchmark figure, each beside its baseline, so `npm run bench` can print every figure of one run in
 * one table (bench/run-all.ts). A bench calls {@link benchRow} for each figure it prints; when ORCH_BENCH_JSON
 * names a file the row is appended to it as one line of JSON, otherwise nothing is written. Rows are figures,
 * never verdicts: no bench asserts anything.
 */
import fs from 'node:fs';

export interface BenchRow {
  /** The bench that measured it: engine, relay, envelope, audit, agent, fleet, cli, parked. */
  bench: string;
  /** What was measured, e.g. `seal+open 1 KiB`. */
  figure: string;
  value: number;
  /** Unit of `value` and `baselineValue`: `ms`, `s`, `ops/s`, `rows/s`, `MiB`... */
  unit: string;
  /** What the figure is compared with, measured in the same run. */
  baseline?: string;
  baselineValue?: number;
  /** The figure's cost over the baseline's (above 1 means slower or bigger than the baseline). */
  ratio?: number;
  /** The goal for the ratio or the value, as text (`<= 1.1x`, `< 0.25 s`). */
  goal?: string;
}

/** The environment variable naming the JSON-lines file rows go to. */
export const BENCH_JSON_ENV = 'ORCH_BENCH_JSON';

/** Records one figure (see the module comment); returns the row for callers that print it too. */
export function benchRow(row: BenchRow): BenchRow {
  const file = process.env[BENCH_JSON_ENV];
  if (file !== undefined && file !== '') fs.appendFileSync(file, `${JSON.stringify(row)}\n`);
  return row;
}

/** Parses the JSON-lines file the benches wrote; lines that are not a row are skipped and counted. */
export function readBenchRows(text: string): { rows: BenchRow[]; skipped: number } {
  const rows: BenchRow[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r = JSON.parse(line) as Partial<BenchRow>;
      if (typeof r.bench === 'string' && typeof r.figure === 'string' && typeof r.value === 'number' && typeof r.unit === 'string') {
        rows.push(r as BenchRow);
        continue;
      }
    } catch {
      // counted below
    }
    skipped++;
  }
  return { rows, skipped };
}

function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString('en-US');
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

/** The rows as one Markdown table, in the order given (the order the benches ran). */
export function formatBenchTable(rows: readonly BenchRow[]): string {
  const head = ['bench', 'figure', 'measured', 'baseline', 'baseline measured', 'ratio', 'goal'];
  const cells = rows.map((r) => [
    r.bench,
    r.figure,
    `${formatNumber(r.value)} ${r.unit}`,
    r.baseline ?? '',
    r.baselineValue !== undefined ? `${formatNumber(r.baselineValue)} ${r.unit}` : '',
    r.ratio !== undefined ? `${r.ratio.toFixed(2)}x` : '',
    r.goal ?? '',
  ]);
  const all = [head, ...cells].map((r) => r.map((c) => c.replace(/\|/g, '\\|')));
  const widths = head.map((_, i) => Math.max(3, ...all.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(all[0]!), line(widths.map((w) => '-'.repeat(w))), ...all.slice(1).map(line)].join('\n');
}
