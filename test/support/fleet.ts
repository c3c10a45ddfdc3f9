/**
 * The desktop side of a fleet test (test/integration/multihost.test.ts, multihost-faults.test.ts): a desktop home,
 * a probe script whose every start leaves a line in a trace file, the relays named and pinned with `orch relay add`,
 * the agents enrolled with `orch-agent enroll` and `orch agent add`, the worker's command transport over every relay
 * (as `orch up` builds it), the agents running, a test worker with the gate context, and an approver `tester` in
 * tenant `t` whose signed approval starts each run's commands.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { addApprover } from '../../desktop-worker/approvers';
import { connectRelayTransports, type ConnectedRelays } from '../../desktop-worker/relay-pool';
import { approveGate, gateCommands, gateContextDep, type TestApprover } from './approval';
import { startTestWorker, uid, type TestWorker } from './harness';
import { RELAY_PORT, enrollAgentIn, orchAt, startAgentIn, type Desktop, type RunningAgent, type RunningRelay } from './multihost';
import type { NetHost, TestNetwork } from './netns';

/** A command's own timeout in fleet DAGs, and how long past it the desktop waits for the result before the activity retries. */
export const COMMAND_TIMEOUT_S = 5;
export const RESULT_GRACE_MS = 2_000;

export interface FleetFiles {
  work: string;
  /** The desktop's ORCH_HOME. */
  home: string;
  traceFile: string;
  /** The probe: `probe.sh MARKER SLEEP` writes `start MARKER PID` to the trace file, sleeps, then prints `result`. */
  script: string;
}

/** A fresh work folder (readable by the agents' hosts), the desktop home in it, and the probe script. */
export function fleetFiles(prefix: string, result = '$1'): FleetFiles {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(work, 0o755);
  const home = path.join(work, 'desktop-home');
  fs.mkdirSync(home, { mode: 0o700 });
  const traceFile = path.join(work, 'trace.log');
  const script = path.join(work, 'probe.sh');
  fs.writeFileSync(script, `#!/bin/sh\necho "start $1 $$" >> '${traceFile}'\n/bin/sleep "$2"\necho "${result}"\n`, { mode: 0o755 });
  return { work, home, traceFile, script };
}

/** The lines the probe wrote when it started with this marker: one per run of the command. */
export function probeStarts(traceFile: string, marker: string): string[] {
  if (!fs.existsSync(traceFile)) return [];
  return fs.readFileSync(traceFile, 'utf8').split('\n').filter((l) => l.startsWith(`start ${marker} `));
}

export interface FleetDesktop {
  links: ConnectedRelays;
  worker: TestWorker;
  agents: Map<string, RunningAgent>;
}

/**
 * The operator's steps on the desktop, then the worker: each relay named and pinned (reached from the desktop's
 * host through a loopback port), each agent enrolled through its relay and added with `allow` at the infrastructure
 * tier, the desktop logged in to every relay, the agents started, the worker and the approver.
 */
export async function connectFleet(o: {
  network: TestNetwork;
  desktopHost: NetHost;
  files: FleetFiles;
  desktop: Desktop;
  approver: TestApprover;
  relays: ReadonlyMap<string, RunningRelay>;
  agents: ReadonlyArray<{ name: string; host: NetHost; relay: string }>;
  allow: string;
}): Promise<FleetDesktop> {
  const { home, work } = o.files;
  for (const [name, relay] of o.relays) {
    const port = await o.network.forwardToLoopback(o.desktopHost, relay.host.ip, RELAY_PORT);
    const added = await orchAt(home, ['relay', 'add', name, '--url', `wss://127.0.0.1:${port}/v1/relay`, '--pin', relay.pin]);
    assert.equal(added.code, 0, added.stderr);
  }
  for (const a of o.agents) {
    const keys = await enrollAgentIn(o.network, a.host, { stateDir: path.join(work, `state-${a.name}`), relay: o.relays.get(a.relay)!, desktop: o.desktop, allow: o.allow });
    const added = await orchAt(home, ['agent', 'add', a.name, '--key', keys.signKey, '--box-key', keys.boxKey, '--tier', 'infrastructure', '--allow', o.allow, '--relay', a.relay]);
    assert.equal(added.code, 0, added.stderr);
  }
  // The worker as `orch up` builds it: one command transport over every named relay with agents. Logging in, it
  // has each relay admit the agents enrolled through it.
  const links = await connectRelayTransports({ home, identity: o.desktop, waitMs: 15_000, heartbeatMs: 2_000, resultGraceMs: RESULT_GRACE_MS });
  assert.deepEqual(
    links.relays().map((r) => [r.name, r.connected]).sort(),
    [...o.relays.keys()].map((name) => [name, true]).sort(),
    `the desktop logged in to every relay: ${JSON.stringify(links.relays())}`,
  );
  const agents = new Map<string, RunningAgent>();
  for (const a of o.agents) agents.set(a.name, await startAgentIn(o.network, a.host, path.join(work, `state-${a.name}`)));
  const worker = await startTestWorker({ commands: links.transport, ...(await gateContextDep(home)) }, home);
  addApprover('t', 'tester', o.approver.keyHex, { home, actor: 'test' });
  return { links, worker, agents };
}

/** Stops the worker and the relay links, each in its own try: the namespaces must still go if one fails. */
export async function disconnectFleet(d: Partial<FleetDesktop>): Promise<void> {
  try {
    await d.worker?.stop();
  } catch {
    // Reported by the tests themselves.
  }
  try {
    await d.links?.close();
  } catch {
    // idem
  }
}

/**
 * Starts the DAG with an approval gate in front of its commands and approves it with the approver's signed
 * decision: the probe script is not read-only, so the infrastructure agents run it only with an approval.
 */
export async function startApproved(worker: TestWorker, approver: TestApprover, dag: { nodes: Array<{ id: string; type: string }> }, idPrefix: string): Promise<WorkflowHandle> {
  const handle = await worker.client.workflow.start('runDag', { taskQueue: worker.taskQueue, workflowId: uid(idPrefix), args: [{ tenant: 't', dag: gateCommands(dag) }] });
  await approveGate(handle, { tenant: 't', approver });
  return handle;
}
