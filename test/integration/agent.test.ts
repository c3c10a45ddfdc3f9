/**
 * The agent process end to end: enrolled with the real CLI, driven with sealed envelopes from a test "desktop"
 * identity (over `orch-agent run --stdio`), and finally through a real relay process over wss.
 *
 * Every hostile envelope carries a command that would append a line to a marker file, so "0 run" is checked on
 * the file system, and "0 accepted" on the agent's own counters (`orch-agent status --json`).
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AgentMessage, ResultMessage } from '../../protocol/agent-messages';
import { keyToHex, DEFAULT_MAX_SKEW_MS } from '../../protocol/envelope';
import { ed25519KeyPair, x25519KeyPair } from '../../protocol/primitives';
import { RelayClient } from '../../protocol/relay-client';
import { agentBinary } from '../support/agent-binary';
import { TestApprover } from '../support/approval';
import { EnvelopeDesktop, type Peer } from '../support/envelope-desktop';
import { relayStarted } from '../support/relay-process';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const agentBin = agentBinary();
let dir: string;

interface AgentProc {
  child: ChildProcess;
  stderr(): string;
  send(wire: Buffer): void;
  reply(timeoutMs?: number): Promise<Buffer>;
  waitFor(pattern: string, timeoutMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

function startAgent(args: string[]): AgentProc {
  const child = spawn(agentBin, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: repo });
  let stderr = '';
  let stdout = '';
  const wake: Array<() => void> = [];
  const poke = () => wake.splice(0).forEach((w) => w());
  child.stderr!.on('data', (d: Buffer) => ((stderr += d.toString()), poke()));
  child.stdout!.on('data', (d: Buffer) => ((stdout += d.toString()), poke()));
  child.on('exit', poke);
  const until = async (check: () => boolean, ms: number, what: string) => {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`agent: no ${what} within ${ms} ms (exit ${child.exitCode}):\n${stderr}`);
      await new Promise<void>((r) => (wake.push(r), setTimeout(r, 100)));
    }
  };
  return {
    child,
    stderr: () => stderr,
    send: (wire) => void child.stdin!.write(`${wire.toString('base64')}\n`),
    async reply(timeoutMs = 15_000) {
      await until(() => stdout.includes('\n'), timeoutMs, 'reply');
      const nl = stdout.indexOf('\n');
      const line = stdout.slice(0, nl);
      stdout = stdout.slice(nl + 1);
      return Buffer.from(line, 'base64');
    },
    waitFor: (pattern, timeoutMs = 20_000) => until(() => stderr.includes(pattern), timeoutMs, pattern),
    kill: (signal) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}

async function status(stateDir: string): Promise<{ counters: Record<string, number>; commands: Record<string, number> }> {
  const { stdout } = await run(agentBin, ['status', '--state-dir', stateDir, '--json'], { cwd: repo });
  return JSON.parse(stdout);
}

function markerLines(file: string): number {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

async function enroll(stateDir: string, desktop: Peer, relay: { url: string; pin: string }, allow: string): Promise<{ signKey: string; boxKey: string }> {
  const { stdout } = await run(
    agentBin,
    ['enroll', '--relay', relay.url, '--relay-pin', relay.pin, '--desktop', keyToHex(desktop.sign.publicKey), '--desktop-box-key', keyToHex(desktop.box.publicKey),
      '--tier', 'infrastructure', '--allow', allow, '--state-dir', stateDir, '--json'],
    { cwd: repo },
  );
  return JSON.parse(stdout);
}

describe('agent process end to end', () => {
  let marker: string;
  let allow: string;
  let touch: string;
  const desktopPeer: Peer = { sign: ed25519KeyPair(), box: x25519KeyPair() };

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-agent-it-'));
    marker = path.join(dir, 'marker.log');
    touch = path.join(dir, 'touch.sh');
    fs.writeFileSync(touch, `#!/bin/sh\necho "$1" >> ${marker}\necho "touched $1"\n`, { mode: 0o755 });
    allow = path.join(dir, 'allow.yaml');
    fs.writeFileSync(allow, `version: 1\ncommands:\n  - executable: ${touch}\n    args: [{ regex: '[a-z0-9-]+' }]\n`);
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('enroll refuses bad arguments with exit 2 and a clear message', async () => {
    const bad = await run(agentBin, ['enroll', '--relay', 'ws://plain:80', '--relay-pin', 'x', '--desktop', 'zz', '--desktop-box-key', 'zz', '--state-dir', path.join(dir, 'bad')], { cwd: repo }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((bad as { code: number }).code, 2);
    assert.match((bad as { stderr: string }).stderr, /--relay must use wss:\/\//);
    assert.ok(!fs.existsSync(path.join(dir, 'bad', 'agent-ed25519.key')));
  });

  test('hostile envelopes over stdio: replays (also after a restart), stale, forged, re-addressed, reordered, flipped bytes: 0 accepted, 0 run', async () => {
    const stateDir = path.join(dir, 'state');
    const keys = await enroll(stateDir, desktopPeer, { url: 'wss://127.0.0.1:9/v1/relay', pin: `sha256/${Buffer.alloc(32, 1).toString('base64')}` }, allow);
    for (const f of ['agent-ed25519.key', 'agent-x25519.key', 'agent.json', 'allowlist.yaml']) {
      assert.equal(fs.statSync(path.join(stateDir, f)).mode & 0o777, 0o600, f);
    }
    assert.equal(fs.statSync(stateDir).mode & 0o777, 0o700);
    const desktop = new EnvelopeDesktop(desktopPeer, Buffer.from(keys.signKey, 'hex'), Buffer.from(keys.boxKey, 'hex'));
    // An infrastructure agent runs a command its read-only check does not clear only with a signed approval: the
    // test's approver is trusted for tenant acme, and every command carries its attestation.
    const approver = new TestApprover();
    const cmd = (id: string): AgentMessage => ({ kind: 'command', commandId: `wf/run/${id}`, tenant: 'acme', argv: [touch, id], timeoutSeconds: 10, approval: approver.attest(`wf/run/${id}`, [touch, id]) });

    let expectedRejects = 0;
    let agent = startAgent(['run', '--stdio', '--state-dir', stateDir]);
    await agent.waitFor('"event":"ready"');
    try {
      agent.send(desktop.seal(approver.approversMessage('acme')));
      assert.equal((desktop.open(await agent.reply()) as { status: string }).status, 'ok');
      // a good one, to replay later
      const good = desktop.seal(cmd('good'));
      agent.send(good);
      const r = desktop.open(await agent.reply()) as ResultMessage;
      assert.equal(r.status, 'finished');
      assert.equal(r.stdout, 'touched good\n');
      assert.equal(markerLines(marker), 1);

      const hostile: Array<[string, Buffer]> = [];
      hostile.push(['replay', good]);
      hostile.push(['stale', desktop.seal(cmd('stale'), { ts: Date.now() - DEFAULT_MAX_SKEW_MS - 60_000 })]);
      hostile.push(['stale', desktop.seal(cmd('future'), { ts: Date.now() + DEFAULT_MAX_SKEW_MS + 60_000 })]);
      const mallory = ed25519KeyPair();
      // signed by another key but claiming to be the desktop: the header's `from` is the desktop's
      const forged = desktop.seal(cmd('forged'), { signer: mallory });
      const forgedAsDesktop = Buffer.from(forged);
      desktopPeer.sign.publicKey.copy(forgedAsDesktop, 1);
      hostile.push(['bad_signature', forgedAsDesktop]);
      hostile.push(['unknown_sender', forged]);
      const other = { sign: ed25519KeyPair(), box: x25519KeyPair() };
      hostile.push(['wrong_recipient', desktop.seal(cmd('other-agent'), { to: keyToHex(other.sign.publicKey), toBox: other.box.publicKey })]);
      // sealed to the wrong box key but properly addressed and signed
      hostile.push(['decrypt_failed', desktop.seal(cmd('wrong-box'), { toBox: other.box.publicKey })]);
      // every byte of one envelope flipped in turn: header, ephemeral key, nonce, length, ciphertext, tag, signature
      const victim = desktop.seal(cmd('flipped'));
      for (let i = 0; i < victim.length; i++) {
        const copy = Buffer.from(victim);
        copy[i] = copy[i]! ^ 0x01;
        hostile.push(['flip', copy]);
      }
      for (const [, wire] of hostile) agent.send(wire);
      expectedRejects += hostile.length;
      // a ping answered after all of them proves each was processed (opening is synchronous, in arrival order)
      agent.send(desktop.seal({ kind: 'ping', nonce: 'after-hostile' }));
      const pong = desktop.open(await agent.reply());
      // its own authenticated counts agree: the one real command ran, no hostile one ran or was even refused
      assert.deepEqual(pong, { kind: 'pong', nonce: 'after-hostile', agentVersion: '0.1.0', tier: 'infrastructure', commandsRun: 1, commandsRefused: 0 });
      assert.equal(markerLines(marker), 1, 'no hostile command ran');

      // a jump ahead, then something from far behind the window
      agent.send(desktop.seal({ kind: 'ping', nonce: 'jump' }, { counter: (desktop.counter += 5000n) }));
      assert.equal((desktop.open(await agent.reply()) as { nonce: string }).nonce, 'jump');
      agent.send(desktop.seal(cmd('too-old'), { counter: 10n }));
      expectedRejects += 1;
      agent.send(desktop.seal({ kind: 'ping', nonce: 'after-old' }));
      assert.equal((desktop.open(await agent.reply()) as { nonce: string }).nonce, 'after-old');
      assert.equal(markerLines(marker), 1);
    } finally {
      await agent.kill('SIGTERM');
    }

    // after a restart the persisted window still knows the good envelope
    agent = startAgent(['run', '--stdio', '--state-dir', stateDir]);
    await agent.waitFor('"event":"ready"');
    try {
      const good2 = desktop.seal(cmd('good-2'));
      agent.send(good2);
      assert.equal((desktop.open(await agent.reply()) as ResultMessage).status, 'finished');
      assert.equal(markerLines(marker), 2);
      await agent.kill('SIGKILL');
      agent = startAgent(['run', '--stdio', '--state-dir', stateDir]);
      await agent.waitFor('"event":"ready"');
      agent.send(good2);
      expectedRejects += 1;
      agent.send(desktop.seal({ kind: 'ping', nonce: 'after-restart' }));
      assert.equal((desktop.open(await agent.reply()) as { nonce: string }).nonce, 'after-restart');
      assert.equal(markerLines(marker), 2, 'the replay after a restart did not run');
      assert.match(agent.stderr(), /"event":"envelope_rejected","reason":"replay"/);
    } finally {
      await agent.kill('SIGTERM');
    }

    const s = await status(stateDir);
    // accepted: the approvers, good, the after-hostile ping, jump, after-old, good-2, the after-restart ping
    assert.equal(s.counters.accepted, 7);
    assert.equal(s.counters['commands.run'], 2);
    assert.equal(s.counters['reject.replay'], 2);
    assert.equal(s.counters['reject.stale'], 2);
    assert.equal(s.counters['reject.unknown_sender']! >= 1, true);
    assert.equal(s.counters['reject.wrong_recipient']! >= 1, true);
    assert.equal(s.counters['reject.decrypt_failed']! >= 1, true);
    assert.equal(s.counters['reject.too_old_for_window'], 1);
    assert.ok(s.counters['reject.bad_signature']! >= 1);
    const rejected = Object.entries(s.counters).filter(([k]) => k.startsWith('reject.')).reduce((n, [, v]) => n + v, 0);
    // every hostile envelope was counted as exactly one rejection
    assert.equal(rejected, expectedRejects);
    assert.deepEqual(s.commands, { received: 0, started: 0, finished: 2 });
  });

  test('a full run through a real relay process over wss', async () => {
    const relayDir = path.join(dir, 'relay');
    const relay = spawn(
      process.execPath,
      ['--import', 'tsx', '-e', `import('${path.join(repo, 'relay/main.ts')}').then(async (m) => { process.exitCode = await m.runRelayCli(['start', '--host', '127.0.0.1', '--port', '0', '--open', '--data-dir', ${JSON.stringify(relayDir)}]); })`],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: repo },
    );
    let agent: AgentProc | undefined;
    let client: RelayClient | undefined;
    try {
      const started = await relayStarted(relay, 'the relay', 30_000);

      const stateDir = path.join(dir, 'state-relay');
      const desktopRelayPeer: Peer = { sign: ed25519KeyPair(), box: x25519KeyPair() };
      // Enrolled with wss://HOST:PORT only: the agent adds the relay's standard path.
      const bare = started.url.replace(/\/v1\/relay$/, '');
      const keys = await enroll(stateDir, desktopRelayPeer, { url: bare, pin: started.pin }, allow);
      agent = startAgent(['run', '--state-dir', stateDir]);
      await agent.waitFor('"event":"ready"', 30_000);

      const desktop = new EnvelopeDesktop(desktopRelayPeer, Buffer.from(keys.signKey, 'hex'), Buffer.from(keys.boxKey, 'hex'));
      const inbox: Buffer[] = [];
      const wake: Array<() => void> = [];
      client = new RelayClient({
        url: started.url,
        pin: started.pin,
        identity: desktopRelayPeer.sign,
        onEnvelope: (wire) => {
          inbox.push(wire);
          wake.splice(0).forEach((w) => w());
        },
      });
      await client.start();
      const next = async (): Promise<AgentMessage> => {
        const end = Date.now() + 20_000;
        while (inbox.length === 0) {
          if (Date.now() > end) throw new Error(`no reply through the relay:\n${agent!.stderr()}`);
          await new Promise<void>((r) => (wake.push(r), setTimeout(r, 200)));
        }
        return desktop.open(inbox.shift()!);
      };

      await client.send(desktop.seal({ kind: 'ping', nonce: 'through-relay' }));
      assert.equal(((await next()) as { nonce: string }).nonce, 'through-relay');

      // Without an approval, the infrastructure agent refuses the state-changing command before running it.
      const before = markerLines(marker);
      await client.send(desktop.seal({ kind: 'command', commandId: 'wf/run/unapproved', tenant: 'acme', argv: [touch, 'unapproved'], timeoutSeconds: 10 }));
      const unapproved = (await next()) as ResultMessage;
      assert.equal(unapproved.status, 'refused');
      assert.match(unapproved.reason ?? '', /^approval_required: no_attestation: /);
      assert.equal(markerLines(marker), before);

      const approver = new TestApprover();
      await client.send(desktop.seal(approver.approversMessage('acme')));
      assert.equal(((await next()) as { status: string }).status, 'ok');
      const command: AgentMessage = { kind: 'command', commandId: 'wf/run/relay', tenant: 'acme', argv: [touch, 'relay'], timeoutSeconds: 10, approval: approver.attest('wf/run/relay', [touch, 'relay']) };
      await client.send(desktop.seal(command));
      const result = (await next()) as ResultMessage;
      assert.equal(result.status, 'finished');
      assert.equal(result.exitCode, 0);
      assert.equal(result.stdout, 'touched relay\n');
      // the activity's retry: a new envelope, the same command id → the stored result, no second run
      await client.send(desktop.seal(command));
      assert.deepEqual(await next(), result);
      assert.equal(markerLines(marker), before + 1);

      // a refusal comes back as command_not_allowed with the rule
      await client.send(desktop.seal({ kind: 'command', commandId: 'wf/run/refused', argv: ['rm', '-rf', '/'], timeoutSeconds: 10 }));
      const refused = (await next()) as ResultMessage;
      assert.equal(refused.status, 'refused');
      assert.match(refused.reason ?? '', /^command_not_allowed: /);
    } finally {
      await client?.close();
      await agent?.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        if (relay.exitCode !== null || relay.signalCode !== null) return resolve();
        relay.once('exit', () => resolve());
        relay.kill('SIGTERM');
      });
    }
  }, 60_000);
});
