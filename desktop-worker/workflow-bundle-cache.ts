/**
 * The workflow bundle `orch up` runs, built once and reused while its sources are unchanged. Bundling Orch's
 * workflows (webpack over workflows/, protocol/ and @temporalio/workflow) takes seconds; the worker would do it at
 * every start. Instead the first start bundles exactly as the worker would (same module, same failure converter) and
 * stores the bundle under `<orchCacheDir>/workflow-bundle/<key>/`, beside the Temporal CLI and agent builds.
 *
 * Never stale: a stored bundle records every file it was built from (the absolute paths in its inline source map:
 * our sources and each node_modules file), each file's SHA-256, the listing of every source folder outside
 * node_modules (a new file there could change what an import resolves to), package-lock.json, tsconfig.json and
 * the bundler's version. A bundle is reused only when all of those still hash the same, and only when its own bytes
 * still match the SHA-256 recorded when it was written; anything else bundles again. Checking costs a few ms
 * (about 120 files); bundling costs seconds.
 *
 * The cache is this user's (folder mode 0700), like the cached binaries Orch already runs from the same folder.
 * `ORCH_WORKFLOW_BUNDLE` (a bundle signed by the desktop key, `npm run build`) still takes precedence in `orch up`.
 *
 * @example
 * const { code, cached } = await workflowBundle({ cacheRoot: orchCacheDir() });
 * orchPlugin(deps, { workflowBundleCode: code });
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { ensurePrivateDir } from '../infra/paths';
import { FAILURE_CONVERTER_PATH } from './payload-codec';
import { WORKFLOWS_PATH, WORKFLOW_PRELOAD_MODULES } from './plugin';

/** Bumped when what a cache entry holds, or how it is checked, changes. */
const FORMAT = 'orch-workflow-bundle v1';
/**
 * Bundles of older sources kept per set of options (another checkout, or a branch switched back to, may use them),
 * so the test suite's and the benches' bundles (other workflow modules) never push out `orch up`'s; and at most
 * KEEP_ALL entries in all.
 */
const KEEP = 4;
const KEEP_ALL = 16;
const REPO_ROOT = path.resolve(path.dirname(WORKFLOWS_PATH), '..');

export interface WorkflowBundleOptions {
  /** The cache root (`orchCacheDir()`); bundles go to `<cacheRoot>/workflow-bundle/`. */
  cacheRoot: string;
  /** Default: Orch's production module, workflows/index.ts. */
  workflowsPath?: string;
  /** Default: the encrypting failure converter (payload-codec.ts), which `orch up`'s worker needs. */
  failureConverterPath?: string;
  /** Files whose content is part of every key besides the bundle's inputs. Default: package-lock.json, tsconfig.json. */
  extraInputs?: string[];
}

export interface WorkflowBundle {
  code: string;
  /** True when reused from the cache, false when bundled now (and stored). */
  cached: boolean;
  /** The cache entry's folder. */
  dir: string;
}

interface Manifest {
  format: string;
  options: { workflowsPath: string; failureConverterPath: string | null; preloadModules: readonly string[]; bundler: string };
  /** Absolute path -> SHA-256 hex ('' when it did not exist). */
  files: Record<string, string>;
  /** Absolute folder -> SHA-256 of its sorted entry names. */
  dirs: Record<string, string>;
  bundleSha256: string;
}

/** The bundle for these options: the cached one when every input still hashes the same, else a new one (stored). */
export async function workflowBundle(opts: WorkflowBundleOptions): Promise<WorkflowBundle> {
  const hit = findCachedWorkflowBundle(opts);
  if (hit) return hit;
  const root = ensurePrivateDir(path.join(opts.cacheRoot, 'workflow-bundle'));
  const options = bundleOptions(opts);
  const { code } = await bundleWorkflowCode({
    workflowsPath: options.workflowsPath,
    ...(options.failureConverterPath ? { failureConverterPath: options.failureConverterPath } : {}),
    preloadModules: [...options.preloadModules],
    logger: QUIET,
  });
  const inputs = [...bundleSources(code), ...(opts.extraInputs ?? defaultExtraInputs())];
  const files: Record<string, string> = {};
  for (const f of inputs) files[f] = fileHash(f);
  const dirs: Record<string, string> = {};
  for (const f of inputs) {
    const d = path.dirname(f);
    if (!f.split(path.sep).includes('node_modules') && !(d in dirs)) dirs[d] = dirListingHash(d);
  }
  const manifest: Manifest = { format: FORMAT, options, files, dirs, bundleSha256: sha256(code) };
  const dir = store(root, manifest, code);
  pruneWorkflowBundles(root, dir);
  return { code, cached: false, dir };
}

/** The cached bundle for these options whose every input still hashes the same, or undefined (nothing is built). */
export function findCachedWorkflowBundle(opts: WorkflowBundleOptions): WorkflowBundle | undefined {
  const root = ensurePrivateDir(path.join(opts.cacheRoot, 'workflow-bundle'));
  const options = bundleOptions(opts);
  const hashes = new Map<string, string>();
  for (const dir of entriesNewestFirst(root)) {
    const code = readIfFresh(dir, options, hashes);
    if (code !== undefined) {
      touch(dir);
      return { code, cached: true, dir };
    }
  }
  return undefined;
}

function bundleOptions(opts: WorkflowBundleOptions): Manifest['options'] {
  const bundler = readJson(createRequire(import.meta.url).resolve('@temporalio/worker/package.json')) as { version?: string };
  return {
    workflowsPath: path.resolve(opts.workflowsPath ?? WORKFLOWS_PATH),
    failureConverterPath: opts.failureConverterPath === undefined ? FAILURE_CONVERTER_PATH : opts.failureConverterPath || null,
    preloadModules: WORKFLOW_PRELOAD_MODULES,
    bundler: `@temporalio/worker ${bundler.version ?? '?'}`,
  };
}

function defaultExtraInputs(): string[] {
  return [path.join(REPO_ROOT, 'package-lock.json'), path.join(REPO_ROOT, 'tsconfig.json')];
}

/**
 * The files the bundle was built from: the `sources` of its inline source map, which the Temporal bundler writes
 * as absolute paths. Its generated entry point lives only in memory and is left out (its content follows from the
 * options, which are part of the key).
 */
export function bundleSources(code: string): string[] {
  const m = /\/\/# sourceMappingURL=data:application\/json;(?:charset=[^;,]+;)?base64,([A-Za-z0-9+/=]+)\s*$/.exec(code);
  if (!m?.[1]) throw new Error('the workflow bundle has no inline source map to tell its inputs: cannot cache it');
  const map = JSON.parse(Buffer.from(m[1], 'base64').toString('utf8')) as { sources?: unknown };
  if (!Array.isArray(map.sources)) throw new Error('the workflow bundle source map lists no sources');
  const out = new Set<string>();
  for (const s of map.sources) {
    if (typeof s !== 'string') continue;
    const file = s.replace(/^webpack:\/\//, '').replace(/\?.*$/, '');
    if (path.isAbsolute(file) && fs.existsSync(file) && fs.statSync(file).isFile()) out.add(file);
  }
  if (out.size === 0) throw new Error('the workflow bundle source map names no file on disk');
  return [...out].sort();
}

function readIfFresh(dir: string, options: Manifest['options'], hashes: Map<string, string>): string | undefined {
  let manifest: Manifest;
  try {
    manifest = readJson(path.join(dir, 'manifest.json')) as Manifest;
  } catch {
    return undefined;
  }
  if (manifest.format !== FORMAT || JSON.stringify(manifest.options) !== JSON.stringify(options)) return undefined;
  for (const [file, want] of Object.entries(manifest.files)) {
    let have = hashes.get(file);
    if (have === undefined) hashes.set(file, (have = fileHash(file)));
    if (have !== want) return undefined;
  }
  for (const [d, want] of Object.entries(manifest.dirs)) if (dirListingHash(d) !== want) return undefined;
  let code: string;
  try {
    code = fs.readFileSync(path.join(dir, 'bundle.js'), 'utf8');
  } catch {
    return undefined;
  }
  // A truncated or edited bundle is not used (and is replaced by the next store).
  return sha256(code) === manifest.bundleSha256 ? code : undefined;
}

function store(root: string, manifest: Manifest, code: string): string {
  const key = sha256(JSON.stringify([manifest.format, manifest.options, manifest.files, manifest.dirs])).slice(0, 24);
  const dir = path.join(root, key);
  // Written whole into a temporary folder, then renamed: a reader never sees half a bundle.
  const tmp = fs.mkdtempSync(path.join(root, `.tmp-${key}-`));
  try {
    fs.writeFileSync(path.join(tmp, 'bundle.js'), code, { mode: 0o600 });
    fs.writeFileSync(path.join(tmp, 'manifest.json'), `${JSON.stringify(manifest)}\n`, { mode: 0o600 });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    // Another process stored the same key at the same moment: theirs is as good as ours.
    if (!fs.existsSync(path.join(dir, 'manifest.json'))) throw err;
  }
  return dir;
}

function entriesNewestFirst(root: string): string[] {
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[0-9a-f]{24}$/.test(e.name))
    .map((e) => ({ dir: path.join(root, e.name), at: safeMtime(path.join(root, e.name)) }))
    .sort((a, b) => b.at - a.at)
    .map((e) => e.dir);
}

/**
 * Housekeeping after `keep` was stored under `root`: of the entries built with the same options as `keep`, the KEEP
 * most recently used stay; of all entries, the KEEP_ALL most recent; abandoned temporary folders older than an hour
 * go. Exported for its test.
 */
export function pruneWorkflowBundles(root: string, keep: string): void {
  try {
    const optionsOf = (dir: string): string => {
      try {
        return JSON.stringify((readJson(path.join(dir, 'manifest.json')) as Manifest).options);
      } catch {
        return '';
      }
    };
    const mine = optionsOf(keep);
    const others = entriesNewestFirst(root).filter((d) => d !== keep);
    const sameOptions = others.filter((d) => optionsOf(d) === mine);
    const drop = new Set([...sameOptions.slice(KEEP - 1), ...others.slice(KEEP_ALL - 1)]);
    for (const dir of drop) fs.rmSync(dir, { recursive: true, force: true });
    for (const e of fs.readdirSync(root)) {
      const p = path.join(root, e);
      if (e.startsWith('.tmp-') && Date.now() - safeMtime(p) > 60 * 60_000) fs.rmSync(p, { recursive: true, force: true });
    }
  } catch {
    // Housekeeping only.
  }
}

function touch(dir: string): void {
  try {
    const now = new Date();
    fs.utimesSync(dir, now, now);
  } catch {
    // Only the pruning order depends on it.
  }
}

function safeMtime(p: string): number {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

function fileHash(file: string): string {
  try {
    return sha256(fs.readFileSync(file));
  } catch {
    return '';
  }
}

function dirListingHash(dir: string): string {
  try {
    return sha256(fs.readdirSync(dir).sort().join('\0'));
  } catch {
    return '';
  }
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function readJson(file: string): unknown {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

const QUIET = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => process.stderr.write(`workflow bundle: ${message}\n`),
  error: (message: string) => process.stderr.write(`workflow bundle: ${message}\n`),
  log: () => undefined,
};
