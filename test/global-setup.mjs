// jest's global setup for the integration and soak projects: test/suite-setup.ts does the work (loaded through
// tsx, as the CLIs are). The handle stays on globalThis for test/global-teardown.mjs (same process).
import os from 'node:os';
import path from 'node:path';
import { tsImport } from 'tsx/esm/api';

export default async function globalSetup(globalConfig) {
  const { setUpSuite } = await tsImport('./suite-setup.ts', import.meta.url);
  // Chromium is only fetched when the run includes the end-to-end test (or runs everything).
  const patterns = globalConfig.testPathPatterns?.patterns ?? globalConfig.testPathPattern ?? [];
  const list = Array.isArray(patterns) ? patterns : [String(patterns)];
  const all = list.length === 0 || list.every((p) => p === '');
  const e2e = all || list.some((p) => /e2e/.test(String(p)));
  // The time-skipping Temporal server (test/support/timeskip-server-binary.ts) likewise, for gate-24h.test.ts.
  const timeskip = process.env.ORCH_SOAK !== '1' && (all || list.some((p) => /gate-24h/.test(String(p))));
  globalThis.__orchSuite = await setUpSuite({ e2e, timeskip });
  // In a whole run the Go agent's checks (test/support/go-checks.ts) start now, in this process, beside the tests;
  // test/unit/go-agent.test.ts (ordered late) asserts on their results. A run of that file alone runs them inline.
  if (all && process.env.ORCH_SOAK !== '1') {
    const { runGoChecksInto, GO_CHECKS_DIR_ENV } = await tsImport('./support/go-checks.ts', import.meta.url);
    const dir = path.join(process.env.ORCH_TEST_WORK_DIR ?? os.tmpdir(), 'go-checks');
    const abort = new AbortController();
    process.env[GO_CHECKS_DIR_ENV] = dir;
    process.stdout.write(`[test] Go agent checks (vet, gofmt, go test -race, fuzz) started in the background: ${dir}\n`);
    const done = runGoChecksInto(dir, abort.signal);
    globalThis.__orchGoChecks = { abort, done };
  }
}
