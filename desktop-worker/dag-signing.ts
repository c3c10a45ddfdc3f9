/**
 * Signed DAGs, version 2: `orch dag register` signs what it stores with the desktop's Ed25519 key, and the worker
 * checks the signature before a run, so a DAG row written by anything but Orch (raw SQL, a copied database, a
 * restored backup of another tenant, an older signed version put back) never runs.
 *
 * Signed message (bytes):
 *
 *   UTF-8("orch-dag-signature-v2\n") || JCS({"hash": HEX, "name": NAME, "registration": SEQ, "tenant": TENANT,
 *                                           "version": VERSION})
 *
 * - the domain string keeps a DAG signature from ever passing as an audit checkpoint, an envelope, a relay login
 *   or a bundle signature (each has its own prefix), and the reverse;
 * - the fields are one RFC 8785 canonical JSON object, so they cannot slide into each other; binding the tenant
 *   stops a DAG row copied into another tenant's database, binding the name stops a row renamed to another
 *   workflow type;
 * - `hash` is the SHA-256 of the source's canonical JSON (what `dagHash` returns), so the signature covers every
 *   field of the DAG; `version` (as stored, a string) is named again so what the operator reads is what was signed;
 * - `registration` is the sequence number of the tenant's `register_dag` audit row written with it. The worker
 *   verifies against the newest `register_dag` row for that name, so the signed bytes of an older registration
 *   (v1 put back over v2) fail: they name an older row. Undoing that needs rewriting the hash-chained audit log,
 *   which `orch audit verify` catches against the desktop-signed checkpoints and head.
 *
 * Version 1 signatures (no version, no registration) are refused: register such DAGs again.
 *
 * Verification always uses the caller's trusted public key (the desktop's), never the key stored beside the
 * signature, which is kept for the operator's information only.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { canonicalize } from '../protocol/canonical-json';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES, verifyDetached } from '../protocol/primitives';
import { OrchError } from '../protocol/errors';

export const DAG_SIGNATURE_DOMAIN = 'orch-dag-signature-v2\n';
const DAG_SIGNATURE_DOMAIN_V1 = 'orch-dag-signature-v1\n';

/** The stable failure type of a DAG that is unsigned, altered, rolled back, or signed by a key the worker does not trust. */
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

/** What a DAG signature covers. */
export interface DagRegistration {
  tenant: string;
  name: string;
  /** The DAG's `version`, as stored (a string). */
  version: string;
  /** SHA-256 (hex) of the source's canonical JSON. */
  hash: string;
  /** Sequence number of the `register_dag` audit row of this registration. */
  registration: number;
}

/** SHA-256 (hex) of the DAG source's RFC 8785 canonical JSON. */
export function dagSourceHash(source: unknown): string {
  return createHash('sha256').update(canonicalize(source)).digest('hex');
}

/** The exact bytes a DAG signature covers. */
export function dagSignatureMessage(reg: DagRegistration): Buffer {
  if (!FIELD.test(reg.tenant) || !FIELD.test(reg.name)) {
    throw new OrchError('bad_input', 'a signed DAG needs a tenant and a name made of letters, digits, _ and -');
  }
  if (!HEX64.test(reg.hash)) throw new OrchError('bad_input', 'a DAG hash is 64 lowercase hex digits');
  if (typeof reg.version !== 'string') throw new OrchError('bad_input', 'a DAG version is signed as a string');
  if (!Number.isSafeInteger(reg.registration) || reg.registration < 1) throw new OrchError('bad_input', 'a DAG registration is an audit sequence number (1 or more)');
  const fields = { hash: reg.hash, name: reg.name, registration: reg.registration, tenant: reg.tenant, version: reg.version };
  return Buffer.concat([Buffer.from(DAG_SIGNATURE_DOMAIN, 'utf8'), Buffer.from(canonicalize(fields), 'utf8')]);
}

/** The version 1 message, only to tell the operator why such a signature no longer counts. */
function dagSignatureMessageV1(reg: DagRegistration): Buffer {
  return Buffer.concat([Buffer.from(`${DAG_SIGNATURE_DOMAIN_V1}${reg.tenant}\n${reg.name}\n`, 'utf8'), Buffer.from(reg.hash, 'hex')]);
}

/**
 * Signs a DAG registration for a tenant.
 *
 * @example
 * const sig = signDag(signer, { tenant: 'acme', name: 'restart-web', version: '3', hash: dagSourceHash(source), registration: row.seq });
 */
export function signDag(signer: DagSigner, reg: DagRegistration): DagSignature {
  const message = dagSignatureMessage(reg);
  const signature = signer.sign(message);
  // A signer whose key does not match its public key would store DAGs that never run; say so now.
  if (signature.length !== ED25519_SIGNATURE_BYTES || !verifyDetached(signature, message, signer.publicKey)) {
    throw new OrchError('dag_signer_invalid', 'the DAG signer produced a signature its own public key does not verify');
  }
  return { signature: signature.toString('hex'), signerPublicKey: signer.publicKey.toString('hex') };
}

/**
 * Why a stored DAG's signature does not hold, or undefined when it does. `reg.registration` is the newest
 * `register_dag` audit row for this name (undefined when the log has none).
 */
export function dagSignatureProblem(
  trustedPublicKey: Buffer,
  reg: Omit<DagRegistration, 'registration'> & { registration: number | undefined },
  stored: { signature: string | null; signerPublicKey: string | null },
): string | undefined {
  if (trustedPublicKey.length !== ED25519_PUBLIC_KEY_BYTES) return 'the trusted key is not an Ed25519 public key';
  if (stored.signature === null || stored.signature === '') return 'it was never signed (register it again with `orch dag register`)';
  if (!HEX128.test(stored.signature)) return 'its stored signature is malformed';
  if (reg.registration === undefined) return 'the audit log holds no registration of it (register it again with `orch dag register`)';
  const full = { ...reg, registration: reg.registration };
  let message: Buffer;
  try {
    message = dagSignatureMessage(full);
  } catch {
    return 'its tenant, name, version or hash is malformed';
  }
  const signature = Buffer.from(stored.signature, 'hex');
  if (verifyDetached(signature, message, trustedPublicKey)) return undefined;
  if (verifyDetached(signature, dagSignatureMessageV1(full), trustedPublicKey)) {
    return 'it carries a version 1 signature, which does not cover its version and registration (register it again with `orch dag register`)';
  }
  const foreign = stored.signerPublicKey !== null && stored.signerPublicKey !== trustedPublicKey.toString('hex');
  return foreign
    ? `it is signed by another key (${(stored.signerPublicKey ?? '').slice(0, 16)}…), not by this desktop`
    : `it is not the registration this desktop signed last (audit row ${reg.registration}): its content, version, name or tenant changed, or an older signed version was put back`;
}

/** Throws OrchError(dag_signature_invalid) unless the stored DAG carries this desktop's valid signature of its newest registration. */
export function verifyDagSignature(
  trustedPublicKey: Buffer,
  reg: Omit<DagRegistration, 'registration'> & { registration: number | undefined },
  stored: { signature: string | null; signerPublicKey: string | null },
): void {
  const problem = dagSignatureProblem(trustedPublicKey, reg, stored);
  if (problem !== undefined) {
    throw new OrchError(DAG_SIGNATURE_INVALID, `the DAG "${reg.name}" in tenant "${reg.tenant}" will not run: ${problem}`, { tenant: reg.tenant, dag: reg.name });
  }
}

/**
 * Signed workflow bundles, version 1: `npm run build` (bin/build-workflows.mjs) writes the prebundled workflow
 * code and, beside it, `<bundle>.sig` signed by the desktop's Ed25519 key; a worker given the bundle
 * (`ORCH_WORKFLOW_BUNDLE`) loads it only if that signature verifies under its own desktop key. A bundle holds the
 * workflow code itself, so an unsigned one could register `runDag` or any workflow and run what nobody signed.
 *
 * Signed message (bytes):
 *
 *   UTF-8("orch-workflow-bundle-signature-v1\n") || SHA-256(bundle bytes)
 *
 * The signature file is JSON: {"v": 1, "sha256": HEX, "signature": HEX, "signerPublicKey": HEX}; the signer's key
 * in it is for display only, and the hash in it is informative: verification hashes the bytes it loads.
 */
export const WORKFLOW_BUNDLE_SIGNATURE_DOMAIN = 'orch-workflow-bundle-signature-v1\n';

/** The stable failure type of a workflow bundle that is unsigned, altered, or signed by another key. */
export const WORKFLOW_BUNDLE_INVALID = 'workflow_bundle_invalid';

export interface WorkflowBundleSignature {
  v: 1;
  /** Lowercase hex SHA-256 of the bundle's bytes. */
  sha256: string;
  /** Lowercase hex, 64 bytes. */
  signature: string;
  /** Lowercase hex, 32 bytes: who signed, for display. Not used to verify. */
  signerPublicKey: string;
}

/** Where the signature of a bundle lives: beside it, with `.sig` appended. */
export function workflowBundleSignaturePath(bundlePath: string): string {
  return `${bundlePath}.sig`;
}

function bundleMessage(sha256: Buffer): Buffer {
  return Buffer.concat([Buffer.from(WORKFLOW_BUNDLE_SIGNATURE_DOMAIN, 'utf8'), sha256]);
}

/**
 * Signs a workflow bundle's bytes with the desktop key.
 *
 * @example
 * fs.writeFileSync(`${out}.sig`, JSON.stringify(signWorkflowBundle(signer, code)));
 */
export function signWorkflowBundle(signer: DagSigner, code: Buffer | string): WorkflowBundleSignature {
  const sha256 = createHash('sha256').update(code).digest();
  const message = bundleMessage(sha256);
  const signature = signer.sign(message);
  if (signature.length !== ED25519_SIGNATURE_BYTES || !verifyDetached(signature, message, signer.publicKey)) {
    throw new OrchError('dag_signer_invalid', 'the bundle signer produced a signature its own public key does not verify');
  }
  return { v: 1, sha256: sha256.toString('hex'), signature: signature.toString('hex'), signerPublicKey: signer.publicKey.toString('hex') };
}

/** Why a bundle's signature file does not hold for `code`, or undefined when it does. */
export function workflowBundleSignatureProblem(trustedPublicKey: Buffer, code: Buffer | string, signatureText: string | undefined): string | undefined {
  if (trustedPublicKey.length !== ED25519_PUBLIC_KEY_BYTES) return 'the trusted key is not an Ed25519 public key';
  if (signatureText === undefined) return 'it has no signature file beside it';
  let sig: Partial<WorkflowBundleSignature>;
  try {
    sig = JSON.parse(signatureText) as Partial<WorkflowBundleSignature>;
  } catch {
    return 'its signature file is not JSON';
  }
  if (typeof sig !== 'object' || sig === null || sig.v !== 1 || typeof sig.signature !== 'string' || !HEX128.test(sig.signature)) {
    return 'its signature file is malformed';
  }
  const sha256 = createHash('sha256').update(code).digest();
  if (!verifyDetached(Buffer.from(sig.signature, 'hex'), bundleMessage(sha256), trustedPublicKey)) {
    const foreign = typeof sig.signerPublicKey === 'string' && sig.signerPublicKey !== trustedPublicKey.toString('hex');
    return foreign
      ? `it is signed by another key (${(sig.signerPublicKey ?? '').slice(0, 16)}…), not by this desktop`
      : 'its content changed after it was signed';
  }
  return undefined;
}

/**
 * Reads a prebundled workflow file and returns its code only if `<path>.sig` is this desktop's valid signature
 * over exactly those bytes (read once, so the code checked is the code loaded); else OrchError(workflow_bundle_invalid).
 */
export function readSignedWorkflowBundle(bundlePath: string, trustedPublicKey: Buffer | undefined): string {
  const refuse = (why: string): OrchError =>
    new OrchError(
      WORKFLOW_BUNDLE_INVALID,
      `the workflow bundle ${bundlePath} (ORCH_WORKFLOW_BUNDLE) will not load: ${why}; rebuild it on this desktop with \`npm run build\`, or unset ORCH_WORKFLOW_BUNDLE`,
      { bundle: bundlePath },
    );
  if (trustedPublicKey === undefined) throw refuse('the worker has no desktop key to check its signature with (run `orch init`)');
  let code: Buffer;
  try {
    code = fs.readFileSync(bundlePath);
  } catch (err) {
    throw refuse(`it cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let signatureText: string | undefined;
  try {
    signatureText = fs.readFileSync(workflowBundleSignaturePath(bundlePath), 'utf8');
  } catch {
    signatureText = undefined;
  }
  const problem = workflowBundleSignatureProblem(trustedPublicKey, code, signatureText);
  if (problem !== undefined) throw refuse(problem);
  return code.toString('utf8');
}
