/**
 * The Orch worker's workflow threads, started before the worker exists (issue 11: `orch up` ready within 2x of the
 * dev server alone). Worker.create needs a connection to Temporal, so it can only start once the dev server answers;
 * yet most of its time goes to what needs no connection: reading the workflow bundle's source map and compiling the
 * bundle on the main thread, and starting the SDK's workflow thread, which loads its own copy of the SDK and the
 * bundle. `orch up` starts those while the dev server starts (startEarlyWorkflowThreads), and the worker it creates
 * afterwards takes them over (earlyWorkerClass).
 *
 * Only what the SDK would have made itself is taken over: the threads are started with the settings the worker will
 * have (the same bundle code, thread count, execution timeout, V8-context reuse, activity names, no debug mode and no
 * patch-activation callback), and the worker compares its own compiled options with them; on any difference it
 * stops the early threads and starts its own, as without this module.
 */
import { Worker, type Logger } from '@temporalio/worker';
import type { CompiledWorkerOptions } from '@temporalio/worker/lib/worker-options';
import type { WorkflowCreator } from '@temporalio/worker/lib/workflow/interface';
import type { WorkflowBundleWithSourceMapAndFilename } from '@temporalio/worker/lib/workflow/workflow-worker-thread/input';
import { createActivities, type ActivityDeps } from '../activities';
import { OrchWorker } from './workflow-threads';

type Bundle = WorkflowBundleWithSourceMapAndFilename;

/** What of a worker's compiled options its workflow threads are made from (Worker.createWorkflowCreator reads these). */
export interface ThreadSettings {
  threadPoolSize: number;
  isolateExecutionTimeoutMs: number;
  reuseV8Context: boolean;
  debugMode: boolean;
  /** Sorted. */
  activityNames: string[];
  patchActivationCallback: boolean;
}

/** The settings a worker with these compiled options makes its workflow threads with. */
export function threadSettingsOf(o: Pick<CompiledWorkerOptions, 'workflowThreadPoolSize' | 'isolateExecutionTimeoutMs' | 'reuseV8Context' | 'debugMode' | 'activities' | 'patchActivationCallback'>): ThreadSettings {
  return {
    threadPoolSize: o.workflowThreadPoolSize,
    isolateExecutionTimeoutMs: o.isolateExecutionTimeoutMs,
    reuseV8Context: o.reuseV8Context ?? true,
    debugMode: o.debugMode,
    activityNames: [...o.activities.keys()].sort(),
    patchActivationCallback: o.patchActivationCallback !== undefined,
  };
}

/**
 * The settings the Orch worker (worker.ts startOrchWorker: orchPlugin's activities, orchWorkerTuning) compiles to,
 * the SDK's defaults for the rest: one thread with a reused V8 context, a 5 s execution timeout.
 */
export function orchThreadSettings(reuseV8Context: boolean): ThreadSettings {
  // Only the activities' names matter here: deps that are never called.
  const unused = () => {
    throw new Error('not called');
  };
  const names = Object.keys(createActivities({ registry: { loadDag: unused }, prices: unused, claude: unused } as unknown as ActivityDeps));
  return {
    threadPoolSize: reuseV8Context ? 1 : 2,
    isolateExecutionTimeoutMs: 5000,
    reuseV8Context,
    debugMode: false,
    activityNames: names.sort(),
    patchActivationCallback: false,
  };
}

function sameSettings(a: ThreadSettings, b: ThreadSettings): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** How the early threads are made: the SDK's own steps (replaced in unit tests). */
export interface ThreadMaker {
  parse(code: string, logger: Logger): Promise<Bundle>;
  create(bundle: Bundle, settings: ThreadSettings, logger: Logger): Promise<WorkflowCreator>;
}

/**
 * The SDK's own steps, through the protected statics Worker.create calls. Made on first use: the CLI loads
 * @temporalio/worker only when a command needs it.
 */
function sdkSteps(): ThreadMaker {
  class SdkSteps extends OrchWorker {
    static parseBundle(code: string, logger: Logger): Promise<Bundle> {
      return this.getOrCreateBundle({ workflowBundle: { code }, interceptors: { workflowModules: [] } } as unknown as CompiledWorkerOptions, logger) as Promise<Bundle>;
    }

    static createThreads(bundle: Bundle, s: ThreadSettings, logger: Logger): Promise<WorkflowCreator> {
      const options = {
        activities: new Map(s.activityNames.map((n) => [n, () => undefined])),
        patchActivationCallback: undefined,
        debugMode: s.debugMode,
        reuseV8Context: s.reuseV8Context,
        workflowThreadPoolSize: s.threadPoolSize,
        isolateExecutionTimeoutMs: s.isolateExecutionTimeoutMs,
      } as unknown as CompiledWorkerOptions;
      return this.createWorkflowCreator(bundle, options, logger);
    }
  }
  return { parse: (code, logger) => SdkSteps.parseBundle(code, logger), create: (bundle, settings, logger) => SdkSteps.createThreads(bundle, settings, logger) };
}

export interface EarlyWorkflowThreads {
  /** Settles when the threads have loaded the bundle (rejects when they failed to: the worker then makes its own). */
  readonly ready: Promise<void>;
  /**
   * A Worker class (a subclass of `base`, default the SDK's Worker) whose create() takes these threads over when its
   * options match, and otherwise stops them and starts its own. Whether they were taken: `taken` after create().
   */
  workerClass(base?: typeof Worker): typeof Worker;
  /** True once a worker took the threads over. */
  readonly taken: boolean;
  /** Stops the threads unless a worker took them over (start-up failed before the worker was created). */
  discard(): Promise<void>;
}

/**
 * Parses the bundle and starts the workflow threads now, for a worker created later with `code` and `settings`.
 *
 * @example
 * const early = startEarlyWorkflowThreads(bundle.code, orchThreadSettings(true), logger);
 * const worker = await early.workerClass().create(options); // with workflowBundle: { code: bundle.code }
 */
export function startEarlyWorkflowThreads(code: string, settings: ThreadSettings, logger: Logger, maker: ThreadMaker = sdkSteps()): EarlyWorkflowThreads {
  const bundle = maker.parse(code, logger);
  const creator = bundle.then((b) => maker.create(b, settings, logger));
  // Observed by whoever takes them; a failure here only means the worker makes its own.
  bundle.catch(() => undefined);
  creator.catch(() => undefined);
  let taken = false;
  let discarded = false;
  const discard = async (): Promise<void> => {
    if (taken || discarded) return;
    discarded = true;
    const c = await creator.catch(() => undefined);
    await c?.destroy().catch(() => undefined);
  };
  const state = {
    ready: creator.then(() => undefined),
    get taken() {
      return taken;
    },
    discard,
    workerClass(base: typeof Worker = OrchWorker): typeof Worker {
      class EarlyWorker extends base {
        protected static override async getOrCreateBundle(compiledOptions: CompiledWorkerOptions, log: Logger): Promise<Bundle | undefined> {
          const wb = compiledOptions.workflowBundle as { code?: string } | undefined;
          if (!discarded && !taken && wb?.code === code) {
            const parsed = await bundle.catch(() => undefined);
            if (parsed) return parsed;
          }
          return super.getOrCreateBundle(compiledOptions, log);
        }

        protected static override async createWorkflowCreator(b: Bundle, compiledOptions: CompiledWorkerOptions, log: Logger): Promise<WorkflowCreator> {
          if (!discarded && !taken && b === (await bundle.catch(() => undefined)) && sameSettings(threadSettingsOf(compiledOptions), settings)) {
            const c = await creator.catch(() => undefined);
            if (c) {
              taken = true;
              return c;
            }
          }
          await discard();
          return super.createWorkflowCreator(b, compiledOptions, log);
        }
      }
      return EarlyWorker;
    },
  };
  return state;
}
