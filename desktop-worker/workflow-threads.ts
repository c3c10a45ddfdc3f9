/**
 * OrchWorker: the SDK's Worker, whose workflow threads run without the promise hook the SDK installs in each of them
 * to keep a stack trace of every promise workflow code makes. That hook captures and source-maps a stack each time a
 * promise is created: about a quarter of the workflow thread's time in bench:parked, Orch's own run code included.
 * What it serves is the `__stack_trace` query (the Temporal UI's "Stack Trace" tab), which then answers that stack
 * traces are not enabled on this worker; failures keep their source-mapped stacks (the SDK's prepareStackTrace is
 * untouched). Everything else is the SDK's: its thread code, thread client and workflow creator, the same init
 * message. With ORCH_WORKFLOW_STACK_TRACES=1 (README: Configuration), or with options that do not use its threads
 * (debug mode, a patch-activation callback), it makes the SDK's own threads.
 *
 * @example
 * const worker = await OrchWorker.create({ connection, taskQueue: 'orch', plugins: [orchPlugin(deps)] });
 */
import { createRequire } from 'node:module';
import { Worker as NodeWorker } from 'node:worker_threads';
import { Worker, type Logger } from '@temporalio/worker';
import type { CompiledWorkerOptions } from '@temporalio/worker/lib/worker-options';
import type { WorkflowCreator } from '@temporalio/worker/lib/workflow/interface';
import { ThreadedVMWorkflowCreator, WorkerThreadClient } from '@temporalio/worker/lib/workflow/threaded-vm.js';
import type { WorkflowBundleWithSourceMapAndFilename } from '@temporalio/worker/lib/workflow/workflow-worker-thread/input';
import { Env, processEnv, setting, type Environment } from '../infra/settings';

/** True when workflow threads keep the SDK's stack capture (the Temporal UI's "Stack Trace" tab). */
export function workflowStackTraces(env: Environment = processEnv()): boolean {
  return setting(Env.workflowStackTraces, env) === '1';
}

/**
 * The code a workflow thread starts with: the SDK's own thread module, after its thread-wide handlers are told to
 * install no promise hook. By absolute path, resolved here from the SDK this process loaded (the thread's code runs
 * as an eval'd script, wherever Orch is installed or bundled).
 */
function threadCode(): string {
  const sdk = createRequire(import.meta.url);
  const handlers = sdk.resolve('@temporalio/worker/lib/workflow/vm-shared.js');
  const thread = sdk.resolve('@temporalio/worker/lib/workflow/workflow-worker-thread.js');
  return `require(${JSON.stringify(handlers)}).globalHandlers.setPromiseHook = function setPromiseHook() {};\nrequire(${JSON.stringify(thread)});\n`;
}

export class OrchWorker extends Worker {
  protected static override async createWorkflowCreator(
    bundle: WorkflowBundleWithSourceMapAndFilename,
    compiledOptions: CompiledWorkerOptions,
    logger: Logger,
  ): Promise<WorkflowCreator> {
    if (compiledOptions.debugMode || compiledOptions.patchActivationCallback !== undefined || workflowStackTraces()) {
      return super.createWorkflowCreator(bundle, compiledOptions, logger);
    }
    // As ThreadedVMWorkflowCreator.create makes them, from another entry point.
    const code = threadCode();
    const clients = Array.from({ length: compiledOptions.workflowThreadPoolSize }, () => new WorkerThreadClient(new NodeWorker(code, { eval: true }), logger));
    try {
      await Promise.all(
        clients.map((client) =>
          client.send({
            type: 'init',
            workflowBundle: bundle,
            isolateExecutionTimeoutMs: compiledOptions.isolateExecutionTimeoutMs,
            reuseV8Context: compiledOptions.reuseV8Context ?? true,
            registeredActivityNames: new Set(compiledOptions.activities.keys()),
            hasPatchActivationCallback: false,
          }),
        ),
      );
    } catch (err) {
      await Promise.all(clients.map((c) => c.destroy().catch(() => undefined)));
      throw err;
    }
    return new ThreadedVMWorkflowCreator(clients);
  }
}
