/**
 * The compiled `orch` command (bin/build-cli.mjs → dist/cli/orch.cjs, loaded by bin/orch.mjs with V8's code cache):
 * in a source checkout it is rebuilt when a source file changes, it answers like the TypeScript sources, and starting
 * it loads none of the heavy packages (Temporal, SQLite, the keychain, libsodium) until a command uses them, and
 * `dag validate` reads YAML with the copy inside the bundle.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { describe, test } from '@jest/globals';
import assert from '../support/assert';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const orch = path.join(root, 'bin/orch.mjs');

interface BuildCli {
  lazyModule: (pkg: string) => string;
  LAZY_NAMESPACE: string;
  bundleIsFresh: () => boolean;
  isSourceCheckout: (root: string) => boolean;
  CLI_BUNDLE: string;
  INLINE_EXPORTS: Record<string, Record<string, unknown>>;
  SHARED_TO_ESM: string;
}
const buildCli = async () => (await import(path.join(root, 'bin/build-cli.mjs'))) as BuildCli;
/** The code caches of node without flags (`orch up` runs with flags, and its caches are named with a tag of them). */
const codeCaches = (bundle: string) => fs.readdirSync(path.dirname(bundle)).filter((n) => /^orch\.cjs\.\d+-\d+\.v8$/.test(n));

describe('the compiled orch command', () => {
  test('a changed source file makes the bundle stale; the next orch command rebuilds it (and drops the old code cache)', async () => {
    const { bundleIsFresh, isSourceCheckout, CLI_BUNDLE } = await buildCli();
    await run(process.execPath, [orch, '--version'], { cwd: root });
    await run(process.execPath, [orch, '--version'], { cwd: root });
    assert.equal(bundleIsFresh(), true);
    const st = fs.statSync(CLI_BUNDLE);
    assert.deepEqual(codeCaches(CLI_BUNDLE), [`orch.cjs.${st.size}-${Math.trunc(st.mtimeMs)}.v8`], 'the first run wrote the V8 code cache of this build');
    // A cache of this build made under node flags (as `orch up` makes one): the rebuild drops it too.
    const flagged = path.join(path.dirname(CLI_BUNDLE), `orch.cjs.${st.size}-${Math.trunc(st.mtimeMs)}-0badf1a6.v8`);
    fs.writeFileSync(flagged, 'x');
    // Touch a source file (same bytes, new modification time).
    const file = path.join(root, 'desktop-worker/cli-entry.ts');
    const now = new Date();
    fs.utimesSync(file, now, new Date(now.getTime() + 5_000));
    assert.equal(bundleIsFresh(), false);
    const { stdout } = await run(process.execPath, [orch, '--version'], { cwd: root });
    assert.equal(stdout.trim(), 'orch 0.1.0');
    assert.equal(bundleIsFresh(), true);
    let rebuilt = fs.statSync(CLI_BUNDLE);
    assert.ok(rebuilt.mtimeMs > st.mtimeMs, 'rebuilt');
    // Another test's orch command, seeing the same touched file, may have rebuilt it too meanwhile; a process whose
    // bundle was replaced under it writes no cache (it would be of the other build): run it again until one writes.
    for (let i = 0; i < 3 && codeCaches(CLI_BUNDLE).length === 0; i++) {
      await run(process.execPath, [orch, '--version'], { cwd: root });
      rebuilt = fs.statSync(CLI_BUNDLE);
    }
    assert.deepEqual(codeCaches(CLI_BUNDLE), [`orch.cjs.${rebuilt.size}-${Math.trunc(rebuilt.mtimeMs)}.v8`], 'only the new build has a code cache');
    assert.equal(fs.existsSync(flagged), false, "the old build's cache made under flags is gone");
    // Only a source checkout is checked: an installed package's bundle is used as built.
    assert.equal(isSourceCheckout(root), true);
    assert.equal(isSourceCheckout(fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'orch-installed-'))), false);
  }, 120_000);

  test('the V8 code cache covers each command that has run, not only the first: a new command rewrites it once, with what it held', async () => {
    await run(process.execPath, [orch, '--version'], { cwd: root }); // built and fresh
    // An installed copy of its own (bin/, dist/cli/orch.cjs, the same node_modules), so that no other test's orch
    // command writes its cache meanwhile.
    const installed = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'orch-installed-'));
    try {
      fs.cpSync(path.join(root, 'bin'), path.join(installed, 'bin'), { recursive: true });
      fs.mkdirSync(path.join(installed, 'dist/cli'), { recursive: true });
      const bundle = path.join(installed, 'dist/cli/orch.cjs');
      fs.copyFileSync(path.join(root, 'dist/cli/orch.cjs'), bundle);
      fs.copyFileSync(path.join(root, 'package.json'), path.join(installed, 'package.json'));
      fs.symlinkSync(path.join(root, 'node_modules'), path.join(installed, 'node_modules'));
      const st = fs.statSync(bundle);
      const cacheFile = `${bundle}.${st.size}-${Math.trunc(st.mtimeMs)}.v8`;
      const orchCopy = (...args: string[]) => run(process.execPath, [path.join(installed, 'bin/orch.mjs'), ...args], { cwd: root, env: { ...process.env, ORCH_CLI_TSX: '' } });
      const header = () => {
        const buf = fs.readFileSync(cacheFile);
        const newline = buf.indexOf(10);
        assert.equal(buf.toString('latin1', 0, 'orch-code-cache '.length), 'orch-code-cache ');
        return { commands: JSON.parse(buf.toString('utf8', 'orch-code-cache '.length, newline)) as string[], size: buf.length - newline - 1 };
      };
      // A cache in the earlier format (V8's data alone) is not read: it is replaced.
      fs.writeFileSync(cacheFile, Buffer.from('not a cache of this format'));
      await orchCopy('--help');
      const afterHelp = header();
      assert.deepEqual(afterHelp.commands, ['help']);
      const demo = 'desktop-worker/demo/demo-review.yaml';
      const { stdout } = await orchCopy('dag', 'validate', demo);
      assert.match(stdout, /OK — DAG "demo-review"/);
      const afterValidate = header();
      assert.deepEqual(afterValidate.commands, ['help', 'dag validate']);
      assert.ok(afterValidate.size > afterHelp.size, `the cache grew with the YAML reading dag validate compiled (${afterHelp.size} -> ${afterValidate.size} bytes)`);
      // A command it already covers leaves it as it is.
      const written = fs.statSync(cacheFile).mtimeMs;
      await orchCopy('dag', 'validate', demo);
      await orchCopy('--help');
      assert.equal(fs.statSync(cacheFile).mtimeMs, written, 'not rewritten for a command it covers');
      assert.deepEqual(header().commands, ['help', 'dag validate']);
    } finally {
      fs.rmSync(installed, { recursive: true, force: true });
    }
  }, 120_000);

  test('the values the CLI defines without loading @temporalio/workflow and @temporalio/common equal the packages\' own', async () => {
    const { INLINE_EXPORTS } = await buildCli();
    const require = createRequire(import.meta.url);
    for (const [pkg, exports] of Object.entries(INLINE_EXPORTS)) {
      const real = require(pkg) as Record<string, unknown>;
      for (const [name, value] of Object.entries(exports)) {
        if (typeof value !== 'function') {
          assert.deepEqual(value, real[name], `${pkg} ${name}`);
          continue;
        }
        const realFn = real[name] as (...a: unknown[]) => unknown;
        for (const args of [['x'], ['x', { description: 'd' }], ['OrchTenant', 'KEYWORD']]) assert.deepEqual((value as (...a: unknown[]) => unknown)(...args), realFn(...args), `${pkg} ${name}(${JSON.stringify(args)})`);
      }
    }
  });

  test('it answers as the TypeScript sources do', async () => {
    const compiled = await run(process.execPath, [orch, 'dag', 'validate', 'desktop-worker/demo/demo-review.yaml'], { cwd: root });
    const sources = await run(process.execPath, [orch, 'dag', 'validate', 'desktop-worker/demo/demo-review.yaml'], { cwd: root, env: { ...process.env, ORCH_CLI_TSX: '1' } });
    assert.equal(compiled.stdout, sources.stdout);
    assert.match(compiled.stdout, /OK — DAG "demo-review"/);
    const usage = await run(process.execPath, [orch, 'nope'], { cwd: root }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((usage as { code: number }).code, 2);
  }, 120_000);

  test('starting it, --help and dag validate load none of the packages only some commands need (Temporal, SQLite, keychain, libsodium; YAML is bundled, run at first use)', async () => {
    const script = `
      const { createRequire } = require('node:module');
      const cli = require(${JSON.stringify(path.join(root, 'dist/cli/orch.cjs'))});
      const loaded = () => Object.keys(require.cache).filter((k) => /node_modules[\\\\/](@temporalio[\\\\/](client|worker|workflow|common|proto)|@anthropic-ai[\\\\/]sdk|sodium-native|better-sqlite3|@napi-rs[\\\\/]keyring|@noble[\\\\/]curves|yaml)[\\\\/]/.test(k)).length;
      const atStart = loaded();
      let said = '';
      cli.main(['--help'], { log: () => {}, err: () => {} }).then(async (code) => {
        const afterHelp = loaded();
        // dag validate parses YAML with the copy of the yaml package inside the bundle: no file of it is loaded.
        const validate = await cli.main(['dag', 'validate', ${JSON.stringify(path.join(root, 'desktop-worker/demo/demo-review.yaml'))}], { log: (l) => { said += l; }, err: (l) => { said += l; } });
        const afterValidate = loaded();
        // Node's own hashing and process modules too: only commands that hash, sign or start processes load them.
        const builtins = process.moduleLoadList.filter((m) => /^NativeModule (crypto|child_process)$/.test(m));
        // The control: a command that does use the Temporal client loads it.
        const { Client } = require(${JSON.stringify(path.join(root, 'node_modules/@temporalio/client'))});
        process.stdout.write(JSON.stringify({ code, atStart, afterHelp, validate, validated: /OK — DAG "demo-review"/.test(said), afterValidate, builtins, control: typeof Client === 'function' && loaded() > 0 }));
      });
    `;
    await run(process.execPath, [orch, '--version'], { cwd: root }); // built and fresh
    // bin/orch.mjs runs the bundle in a vm.Script, where node 20 has no import(): every package is require()d.
    const bundle = fs.readFileSync(path.join(root, 'dist/cli/orch.cjs'), 'utf8');
    assert.doesNotMatch(bundle, /\bimport\(/);
    // One interop object per CommonJS module, shared by its importers (bin/build-cli.mjs, SHARED_TO_ESM).
    assert.ok(bundle.includes((await buildCli()).SHARED_TO_ESM), 'the shared __toESM wrapper is in the bundle');
    assert.ok(bundle.includes((await buildCli()).LAZY_NAMESPACE), "stand-ins' import objects are made without copying");
    // A file, not node -e (which loads node:crypto itself).
    const probe = path.join(fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'orch-probe-')), 'probe.cjs');
    fs.writeFileSync(probe, script);
    const { stdout } = await run(process.execPath, [probe], { cwd: root });
    fs.rmSync(path.dirname(probe), { recursive: true, force: true });
    assert.deepEqual(JSON.parse(stdout), { code: 0, atStart: 0, afterHelp: 0, validate: 0, validated: true, afterValidate: 0, builtins: [], control: true });
  }, 120_000);

  test('the import object of a lazy stand-in answers as esbuild\'s copy would, in both interop modes, and making it loads nothing', async () => {
    const { lazyModule, LAZY_NAMESPACE } = await buildCli();
    const lazyNamespace = new Function(`return ${LAZY_NAMESPACE.replace(/^,__lazyNamespace=/, '')}`)() as (mod: unknown, node: number) => Record<string | symbol, unknown>;
    // esbuild's __toESM: a getter per own name of the module, `default` the module itself in node mode (or when it is
    // not marked as an ES module).
    const copy = (mod: Record<string, unknown>, node: number): Record<string, unknown> => {
      const target = Object.create(Object.getPrototypeOf(mod) as object) as Record<string, unknown>;
      if (node || !mod.__esModule) Object.defineProperty(target, 'default', { value: mod, enumerable: true });
      for (const k of Object.getOwnPropertyNames(mod)) if (!Object.hasOwn(target, k)) Object.defineProperty(target, k, { get: () => mod[k], enumerable: true });
      return target;
    };
    const realRequire = createRequire(path.join(root, 'package.json'));
    for (const pkg of ['node:path', 'yaml', 'better-sqlite3']) {
      let loads = 0;
      const standIn = (): Record<string, unknown> => {
        const mod = { exports: {} as Record<string, unknown> };
        // Strict, as in the bundle ("use strict" at its top).
        new Function('module', 'require', `"use strict";${lazyModule(pkg)}`)(mod, (p: string) => {
          loads++;
          return realRequire(p) as unknown;
        });
        return mod.exports;
      };
      for (const node of [0, 1]) {
        loads = 0;
        const a = standIn();
        const ns = lazyNamespace(a, node);
        assert.equal(loads, 0, `${pkg}: making its import object loaded it`);
        const b = standIn();
        const copied = copy(b, node);
        assert.deepEqual(new Set(Object.keys(ns)), new Set(Object.keys(copied)), `${pkg} node=${node}: the same names`);
        for (const k of Object.keys(copied)) {
          if (k === 'default' || k === 'prototype') continue;
          assert.equal(ns[k], copied[k], `${pkg} node=${node}: ${k}`);
        }
        // default: the stand-in itself in node mode (module.exports), else what the stand-in answers for default.
        assert.equal(ns.default, node ? a : a.default, `${pkg} node=${node}: default`);
        assert.equal(typeof copied.default, typeof ns.default);
        assert.equal(ns.notAnExport, undefined);
        assert.equal('notAnExport' in ns, false);
        assert.ok(loads > 0, `${pkg}: reading an export loads the package`);
      }
    }
  });

  // NestJS 12 is ES modules only and is left to node's require() of ES modules (node 20.19+, package.json's engines):
  // only `orch up` loads it (the codec server, the relay). Any other such package is bundled (LAZY_BUNDLED_PACKAGES).
  const ESM_LEFT_TO_NODE = ['@nestjs/common', '@nestjs/core', '@nestjs/websockets', '@nestjs/platform-ws', '@nestjs/platform-express'];
  test('every ES-module-only package the bundle requires is one `orch up` alone loads (NestJS); the @noble ones are bundled (node 20.20 failed on them through a symlinked node_modules)', () => {
    const bundle = fs.readFileSync(path.join(root, 'dist/cli/orch.cjs'), 'utf8');
    const required = [...new Set([...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!))].filter((p) => !p.startsWith('node:') && !/^[a-z_]+$/.test(p) || /^(ws|pino|yaml|commander)$/.test(p));
    assert.ok(required.length > 5, `the bundle's external packages: ${required.join(', ')}`);
    const fromRoot = createRequire(path.join(root, 'package.json'));
    const esmOnly = required.filter((p) => {
      let file: string;
      try {
        file = fromRoot.resolve(p);
      } catch {
        return false; // an optional package not installed here is checked where it is
      }
      if (file.endsWith('.mjs')) return true;
      if (file.endsWith('.cjs') || file.endsWith('.node')) return false;
      // A .js file is an ES module when the nearest package.json says "type": "module".
      for (let dir = path.dirname(file); dir !== path.dirname(dir); dir = path.dirname(dir)) {
        const pj = path.join(dir, 'package.json');
        if (fs.existsSync(pj)) return (JSON.parse(fs.readFileSync(pj, 'utf8')) as { type?: string }).type === 'module';
      }
      return false;
    });
    assert.deepEqual(esmOnly.filter((p) => !ESM_LEFT_TO_NODE.includes(p)), []);
    assert.ok(!required.some((p) => p.startsWith('@noble/')), `left to node: ${required.join(', ')}`);
  });
});
