#!/usr/bin/env node
// `npm test`: typecheck, start one real Temporal dev server for the suite, run every test file against it.
import { register } from 'tsx/esm/api';
register();
const { runTests } = await import('../test/run.ts');
process.exitCode = await runTests(process.argv.slice(2));
