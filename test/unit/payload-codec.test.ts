/**
 * The payload codec (desktop-worker/payload-codec.ts) and its codec server (desktop-worker/codec-server.ts):
 * round trip, ciphertext that names its key and hides the payload, tampering refused, rotation keeping old keys,
 * a key rotated by another process found on decode, plain payloads passed through; the keyring's file and
 * keychain entries; the codec server's origin allowlist (exact origin only: foreign, `null`, suffix, prefix and
 * other-port origins refused), its token, namespace and content-type checks, through real HTTP.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter, type DefaultFailureConverter, type Payload } from '@temporalio/common';
import { startCodecServer, type CodecServer } from '../../desktop-worker/codec-server';
import type { SecretStore } from '../../desktop-worker/identity';
import { ENCRYPTED_ENCODING, EncryptionCodec, FAILURE_CONVERTER_PATH, METADATA_KEY_ID, PAYLOAD_KEYS_FILE, PayloadKeyring, exportPayloadKeys, importPayloadKeys, loadPayloadCodec } from '../../desktop-worker/payload-codec';
import type { DesktopIdentity } from '../../desktop-worker/identity';
import { ed25519KeyPair, x25519KeyPair } from '../../protocol/primitives';
import { OrchError } from '../../protocol/errors';
import { decodePayload, encodePayload } from '../../desktop-worker/payload-wire';
import { fromPayload, toPayload } from '../../desktop-worker/run-transport';
// A default import: the package is CommonJS.
import proto from '@temporalio/proto';

class MemoryStore implements SecretStore {
  readonly entries = new Map<string, Buffer>();
  async get(account: string): Promise<Buffer | null> {
    const v = this.entries.get(account);
    return v ? Buffer.from(v) : null;
  }
  async set(account: string, secret: Buffer): Promise<void> {
    this.entries.set(account, Buffer.from(secret));
  }
  async delete(account: string): Promise<boolean> {
    return this.entries.delete(account);
  }
}

function freshHome(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'orch-codec-'));
}

const MARKER = 'MARKER-payload-codec-7f3a9c';
const str = (b: Uint8Array | undefined | null) => Buffer.from(b ?? new Uint8Array()).toString('utf8');

async function codecError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof OrchError ? err.code : `not an OrchError: ${String(err)}`;
  }
  return 'no error';
}

describe('payload codec', () => {
  test('round trip; the ciphertext names its key, hides the payload in every encoding, and differs each time', async () => {
    const home = freshHome();
    const store = new MemoryStore();
    const keyring = PayloadKeyring.open(home, store);
    assert.equal(await keyring.ensure(), true);
    assert.equal(await keyring.ensure(), false, 'a second ensure keeps the key');
    const codec = await loadPayloadCodec(home, store);
    const plain = defaultPayloadConverter.toPayload({ secret: MARKER });
    const [enc] = await codec.encode([plain]);
    const [enc2] = await codec.encode([plain]);
    assert.equal(str(enc!.metadata!.encoding), ENCRYPTED_ENCODING);
    assert.equal(str(enc!.metadata![METADATA_KEY_ID]), keyring.list()[0]!.id);
    const wire = Buffer.from(JSON.stringify(enc)) + Buffer.from(enc!.data!).toString('latin1');
    for (const form of [MARKER, Buffer.from(MARKER).toString('hex'), Buffer.from(MARKER).toString('base64').slice(0, 16)]) {
      assert.ok(!wire.includes(form), `the ciphertext does not hold ${form}`);
    }
    assert.notDeepEqual(Buffer.from(enc!.data!), Buffer.from(enc2!.data!), 'a fresh nonce each time');
    const [back] = await codec.decode([enc!]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(back!), { secret: MARKER });
    // Not encrypted (a run started from the UI without the codec server): passed through unchanged.
    const [same] = await codec.decode([plain]);
    assert.deepEqual(same, plain);
  });

  test('tampered data, a swapped key id and an unknown key are refused with a clear code', async () => {
    const home = freshHome();
    const store = new MemoryStore();
    await PayloadKeyring.open(home, store).ensure();
    const codec = await loadPayloadCodec(home, store);
    const [enc] = await codec.encode([defaultPayloadConverter.toPayload(MARKER)]);
    const flipped = Buffer.from(enc!.data!);
    flipped[flipped.length - 1]! ^= 1;
    assert.equal(await codecError(codec.decode([{ ...enc!, data: flipped }])), 'payload_corrupt');
    const other = await PayloadKeyring.open(home, store).rotate();
    const reloaded = await loadPayloadCodec(home, store);
    // The key id is bound as additional data: the same bytes under another key id do not open.
    const swapped: Payload = { metadata: { ...enc!.metadata, [METADATA_KEY_ID]: Buffer.from(other.id) }, data: enc!.data! };
    assert.equal(await codecError(reloaded.decode([swapped])), 'payload_corrupt');
    const unknown: Payload = { metadata: { ...enc!.metadata, [METADATA_KEY_ID]: Buffer.from('pk-0000000000000000') }, data: enc!.data! };
    assert.equal(await codecError(reloaded.decode([unknown])), 'payload_key_unknown');
  });

  test('rotate: new payloads use the new key, old ones still decode; a codec loaded before the rotation finds the new key', async () => {
    const home = freshHome();
    const store = new MemoryStore();
    const keyring = PayloadKeyring.open(home, store);
    await keyring.ensure();
    const first = keyring.list()[0]!.id;
    const before = await loadPayloadCodec(home, store);
    const [old] = await before.encode([defaultPayloadConverter.toPayload('old')]);
    const made = await keyring.rotate();
    assert.notEqual(made.id, first);
    assert.deepEqual(
      keyring.list().map((k) => [k.id, k.current]),
      [
        [first, false],
        [made.id, true],
      ],
    );
    const after = await loadPayloadCodec(home, store);
    assert.equal(after.currentKeyId, made.id);
    const [fresh] = await after.encode([defaultPayloadConverter.toPayload('new')]);
    assert.equal(str(fresh!.metadata![METADATA_KEY_ID]), made.id);
    assert.equal(defaultPayloadConverter.fromPayload((await after.decode([old!]))[0]!), 'old');
    // The worker's codec was loaded before `orch keys rotate`: it reloads the keyring for the unknown id.
    assert.equal(defaultPayloadConverter.fromPayload((await before.decode([fresh!]))[0]!), 'new');
    // Keys live in the keychain, one entry each; the list file holds ids and dates only.
    assert.equal(store.entries.size, 2);
    const file = fs.readFileSync(path.join(home, PAYLOAD_KEYS_FILE), 'utf8');
    for (const secret of store.entries.values()) {
      assert.ok(!file.includes(secret.toString('hex')) && !file.includes(secret.toString('base64')), 'no key material in the list file');
    }
    assert.equal(fs.statSync(path.join(home, PAYLOAD_KEYS_FILE)).mode & 0o777, 0o600);
  });

  test('a key the list names but the keychain lost is reported, not skipped', async () => {
    const home = freshHome();
    const store = new MemoryStore();
    await PayloadKeyring.open(home, store).ensure();
    store.entries.clear();
    assert.equal(await codecError(loadPayloadCodec(home, store)), 'payload_key_missing');
    assert.equal(await codecError(loadPayloadCodec(freshHome(), store)), 'payload_keys_missing');
  });

  test('failures: with encodeCommonAttributes the message and stack go into a payload the codec encrypts', async () => {
    const home = freshHome();
    const store = new MemoryStore();
    await PayloadKeyring.open(home, store).ensure();
    const codec: EncryptionCodec = await loadPayloadCodec(home, store);
    const { failureConverter } = createRequire(import.meta.url)(FAILURE_CONVERTER_PATH) as { failureConverter: DefaultFailureConverter };
    const failure = failureConverter.errorToFailure(new Error(`boom ${MARKER}`), defaultPayloadConverter);
    assert.equal(failure.message, 'Encoded failure');
    assert.equal(failure.stackTrace, '');
    const [sealed] = await codec.encode([failure.encodedAttributes!]);
    assert.ok(!Buffer.from(sealed!.data!).toString('latin1').includes(MARKER));
    const [opened] = await codec.decode([sealed!]);
    assert.match(String((defaultPayloadConverter.fromPayload(opened!) as { message: string }).message), new RegExp(MARKER));
  });
});

function identity(): DesktopIdentity {
  return { sign: ed25519KeyPair(), box: x25519KeyPair(), fingerprint: '', keychain: { service: 't', account: 't' }, created: true };
}

describe('the Payload message by hand (payload-wire.ts) and values as payloads (run-transport.ts)', () => {
  const P = proto.temporal.api.common.v1.Payload;
  const plainOf = (p: Payload) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('hex')])),
    data: Buffer.from(p.data ?? []).toString('hex'),
  });
  const samples: Payload[] = [
    defaultPayloadConverter.toPayload({ secret: MARKER, n: 1, nested: [true, null, 'é✓'] }),
    defaultPayloadConverter.toPayload(undefined),
    defaultPayloadConverter.toPayload(new Uint8Array([0, 1, 2, 255])),
    // Lengths past one varint byte (128) and two (16384); a metadata key that is not ASCII; an empty value.
    defaultPayloadConverter.toPayload('x'.repeat(200)),
    defaultPayloadConverter.toPayload('y'.repeat(20_000)),
    { metadata: { encoding: Buffer.from('json/plain'), 'clé-ü': Buffer.alloc(0), big: Buffer.alloc(300, 7) }, data: Buffer.from('{}') },
    { metadata: {}, data: new Uint8Array(0) },
  ];
  test('what it writes, protobufjs reads back the same; what protobufjs writes, it reads the same', () => {
    for (const p of samples) {
      assert.deepEqual(plainOf(P.decode(encodePayload(p))), plainOf(p));
      assert.deepEqual(plainOf(decodePayload(P.encode(p).finish())), plainOf(p));
      assert.deepEqual(plainOf(decodePayload(encodePayload(p))), plainOf(p));
    }
    // A payload with a field it does not write by hand (external_payloads) goes through protobufjs: nothing dropped.
    const external = P.create({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('1'), externalPayloads: [{ sizeBytes: 42 } as never] });
    const decoded = decodePayload(encodePayload(external)) as { externalPayloads?: Array<{ sizeBytes: unknown }> };
    assert.equal(Number(decoded.externalPayloads?.[0]?.sizeBytes), 42);
  });
  test('values to payloads and back as the SDK\'s default converter does, for what orch sends and reads', () => {
    for (const v of [{ gate: 'g', decision: 'approve', comment: 'é✓ "quoted"' }, [1, 'two'], 'text', 0, null, undefined]) {
      const mine = toPayload(v);
      const sdk = defaultPayloadConverter.toPayload(v);
      assert.deepEqual(plainOf(mine), plainOf(sdk));
      assert.deepEqual(fromPayload(sdk), v);
    }
    assert.deepEqual(fromPayload(defaultPayloadConverter.toPayload(new Uint8Array([1, 2]))), new Uint8Array([1, 2]));
  });
});

describe('sharing keys between the workers of one cluster', () => {
  test('export sealed to B and signed by A: B imports it, reads A\'s payloads and encrypts with A\'s current key', async () => {
    const [a, b, c] = [identity(), identity(), identity()];
    const [storeA, storeB] = [new MemoryStore(), new MemoryStore()];
    const [homeA, homeB] = [freshHome(), freshHome()];
    const ringA = PayloadKeyring.open(homeA, storeA);
    const exported = await exportPayloadKeys(ringA, a, b.box.publicKey.toString('hex'));
    assert.equal(ringA.list().length, 1, 'export makes the first key when there is none');
    for (const secret of storeA.entries.values()) assert.ok(!JSON.stringify(exported).includes(secret.toString('base64')), 'no key in the clear');
    const codecA = await loadPayloadCodec(homeA, storeA);
    const [fromA] = await codecA.encode([defaultPayloadConverter.toPayload(MARKER)]);

    const ringB = PayloadKeyring.open(homeB, storeB);
    await ringB.ensure();
    const refused = async (blob: unknown, me: DesktopIdentity, from: string) => {
      try {
        await importPayloadKeys(ringB, me, blob, from);
      } catch (err) {
        return err instanceof OrchError ? err.code : String(err);
      }
      return 'imported';
    };
    const aKey = a.sign.publicKey.toString('hex');
    assert.equal(await refused(exported, b, c.sign.publicKey.toString('hex')), 'payload_keys_import_refused', 'another --from');
    assert.equal(await refused(exported, c, aKey), 'payload_keys_import_refused', 'sealed to another desktop');
    const tampered = { ...exported, ciphertext: Buffer.from(Buffer.from(exported.ciphertext, 'base64').map((x, i) => (i === 0 ? x ^ 1 : x))).toString('base64') };
    assert.equal(await refused(tampered, b, aKey), 'payload_keys_import_refused', 'modified');
    assert.equal(ringB.list().length, 1, 'nothing imported by the refused files');

    const imported = await importPayloadKeys(ringB, b, exported, aKey);
    assert.equal(imported.added.length, 1);
    const codecB = await loadPayloadCodec(homeB, storeB);
    assert.equal(codecB.currentKeyId, codecA.currentKeyId, 'B encrypts with A\'s current key');
    assert.equal(defaultPayloadConverter.fromPayload((await codecB.decode([fromA!]))[0]!), MARKER);
    const [fromB] = await codecB.encode([defaultPayloadConverter.toPayload('back')]);
    assert.equal(defaultPayloadConverter.fromPayload((await codecA.decode([fromB!]))[0]!), 'back');
    assert.equal(ringB.list().length, 2, 'B keeps its own older key');
  });
});

describe('codec server', () => {
  const UI = 'http://127.0.0.1:8233';
  let server: CodecServer;
  let codec: EncryptionCodec;

  beforeAll(async () => {
    const home = freshHome();
    const store = new MemoryStore();
    await PayloadKeyring.open(home, store).ensure();
    codec = await loadPayloadCodec(home, store);
    server = await startCodecServer({ codec, namespace: 'orch', allowedOrigins: [UI] });
  });
  afterAll(async () => {
    await server?.close();
  });

  async function encrypted(): Promise<{ payloads: Array<{ metadata: Record<string, string>; data: string }> }> {
    const [enc] = await codec.encode([defaultPayloadConverter.toPayload({ secret: MARKER })]);
    return {
      payloads: [
        {
          metadata: Object.fromEntries(Object.entries(enc!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
          data: Buffer.from(enc!.data!).toString('base64'),
        },
      ],
    };
  }

  async function post(url: string, headers: Record<string, string>, body?: unknown): Promise<Response> {
    return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Namespace': 'orch', ...headers }, body: JSON.stringify(body ?? (await encrypted())) });
  }

  test('the UI origin with the path token decodes; CORS names that exact origin', async () => {
    const res = await post(`${server.uiEndpoint}/decode`, { Origin: UI });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), UI);
    const body = (await res.json()) as { payloads: Array<{ data: string }> };
    assert.match(Buffer.from(body.payloads[0]!.data, 'base64').toString(), new RegExp(MARKER));
    // The preflight the browser sends first.
    const pre = await fetch(`${server.uiEndpoint}/decode`, { method: 'OPTIONS', headers: { Origin: UI, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-namespace' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), UI);
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /X-Namespace/);
    // A CLI (no Origin) with the bearer token; /encode gives back what /decode opens.
    const bearer = await post(`${server.url}/decode`, { Authorization: `Bearer ${server.token}` });
    assert.equal(bearer.status, 200);
    const encodedBack = await post(`${server.url}/encode`, { Authorization: `Bearer ${server.token}` }, { payloads: [{ metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('"x"').toString('base64') }] });
    assert.equal(encodedBack.status, 200);
    const enc = (await encodedBack.json()) as { payloads: Array<{ metadata: Record<string, string> }> };
    assert.equal(Buffer.from(enc.payloads[0]!.metadata.encoding!, 'base64').toString(), ENCRYPTED_ENCODING);
  });

  test('the endpoint is told as soon as the port is bound, before NestJS is ready; a request sent then waits and is answered', async () => {
    const body = await encrypted();
    let early: Promise<Response> | undefined;
    const second = await startCodecServer({
      codec,
      namespace: 'orch',
      allowedOrigins: [UI],
      listening: ({ uiEndpoint }) => {
        early = post(`${uiEndpoint}/decode`, { Origin: UI }, body);
      },
    });
    try {
      assert.ok(early, 'listening was called before startCodecServer resolved');
      const res = await early;
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), UI);
      const decoded = (await res.json()) as { payloads: Array<{ data: string }> };
      assert.match(Buffer.from(decoded.payloads[0]!.data, 'base64').toString(), new RegExp(MARKER));
    } finally {
      await second.close();
    }
  });

  test('foreign, null, suffix, prefix, other-port and other-scheme origins are refused, with no CORS header, preflight too', async () => {
    for (const origin of ['https://evil.example', 'null', 'http://127.0.0.1:8233.evil.example', 'http://evil127.0.0.1:8233', 'http://127.0.0.1:82331', 'http://127.0.0.1:8234', 'https://127.0.0.1:8233', 'http://localhost:8233', `${UI}/`, '*']) {
      const res = await post(`${server.uiEndpoint}/decode`, { Origin: origin });
      assert.equal(res.status, 403, origin);
      assert.equal(res.headers.get('access-control-allow-origin'), null, origin);
      const body = await res.text();
      assert.ok(!body.includes(MARKER), `nothing decoded for ${origin}`);
      const pre = await fetch(`${server.uiEndpoint}/decode`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' } });
      assert.equal(pre.status, 403, `preflight ${origin}`);
      assert.equal(pre.headers.get('access-control-allow-origin'), null);
    }
  });

  test('no token, a wrong token, another namespace, or not JSON: refused and nothing decoded', async () => {
    const cases: Array<[string, Record<string, string>, number]> = [
      [`${server.url}/decode`, { Origin: UI }, 401],
      [`${server.url}/decode`, {}, 401],
      [`${server.url}/decode`, { Authorization: 'Bearer wrong' }, 401],
      [`${server.url}/t/${'0'.repeat(64)}/decode`, { Origin: UI }, 401],
      [`${server.url}/t/${server.token.slice(0, -1)}/decode`, {}, 401],
      [`${server.uiEndpoint}/decode`, { Origin: UI, 'X-Namespace': 'default' }, 403],
      [`${server.uiEndpoint}/encode`, { Origin: UI, 'X-Namespace': '' }, 403],
      [`${server.uiEndpoint}/decode`, { Origin: UI, 'Content-Type': 'text/plain' }, 415],
    ];
    for (const [url, headers, status] of cases) {
      const res = await post(url, headers);
      assert.equal(res.status, status, `${url} ${JSON.stringify(headers)}`);
      assert.ok(!(await res.text()).includes(MARKER));
    }
    const get = await fetch(`${server.uiEndpoint}/decode`, { headers: { Origin: UI } });
    assert.equal(get.status, 405);
  });
});
