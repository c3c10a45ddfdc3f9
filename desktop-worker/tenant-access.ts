/**
 * The tenant store as the CLI and the worker open it: with the desktop identity from the OS keychain, so audit
 * checkpoints and registered DAGs are signed with the desktop's Ed25519 key, DAG signatures are verified before
 * a run, and tenants' secrets keys are reached in the same keychain.
 */
import { ed25519CheckpointSigner } from '../protocol/audit-chain';
import { KeychainAuditHeads } from './audit-head';
import { OsKeychain, loadDesktopIdentity, type DesktopIdentity, type IdentityOptions } from './identity';
import { TenantStore } from './tenant-store';

/**
 * Loads the desktop identity of `home` (throws `identity_missing`: run `orch init`; `keychain_unavailable`) and
 * builds a TenantStore that signs and verifies with it.
 *
 * @example
 * const store = await openTenantStore(orchHome());
 * try { store.registerDag('acme', source, text, 'alice'); } finally { store.close(); }
 */
export async function openTenantStore(home: string, opts: Pick<IdentityOptions, 'store' | 'service'> & { env?: NodeJS.ProcessEnv } = {}): Promise<TenantStore> {
  const identity = await loadDesktopIdentity({ home, ...(opts.store ? { store: opts.store } : {}), ...(opts.service ? { service: opts.service } : {}) });
  return tenantStoreFor(home, identity, opts);
}

/** The same store for an identity already loaded (`orch up` reads the keychain once). */
export function tenantStoreFor(home: string, identity: DesktopIdentity, opts: Pick<IdentityOptions, 'store'> & { env?: NodeJS.ProcessEnv } = {}): TenantStore {
  const keys = opts.store ?? new OsKeychain(identity.keychain.service);
  return new TenantStore(home, {
    signer: ed25519CheckpointSigner(identity.sign),
    trustedPublicKey: Buffer.from(identity.sign.publicKey),
    secretKeys: { store: keys, account: identity.keychain.account },
    auditHeads: new KeychainAuditHeads(identity.keychain.service, identity.keychain.account),
    ...(opts.env ? { env: opts.env } : {}),
  });
}
