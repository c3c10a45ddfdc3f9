/**
 * The compiled `orch` command (bin/build-cli.mjs → dist/cli/orch.cjs, loaded by bin/orch.mjs): it is rebuilt when a
 * source file changes, it answers like the TypeScript sources, and starting it loads neither the Temporal client
 * nor the Anthropic SDK until a command uses them.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, test } from '@jest/globals';
import assert from '../support/assert';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const orch = path.join(root, 'bin/orch.mjs');

describe('the compiled orch command', () => {
  test('a changed source file makes the bundle stale; the next orch command rebuilds it', async () => {
    const { bundleIsFresh, sourceFingerprint, CLI_BUNDLE } = (await import(path.join(root, 'bin/build-cli.mjs'))) as {
      bundleIsFresh: () => boolean;
      sourceFingerprint: () => string;
      CLI_BUNDLE: string;
    };
    await run(process.execPath, [orch, '--version'], { cwd: root });
    assert.equal(bundleIsFresh(), true);
    const before = sourceFingerprint();
    const builtAt = fs.statSync(CLI_BUNDLE).mtimeMs;
    // Touch a source file (same bytes, new modification time).
    const file = path.join(root, 'desktop-worker/cli-entry.ts');
    const now = new Date();
    fs.utimesSync(file, now, new Date(now.getTime() + 5_000));
    assert.notEqual(sourceFingerprint(), before);
    assert.equal(bundleIsFresh(), false);
    const { stdout } = await run(process.execPath, [orch, '--version'], { cwd: root });
    assert.equal(stdout.trim(), 'orch 0.1.0');
    assert.equal(bundleIsFresh(), true);
    assert.ok(fs.statSync(CLI_BUNDLE).mtimeMs > builtAt, 'rebuilt');
  }, 120_000);

  test('it answers as the TypeScript sources do', async () => {
    const compiled = await run(process.execPath, [orch, 'dag', 'validate', 'desktop-worker/demo/demo-review.yaml'], { cwd: root });
    const sources = await run(process.execPath, [orch, 'dag', 'validate', 'desktop-worker/demo/demo-review.yaml'], { cwd: root, env: { ...process.env, ORCH_CLI_TSX: '1' } });
    assert.equal(compiled.stdout, sources.stdout);
    assert.match(compiled.stdout, /OK — DAG "demo-review"/);
    const usage = await run(process.execPath, [orch, 'nope'], { cwd: root }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((usage as { code: number }).code, 2);
  }, 120_000);

  test('starting it, and --help, load neither the Temporal client nor the Anthropic SDK', async () => {
    const script = `
      const { createRequire } = require('node:module');
      const cli = require(${JSON.stringify(path.join(root, 'dist/cli/orch.cjs'))});
      const loaded = () => Object.keys(require.cache).filter((k) => /node_modules[\\\\/](@temporalio[\\\\/]client|@anthropic-ai[\\\\/]sdk|@temporalio[\\\\/]worker)[\\\\/]/.test(k)).length;
      const atStart = loaded();
      cli.main(['--help'], { log: () => {}, err: () => {} }).then(async (code) => {
        const afterHelp = loaded();
        // The control: a command that does use the Temporal client loads it.
        const { Client } = require(${JSON.stringify(path.join(root, 'node_modules/@temporalio/client'))});
        process.stdout.write(JSON.stringify({ code, atStart, afterHelp, control: typeof Client === 'function' && loaded() > 0 }));
      });
    `;
    await run(process.execPath, [orch, '--version'], { cwd: root }); // built and fresh
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: root });
    assert.deepEqual(JSON.parse(stdout), { code: 0, atStart: 0, afterHelp: 0, control: true });
  }, 120_000);
});
