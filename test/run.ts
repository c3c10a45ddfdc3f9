/**
 * The test suite's runner (`npm test`). Once per suite, as the integration suites of our anchors do:
 *   1. typecheck the whole tree (strict);
 *   2. get the pinned Temporal CLI and start a real dev server on free ports (headless, its own database);
 *   3. bundle the workflows once (the tests' bundle = Orch's workflows + a few test-only workflows);
 *   4. run every test file with node's test runner, one file at a time, each isolated by its own task queues,
 *      workflow ids and ORCH_HOME;
 *   5. the last file replays every history the suite produced (determinism check).
 * Arguments: test files to run instead of all of them (the dev server and bundle are still set up), or --soak
 * for the soak, fault and kill loops under test/soak (`npm run test:soak`).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { resolveTemporalCli } from '../infra/temporal-cli';
import { startDevServer } from '../desktop-worker/dev-server';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/shared';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (line: string) => process.stdout.write(`[test] ${line}\n`);

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

function listTests(dirs: string[]): string[] {
  // test/e2e and test/soak hold one kind each; test/unit and test/integration run in that order.
  const files: string[] = [];
  for (const dir of dirs) {
    const abs = path.join(root, dir);
    if (!fs.existsSync(abs)) continue;
    for (const f of fs.readdirSync(abs).sort()) if (f.endsWith('.test.ts')) files.push(path.join(dir, f));
  }
  // Replays what every other file produced, so it runs last (the soak loops produce no workflows).
  if (!dirs.includes('test/soak')) files.push('test/replay/replay-histories.test.ts');
  return files;
}

export async function runTests(args: string[]): Promise<number> {
  const started = Date.now();
  if (!process.env.ORCH_SKIP_TYPECHECK) {
    say('typecheck (tsc --noEmit, strict)');
    const code = await run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit']);
    if (code !== 0) {
      say('typecheck failed');
      return code;
    }
  }
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
  try {
    say('bundling workflows');
    const bundle = await bundleWorkflowCode({ workflowsPath: path.join(root, 'test/support/test-workflows.ts'), logger: undefined });
    const bundlePath = path.join(work, 'workflow-bundle.js');
    fs.writeFileSync(bundlePath, bundle.code);
    // --soak: the heavy fault and kill loops (npm run test:soak); otherwise the given files, or the whole suite.
    const soak = args.includes('--soak');
    const named = args.filter((a) => a !== '--soak');
    const files = named.length ? [...named, 'test/replay/replay-histories.test.ts'] : listTests(soak ? ['test/soak'] : ['test/unit', 'test/integration', 'test/e2e']);
    if (files.some((f) => f.startsWith('test/e2e'))) {
      // The end-to-end test drives the Temporal UI in Debian's Chromium: get it if this machine has none.
      const code = await run('bash', [path.join(root, 'infra/get-chromium.sh')], { ...process.env });
      if (code !== 0) say('no Chromium: the end-to-end test will fail with chromium_missing');
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ORCH_TEST_TEMPORAL_ADDRESS: server.address,
      ORCH_TEST_WORKFLOW_BUNDLE: bundlePath,
      ORCH_TEMPORAL_CLI: cli.path,
      ORCH_TEST_WORK_DIR: work,
    };
    // Never let a developer's own Temporal or Claude settings leak into the suite.
    for (const k of ['TEMPORAL_ADDRESS', 'TEMPORAL_PROFILE', 'TEMPORAL_CONFIG_FILE', 'TEMPORAL_NAMESPACE', 'ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL', 'ORCH_HOME']) delete env[k];
    const code = await run(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], env);
    say(`done in ${Math.round((Date.now() - started) / 1000)} s`);
    return code;
  } finally {
    await server.stop();
    if (!process.env.ORCH_KEEP_TEST_DIR) fs.rmSync(work, { recursive: true, force: true });
  }
}
