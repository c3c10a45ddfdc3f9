/**
 * How long people wait for the `orch` command (issue 11, "a snappy CLI"), beside the `temporal` CLI doing the
 * nearest thing, measured in one run on this machine: the median wall time of N runs of each, as a process.
 *
 *   npm run bench:cli [-- --runs N] [-- --no-server]
 *
 * --no-server: only the rows that need no server (`--help`, `dag validate`), without starting a dev server.
 *
 * - `orch --help` and `orch dag validate` (no server) against `temporal --help`;
 * - on a dev server this bench starts, with an Orch worker in this process and runs parked at an approval gate:
 *   `orch status RUN` against `temporal workflow describe` of the same run, `orch approve RUN GATE` (signed with
 *   the identity `orch init` made) against `temporal workflow signal` sending an approval to another parked run,
 *   and `orch runs --tenant T` against `temporal workflow list`;
 * - each `orch` figure also as it was before the compiled CLI: the TypeScript sources through tsx (ORCH_CLI_TSX=1);
 *   status, approve and runs also over gRPC (TEMPORAL_ADDRESS naming the same server: the SDK client), as they were
 *   before they used the HTTP API the dev server's `orch up` publishes (desktop-worker/run-transport.ts).
 * On Linux without a desktop session it runs itself inside infra/ci-keyring.sh (`orch approve` signs with a key
 * from the OS keychain). Targets: `--help` and `dag validate` under 0.25 s; status and approve under 0.5 s. It
 * asserts nothing.
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { OrchWorker } from '../desktop-worker/workflow-threads';
import { orchCacheDir } from '../infra/paths';
import { resolveTemporalCli } from '../infra/temporal-cli';
import { startDevServer } from '../desktop-worker/dev-server';
import { publishTemporalHttp } from '../desktop-worker/run-transport';
import { orchPlugin } from '../desktop-worker/plugin';
import { workflowBundle } from '../desktop-worker/workflow-bundle-cache';
import { TenantStore } from '../desktop-worker/tenant-store';
import { DEFAULT_PRICES } from '../workflows/prices';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/shared';
import { benchArgs } from './args';
import { benchRow } from './report';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const { values, count } = benchArgs(
  `
npm run bench:cli [-- OPTIONS]   the orch command's wall time beside the temporal CLI doing the same call (asserts nothing)

  --runs N      each figure is the median of N runs after one warm-up (default 9, at least 3)
  --no-server   only the rows that need no server (--help, dag validate)
`,
  { runs: { type: 'string', default: '9' }, 'no-server': { type: 'boolean', default: false } },
);
const RUNS = Math.max(3, count(values.runs, '--runs'));
const say = (l: string) => process.stdout.write(`${l}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The median wall time of RUNS runs (after one warm-up run); `argsOf(i)` may differ per run (a run to approve). */
async function timed(file: string, argsOf: (i: number) => string[], env: NodeJS.ProcessEnv): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS + 1; i++) {
    const t = performance.now();
    await run(file, argsOf(i), { cwd: root, env });
    if (i > 0) times.push(performance.now() - t); // the first run warms the page cache (and builds the CLI)
  }
  return median(times) / 1000;
}

const GATED = { name: 'bench-gate', version: 1, cost_cap_usd: 1, nodes: [{ id: 'g', type: 'approval_gate', message: 'go?' }] };

async function main(): Promise<void> {
  const cli = await resolveTemporalCli({ log: say });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-bench-cli-'));
  const home = path.join(work, 'home');
  const store = new TenantStore(home);
  store.create('bench');
  const server = values['no-server'] ? undefined : await startDevServer({ cliPath: cli.path, port: 0, httpPort: 0, headless: true, searchAttributes: SEARCH_ATTRIBUTE_TYPES, logFile: path.join(work, 'temporal.log') });
  // As `orch up` runs it: the dev server of this ORCH_HOME, its HTTP API's port published for orch status and approve.
  if (server) publishTemporalHttp(home, { address: server.address, httpPort: server.httpPort!, namespace: server.namespace });
  const env = { ...process.env, ORCH_HOME: home, TEMPORAL_ADDRESS: '', ...(server ? { ORCH_TEMPORAL_PORT: server.address.split(':')[1] } : {}), ORCH_TASK_QUEUE: 'bench-cli' };
  const tsx = { ...env, ORCH_CLI_TSX: '1' };
  // The same server named as a cluster: the SDK's gRPC client (desktop-worker/run-transport.ts), as before the HTTP way.
  const grpc = { ...env, ...(server ? { TEMPORAL_ADDRESS: server.address } : {}) };
  const orch = path.join(root, 'bin/orch.mjs');
  const node = process.execPath;
  let stopWorker = async () => {};
  const rows: Array<{ name: string; compiled: number; before: number; grpc?: number; base: number; baseName: string; goal: string }> = [];
  const row = async (name: string, orchArgs: (i: number) => string[], base: number, baseName: string, goal: string, tsxArgs = orchArgs, grpcArgs?: (i: number) => string[]) => {
    const compiled = await timed(node, (i) => [orch, ...orchArgs(i)], env);
    const viaGrpc = grpcArgs ? await timed(node, (i) => [orch, ...grpcArgs(i)], grpc) : undefined;
    rows.push({ name, compiled, before: await timed(node, (i) => [orch, ...tsxArgs(i)], tsx), ...(viaGrpc !== undefined ? { grpc: viaGrpc } : {}), base, baseName, goal });
  };
  try {
    const baseHelp = await timed(cli.path, () => ['--help'], env);
    await row('orch --help', () => ['--help'], baseHelp, '`temporal --help`', '< 0.25 s');
    const dag = path.join(root, 'desktop-worker/demo/demo-review.yaml');
    await row('orch dag validate', () => ['dag', 'validate', dag], baseHelp, '`temporal --help`', '< 0.25 s');
    if (server) await serverRows(server.address);
    say(`\nthe orch command, median of ${RUNS} runs (${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? 'unknown CPU'}, load ${os.loadavg()[0]!.toFixed(1)}, node ${process.version}, Temporal CLI ${cli.version})`);
    say(`${'command'.padEnd(26)}${'compiled'.padStart(10)}${'tsx (before)'.padStart(14)}${'over gRPC'.padStart(11)}${'temporal'.padStart(10)}${'compiled/temporal'.padStart(19)}  temporal doing the same`);
    for (const r of rows) {
      benchRow({ bench: 'cli', figure: r.name, value: r.compiled, unit: 's', baseline: r.baseName, baselineValue: r.base, ratio: r.compiled / r.base, goal: r.goal });
      const grpcCell = r.grpc === undefined ? '-' : `${r.grpc.toFixed(3)} s`;
      say(`${r.name.padEnd(26)}${`${r.compiled.toFixed(3)} s`.padStart(10)}${`${r.before.toFixed(3)} s`.padStart(14)}${grpcCell.padStart(11)}${`${r.base.toFixed(3)} s`.padStart(10)}${`${(r.compiled / r.base).toFixed(1)}x`.padStart(19)}  ${r.baseName}`);
    }
    if (server) say('over gRPC: the same compiled command with TEMPORAL_ADDRESS naming the server (the SDK client); compiled: over the HTTP API, published as orch up does.');
    say('Targets (issue 11): --help and dag validate under 0.25 s; status and approve under 0.5 s.');
  } finally {
    await stopWorker();
    store.close();
    await server?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }

  /** status, approve and runs, against the dev server (not with --no-server). */
  async function serverRows(address: string): Promise<void> {
    await run(node, [orch, 'init'], { cwd: root, env });
    // An Orch worker in this process, and runs parked at a gate: one per `orch approve` and per `temporal
    // workflow signal` (an approval takes the run past its gate), and one that `orch status` asks.
    // The benches' workflow module, bundled once and reused while its sources are unchanged (as bench/support.ts does).
    const bundle = await workflowBundle({ cacheRoot: orchCacheDir(), workflowsPath: fileURLToPath(new URL('./bench-workflows.ts', import.meta.url)), failureConverterPath: '' });
    const nc = await NativeConnection.connect({ address });
    const worker = await OrchWorker.create({
      connection: nc,
      taskQueue: 'bench-cli',
      // No Claude node runs here: the gate DAG has none.
      plugins: [orchPlugin({ registry: { loadDag: (t, n) => store.getDag(t, n) }, prices: () => DEFAULT_PRICES, claude: () => ({}), audit: store }, { workflowBundleCode: bundle.code })],
    });
    const running = worker.run();
    const connection = await Connection.connect({ address });
    stopWorker = async () => {
      // A signal may have begun the shutdown already (the SDK's runtime shuts workers down on SIGINT/SIGTERM).
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await nc.close();
      await connection.close();
    };
    const client = new Client({ connection });
    const parked = (kind: string) => Array.from({ length: 3 * (RUNS + 1) }, (_, i) => `${kind}-${i}`);
    const orchRuns = parked('orch');
    const temporalRuns = parked('temporal');
    for (const workflowId of ['status', ...orchRuns, ...temporalRuns]) {
      await client.workflow.start('runDag', { taskQueue: 'bench-cli', workflowId, args: [{ tenant: 'bench', dag: GATED }] });
    }
    for (;;) {
      const { count } = await client.workflow.count('OrchTenant = "bench" AND OrchState = "waiting_approval" AND ExecutionStatus = "Running"');
      if (count >= 1 + orchRuns.length + temporalRuns.length) break;
      await new Promise((r) => setTimeout(r, 300));
    }

    const baseDescribe = await timed(cli.path, () => ['workflow', 'describe', '--address', address, '--workflow-id', 'status'], env);
    await row('orch status', () => ['status', 'status'], baseDescribe, '`temporal workflow describe`', '< 0.5 s', undefined, () => ['status', 'status']);
    const approval = JSON.stringify({ gate: 'g', decision: 'approve', approver: 'bench' });
    const baseSignal = await timed(cli.path, (i) => ['workflow', 'signal', '--address', address, '--workflow-id', temporalRuns[i]!, '--name', 'approve', '--input', approval], env);
    // Each approval goes to a run of its own (a third of them compiled over HTTP, a third through tsx, a third over gRPC).
    await row('orch approve', (i) => ['approve', orchRuns[i]!, 'g'], baseSignal, '`temporal workflow signal`', '< 0.5 s', (i) => ['approve', orchRuns[RUNS + 1 + i]!, 'g'], (i) => ['approve', orchRuns[2 * (RUNS + 1) + i]!, 'g']);
    const baseList = await timed(cli.path, () => ['workflow', 'list', '--address', address, '--limit', '10'], env);
    await row('orch runs --tenant bench', () => ['runs', '--tenant', 'bench'], baseList, '`temporal workflow list`', '< 0.5 s', undefined, () => ['runs', '--tenant', 'bench']);
  }
}

if (process.platform === 'linux' && process.env.ORCH_CI_KEYRING !== '1') {
  // `orch init` and `orch approve` need an OS keychain: run inside a fresh, unlocked one.
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync('bash', [path.join(root, 'infra/ci-keyring.sh'), process.execPath, '--import', 'tsx', self, ...process.argv.slice(2)], { stdio: 'inherit', cwd: root });
  process.exit(r.status ?? 1);
}
await main();
