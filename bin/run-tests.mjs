#!/usr/bin/env node
// `npm test`: typecheck, start one real Temporal dev server for the suite, run every test file against it.
// On Linux the suite runs inside its own fresh, unlocked Secret Service (infra/ci-keyring.sh): the keychain tests
// use a real OS keychain, and never the developer's own.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

if (process.platform === 'linux' && process.env.ORCH_CI_KEYRING !== '1') {
  const script = fileURLToPath(new URL('../infra/ci-keyring.sh', import.meta.url));
  const child = spawn('bash', [script, process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  const { runTests } = await import('../test/run.ts');
  process.exitCode = await runTests(process.argv.slice(2));
}
