/**
 * An enrolled agent's registry record (desktop-worker/agent-registry.ts) for tests that only need its name, tier,
 * allowlist and tenants: keys are zeros, never online.
 */
import type { AgentRecord } from '../../desktop-worker/agent-registry';

export const agentRecord = (name: string, tier: AgentRecord['tier'] = 'standard', allowlist: string | null = 'version: 1\ncommands: []\n', tenants = ['acme']): AgentRecord => ({
  name,
  signPublicKey: Buffer.alloc(32),
  boxPublicKey: Buffer.alloc(32),
  tier,
  allowlist,
  addedAt: '2026-01-01T00:00:00.000Z',
  lastSeen: null,
  relay: 'local',
  pong: null,
  tenants,
});
