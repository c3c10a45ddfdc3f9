/**
 * The desktop's identity: an Ed25519 key pair (signing envelopes and relay challenges) and a separate X25519 key
 * pair (the key agreement envelopes are sealed to), generated with sodium-native at `orch init`.
 *
 * Where things live (see desktop-worker/KEYCHAIN.md):
 * - the private keys in the OS keychain only (macOS Keychain, Windows Credential Manager, a Secret Service such as
 *   gnome-keyring on Linux), through @napi-rs/keyring, service `orch`, accounts `<account>/ed25519` (the 32-byte
 *   RFC 8032 seed) and `<account>/x25519` (the 32-byte secret scalar);
 * - the public keys, the fingerprint and which keychain account holds the private half in
 *   `<ORCH_HOME>/identity.json` (mode 0600, public data only).
 *
 * `<account>` defaults to `home-<first 16 hex digits of SHA-256(absolute ORCH_HOME)>`, so two ORCH_HOMEs on one
 * machine (a test run next to the real one) never share or overwrite each other's keys. identity.json records
 * the account, so moving an ORCH_HOME keeps finding its keys.
 *
 * There is no fallback: when no keychain is reachable this fails with {@link KeychainUnavailableError} and writes
 * nothing. On Linux the library is pinned to the Secret Service; its other backend, the kernel keyring, forgets
 * everything at reboot, which would silently replace an identity agents have pinned.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AsyncEntry, type EntryOptions } from '@napi-rs/keyring';
import {
  ED25519_SEED_BYTES,
  X25519_KEY_BYTES,
  constantTimeEqual,
  ed25519KeyPair,
  ed25519KeyPairFromSeed,
  randomBytes,
  x25519PublicKey,
  zeroize,
  type BoxKeyPair,
  type SignKeyPair,
} from '../protocol/primitives';
import { OrchError } from '../protocol/errors';
import { orchHome, writePrivateJsonAtomic } from '../infra/paths';
import { Env, setting } from '../infra/settings';

export const DEFAULT_KEYCHAIN_SERVICE = 'orch';
/** Overrides the keychain service name of a new identity (tests, several identities for one user). */
export const KEYCHAIN_SERVICE_ENV = Env.keychainService;
export const IDENTITY_FILE = 'identity.json';

/**
 * Error codes of this module (the `code` of the thrown OrchError):
 * - `keychain_unavailable`: no OS keychain could be reached or used (KeychainUnavailableError);
 * - `identity_missing`: no identity yet (run `orch init`);
 * - `identity_keys_missing`: identity.json names keychain entries that are gone (keychain reset, or the
 *   ORCH_HOME was copied from another machine or user);
 * - `identity_mismatch`: the keychain's private keys do not belong to the public keys in identity.json;
 * - `identity_corrupt`: identity.json or a keychain entry is not in the expected form.
 */
export type IdentityErrorCode = 'keychain_unavailable' | 'identity_missing' | 'identity_keys_missing' | 'identity_mismatch' | 'identity_corrupt';

/** No OS keychain is reachable, or it refused the operation (locked with no way to prompt, no default keyring). */
export class KeychainUnavailableError extends OrchError {
  constructor(detail: string, cause?: unknown) {
    const why = describeCause(cause);
    super('keychain_unavailable', `${detail}${why ? ` (${why})` : ''}: ${keychainHint()}; Orch never stores private keys in a file instead`, { cause: why });
    this.name = 'KeychainUnavailableError';
  }
}

function keychainHint(): string {
  switch (process.platform) {
    case 'darwin':
      return 'unlock the login keychain (Keychain Access) and try again';
    case 'win32':
      return 'the Windows Credential Manager must be available to this user';
    default:
      return 'no usable Secret Service on D-Bus; install gnome-keyring (or another Secret Service such as KeePassXC) and run inside a desktop session, or headless: bash infra/ci-keyring.sh COMMAND';
  }
}

function describeCause(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  const message = cause instanceof Error ? cause.message : String(cause);
  return message.split('\n')[0]?.replace(/^Platform failure: /, '').slice(0, 200);
}

/** Where the private keys are kept. The OS keychain in production; injected so callers choose the account. */
export interface SecretStore {
  /** The stored bytes, or null when there is no entry. Throws KeychainUnavailableError when the store cannot be used. */
  get(account: string): Promise<Buffer | null>;
  set(account: string, secret: Buffer): Promise<void>;
  /** True if an entry was deleted. */
  delete(account: string): Promise<boolean>;
}

/**
 * The OS keychain through @napi-rs/keyring. Every library failure becomes a KeychainUnavailableError: the library
 * reports them all as `GenericFailure`, and for Orch they all mean the same thing (we cannot keep a key there).
 */
export class OsKeychain implements SecretStore {
  private readonly options: EntryOptions | undefined;

  constructor(readonly service: string = DEFAULT_KEYCHAIN_SERVICE) {
    // Pinned on Linux: without it the library falls back to the kernel keyring, which does not survive a reboot.
    this.options = process.platform === 'linux' ? { linux: { store: 'secret-service' } } : undefined;
  }

  private entry(account: string): AsyncEntry {
    try {
      return new AsyncEntry(this.service, account, this.options);
    } catch (err) {
      throw new KeychainUnavailableError('cannot open the OS keychain', err);
    }
  }

  async get(account: string): Promise<Buffer | null> {
    let raw: number[] | null;
    try {
      raw = await this.entry(account).getSecret();
    } catch (err) {
      if (err instanceof KeychainUnavailableError) throw err;
      throw new KeychainUnavailableError('cannot read from the OS keychain', err);
    }
    if (raw === null) return null;
    const out = Buffer.alloc(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw[i]!;
    raw.fill(0);
    return out;
  }

  async set(account: string, secret: Buffer): Promise<void> {
    try {
      await this.entry(account).setSecret(secret);
    } catch (err) {
      if (err instanceof KeychainUnavailableError) throw err;
      throw new KeychainUnavailableError('cannot write to the OS keychain', err);
    }
  }

  async delete(account: string): Promise<boolean> {
    try {
      return await this.entry(account).deleteCredential();
    } catch (err) {
      if (err instanceof KeychainUnavailableError) throw err;
      throw new KeychainUnavailableError('cannot delete from the OS keychain', err);
    }
  }
}

export interface DesktopIdentity {
  sign: SignKeyPair;
  box: BoxKeyPair;
  /** `SHA256:` + unpadded base64 of SHA-256(sign public || box public), like an ssh fingerprint (the agent's too). */
  fingerprint: string;
  keychain: { service: string; account: string };
  /** True when this call generated the keys (first `orch init`). */
  created: boolean;
}

/** The public half, as written to identity.json and printed by `orch whoami`. */
export interface PublicIdentity {
  v: 1;
  sign: { alg: 'ed25519'; publicKey: string };
  box: { alg: 'x25519'; publicKey: string };
  fingerprint: string;
  keychain: { service: string; account: string };
  createdAt: string;
}

export interface IdentityOptions {
  /** Keychain service name (default: the one identity.json records, else ORCH_KEYCHAIN_SERVICE, else 'orch'). */
  service?: string;
  /** Keychain account prefix (default derived from ORCH_HOME, see the module comment). */
  account?: string;
  /** ORCH_HOME (default: orchHome()). */
  home?: string;
  /** Default: the OS keychain for `service`. */
  store?: SecretStore;
}

/** The default keychain account of an ORCH_HOME: stable for a path, different for different paths. */
export function defaultKeychainAccount(home: string): string {
  return `home-${createHash('sha256').update(path.resolve(home)).digest('hex').slice(0, 16)}`;
}

/** The same definition as the agent's (agent/internal/identity), so operators compare fingerprints of one shape. */
export function fingerprintOf(signPublicKey: Buffer, boxPublicKey: Buffer): string {
  return `SHA256:${createHash('sha256').update(signPublicKey).update(boxPublicKey).digest('base64').replace(/=+$/, '')}`;
}

const ACCOUNT_PATTERN = /^[A-Za-z0-9._@-]{1,100}$/;
const HEX64 = /^[0-9a-f]{64}$/;

function identityFile(home: string): string {
  return path.join(home, IDENTITY_FILE);
}

/** identity.json, or undefined when there is none. Throws identity_corrupt when it is not what we write. */
export function readPublicIdentity(home: string = orchHome()): PublicIdentity | undefined {
  const file = identityFile(home);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OrchError('identity_corrupt', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const corrupt = (why: string) => new OrchError('identity_corrupt', `${file} ${why}; move it away and run \`orch init\` (agents will have to be re-added with the new keys)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw corrupt('is not valid JSON');
  }
  const p = parsed as Partial<PublicIdentity> | null;
  if (typeof p !== 'object' || p === null || p.v !== 1) throw corrupt('has no known version');
  if (p.sign?.alg !== 'ed25519' || typeof p.sign.publicKey !== 'string' || !HEX64.test(p.sign.publicKey)) throw corrupt('has no valid Ed25519 public key');
  if (p.box?.alg !== 'x25519' || typeof p.box.publicKey !== 'string' || !HEX64.test(p.box.publicKey)) throw corrupt('has no valid X25519 public key');
  if (typeof p.keychain?.service !== 'string' || typeof p.keychain.account !== 'string' || !ACCOUNT_PATTERN.test(p.keychain.account)) {
    throw corrupt('does not say which keychain entry holds the private keys');
  }
  const fingerprint = fingerprintOf(Buffer.from(p.sign.publicKey, 'hex'), Buffer.from(p.box.publicKey, 'hex'));
  if (p.fingerprint !== fingerprint) throw corrupt('has a fingerprint that does not match its keys');
  return {
    v: 1,
    sign: { alg: 'ed25519', publicKey: p.sign.publicKey },
    box: { alg: 'x25519', publicKey: p.box.publicKey },
    fingerprint,
    keychain: { service: p.keychain.service, account: p.keychain.account },
    createdAt: typeof p.createdAt === 'string' ? p.createdAt : '',
  };
}

/** Write identity.json atomically, mode 0600, in a 0700 ORCH_HOME. */
function writePublicIdentity(home: string, identity: PublicIdentity): void {
  writePrivateJsonAtomic(identityFile(home), identity);
}

function publicOf(identity: DesktopIdentity, createdAt: string): PublicIdentity {
  return {
    v: 1,
    sign: { alg: 'ed25519', publicKey: identity.sign.publicKey.toString('hex') },
    box: { alg: 'x25519', publicKey: identity.box.publicKey.toString('hex') },
    fingerprint: identity.fingerprint,
    keychain: identity.keychain,
    createdAt,
  };
}

interface Resolved {
  home: string;
  service: string;
  account: string;
  store: SecretStore;
  existing: PublicIdentity | undefined;
}

function resolve(opts: IdentityOptions): Resolved {
  const home = path.resolve(opts.home ?? orchHome());
  const existing = readPublicIdentity(home);
  // An existing identity.json says where its keys are; explicit options win (tests, several identities).
  const service = opts.service ?? existing?.keychain.service ?? (setting(KEYCHAIN_SERVICE_ENV) ?? DEFAULT_KEYCHAIN_SERVICE);
  if (!ACCOUNT_PATTERN.test(service)) {
    throw new OrchError('bad_input', `keychain service "${service}" is not valid: use 1 to 100 letters, digits, ".", "_", "@" or "-"`);
  }
  const account = opts.account ?? existing?.keychain.account ?? defaultKeychainAccount(home);
  if (!ACCOUNT_PATTERN.test(account)) {
    throw new OrchError('bad_input', `keychain account "${account}" is not valid: use 1 to 100 letters, digits, ".", "_", "@" or "-"`);
  }
  return { home, service, account, store: opts.store ?? new OsKeychain(service), existing };
}

const signAccount = (account: string) => `${account}/ed25519`;
const boxAccount = (account: string) => `${account}/x25519`;

/** Read both private keys; null when neither exists. A half-present pair is reported as missing keys. */
async function readKeys(r: Resolved): Promise<{ sign: SignKeyPair; box: BoxKeyPair } | null | 'partial'> {
  const seed = await r.store.get(signAccount(r.account));
  const boxSecret = await r.store.get(boxAccount(r.account));
  if (seed === null && boxSecret === null) return null;
  if (seed === null || boxSecret === null) {
    zeroize(seed ?? undefined, boxSecret ?? undefined);
    return 'partial';
  }
  if (seed.length !== ED25519_SEED_BYTES || boxSecret.length !== X25519_KEY_BYTES) {
    zeroize(seed, boxSecret);
    throw new OrchError('identity_corrupt', `the keychain entries ${r.service}/${signAccount(r.account)} and ${boxAccount(r.account)} do not hold 32-byte keys`);
  }
  const sign = ed25519KeyPairFromSeed(seed);
  zeroize(seed);
  return { sign, box: { publicKey: x25519PublicKey(boxSecret), secretKey: boxSecret } };
}

function build(r: Resolved, keys: { sign: SignKeyPair; box: BoxKeyPair }, created: boolean): DesktopIdentity {
  return {
    sign: keys.sign,
    box: keys.box,
    fingerprint: fingerprintOf(keys.sign.publicKey, keys.box.publicKey),
    keychain: { service: r.service, account: r.account },
    created,
  };
}

function checkMatches(r: Resolved, identity: DesktopIdentity): void {
  const pub = r.existing;
  if (!pub) return;
  const same =
    constantTimeEqual(Buffer.from(pub.sign.publicKey, 'hex'), identity.sign.publicKey) &&
    constantTimeEqual(Buffer.from(pub.box.publicKey, 'hex'), identity.box.publicKey);
  if (!same) {
    zeroize(identity.sign.secretKey, identity.box.secretKey);
    throw new OrchError(
      'identity_mismatch',
      `the private keys in the keychain (${r.service}, ${r.account}) do not belong to the public keys in ${identityFile(r.home)}; restore the right identity.json, or move it away and run \`orch init\``,
    );
  }
}

/**
 * The desktop identity of an ORCH_HOME, from the keychain. Throws `identity_missing` when there is none (run
 * `orch init`), KeychainUnavailableError when the keychain cannot be reached, and never creates anything.
 */
export async function loadDesktopIdentity(opts: IdentityOptions = {}): Promise<DesktopIdentity> {
  const r = resolve(opts);
  if (!r.existing) throw new OrchError('identity_missing', `no desktop identity in ${r.home}: run \`orch init\``);
  const keys = await readKeys(r);
  if (keys === null || keys === 'partial') {
    throw new OrchError(
      'identity_keys_missing',
      `${identityFile(r.home)} exists but the keychain has no private keys for it (service "${r.service}", account "${r.account}"): the keychain was reset, or this ORCH_HOME comes from another machine or user; move identity.json away and run \`orch init\` for a new identity (agents must then be re-added)`,
    );
  }
  const identity = build(r, keys, false);
  checkMatches(r, identity);
  return identity;
}

/**
 * The desktop identity, generated and stored on first use (`orch init`).
 *
 * - identity.json present: its keys must be in the keychain (else `identity_keys_missing`: we never replace an
 *   identity agents may have pinned).
 * - identity.json absent: keys found in the keychain are reused and identity.json is written again; none (or
 *   half a pair, left by an interrupted first run that never published its public keys) means fresh keys.
 *
 * @example
 * const me = await loadOrCreateDesktopIdentity({ home: '/home/ana/.local/share/orch' });
 * console.log(me.fingerprint); // 'SHA256:kq1c...'
 */
export async function loadOrCreateDesktopIdentity(opts: IdentityOptions = {}): Promise<DesktopIdentity> {
  const r = resolve(opts);
  if (r.existing) return loadDesktopIdentity(opts);
  const found = await readKeys(r);
  let identity: DesktopIdentity;
  if (found !== null && found !== 'partial') {
    identity = build(r, found, false);
  } else {
    const sign = ed25519KeyPair();
    const boxSecret = randomBytes(X25519_KEY_BYTES);
    const box: BoxKeyPair = { secretKey: boxSecret, publicKey: x25519PublicKey(boxSecret) };
    const seed = Buffer.from(sign.secretKey.subarray(0, ED25519_SEED_BYTES));
    try {
      // Keychain first, identity.json last: the public keys are published only once both private keys are safe.
      await r.store.set(signAccount(r.account), seed);
      await r.store.set(boxAccount(r.account), box.secretKey);
    } finally {
      zeroize(seed);
    }
    identity = build(r, { sign, box }, true);
  }
  writePublicIdentity(r.home, publicOf(identity, new Date().toISOString()));
  return identity;
}

/** Delete the keychain entries and identity.json of an ORCH_HOME (tests, and a future `orch init --reset`). */
export async function removeDesktopIdentity(opts: IdentityOptions = {}): Promise<void> {
  const r = resolve(opts);
  await r.store.delete(signAccount(r.account));
  await r.store.delete(boxAccount(r.account));
  fs.rmSync(identityFile(r.home), { force: true });
}

/** The public identity as `orch whoami` shows it. */
export function publicIdentityOf(identity: DesktopIdentity): Omit<PublicIdentity, 'createdAt'> {
  const { createdAt: _unused, ...rest } = publicOf(identity, '');
  return rest;
}
