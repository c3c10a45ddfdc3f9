/**
 * The agent's identity files, kept like sshd host keys: created private, refused when others can read them.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentSetupError, BOX_KEY_FILE, SIGN_KEY_FILE, loadAgentIdentity, loadOrCreateAgentIdentity, resolveStateDir } from '../../agent/identity';
import { signDetached, verifyDetached, x25519, x25519KeyPair } from '../../protocol/primitives';

let dir: string;
const code = (c: string) => (e: unknown) => e instanceof AgentSetupError && e.code === c;

describe('agent identity', () => {
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-identity-'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('created once with private files, then loaded unchanged; the keys work', () => {
    const state = path.join(dir, 'a');
    const first = loadOrCreateAgentIdentity(state);
    assert.equal(first.created, true);
    assert.equal(fs.statSync(state).mode & 0o777, 0o700);
    for (const f of [SIGN_KEY_FILE, BOX_KEY_FILE]) assert.equal(fs.statSync(path.join(state, f)).mode & 0o777, 0o600);
    const again = loadOrCreateAgentIdentity(state);
    assert.equal(again.created, false);
    assert.ok(again.identity.sign.publicKey.equals(first.identity.sign.publicKey));
    assert.ok(again.identity.box.publicKey.equals(first.identity.box.publicKey));
    assert.match(again.identity.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    const sig = signDetached(Buffer.from('m'), again.identity.sign.secretKey);
    assert.ok(verifyDetached(sig, Buffer.from('m'), first.identity.sign.publicKey));
    const peer = x25519KeyPair();
    assert.ok(x25519(again.identity.box.secretKey, peer.publicKey).equals(x25519(peer.secretKey, first.identity.box.publicKey)));
  });

  test('an existing 0755 state directory is tightened to 0700 at enrollment', () => {
    const state = path.join(dir, 'loose');
    fs.mkdirSync(state, { mode: 0o755 });
    fs.chmodSync(state, 0o755);
    loadOrCreateAgentIdentity(state);
    assert.equal(fs.statSync(state).mode & 0o777, 0o700);
  });

  test('refuses key files readable by group or others, and a state directory others can write', () => {
    const state = path.join(dir, 'perm');
    loadOrCreateAgentIdentity(state);
    const key = path.join(state, BOX_KEY_FILE);
    for (const mode of [0o640, 0o604, 0o644]) {
      fs.chmodSync(key, mode);
      assert.throws(() => loadAgentIdentity(state), code('insecure_permissions'), mode.toString(8));
    }
    fs.chmodSync(key, 0o600);
    assert.ok(loadAgentIdentity(state));
    fs.chmodSync(state, 0o777);
    assert.throws(() => loadAgentIdentity(state), code('insecure_permissions'));
    fs.chmodSync(state, 0o700);
  });

  test('no identity, half an identity, and a damaged key are told apart', () => {
    assert.throws(() => loadAgentIdentity(path.join(dir, 'none')), code('not_enrolled'));
    const state = path.join(dir, 'half');
    loadOrCreateAgentIdentity(state);
    fs.unlinkSync(path.join(state, BOX_KEY_FILE));
    assert.throws(() => loadAgentIdentity(state), code('corrupt_identity'));
    // loadOrCreate must not mint a new key next to the surviving one: that would silently break the pinning
    assert.throws(() => loadOrCreateAgentIdentity(state), code('corrupt_identity'));
    const damaged = path.join(dir, 'damaged');
    loadOrCreateAgentIdentity(damaged);
    const f = path.join(damaged, SIGN_KEY_FILE);
    const hex = fs.readFileSync(f, 'utf8').trim();
    fs.writeFileSync(f, `${hex.slice(0, -2)}${hex.endsWith('00') ? '01' : '00'}\n`);
    assert.throws(() => loadAgentIdentity(damaged), code('corrupt_identity'));
  });

  test('the state directory: flag, then ORCH_AGENT_HOME, then /var/lib/orch-agent', () => {
    assert.equal(resolveStateDir('/x/y', { ORCH_AGENT_HOME: '/z' }), '/x/y');
    assert.equal(resolveStateDir(undefined, { ORCH_AGENT_HOME: '/z' }), '/z');
    assert.equal(resolveStateDir(undefined, {}), '/var/lib/orch-agent');
  });
});
