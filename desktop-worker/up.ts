/**
 * `orch up`: everything an operator needs on one machine. Gets the pinned Temporal CLI, runs the Temporal dev
 * server (SQLite in the app-data directory, so parked runs survive restarts) or connects to the configured
 * Temporal, makes the demo tenant, and runs the Orch worker until Ctrl-C.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { Runtime, type NativeConnectionOptions } from '@temporalio/worker';
import { resolveTemporalCli } from '../infra/temporal-cli';
import { compileDag } from '../workflows/dag/compile';
import { parseDagText } from './dag-yaml';
import { DAG_SIGNATURE_INVALID } from './dag-signing';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/shared';
import { loadConfig, type OrchConfig } from './config';
import { registerSearchAttributes, startDevServer, type DevServer } from './dev-server';
import { publishTemporalHttp, unpublishTemporalHttp } from './run-transport';
import { resolveAgentBinary } from '../infra/agent-binary';
import { ensurePrivateDir, orchCacheDir, temporalDbFile } from '../infra/paths';
import { Env, flagSetting, processEnv, setting } from '../infra/settings';
import { createLogger, eventSink, logFile } from '../infra/log';
import { installWorkerLogging } from './worker-log';
import { LOCAL_RELAY } from './relay-registry';
import { KeychainUnavailableError, loadOrCreateDesktopIdentity } from './identity';
import { OrchError } from '../protocol/errors';
import { connectRelayTransports, type ConnectedRelays } from './relay-pool';
import type { LocalStack } from './local-stack';
import { insideSessionKeyring, publishSessionBus, withdrawSessionBus } from './session-keyring';
import { tenantStoreFor } from './tenant-access';
import { TenantStore, dagHash } from './tenant-store';
import { connectionOptionsOf } from './temporal-client';
import { createOrchWorker, type CreatedWorker } from './worker';
import { orchThreadSettings, startEarlyWorkflowThreads, type EarlyWorkflowThreads } from './early-workflow-threads';
import { orchWorkerTuning } from './worker-tuning';
import type { CommandTransport } from '../activities';
import { PayloadKeyring, loadPayloadCodec } from './payload-codec';
import { startCodecServer, type CodecServer } from './codec-server';
import { StartupTimeline, timelineOrigin } from './startup-timeline';
import { workflowBundle } from './workflow-bundle-cache';

type Out = { log: (line: string) => void; err: (line: string) => void };

export const DEMO_TENANT = 'demo';

/** The relay clients' and the relay transport's events (metadata only), JSON lines in <ORCH_HOME>/logs/relay-client.log. */
function relayLog(home: string): (event: Record<string, unknown>) => void {
  return eventSink(createLogger({ component: 'relay-transport', file: logFile(home, 'relay-client.log') }));
}
/** Where `orch up` tells the codec server's URL and token to this user's other tools (mode 0600). */
export function codecServerFile(home: string): string {
  return path.join(home, 'run', 'codec-server.json');
}

function publishCodecServer(home: string, server: CodecServer, namespace: string): void {
  const file = codecServerFile(home);
  ensurePrivateDir(path.dirname(file));
  fs.writeFileSync(file, `${JSON.stringify({ url: server.url, uiEndpoint: server.uiEndpoint, token: server.token, namespace }, null, 2)}\n`, { mode: 0o600 });
}

async function stopCodecServer(home: string, server: CodecServer | undefined): Promise<void> {
  if (!server) return;
  fs.rmSync(codecServerFile(home), { force: true });
  await server.close().catch(() => undefined);
}

/** Requests the codec server refused (origin, token, namespace), JSON lines in <ORCH_HOME>/logs/codec-server.log. */
function codecLog(home: string): (event: Record<string, unknown>) => void {
  return eventSink(createLogger({ component: 'codec-server', file: logFile(home, 'codec-server.log') }));
}
const DEMO_DAG_FILE = fileURLToPath(new URL('./demo/demo-review.yaml', import.meta.url));

/** How the operator calls `orch` here: by name once it is on PATH (`npm link`, a global install), else `npx orch`. */
function orchCommand(): string {
  const onPath = (processEnv().PATH ?? '').split(path.delimiter).some((dir) => dir && fs.existsSync(path.join(dir, 'orch')));
  return onPath ? 'orch' : 'npx orch';
}

/** Creates the demo tenant and (re)registers the demo DAG when it changed. Returns the DAG's name. */
export function ensureDemo(store: TenantStore, knownModels: string[]): string {
  if (!store.exists(DEMO_TENANT)) store.create(DEMO_TENANT);
  const text = fs.readFileSync(DEMO_DAG_FILE, 'utf8');
  const parsed = parseDagText(text, path.basename(DEMO_DAG_FILE));
  if (!parsed.ok) throw new Error(`the bundled demo DAG does not parse: ${parsed.issues.map((i) => i.message).join('; ')}`);
  const compiled = compileDag(parsed.source, { knownModels });
  if (!compiled.ok) throw new Error(`the bundled demo DAG does not compile: ${compiled.issues.map((i) => i.message).join('; ')}`);
  const source = parsed.source as { name: string; version: string | number };
  const existing = store.listDags(DEMO_TENANT).find((d) => d.name === source.name);
  if (!existing || existing.hash !== dagHash(source) || !demoSignatureHolds(store, source.name)) store.registerDag(DEMO_TENANT, source, text);
  return source.name;
}

/**
 * Whether the stored demo DAG still verifies (a row signed by an older Orch, signature v1, does not): if not, the
 * bundled file is registered again, which replaces the row with the shipped content under a fresh signature.
 */
function demoSignatureHolds(store: TenantStore, name: string): boolean {
  try {
    store.getDag(DEMO_TENANT, name);
    return true;
  } catch (err) {
    if (err instanceof OrchError && err.code === DAG_SIGNATURE_INVALID) return false;
    throw err;
  }
}

export interface UpOptions {
  demo: boolean;
  localAgent: boolean;
  /** Print the start-up timeline (also under ORCH_DEBUG). */
  timings?: boolean;
}

export async function runUp(opts: UpOptions, out: Out): Promise<number> {
  const config = loadConfig();
  ensurePrivateDir(config.home);
  publishSessionBus(config.home);
  try {
    return await up(config, opts, out);
  } finally {
    withdrawSessionBus(config.home);
  }
}

/** A promise whose rejection is only observed later (after other awaits): never reported as unhandled meanwhile. */
function early<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

async function up(config: OrchConfig, opts: UpOptions, out: Out): Promise<number> {
  const timeline = new StartupTimeline(timelineOrigin(setting(Env.upStartedAt), Math.round(performance.timeOrigin)));
  const target = config.temporal;
  let devServer: DevServer | undefined;
  let codecServer: CodecServer | undefined;
  let connectionOptions: NativeConnectionOptions | undefined;
  let uiUrl: string | undefined;
  let store: TenantStore | undefined;
  let demoDag: string | undefined;
  let local: LocalStack | undefined;
  let links: ConnectedRelays | undefined;
  // Everything starts at once; each part waits only for what it needs. What needs no key (the Temporal CLI, the dev
  // server, the agent binary, the workflow bundle) does not wait for the keychain. The dev server is the long pole: it
  // is started first, and the work that keeps this process busy (checking the workflow bundle's sources, loading the
  // relay, opening the tenant store, installing the Temporal runtime) waits until its process has started (or failed
  // to), so it runs while the dev server starts. With a Temporal of its own (TEMPORAL_ADDRESS), the connection to it
  // comes first in the same way: its connect deadline runs while this process is busy loading otherwise.
  let devServerSpawned = false;
  let devServerGone: () => void = () => undefined;
  const devServerFirst = new Promise<void>((resolve) => (devServerGone = resolve));
  // The codec server beside the dev server: the UI is told its endpoint at start, which is known as soon as the codec
  // server's port is bound (NestJS loads meanwhile, while the dev server starts); it answers the UI's origin once
  // known. It listens before the payload key is read; a request waits for the key.
  let codecEndpointKnown: (endpoint: { uiEndpoint: string }) => void = () => undefined;
  const codecEndpoint = new Promise<{ uiEndpoint: string }>((resolve) => (codecEndpointKnown = resolve));
  const lazyCodec: PayloadCodec = {
    encode: async (payloads) => (await payloadCodecReady).encode(payloads),
    decode: async (payloads) => (await payloadCodecReady).decode(payloads),
  };
  // First of all: its port is part of the dev server's command line.
  const codecServerReady =
    target.kind === 'dev-server'
      ? early(
          timeline.phase('codec server', async () => {
            codecServer = await startCodecServer({ codec: lazyCodec, namespace: target.namespace, log: codecLog(config.home), listening: codecEndpointKnown, loadAfter: devServerFirst });
            return codecServer;
          }),
        )
      : undefined;
  const cliReady = target.kind === 'dev-server' ? early(timeline.phase('Temporal CLI found', () => resolveTemporalCli({ log: (l) => out.log(l) }))) : undefined;
  const agentBinReady = opts.localAgent ? early(timeline.phase('agent binary found', () => resolveAgentBinary({ log: out.log }))) : undefined;
  const bundleReady = config.workflowBundle
    ? undefined
    : early(
        devServerFirst.then(() =>
          timeline.phase('workflow bundle', async () => {
            const b = await workflowBundle({ cacheRoot: orchCacheDir() });
            if (!b.cached) out.log(`bundled Orch's workflows (reused at the next start while workflows/ is unchanged): ${b.dir}`);
            return b;
          }),
        ),
      );
  // The desktop identity: without a keychain Orch cannot sign DAGs or talk to agents, and says so.
  const identityReady = early(
    timeline.phase('identity (keychain)', async () => {
      try {
        const identity = await loadOrCreateDesktopIdentity({ home: config.home });
        if (identity.created) out.log(`created this desktop's identity (keys in the OS keychain), fingerprint ${identity.fingerprint}`);
        return identity;
      } catch (err) {
        if (err instanceof KeychainUnavailableError && insideSessionKeyring()) {
          throw new OrchError('keychain_locked', `Orch's keyring in ${path.join(config.home, 'keyring')} stayed locked: the password is wrong. Run \`orch up\` again with the right one.`);
        }
        throw err;
      }
    }),
  );
  // Everything the worker and the orch commands send to Temporal is encrypted (desktop-worker/payload-codec.ts). Read
  // after the identity, not beside it: two reads at once from a locked keyring (a wrong password) can leave one
  // waiting for an unlock prompt that never comes.
  const payloadCodecReady = early(
    identityReady.then(() =>
      timeline.phase('payload key (keychain)', async () => {
        if (await PayloadKeyring.open(config.home).ensure()) out.log('created the key that encrypts what Orch stores in Temporal (OS keychain; `orch keys rotate` makes a new one)');
        return loadPayloadCodec(config.home);
      }),
    ),
  );


  const temporalReady = async (): Promise<void> => {
    if (target.kind === 'dev-server') {
      try {
        const cli = await cliReady!;
        out.log(`Temporal CLI ${cli.version} (${cli.source}): ${cli.path}`);
        const dbFile = temporalDbFile(config.home);
        out.log(`starting the Temporal dev server (database ${dbFile})…`);
        // The endpoint only (the codec server's port, bound at once), not NestJS: that loads while the dev server starts.
        const codec = await Promise.race([codecEndpoint, codecServerReady!]);
        devServer = await timeline.phase('Temporal dev server', () =>
          startDevServer({
            cliPath: cli.path,
            dbFile,
            ip: target.ip,
            port: target.port,
            uiPort: target.uiPort,
            // A free port for the HTTP API, published below for `orch status` and `orch approve` (run-transport.ts).
            httpPort: 0,
            namespace: target.namespace,
            searchAttributes: SEARCH_ATTRIBUTE_TYPES,
            logFile: path.join(ensurePrivateDir(path.join(config.home, 'logs')), 'temporal.log'),
            retentionDays: config.retentionDays,
            uiCodecEndpoint: codec.uiEndpoint,
            onSpawn: () => {
              devServerSpawned = true;
              devServerGone();
            },
          }),
        );
        codecServer = await codecServerReady!;
        if (devServer.uiUrl) codecServer.allowOrigin(devServer.uiUrl);
        publishCodecServer(config.home, codecServer, target.namespace);
        if (devServer.httpPort !== undefined) publishTemporalHttp(config.home, { address: devServer.address, httpPort: devServer.httpPort, namespace: target.namespace });
        connectionOptions = { address: devServer.address };
        uiUrl = devServer.uiUrl;
      } finally {
        devServerGone();
      }
    } else {
      connectionOptions = target.connect.connectionOptions;
      out.log(`using Temporal at ${target.description}`);
      try {
        await timeline.phase('Temporal search attributes', async () => {
          const conn = await Connection.connect(connectionOptionsOf(target));
          try {
            await registerSearchAttributes(conn, target.namespace, SEARCH_ATTRIBUTE_TYPES);
          } catch (err) {
            out.err(`warning: could not register Orch's search attributes (${(err as Error).message.split('\n')[0]}); ask your Temporal admin to add OrchTenant, OrchDag, OrchState as Keyword`);
          } finally {
            await conn.close();
          }
        });
      } finally {
        devServerGone();
      }
    }
  };
  const relaysReady = async (): Promise<void> => {
    // Loaded once the dev server's process started, not with `orch up` (the relay's NestJS, its WebSocket adapter and
    // X.509 code take a while to load, and the dev server is started first), and not after the keychain read: loading
    // needs no key.
    const localStackLoaded = opts.localAgent ? early(devServerFirst.then(() => import('./local-stack'))) : undefined;
    const identity = await identityReady;
    await devServerFirst;
    if (opts.localAgent) {
      const agentBin = await agentBinReady!;
      const { startLocalStack } = await localStackLoaded!;
      local = await timeline.phase('local relay and agent', () => startLocalStack({ home: config.home, identity, relayPort: config.relayPort, out, agentBin }));
    }
    // Every named relay that has agents (the local one too), pin checked; each command goes to its agent's relay.
    // Without the local stack, its relay is not reached: its agent's commands fail relay_unavailable.
    links = await timeline.phase('relay connections', () =>
      connectRelayTransports({
        home: config.home,
        identity,
        ...(opts.localAgent ? {} : { skip: [LOCAL_RELAY] }),
        log: relayLog(config.home),
      }),
    );
    for (const r of links.relays()) {
      out.log(r.connected ? `relay "${r.name}" connected (${r.url})` : `warning: relay "${r.name}" (${r.url}) is not connected yet${r.startError ? `: ${r.startError.code}: ${r.startError.message}` : ''}; its agents' commands fail relay_unavailable (retried) until it is`);
    }
  };
  const tenantsReady = async (): Promise<void> => {
    const identity = await identityReady;
    await devServerFirst;
    await timeline.phase('tenant store and demo', () => {
      // The identity read above signs the store's checkpoints and DAGs: no second keychain read.
      store = tenantStoreFor(config.home, identity);
      // Created and registered only the first time (or when the bundled demo DAG changed).
      if (opts.demo) demoDag = ensureDemo(store, Object.keys(config.prices));
    });
  };

  // Ctrl-C while starting: what is starting finishes starting, then everything stops (the runtime, once installed,
  // would otherwise swallow the signal until the worker exists).
  let interrupted: NodeJS.Signals | undefined;
  const onEarlySignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = signal;
    out.log(`${signal}: stopping as soon as what is starting has started…`);
  };
  process.on('SIGINT', onEarlySignal);
  process.on('SIGTERM', onEarlySignal);

  let worker;
  let workerLog: ReturnType<typeof installWorkerLogging>;
  let created: CreatedWorker | undefined;
  let earlyThreads: EarlyWorkflowThreads | undefined;
  try {
    // The Temporal runtime (and the worker's log) while the dev server starts: installing it loads the Temporal worker
    // SDK, which is then off the path to "Orch is up". Not at all when the dev server failed before its process
    // started (that failure is reported instead). A failure after this point must end the process itself
    // (bin/orch.mjs exits when `orch up` returns): the runtime keeps it alive.
    const workerLogReady = early(
      devServerFirst.then(() => (target.kind !== 'dev-server' || devServerSpawned ? timeline.phase('worker logging', () => installWorkerLogging(config.home)) : undefined)),
    );
    // The worker's workflow threads (the bundle parsed and compiled, the SDK's workflow thread started and loaded with
    // it) while the dev server starts, not after it answers: the worker created below takes them over
    // (early-workflow-threads.ts). Resolves once they are starting.
    const earlyThreadsStarted = early(
      Promise.all([bundleReady, workerLogReady]).then(([bundle, log]) => {
        if (!bundle || !log) return;
        earlyThreads = startEarlyWorkflowThreads(bundle.code, orchThreadSettings(orchWorkerTuning(config.maxCachedWorkflows).reuseV8Context ?? true), Runtime.instance().logger);
        const started = Date.now();
        // Timed for the timeline; a failure here only means the worker starts its own threads.
        earlyThreads.ready.then(
          () => timeline.record('workflow threads (early)', started, Date.now()),
          () => undefined,
        );
      }),
    );
    const temporal = early(temporalReady());
    const relays = early(relaysReady());
    const tenants = early(tenantsReady());
    // The worker is created (connected, registered, its workflow threads taken over) as soon as Temporal answers and
    // the tenant store and the payload key are there; the relays connect meanwhile. Commands reach the relays through
    // `links`, which exist before the worker polls: it starts polling only once every part is up.
    const commands: CommandTransport = {
      run: (request) => {
        if (!links) throw new OrchError('relay_unavailable', 'the relays are not connected yet');
        return links.transport.run(request);
      },
    };
    const workerCreated = early(
      Promise.all([temporal, tenants, payloadCodecReady, bundleReady, workerLogReady, earlyThreadsStarted]).then(([, , payloadCodec, bundle]) =>
        timeline.phase('worker', async () => {
          created = await createOrchWorker(config, connectionOptions!, target.namespace, store!, commands, payloadCodec, bundle?.code, earlyThreads?.workerClass());
          return created;
        }),
      ),
    );
    const settled = await Promise.allSettled([identityReady, payloadCodecReady, codecServerReady, temporal, relays, tenants, bundleReady, workerLogReady, workerCreated]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    // The worker's and the Temporal SDK's lines go to <ORCH_HOME>/logs/worker.log (warnings and errors also here, on
    // stderr).
    workerLog = (await workerLogReady)!;
    worker = created!.start();
    workerLog.info({
      event: 'worker_started',
      taskQueue: config.taskQueue,
      namespace: target.namespace,
      address: connectionOptions!.address ?? null,
      relays: links!.relays().map((r) => r.name),
      earlyWorkflowThreads: earlyThreads?.taken ?? false,
    });
  } catch (err) {
    await created?.close();
    await earlyThreads?.discard();
    await links?.close();
    await local?.stop();
    await devServer?.stop();
    if (devServer) unpublishTemporalHttp(config.home);
    await stopCodecServer(config.home, codecServer);
    if (!created) store?.close();
    throw err;
  } finally {
    process.off('SIGINT', onEarlySignal);
    process.off('SIGTERM', onEarlySignal);
  }

  // Interrupted while starting: stopped below, never announced as up.
  if (!interrupted) {
    if (opts.timings || flagSetting(Env.debug)) for (const line of timeline.lines()) out.log(line);
    out.log('');
    out.log('Orch is up.');
    if (uiUrl) out.log(`  Temporal UI      ${uiUrl}`);
    if (codecServer) out.log(`  codec server     ${codecServer.url} (decrypts payloads for the UI; token in ${codecServerFile(config.home)})`);
    out.log(`  Temporal         ${connectionOptions!.address} (namespace ${target.namespace}), task queue "${config.taskQueue}"`);
    out.log(`  data             ${config.home}`);
    if (demoDag) {
      out.log(`  demo             tenant "${DEMO_TENANT}" with DAG "${demoDag}"`);
      out.log('');
      out.log('Next:');
      out.log(`  ${orchCommand()} run ${demoDag} --tenant ${DEMO_TENANT} --param service=nginx --follow`);
      if (uiUrl) out.log(`  or in the Temporal UI: Start Workflow, type "${demoDag}", task queue "${config.taskQueue}", input {"tenant":"${DEMO_TENANT}","params":{"service":"nginx"}}`);
      if (!config.anthropic.apiKey) out.log('  note: ANTHROPIC_API_KEY is not set, so Claude nodes fail (claude_request_rejected) until you set it and restart.');
    }
    out.log('Ctrl-C stops Orch.');
  }

  let stopping: Promise<void> | undefined;
  const stop = (signal: string): Promise<void> => (stopping ??= stopAll(signal));
  const stopAll = async (signal: string) => {
    out.log(`${signal}: stopping the worker${local ? ', the local agent and relay' : ''}${devServer ? ' and the Temporal dev server' : ''}…`);
    await worker.stop();
    workerLog.info({ event: 'worker_stopped', signal });
    await links?.close();
    await local?.stop();
    await devServer?.stop();
    if (devServer) unpublishTemporalHttp(config.home);
    await stopCodecServer(config.home, codecServer);
    out.log('Orch stopped. Runs waiting at a gate resume at the next `orch up`.');
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  if (interrupted) void stop(interrupted);
  try {
    await worker.running;
  } finally {
    // Stopped by a signal: `orch up` returns (and bin/orch.mjs exits) only once everything has stopped.
    if (stopping) await stopping;
    else {
      stopping = Promise.resolve();
      await links?.close();
      await local?.stop();
      await devServer?.stop();
      if (devServer) unpublishTemporalHttp(config.home);
      await stopCodecServer(config.home, codecServer);
    }
  }
  return 0;
}
