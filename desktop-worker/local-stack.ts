/**
 * The relay and the agent that `orch up` runs on this machine, so a DAG's command nodes work out of the box:
 * a relay (TLS, self-signed certificate pinned by its SPKI hash) on 127.0.0.1, configured as the named relay
 * "local", and an agent "local" enrolled through it with this desktop's keys and a read-only allowlist
 * (desktop-worker/demo/local-agent-allow.yaml), running as a child process: the Go agent binary, built from agent/
 * and cached on first use (infra/agent-binary.ts; ORCH_AGENT_BIN names another). The worker reaches it like any other
 * relay (agent-transport.ts connectRelayTransports): commands travel sealed desktop -> relay -> agent and back,
 * exactly as to a remote server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveAgentBinary } from '../infra/agent-binary';
import { keyToHex } from '../protocol/envelope';
import { startRelay, type RunningRelay } from '../relay/main';
import { auditAgentChange } from './agent-audit';
import { AgentRegistry } from './agent-registry';
import type { DesktopIdentity } from './identity';
import { ensurePrivateDir } from '../infra/paths';
import { createLogger, eventSink, logFile } from '../infra/log';
import { LOCAL_RELAY, RelayRegistry } from './relay-registry';
import { OrchError } from '../protocol/errors';
import { Env } from '../infra/settings';

export const LOCAL_AGENT = 'local';
const LOCAL_ALLOWLIST = fileURLToPath(new URL('./demo/local-agent-allow.yaml', import.meta.url));

type Out = { log: (line: string) => void; err: (line: string) => void };

export interface LocalStack {
  relay: RunningRelay;
  stop(): Promise<void>;
}

function runAgentCli(agentBin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(agentBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => resolve({ code: 1, stdout, stderr: `${stderr}could not start ${agentBin}: ${err.message}` }));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export async function startLocalStack(opts: {
  home: string;
  identity: DesktopIdentity;
  relayPort: number;
  out: Out;
  /** The agent binary, when the caller resolved it already (`orch up` does so while it reads the keychain). */
  agentBin?: string;
}): Promise<LocalStack> {
  const { home, identity, out } = opts;
  // Before the relay starts: a missing Go toolchain fails here with what to install, and nothing is left running.
  const agentBin = opts.agentBin ?? (await resolveAgentBinary({ log: out.log }));
  const relayLog = eventSink(createLogger({ component: 'relay', file: logFile(home, 'relay.log') }));
  const relay = await startRelay({
    host: '127.0.0.1',
    port: opts.relayPort,
    dataDir: ensurePrivateDir(path.join(home, 'relay')),
    // Admitted keys only, like any relay an operator runs: this desktop is its admin, and the worker has it admit
    // the local agent (agent-transport.ts RelayPool) when it connects.
    admission: { adminKeys: [keyToHex(identity.sign.publicKey)] },
    log: relayLog,
  }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EADDRINUSE') throw err;
    throw new OrchError(
      'relay_port_in_use',
      `port ${opts.relayPort} (the local relay) is in use on 127.0.0.1: stop what listens there, set ${Env.relayPort}, or run \`orch up --no-local-agent\``,
    );
  });

  // Enroll (again: it keeps the agent's identity and refreshes the relay pin and the desktop's keys).
  const stateDir = ensurePrivateDir(path.join(home, 'agent'));
  const enrolled = await runAgentCli(agentBin, [
    'enroll',
    '--state-dir', stateDir,
    '--relay', relay.url,
    '--relay-pin', relay.pin,
    '--desktop', keyToHex(identity.sign.publicKey),
    '--desktop-box-key', keyToHex(identity.box.publicKey),
    '--tier', 'read-only',
    '--allow', LOCAL_ALLOWLIST,
    '--json',
  ]);
  if (enrolled.code !== 0) {
    await relay.stop();
    throw new Error(`could not enroll the local agent: ${enrolled.stderr.trim() || enrolled.stdout.trim()}`);
  }
  const agentKeys = JSON.parse(enrolled.stdout) as { signKey: string; boxKey: string };
  // The relay as the named relay "local" (its URL changes with ORCH_RELAY_PORT; its pin stays with the data dir).
  const relays = RelayRegistry.open(home);
  try {
    const { change } = relays.upsert({ name: LOCAL_RELAY, url: relay.url, pin: relay.pin });
    if (change !== 'none') await auditAgentChange(home, 'add_relay', LOCAL_RELAY, { url: relay.url, pin: relay.pin, by: 'orch up', change });
  } finally {
    relays.close();
  }
  const registry = AgentRegistry.open(home);
  try {
    const existing = registry.get(LOCAL_AGENT);
    const same = existing && keyToHex(existing.signPublicKey) === agentKeys.signKey && keyToHex(existing.boxPublicKey) === agentKeys.boxKey;
    if (existing && !same) registry.remove(LOCAL_AGENT);
    if (!same) {
      registry.add({ name: LOCAL_AGENT, signKeyHex: agentKeys.signKey, boxKeyHex: agentKeys.boxKey, tier: 'read-only', allowlist: fs.readFileSync(LOCAL_ALLOWLIST, 'utf8'), relay: LOCAL_RELAY });
      await auditAgentChange(home, 'enroll_agent', LOCAL_AGENT, { tier: 'read-only', signKey: agentKeys.signKey, relay: LOCAL_RELAY, by: 'orch up' });
    } else if (existing.relay !== LOCAL_RELAY) {
      registry.setRelay(LOCAL_AGENT, LOCAL_RELAY);
    }
  } finally {
    registry.close();
  }

  const agentLog = fs.openSync(path.join(home, 'logs', 'agent.log'), 'a', 0o600);
  const agent: ChildProcess = spawn(agentBin, ['run', '--state-dir', stateDir], { stdio: ['ignore', agentLog, agentLog] });
  const agentExited = new Promise<void>((resolve) => agent.once('exit', () => resolve()));
  // `orch up` ending without stop() (process.exit: its launcher died, or a crash) takes the agent with it, as the dev
  // server's own hook does; else the agent would run on, calling a relay that is gone.
  const killAgent = () => {
    if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
  };
  process.on('exit', killAgent);
  out.log(`relay "${LOCAL_RELAY}" on ${relay.url} (pin ${relay.pin}), agent "${LOCAL_AGENT}" (read-only) running`);

  return {
    relay,
    async stop() {
      process.off('exit', killAgent);
      if (agent.exitCode === null && agent.signalCode === null) {
        agent.kill('SIGTERM');
        await Promise.race([agentExited, new Promise((r) => setTimeout(r, 5000))]);
        if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
      }
      fs.closeSync(agentLog);
      await relay.stop();
    },
  };
}
