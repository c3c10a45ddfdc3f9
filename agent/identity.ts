/**
 * The agent's own identity: an Ed25519 key (signing, and its name on the relay) and an X25519 key (envelopes
 * are sealed to it). Kept the way sshd keeps host keys: private keys in files in the agent's state directory,
 * directory 0700, key files 0600, owned by the user the agent runs as (root in production), and the agent
 * refuses to start when a key file is readable by group or others or owned by someone else.
 *
 * Files (public halves are also written, 0644, so an operator can `cat` them like ssh_host_*.pub):
 *   agent-ed25519.key   hex of libsodium's 64-byte Ed25519 secret key (seed || public key), one line
 *   agent-x25519.key    hex of the 32-byte X25519 secret, one line
 *   agent-ed25519.pub / agent-x25519.pub   hex of the public keys
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  constantTimeEqual,
  ed25519KeyPair,
  ed25519KeyPairFromSeed,
  x25519KeyPair,
  x25519PublicKey,
  type BoxKeyPair,
  type SignKeyPair,
} from '../protocol/primitives';

export const SIGN_KEY_FILE = 'agent-ed25519.key';
export const BOX_KEY_FILE = 'agent-x25519.key';
export const DEFAULT_STATE_DIR = '/var/lib/orch-agent';

export type AgentSetupErrorCode =
  /** The state directory or a key file is readable/writable by others, or owned by another user. */
  | 'insecure_permissions'
  /** No identity yet: run `orch-agent enroll` first. */
  | 'not_enrolled'
  /** A key file exists but does not hold a valid key (or only one of the two exists). */
  | 'corrupt_identity'
  /** The configuration or allowlist file is missing or invalid. */
  | 'bad_config';

/** Start-up problems the operator must fix; the CLI prints the message and exits 1. */
export class AgentSetupError extends Error {
  override readonly name = 'AgentSetupError';
  constructor(
    readonly code: AgentSetupErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface AgentIdentity {
  sign: SignKeyPair;
  box: BoxKeyPair;
  /** `SHA256:` + unpadded base64 of SHA-256(sign public || box public), like an ssh fingerprint. */
  fingerprint: string;
}

/** The state directory: --state-dir, else ORCH_AGENT_HOME, else /var/lib/orch-agent. */
export function resolveStateDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag ?? env.ORCH_AGENT_HOME ?? DEFAULT_STATE_DIR);
}

export function fingerprintOf(signPublicKey: Buffer, boxPublicKey: Buffer): string {
  return `SHA256:${createHash('sha256').update(signPublicKey).update(boxPublicKey).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Create the state directory (0700) if missing, and check that an existing one is ours and not writable by
 * others. Returns its absolute path.
 */
export function ensureStateDir(dir: string): string {
  const abs = path.resolve(dir);
  fs.mkdirSync(abs, { recursive: true, mode: 0o700 });
  checkOwnedAndPrivate(abs, 0o022, 'state directory');
  // Ours and not writable by others: tighten it to 0700 (an existing directory may have been made 0755).
  if ((fs.statSync(abs).mode & 0o077) !== 0) fs.chmodSync(abs, 0o700);
  return abs;
}

/**
 * sshd's rule, applied to any file the agent trusts: owned by the user we run as, and no permission bits in
 * `forbiddenBits` set (0o077 for secrets: nothing for group or others; 0o022 for files that only must not be
 * writable by others, like the allowlist).
 */
export function checkOwnedAndPrivate(file: string, forbiddenBits: number, what: string): void {
  const st = fs.lstatSync(file);
  if (st.isSymbolicLink()) throw new AgentSetupError('insecure_permissions', `${what} ${file} is a symbolic link; use the real path`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new AgentSetupError('insecure_permissions', `${what} ${file} is owned by uid ${st.uid}, not by the agent's user (uid ${uid}); chown it`);
  }
  const mode = st.mode & 0o777;
  if ((mode & forbiddenBits) !== 0) {
    const want = (mode & ~forbiddenBits).toString(8).padStart(4, '0');
    throw new AgentSetupError(
      'insecure_permissions',
      `${what} ${file} has mode ${mode.toString(8).padStart(4, '0')}, which lets other users ${forbiddenBits & 0o044 ? 'read' : 'write'} it; run: chmod ${want} ${file}`,
    );
  }
}

/** Write `data` to `file` atomically with `mode`, refusing to overwrite an existing file. */
export function writeNewPrivateFile(file: string, data: string, mode = 0o600): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  // link + unlink: fails if the target appeared meanwhile, unlike rename.
  try {
    fs.linkSync(tmp, file);
  } finally {
    fs.unlinkSync(tmp);
  }
}

function readKeyFile(file: string, bytes: number): Buffer {
  checkOwnedAndPrivate(file, 0o077, 'private key file');
  const text = fs.readFileSync(file, 'utf8').trim();
  if (!new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(text)) {
    throw new AgentSetupError('corrupt_identity', `${file} does not hold a ${bytes}-byte key in hex; restore it from backup or re-enroll`);
  }
  const key = Buffer.alloc(bytes);
  key.write(text, 'hex');
  return key;
}

/** Load the identity from `stateDir`. Throws AgentSetupError('not_enrolled') when there is none. */
export function loadAgentIdentity(stateDir: string): AgentIdentity {
  const dir = path.resolve(stateDir);
  const signFile = path.join(dir, SIGN_KEY_FILE);
  const boxFile = path.join(dir, BOX_KEY_FILE);
  const haveSign = fs.existsSync(signFile);
  const haveBox = fs.existsSync(boxFile);
  if (!haveSign && !haveBox) throw new AgentSetupError('not_enrolled', `no agent identity in ${dir}; run: orch-agent enroll --state-dir ${dir} ...`);
  if (!haveSign || !haveBox) {
    throw new AgentSetupError('corrupt_identity', `only one of ${SIGN_KEY_FILE} and ${BOX_KEY_FILE} exists in ${dir}; restore the other or re-enroll with a fresh state dir`);
  }
  checkOwnedAndPrivate(dir, 0o022, 'state directory');
  const signSecret = readKeyFile(signFile, 64);
  const boxSecret = readKeyFile(boxFile, 32);
  // The 64-byte secret key carries its public key; recompute it from the seed so a damaged file is caught here
  // rather than as envelopes nobody can verify.
  const derived = ed25519KeyPairFromSeed(signSecret.subarray(0, 32));
  if (!constantTimeEqual(derived.publicKey, signSecret.subarray(32))) {
    throw new AgentSetupError('corrupt_identity', `${signFile} is damaged (public half does not match the seed)`);
  }
  const sign = { publicKey: derived.publicKey, secretKey: signSecret };
  const box = { publicKey: x25519PublicKey(boxSecret), secretKey: boxSecret };
  return { sign, box, fingerprint: fingerprintOf(sign.publicKey, box.publicKey) };
}

/** Load the identity, creating a fresh one (and the state directory) if there is none. */
export function loadOrCreateAgentIdentity(stateDir: string): { identity: AgentIdentity; created: boolean } {
  const dir = ensureStateDir(stateDir);
  try {
    return { identity: loadAgentIdentity(dir), created: false };
  } catch (err) {
    if (!(err instanceof AgentSetupError && err.code === 'not_enrolled')) throw err;
  }
  const sign = ed25519KeyPair();
  const box = x25519KeyPair();
  writeNewPrivateFile(path.join(dir, SIGN_KEY_FILE), `${sign.secretKey.toString('hex')}\n`);
  writeNewPrivateFile(path.join(dir, BOX_KEY_FILE), `${box.secretKey.toString('hex')}\n`);
  for (const [name, key] of [['agent-ed25519.pub', sign.publicKey], ['agent-x25519.pub', box.publicKey]] as const) {
    fs.writeFileSync(path.join(dir, name), `${key.toString('hex')}\n`, { mode: 0o644 });
  }
  return { identity: loadAgentIdentity(dir), created: true };
}
