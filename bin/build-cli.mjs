#!/usr/bin/env node
// Builds the `orch` command into compiled JavaScript: desktop-worker/cli-entry.ts and everything it imports, bundled
// by esbuild into dist/cli/orch.cjs (packages from node_modules stay outside the bundle). bin/orch.mjs loads it,
// and, in a source checkout, rebuilds it first when a file it was built from changed since (their sizes and times are
// in dist/cli/orch.stamp.json), so a clone works without a build step and an edit takes effect at the next `orch`
// command. An installed package is not checked.
//   node bin/build-cli.mjs        build now (npm install runs it: the "prepare" script)
//
// Heavy packages (the Temporal SDK, SQLite, the keychain, libsodium, the Anthropic SDK, NestJS) are loaded on first
// use, not when the CLI starts: each is bundled as a stand-in whose properties load the real package when first
// read, so `orch --help` or `orch dag validate` load none of them. YAML (LAZY_BUNDLED_PACKAGES) is the same, except
// that its code is inside the bundle: `orch dag validate` runs it there, without reading its ~80 files. Each
// CommonJS module's import object is made once for all its importers (SHARED_TO_ESM).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI_BUNDLE = path.join(ROOT, 'dist', 'cli', 'orch.cjs');
const STAMP = path.join(ROOT, 'dist', 'cli', 'orch.stamp.json');
/**
 * Loaded when first used, like LAZY_PACKAGES, but from inside dist/cli/orch.cjs: their code is bundled (as modules
 * run at first use, not at start-up), so the command that needs them reads no file of theirs, resolves no module
 * path, and compiles them from the V8 code cache. `yaml` is ~80 modules that `orch dag validate` and `register`
 * read every DAG file with. The @noble packages are ES modules only: left outside the bundle, they would be a
 * require() of an ES module, which node before 20.19 refuses (ERR_REQUIRE_ESM) and which failed in node 20.20 when
 * node_modules is reached through a symlink (a git worktree): bundled, esbuild turns them into CommonJS.
 */
export const LAZY_BUNDLED_PACKAGES = ['yaml', '@noble/curves/ed25519.js', '@noble/hashes/sha2.js'];
/**
 * Loaded when first used, not at start-up: the packages only some commands need (the Temporal client, SQLite, the
 * keychain, libsodium, the signature code), so `orch --help` and `orch dag validate` load none of them.
 */
export const LAZY_PACKAGES = [
  '@temporalio/client', '@temporalio/worker', '@temporalio/proto', '@temporalio/envconfig', '@temporalio/common', '@temporalio/workflow',
  '@anthropic-ai/sdk', '@nestjs/core', '@nestjs/common', '@nestjs/platform-express', ...LAZY_BUNDLED_PACKAGES, 'pino',
  '@temporalio/common/lib/time', 'sodium-native', 'better-sqlite3', '@napi-rs/keyring', 'ws',
  '@temporalio/testing',
  // Node's own modules that only some commands use (hashing and signing, starting processes): not loaded at start.
  'node:crypto', 'node:child_process',
];
/** Bundled into dist/cli/orch.cjs: every command uses them. */
const BUNDLED_PACKAGES = ['commander'];
/**
 * What the CLI reads of @temporalio/workflow and @temporalio/common at start-up (workflows/shared.ts defines its
 * signals, queries, updates and search attribute keys at module level): the same plain values the packages'
 * functions return, so defining them loads nothing.
 * test/unit/cli-bundle.test.ts checks they equal the package's own.
 */
export const INLINE_EXPORTS = {
  '@temporalio/workflow': {
    defineQuery: (name, options = {}) => ({ type: 'query', name, ...options }),
    defineSignal: (name, options = {}) => ({ type: 'signal', name, ...options }),
    defineUpdate: (name, options = {}) => ({ type: 'update', name, ...options }),
  },
  '@temporalio/common': {
    defineSearchAttributeKey: (name, type) => ({ name, type }),
    SearchAttributeType: { TEXT: 'TEXT', KEYWORD: 'KEYWORD', INT: 'INT', DOUBLE: 'DOUBLE', BOOL: 'BOOL', DATETIME: 'DATETIME', KEYWORD_LIST: 'KEYWORD_LIST' },
  },
};

/**
 * The inputs of the bundle besides its sources: a change to any makes the bundle stale. The packages bundled in
 * (commander, yaml) are not stat'ed file by file at each start: npm rewrites node_modules/.package-lock.json
 * whenever it changes what is installed.
 */
const EXTRA_INPUTS = ['package-lock.json', 'node_modules/.package-lock.json', 'bin/build-cli.mjs'];

/**
 * True in a source checkout (a git clone or worktree), where an edited source must take effect at the next `orch`
 * command; an installed package's bundle is as it was built and is not checked.
 */
export function isSourceCheckout(root = ROOT) {
  return fs.existsSync(path.join(root, '.git'));
}

/** Size and modification time of each input, as the stamp records them. */
function inputState(root, files) {
  const state = {};
  const base = root + path.sep; // not path.join: this runs at every `orch` start, and the names are already normal
  for (const rel of files) {
    const st = fs.statSync(base + rel, { throwIfNoEntry: false });
    state[rel] = st ? [st.size, st.mtimeMs] : null;
  }
  return state;
}

/**
 * True when dist/cli/orch.cjs was built from the sources as they are now: in a source checkout, every file the
 * bundle was built from (esbuild's list of its inputs, in dist/cli/orch.stamp.json) still has the size and
 * modification time it had, and node is the same version; elsewhere, when the bundle exists. About 100 stat calls,
 * no reading or hashing of sources.
 */
export function bundleIsFresh(root = ROOT) {
  if (!isSourceCheckout(root)) return fs.existsSync(CLI_BUNDLE);
  let stamp;
  try {
    stamp = JSON.parse(fs.readFileSync(STAMP, 'utf8'));
  } catch {
    return false;
  }
  if (stamp.node !== process.version || stamp.root !== root || typeof stamp.inputs !== 'object' || !fs.existsSync(CLI_BUNDLE)) return false;
  const now = inputState(root, Object.keys(stamp.inputs));
  return Object.entries(stamp.inputs).every(([rel, was]) => JSON.stringify(was) === JSON.stringify(now[rel]));
}

/**
 * The stand-in module of a lazily loaded package: its export names are read here, at build time. A package whose
 * module.exports is itself a class or function (the Anthropic SDK, better-sqlite3) gets a callable stand-in, since
 * a default import of a CommonJS module is module.exports itself (so `const na = sodium` at module level loads
 * nothing). INLINE_EXPORTS are answered without loading the package.
 */
export function lazyModule(pkg) {
  const require = createRequire(path.join(ROOT, 'package.json'));
  const real = require(pkg);
  const inline = INLINE_EXPORTS[pkg] ?? {};
  const keys = [...new Set([...Object.keys(real), 'default', '__esModule'])];
  const callable = typeof real === 'function';
  const inlineCode = `{${Object.entries(inline).map(([k, f]) => `${JSON.stringify(k)}: ${typeof f === 'function' ? f.toString() : JSON.stringify(f)}`).join(', ')}}`;
  return `let real;
const load = () => (real ??= require(${JSON.stringify(pkg)}));
const inline = ${inlineCode};
const keys = ${JSON.stringify(callable ? [...keys, 'prototype'] : keys)};
const target = ${callable ? 'function () {}' : '{}'};
module.exports = new Proxy(target, {
  get: (_, k) => (k === '__esModule' ? true : k === ${LAZY_MARK_CODE} ? keys : Object.hasOwn(inline, k) ? inline[k] : k === 'default' ? (load().default ?? load()) : load()[k]),
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
    // Packages every command needs go into the bundle (one file to read and compile) instead of being loaded beside it.
    name: 'bundled-packages',
    setup(b) {
      const require = createRequire(path.join(ROOT, 'package.json'));
      b.onResolve({ filter: new RegExp(`^(${BUNDLED_PACKAGES.join('|')})$`) }, (args) => ({ path: require.resolve(args.path) }));
      // A bundled ES-module-only package's imports of its own kind (@noble/curves of @noble/hashes) are bundled too.
      b.onResolve({ filter: /^@noble\// }, (args) => (/[\\/]node_modules[\\/]@noble[\\/]/.test(args.importer) ? { path: createRequire(args.importer).resolve(args.path) } : undefined));
    },
  },
  {
    name: 'lazy-packages',
    setup(b) {
      const filter = new RegExp(`^(${LAZY_PACKAGES.map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})$`);
      const require = createRequire(path.join(ROOT, 'package.json'));
      // The stand-in's own require() of the package: left to node, or, for LAZY_BUNDLED_PACKAGES, bundled.
      b.onResolve({ filter }, (args) =>
        args.namespace !== 'lazy'
          ? { path: args.path, namespace: 'lazy' }
          : LAZY_BUNDLED_PACKAGES.includes(args.path)
            ? { path: require.resolve(args.path) }
            : { path: args.path, external: true },
      );
      b.onLoad({ filter: /.*/, namespace: 'lazy' }, (args) => ({ contents: lazyModule(args.path), loader: 'js', resolveDir: ROOT }));
    },
  },
];

/**
 * esbuild's __toESM makes, for each module that imports a CommonJS module (node:fs, node:path, a lazy stand-in), a
 * new object with a getter per export: ~100 of them at start-up, a third of the time the bundle takes to load. The
 * objects are read-only views of the same module (live getters), so one per module serves every importer: the
 * bundle's __toESM is wrapped to make each once. If esbuild's helper ever reads otherwise, the bundle is left as it
 * is (correct, only slower); test/unit/cli-bundle.test.ts checks the wrapper is in.
 */
export const SHARED_TO_ESM = ',__toESMShared=[new WeakMap,new WeakMap],__toESM=';
/**
 * A stand-in (lazyModule) answers this key with its export names, without loading its package; any other module
 * answers undefined.
 */
const LAZY_MARK_CODE = 'Symbol.for("orch.cli.lazyModule")';
/**
 * The import object of a stand-in, made without a getter per export: what __toESM's copy would answer (its export
 * names, read through to the stand-in, which loads the package on first use; in node mode `default` is the stand-in
 * itself, as module.exports), as a Proxy over the names the stand-in lists. Copying them cost ~10 ms at every start
 * (sodium-native alone has 315), for objects most commands never read.
 */
export const LAZY_NAMESPACE = `,__lazyNamespace=(mod,node)=>{const names=new Set(mod[${LAZY_MARK_CODE}]);names.add("default");return new Proxy({},{get:(t,k)=>k==="default"&&node?mod:names.has(k)?mod[k]:Reflect.get(t,k),has:(t,k)=>names.has(k)||k in t,ownKeys:()=>[...names],getOwnPropertyDescriptor:(_,k)=>names.has(k)?{enumerable:true,configurable:true,get:()=>k==="default"&&node?mod:mod[k]}:undefined})}`;
function shareInteropObjects(code) {
  // esbuild names the helper's parameters (mod, isNodeMode, target) and renames them (mod2) when bundled code uses
  // the same names at its top level.
  const def = /var __toESM=\((\w+),(\w+),(\w+)\)=>/g;
  const next = ',__toCommonJS=';
  const defs = [...code.matchAll(def)];
  if (defs.length !== 1 || code.split(next).length !== 2 || defs[0].index > code.indexOf(next)) return code;
  const [, mod, node, target] = defs[0];
  const shared = `${LAZY_NAMESPACE}${SHARED_TO_ESM}(${mod},${node})=>{if(${mod}==null||typeof ${mod}!="object"&&typeof ${mod}!="function")return __toESMEach(${mod},${node});const m=__toESMShared[${node}?1:0];let r=m.get(${mod});return r===void 0&&m.set(${mod},r=Array.isArray(${mod}[${LAZY_MARK_CODE}])?__lazyNamespace(${mod},${node}):__toESMEach(${mod},${node})),r}`;
  return code.replace(def, `var __toESMEach=(${mod},${node},${target})=>`).replace(next, `${shared}${next}`);
}

/** Builds dist/cli/orch.cjs (written atomically, so a concurrent `orch` never loads half a file). */
export async function buildCli({ quiet = false } = {}) {
  const { build } = await import('esbuild');
  const started = Date.now();
  // The inputs of the last build, as they are before this one reads them.
  let before = {};
  try {
    before = inputState(ROOT, Object.keys(JSON.parse(fs.readFileSync(STAMP, 'utf8')).inputs ?? {}));
  } catch {
    before = {};
  }
  fs.mkdirSync(path.dirname(CLI_BUNDLE), { recursive: true });
  const tmp = `${CLI_BUNDLE}.${process.pid}.tmp`;
  const { metafile } = await build({
    entryPoints: [path.join(ROOT, 'desktop-worker', 'cli-entry.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    packages: 'external',
    outfile: tmp,
    logLevel: 'error',
    metafile: true,
    // Less to read and parse at each start; names are kept, so a stack trace (ORCH_DEBUG) still names functions.
    minifyWhitespace: true,
    minifySyntax: true,
    plugins,
  });
  // bin/orch.mjs runs the bundle through vm.Script (for the code cache), where node 20 has no import(): a package
  // loaded by import() must be one of LAZY_PACKAGES (then it is a require() of its stand-in).
  const dynamic = Object.values(metafile.inputs).flatMap((i) => i.imports.filter((x) => x.kind === 'dynamic-import' && x.external).map((x) => x.path));
  if (dynamic.length) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`import() of ${dynamic.join(', ')} left in the bundle: add it to LAZY_PACKAGES in bin/build-cli.mjs`);
  }
  fs.writeFileSync(tmp, shareInteropObjects(fs.readFileSync(tmp, 'utf8')));
  fs.renameSync(tmp, CLI_BUNDLE);
  // V8 code caches of earlier builds (bin/orch.mjs names each after its bundle's size and time): never read again.
  for (const name of fs.readdirSync(path.dirname(CLI_BUNDLE))) {
    if (/^orch\.cjs\..+\.v8$/.test(name)) fs.rmSync(path.join(path.dirname(CLI_BUNDLE), name), { force: true });
  }
  // The files esbuild read (the lazy stand-ins are not files), as they are now. One that changed while it built
  // (its state differs from the one taken before) may have been read before the change: it is recorded as unknown,
  // so the next command rebuilds.
  const sources = Object.keys(metafile.inputs).filter((f) => !f.includes(':') && !/(^|[\\/])node_modules[\\/]/.test(f) && fs.existsSync(path.join(ROOT, f)));
  const inputs = inputState(ROOT, [...sources, ...EXTRA_INPUTS].sort());
  for (const [rel, st] of Object.entries(inputs)) if (rel in before && JSON.stringify(before[rel]) !== JSON.stringify(st)) inputs[rel] = null;
  const stampTmp = `${STAMP}.${process.pid}.tmp`;
  fs.writeFileSync(stampTmp, JSON.stringify({ node: process.version, root: ROOT, builtAt: new Date(started).toISOString(), inputs }));
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
