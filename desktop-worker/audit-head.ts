/**
 * The newest signed head of each tenant's audit chain, kept OUTSIDE the tenant database: in the OS keychain,
 * next to the desktop's private keys (service and account as identity.json records them, entry
 * `<account>/audit-head/<tenant>`). Why the keychain and not a file under ORCH_HOME: someone who can replace files
 * in ORCH_HOME could put back an older tenant database together with an older head file (both genuinely signed),
 * and the pair would verify; the keychain is not a file they can swap (it is encrypted, and held by the keychain
 * service under the user's login). See protocol/AUDIT-CHAIN.md, "The signed head outside the database".
 *
 * The head is a {@link SignedCheckpoint}, copied from the tenant database after the checkpoint's transaction
 * committed, so it is never ahead of what is on disk. Writes are synchronous (the append path is) and happen only
 * at checkpoints (every 1000 rows or 5 minutes) and when a store that appended closes, so appends stay fast.
 */
import { Entry, type EntryOptions } from '@napi-rs/keyring';
import type { SignedCheckpoint } from '../protocol/audit-chain';
import { OrchError } from '../protocol/errors';

/** Where heads are kept: the OS keychain in production; tests of the log alone pass none. */
export interface AuditHeadStore {
  /** The stored head of `tenant`, or null when there is none. @throws {OrchError} `audit_head_unreadable` */
  read(tenant: string): SignedCheckpoint | null;
  /**
   * Stores `head` unless a head with a higher seq is already stored (two processes appending to one tenant may
   * publish out of order; the newer one wins). `replace` stores it whatever is there: a new chain of that name.
   * @throws {OrchError} `audit_head_unwritable`
   */
  write(head: SignedCheckpoint, replace?: boolean): void;
  /** Where the heads are, for messages: "the OS keychain (service orch, account ...)". */
  readonly where: string;
}

/** The keychain entry name of a tenant's head, under the identity's account. */
export function auditHeadAccount(identityAccount: string, tenant: string): string {
  return `${identityAccount}/audit-head/${tenant}`;
}

function parseHead(text: string, tenant: string): SignedCheckpoint {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  const h = v as Partial<SignedCheckpoint> | undefined;
  if (
    typeof h !== 'object' ||
    h === null ||
    h.v !== 1 ||
    h.tenant !== tenant ||
    typeof h.seq !== 'number' ||
    typeof h.hash !== 'string' ||
    typeof h.ts !== 'string' ||
    typeof h.signerPublicKey !== 'string' ||
    typeof h.signature !== 'string'
  ) {
    // Not a silent "no head": a corrupt entry is reported, and the signature is checked by the verifier anyway.
    throw new OrchError('audit_head_unreadable', `the signed audit head of tenant "${tenant}" in the keychain is not a signed checkpoint`);
  }
  return { v: 1, tenant: h.tenant, seq: h.seq, hash: h.hash, ts: h.ts, signerPublicKey: h.signerPublicKey, signature: h.signature };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.replace(/^Platform failure: /, '').slice(0, 200);
}

/** Heads in the OS keychain, through @napi-rs/keyring's synchronous entries (pinned to the Secret Service on Linux). */
export class KeychainAuditHeads implements AuditHeadStore {
  private readonly options: EntryOptions | undefined;
  readonly where: string;

  constructor(
    readonly service: string,
    readonly account: string,
  ) {
    this.options = process.platform === 'linux' ? { linux: { store: 'secret-service' } } : undefined;
    this.where = `the OS keychain (service ${service}, entry ${auditHeadAccount(account, '<tenant>')})`;
  }

  private entry(tenant: string): Entry {
    return new Entry(this.service, auditHeadAccount(this.account, tenant), this.options);
  }

  read(tenant: string): SignedCheckpoint | null {
    let raw: string | null;
    try {
      raw = this.entry(tenant).getPassword();
    } catch (err) {
      throw new OrchError('audit_head_unreadable', `cannot read the signed audit head of tenant "${tenant}" from the OS keychain (${firstLine(err)})`);
    }
    return raw === null || raw === undefined ? null : parseHead(raw, tenant);
  }

  write(head: SignedCheckpoint, replace = false): void {
    if (!replace) {
      const stored = this.read(head.tenant);
      if (stored !== null && stored.seq >= head.seq) return;
    }
    try {
      this.entry(head.tenant).setPassword(JSON.stringify(head));
    } catch (err) {
      throw new OrchError('audit_head_unwritable', `cannot store the signed audit head of tenant "${head.tenant}" in the OS keychain (${firstLine(err)})`);
    }
  }
}
