/**
 * The Orch plugin: one line adds Orch to a Temporal Worker.
 *
 * @example
 * ```ts
 * const worker = await Worker.create({ connection, taskQueue: 'orch', plugins: [orchPlugin(deps)] });
 * ```
 * It registers Orch's workflows (prebundled when a bundle path is given, else bundled at start), its
 * activities, and its interceptors.
 */
import { fileURLToPath } from 'node:url';
import { ApplicationFailure } from '@temporalio/common';
import { SimplePlugin } from '@temporalio/plugin';
import type { ActivityInboundCallsInterceptor, ActivityInterceptorsFactory } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { OrchError } from '../workflows/errors';

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
  /** A bundle made by `bundleWorkflowCode` (see `npm run build`), to skip bundling at start. */
  workflowBundlePath?: string;
}

export function orchPlugin(deps: ActivityDeps, options: OrchPluginOptions = {}): SimplePlugin {
  return new SimplePlugin({
    name: 'orch',
    activities: createActivities(deps),
    ...(options.workflowBundlePath ? { workflowBundle: { codePath: options.workflowBundlePath } } : { workflowsPath: WORKFLOWS_PATH }),
    workerInterceptors: { activity: [orchActivityInterceptors] },
  });
}
