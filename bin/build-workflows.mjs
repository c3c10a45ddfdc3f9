#!/usr/bin/env node
// `npm run build`: prebundles Orch's workflows for production workers, so a worker starts without bundling.
//   npm run build && ORCH_WORKFLOW_BUNDLE=dist/workflow-bundle.js npx orch up
// Rebuild after changing anything under workflows/: a worker runs exactly the code in the bundle it is given.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';
register();
const { bundleWorkflowCode } = await import('@temporalio/worker');
const { WORKFLOWS_PATH } = await import('../desktop-worker/plugin.ts');
const root = fileURLToPath(new URL('..', import.meta.url));
const out = path.join(root, 'dist', 'workflow-bundle.js');
const quiet = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} };
const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet });
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, code);
process.stdout.write(`wrote ${path.relative(process.cwd(), out)} (${(code.length / 1024 / 1024).toFixed(2)} MiB): start workers with ORCH_WORKFLOW_BUNDLE=${out}\n`);
