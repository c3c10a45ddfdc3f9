/**
 * Nothing in Temporal's database in plaintext: a PayloadCodec that seals every payload the Orch worker and the
 * `orch` CLI send (workflow and activity inputs and results, signals, queries, memo, and, through the failure
 * converter's `encodeCommonAttributes`, failure messages and stack traces) with XChaCha20-Poly1305 (IETF,
 * libsodium through sodium-native) under a 32-byte data key.
 *
 * Where the keys live:
 * - each data key in the OS keychain, next to the desktop identity: service as identity.json says, account
 *   `<account>/payload-key/<key id>` (32 bytes);
 * - which keys exist and which one encrypts new payloads in `<ORCH_HOME>/payload-keys.json` (mode 0600, key ids
 *   and dates only, no key material).
 *
 * An encrypted payload: metadata `encoding: binary/encrypted` and `encryption-key-id: <key id>` (the names of
 * Temporal's encryption samples), data = 24-byte random nonce || AEAD(serialized temporal.api.common.v1.Payload),
 * the additional data binding the key id. `orch keys rotate` adds a key and makes it current; older keys stay,
 * so every payload already in history still decodes. A payload without the encrypted encoding passes through
 * decoding unchanged (runs started from the Temporal UI without the codec server send plain input).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { kdf, randomBytes, signDetached, verifyDetached, x25519, x25519KeyPair, xchacha20Poly1305Open, xchacha20Poly1305Seal, zeroize } from '../protocol/primitives';
import { OrchError } from '../protocol/errors';
import { decodePayload, encodePayload } from './payload-wire';
import { writePrivateJsonAtomic } from '../infra/paths';
import { setting } from '../infra/settings';
import { DEFAULT_KEYCHAIN_SERVICE, KEYCHAIN_SERVICE_ENV, OsKeychain, defaultKeychainAccount, readPublicIdentity, type DesktopIdentity, type SecretStore } from './identity';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const METADATA_ENCODING_KEY = 'encoding';
export const METADATA_KEY_ID = 'encryption-key-id';
export const PAYLOAD_KEYS_FILE = 'payload-keys.json';
/** The workflow bundle's failure converter (encodeCommonAttributes), for bundles of a worker with the codec. */
export const FAILURE_CONVERTER_PATH = fileURLToPath(new URL('../workflows/failure-converter.cjs', import.meta.url));

const KEY_BYTES = 32;
const NONCE_BYTES = 24;
const KEY_ID = /^pk-[0-9a-f]{16}$/;
const ACCOUNT_PATTERN = /^[A-Za-z0-9._@-]{1,100}$/;

/** payload-keys.json: public data only. */
export interface PayloadKeysFile {
  v: 1;
  keychain: { service: string; account: string };
  /** The key new payloads are encrypted with. */
  current: string;
  keys: Array<{ id: string; createdAt: string }>;
}

export interface PayloadKeyInfo {
  id: string;
  createdAt: string;
  current: boolean;
}

/** The data keys of one ORCH_HOME: reads the list file and the keychain, rotates. */
export class PayloadKeyring {
  private constructor(
    readonly home: string,
    private readonly store: SecretStore,
    private readonly keychain: { service: string; account: string },
  ) {}

  /**
   * The keyring of an ORCH_HOME; its keychain entries are under the identity's account (identity.json), else
   * the defaults the identity would use. `store` is for tests of this module alone.
   */
  static open(home: string, store?: SecretStore): PayloadKeyring {
    const file = readKeysFile(home);
    const identity = readPublicIdentity(home);
    const keychain = file?.keychain ??
      identity?.keychain ?? { service: setting(KEYCHAIN_SERVICE_ENV) ?? DEFAULT_KEYCHAIN_SERVICE, account: defaultKeychainAccount(home) };
    return new PayloadKeyring(path.resolve(home), store ?? new OsKeychain(keychain.service), keychain);
  }

  /** True once `orch up` (or `orch keys rotate`) made the first key. */
  static exists(home: string): boolean {
    return fs.existsSync(path.join(home, PAYLOAD_KEYS_FILE));
  }

  list(): PayloadKeyInfo[] {
    const file = readKeysFile(this.home);
    if (!file) return [];
    return file.keys.map((k) => ({ id: k.id, createdAt: k.createdAt, current: k.id === file.current }));
  }

  /** Makes the first key when there is none. Returns true when it made one. */
  async ensure(): Promise<boolean> {
    if (readKeysFile(this.home)) return false;
    await this.rotate();
    return true;
  }

  /** A new key, made current; the older ones are kept for decoding. Keychain first, the list file last. */
  async rotate(): Promise<PayloadKeyInfo> {
    const existing = readKeysFile(this.home);
    const id = `pk-${randomBytes(8).toString('hex')}`;
    const key = randomBytes(KEY_BYTES);
    try {
      await this.store.set(keyAccount(this.keychain.account, id), key);
    } finally {
      zeroize(key);
    }
    const createdAt = new Date().toISOString();
    writeKeysFile(this.home, { v: 1, keychain: this.keychain, current: id, keys: [...(existing?.keys ?? []), { id, createdAt }] });
    return { id, createdAt, current: true };
  }

  /** Every key the list names, from the keychain. A key the list names but the keychain lacks is an error. */
  async load(): Promise<LoadedKeys> {
    const file = readKeysFile(this.home);
    if (!file) throw new OrchError('payload_keys_missing', `no payload keys in ${this.home}: start Orch with \`orch up\` (it makes the first one)`);
    const keys = new Map<string, Buffer>();
    for (const k of file.keys) {
      const secret = await this.store.get(keyAccount(this.keychain.account, k.id));
      if (secret === null) {
        throw new OrchError(
          'payload_key_missing',
          `the payload key ${k.id} listed in ${path.join(this.home, PAYLOAD_KEYS_FILE)} is not in the OS keychain (service "${this.keychain.service}", account "${keyAccount(this.keychain.account, k.id)}"): payloads encrypted with it cannot be read`,
        );
      }
      if (secret.length !== KEY_BYTES) throw new OrchError('payload_key_corrupt', `the keychain entry of payload key ${k.id} does not hold a 32-byte key`);
      keys.set(k.id, secret);
    }
    return { current: file.current, keys };
  }

  /**
   * Adds keys another worker of the same cluster exported (see exportPayloadKeys): stored in the keychain, listed,
   * and the exporter's current key made current here too, so both workers encrypt with one key and read each
   * other's payloads. Keys already here are kept.
   */
  async importKeys(keys: Array<{ id: string; createdAt: string; key: Buffer }>, current: string): Promise<string[]> {
    const existing = readKeysFile(this.home);
    const known = new Set(existing?.keys.map((k) => k.id) ?? []);
    const added: string[] = [];
    for (const k of keys) {
      if (!KEY_ID.test(k.id) || k.key.length !== KEY_BYTES) throw new OrchError('payload_keys_corrupt', `the imported key ${k.id.slice(0, 40)} is not a valid payload key`);
      if (known.has(k.id)) continue;
      await this.store.set(keyAccount(this.keychain.account, k.id), k.key);
      added.push(k.id);
    }
    const list = [...(existing?.keys ?? []), ...keys.filter((k) => added.includes(k.id)).map((k) => ({ id: k.id, createdAt: k.createdAt }))];
    if (!list.some((k) => k.id === current)) throw new OrchError('payload_keys_corrupt', `the imported current key ${current.slice(0, 40)} is not among the imported keys`);
    writeKeysFile(this.home, { v: 1, keychain: this.keychain, current, keys: list });
    return added;
  }

  /** Deletes the keychain entries and the list (tests). */
  async remove(): Promise<void> {
    const file = readKeysFile(this.home);
    for (const k of file?.keys ?? []) await this.store.delete(keyAccount(this.keychain.account, k.id));
    fs.rmSync(path.join(this.home, PAYLOAD_KEYS_FILE), { force: true });
  }
}

export interface LoadedKeys {
  current: string;
  keys: Map<string, Buffer>;
}

function keyAccount(account: string, id: string): string {
  return `${account}/payload-key/${id}`;
}

function readKeysFile(home: string): PayloadKeysFile | undefined {
  const file = path.join(home, PAYLOAD_KEYS_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OrchError('payload_keys_corrupt', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const corrupt = (why: string) => new OrchError('payload_keys_corrupt', `${file} ${why}`);
  let p: Partial<PayloadKeysFile> | null;
  try {
    p = JSON.parse(text) as Partial<PayloadKeysFile> | null;
  } catch {
    throw corrupt('is not valid JSON');
  }
  if (typeof p !== 'object' || p === null || p.v !== 1) throw corrupt('has no known version');
  if (typeof p.keychain?.service !== 'string' || typeof p.keychain.account !== 'string' || !ACCOUNT_PATTERN.test(p.keychain.account) || !ACCOUNT_PATTERN.test(p.keychain.service)) {
    throw corrupt('does not say which keychain entries hold the keys');
  }
  if (!Array.isArray(p.keys) || p.keys.length === 0 || !p.keys.every((k) => typeof k?.id === 'string' && KEY_ID.test(k.id) && typeof k.createdAt === 'string')) {
    throw corrupt('has no valid key list');
  }
  if (typeof p.current !== 'string' || !p.keys.some((k) => k.id === p!.current)) throw corrupt('names a current key it does not list');
  return { v: 1, keychain: { service: p.keychain.service, account: p.keychain.account }, current: p.current, keys: p.keys.map((k) => ({ id: k.id, createdAt: k.createdAt })) };
}

function writeKeysFile(home: string, content: PayloadKeysFile): void {
  writePrivateJsonAtomic(path.join(home, PAYLOAD_KEYS_FILE), content);
}

function aad(keyId: string): Buffer {
  return Buffer.from(`orch-payload-v1\0${keyId}`, 'utf8');
}

/**
 * The codec. Encodes with the current key; decodes with the key a payload names. A key id it does not know
 * makes it reload the keyring once (a `orch keys rotate` while the worker runs), then fails with the key's id.
 */
export class EncryptionCodec implements PayloadCodec {
  constructor(
    private keys: LoadedKeys,
    private readonly reload?: () => Promise<LoadedKeys>,
  ) {}

  get currentKeyId(): string {
    return this.keys.current;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const id = this.keys.current;
    const key = this.keys.keys.get(id);
    if (!key) throw new OrchError('payload_key_missing', `payload key ${id} is not loaded`);
    return payloads.map((payload) => {
      const plain = Buffer.from(encodePayload(payload));
      const nonce = randomBytes(NONCE_BYTES);
      const sealed = xchacha20Poly1305Seal(key, nonce, plain, aad(id));
      zeroize(plain);
      return {
        metadata: {
          [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING),
          [METADATA_KEY_ID]: Buffer.from(id),
        },
        data: Buffer.concat([nonce, sealed]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    const out: Payload[] = [];
    for (const payload of payloads) {
      const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
      if (!encoding || Buffer.from(encoding).toString() !== ENCRYPTED_ENCODING) {
        out.push(payload);
        continue;
      }
      const rawId = payload.metadata?.[METADATA_KEY_ID];
      const id = rawId ? Buffer.from(rawId).toString() : '';
      let key = this.keys.keys.get(id);
      if (!key && this.reload && KEY_ID.test(id)) {
        this.keys = await this.reload();
        key = this.keys.keys.get(id);
      }
      if (!key) throw new OrchError('payload_key_unknown', `a payload is encrypted with key "${id.slice(0, 40)}", which this desktop does not have`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      const plain = data.length > NONCE_BYTES ? xchacha20Poly1305Open(key, data.subarray(0, NONCE_BYTES), data.subarray(NONCE_BYTES), aad(id)) : null;
      if (plain === null) throw new OrchError('payload_corrupt', `a payload encrypted with key ${id} does not decrypt (modified, or not Orch's)`);
      out.push(decodePayload(plain));
    }
    return out;
  }
}

/** The codec of an ORCH_HOME's keyring (all keys loaded; reloaded on an unknown key id). */
export async function loadPayloadCodec(home: string, store?: SecretStore): Promise<EncryptionCodec> {
  const keyring = PayloadKeyring.open(home, store);
  return new EncryptionCodec(await keyring.load(), () => keyring.load());
}

/**
 * The data converter a client or worker with the codec uses: payloads through the codec, failures with their
 * message and stack trace moved into an encoded (so encrypted) payload (workflows/failure-converter.cjs). A worker
 * bundling at start bundles that converter too; `npm run build` puts it in prebuilt bundles.
 */
export function encryptedDataConverter(codec: PayloadCodec): DataConverter {
  return { payloadCodecs: [codec], failureConverterPath: FAILURE_CONVERTER_PATH };
}

/**
 * The payload keys of this desktop, for another worker of the same cluster (issue 7: workers on one task queue
 * must read each other's payloads): sealed to that desktop's X25519 key (ephemeral X25519, BLAKE2b KDF,
 * XChaCha20-Poly1305) and signed with this desktop's Ed25519 key, which the importer names with --from.
 */
export interface PayloadKeysExport {
  v: 1;
  kind: 'orch-payload-keys';
  from: string;
  to: string;
  ephemeral: string;
  nonce: string;
  ciphertext: string;
  signature: string;
}

const EXPORT_LABEL = Buffer.from('orch-payload-keys-export-v1');
const HEX64 = /^[0-9a-f]{64}$/;

function exportSigned(e: Omit<PayloadKeysExport, 'signature'>): Buffer {
  return Buffer.from(JSON.stringify([EXPORT_LABEL.toString(), e.v, e.kind, e.from, e.to, e.ephemeral, e.nonce, e.ciphertext]));
}

function exportKey(shared: Buffer, ephemeral: Buffer, to: Buffer): Buffer {
  return kdf(shared, Buffer.concat([ephemeral, to, EXPORT_LABEL]), 32);
}

export async function exportPayloadKeys(keyring: PayloadKeyring, identity: DesktopIdentity, recipientBoxKeyHex: string): Promise<PayloadKeysExport> {
  const toHex = recipientBoxKeyHex.toLowerCase();
  if (!HEX64.test(toHex)) throw new OrchError('bad_input', '--to must be the other desktop\'s key agreement key (X25519, 64 hex digits: `orch whoami` there)');
  await keyring.ensure();
  const loaded = await keyring.load();
  const list = keyring.list();
  const plain = Buffer.from(
    JSON.stringify({ current: loaded.current, keys: list.map((k) => ({ id: k.id, createdAt: k.createdAt, key: loaded.keys.get(k.id)!.toString('base64') })) }),
  );
  const eph = x25519KeyPair();
  const to = Buffer.from(toHex, 'hex');
  const shared = x25519(eph.secretKey, to);
  const key = exportKey(shared, eph.publicKey, to);
  const nonce = randomBytes(NONCE_BYTES);
  const ciphertext = xchacha20Poly1305Seal(key, nonce, plain, EXPORT_LABEL);
  zeroize(plain, shared, key, eph.secretKey);
  for (const k of loaded.keys.values()) zeroize(k);
  const unsigned = {
    v: 1 as const,
    kind: 'orch-payload-keys' as const,
    from: identity.sign.publicKey.toString('hex'),
    to: toHex,
    ephemeral: eph.publicKey.toString('hex'),
    nonce: nonce.toString('hex'),
    ciphertext: ciphertext.toString('base64'),
  };
  return { ...unsigned, signature: signDetached(exportSigned(unsigned), identity.sign.secretKey).toString('hex') };
}

/** Opens an export made for this desktop by the desktop whose signing key is `fromSignKeyHex`, and imports its keys. */
export async function importPayloadKeys(keyring: PayloadKeyring, identity: DesktopIdentity, blob: unknown, fromSignKeyHex: string): Promise<{ added: string[]; current: string }> {
  const e = blob as Partial<PayloadKeysExport> | null;
  const bad = (why: string) => new OrchError('payload_keys_import_refused', why);
  if (typeof e !== 'object' || e === null || e.v !== 1 || e.kind !== 'orch-payload-keys') throw bad('not an `orch keys export` file');
  for (const f of ['from', 'to', 'ephemeral'] as const) if (typeof e[f] !== 'string' || !HEX64.test(e[f])) throw bad(`its ${f} is not a 32-byte hex key`);
  if (typeof e.nonce !== 'string' || !/^[0-9a-f]{48}$/.test(e.nonce) || typeof e.ciphertext !== 'string' || typeof e.signature !== 'string' || !/^[0-9a-f]{128}$/.test(e.signature)) throw bad('it is not in the expected form');
  if (e.from !== fromSignKeyHex.toLowerCase()) throw bad(`it was made by the desktop ${e.from!.slice(0, 16)}…, not the one --from names`);
  if (!verifyDetached(Buffer.from(e.signature, 'hex'), exportSigned(e as PayloadKeysExport), Buffer.from(e.from!, 'hex'))) throw bad('its signature does not verify');
  if (e.to !== identity.box.publicKey.toString('hex')) throw bad('it was sealed to another desktop (export it again with --to set to this desktop\'s key agreement key)');
  const eph = Buffer.from(e.ephemeral!, 'hex');
  const shared = x25519(identity.box.secretKey, eph);
  const key = exportKey(shared, eph, identity.box.publicKey);
  const plain = xchacha20Poly1305Open(key, Buffer.from(e.nonce, 'hex'), Buffer.from(e.ciphertext, 'base64'), EXPORT_LABEL);
  zeroize(shared, key);
  if (plain === null) throw bad('it does not decrypt');
  let parsed: { current?: unknown; keys?: Array<{ id?: unknown; createdAt?: unknown; key?: unknown }> };
  try {
    parsed = JSON.parse(plain.toString('utf8')) as typeof parsed;
  } finally {
    zeroize(plain);
  }
  if (typeof parsed.current !== 'string' || !Array.isArray(parsed.keys)) throw bad('its content is not a key list');
  const keys = parsed.keys.map((k) => {
    if (typeof k.id !== 'string' || typeof k.createdAt !== 'string' || typeof k.key !== 'string') throw bad('its content is not a key list');
    return { id: k.id, createdAt: k.createdAt, key: Buffer.from(k.key, 'base64') };
  });
  const added = await keyring.importKeys(keys, parsed.current);
  for (const k of keys) zeroize(k.key);
  return { added, current: parsed.current };
}
