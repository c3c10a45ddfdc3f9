#!/usr/bin/env node
// Builds the `orch` command into compiled JavaScript: desktop-worker/cli-entry.ts and everything it imports, bundled
// by esbuild into dist/cli/orch.cjs (packages from node_modules stay outside the bundle). bin/orch.mjs loads it,
// and rebuilds it first when a source file changed since (its fingerprint is in dist/cli/orch.stamp.json), so a
// clone works without a build step and an edit takes effect at the next `orch` command.
//   node bin/build-cli.mjs        build now (npm install runs it: the "prepare" script)
//
// Heavy packages (the Temporal client and worker, the Anthropic SDK, NestJS) are loaded on first use, not when the
// CLI starts: each is bundled as a stand-in whose properties load the real package when first read, so `orch
// --help` or `orch dag validate` never load the Temporal client.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI_BUNDLE = path.join(ROOT, 'dist', 'cli', 'orch.cjs');
const STAMP = path.join(ROOT, 'dist', 'cli', 'orch.stamp.json');
/** The folders whose files go into the bundle; a change to any file there (or to the lock) makes it stale. */
const SOURCE_DIRS = ['desktop-worker', 'workflows', 'protocol', 'infra', 'activities', 'relay'];
/** Loaded when first used, not at start-up. */
const LAZY_PACKAGES = ['@temporalio/client', '@temporalio/worker', '@temporalio/proto', '@temporalio/envconfig', '@anthropic-ai/sdk', '@nestjs/core', '@nestjs/common', '@nestjs/platform-express', 'yaml', 'pino'];

/** A fingerprint of the bundle's inputs: every source file's path, size and modification time, and the lock file. */
export function sourceFingerprint(root = ROOT) {
  const h = crypto.createHash('sha256');
  h.update(`${process.version}\0${root}\0`);
  for (const dir of SOURCE_DIRS) {
    const base = path.join(root, dir);
    let names;
    try {
      names = fs.readdirSync(base, { recursive: true });
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const file = path.join(base, name);
      const st = fs.statSync(file, { throwIfNoEntry: false });
      if (st?.isFile()) h.update(`${dir}/${name}\0${st.size}\0${st.mtimeMs}\0`);
    }
  }
  const lock = fs.statSync(path.join(root, 'package-lock.json'), { throwIfNoEntry: false });
  h.update(`lock\0${lock?.size ?? 0}\0${lock?.mtimeMs ?? 0}`);
  return h.digest('hex');
}

/** True when dist/cli/orch.cjs was built from the sources as they are now. */
export function bundleIsFresh(root = ROOT) {
  try {
    const stamp = JSON.parse(fs.readFileSync(STAMP, 'utf8'));
    return stamp.fingerprint === sourceFingerprint(root) && fs.existsSync(CLI_BUNDLE);
  } catch {
    return false;
  }
}

/**
 * The stand-in module of a lazily loaded package: its export names are read here, at build time. A package whose
 * module.exports is itself a class or function (the Anthropic SDK) gets a callable stand-in, since a default import
 * of a CommonJS module is module.exports itself.
 */
function lazyModule(pkg) {
  const require = createRequire(path.join(ROOT, 'package.json'));
  const real = require(pkg);
  const keys = [...new Set([...Object.keys(real), 'default', '__esModule'])];
  const callable = typeof real === 'function';
  return `let real;
const load = () => (real ??= require(${JSON.stringify(pkg)}));
const keys = ${JSON.stringify(callable ? [...keys, 'prototype'] : keys)};
const target = ${callable ? 'function () {}' : '{}'};
module.exports = new Proxy(target, {
  get: (_, k) => (k === '__esModule' ? true : k === 'default' ? (load().default ?? load()) : load()[k]),
  has: (_, k) => keys.includes(k) || k in load(),
  ownKeys: () => keys,
  getOwnPropertyDescriptor: (t, k) =>
    k === 'prototype' ? Reflect.getOwnPropertyDescriptor(t, k) : keys.includes(k) ? { enumerable: true, configurable: true, get: () => module.exports[k] } : undefined,${callable ? `
  construct: (_, args, newTarget) => Reflect.construct(load(), args, newTarget === module.exports ? load() : newTarget),
  apply: (_, self, args) => Reflect.apply(load(), self, args),` : ''}
});
`;
}

const plugins = [
  {
    // Source files keep their own location for `new URL('./x', import.meta.url)` (the demo DAG, the workflows'
    // entry, helper scripts): import.meta.url becomes the source file's URL.
    name: 'source-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        const text = await fs.promises.readFile(args.path, 'utf8');
        return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)), loader: 'ts' };
      });
    },
  },
  {
    name: 'lazy-packages',
    setup(b) {
      const filter = new RegExp(`^(${LAZY_PACKAGES.map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})$`);
      b.onResolve({ filter }, (args) => (args.namespace === 'lazy' ? { path: args.path, external: true } : { path: args.path, namespace: 'lazy' }));
      b.onLoad({ filter: /.*/, namespace: 'lazy' }, (args) => ({ contents: lazyModule(args.path), loader: 'js', resolveDir: ROOT }));
    },
  },
];

/** Builds dist/cli/orch.cjs (written atomically, so a concurrent `orch` never loads half a file). */
export async function buildCli({ quiet = false } = {}) {
  const { build } = await import('esbuild');
  const fingerprint = sourceFingerprint();
  const started = Date.now();
  fs.mkdirSync(path.dirname(CLI_BUNDLE), { recursive: true });
  const tmp = `${CLI_BUNDLE}.${process.pid}.tmp`;
  await build({
    entryPoints: [path.join(ROOT, 'desktop-worker', 'cli-entry.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    packages: 'external',
    outfile: tmp,
    logLevel: 'error',
    plugins,
  });
  fs.renameSync(tmp, CLI_BUNDLE);
  const stampTmp = `${STAMP}.${process.pid}.tmp`;
  fs.writeFileSync(stampTmp, JSON.stringify({ fingerprint, builtAt: new Date().toISOString() }));
  fs.renameSync(stampTmp, STAMP);
  if (!quiet) process.stdout.write(`built ${path.relative(ROOT, CLI_BUNDLE)} in ${Date.now() - started} ms\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write('usage: node bin/build-cli.mjs   bundle the orch command into dist/cli/orch.cjs (bin/orch.mjs also rebuilds it when stale)\n');
    process.exit(0);
  }
  try {
    await buildCli();
  } catch (err) {
    process.stderr.write(`build-cli: ${err.message.split('\n')[0]}\n`);
    process.exit(1);
  }
}
