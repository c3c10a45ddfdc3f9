/**
 * A real Go agent process behind a pipe instead of a relay (`orch-agent run --stdio`: the same handler, ledger,
 * policy and executor as behind the relay, one base64 envelope per line each way), and the desktop's
 * RelayCommandTransport attached to it. For tests about what runs on the agent, not about the relay.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import assert from './assert';
import { agentBinary, startAgentProcess } from './agent-binary';
import { AgentRegistry, RelayState, type AgentTier } from '../../desktop-worker/agent-registry';
import { RelayCommandTransport, type RelayLink } from '../../desktop-worker/agent-transport';
import { ed25519KeyPair, x25519KeyPair, type BoxKeyPair, type SignKeyPair } from '../../protocol/primitives';

export interface DesktopKeys {
  sign: SignKeyPair;
  box: BoxKeyPair;
}

export interface EnrolledAgent {
  stateDir: string;
  signKey: string;
  boxKey: string;
}

export interface AgentProc extends EnrolledAgent {
  child: ChildProcessWithoutNullStreams;
  stderr(): string;
  stop(): Promise<void>;
}

export function runAgentCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(agentBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** `orch-agent enroll` into `stateDir` with this allowlist, pinned to the desktop's keys. */
export async function enrollAgent(desktop: DesktopKeys, stateDir: string, allowlist: string, tier = 'standard'): Promise<EnrolledAgent> {
  fs.mkdirSync(path.dirname(stateDir), { recursive: true });
  const allow = `${stateDir}.allow.yaml`;
  fs.writeFileSync(allow, allowlist);
  const enrolled = await runAgentCli([
    'enroll',
    '--relay', 'wss://127.0.0.1:9/v1/relay',
    '--relay-pin', `sha256/${Buffer.alloc(32).toString('base64')}`,
    '--desktop', desktop.sign.publicKey.toString('hex'),
    '--desktop-box-key', desktop.box.publicKey.toString('hex'),
    '--tier', tier,
    '--allow', allow,
    '--state-dir', stateDir,
    '--json',
  ]);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  const info = JSON.parse(enrolled.stdout) as { signKey: string; boxKey: string };
  return { stateDir, signKey: info.signKey, boxKey: info.boxKey };
}

/** `orch-agent run --stdio`, resolved once the agent logs that it is ready. */
export async function startStdioAgent(enrolled: EnrolledAgent): Promise<AgentProc> {
  const { child, stderr } = await startAgentProcess(['run', '--stdio', '--state-dir', enrolled.stateDir]);
  return {
    child,
    ...enrolled,
    stderr,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin.end();
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** Where the relay would be: a pipe to the agent. Records every wire the agent sent back, for replay tests. */
export class PipeLink implements RelayLink {
  connected = true;
  readonly delivered: Buffer[] = [];
  private readonly lines: readline.Interface;

  constructor(
    private readonly agent: AgentProc,
    onEnvelope: (wire: Buffer) => void,
  ) {
    this.lines = readline.createInterface({ input: agent.child.stdout });
    this.lines.on('line', (line) => {
      const wire = Buffer.from(line.trim(), 'base64');
      this.delivered.push(wire);
      onEnvelope(wire);
    });
  }

  async send(wire: Buffer): Promise<void> {
    if (!this.connected) throw Object.assign(new Error('not connected'), { code: 'relay_unavailable' });
    this.agent.child.stdin.write(`${wire.toString('base64')}\n`);
  }

  /** Stop listening (a desktop that went away); the agent keeps running. */
  close(): void {
    this.connected = false;
    this.lines.close();
  }
}

/** A transport in `home` (its agent registry and relay state) wired to `agent` through a pipe. */
export function pipeTransport(desktop: DesktopKeys, home: string, agent: AgentProc): { transport: RelayCommandTransport; link: PipeLink; close(): void } {
  const registry = AgentRegistry.open(home);
  const state = RelayState.open(home);
  const transport = new RelayCommandTransport({ identity: desktop, registry, state, resultGraceMs: 10_000 });
  const link = new PipeLink(agent, (w) => transport.handleEnvelope(w));
  transport.attach(link);
  return {
    transport,
    link,
    close() {
      transport.close();
      link.close();
      registry.close();
      state.close();
    },
  };
}

export interface PipeAgentOptions {
  /** The desktop's home: the agent is added to its registry and the transport uses its relay state. */
  home: string;
  /** The tenants the agent serves. */
  tenants: string[];
  /** Executables the agent's allowlist lets run with any arguments. */
  allow: string[];
  /** Its name in the registry, which DAG nodes use. */
  name?: string;
  tier?: AgentTier;
  /** The desktop keys the agent is pinned to; a fresh pair if not given. */
  desktop?: DesktopKeys;
  /** Where the agent keeps its state; `<home>/agent-state` if not given. */
  stateDir?: string;
}

export interface PipeAgent {
  agent: AgentProc;
  transport: RelayCommandTransport;
  link: PipeLink;
  /** Closes the transport and the pipe, then stops the agent. */
  close(): Promise<void>;
}

/**
 * The whole setup of a test that runs commands on a real Go agent without a relay: enrolls the agent with an
 * allowlist, adds it to `home`'s registry, starts it over a pipe and attaches a transport to it.
 *
 * @example const pipe = await startPipeAgent({ home, tenants: ['t'], allow: ['echo'] }); // commands: pipe.transport
 */
export async function startPipeAgent(o: PipeAgentOptions): Promise<PipeAgent> {
  const desktop = o.desktop ?? { sign: ed25519KeyPair(), box: x25519KeyPair() };
  const tier = o.tier ?? 'standard';
  const allowlist = `version: 1\ncommands:\n${o.allow.map((e) => `  - executable: ${e}\n    rest: any\n`).join('')}`;
  const enrolled = await enrollAgent(desktop, o.stateDir ?? path.join(o.home, 'agent-state'), allowlist, tier);
  const registry = AgentRegistry.open(o.home);
  try {
    registry.add({ name: o.name ?? 'web-1', signKeyHex: enrolled.signKey, boxKeyHex: enrolled.boxKey, tier, tenants: o.tenants });
  } finally {
    registry.close();
  }
  const agent = await startStdioAgent(enrolled);
  const pipe = pipeTransport(desktop, o.home, agent);
  return {
    agent,
    transport: pipe.transport,
    link: pipe.link,
    async close() {
      pipe.close();
      await agent.stop();
    },
  };
}
