/**
 * Interop check between the TypeScript desktop side (protocol/envelope.ts, agent-messages.ts, relay-client.ts,
 * the NestJS relay) and the Go agent binary (ORCH_AGENT_BIN, resolved by the suite's setup): two implementations
 * of protocol/*.md talking to each other.
 *
 * What it checks, each step asserting:
 *   stdio:  enroll; ping -> authenticated pong; a command with shell metacharacters runs literally; the same command id
 *           answered from the ledger (not run again); the same id with another argv refused (command-id-reused); a
 *           replayed envelope, a stale one and one signed by a stranger get no reply; a protected path is refused;
 *           a restart keeps the replay window (the old envelope is still a replay) and the outgoing counter (the
 *           desktop's window accepts the new replies); an agent killed with SIGKILL mid-command answers the same id
 *           `indeterminate` after a restart and does not run it again; `status --json` counts all of it.
 *   relay:  the same agent through a real relay (relay/main.ts startRelay, TLS with its SPKI pin) in both directions.
 */
import { test } from '@jest/globals';
import assert from '../support/assert';
import { agentBinary } from '../support/agent-binary';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { keyToHex, newMsgId, openEnvelope, sealEnvelope, ReplayWindow } from '../../protocol/envelope';
import { decodeMessage, encodeMessage, type AgentMessage, type ResultMessage } from '../../protocol/agent-messages';
import { ed25519KeyPair, x25519KeyPair, type SignKeyPair } from '../../protocol/primitives';

const bin = agentBinary();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-go-interop-'));
const stateDir = path.join(work, 'state');
const desktop = { sign: ed25519KeyPair(), box: x25519KeyPair() };
const stranger = ed25519KeyPair();
let counter = 0n;
const window = new ReplayWindow();
let agentSign: Buffer;
let agentBox: Buffer;

function seal(m: AgentMessage, over: { ts?: number; signer?: SignKeyPair } = {}): Buffer {
  const signer = over.signer ?? desktop.sign;
  return sealEnvelope({
    header: { from: keyToHex(signer.publicKey), to: keyToHex(agentSign), msgId: newMsgId(), counter: ++counter, ts: over.ts ?? Date.now(), type: m.kind },
    body: encodeMessage(m),
    senderSign: signer,
    recipientBoxPublicKey: agentBox,
  });
}

function open(wire: Buffer): AgentMessage {
  const r = openEnvelope(wire, { recipientSignPublicKey: desktop.sign.publicKey, recipientBox: desktop.box, senderSignPublicKey: agentSign, now: Date.now(), window });
  assert.ok(r.ok, r.ok ? '' : `reply rejected by the TypeScript desktop: ${r.reason}`);
  const m = decodeMessage(r.body);
  assert.ok(m && m.kind === r.header.type, 'reply decodes as a message of its header type');
  return m;
}

class StdioAgent {
  child: ChildProcess;
  stderr = '';
  replies: Buffer[] = [];
  waiters: Array<() => void> = [];
  constructor() {
    this.child = spawn(bin, ['run', '--stdio', '--state-dir', stateDir], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      this.waiters.splice(0).forEach((w) => w());
    });
    readline.createInterface({ input: this.child.stdout! }).on('line', (l) => {
      this.replies.push(Buffer.from(l, 'base64'));
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  async until(check: () => boolean, ms = 15000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error(`timeout; agent stderr:\n${this.stderr}`);
      await new Promise<void>((r) => (this.waiters.push(r), setTimeout(r, 50)));
    }
  }
  send(wire: Buffer): void {
    this.child.stdin!.write(`${wire.toString('base64')}\n`);
  }
  async reply(): Promise<AgentMessage> {
    await this.until(() => this.replies.length > 0);
    return open(this.replies.shift()!);
  }
  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin!.end();
    await exited;
  }
}

function status(): { counters: Record<string, number>; commands: Record<string, number> } {
  return JSON.parse(execFileSync(bin, ['status', '--state-dir', stateDir, '--json'], { encoding: 'utf8' }));
}

async function main(): Promise<void> {
  const allow = path.join(work, 'allow.yaml');
  fs.writeFileSync(allow, 'version: 1\ncommands:\n  - executable: echo\n    rest: any\n  - executable: date\n    args: ["+%s%N"]\n  - executable: cat\n    rest: any\n  - executable: sleep\n    args: ["30"]\n');
  const enrolled = JSON.parse(
    execFileSync(bin, ['enroll', '--relay', 'wss://127.0.0.1:9', '--relay-pin', `sha256/${Buffer.alloc(32, 1).toString('base64')}`,
      '--desktop', keyToHex(desktop.sign.publicKey), '--desktop-box-key', keyToHex(desktop.box.publicKey), '--tier', 'standard',
      '--allow', allow, '--state-dir', stateDir, '--json'], { encoding: 'utf8' }),
  );
  agentSign = Buffer.from(enrolled.signKey, 'hex');
  agentBox = Buffer.from(enrolled.boxKey, 'hex');
  for (const f of ['agent-ed25519.key', 'agent-x25519.key', 'agent.json', 'allowlist.yaml']) {
    assert.equal(fs.statSync(path.join(stateDir, f)).mode & 0o777, 0o600, f);
  }
  assert.equal(fs.statSync(stateDir).mode & 0o777, 0o700);
  const checks: string[] = [];

  let agent = new StdioAgent();
  await agent.until(() => agent.stderr.includes('"event":"ready"'));

  agent.send(seal({ kind: 'ping', nonce: 'n-1' }));
  const pong = await agent.reply();
  // A fresh agent: its authenticated counts are zero (orch agent list shows them).
  assert.deepEqual(pong, { kind: 'pong', nonce: 'n-1', agentVersion: pong.kind === 'pong' ? pong.agentVersion : '', tier: 'standard', commandsRun: 0, commandsRefused: 0 });
  checks.push('ping -> pong (with its command counts) opened and decoded by protocol/envelope.ts');

  const hostile = 'hello $(id) ; rm -rf / | `x`';
  const first = seal({ kind: 'command', commandId: 'wf/run/echo', argv: ['echo', hostile], timeoutSeconds: 10 });
  agent.send(first);
  const r1 = (await agent.reply()) as ResultMessage;
  assert.equal(r1.status, 'finished');
  assert.equal(r1.exitCode, 0);
  assert.equal(r1.stdout, `${hostile}\n`);
  checks.push('command result: shell metacharacters printed literally');

  agent.send(seal({ kind: 'command', commandId: 'wf/run/clock', argv: ['date', '+%s%N'], timeoutSeconds: 10 }));
  const c1 = (await agent.reply()) as ResultMessage;
  agent.send(seal({ kind: 'command', commandId: 'wf/run/clock', argv: ['date', '+%s%N'], timeoutSeconds: 10 }));
  const c2 = (await agent.reply()) as ResultMessage;
  assert.equal(c2.stdout, c1.stdout, 'same nanosecond clock: answered from the ledger');
  checks.push('duplicate command id answered from the ledger');

  agent.send(seal({ kind: 'command', commandId: 'wf/run/clock', argv: ['echo', 'other'], timeoutSeconds: 10 }));
  const c3 = (await agent.reply()) as ResultMessage;
  assert.equal(c3.status, 'refused');
  assert.match(c3.reason!, /^command_not_allowed: command-id-reused: /);
  checks.push('command-id-reused refused');

  agent.send(seal({ kind: 'command', commandId: 'wf/run/shadow', argv: ['cat', '/etc/shadow'], timeoutSeconds: 10 }));
  const c4 = (await agent.reply()) as ResultMessage;
  assert.equal(c4.status, 'refused');
  assert.match(c4.reason!, /^command_not_allowed: protected-path: argument 1 .*rule shadow/);
  checks.push('protected path refused, argument named by index');

  const before = status().counters;
  agent.send(first); // replay
  agent.send(seal({ kind: 'ping', nonce: 'stale' }, { ts: Date.now() - 6 * 60 * 1000 }));
  agent.send(seal({ kind: 'ping', nonce: 'forged' }, { signer: stranger }));
  agent.send(Buffer.from('garbage'));
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(agent.replies.length, 0, 'no reply to rejected envelopes');
  await agent.stop();

  // restart: the window and the outgoing counter survive
  agent = new StdioAgent();
  await agent.until(() => agent.stderr.includes('"event":"ready"'));
  agent.send(first);
  agent.send(seal({ kind: 'command', commandId: 'wf/run/echo', argv: ['echo', hostile], timeoutSeconds: 10 }));
  const again = (await agent.reply()) as ResultMessage;
  assert.equal(again.stdout, r1.stdout);
  assert.equal(agent.replies.length, 0, 'the replayed envelope got no reply after the restart');
  checks.push('after a restart: old envelope still a replay; reply counter continues (desktop window accepted it); result from the ledger');
  await agent.stop();

  // kill -9 while a command runs: after the restart the same id is indeterminate, never run again
  agent = new StdioAgent();
  await agent.until(() => agent.stderr.includes('"event":"ready"'));
  agent.send(seal({ kind: 'command', commandId: 'wf/run/killed', argv: ['sleep', '30'], timeoutSeconds: 60 }));
  await agent.until(() => agent.stderr.includes('"event":"command_started"'));
  const killed = new Promise((r) => agent.child.once('exit', r));
  agent.child.kill('SIGKILL');
  await killed;
  agent = new StdioAgent();
  await agent.until(() => agent.stderr.includes('"event":"ready"'));
  agent.send(seal({ kind: 'command', commandId: 'wf/run/killed', argv: ['sleep', '30'], timeoutSeconds: 60 }));
  const ind = (await agent.reply()) as ResultMessage;
  assert.equal(ind.status, 'indeterminate');
  assert.match(ind.reason!, /^indeterminate: the agent stopped while this command was running/);
  await agent.stop();
  checks.push('agent killed (SIGKILL) mid-command: after restart the same command id is indeterminate and not run again');

  const s = status();
  assert.equal(s.counters['reject.replay'], (before['reject.replay'] ?? 0) + 2);
  assert.equal(s.counters['reject.stale'], 1);
  assert.equal(s.counters['reject.unknown_sender'], 1);
  assert.equal((s.counters['reject.malformed'] ?? 0) + (s.counters['reject.bad_version'] ?? 0), 1, 'the garbage line');
  assert.equal(s.counters['commands.run'], 2, 'the killed command never finished, so it is not counted as run');
  assert.equal(s.counters['commands.indeterminate'], 1);
  assert.equal(s.counters['commands.duplicate'], 2);
  assert.equal(s.counters['commands.conflict'], 1);
  assert.equal(s.counters['commands.refused'], 1);
  checks.push(`status --json counters: ${JSON.stringify(s.counters)}`);

  // through the real relay, both directions
  {
    const { startRelay } = await import('../../relay/main');
    const { RelayClient } = await import('../../protocol/relay-client');
    const relay = await startRelay({ host: '127.0.0.1', port: 0, dataDir: fs.mkdtempSync(path.join(work, 'relay-')), log: () => {}, admission: { open: true } });
    try {
      execFileSync(bin, ['enroll', '--relay', relay.url, '--relay-pin', relay.pin, '--desktop', keyToHex(desktop.sign.publicKey),
        '--desktop-box-key', keyToHex(desktop.box.publicKey), '--tier', 'standard', '--allow', allow, '--state-dir', stateDir, '--json']);
      const child = spawn(bin, ['run', '--state-dir', stateDir], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const got: Buffer[] = [];
      const client = new RelayClient({ url: relay.url, pin: relay.pin, identity: { publicKey: desktop.sign.publicKey, secretKey: desktop.sign.secretKey }, onEnvelope: (w) => got.push(w) });
      await client.start();
      const deadline = Date.now() + 15000;
      while (!stderr.includes('"event":"ready"')) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`Go agent did not connect:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await client.send(seal({ kind: 'command', commandId: 'wf/run/relay', argv: ['echo', 'through the relay'], timeoutSeconds: 10 }));
      while (got.length === 0) {
        if (Date.now() > deadline) throw new Error(`no reply through the relay:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const rr = open(got.shift()!) as ResultMessage;
      assert.equal(rr.stdout, 'through the relay\n');
      checks.push('through the NestJS relay over pinned TLS: command sealed by TS, result sealed by Go, opened by TS');
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      assert.match(stderr, /"event":"stopped"/);
      await client.close();
    } finally {
      await relay.stop();
    }
  }

  process.stdout.write(checks.map((c) => `ok - ${c}\n`).join(''));
  fs.rmSync(work, { recursive: true, force: true });
}

test('the TypeScript desktop and the Go agent, over stdio and through the NestJS relay', main, 180_000);
