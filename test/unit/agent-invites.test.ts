import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentRegistry, servesTenant } from '../../desktop-worker/agent-registry';
import { parseExpires } from '../../desktop-worker/commands/agents';
import { invitePermitHash, joinSecretHash, newJoinSecret } from '../../protocol/join';
import { ed25519KeyPair, x25519KeyPair } from '../../protocol/primitives';
import { OrchError } from '../../protocol/errors';

const hex = (b: Buffer) => b.toString('hex');

function withRegistry(body: (r: AgentRegistry) => void): void {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-invites-'));
  const r = AgentRegistry.open(home);
  try {
    body(r);
  } finally {
    r.close();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

const newInvite = (r: AgentRegistry, name: string, expiresAt = Date.now() + 60_000) => {
  const secret = newJoinSecret();
  return r.addInvite({ name, tier: 'standard', tenants: ['acme'], allowlist: null, relay: 'edge', relayPin: `sha256/${Buffer.alloc(32, 1).toString('base64')}`, secretHash: joinSecretHash(secret), permitHash: invitePermitHash(secret), expiresAt });
};
const agentKeys = () => ({ signKeyHex: hex(ed25519KeyPair().publicKey), boxKeyHex: hex(x25519KeyPair().publicKey), hostname: 'h' });
const code = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err instanceof OrchError ? err.code : String(err);
  }
  return 'ok';
};

describe('invites in agents.sqlite (protocol/JOIN.md)', () => {
  test('a join pins the agent with the invite\'s tenants and marks the invite used, once', () => {
    withRegistry((r) => {
      const inv = newInvite(r, 'web-1');
      assert.equal(r.pendingInvites('edge').length, 1);
      const keys = agentKeys();
      const agent = r.acceptJoin(inv.id, keys);
      assert.deepEqual(agent.tenants, ['acme']);
      assert.equal(agent.relay, 'edge');
      assert.equal(r.listInvites()[0]?.usedBy, keys.signKeyHex);
      assert.equal(r.pendingInvites('edge').length, 0);
      assert.equal(code(() => r.acceptJoin(inv.id, agentKeys())), 'reused');
      assert.equal(code(() => r.acceptJoin(inv.id, keys)), 'reused');
      assert.equal(r.list().length, 1);
    });
  });

  test('expired, name taken meanwhile, key already enrolled: refused, nothing pinned, the invite stays unused', () => {
    withRegistry((r) => {
      const old = newInvite(r, 'old', Date.now() - 1);
      assert.equal(code(() => r.acceptJoin(old.id, agentKeys())), 'expired');
      const a = newInvite(r, 'db-1');
      r.add({ name: 'db-1', signKeyHex: hex(ed25519KeyPair().publicKey), boxKeyHex: hex(x25519KeyPair().publicKey), tier: 'standard' });
      assert.equal(code(() => r.acceptJoin(a.id, agentKeys())), 'name_taken');
      const b = newInvite(r, 'db-2');
      const taken = r.get('db-1')!;
      assert.equal(code(() => r.acceptJoin(b.id, { signKeyHex: hex(taken.signPublicKey), boxKeyHex: hex(x25519KeyPair().publicKey), hostname: 'h' })), 'key_in_use');
      assert.deepEqual(r.list().map((x) => x.name), ['db-1']);
      assert.equal(r.listInvites().filter((i) => i.usedAt).length, 0);
    });
  });

  test('one pending invite per name; no invite for an enrolled name; refusals counted by reason', () => {
    withRegistry((r) => {
      newInvite(r, 'web-1');
      assert.equal(code(() => newInvite(r, 'web-1')), 'invite_exists');
      r.add({ name: 'web-9', signKeyHex: hex(ed25519KeyPair().publicKey), boxKeyHex: hex(x25519KeyPair().publicKey), tier: 'standard' });
      assert.equal(code(() => newInvite(r, 'web-9')), 'agent_exists');
      r.recordJoinRefusal('bad_proof');
      r.recordJoinRefusal('bad_proof');
      r.recordJoinRefusal('replay');
      const counts = r.joinRefusals();
      assert.equal(counts.bad_proof?.count, 2);
      assert.equal(counts.replay?.count, 1);
    });
  });

  test('tenants: an agent with none serves every tenant (enrolled before tenants); setTenants changes them', () => {
    withRegistry((r) => {
      r.add({ name: 'old', signKeyHex: hex(ed25519KeyPair().publicKey), boxKeyHex: hex(x25519KeyPair().publicKey), tier: 'standard' });
      r.add({ name: 'mine', signKeyHex: hex(ed25519KeyPair().publicKey), boxKeyHex: hex(x25519KeyPair().publicKey), tier: 'standard', tenants: ['acme'] });
      assert.deepEqual(r.agentsOfTenant('acme').sort(), ['mine', 'old']);
      assert.deepEqual(r.agentsOfTenant('globex'), ['old']);
      assert.equal(servesTenant(r.setTenants('mine', ['globex']), 'acme'), false);
      assert.deepEqual(r.agentsOfTenant('globex').sort(), ['mine', 'old']);
      assert.equal(code(() => r.setTenants('mine', ['../x'])), 'bad_input');
      assert.equal(code(() => r.setTenants('ghost', ['acme'])), 'unknown_agent');
    });
  });

  test('--expires: s, m, h, d, at most 7 days', () => {
    assert.equal(parseExpires(undefined), 3_600_000);
    assert.equal(parseExpires('90s'), 90_000);
    assert.equal(parseExpires('7d'), 7 * 86_400_000);
    for (const bad of ['8d', '1w', '0h', '-1h', '1.5h', 'h', '']) assert.throws(() => parseExpires(bad), Error, bad);
  });
});
