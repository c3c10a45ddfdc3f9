/**
 * Running the Temporal dev server (`temporal server start-dev`) as a child of the Orch process.
 *
 * With a `dbFile` the server keeps its state in SQLite, so runs survive a restart; without one it keeps
 * everything in memory (tests). Orch's search attributes are registered at start, and `startDevServer`
 * resolves only once the server answers gRPC and lists them, so callers can start workers and runs at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, type WriteStream } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection, isGrpcServiceError } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { ensurePrivateDir } from '../infra/paths';
import { freeLocalPort } from '../infra/ports';
import { Env } from '../infra/settings';

export type SearchAttributeTypeName = 'Keyword' | 'Text' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

/** The environment variables the port-in-use advice names; `orch up` reads them. */
export const ORCH_TEMPORAL_PORT_ENV = Env.temporalPort;
export const ORCH_TEMPORAL_UI_PORT_ENV = Env.temporalUiPort;

export interface StartDevServerOptions {
  cliPath: string;
  /** SQLite file for durable state; undefined keeps everything in memory. Its folder is created mode 0700. */
  dbFile?: string;
  /** Default 127.0.0.1: the dev server has no authentication, so it must not listen beyond this machine. */
  ip?: string;
  /** gRPC port. Default 7233; 0 picks a free port. */
  port?: number;
  /** Temporal UI port. Default port + 1000; 0 picks a free port. Ignored when headless. */
  uiPort?: number;
  /**
   * The port of the server's HTTP API (`--http-port`; Temporal's JSON API over HTTP/1.1, which `orch status` and
   * `orch approve` use: desktop-worker/temporal-http.ts). 0 picks a free port below the ephemeral range (infra/ports.ts; DevServer.httpPort says which);
   * undefined leaves it to the server (a random free port nobody is told).
   */
  httpPort?: number;
  headless?: boolean;
  /** Default 'default'. */
  namespace?: string;
  searchAttributes?: Record<string, SearchAttributeTypeName>;
  /** Extra `--dynamic-config-value KEY=VALUE` pairs; values are JSON-encoded. */
  dynamicConfig?: Record<string, unknown>;
  /** Orch's own progress lines (not the server's output). */
  log?: (line: string) => void;
  /** Called once the server's process is started (before it answers): `orch up` does its own work meanwhile. */
  onSpawn?: () => void;
  /** Append the server's stdout and stderr here (created mode 0600). */
  logFile?: string;
  /** Give up waiting for readiness after this long. Default 60 s. */
  readyTimeoutMs?: number;
  /**
   * How long Temporal keeps a closed run (the namespace's retention), in days. Default: the dev server's own (1 day
   * for the default namespace). Runs leave Temporal after it; the audit chain keeps their rows.
   */
  retentionDays?: number;
  /** The codec server the Temporal UI sends payloads to for decoding (`--ui-codec-endpoint`; desktop-worker/codec-server.ts). */
  uiCodecEndpoint?: string;
}

export interface DevServer {
  /** `127.0.0.1:PORT`, for `Connection.connect({ address })` and `NativeConnection.connect`. */
  address: string;
  /** The Temporal UI, unless headless. */
  uiUrl?: string;
  /** The HTTP API's port, when it was given (StartDevServerOptions.httpPort). */
  httpPort?: number;
  namespace: string;
  pid: number;
  /** SIGTERM, then SIGKILL after 10 s; resolves once the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL at once, for fault tests. `stop()` still resolves after it. */
  kill(): void;
  /** The server's last output lines, for diagnostics. */
  recentOutput(): string[];
}

export type DevServerErrorCode = 'temporal_port_in_use' | 'temporal_start_failed' | 'temporal_start_timeout';

export class DevServerError extends Error {
  constructor(
    readonly code: DevServerErrorCode,
    message: string,
    readonly recentOutput: string[] = [],
  ) {
    super(message);
    this.name = 'DevServerError';
  }
}

/**
 * Dynamic config every Orch dev server gets. Without the first, a search attribute added after start
 * (registerSearchAttributes) can be refused for up to a minute while the server's cache catches up. The second lets
 * the server hand an activity to the worker that scheduled it, in the reply to its workflow task (eager activity
 * execution), instead of through the task queue: the same history and durability, and about half the time per
 * chained node on the dev server (`npm run bench:engine` measures both).
 *
 * The last three lift the rate at which the history service reads its own task queues (20 reads a second by default,
 * sized for a cluster's many shards): the transfer queue is where a new workflow or activity task waits before it
 * goes to the worker, so at 20 a second every hop of a chained run waited for the next read, up to 50 ms (a chained
 * step took 50 ms with eager activities, 100 ms without: one or two hops). The timer queue fires timers (gate
 * timeouts, retries' backoff), the visibility queue updates what `orch runs` lists. A read happens only when there is
 * a new task (or once a minute), so a higher cap costs nothing when idle; what is written, and so durability, is the
 * same.
 */
const BASE_DYNAMIC_CONFIG: Record<string, unknown> = {
  'system.forceSearchAttributesCacheRefreshOnRead': true,
  'system.enableActivityEagerExecution': true,
  'history.transferProcessorMaxPollRPS': 1000,
  'history.timerProcessorMaxPollRPS': 1000,
  'history.visibilityProcessorMaxPollRPS': 1000,
};

const SEARCH_ATTRIBUTE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OUTPUT_LINES_KEPT = 60;
const STOP_GRACE_MS = 10_000;

/** Values of temporal.api.enums.v1.IndexedValueType, a stable wire enum. */
const INDEXED_VALUE_TYPE: Record<SearchAttributeTypeName, number> = {
  Text: 1,
  Keyword: 2,
  Int: 3,
  Double: 4,
  Bool: 5,
  Datetime: 6,
  KeywordList: 7,
};

/**
 * Starts `temporal server start-dev` and waits until it serves gRPC and lists the search attributes.
 *
 * @example
 * const server = await startDevServer({ cliPath, dbFile: temporalDbFile(orchHome()), port: 7233, uiPort: 8233,
 *   searchAttributes: { OrchTenant: 'Keyword' } });
 * // ... later
 * await server.stop();
 */
export async function startDevServer(opts: StartDevServerOptions): Promise<DevServer> {
  const log = opts.log ?? (() => undefined);
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const searchAttributes = opts.searchAttributes ?? {};
  for (const [name, type] of Object.entries(searchAttributes)) {
    if (!SEARCH_ATTRIBUTE_NAME.test(name) || !(type in INDEXED_VALUE_TYPE)) {
      throw new TypeError(`search attribute ${JSON.stringify(name)}: ${JSON.stringify(type)} is not a valid name and type`);
    }
  }

  const port = opts.port === 0 ? await freeLocalPort(ip) : (opts.port ?? 7233);
  await assertPortFree(ip, port, 'gRPC', ORCH_TEMPORAL_PORT_ENV);
  let uiPort: number | undefined;
  if (!opts.headless) {
    if (opts.uiPort === 0) {
      do uiPort = await freeLocalPort(ip);
      while (uiPort === port);
    } else {
      uiPort = opts.uiPort ?? port + 1000;
    }
    await assertPortFree(ip, uiPort, 'Temporal UI', ORCH_TEMPORAL_UI_PORT_ENV);
  }
  let httpPort: number | undefined;
  if (opts.httpPort === 0) {
    do httpPort = await freeLocalPort(ip);
    while (httpPort === port || httpPort === uiPort);
  } else httpPort = opts.httpPort;

  if (opts.dbFile !== undefined) ensurePrivateDir(path.dirname(path.resolve(opts.dbFile)));
  if (opts.logFile !== undefined) ensurePrivateDir(path.dirname(path.resolve(opts.logFile)));

  const args = devServerArgs({ ...opts, ip, port, uiPort, httpPort, namespace, searchAttributes });

  const host = ip.includes(':') ? `[${ip}]` : ip;
  const address = `${host}:${port}`;
  const uiUrl = uiPort !== undefined ? `http://${host}:${uiPort}` : undefined;
  log(`starting the Temporal dev server on ${address}${uiUrl ? `, UI on ${uiUrl}` : ''}`);
  const child = spawn(opts.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
  const output = new OutputTail(OUTPUT_LINES_KEPT, opts.logFile);
  child.stdout?.on('data', (chunk: Buffer) => output.write(chunk));
  child.stderr?.on('data', (chunk: Buffer) => output.write(chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));
  void spawnFailed.then(() => {
    // A process that never started emits no 'exit'.
    if (child.pid === undefined) liveChildren.delete(child);
  });
  liveChildren.add(child);
  installExitHook();
  opts.onSpawn?.();
  void exited.then(() => liveChildren.delete(child));
  // After 'close', not 'exit': output can still arrive between the two.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  void closed.then(() => output.close());

  const server: DevServer = {
    address,
    uiUrl,
    ...(httpPort !== undefined ? { httpPort } : {}),
    namespace,
    pid: child.pid ?? -1,
    stop: () => stopChild(child, exited),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    recentOutput: () => output.lines(),
  };

  try {
    await waitUntilReady({
      address,
      namespace,
      attributes: Object.keys(searchAttributes),
      deadline: Date.now() + (opts.readyTimeoutMs ?? 60_000),
      exited,
      closed,
      spawnFailed,
      output,
    });
  } catch (err) {
    await server.stop();
    throw err;
  }
  if (opts.dbFile !== undefined) restrictDbFiles(path.resolve(opts.dbFile));
  if (opts.retentionDays !== undefined) {
    try {
      const connection = await Connection.connect({ address });
      try {
        await setNamespaceRetention(connection, namespace, opts.retentionDays);
      } finally {
        await connection.close();
      }
    } catch (err) {
      await server.stop();
      throw new DevServerError('temporal_start_failed', `could not set the retention of namespace ${namespace}: ${(err as Error).message.split('\n')[0]}`, server.recentOutput());
    }
  }
  log(`the Temporal dev server is ready on ${address} (pid ${server.pid})`);
  return server;
}

/**
 * The `temporal` arguments startDevServer runs the server with (ports already chosen; `uiPort` undefined: headless).
 * Exported for `npm run bench:up`, which starts the same server alone as its baseline.
 */
export function devServerArgs(
  o: Pick<StartDevServerOptions, 'dbFile' | 'uiCodecEndpoint' | 'dynamicConfig'> & { ip: string; port: number; uiPort: number | undefined; httpPort?: number; namespace: string; searchAttributes: Record<string, SearchAttributeTypeName> },
): string[] {
  const args = ['server', 'start-dev', '--ip', o.ip, '--port', String(o.port), '--log-level', 'warn'];
  if (o.httpPort !== undefined) args.push('--http-port', String(o.httpPort));
  if (o.dbFile !== undefined) args.push('--db-filename', path.resolve(o.dbFile));
  if (o.uiPort === undefined) args.push('--headless');
  else args.push('--ui-port', String(o.uiPort));
  if (o.uiPort !== undefined && o.uiCodecEndpoint !== undefined) args.push('--ui-codec-endpoint', o.uiCodecEndpoint);
  if (o.namespace !== 'default') args.push('--namespace', o.namespace);
  for (const [name, type] of Object.entries(o.searchAttributes)) args.push('--search-attribute', `${name}=${type}`);
  for (const [key, value] of Object.entries({ ...BASE_DYNAMIC_CONFIG, ...o.dynamicConfig })) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  return args;
}

/** Sets how long the namespace keeps closed runs, and returns what it now says (days). */
export async function setNamespaceRetention(connection: Connection, namespace: string, days: number): Promise<number> {
  const seconds = Math.round(days * 24 * 60 * 60);
  await connection.workflowService.updateNamespace({ namespace, config: { workflowExecutionRetentionTtl: msToTs(seconds * 1000) } });
  const d = await connection.workflowService.describeNamespace({ namespace });
  return Number(d.config?.workflowExecutionRetentionTtl?.seconds ?? 0) / (24 * 60 * 60);
}

/**
 * Adds the search attributes a namespace lacks, for a cluster Orch did not start. An attribute that exists
 * with the same type is left alone (also when another process adds it concurrently); one that exists with
 * another type is an error, since Orch's visibility queries would then mean something else.
 * Returns the names it added.
 */
export async function registerSearchAttributes(
  connection: Connection,
  namespace: string,
  attrs: Record<string, SearchAttributeTypeName>,
): Promise<string[]> {
  const existing = await listCustomAttributes(connection, namespace);
  const missing: Record<string, number> = {};
  for (const [name, type] of Object.entries(attrs)) {
    const want = INDEXED_VALUE_TYPE[type];
    const have = existing[name];
    if (have === undefined) missing[name] = want;
    else if (have !== want) {
      throw new Error(
        `search attribute ${name} exists in namespace ${namespace} with type ${typeName(have)}, but Orch needs ${type}`,
      );
    }
  }
  const names = Object.keys(missing);
  if (names.length === 0) return [];
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: missing as Record<string, never>,
    });
  } catch (err) {
    if (!(isGrpcServiceError(err) && err.code === GRPC_ALREADY_EXISTS)) throw err;
    // Someone added them between our list and our add; check they match what we need.
    return registerSearchAttributes(connection, namespace, attrs).then(() => []);
  }
  return names;
}

/** gRPC status code ALREADY_EXISTS. */
const GRPC_ALREADY_EXISTS = 6;

async function listCustomAttributes(connection: Connection, namespace: string): Promise<Record<string, number>> {
  const res = await connection.operatorService.listSearchAttributes({ namespace });
  const out: Record<string, number> = {};
  for (const [name, type] of Object.entries(res.customAttributes ?? {})) out[name] = Number(type);
  return out;
}

function typeName(value: number): string {
  return Object.entries(INDEXED_VALUE_TYPE).find(([, v]) => v === value)?.[0] ?? `#${value}`;
}

interface ReadyWait {
  address: string;
  namespace: string;
  attributes: string[];
  deadline: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  closed: Promise<void>;
  spawnFailed: Promise<Error>;
  output: OutputTail;
}

async function waitUntilReady(w: ReadyWait): Promise<void> {
  // Resolves when the process can no longer become ready, so a crash is reported at once, not at the deadline.
  const ended = Promise.race([
    w.exited.then(async (e) => {
      // 'exit' can come before the last output is read; 'close' comes after it.
      await Promise.race([w.closed, sleep(500)]);
      const how = e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
      return `the Temporal dev server ${how} before it was ready. Its last output:\n${indent(w.output.lines())}`;
    }),
    w.spawnFailed.then((e) => `could not run the Temporal CLI: ${e.message}`),
  ]);
  let lastProblem = 'no answer yet';
  while (Date.now() < w.deadline) {
    const outcome = await Promise.race([attemptReady(w), ended.then((message) => ({ ended: message }))]);
    if (outcome === 'ready') return;
    if (typeof outcome === 'object') {
      throw new DevServerError('temporal_start_failed', outcome.ended, w.output.lines());
    }
    lastProblem = outcome;
    // Short: the server answers a few hundred ms after it starts, and each ms waited here is a ms of `orch up`.
    await Promise.race([sleep(50), ended]);
  }
  throw new DevServerError(
    'temporal_start_timeout',
    `the Temporal dev server on ${w.address} was not ready in time (${lastProblem}). Its last output:\n${indent(w.output.lines())}`,
    w.output.lines(),
  );
}

/** One readiness check: 'ready', or what is still missing. */
async function attemptReady(w: ReadyWait): Promise<'ready' | string> {
  let connection: Connection | undefined;
  try {
    // Bounded by what is left, so the deadline holds even while a connect hangs.
    const remaining = w.deadline - Date.now();
    connection = await Connection.connect({ address: w.address, connectTimeout: Math.max(1, Math.min(2000, remaining)) });
    const c = connection;
    const names = Object.keys(await c.withDeadline(w.deadline + 1000, () => listCustomAttributes(c, w.namespace)));
    const missing = w.attributes.filter((a) => !names.includes(a));
    return missing.length === 0 ? 'ready' : `search attributes not listed yet: ${missing.join(', ')}`;
  } catch (err) {
    return err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

async function stopChild(
  child: ChildProcess,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    await Promise.race([exited, sleep(100)]);
    return;
  }
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const forced = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), STOP_GRACE_MS);
  });
  const first = await Promise.race([exited, forced]);
  clearTimeout(timer);
  if (first === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

/** The server creates its SQLite files with the umask's mode; they hold run histories, so owner only. */
function restrictDbFiles(dbFile: string): void {
  if (process.platform === 'win32') return;
  for (const file of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}-journal`]) {
    try {
      if (existsSync(file)) chmodSync(file, 0o600);
    } catch {
      // Best effort: the directory is already 0700.
    }
  }
}

/** Keeps the last lines of the server's output and appends everything to the log file, if any. */
class OutputTail {
  private readonly kept: string[] = [];
  private partial = '';
  private readonly file: WriteStream | undefined;

  constructor(
    private readonly max: number,
    logFile: string | undefined,
  ) {
    this.file = logFile !== undefined ? createWriteStream(logFile, { flags: 'a', mode: 0o600 }) : undefined;
    this.file?.on('error', () => undefined);
  }

  write(chunk: Buffer): void {
    this.file?.write(chunk);
    const parts = (this.partial + chunk.toString('utf8')).split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.push(line);
  }

  lines(): string[] {
    return this.partial ? [...this.kept, this.partial] : [...this.kept];
  }

  close(): void {
    if (this.partial) this.push(this.partial);
    this.partial = '';
    this.file?.end();
  }

  private push(line: string): void {
    if (line.trim() === '') return;
    this.kept.push(line);
    if (this.kept.length > this.max) this.kept.shift();
  }
}

async function assertPortFree(ip: string, port: number, what: string, envVar: string): Promise<void> {
  const problem = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    probe.listen({ host: ip, port, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
  if (!problem) return;
  if (problem.code === 'EADDRINUSE') {
    throw new DevServerError(
      'temporal_port_in_use',
      `port ${port} (${what}) is in use on ${ip}: is another Temporal dev server running? stop it or set ${envVar}`,
    );
  }
  throw new DevServerError('temporal_start_failed', `cannot listen on ${ip}:${port} (${what}): ${problem.message}`);
}

// Servers still running when this process exits are killed with it, so a crashed test or CLI never leaves
// one holding the port and the database. (A parent killed by SIGKILL runs no handler at all; then the
// server outlives it, and the next start reports its port as in use.)
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killLiveChildren);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      // Another handler (`orch up`'s graceful shutdown) owns this signal: leave the servers to it, and to
      // the 'exit' hook if it exits without stopping them.
      if (process.listenerCount(signal) > 1) return;
      killLiveChildren();
      process.removeListener(signal, onSignal);
      // Die of the signal, as this process would have without the hook.
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function killLiveChildren(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  liveChildren.clear();
}

function indent(lines: string[]): string {
  return lines.length ? lines.map((l) => `    ${l}`).join('\n') : '    (no output)';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
