/**
 * `npm run bench`: every bench once, in one run, then one table of every figure beside its baseline.
 *
 *   npm run bench [-- --only envelope,audit] [-- --out FILE.md] [-- --quick]
 *
 * Each bench runs as its own process (its own output streams through as it goes) with ORCH_BENCH_JSON naming a
 * fresh file, to which it appends one JSON row per figure (bench/report.ts). A bench that fails is named under
 * the table and the run exits 1; the others still run. Nothing here judges a figure: the goal column is the
 * issue's, printed beside the ratio as measured.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args';
import { BENCH_JSON_ENV, formatBenchTable, readBenchRows } from './report';

/** In the order they run; engine first because it is the slowest and the one most sensitive to a warm machine. */
const BENCHES = ['engine', 'relay', 'envelope', 'audit', 'agent', 'fleet', 'cli', 'up', 'parked'] as const;

/**
 * What `--quick` passes to each bench: the engine only on the dev server as `orch up` runs it (with eager activity
 * execution; not also without it, which takes more than half of its time) and three start-up samples instead of
 * five. Every figure is still measured beside its baseline in the same run; the table's first line says so.
 */
const QUICK_ARGS: Partial<Record<(typeof BENCHES)[number], string[]>> = {
  engine: ['--eager', 'on'],
  up: ['--samples', '3'],
};
/**
 * What every run passes to a bench: parked runs are released as `orch approve` releases them, by the approve update
 * with a statement signed by the gate's approver (bench:parked alone defaults to the unsigned signal the Temporal UI
 * sends, which the table would flatter: checking the signature is part of every release orch approve makes).
 */
const ALWAYS_ARGS: Partial<Record<(typeof BENCHES)[number], string[]>> = {
  parked: ['--signed'],
};

const root = fileURLToPath(new URL('..', import.meta.url));
const { values, list } = benchArgs(
  `
npm run bench [-- OPTIONS]   every bench once, each as its own process, then one table of every figure beside its
                             baseline, the ratio and issue 11's goal (asserts nothing)

  --only LIST   run only these (${BENCHES.join(', ')})
  --out FILE    also write the table (markdown) to FILE
  --quick       shorter runs of the slow ones: ${Object.entries(QUICK_ARGS).map(([b, a]) => `${b} ${a.join(' ')}`).join('; ')}
`,
  { only: { type: 'string' }, out: { type: 'string' }, quick: { type: 'boolean', default: false } },
);
const only = values.only === undefined ? undefined : list(values.only, '--only', BENCHES);
const selected = BENCHES.filter((b) => only === undefined || only.includes(b));

/** One line naming the machine the figures come from. */
function machineLine(): string {
  const cpus = os.cpus();
  const mem = (os.totalmem() / 2 ** 30).toFixed(0);
  return `${cpus.length} CPUs (${cpus[0]?.model.trim() ?? 'unknown CPU'}), ${mem} GiB RAM, ${os.platform()} ${os.release()}, node ${process.version}`;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-bench-'));
const jsonFile = path.join(dir, 'rows.jsonl');
fs.writeFileSync(jsonFile, '');
const failed: string[] = [];
const began = Date.now();
const loadAtStart = os.loadavg()[0]!.toFixed(1);
for (const bench of selected) {
  process.stdout.write(`\n=== bench:${bench} ===\n`);
  const quick = values.quick ? (QUICK_ARGS[bench] ?? []) : [];
  const extra = [...(ALWAYS_ARGS[bench] ?? []), ...quick];
  if (extra.length > 0) process.stdout.write(`(${quick.length > 0 ? '--quick: ' : ''}${extra.join(' ')})\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'bench', `${bench}.bench.ts`), ...extra], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, [BENCH_JSON_ENV]: jsonFile },
  });
  if (r.status !== 0) failed.push(`${bench} (${r.status !== null ? `exit code ${r.status}` : `signal ${r.signal ?? '?'}`})`);
}
const { rows, skipped } = readBenchRows(fs.readFileSync(jsonFile, 'utf8'));
fs.rmSync(dir, { recursive: true, force: true });

const minutes = ((Date.now() - began) / 60000).toFixed(1);
const table = [
  `Measured in one run of \`npm run bench\`${only !== undefined || values.quick ? ' --' : ''}${only !== undefined ? ` --only ${selected.join(',')}` : ''}${values.quick ? ' --quick' : ''} (${minutes} min) on ${machineLine()}, load average ${loadAtStart} at the start, ${new Date().toISOString().slice(0, 10)}.`,
  '',
  formatBenchTable(rows),
  ...(skipped > 0 ? ['', `${skipped} line(s) of the rows file were not rows and were skipped.`] : []),
  ...(failed.length > 0 ? ['', `failed, so missing above: ${failed.join(', ')}`] : []),
].join('\n');
process.stdout.write(`\n=== all figures ===\n${table}\n`);
if (values.out !== undefined) fs.writeFileSync(values.out, `${table}\n`);
if (failed.length > 0) process.exitCode = 1;
