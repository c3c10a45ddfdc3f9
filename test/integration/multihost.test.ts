/**
 * Several hosts on one machine (issue 7): a test network of Linux namespaces (test/support/netns.ts) with two
 * relays and three agents, each in a namespace of its own and started as the real program the README tells a
 * user to run (`orch-relay start`, `orch-agent enroll`, `orch-agent run`), and the desktop side here: the
 * `orch relay add` / `orch agent add --relay` commands, and a real Orch worker (on the suite's Temporal dev
 * server, on loopback) whose command transport is the one `orch up` builds (connectRelayTransports). The
 * desktop's relay connections leave from a "desktop" host of the network (forwardToLoopback), so its traffic
 * crosses the same bridge as the agents'.
 *
 *   desktop ─┐            ┌─ agent-1 ┐
 *            ├─ bridge ───┤─ agent-2 ├── relay-a ("edge-a": agent-1, agent-2)
 *            │            └─ agent-3 ┴── relay-b ("edge-b": agent-3)
 *
 * - a DAG fans a command out to all three agents (through both relays) and collects each one's output, which
 *   names the agent's own address: each ran in its own namespace;
 * - `orch agent list` shows each agent's relay, version and online state from its authenticated pong;
 * - one agent's cable is cut while its command runs: the others' nodes finish meanwhile; its node waits, is
 *   retried as designed (agent_no_answer), and once the cable is back gets the agent's one result: the script
 *   ran once;
 * - with 50 ms on every agent's cable, the fan-out still finishes in bounded time;
 * - relay-b is killed: only agent-3's node fails, with relay_unavailable; agent-1 and agent-2 still run.
 *
 * Needs root (network namespaces): it fails, never skips, without it. The namespaces are deleted at the end,
 * also when a test fails (and by a process-exit hook, and by the next run if this one was SIGKILLed).
 */
import { describe, test, expect, beforeAll, afterAll } from '@jest/globals';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ConnectedRelays } from '../../desktop-worker/relay-pool';
import { keyToHex } from '../../protocol/envelope';
import { ed25519KeyPair, x25519KeyPair } from '../../protocol/primitives';
import { statusQuery, type RunResult, type RunStatus } from '../../workflows/shared';
import { TestApprover } from '../support/approval';
import { COMMAND_TIMEOUT_S, RESULT_GRACE_MS, connectFleet, disconnectFleet, fleetFiles, probeStarts, startApproved, type FleetFiles } from '../support/fleet';
import { eventually, uid, type TestWorker } from '../support/harness';
import { createTestNetwork, type NetHost, type TestNetwork } from '../support/netns';
import { orchAt, scriptAllowlist, startRelayIn as startRelay, type RunningAgent, type RunningRelay } from '../support/multihost';

const AGENTS = ['agent-1', 'agent-2', 'agent-3'] as const;
type AgentName = (typeof AGENTS)[number];
/** Which named relay each agent is enrolled through. */
const RELAY_OF: Record<AgentName, 'edge-a' | 'edge-b'> = { 'agent-1': 'edge-a', 'agent-2': 'edge-a', 'agent-3': 'edge-b' };

let files: FleetFiles;
let script: string;
let network: TestNetwork;
const relays = new Map<'edge-a' | 'edge-b', RunningRelay>();
let agents = new Map<string, RunningAgent>();
const desktop = { sign: ed25519KeyPair(), box: x25519KeyPair() };
const approver = new TestApprover();
let links: ConnectedRelays;
let worker: TestWorker;

/** `orch ...` in this process, as the operator types it, with ORCH_HOME pointing at the test's desktop home. */
const orch = (argv: string[]) => orchAt(files.home, argv);

/** `orch-relay start` inside `host`, bound to the host's address; resolves with the URL and pin it prints. */
function startRelayIn(host: NetHost): Promise<RunningRelay> {
  // The desktop's signing key is the relay's admin key: it has the relay admit each agent it enrolls.
  return startRelay(network, host, { dataDir: path.join(files.work, `relay-${host.name}`), adminKey: keyToHex(desktop.sign.publicKey) });
}

/** One node per agent: the probe script with a marker and a sleep; each prints the marker and its address. */
function fanOut(marker: string, sleepOf: Partial<Record<AgentName, number>> = {}) {
  return {
    name: 'fan-out',
    version: 1,
    cost_cap_usd: 1,
    nodes: AGENTS.map((a) => ({
      id: a.replace('-', '_'),
      type: 'command',
      agent: a,
      argv: [script, `${marker}-${a}`, String(sleepOf[a] ?? 0)],
      timeout_seconds: COMMAND_TIMEOUT_S,
    })),
  };
}

const nodeOf = (a: AgentName) => a.replace('-', '_');

/** The lines the probe wrote when it started with this marker: one per run. */
const starts = (marker: string): string[] => probeStarts(files.traceFile, marker);

/** Starts the DAG behind an approval gate that the test approver approves (the probe is not read-only). */
const start = (dag: { nodes: Array<{ id: string; type: string }> }): Promise<WorkflowHandle> => startApproved(worker, approver, dag, 'multihost');

/** The attempt that completed the runCommand activity of one agent's node (from the run's history). */
async function commandAttempt(handle: WorkflowHandle, agent: AgentName): Promise<number | undefined> {
  const history = await handle.fetchHistory();
  const mine = new Set<string>();
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    const payload = s?.input?.payloads?.[0]?.data;
    if (s?.activityType?.name === 'runCommand' && payload && JSON.parse(Buffer.from(payload).toString('utf8')).agent === agent) mine.add(String(e.eventId));
    const started = e.activityTaskStartedEventAttributes;
    if (started && mine.has(String(started.scheduledEventId))) return started.attempt ?? undefined;
  }
  return undefined;
}

async function nodeStates(handle: WorkflowHandle): Promise<Record<string, RunStatus['nodes'][number]>> {
  const s = await handle.query(statusQuery);
  return Object.fromEntries(s.nodes.map((n) => [n.id, n]));
}

beforeAll(async () => {
  // The probe: one trace line when it starts, an optional sleep, then the marker and the host's address on the
  // test network (it runs in the agent's namespace, so eth0 is that agent's own cable).
  files = fleetFiles('orch-multihost-', '$1 $(/usr/sbin/ip -o -4 addr show dev eth0)');
  script = files.script;
  const allow = scriptAllowlist(path.join(files.work, 'allow.yaml'), script);

  network = await createTestNetwork();
  const desktopHost = await network.addHost('desktop');
  const [relayA, relayB] = await Promise.all([network.addHost('relay-a'), network.addHost('relay-b')]);
  const agentHosts = [] as NetHost[];
  for (const a of AGENTS) agentHosts.push(await network.addHost(a));

  const [a, b] = await Promise.all([startRelayIn(relayA), startRelayIn(relayB)]);
  relays.set('edge-a', a);
  relays.set('edge-b', b);

  // The operator names and pins each relay on the desktop (which reaches them from its own host of the network),
  // enrolls and adds each agent; then the worker as `orch up` builds it.
  ({ links, worker, agents } = await connectFleet({
    network,
    desktopHost,
    files,
    desktop,
    approver,
    relays,
    agents: AGENTS.map((name, i) => ({ name, host: agentHosts[i]!, relay: RELAY_OF[name] })),
    allow,
  }));
}, 240_000);

afterAll(async () => {
  // The namespaces must go even if stopping the worker fails.
  await disconnectFleet({ worker, links });
  await network?.teardown();
  if (files) fs.rmSync(files.work, { recursive: true, force: true });
}, 60_000);

describe('several hosts on one machine, through named relays', () => {
  test('the relays and agents as the operator sees them: orch relay list, orch agent list', async () => {
    const relaysListed = await orch(['relay', 'list', '--json']);
    assert.equal(relaysListed.code, 0, relaysListed.stderr);
    const byRelay = Object.fromEntries((JSON.parse(relaysListed.stdout) as Array<{ name: string; agents: number; pin: string }>).map((r) => [r.name, r]));
    expect(byRelay['edge-a']?.agents).toBe(2);
    expect(byRelay['edge-b']?.agents).toBe(1);
    expect(byRelay['edge-a']?.pin).toBe(relays.get('edge-a')!.pin);

    // The worker's heartbeat pings every agent through its relay; each authenticated pong lands in agents.sqlite.
    const rows = await eventually(async () => {
      const listed = await orch(['agent', 'list', '--json']);
      const parsed = JSON.parse(listed.stdout) as Array<{ name: string; relay: string; online: boolean; agentVersion: string | null; reportedTier: string | null; tier: string }>;
      return parsed.length === 3 && parsed.every((r) => r.online && r.agentVersion) ? parsed : undefined;
    }, 30_000, 'every agent to answer a heartbeat ping');
    for (const r of rows) {
      expect(r.relay).toBe(RELAY_OF[r.name as AgentName]);
      expect(r.tier).toBe('infrastructure');
      expect(r.reportedTier).toBe('infrastructure');
    }
    const text = await orch(['agent', 'list']);
    expect(text.stdout).toMatch(/^agent-3\s+infrastructure\s+online \(.*\)\s+edge-b\s+\S+\s+\S+\s+\S+\s+SHA256:/m);
  });

  test('a DAG fans a command out to all three agents, through both relays, and collects their outputs', async () => {
    const marker = uid('fan').toLowerCase();
    const handle = await start(fanOut(marker));
    const result = (await handle.result()) as RunResult;
    expect(result.state).toBe('succeeded');
    for (const a of AGENTS) {
      const output = result.outputs[nodeOf(a)] as string;
      // Each ran in its own namespace: the address in its output is that agent's own.
      expect(output).toContain(`${marker}-${a} `);
      expect(output).toContain(`inet ${network.host(a).ip}/24`);
      expect(starts(`${marker}-${a}`)).toHaveLength(1);
    }
  });

  test("one agent's cable is cut during its command: the others finish meanwhile; its node is retried and gets the one result", async () => {
    const marker = uid('cut').toLowerCase();
    const cut = agents.get('agent-2')!;
    const handle = await start(fanOut(marker, { 'agent-2': 2 }));
    await eventually(async () => starts(`${marker}-agent-2`).length > 0, 30_000, 'agent-2 to start its command');
    await network.linkDown(cut.host);
    let cutFor = 0;
    try {
      // While agent-2 is cut off, the other agents' nodes finish.
      const meanwhile = await eventually(async () => {
        const nodes = await nodeStates(handle);
        return nodes.agent_1?.state === 'succeeded' && nodes.agent_3?.state === 'succeeded' ? nodes : undefined;
      }, 30_000, 'agent-1 and agent-3 to finish while agent-2 is cut off');
      expect(meanwhile.agent_2?.state).toBe('running');
      // Past the command's timeout and the result grace: the first attempt gives up (agent_no_answer, retried).
      const cutAt = Date.now();
      await new Promise((r) => setTimeout(r, (COMMAND_TIMEOUT_S * 1000 + RESULT_GRACE_MS) + 3_000));
      cutFor = Date.now() - cutAt;
      expect((await nodeStates(handle)).agent_2?.state).toBe('running');
    } finally {
      await network.linkUp(cut.host);
    }
    const result = (await handle.result()) as RunResult;
    expect(result.state).toBe('succeeded');
    expect(result.outputs.agent_2).toContain(`${marker}-agent-2 `);
    expect(result.outputs.agent_2).toContain(`inet ${cut.host.ip}/24`);
    // The first attempt gave up while the cable was cut; a retry got the result from the agent's ledger (or the
    // late envelope itself): the script started once.
    expect(cutFor).toBeGreaterThan(COMMAND_TIMEOUT_S * 1000);
    expect(await commandAttempt(handle, 'agent-2')).toBeGreaterThanOrEqual(2);
    expect(await commandAttempt(handle, 'agent-1')).toBe(1);
    expect(starts(`${marker}-agent-2`)).toHaveLength(1);
  });

  test('with 50 ms added on every agent cable, the fan-out still finishes in bounded time', async () => {
    for (const a of AGENTS) await network.setDelay(agents.get(a)!.host, 50);
    try {
      const marker = uid('slow').toLowerCase();
      const began = Date.now();
      const handle = await start(fanOut(marker));
      const result = (await handle.result()) as RunResult;
      const took = Date.now() - began;
      expect(result.state).toBe('succeeded');
      for (const a of AGENTS) expect(result.outputs[nodeOf(a)]).toContain(`${marker}-${a} `);
      // Each command is one sealed round trip per agent (plus Temporal's own work on loopback); 15 s is a wide bound.
      expect(took).toBeLessThan(15_000);
    } finally {
      for (const a of AGENTS) await network.setDelay(agents.get(a)!.host, 0);
    }
  });

  test("a relay that is down fails only its own agents' commands, with relay_unavailable", async () => {
    const b = relays.get('edge-b')!;
    await new Promise<void>((resolve) => {
      b.child.once('exit', () => resolve());
      b.child.kill('SIGKILL');
    });
    await eventually(async () => links.relays().find((r) => r.name === 'edge-b')?.connected === false, 30_000, 'the desktop to notice edge-b is gone');
    const marker = uid('down').toLowerCase();
    const handle = await start(fanOut(marker));
    const failure = await handle.result().then(
      () => assert.fail('agent-3 is unreachable: the run must fail'),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof WorkflowFailedError, String(failure));
    const nodes = await nodeStates(handle);
    expect(nodes.agent_1?.state).toBe('succeeded');
    expect(nodes.agent_2?.state).toBe('succeeded');
    expect(nodes.agent_3?.error?.type).toBe('relay_unavailable');
    expect(starts(`${marker}-agent-3`)).toHaveLength(0);
  });
});
