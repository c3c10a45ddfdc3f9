// jest's global setup for the integration and soak projects: test/suite-setup.ts does the work (loaded through
// tsx, as the CLIs are). The handle stays on globalThis for test/global-teardown.mjs (same process).
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
}
