/**
 * What the engine benches share (bench/engine.bench.ts, bench/parked.bench.ts): one real Temporal dev server, the
 * local Anthropic-protocol server, a tenant store with the tenant `bench`, and two workers on one connection:
 * - the Orch worker (task queue `bench`): the Orch plugin over bench/bench-workflows.ts, bundled once; in this process,
 *   or (`orchWorkerProcess`) compiled by esbuild into a process of its own, test/support/worker-process.ts, whose RSS is then
 *   the worker's alone;
 * - the plain worker (task queue `plain`): bench/plain-workflows.ts with one activity, `callModel`, making the same
 *   Messages API call a Claude node makes (no retries, no Orch): the baseline.
 * With `agent: true`, a real Go agent (`orch-agent run --stdio`, enrolled for the tenant `bench` as `bench-agent`,
 * allowed to run `echo`) behind the desktop's sealed transport: the Orch worker's command nodes go to it, and the
 * plain worker gets a second activity, `runOnAgent`, sending the same sealed command through the same transport.
 * Not a test: nothing here asserts.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { build as esbuild } from 'esbuild';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { OrchWorker } from '../desktop-worker/workflow-threads';
import { upProcess } from '../bin/up-process.mjs';
import { startDevServer, type DevServer } from '../desktop-worker/dev-server';
import { orchPlugin } from '../desktop-worker/plugin';
import { workflowBundle } from '../desktop-worker/workflow-bundle-cache';
import { orchCacheDir } from '../infra/paths';
import { TenantStore } from '../desktop-worker/tenant-store';
import { DEFAULT_PRICES } from '../workflows/prices';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/shared';
import { startFakeAnthropic, type FakeAnthropic } from '../test/support/anthropic';
import { ORCH_AGENT_BIN_ENV, resolveAgentBinary } from '../infra/agent-binary';
import { startPipeAgent } from '../test/support/stdio-agent';
import type { CommandTransport } from '../activities';

/** The model every bench node and plain activity asks for. */
export const BENCH_MODEL = 'claude-haiku-4-5';

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface BenchWorkersOptions {
  /** The Temporal CLI binary (resolveTemporalCli). */
  cliPath: string;
  /** The dev server's `system.enableActivityEagerExecution`. */
  eager: boolean;
  /** Both workers' maxConcurrentActivityTaskExecutions; the SDK's default when absent. */
  concurrency?: number;
  /** The temporary directory's name prefix. */
  prefix: string;
  /**
   * Run the Orch worker in a process of its own, compiled (as `orch up` runs from dist/cli/orch.cjs; tsx's loader
   * would add about 65 MiB), with the options `orch up` gives it (another cache size: `maxCachedWorkflows`), or with
   * `sdkDefaults` the SDK's; in a process started as `orch up` is (bin/up-process.mjs: its node flags and
   * environment), or with `nodeDefaults` node's own; `nodeFlags` are added; `metricsAddress` (a loopback HOST:PORT):
   * the worker serves its SDK core metrics there (Prometheus text at /metrics); `approver` (NAME:KEY): an approver
   * of every tenant (test/support/worker-process.ts --approver).
   */
  orchWorkerProcess?: { sdkDefaults: boolean; maxCachedWorkflows?: number; nodeDefaults?: boolean; nodeFlags?: string[]; metricsAddress?: string; approver?: string };
  /** Start a Go agent for command nodes (and the plain worker's `runOnAgent`). */
  agent?: boolean;
}

/** process.memoryUsage() of the Orch worker process, and its main thread's V8 heap spaces (bytes used). */
export type OrchWorkerMemory = NodeJS.MemoryUsage & { spaces: Record<string, number> };

/** The agent the bench's command nodes name. */
export const BENCH_AGENT = 'bench-agent';

export interface BenchWorkers {
  server: DevServer;
  client: Client;
  /** The tenant store's home (ORCH_HOME for a CLI the bench starts). */
  home: string;
  /** The local Anthropic-protocol server both workers call (what it received, and when). */
  anthropic: FakeAnthropic;
  /** The Orch worker's process id, when it runs in a process of its own. */
  orchWorkerPid?: number;
  /** Its memory by kind, reported by the process itself (test/support/worker-process.ts, asked on its stdin). */
  orchWorkerMemory?: () => Promise<OrchWorkerMemory>;
  /** Shuts both workers down, then closes the connections and stops the servers, and removes the directory. */
  stop(): Promise<void>;
}

/** Starts the servers and the two workers described in the module comment; on a failure, stops what it started. */
export async function startBenchWorkers(opts: BenchWorkersOptions): Promise<BenchWorkers> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), opts.prefix));
  const home = path.join(work, 'home');
  const cleanups: (() => unknown)[] = [() => fs.rmSync(work, { recursive: true, force: true })];
  const cleanUp = async () => {
    for (const c of cleanups.reverse()) await c();
  };
  try {
    const server = await startDevServer({
      cliPath: opts.cliPath,
      port: 0,
      // Its HTTP API too, as `orch up` starts it: bench:parked lists runs through it (orch runs, as users do).
      httpPort: 0,
      headless: true,
      searchAttributes: SEARCH_ATTRIBUTE_TYPES,
      logFile: path.join(work, 'temporal.log'),
      dynamicConfig: { 'system.enableActivityEagerExecution': opts.eager },
    });
    cleanups.push(() => server.stop());
    const anthropic = await startFakeAnthropic();
    cleanups.push(() => anthropic.stop());
    const store = new TenantStore(home);
    cleanups.push(() => store.close());
    store.create('bench');
    let commands: CommandTransport | undefined;
    if (opts.agent) {
      process.env[ORCH_AGENT_BIN_ENV] ??= await resolveAgentBinary();
      const pipe = await startPipeAgent({ home, tenants: ['bench'], allow: ['echo'], name: BENCH_AGENT, stateDir: path.join(work, 'agent-state') });
      cleanups.push(() => pipe.close());
      commands = pipe.transport;
    }
    const bundle = await workflowBundle({ cacheRoot: orchCacheDir(), workflowsPath: fileURLToPath(new URL('./bench-workflows.ts', import.meta.url)), failureConverterPath: '' });
    const bundlePath = path.join(work, 'bundle.js');
    fs.writeFileSync(bundlePath, bundle.code);
    const nc = await NativeConnection.connect({ address: server.address });
    cleanups.push(() => nc.close());
    const concurrency = opts.concurrency === undefined ? {} : { maxConcurrentActivityTaskExecutions: opts.concurrency };
    let orchWorkerPid: number | undefined;
    let orchWorkerMemory: (() => Promise<OrchWorkerMemory>) | undefined;
    const worker = opts.orchWorkerProcess
      ? undefined
      : await OrchWorker.create({
          connection: nc,
          taskQueue: 'bench',
          ...concurrency,
          plugins: [
            orchPlugin(
              {
                registry: { loadDag: (t, n) => store.getDag(t, n) },
                prices: () => DEFAULT_PRICES,
                claude: () => ({ apiKey: anthropic.apiKey, baseURL: anthropic.baseURL }),
                audit: store,
                ...(commands ? { commands } : {}),
              },
              { workflowBundlePath: bundlePath },
            ),
          ],
        });
    if (opts.orchWorkerProcess) {
      const script = path.join(work, 'worker-process.mjs');
      await esbuild({ entryPoints: [fileURLToPath(new URL('../test/support/worker-process.ts', import.meta.url))], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: script, logLevel: 'error' });
      // Its packages resolve from the repository's node_modules.
      fs.symlinkSync(fileURLToPath(new URL('../node_modules', import.meta.url)), path.join(work, 'node_modules'));
      const { nodeDefaults } = opts.orchWorkerProcess;
      const args = [script, server.address, 'bench', home, bundlePath, ...(opts.orchWorkerProcess.sdkDefaults ? ['--sdk-defaults'] : opts.orchWorkerProcess.maxCachedWorkflows !== undefined ? ['--max-cached', String(opts.orchWorkerProcess.maxCachedWorkflows)] : []), ...(nodeDefaults ? ['--node-defaults'] : []), ...(opts.orchWorkerProcess.metricsAddress ? ['--metrics', opts.orchWorkerProcess.metricsAddress] : []), ...(opts.orchWorkerProcess.approver ? ['--approver', opts.orchWorkerProcess.approver] : [])];
      const env = { ...process.env, ANTHROPIC_API_KEY: anthropic.apiKey, ANTHROPIC_BASE_URL: anthropic.baseURL };
      const up = nodeDefaults ? { nodeFlags: [], env } : upProcess(env);
      const child = spawn(process.execPath, [...up.nodeFlags, ...(opts.orchWorkerProcess.nodeFlags ?? []), ...args], { env: up.env, stdio: ['pipe', 'pipe', 'pipe'] });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      cleanups.push(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      });
      let out = '';
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('worker ready')) resolve();
        });
        void exited.then(() => reject(new Error(`the Orch worker process exited before it was ready:\n${out}`)));
      });
      orchWorkerPid = child.pid;
      orchWorkerMemory = () =>
        new Promise((resolve, reject) => {
          const from = out.length;
          const onData = () => {
            const line = /^mem (.*)$/m.exec(out.slice(from))?.[1];
            if (!line) return;
            child.stdout.off('data', onData);
            resolve(JSON.parse(line) as OrchWorkerMemory);
          };
          void exited.then(() => reject(new Error(`the Orch worker process exited:\n${out}`)));
          child.stdout.on('data', onData);
          child.stdin.write('mem\n');
        });
    }
    const model = new Anthropic({ apiKey: anthropic.apiKey, baseURL: anthropic.baseURL, maxRetries: 0 });
    const plainWorker = await Worker.create({
      connection: nc,
      taskQueue: 'plain',
      ...concurrency,
      workflowsPath: fileURLToPath(new URL('./plain-workflows.ts', import.meta.url)),
      activities: {
        async callModel(prompt: string): Promise<string> {
          const m = await model.messages.create({ model: BENCH_MODEL, max_tokens: 16, messages: [{ role: 'user', content: prompt }] });
          return m.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
        },
        // The command node's own work: the same sealed command to the same agent, under a fresh command id.
        async runOnAgent(argv: string[]): Promise<number> {
          if (!commands) throw new Error('startBenchWorkers: runOnAgent needs agent: true');
          const r = await commands.run({ tenant: 'bench', agent: BENCH_AGENT, argv, timeoutSeconds: 60, commandId: `plain/${randomUUID()}` });
          return r.exitCode;
        },
      },
    });
    const running = Promise.all([worker?.run(), plainWorker.run()]);
    cleanups.push(async () => {
      worker?.shutdown();
      plainWorker.shutdown();
      await running;
    });
    const connection = await Connection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    return { server, client: new Client({ connection }), home, anthropic, ...(orchWorkerPid ? { orchWorkerPid } : {}), ...(orchWorkerMemory ? { orchWorkerMemory } : {}), stop: cleanUp };
  } catch (e) {
    await cleanUp();
    throw e;
  }
}
