/**
 * An Orch worker as a process of its own: for the fault tests that kill it (durability.test.ts) and for
 * `npm run bench:parked`, which measures its RSS alone (bench/support.ts compiles this file with esbuild). Usage:
 *   node --import tsx [NODE_FLAGS] test/support/worker-process.ts ADDRESS TASK_QUEUE ORCH_HOME BUNDLE_PATH
 *     [--sdk-defaults | --max-cached N] [--node-defaults] [--tenant T] [--metrics HOST:PORT]
 *     [--approver NAME:KEY]
 * Tuning: the options `orch up` gives its worker (desktop-worker/worker-tuning.ts); with `--max-cached N` another
 * sticky cache size; with `--sdk-defaults` the SDK's own options (the worker as it ran before that tuning).
 * The process: it must be started as `orch up` is, with bin/up-process.mjs's node flags and environment (its
 * spawner gets them from upProcess()); without them it refuses to start (exit 2), unless `--node-defaults` says it
 * runs with node's own on purpose (bench:parked's before/after).
 * `--metrics HOST:PORT` serves the SDK core's metrics (Prometheus text at /metrics: sticky cache hits and misses,
 * replays, ...) on that loopback address; bench:parked reads them to tell a cached release from a replayed one.
 * `--approver NAME:KEY` (KEY: 64 hex, an Ed25519 public key) makes NAME an approver of every tenant (the gate context
 * the worker's runs load; bench:parked --signed); without it runs load no approvers.
 * `--tenant T` creates the tenant T in ORCH_HOME if it is not there. Prints "worker ready" once polling; stops on
 * SIGTERM. Claude settings come from ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL. A line "mem" on its stdin: it answers one
 * line "mem {...}", its process.memoryUsage() and its main thread's V8 heap spaces (bench:parked's breakdown).
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { missingUpSettings } from '../../bin/up-process.mjs';

const USAGE = 'usage: worker-process.ts ADDRESS TASK_QUEUE ORCH_HOME BUNDLE_PATH [--sdk-defaults | --max-cached N] [--node-defaults] [--tenant T] [--metrics HOST:PORT] [--approver NAME:KEY]\n';

function usage(): never {
  process.stderr.write(USAGE);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: { 'sdk-defaults': { type: 'boolean' }, 'max-cached': { type: 'string' }, 'node-defaults': { type: 'boolean' }, tenant: { type: 'string' }, metrics: { type: 'string' }, approver: { type: 'string' } },
  });
} catch {
  usage();
}
const [address, taskQueue, home, bundlePath, ...extra] = parsed.positionals;
const { 'sdk-defaults': sdkDefaults, 'max-cached': maxCachedFlag, 'node-defaults': nodeDefaults, tenant, metrics, approver } = parsed.values;
const approverMatch = approver === undefined ? undefined : (/^([A-Za-z0-9_-]+):([0-9a-f]{64})$/.exec(approver) ?? usage());
const maxCached = maxCachedFlag === undefined ? undefined : /^\d+$/.test(maxCachedFlag) ? Number(maxCachedFlag) : usage();
if (!address || !taskQueue || !home || !bundlePath || extra.length > 0 || (sdkDefaults && maxCached !== undefined)) usage();
const missing = missingUpSettings(process.execArgv, process.env);
const lacks = [...missing.nodeFlags, ...Object.entries(missing.env).map(([k, v]) => `${k}=${v}`)];
if (lacks.length > 0 && !nodeDefaults) {
  process.stderr.write(`worker-process.ts: not started as \`orch up\` is (bin/up-process.mjs, upProcess()): it lacks ${lacks.join(' ')}\n`);
  process.exit(2);
}

// Loaded once the arguments and the process are checked, so that a refusal is quick.
const [{ NativeConnection, Runtime, Worker }, { OrchWorker }, { orchPlugin }, { TenantStore }, { orchWorkerTuning }, { DEFAULT_PRICES }] = await Promise.all([
  import('@temporalio/worker'),
  import('../../desktop-worker/workflow-threads'),
  import('../../desktop-worker/plugin'),
  import('../../desktop-worker/tenant-store'),
  import('../../desktop-worker/worker-tuning'),
  import('../../workflows/prices'),
]);
const store = new TenantStore(home);
if (tenant !== undefined && !store.exists(tenant)) store.create(tenant);
// Before the first connection: the runtime is made once per process.
if (metrics !== undefined) Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: metrics } } } });
const connection = await NativeConnection.connect({ address });
// orch up's worker class (its workflow threads without the SDK's per-promise stack capture); the SDK's with --sdk-defaults.
const worker = await (sdkDefaults ? Worker : OrchWorker).create({
  connection,
  taskQueue,
  ...(sdkDefaults ? {} : orchWorkerTuning(maxCached)),
  plugins: [
    orchPlugin(
      {
        registry: { loadDag: (t, n) => store.getDag(t, n) },
        prices: () => DEFAULT_PRICES,
        claude: () => ({ apiKey: process.env.ANTHROPIC_API_KEY, baseURL: process.env.ANTHROPIC_BASE_URL }),
        audit: store,
        ...(approverMatch ? { gateContext: () => ({ approvers: [{ name: approverMatch[1]!, key: approverMatch[2]! }], desktopKey: null, agentTiers: {} }) } : {}),
      },
      { workflowBundlePath: bundlePath },
    ),
  ],
});
process.on('SIGTERM', () => worker.shutdown());
// Asked on stdin, not by a signal: the SDK's runtime shuts the worker down on SIGUSR2. The workflow thread's V8 heap
// and the Rust core are in the RSS beyond these.
process.stdin.setEncoding('utf8').on('data', (d: string) => {
  if (!d.includes('mem')) return;
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
  process.stdout.write(`mem ${JSON.stringify({ ...process.memoryUsage(), spaces })}\n`);
});
// A pipe's stream must not keep the process up; stdin from /dev/null (the fault tests) is a file stream, no unref.
(process.stdin as unknown as { unref?: () => void }).unref?.();
const running = worker.run();
process.stdout.write('worker ready\n');
await running;
await connection.close();
store.close();
