/**
 * Signed DAGs, version 1: `orch dag register` signs what it stores with the desktop's Ed25519 key, and the worker
 * checks the signature before a run, so a DAG row written by anything but Orch (raw SQL, a copied database, a
 * restored backup of another tenant) never runs.
 *
 * Signed message (bytes):
 *
 *   UTF-8("orch-dag-signature-v1\n") || UTF-8(tenant) || 0x0A || UTF-8(name) || 0x0A || SHA-256(JCS(source))
 *
 * - the domain string keeps a DAG signature from ever passing as an audit checkpoint, an envelope or a relay
 *   login (each of those has its own prefix), and the reverse;
 * - tenant and name are each ended by a newline, which neither can contain (both are `[A-Za-z0-9_-]+`), so the
 *   fields cannot slide into each other; binding the tenant stops a DAG row copied into another tenant's
 *   database, binding the name stops a row renamed to another workflow type;
 * - the last 32 bytes are the raw SHA-256 of the source's RFC 8785 canonical JSON (what `dagHash` returns in
 *   hex), so the signature covers every field of the DAG, its version and cost cap included.
 *
 * Verification always uses the caller's trusted public key (the desktop's), never the key stored beside the
 * signature, which is kept for the operator's information only.
 */
import { createHash } from 'node:crypto';
import { canonicalize } from '../protocol/canonical-json';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES, verifyDetached } from '../protocol/primitives';
import { OrchError } from '../workflows/errors';

export const DAG_SIGNATURE_DOMAIN = 'orch-dag-signature-v1\n';

/** The stable failure type of a DAG that is unsigned, altered, or signed by a key the worker does not trust. */
export const DAG_SIGNATURE_INVALID = 'dag_signature_invalid';

const FIELD = /^[A-Za-z0-9_-]+$/;
const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

/** Signs with the desktop's Ed25519 key, wherever it lives (the same shape as the audit CheckpointSigner). */
export interface DagSigner {
  publicKey: Buffer;
  sign(message: Buffer): Buffer;
}

export interface DagSignature {
  /** Lowercase hex, 64 bytes. */
  signature: string;
  /** Lowercase hex, 32 bytes: who signed, for display. Not used to verify. */
  signerPublicKey: string;
}

/** SHA-256 (hex) of the DAG source's RFC 8785 canonical JSON. */
export function dagSourceHash(source: unknown): string {
  return createHash('sha256').update(canonicalize(source)).digest('hex');
}

/** The exact bytes a DAG signature covers. */
export function dagSignatureMessage(tenant: string, name: string, hashHex: string): Buffer {
  if (!FIELD.test(tenant) || !FIELD.test(name)) {
    throw new OrchError('bad_input', 'a signed DAG needs a tenant and a name made of letters, digits, _ and -');
  }
  if (!HEX64.test(hashHex)) throw new OrchError('bad_input', 'a DAG hash is 64 lowercase hex digits');
  return Buffer.concat([Buffer.from(`${DAG_SIGNATURE_DOMAIN}${tenant}\n${name}\n`, 'utf8'), Buffer.from(hashHex, 'hex')]);
}

/**
 * Signs a DAG for a tenant.
 *
 * @example
 * const sig = signDag(signer, 'acme', 'restart-web', dagSourceHash(source));
 */
export function signDag(signer: DagSigner, tenant: string, name: string, hashHex: string): DagSignature {
  const message = dagSignatureMessage(tenant, name, hashHex);
  const signature = signer.sign(message);
  // A signer whose key does not match its public key would store DAGs that never run; say so now.
  if (signature.length !== ED25519_SIGNATURE_BYTES || !verifyDetached(signature, message, signer.publicKey)) {
    throw new OrchError('dag_signer_invalid', 'the DAG signer produced a signature its own public key does not verify');
  }
  return { signature: signature.toString('hex'), signerPublicKey: signer.publicKey.toString('hex') };
}

/** Why a stored DAG's signature does not hold, or undefined when it does. */
export function dagSignatureProblem(
  trustedPublicKey: Buffer,
  tenant: string,
  name: string,
  hashHex: string,
  stored: { signature: string | null; signerPublicKey: string | null },
): string | undefined {
  if (trustedPublicKey.length !== ED25519_PUBLIC_KEY_BYTES) return 'the trusted key is not an Ed25519 public key';
  if (stored.signature === null || stored.signature === '') return 'it was never signed (register it again with `orch dag register`)';
  if (!HEX128.test(stored.signature)) return 'its stored signature is malformed';
  let message: Buffer;
  try {
    message = dagSignatureMessage(tenant, name, hashHex);
  } catch {
    return 'its tenant, name or hash is malformed';
  }
  if (!verifyDetached(Buffer.from(stored.signature, 'hex'), message, trustedPublicKey)) {
    const foreign = stored.signerPublicKey !== null && stored.signerPublicKey !== trustedPublicKey.toString('hex');
    return foreign
      ? `it is signed by another key (${(stored.signerPublicKey ?? '').slice(0, 16)}…), not by this desktop`
      : 'its content, name or tenant changed after it was signed';
  }
  return undefined;
}

/** Throws OrchError(dag_signature_invalid) unless the stored DAG carries this desktop's valid signature. */
export function verifyDagSignature(
  trustedPublicKey: Buffer,
  tenant: string,
  name: string,
  hashHex: string,
  stored: { signature: string | null; signerPublicKey: string | null },
): void {
  const problem = dagSignatureProblem(trustedPublicKey, tenant, name, hashHex, stored);
  if (problem !== undefined) {
    throw new OrchError(DAG_SIGNATURE_INVALID, `the DAG "${name}" in tenant "${tenant}" will not run: ${problem}`, { tenant, dag: name });
  }
}
