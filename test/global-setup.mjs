// jest's global setup for the integration and soak projects: test/suite-setup.ts does the work (loaded through
// tsx, as the CLIs are). The handle stays on globalThis for test/global-teardown.mjs (same process).
import { tsImport } from 'tsx/esm/api';

export default async function globalSetup(globalConfig) {
  const { setUpSuite } = await tsImport('./suite-setup.ts', import.meta.url);
  // Chromium is only fetched when the run includes the end-to-end test (or runs everything).
  const patterns = globalConfig.testPathPatterns?.patterns ?? globalConfig.testPathPattern ?? [];
  const list = Array.isArray(patterns) ? patterns : [String(patterns)];
  const e2e = list.length === 0 || list.every((p) => p === '') || list.some((p) => /e2e/.test(String(p)));
  globalThis.__orchSuite = await setUpSuite({ e2e });
}
