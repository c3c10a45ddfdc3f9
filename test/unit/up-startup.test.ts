/**
 * What makes `orch up` start quickly without cutting corners (issue 11): the workflow bundle cache reuses a bundle
 * only while every input hashes the same (desktop-worker/workflow-bundle-cache.ts), and the start-up timeline
 * (desktop-worker/startup-timeline.ts) reports each phase. One real bundle (webpack, a two-file workflows module) is
 * built; every other case is a cache lookup, which builds nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleSources, findCachedWorkflowBundle, pruneWorkflowBundles, workflowBundle, type WorkflowBundleOptions } from '../../desktop-worker/workflow-bundle-cache';
import { StartupTimeline, timelineOrigin } from '../../desktop-worker/startup-timeline';
import { devServerArgs } from '../../desktop-worker/dev-server';
import { ephemeralLow, freeLocalPort } from '../../infra/ports';

const repo = fileURLToPath(new URL('../..', import.meta.url));
let work: string;
let opts: WorkflowBundleOptions;
let src: string;
let dep: string;
let extra: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-bundle-cache-'));
  src = path.join(work, 'src');
  fs.mkdirSync(src);
  // The module resolves @temporalio/workflow as the real one does: through node_modules.
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(work, 'node_modules'));
  dep = path.join(src, 'dep.ts');
  fs.writeFileSync(dep, "export const greeting = 'v1';\n");
  fs.writeFileSync(path.join(src, 'index.ts'), "import { sleep } from '@temporalio/workflow';\nimport { greeting } from './dep';\nexport async function hello(): Promise<string> {\n  await sleep(1);\n  return greeting;\n}\n");
  extra = path.join(work, 'lock.json');
  fs.writeFileSync(extra, '{"lockfileVersion":3}\n');
  opts = { cacheRoot: path.join(work, 'cache'), workflowsPath: path.join(src, 'index.ts'), failureConverterPath: '', extraInputs: [extra] };
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('workflow bundle cache', () => {
  test('bundles once, reuses while nothing changed, and never serves a bundle whose inputs or bytes changed', async () => {
    expect(findCachedWorkflowBundle(opts)).toBeUndefined();
    const built = await workflowBundle(opts);
    expect(built.cached).toBe(false);
    expect(built.code).toContain("'v1'");
    // Orch's preloaded module (WORKFLOW_PRELOAD_MODULES: @noble's Ed25519), loaded once per workflow thread.
    expect(built.code).toMatch(/exports\.preloadModules = function preloadModules\(\) \{\s*__webpack_require__\([^)]*workflows\/ed25519\.ts"\);/);
    // Its inputs, read from the bundle's own source map: our two files and @temporalio/workflow's.
    const inputs = bundleSources(built.code);
    expect(inputs).toEqual(expect.arrayContaining([fs.realpathSync(dep), fs.realpathSync(path.join(src, 'index.ts'))]));
    expect(inputs.some((f) => f.includes(`${path.sep}@temporalio${path.sep}workflow${path.sep}`))).toBe(true);
    expect(fs.statSync(path.dirname(built.dir)).mode & 0o077).toBe(0);

    const again = await workflowBundle(opts);
    expect(again).toEqual({ ...built, cached: true });

    // An edited input: no hit. The same content again (mtime changed): a hit, by content not by time.
    fs.writeFileSync(dep, "export const greeting = 'v2';\n");
    expect(findCachedWorkflowBundle(opts)).toBeUndefined();
    fs.writeFileSync(dep, "export const greeting = 'v1';\n");
    expect(findCachedWorkflowBundle(opts)?.code).toBe(built.code);

    // A new file beside the sources (it could change what an import resolves to): no hit until it is gone.
    fs.writeFileSync(path.join(src, 'dep.js'), "export const greeting = 'shadow';\n");
    expect(findCachedWorkflowBundle(opts)).toBeUndefined();
    fs.rmSync(path.join(src, 'dep.js'));
    expect(findCachedWorkflowBundle(opts)).toBeDefined();

    // The lock file (dependencies) and the options are part of the key.
    fs.appendFileSync(extra, ' ');
    expect(findCachedWorkflowBundle(opts)).toBeUndefined();
    fs.writeFileSync(extra, '{"lockfileVersion":3}\n');
    expect(findCachedWorkflowBundle({ ...opts, failureConverterPath: path.join(repo, 'workflows', 'failure-converter.cjs') })).toBeUndefined();
    expect(findCachedWorkflowBundle(opts)).toBeDefined();

    // A stored bundle whose bytes no longer match what was written (edited, truncated): not used.
    const file = path.join(built.dir, 'bundle.js');
    fs.writeFileSync(file, built.code.replace("'v1'", "'v9'"));
    expect(findCachedWorkflowBundle(opts)).toBeUndefined();
    fs.writeFileSync(file, built.code);
    expect(findCachedWorkflowBundle(opts)?.code).toBe(built.code);
  }, 60_000);

  test('pruning keeps the newest bundles of each set of options: a test or bench bundle never pushes out orch up\'s', () => {
    const root = fs.mkdtempSync(path.join(work, 'prune-'));
    const entry = (n: number, workflowsPath: string): string => {
      const dir = path.join(root, n.toString(16).padStart(24, '0'));
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ options: { workflowsPath, failureConverterPath: null, bundler: 'x' } }));
      const at = new Date(Date.UTC(2026, 0, 1, 0, n));
      fs.utimesSync(dir, at, at);
      return dir;
    };
    const production = entry(1, '/orch/workflows/index.ts');
    const tests = [2, 3, 4, 5, 6, 7].map((n) => entry(n, '/orch/test/support/test-workflows.ts'));
    pruneWorkflowBundles(root, tests[5]!);
    const left = fs.readdirSync(root).map((e) => path.join(root, e));
    expect(left.sort()).toEqual([production, ...tests.slice(2)].sort());
    // At most 16 in all, the oldest going first whatever their options.
    const many = Array.from({ length: 20 }, (_, i) => entry(10 + i, `/orch/other-${i}.ts`));
    pruneWorkflowBundles(root, many[19]!);
    expect(fs.readdirSync(root).length).toBe(16);
    expect(fs.existsSync(production)).toBe(false);
    expect(fs.existsSync(many[19]!)).toBe(true);
  });

  test('a bundle without an inline source map cannot be cached (its inputs are unknown)', () => {
    expect(() => bundleSources('var x = 1;\n')).toThrow(/no inline source map/);
  });
});

describe('start-up timeline', () => {
  test('phases in the order they began, each with its span, and the total', async () => {
    const t = new StartupTimeline(Date.now() - 100);
    await t.phase('second', () => new Promise((r) => setTimeout(r, 20)));
    t.record('first', t.origin + 10, t.origin + 50);
    await expect(t.phase('fails', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    const phases = t.phases();
    expect(phases.map((p) => p.name)).toEqual(['first', 'second', 'fails']);
    expect(phases[0]).toEqual({ name: 'first', start: 10, end: 50 });
    expect(phases[1]!.end - phases[1]!.start).toBeGreaterThanOrEqual(15);
    const lines = t.lines(t.origin + 1234);
    expect(lines[0]).toMatch(/^start-up timeline/);
    expect(lines[1]).toMatch(/^ +10 -> +50 ms {2}first \(40 ms\)$/);
    expect(lines.at(-1)).toMatch(/^ +0 -> +1234 ms {2}"Orch is up"$/);
  });

  test('the origin handed down by the outer orch up is used only when plausible', () => {
    const now = 1_800_000_000_000;
    expect(timelineOrigin(String(now - 900), now)).toBe(now - 900);
    expect(timelineOrigin(undefined, now)).toBe(now);
    expect(timelineOrigin('soon', now)).toBe(now);
    expect(timelineOrigin(String(now + 5), now)).toBe(now);
    expect(timelineOrigin(String(now - 3_600_000), now)).toBe(now);
  });
});

describe('the dev server Orch starts', () => {
  test('reads its history task queues without the cluster default of 20 reads a second (50 ms a hop of a chained run)', () => {
    const args = devServerArgs({ ip: '127.0.0.1', port: 7233, uiPort: undefined, namespace: 'default', searchAttributes: {} });
    const config = new Map<string, string>();
    args.forEach((a, i) => {
      if (a === '--dynamic-config-value') {
        const [key, value] = (args[i + 1] ?? '').split('=');
        config.set(key!, value!);
      }
    });
    for (const queue of ['transfer', 'timer', 'visibility']) {
      expect(Number(config.get(`history.${queue}ProcessorMaxPollRPS`))).toBeGreaterThanOrEqual(1000);
    }
    expect(config.get('system.enableActivityEagerExecution')).toBe('true');
  });

  test('ports it picks (port 0) are below the ephemeral range, where no bind(0) in between can take them, and free', async () => {
    const high = ephemeralLow();
    expect(high).toBeGreaterThan(10_001);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freeLocalPort('127.0.0.1')));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(10_000);
      expect(port).toBeLessThan(high);
    }
    // Free: a server can listen on each right after.
    const listens = (port: number) =>
      new Promise<boolean>((resolve) => {
        const s = net.createServer();
        s.once('error', () => resolve(false));
        s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
      });
    expect(await Promise.all(ports.slice(0, 5).map(listens))).toEqual([true, true, true, true, true]);
  });
});
