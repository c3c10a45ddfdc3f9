/**
 * The Orch plugin: one line adds Orch to a Temporal Worker.
 *
 * @example
 * ```ts
 * const worker = await Worker.create({ connection, taskQueue: 'orch', plugins: [orchPlugin(deps)] });
 * ```
 * It registers Orch's workflows (prebundled when a bundle is given, else bundled at start from `workflowsPath`,
 * by default Orch's production module, workflows/index.ts), its activities, and its interceptors. The plugin
 * trusts the bundle or module it is handed: the production worker (desktop-worker/worker.ts) hands it only a
 * bundle whose signature by the desktop key it checked.
 */
import { fileURLToPath } from 'node:url';
import { ApplicationFailure, type PayloadCodec } from '@temporalio/common';
import { SimplePlugin } from '@temporalio/plugin';
import type { ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, BundleOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { OrchError } from '../protocol/errors';
import { encryptedDataConverter } from './payload-codec';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/**
 * Workflow modules every bundle of Orch's loads once per workflow thread, shared by all the runs on it (the SDK's
 * `preloadModules`), instead of once per run and again at each replay: @noble's Ed25519 and SHA-2 (whose set-up and
 * first, cold verification cost each parked run 6-9 ms when its approval came; workflows/ed25519.ts), and
 * Orch's pure modules, with what they import: canonical JSON, the destructive-command check, the DAG compiler, the
 * Temporal UI's details, the cost ledger and the audit rows. Only modules that keep no state from one call to the
 * next belong here (canonical-json's and destructive's scratch variables are set and read within one synchronous
 * call) and that call no workflow API when they load. bench:parked --signed at N=1000: the evicted run's release
 * 46 -> 43 ms, the cached one 33 -> 31 ms with the pure modules added. Every bundle Orch makes passes it:
 * workflowBundle() (orch up, tests, benches), `npm run build`, and a worker that bundles at start through orchPlugin.
 */
export const WORKFLOW_PRELOAD_MODULES: readonly string[] = [
  '../workflows/ed25519.ts',
  '../protocol/canonical-json.ts',
  '../protocol/destructive.ts',
  '../workflows/dag/compile.ts',
  '../workflows/ui-metadata.ts',
  '../workflows/cost-ledger.ts',
  '../workflows/audit-rows.ts',
].map((m) => fileURLToPath(new URL(m, import.meta.url)));

/** `options` with Orch's preloaded modules added to any it already names. */
export function withPreloadModules(options: BundleOptions): BundleOptions {
  return { ...options, preloadModules: [...new Set([...(options.preloadModules ?? []), ...WORKFLOW_PRELOAD_MODULES])] };
}

/** SimplePlugin, whose bundler options (a worker bundling at start) also preload WORKFLOW_PRELOAD_MODULES. */
class OrchPlugin extends SimplePlugin {
  override configureBundler(options: BundleOptions): BundleOptions {
    return withPreloadModules(super.configureBundler(options));
  }
}

/** Turns OrchError (tenant store, config) into a non-retryable failure with the same stable type. */
const orchErrors: ActivityInboundCallsInterceptor = {
  async execute(input, next) {
    try {
      return await next(input);
    } catch (err) {
      if (err instanceof OrchError) throw ApplicationFailure.nonRetryable(err.message, err.code, err.details);
      throw err;
    }
  },
};

export const orchActivityInterceptors: ActivityInterceptorsFactory = () => ({ inbound: orchErrors });

export interface OrchPluginOptions {
  /** A bundle file made by `bundleWorkflowCode`, to skip bundling at start (tests' and developers' workers). */
  workflowBundlePath?: string;
  /** A bundle's code, already read (the production worker passes the bytes whose signature it checked). */
  workflowBundleCode?: string;
  /**
   * The workflows module to bundle at start (default: workflows/index.ts, which runs only registered, signed
   * DAGs). A developer's own module may add hand-written workflows or the inline `runDag` (workflows/inline-dag.ts).
   */
  workflowsPath?: string;
  /**
   * Encrypts every payload and failure message this worker sends (desktop-worker/payload-codec.ts; `orch up`
   * passes it). A bundle made at start gets its failure converter (workflows/failure-converter.cjs) from the data
   * converter; a prebundled one must have it (`npm run build` adds it).
   */
  payloadCodec?: PayloadCodec;
}

function workflowSource(options: OrchPluginOptions): { workflowBundle: { code: string } | { codePath: string } } | { workflowsPath: string } {
  if (options.workflowBundleCode !== undefined) return { workflowBundle: { code: options.workflowBundleCode } };
  if (options.workflowBundlePath) return { workflowBundle: { codePath: options.workflowBundlePath } };
  return { workflowsPath: options.workflowsPath ?? WORKFLOWS_PATH };
}

export function orchPlugin(deps: ActivityDeps, options: OrchPluginOptions = {}): SimplePlugin {
  return new OrchPlugin({
    name: 'orch',
    activities: createActivities(deps),
    ...workflowSource(options),
    workerInterceptors: { activity: [orchActivityInterceptors] },
    ...(options.payloadCodec ? { dataConverter: encryptedDataConverter(options.payloadCodec) } : {}),
  });
}
