/**
 * How long people wait for the `orch` command (issue 11, "a snappy CLI"), beside the `temporal` CLI doing the
 * nearest thing, measured in one run on this machine: the median wall time of N runs of each, as a process.
 *
 *   npm run bench:cli [-- --runs N]
 *
 * - `orch --help` and `orch dag validate` (no server) against `temporal --help`;
 * - `orch runs --tenant T` (a visibility list on a dev server this bench starts) against `temporal workflow list`
 *   on the same server;
 * - each `orch` figure also as it was before the compiled CLI: the TypeScript sources through tsx (ORCH_CLI_TSX=1).
 * Targets: `--help` and `dag validate` under 0.25 s; status-like calls under 0.5 s. It asserts nothing.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { resolveTemporalCli } from '../infra/temporal-cli';
import { startDevServer } from '../desktop-worker/dev-server';
import { TenantStore } from '../desktop-worker/tenant-store';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/shared';
import { benchRow } from './report';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' } } });
const RUNS = Math.max(3, Number(values.runs) || 9);
const say = (l: string) => process.stdout.write(`${l}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS + 1; i++) {
    const t = performance.now();
    await run(file, args, { cwd: root, env });
    if (i > 0) times.push(performance.now() - t); // the first run warms the page cache (and builds the CLI)
  }
  return median(times) / 1000;
}

async function main(): Promise<void> {
  const cli = await resolveTemporalCli({ log: say });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-bench-cli-'));
  const home = path.join(work, 'home');
  const store = new TenantStore(home);
  store.create('bench');
  store.close();
  const server = await startDevServer({ cliPath: cli.path, port: 0, headless: true, searchAttributes: SEARCH_ATTRIBUTE_TYPES, logFile: path.join(work, 'temporal.log') });
  try {
    const env = { ...process.env, ORCH_HOME: home, TEMPORAL_ADDRESS: server.address };
    const tsx = { ...env, ORCH_CLI_TSX: '1' };
    const orch = path.join(root, 'bin/orch.mjs');
    const node = process.execPath;
    const rows: Array<[string, number, number, number]> = [];
    const baseHelp = await timed(cli.path, ['--help'], env);
    rows.push(['orch --help', await timed(node, [orch, '--help'], env), await timed(node, [orch, '--help'], tsx), baseHelp]);
    const dag = path.join(root, 'desktop-worker/demo/demo-review.yaml');
    rows.push(['orch dag validate', await timed(node, [orch, 'dag', 'validate', dag], env), await timed(node, [orch, 'dag', 'validate', dag], tsx), baseHelp]);
    const baseList = await timed(cli.path, ['workflow', 'list', '--address', server.address, '--limit', '10'], env);
    rows.push(['orch runs --tenant bench', await timed(node, [orch, 'runs', '--tenant', 'bench'], env), await timed(node, [orch, 'runs', '--tenant', 'bench'], tsx), baseList]);
    say(`\nthe orch command, median of ${RUNS} runs (${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}, Temporal CLI ${cli.version})`);
    say(`${'command'.padEnd(26)}${'compiled'.padStart(10)}${'tsx (before)'.padStart(14)}${'temporal'.padStart(10)}${'compiled/temporal'.padStart(19)}`);
    for (const [name, compiled, before, base] of rows) {
      const statusLike = name.startsWith('orch runs');
      benchRow({
        bench: 'cli',
        figure: name,
        value: compiled,
        unit: 's',
        baseline: statusLike ? '`temporal workflow list`' : '`temporal --help`',
        baselineValue: base,
        ratio: compiled / base,
        goal: statusLike ? '< 0.5 s' : '< 0.25 s',
      });
      say(`${name.padEnd(26)}${`${compiled.toFixed(3)} s`.padStart(10)}${`${before.toFixed(3)} s`.padStart(14)}${`${base.toFixed(3)} s`.padStart(10)}${`${(compiled / base).toFixed(1)}x`.padStart(19)}`);
    }
    say('temporal baseline: `temporal --help` for the first two, `temporal workflow list` on the same dev server for orch runs.');
    say('Targets (issue 11): --help and dag validate under 0.25 s; status-like calls under 0.5 s.');
  } finally {
    await server.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
