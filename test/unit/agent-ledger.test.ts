/**
 * The ledger and the at-most-once guarantee, with real commands and a real crash (SIGKILL of an agent process
 * in the middle of a command).
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeMessage, encodeMessage, type CommandMessage, type ResultMessage } from '../../protocol/agent-messages';
import { keyToHex, newMsgId, openEnvelope, sealEnvelope } from '../../protocol/envelope';
import { ed25519KeyPair, x25519KeyPair } from '../../protocol/primitives';
import { ReplayWindow } from '../../protocol/replay-window';
import { AgentHandler } from '../../agent/handler';
import { loadOrCreateAgentIdentity } from '../../agent/identity';
import { Ledger, argvDigest } from '../../agent/ledger';
import { runAgentCli } from '../../agent/main';
import { parseAllowlist } from '../../agent/policy';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let dir: string;

function script(name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

function lines(file: string): string[] {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

describe('agent ledger', () => {
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-ledger-'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('life cycle: received → started → finished, and what a duplicate gets in each state', () => {
    const ledger = Ledger.open(path.join(dir, 'cycle.sqlite'));
    try {
      const d = argvDigest(['true'], undefined);
      assert.deepEqual(ledger.claim('p', 'a', d), { kind: 'run' });
      // died before start: nothing was spawned, so it may run
      assert.deepEqual(ledger.claim('p', 'a', d), { kind: 'run' });
      ledger.markStarted('p', 'a', 1000);
      assert.deepEqual(ledger.claim('p', 'a', d), { kind: 'indeterminate', startedAt: 1000 });
      const result: ResultMessage = { kind: 'result', commandId: 'a', status: 'finished', exitCode: 0, stdout: 'x', stderr: '', truncated: false, durationMs: 3 };
      ledger.markFinished('p', 'a', result);
      assert.deepEqual(ledger.claim('p', 'a', d), { kind: 'finished', result });
      // the same id with another argv never gets this command's result
      assert.deepEqual(ledger.claim('p', 'a', argvDigest(['false'], undefined)), { kind: 'conflict' });
      // ids are per peer
      assert.deepEqual(ledger.claim('q', 'a', d), { kind: 'run' });
      assert.throws(() => ledger.markStarted('p', 'a'));
    } finally {
      ledger.close();
    }
  });

  test('the file is 0600, WAL with synchronous=FULL, and the window and counter survive a reopen', () => {
    const file = path.join(dir, 'persist.sqlite');
    const a = Ledger.open(file);
    const w = a.loadWindow('peer');
    w.accept(5n);
    w.accept(3n);
    a.saveWindow('peer', w);
    assert.equal(a.nextOutgoingCounter('peer'), 1n);
    assert.equal(a.nextOutgoingCounter('peer'), 2n);
    const db = (a as unknown as { db: { pragma(s: string, o: { simple: true }): unknown } }).db;
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('synchronous', { simple: true }), 2);
    a.close();
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const b = Ledger.open(file);
    try {
      const again = b.loadWindow('peer');
      assert.equal(again.check(5n), 'replay');
      assert.equal(again.check(3n), 'replay');
      assert.equal(again.check(4n), 'ok');
      assert.equal(b.nextOutgoingCounter('peer'), 3n);
    } finally {
      b.close();
    }
  });

  test('a duplicate of a finished command gets the stored result and the command runs once', async () => {
    const state = path.join(dir, 'dup');
    fs.mkdirSync(state, { mode: 0o700 });
    const log = path.join(dir, 'dup.log');
    const s = script('append.sh', `echo "ran $$" >> ${log}; echo out-$$`);
    const desktop = { sign: ed25519KeyPair(), box: x25519KeyPair() };
    const ledger = Ledger.open(path.join(state, 'ledger.sqlite'));
    const handler = new AgentHandler({
      identity: loadOrCreateAgentIdentity(state).identity,
      desktop: { signPublicKey: desktop.sign.publicKey, boxPublicKey: desktop.box.publicKey },
      policy: { tier: 'infrastructure', allowlist: parseAllowlist(`version: 1\ncommands:\n  - executable: ${s}\n`) },
      ledger,
      home: state,
    });
    try {
      const m: CommandMessage = { kind: 'command', commandId: 'wf/run/append', argv: [s], timeoutSeconds: 10 };
      const first = await handler.command(m);
      const second = await handler.command(m);
      assert.equal(first.status, 'finished');
      assert.deepEqual(second, first);
      assert.equal(lines(log).length, 1);
      // two deliveries at the same moment: one run, both get its result
      const m2 = { ...m, commandId: 'wf/run/append-2' };
      const [x, y] = await Promise.all([handler.command(m2), handler.command(m2)]);
      assert.deepEqual(x, y);
      assert.equal(lines(log).length, 2);
      assert.equal(ledger.counters()['commands.run'], 2);
    } finally {
      ledger.close();
    }
  });

  test('SIGKILL of the agent mid-command: the resent command id is indeterminate and never runs again', async () => {
    const state = path.join(dir, 'crash');
    const log = path.join(dir, 'crash.log');
    const s = script('slow.sh', `echo "start $$" >> ${log}; exec sleep 100`);
    const allow = path.join(dir, 'crash-allow.yaml');
    fs.writeFileSync(allow, `version: 1\ncommands:\n  - executable: ${s}\n  - executable: echo\n    rest: any\n`);
    const desktop = { sign: ed25519KeyPair(), box: x25519KeyPair() };
    let out = '';
    const code = await runAgentCli(
      ['enroll', '--relay', 'wss://127.0.0.1:1', '--relay-pin', `sha256/${Buffer.alloc(32, 7).toString('base64')}`, '--desktop', keyToHex(desktop.sign.publicKey),
        '--desktop-box-key', keyToHex(desktop.box.publicKey), '--tier', 'infrastructure', '--allow', allow, '--state-dir', state, '--json'],
      { log: (l) => (out += l), err: (l) => (out += l) },
    );
    assert.equal(code, 0, out);
    const enrolled = JSON.parse(out) as { signKey: string; boxKey: string };
    const agentSign = Buffer.from(enrolled.signKey, 'hex');
    let counter = 0n;
    const window = new ReplayWindow();
    const seal = (m: CommandMessage) =>
      sealEnvelope({
        header: { from: keyToHex(desktop.sign.publicKey), to: enrolled.signKey, msgId: newMsgId(), counter: ++counter, ts: Date.now(), type: m.kind },
        body: encodeMessage(m),
        senderSign: desktop.sign,
        recipientBoxPublicKey: Buffer.from(enrolled.boxKey, 'hex'),
      });
    const open = (wire: Buffer): ResultMessage => {
      const r = openEnvelope(wire, { recipientSignPublicKey: desktop.sign.publicKey, recipientBox: desktop.box, senderSignPublicKey: agentSign, now: Date.now(), window });
      assert.ok(r.ok, r.ok ? '' : r.reason);
      return decodeMessage(r.body) as ResultMessage;
    };

    const command: CommandMessage = { kind: 'command', commandId: 'wf-1/run-1/slow', argv: [s], timeoutSeconds: 60 };
    const first = await startAgent(state);
    let orphan = 0;
    try {
      first.send(seal(command));
      const deadline = Date.now() + 15_000;
      while (lines(log).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(lines(log).length, 1, 'the command started');
      orphan = Number(lines(log)[0]!.split(' ')[1]);
      await first.kill('SIGKILL');
    } finally {
      await first.kill('SIGKILL');
      // The agent died, its command did not (systemd would end it with the unit's cgroup); end it here.
      if (orphan > 0) {
        try {
          process.kill(-orphan, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }

    const second = await startAgent(state);
    try {
      second.send(seal(command));
      const again = open(await second.reply());
      assert.equal(again.status, 'indeterminate');
      assert.equal(again.commandId, command.commandId);
      assert.match(again.reason ?? '', /^indeterminate: /);
      // the agent is otherwise healthy
      second.send(seal({ kind: 'command', commandId: 'wf-1/run-1/echo', argv: ['echo', 'alive'], timeoutSeconds: 10 }));
      const echo = open(await second.reply());
      assert.equal(echo.status, 'finished');
      assert.equal(echo.stdout, 'alive\n');
    } finally {
      await second.kill('SIGTERM');
    }
    assert.deepEqual(lines(log).length, 1, 'the command started exactly once');
  });
});

interface AgentProc {
  child: ChildProcess;
  send(wire: Buffer): void;
  reply(timeoutMs?: number): Promise<Buffer>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** The real agent (`orch-agent run --stdio`) as a child process. */
async function startAgent(stateDir: string): Promise<AgentProc> {
  const child = spawn(process.execPath, [path.join(repo, 'bin/orch-agent.mjs'), 'run', '--stdio', '--state-dir', stateDir], { stdio: ['pipe', 'pipe', 'pipe'], cwd: repo });
  let stderr = '';
  let stdout = '';
  const waiters: Array<() => void> = [];
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    waiters.splice(0).forEach((w) => w());
  });
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    waiters.splice(0).forEach((w) => w());
  });
  const until = async (check: () => boolean, ms: number, what: string) => {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`agent: no ${what} in ${ms} ms:\n${stderr}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
  };
  await until(() => stderr.includes('"event":"ready"'), 20_000, 'ready line');
  return {
    child,
    send: (wire) => void child.stdin!.write(`${wire.toString('base64')}\n`),
    async reply(timeoutMs = 15_000) {
      await until(() => stdout.includes('\n'), timeoutMs, 'reply');
      const nl = stdout.indexOf('\n');
      const line = stdout.slice(0, nl);
      stdout = stdout.slice(nl + 1);
      return Buffer.from(line, 'base64');
    },
    kill: (signal) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}
