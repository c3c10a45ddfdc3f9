/**
 * Orch's one logger (infra/log.ts): the desktop's relay transport logs the envelopes it refuses (through a real
 * relay, from real relay clients, into a real pino logger), with the reason and metadata only; and the Temporal
 * SDK's lines reach the worker's log through the Runtime logger `orch up` installs, as JSON lines with their
 * component. That nothing but infra/settings.ts reads process.env is checked by the lint run (eslint.config.mjs).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { eventually, suiteEnv, uid } from '../support/harness';
import { AgentRegistry } from '../../desktop-worker/agent-registry';
import { connectRelayTransport } from '../../desktop-worker/agent-transport';
import { workerLogFile } from '../../desktop-worker/worker-log';
import { createLogger, eventSink } from '../../infra/log';
import { encodeMessage } from '../../protocol/agent-messages';
import { keyToHex, newMsgId, sealEnvelope } from '../../protocol/envelope';
import { ed25519KeyPair, x25519KeyPair } from '../../protocol/primitives';
import { RelayClient } from '../../protocol/relay-client';
import { startRelay } from '../../relay/main';

const root = fileURLToPath(new URL('../..', import.meta.url));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-logging-test-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

type Line = Record<string, unknown>;

describe('the relay transport logs the envelopes it refuses', () => {
  const desktop = { sign: ed25519KeyPair(), box: x25519KeyPair() };
  const agent = { sign: ed25519KeyPair(), box: x25519KeyPair() };
  const stranger = ed25519KeyPair();
  const lines: string[] = [];
  const logged = (): Line[] => lines.map((l) => JSON.parse(l) as Line);
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let link: Awaited<ReturnType<typeof connectRelayTransport>>;
  const clients: RelayClient[] = [];

  beforeAll(async () => {
    relay = await startRelay({ host: '127.0.0.1', port: 0, dataDir: path.join(work, 'relay'), log: () => {}, admission: { open: true } });
    const home = path.join(work, 'home');
    const registry = AgentRegistry.open(home);
    registry.add({ name: 'web-1', signKeyHex: keyToHex(agent.sign.publicKey), boxKeyHex: keyToHex(agent.box.publicKey), tier: 'standard' });
    registry.close();
    // The logger `orch up` gives the transport (relay-client.log there), writing into memory here.
    const log = eventSink(createLogger({ component: 'relay-transport', level: 'info', destination: { write: (s: string) => void lines.push(s.trim()) } }));
    link = await connectRelayTransport({ home, identity: desktop, relay: { url: relay.url, pin: relay.pin }, heartbeatMs: 0, log });
    assert.equal(link.connected, true, JSON.stringify(link.startError));
  });

  afterAll(async () => {
    for (const c of clients) await c.close();
    await link?.close();
    await relay?.stop();
  });

  async function clientAs(sign: { publicKey: Buffer; secretKey: Buffer }): Promise<RelayClient> {
    const client = new RelayClient({ url: relay.url, pin: relay.pin, identity: sign, onEnvelope: () => {} });
    clients.push(client);
    await client.start();
    return client;
  }

  const MARKER = `plaintext-marker-${uid('m')}`;
  const result = (from: { publicKey: Buffer; secretKey: Buffer }) =>
    sealEnvelope({
      header: { from: keyToHex(from.publicKey), to: keyToHex(desktop.sign.publicKey), msgId: newMsgId(), counter: 1n, ts: Date.now(), type: 'result' },
      body: encodeMessage({ kind: 'result', commandId: 'wf/run/n1', status: 'finished', exitCode: 0, stdout: MARKER }),
      senderSign: from,
      recipientBoxPublicKey: desktop.box.publicKey,
    });

  test('a tampered envelope from an enrolled agent and one from an unknown key: a warn line each, with the reason', async () => {
    const fromAgent = await clientAs(agent.sign);
    const tampered = result(agent.sign);
    tampered[tampered.length - 10] = tampered[tampered.length - 10]! ^ 0x01;
    await fromAgent.send(tampered);
    const fromStranger = await clientAs(stranger);
    await fromStranger.send(result(stranger));

    const rejected = await eventually(async () => {
      const r = logged().filter((l) => l.event === 'envelope_rejected');
      return r.length >= 2 ? r : undefined;
    }, 15_000, 'two envelope_rejected lines');
    const bad = rejected.find((l) => l.agent === 'web-1')!;
    assert.ok(bad, JSON.stringify(rejected));
    assert.equal(bad.level, 'warn');
    assert.equal(bad.component, 'relay-transport');
    assert.match(String(bad.reason), /^(bad_signature|decrypt_failed)$/);
    assert.equal(bad.from, keyToHex(agent.sign.publicKey).slice(0, 16));
    assert.equal(bad.type, 'result');
    assert.equal(typeof bad.ts, 'string');
    const unknown = rejected.find((l) => l.reason === 'unknown_sender')!;
    assert.ok(unknown, JSON.stringify(rejected));
    assert.equal(unknown.from, keyToHex(stranger.publicKey).slice(0, 16));
    assert.equal(link.transport.rejects.get('unknown_sender'), 1, 'counted too');

    // Metadata only: neither the body (though the stranger's opens fine) nor a key in full.
    const all = lines.join('\n');
    assert.ok(!all.includes(MARKER), 'no plaintext in the log');
    for (const key of [agent.sign.publicKey, stranger.publicKey, desktop.sign.secretKey, desktop.box.secretKey]) assert.ok(!all.includes(keyToHex(key)), 'no key in full');
  }, 60_000);
});

describe('the relay transport of an orch command (no log given)', () => {
  test('logs its refusals on stderr as JSON lines, at warn by default', async () => {
    const marker = uid('plaintext-marker');
    const run = promisify(execFile);
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.ORCH_LOG_LEVEL;
    const r = await run(process.execPath, ['--import', 'tsx', 'test/support/transport-default-log.ts', path.join(work, 'cli-home'), marker], { cwd: root, env, timeout: 60_000 });
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
    const rejected = lines.filter((l) => l.event === 'envelope_rejected');
    assert.deepEqual(rejected.map((l) => [l.component, l.level, l.reason]), [
      ['relay-transport', 'warn', 'unknown_sender'],
      ['relay-transport', 'warn', 'bad_version'],
    ]);
    assert.equal(rejected[0]!.type, 'result');
    assert.ok(!r.stderr.includes(marker), 'no plaintext');
    assert.equal(r.stdout, '', "stdout (a command's output for people) untouched");
  }, 90_000);
});

describe("the Temporal SDK's logs", () => {
  test('arrive in worker.log as JSON lines with component temporal-sdk; only warnings reach the terminal', async () => {
    const { address } = suiteEnv();
    const home = path.join(work, 'sdk-home');
    const run = promisify(execFile);
    const env = { ...process.env, ORCH_LOG_LEVEL: 'info' };
    const probe = await run(process.execPath, ['--import', 'tsx', 'test/support/sdk-log-probe.ts', home, address, uid('tq-log')], { cwd: root, env, timeout: 90_000 });
    const file = workerLogFile(home);
    if (process.platform !== 'win32') assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
    const sdk = lines.filter((l) => l.component === 'temporal-sdk');
    assert.ok(sdk.length > 0, `no SDK line in ${file}:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
    const state = sdk.find((l) => typeof l.msg === 'string' && /Worker state changed/.test(l.msg));
    assert.ok(state, `the worker's state changes: ${JSON.stringify(sdk)}`);
    assert.equal(state.level, 'info');
    assert.equal(state.sdkComponent, 'worker');
    assert.equal(typeof state.ts, 'string');
    assert.ok(lines.some((l) => l.component === 'worker' && l.event === 'probe_done'), "the worker's own line, same file");
    assert.ok(!probe.stderr.includes('"level":"info"'), `info lines stay in the file:\n${probe.stderr}`);

    // A level that is not one fails at start, naming the setting.
    const bad = await run(process.execPath, ['--import', 'tsx', 'test/support/sdk-log-probe.ts', home, address, uid('tq-log')], { cwd: root, env: { ...env, ORCH_LOG_LEVEL: 'loud' }, timeout: 60_000 }).catch((e: { code: number; stderr: string }) => e);
    assert.notEqual((bad as { code: number }).code, 0);
    assert.match((bad as { stderr: string }).stderr, /ORCH_LOG_LEVEL: "loud" is not a log level/);
  }, 180_000);
});
