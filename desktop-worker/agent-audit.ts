/**
 * Enrolling or removing an agent, and adding or removing a relay (`add_relay`, `remove_relay`: the routes the
 * desktop's commands travel), changes what every tenant's runs can reach (the agent and relay registries are this
 * desktop's, not a tenant's), so the change is recorded in every tenant's audit log, signed at a checkpoint with the desktop
 * key when the identity is there. An invite and the join it leads to (`invite_agent`, and `enroll_agent` by the worker)
 * are recorded in the chains of the tenants the invite names.
 */
import os from 'node:os';
import { ed25519CheckpointSigner } from '../protocol/audit-chain';
import { loadDesktopIdentity } from './identity';
import { TenantStore } from './tenant-store';

export async function auditAgentChange(
  home: string,
  action: 'enroll_agent' | 'remove_agent' | 'add_relay' | 'remove_relay' | 'invite_agent' | 'set_agent_tenants',
  /** The agent's or the relay's name. */
  agent: string,
  details: Record<string, unknown>,
  actor: string = os.userInfo().username,
  /** Only these tenants' chains (an invite or a join concerns the tenants it names); default every tenant. */
  onlyTenants?: string[],
): Promise<number> {
  let signer;
  try {
    signer = ed25519CheckpointSigner((await loadDesktopIdentity({ home })).sign);
  } catch {
    // No identity yet: rows are still chained; the next signed checkpoint of each tenant covers them.
    signer = undefined;
  }
  const store = new TenantStore(home, signer ? { signer } : {});
  try {
    const tenants = onlyTenants ? store.list().filter((t) => onlyTenants.includes(t)) : store.list();
    for (const tenant of tenants) store.auditLog(tenant).append({ actor, action, subject: agent, details });
    return tenants.length;
  } finally {
    store.close();
  }
}
