/**
 * `orch up` starts its worker's workflow threads while the dev server starts (desktop-worker/early-workflow-threads.ts):
 * the worker created later takes them over only when they were made from the same bundle code and the same settings
 * as the worker would make its own; otherwise it stops them and makes its own, as the SDK does. Also: the settings
 * `orch up` starts them with are those the Orch worker's real options compile to, so they are taken in production.
 * Fakes stand in for the SDK's thread-making steps; the settings check compiles the real options.
 */
import { describe, test } from '@jest/globals';
import { noopMetricMeter } from '@temporalio/common';
import type { Logger, Worker } from '@temporalio/worker';
import { compileWorkerOptions, type CompiledWorkerOptions } from '@temporalio/worker/lib/worker-options';
import type { WorkflowCreator } from '@temporalio/worker/lib/workflow/interface';
import assert from '../support/assert';
import { orchThreadSettings, startEarlyWorkflowThreads, threadSettingsOf, type ThreadMaker, type ThreadSettings } from '../../desktop-worker/early-workflow-threads';
import { orchPlugin } from '../../desktop-worker/plugin';
import { orchWorkerTuning } from '../../desktop-worker/worker-tuning';
import type { ActivityDeps } from '../../activities';

const quiet: Logger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

type Bundle = { code: string; sourceMap: unknown; filename: string };

interface FakeCreator extends WorkflowCreator {
  name: string;
  destroyed: boolean;
}

function fakeCreator(name: string): FakeCreator {
  const c = {
    name,
    destroyed: false,
    createWorkflow: () => Promise.reject(new Error('not in this test')),
    destroy: async () => {
      c.destroyed = true;
    },
  };
  return c as unknown as FakeCreator;
}

/** A thread maker that records what it made. */
function fakeMaker(fail?: 'parse' | 'create'): ThreadMaker & { made: FakeCreator[] } {
  const made: FakeCreator[] = [];
  return {
    made,
    parse: async (code) => {
      if (fail === 'parse') throw new Error('bad bundle');
      return { code: `parsed:${code}`, sourceMap: {}, filename: '/bundle.js' } as unknown as Awaited<ReturnType<ThreadMaker['parse']>>;
    },
    create: async () => {
      if (fail === 'create') throw new Error('no thread');
      const c = fakeCreator('early');
      made.push(c);
      return c;
    },
  };
}

/** Stands for the SDK's Worker: what its own steps would make (a bundle and threads of its own). */
function fakeBase(): { base: typeof Worker; own: FakeCreator[]; ownBundles: Bundle[] } {
  const own: FakeCreator[] = [];
  const ownBundles: Bundle[] = [];
  class Base {
    static async getOrCreateBundle(o: CompiledWorkerOptions): Promise<Bundle> {
      const b = { code: `own:${(o.workflowBundle as { code: string }).code}`, sourceMap: {}, filename: '/own.js' };
      ownBundles.push(b);
      return b;
    }

    static async createWorkflowCreator(): Promise<WorkflowCreator> {
      const c = fakeCreator('own');
      own.push(c);
      return c;
    }
  }
  return { base: Base as unknown as typeof Worker, own, ownBundles };
}

const SETTINGS: ThreadSettings = { threadPoolSize: 1, isolateExecutionTimeoutMs: 5000, reuseV8Context: true, debugMode: false, activityNames: ['a', 'b'], patchActivationCallback: false };

/** Compiled options as Worker.create hands them to its steps. */
function compiled(code: string, over: Partial<Record<string, unknown>> = {}): CompiledWorkerOptions {
  return {
    workflowBundle: { code },
    workflowThreadPoolSize: 1,
    isolateExecutionTimeoutMs: 5000,
    reuseV8Context: true,
    debugMode: false,
    activities: new Map([
      ['b', () => undefined],
      ['a', () => undefined],
    ]),
    patchActivationCallback: undefined,
    ...over,
  } as unknown as CompiledWorkerOptions;
}

/** Runs the two steps Worker.create runs, in its order, on the class the early threads hand out. */
async function createSteps(cls: typeof Worker, options: CompiledWorkerOptions): Promise<{ bundle: Bundle; creator: FakeCreator }> {
  const steps = cls as unknown as {
    getOrCreateBundle(o: CompiledWorkerOptions, l: Logger): Promise<Bundle>;
    createWorkflowCreator(b: Bundle, o: CompiledWorkerOptions, l: Logger): Promise<FakeCreator>;
  };
  const bundle = await steps.getOrCreateBundle(options, quiet);
  const creator = await steps.createWorkflowCreator(bundle, options, quiet);
  return { bundle, creator };
}

describe('early workflow threads', () => {
  test('a worker with the same bundle code and settings takes over the threads started early', async () => {
    const maker = fakeMaker();
    const { base, own, ownBundles } = fakeBase();
    const early = startEarlyWorkflowThreads('CODE', SETTINGS, quiet, maker);
    await early.ready;
    const { bundle, creator } = await createSteps(early.workerClass(base), compiled('CODE'));
    assert.equal(bundle.code, 'parsed:CODE', 'the bundle parsed early');
    assert.equal(creator.name, 'early');
    assert.equal(creator.destroyed, false);
    assert.equal(early.taken, true);
    assert.equal(own.length + ownBundles.length, 0, 'nothing made twice');
    // Taken: discard() leaves them to the worker.
    await early.discard();
    assert.equal(creator.destroyed, false);
  });

  test('other settings: the early threads are stopped and the worker makes its own', async () => {
    for (const over of [{ workflowThreadPoolSize: 2 }, { reuseV8Context: false }, { debugMode: true }, { isolateExecutionTimeoutMs: 1000 }, { activities: new Map([['a', () => undefined]]) }, { patchActivationCallback: () => undefined }]) {
      const maker = fakeMaker();
      const { base, own } = fakeBase();
      const early = startEarlyWorkflowThreads('CODE', SETTINGS, quiet, maker);
      const { creator } = await createSteps(early.workerClass(base), compiled('CODE', over));
      assert.equal(creator.name, 'own', JSON.stringify(Object.keys(over)));
      assert.equal(own.length, 1);
      assert.equal(maker.made[0]?.destroyed, true, 'the early threads are stopped');
      assert.equal(early.taken, false);
    }
  });

  test('another bundle: the worker parses and threads its own', async () => {
    const maker = fakeMaker();
    const { base, own, ownBundles } = fakeBase();
    const early = startEarlyWorkflowThreads('CODE', SETTINGS, quiet, maker);
    const { bundle, creator } = await createSteps(early.workerClass(base), compiled('OTHER'));
    assert.equal(bundle.code, 'own:OTHER');
    assert.equal(creator.name, 'own');
    assert.equal(ownBundles.length + own.length, 2);
    assert.equal(maker.made[0]?.destroyed, true);
  });

  test('early threads that failed to start: the worker makes its own, and the failure is not the start-up error', async () => {
    for (const fail of ['parse', 'create'] as const) {
      const { base, own } = fakeBase();
      const early = startEarlyWorkflowThreads('CODE', SETTINGS, quiet, fakeMaker(fail));
      await assert.rejects(early.ready);
      const { creator } = await createSteps(early.workerClass(base), compiled('CODE'));
      assert.equal(creator.name, 'own', fail);
      assert.equal(own.length, 1);
    }
  });

  test('start-up failed before the worker was created: discard() stops the early threads', async () => {
    const maker = fakeMaker();
    const early = startEarlyWorkflowThreads('CODE', SETTINGS, quiet, maker);
    await early.discard();
    assert.equal(maker.made[0]?.destroyed, true);
    // A worker created after that makes its own.
    const { base, own } = fakeBase();
    const { creator } = await createSteps(early.workerClass(base), compiled('CODE'));
    assert.equal(creator.name, 'own');
    assert.equal(own.length, 1);
  });

  test("orch up starts them with the settings the Orch worker's real options compile to", () => {
    const tuning = orchWorkerTuning();
    const unused = () => {
      throw new Error('not called');
    };
    const plugin = orchPlugin({ registry: { loadDag: unused }, prices: unused, claude: unused } as unknown as ActivityDeps, { workflowBundleCode: 'CODE' });
    const options = plugin.configureWorker({ taskQueue: 'orch', ...tuning });
    const real = threadSettingsOf(compileWorkerOptions(options, quiet, noopMetricMeter));
    assert.deepEqual(orchThreadSettings(tuning.reuseV8Context ?? true), real);
    assert.ok(real.activityNames.length > 3, real.activityNames.join(','));
  });
});
