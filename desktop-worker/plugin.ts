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
import type { ActivityInboundCallsInterceptor, ActivityInterceptorsFactory } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { OrchError } from '../protocol/errors';
import { encryptedDataConverter } from './payload-codec';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

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
  return new SimplePlugin({
    name: 'orch',
    activities: createActivities(deps),
    ...workflowSource(options),
    workerInterceptors: { activity: [orchActivityInterceptors] },
    ...(options.payloadCodec ? { dataConverter: encryptedDataConverter(options.payloadCodec) } : {}),
  });
}
