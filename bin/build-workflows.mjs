#!/usr/bin/env node
// `npm run build`: prebundles Orch's production workflows (workflows/index.ts: registered, signed DAGs only) and
// signs the bundle with this desktop's Ed25519 key (from the OS keychain; ORCH_HOME picks the identity), so a
// worker starts without bundling and loads nothing this desktop did not sign.
//   npm run build && ORCH_WORKFLOW_BUNDLE=dist/workflow-bundle.js npx orch up
// Writes dist/workflow-bundle.js and dist/workflow-bundle.js.sig (or --out FILE and FILE.sig). Rebuild after
// changing anything under workflows/: a worker runs exactly the code in the bundle it is given, and refuses a
// bundle whose bytes no longer match the signature.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

const usage = 'usage: npm run build [-- --out FILE]   bundle workflows/index.ts and sign it with this desktop\'s key (ORCH_HOME)';
let values;
try {
  ({ values } = parseArgs({ options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
} catch (err) {
  process.stderr.write(`build-workflows: ${err.message}\n${usage}\n`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
register();
const { bundleWorkflowCode } = await import('@temporalio/worker');
const { WORKFLOWS_PATH, WORKFLOW_PRELOAD_MODULES } = await import('../desktop-worker/plugin.ts');
const { signWorkflowBundle, workflowBundleSignaturePath } = await import('../desktop-worker/dag-signing.ts');
const { loadDesktopIdentity } = await import('../desktop-worker/identity.ts');
const { ed25519CheckpointSigner } = await import('../protocol/audit-chain.ts');
const { orchHome } = await import('../infra/paths.ts');

const root = fileURLToPath(new URL('..', import.meta.url));
const out = path.resolve(values.out ?? path.join(root, 'dist', 'workflow-bundle.js'));
let identity;
try {
  identity = await loadDesktopIdentity({ home: orchHome() });
} catch (err) {
  process.stderr.write(`build-workflows: cannot sign the bundle: ${err.message}\n`);
  process.exit(1);
}
const quiet = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} };
// With the encoding failure converter, so failures made in workflow code are encrypted by the payload codec.
const { FAILURE_CONVERTER_PATH } = await import('../desktop-worker/payload-codec.ts');
const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, failureConverterPath: FAILURE_CONVERTER_PATH, preloadModules: [...WORKFLOW_PRELOAD_MODULES], logger: quiet });
const signature = signWorkflowBundle(ed25519CheckpointSigner(identity.sign), Buffer.from(code, 'utf8'));
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, code);
fs.writeFileSync(workflowBundleSignaturePath(out), `${JSON.stringify(signature)}\n`);
const shown = path.relative(process.cwd(), out) || out;
process.stdout.write(
  `wrote ${shown} (${(code.length / 1024 / 1024).toFixed(2)} MiB) and ${shown}.sig, signed by ${identity.fingerprint}: start workers with ORCH_WORKFLOW_BUNDLE=${out}\n`,
);
