/**
 * What the integration suites share, set up once per `npm test` (jest's global setup, test/global-setup.mjs):
 *   1. typecheck the whole tree (strict), then workflow code alone without Node types (workflows/tsconfig.json),
 *      and lint it (eslint.config.mjs: workflow boundaries, no floating promises); ORCH_SKIP_TYPECHECK=1 skips
 *      them while you iterate;
 *   2. get the pinned Temporal CLI and start a real dev server on free ports (headless, its own database);
 *   3. bundle the workflows once (the tests' bundle = Orch's workflows + a few test-only workflows);
 *   4. get Debian's Chromium for the end-to-end test when this machine has none;
 *   5. find or build the Go agent (infra/agent-binary.ts, cached) and export it as ORCH_AGENT_BIN;
 *   6. for the 24-hour gate test, find or build the Temporal server with workflow time skipping
 *      (test/support/timeskip-server-binary.ts, cached) and export it as ORCH_TEST_TIMESKIP_SERVER.
 * Every test file then runs against that server, isolated by its own task queues, workflow ids and ORCH_HOME, and
 * the last file replays every history the suite produced (determinism check).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveAgentBinary } from '../infra/agent-binary';
import { orchCacheDir } from '../infra/paths';
import { resolveTemporalCli } from '../infra/temporal-cli';
import { TIMESKIP_SERVER_ENV, resolveTimeSkipServer } from './support/timeskip-server-binary';
import { startDevServer } from '../desktop-worker/dev-server';
import { workflowBundle } from '../desktop-worker/workflow-bundle-cache';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/shared';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (line: string) => process.stdout.write(`[test] ${line}\n`);

function run(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: process.env, stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

export interface Suite {
  stop(): Promise<void>;
}

/** Starts everything and exports it to the test processes through the environment. */
export async function setUpSuite(options: { e2e: boolean; timeskip?: boolean }): Promise<Suite> {
  const started = Date.now();
  process.stdout.write('\n');
  if (!process.env.ORCH_SKIP_TYPECHECK) {
    // The whole tree, workflow code on its own without Node types (workflows/tsconfig.json), and lint: at once, as
    // three processes (about half the wall time of one after the other on two cores); each prints what it finds.
    say('typecheck (tsc -p tsconfig.json and -p workflows/tsconfig.json --noEmit, strict) and lint (eslint: workflow boundaries, no floating promises)');
    const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
    const checks = await Promise.all([
      run(process.execPath, [tsc, '-p', 'tsconfig.json', '--noEmit']).then((code) => ({ code, what: 'typecheck of tsconfig.json' })),
      run(process.execPath, [tsc, '-p', 'workflows/tsconfig.json', '--noEmit']).then((code) => ({ code, what: 'typecheck of workflows/tsconfig.json' })),
      run(process.execPath, [path.join(root, 'node_modules/eslint/bin/eslint.js'), '--max-warnings', '0', '.']).then((code) => ({ code, what: 'lint (`npm run lint` shows it again)' })),
    ]);
    const failed = checks.filter((c) => c.code !== 0).map((c) => c.what);
    if (failed.length) throw new Error(`${failed.join(', ')} failed (see above); ORCH_SKIP_TYPECHECK=1 skips them while you iterate`);
  }
  if (options.timeskip) {
    // The 24-hour gate test's Temporal server with workflow time skipping: built once, cached like the CLI.
    process.env[TIMESKIP_SERVER_ENV] = await resolveTimeSkipServer(say);
    say(`time-skipping Temporal server ${process.env[TIMESKIP_SERVER_ENV]}`);
  }
  const agentBin = await resolveAgentBinary({ log: say });
  say(`Go agent ${agentBin}`);
  const cli = await resolveTemporalCli({ log: say });
  say(`Temporal CLI ${cli.version} (${cli.source})`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-test-'));
  const server = await startDevServer({
    cliPath: cli.path,
    dbFile: path.join(work, 'temporal.db'),
    port: 0,
    headless: true,
    searchAttributes: SEARCH_ATTRIBUTE_TYPES,
    logFile: path.join(work, 'temporal.log'),
  });
  say(`Temporal dev server at ${server.address}`);
  const stop = async () => {
    await server.stop();
    if (!process.env.ORCH_KEEP_TEST_DIR) fs.rmSync(work, { recursive: true, force: true });
  };
  try {
    // Bundled as `orch up` bundles Orch's own workflows (desktop-worker/workflow-bundle-cache.ts): reused from the
    // cache while every input hashes the same, so a second run on this machine does not bundle again.
    const testWorkflows = path.join(root, 'test/support/test-workflows.ts');
    const cacheRoot = orchCacheDir();
    const [bundle, codecBundle] = await Promise.all([
      workflowBundle({ cacheRoot, workflowsPath: testWorkflows, failureConverterPath: '' }),
      // The end-to-end test runs with the payload codec, whose failure converter must be in the bundle (as
      // `npm run build` puts it in Orch's own); bundled here so the test's process carries no bundler.
      options.e2e ? workflowBundle({ cacheRoot, workflowsPath: testWorkflows }) : undefined,
    ]);
    say(`workflows bundled${options.e2e ? ', and again with the codec failure converter (e2e)' : ''}: ${[bundle, codecBundle].filter((b) => b !== undefined).map((b) => (b.cached ? 'cached' : 'built now')).join(', ')}`);
    const bundlePath = path.join(work, 'workflow-bundle.js');
    fs.writeFileSync(bundlePath, bundle.code);
    let codecBundlePath: string | undefined;
    if (codecBundle) {
      codecBundlePath = path.join(work, 'workflow-bundle-codec.js');
      fs.writeFileSync(codecBundlePath, codecBundle.code);
    }
    if (options.e2e) {
      // The end-to-end test drives the Temporal UI in Debian's Chromium: get it if this machine has none.
      const code = await run('bash', [path.join(root, 'infra/get-chromium.sh')]);
      if (code !== 0) say('no Chromium: the end-to-end test will fail with chromium_missing');
    }
    // Never let a developer's own Temporal or Claude settings leak into the suite.
    for (const k of ['TEMPORAL_ADDRESS', 'TEMPORAL_PROFILE', 'TEMPORAL_CONFIG_FILE', 'TEMPORAL_NAMESPACE', 'ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL', 'ORCH_HOME']) delete process.env[k];
    Object.assign(process.env, {
      ORCH_TEST_TEMPORAL_ADDRESS: server.address,
      ORCH_TEST_WORKFLOW_BUNDLE: bundlePath,
      ...(codecBundlePath ? { ORCH_TEST_WORKFLOW_BUNDLE_CODEC: codecBundlePath } : {}),
      ORCH_TEMPORAL_CLI: cli.path,
      ORCH_AGENT_BIN: agentBin,
      ORCH_TEST_WORK_DIR: work,
    });
    say(`suite ready in ${Math.round((Date.now() - started) / 1000)} s`);
    return { stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
