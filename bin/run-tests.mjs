#!/usr/bin/env node
// `npm test`: jest (jest.config.mjs) over the whole suite: typecheck, one real Temporal dev server, every test file.
// On Linux the suite runs inside its own fresh, unlocked Secret Service (infra/ci-keyring.sh): the keychain tests
// use a real OS keychain, and never the developer's own.
//   npm test                         the suite (unit, integration, e2e, replay last)
//   npm test -- test/unit/x.test.ts  some files (any jest arguments pass through)
//   npm run test:soak                the soak, fault and kill loops (test/soak) in their long form; npm test runs
//                                    them short (a few kills each)
//   npm run coverage                 the suite with coverage (in-process code only)
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childEnv, launcherSetting } from './launcher-env.mjs';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`usage: npm test [-- JEST_ARGS...]   run the suite under jest (see jest.config.mjs)
       npm run test:soak              the soak, fault and kill loops (test/soak), long form (npm test runs them short)
       npm run coverage               the suite with a coverage summary
  Environment: ORCH_SKIP_TYPECHECK=1 skips tsc; ORCH_KEEP_TEST_DIR=1 keeps the suite's scratch folder;
               ORCH_SOAK_KILLS=N sets the kill count of each soak test, in either form.
`);
  process.exit(0);
}

if (process.platform === 'linux' && launcherSetting('ORCH_CI_KEYRING') !== '1') {
  const script = fileURLToPath(new URL('../infra/ci-keyring.sh', import.meta.url));
  const child = spawn('bash', [script, process.execPath, fileURLToPath(import.meta.url), ...args], { stdio: 'inherit' });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  const soak = args.includes('--soak');
  const jestArgs = args.filter((a) => a !== '--soak');
  const jest = fileURLToPath(new URL('../node_modules/jest/bin/jest.js', import.meta.url));
  const env = childEnv(soak ? { ['ORCH_SOAK']: '1' } : {});
  // jest runs ESM test files only under --experimental-vm-modules; its workers inherit the flag through execArgv.
  const child = spawn(process.execPath, ['--experimental-vm-modules', '--disable-warning=ExperimentalWarning', jest, ...jestArgs], { stdio: 'inherit', env });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
