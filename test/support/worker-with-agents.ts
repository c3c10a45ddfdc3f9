/**
 * The Orch worker as `orch up` builds it (startOrchWorker with the tenant store opened through the keychain
 * identity, and the sealed relay transport as its command transport), but as a process of its own, so a fault
 * test can SIGKILL the worker while the relay and the agent live on. Usage:
 *   node --import tsx test/support/worker-with-agents.ts ADDRESS TASK_QUEUE ORCH_HOME BUNDLE_PATH RELAY_URL RELAY_PIN [RESULT_GRACE_MS]
 * ORCH_HOME must hold a desktop identity (its private keys in the OS keychain) and the enrolled agents
 * (agents.sqlite). RESULT_GRACE_MS shortens how long a command waits past its own timeout for the agent's
 * answer (default: the product's), so a test of a dead agent does not wait half a minute for the retry.
 * Prints "worker ready" once logged in to the relay and polling.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ed25519CheckpointSigner } from '../../protocol/audit-chain';
import { connectRelayTransport } from '../../desktop-worker/agent-transport';
import { loadConfig } from '../../desktop-worker/config';
import { signWorkflowBundle, workflowBundleSignaturePath } from '../../desktop-worker/dag-signing';
import { loadDesktopIdentity } from '../../desktop-worker/identity';
import { openTenantStore } from '../../desktop-worker/tenant-access';
import { startOrchWorker } from '../../desktop-worker/worker';

const [address, taskQueue, home, bundlePath, relayUrl, relayPin, graceArg] = process.argv.slice(2);
if (!address || !taskQueue || !home || !bundlePath || !relayUrl || !relayPin) {
  process.stderr.write('usage: worker-with-agents.ts ADDRESS TASK_QUEUE ORCH_HOME BUNDLE_PATH RELAY_URL RELAY_PIN [RESULT_GRACE_MS]\n');
  process.exit(2);
}

const identity = await loadDesktopIdentity({ home });
// The production worker loads only a bundle its desktop key signed (as `npm run build` does): the tests' bundle
// (with runDag) is signed here by this home's identity, in a copy of its own so workers of other homes don't race.
const signedBundle = path.join(home, 'workflow-bundle.js');
const code = fs.readFileSync(bundlePath);
fs.writeFileSync(signedBundle, code);
fs.writeFileSync(workflowBundleSignaturePath(signedBundle), JSON.stringify(signWorkflowBundle(ed25519CheckpointSigner(identity.sign), code)));
const config = loadConfig({
  ...process.env,
  ORCH_HOME: home,
  ORCH_TASK_QUEUE: taskQueue,
  ORCH_WORKFLOW_BUNDLE: signedBundle,
  TEMPORAL_ADDRESS: address,
});
const store = await openTenantStore(home);
const link = await connectRelayTransport({
  home,
  identity,
  relay: { url: relayUrl, pin: relayPin },
  heartbeatMs: 0,
  waitMs: 15_000,
  ...(graceArg ? { resultGraceMs: Number(graceArg) } : {}),
});
if (!link.connected) {
  process.stderr.write(`worker could not log in to the relay: ${JSON.stringify(link.startError)}\n`);
  process.exit(1);
}
const worker = await startOrchWorker(config, { address }, 'default', store, link.transport);
process.on('SIGTERM', () => void worker.stop());
process.stdout.write('worker ready\n');
await worker.running;
await link.close();
