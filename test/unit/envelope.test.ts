import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { readFileSync } from 'node:fs';
import sodium from 'sodium-native';
import fc from 'fast-check';
import {
  EnvelopeError,
  HEADER_FIXED_BYTES,
  MAX_ENVELOPE_BYTES,
  ENVELOPE_OVERHEAD_BYTES,
  assembleEnvelope,
  encodeHeader,
  keyToHex,
  newMsgId,
  openEnvelope,
  parseEnvelope,
  parseHeaderUnverified,
  sealEnvelope,
  type Header,
  type OpenResult,
} from '../../protocol/envelope';
import { REJECT_REASONS, RejectCounters, ReplayWindow, type RejectReason, type ReplayWindowState } from '../../protocol/replay-window';
import { CryptoError, ed25519KeyPair, ed25519KeyPairFromSeed, signDetached, x25519KeyPair, type BoxKeyPair, type SignKeyPair } from '../../protocol/primitives';
import { VECTORS_PATH, renderEnvelopeVectors } from '../../protocol/vectors/generate-envelope-vectors';

// ----------------------------------------------------------------------------------------------- vectors

interface PartyJson {
  sign_seed: string;
  sign_public: string;
  box_secret: string;
  box_public: string;
}
interface Vectors {
  parties: Record<'sender' | 'recipient' | 'other_agent' | 'stranger', PartyJson>;
  positive: Array<{
    name: string;
    header: Omit<Header, 'v' | 'counter'> & { counter: string };
    body_hex: string;
    ephemeral_secret: string;
    ephemeral_public: string;
    nonce: string;
    intermediate: Record<string, string>;
    wire_hex: string;
    open: { now: number };
  }>;
  negative: Array<{
    name: string;
    wire_hex?: string;
    wire_fill?: { byte: string; length: number };
    open: { now: number; window: ReplayWindowState | null };
    expected: RejectReason;
  }>;
}

const vectors = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as Vectors;
const h = (s: string): Buffer => Buffer.from(s, 'hex');

function partyFromJson(p: PartyJson): { sign: SignKeyPair; box: BoxKeyPair } {
  const sign = ed25519KeyPairFromSeed(h(p.sign_seed));
  assert.equal(keyToHex(sign.publicKey), p.sign_public);
  return { sign, box: { publicKey: h(p.box_public), secretKey: h(p.box_secret) } };
}

const vSender = partyFromJson(vectors.parties.sender);
const vRecipient = partyFromJson(vectors.parties.recipient);

function openAsVectorRecipient(wire: Buffer, now: number, window: ReplayWindow): OpenResult {
  return openEnvelope(wire, {
    recipientSignPublicKey: vRecipient.sign.publicKey,
    recipientBox: vRecipient.box,
    senderSignPublicKey: vSender.sign.publicKey,
    now,
    window,
  });
}

describe('known-answer vectors (protocol/vectors/envelope-v1.json)', () => {
  test('the committed file is exactly what the generator produces', () => {
    assert.equal(readFileSync(VECTORS_PATH, 'utf8'), renderEnvelopeVectors());
  });

  test('there are positive and negative vectors, covering every reject reason', () => {
    assert.ok(vectors.positive.length >= 3);
    const reasons = new Set(vectors.negative.map((n) => n.expected));
    for (const r of ['oversize', 'malformed', 'bad_version', 'wrong_recipient', 'unknown_sender', 'bad_signature', 'low_order_key', 'decrypt_failed', 'stale', 'replay', 'too_old_for_window'] as const) {
      assert.ok(reasons.has(r), `no negative vector for ${r}`);
    }
  });

  for (const v of vectors.positive) {
    test(`positive ${v.name}: sealEnvelope reproduces the wire byte for byte, and it opens`, () => {
      const header = { ...v.header, counter: BigInt(v.header.counter) };
      const wire = sealEnvelope({
        header,
        body: h(v.body_hex),
        senderSign: vSender.sign,
        recipientBoxPublicKey: vRecipient.box.publicKey,
        ephemeral: { publicKey: h(v.ephemeral_public), secretKey: h(v.ephemeral_secret) },
        nonce: h(v.nonce),
      });
      assert.equal(wire.toString('hex'), v.wire_hex);
      const opened = openAsVectorRecipient(wire, v.open.now, new ReplayWindow());
      assert.ok(opened.ok, `rejected: ${opened.ok ? '' : opened.reason}`);
      assert.deepEqual(opened.header, { v: 1, ...header });
      assert.equal(opened.body.toString('hex'), v.body_hex);
    });

    // A second implementation, straight from ENVELOPE.md with raw libsodium calls and literal labels, so the
    // vectors check the written construction and not only this code's agreement with itself.
    test(`positive ${v.name}: the spec computed with raw libsodium gives the same bytes`, () => {
      const hd = v.header;
      const type = Buffer.from(hd.type, 'ascii');
      const u64 = (n: bigint): Buffer => {
        const b = Buffer.alloc(8);
        b.writeBigUInt64BE(n);
        return b;
      };
      const header = Buffer.concat([Buffer.from([1]), h(hd.from), h(hd.to), h(hd.msgId), u64(BigInt(hd.counter)), u64(BigInt(hd.ts)), Buffer.from([type.length]), type]);
      assert.equal(header.toString('hex'), v.intermediate.header_bytes);
      const eph = h(v.ephemeral_public);
      const recipientBoxPub = h(vectors.parties.recipient.box_public);
      const shared = Buffer.alloc(32);
      sodium.crypto_scalarmult(shared, h(v.ephemeral_secret), recipientBoxPub);
      assert.equal(shared.toString('hex'), v.intermediate.shared_secret);
      const key = Buffer.alloc(32);
      sodium.crypto_generichash(key, Buffer.concat([eph, recipientBoxPub, Buffer.from('orch/envelope/v1/body-key')]), shared);
      assert.equal(key.toString('hex'), v.intermediate.body_key);
      const body = h(v.body_hex);
      const ct = Buffer.alloc(body.length + 16);
      sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(ct, body, header, null, h(v.nonce), key);
      assert.equal(ct.toString('hex'), v.intermediate.ciphertext_with_tag);
      const ctLen = Buffer.alloc(4);
      ctLen.writeUInt32BE(ct.length);
      const signed = Buffer.concat([header, eph, h(v.nonce), ctLen, ct]);
      const sig = Buffer.alloc(64);
      sodium.crypto_sign_detached(sig, Buffer.concat([Buffer.from('orch/envelope/v1/signature\0'), signed]), vSender.sign.secretKey);
      assert.equal(sig.toString('hex'), v.intermediate.signature);
      assert.equal(Buffer.concat([signed, sig]).toString('hex'), v.wire_hex);
    });
  }

  for (const n of vectors.negative) {
    test(`negative ${n.name}: rejected as ${n.expected}, window unchanged`, () => {
      const wire = n.wire_fill ? Buffer.alloc(n.wire_fill.length, Number.parseInt(n.wire_fill.byte, 16)) : h(n.wire_hex ?? '');
      const window = n.open.window ? ReplayWindow.fromJSON(n.open.window) : new ReplayWindow();
      const before = JSON.stringify(window.toJSON());
      const result = openAsVectorRecipient(wire, n.open.now, window);
      assert.deepEqual(result, { ok: false, reason: n.expected });
      assert.equal(JSON.stringify(window.toJSON()), before);
    });
  }
});

// ---------------------------------------------------------------------------------------- live envelopes

interface Identity {
  sign: SignKeyPair;
  box: BoxKeyPair;
}
const identity = (): Identity => ({ sign: ed25519KeyPair(), box: x25519KeyPair() });
const desktop = identity();
const agent = identity();
const otherAgent = identity();
const NOW = 1_767_225_600_000;
const MINUTE = 60_000;

function seal(over: Partial<Omit<Header, 'v'>> = {}, body: Uint8Array = Buffer.alloc(1024, 0x61), to: Identity = agent, from: Identity = desktop): Buffer {
  return sealEnvelope({
    header: { from: keyToHex(from.sign.publicKey), to: keyToHex(to.sign.publicKey), msgId: newMsgId(), counter: 1n, ts: NOW, type: 'command', ...over },
    body,
    senderSign: from.sign,
    recipientBoxPublicKey: to.box.publicKey,
  });
}

function open(wire: Buffer, window: ReplayWindow, opts: { now?: number; as?: Identity; from?: Identity } = {}): OpenResult {
  const as = opts.as ?? agent;
  return openEnvelope(wire, {
    recipientSignPublicKey: as.sign.publicKey,
    recipientBox: as.box,
    senderSignPublicKey: (opts.from ?? desktop).sign.publicKey,
    now: opts.now ?? NOW,
    window,
  });
}

const reasonOf = (r: OpenResult): string => (r.ok ? 'ACCEPTED' : r.reason);

/** Re-sign an envelope's first part with the sender's key, to reach the checks behind the signature. */
function resign(signedPart: Buffer, signer: SignKeyPair = desktop.sign): Buffer {
  return Buffer.concat([signedPart, signDetached(Buffer.concat([Buffer.from('orch/envelope/v1/signature\0'), signedPart]), signer.secretKey)]);
}

describe('sealEnvelope / openEnvelope', () => {
  test('round trip; two seals of the same message differ (fresh ephemeral key and nonce)', () => {
    const body = Buffer.from('{"argv":["uptime"]}');
    const msgId = newMsgId();
    const a = seal({ msgId }, body);
    const b = seal({ msgId }, body);
    assert.notDeepEqual(a, b);
    const pa = parseEnvelope(a);
    const pb = parseEnvelope(b);
    assert.ok(pa.ok && pb.ok);
    assert.notDeepEqual(pa.parts.ephemeralPublicKey, pb.parts.ephemeralPublicKey);
    assert.notDeepEqual(pa.parts.nonce, pb.parts.nonce);
    const r = open(a, new ReplayWindow());
    assert.ok(r.ok);
    assert.deepEqual(r.body, body);
    assert.equal(r.header.msgId, msgId);
    assert.equal(r.header.from, keyToHex(desktop.sign.publicKey));
  });

  test('every byte of header, ephemeral key, nonce, length, ciphertext, tag and signature flipped: 0 accepted, right reason', () => {
    const wire = seal({ counter: 9n });
    const parsed = parseEnvelope(wire);
    assert.ok(parsed.ok);
    const hl = parsed.parts.headerBytes.length;
    const ctStart = hl + 32 + 24 + 4;
    const sigStart = wire.length - 64;
    // What each region's corruption must be reported as. The type bytes can flip into another valid type name
    // (then the signature catches it) or into an invalid one (then parsing does).
    const expected = (i: number): readonly string[] => {
      if (i === 0) return ['bad_version'];
      if (i < 33) return ['unknown_sender'];
      if (i < 65) return ['wrong_recipient'];
      if (i === 89 || i === 90) return ['malformed', 'bad_signature']; // ts top bytes: may pass 2^53-1
      if (i === HEADER_FIXED_BYTES - 1) return ['malformed']; // type length
      if (i >= HEADER_FIXED_BYTES && i < hl) return ['malformed', 'bad_signature'];
      if (i >= ctStart - 4 && i < ctStart) return ['malformed']; // ct_len
      return ['bad_signature'];
    };
    const counters = new RejectCounters();
    const window = new ReplayWindow();
    let tried = 0;
    for (const mask of [0x01, 0x80]) {
      for (let i = 0; i < wire.length; i++) {
        const bad = Buffer.from(wire);
        bad[i] = bad[i]! ^ mask;
        const r = open(bad, window);
        tried++;
        assert.ok(!r.ok, `byte ${i} mask ${mask} accepted`);
        assert.ok(expected(i).includes(r.reason), `byte ${i} mask ${mask}: ${r.reason}, expected ${expected(i).join('|')}`);
        counters.record(r.reason);
      }
    }
    assert.equal(counters.total, tried);
    assert.ok(counters.get('bad_signature') > 0);
    assert.equal(tried, 2 * wire.length);
    assert.ok(sigStart > ctStart);
    // Nothing moved the window: the genuine envelope still opens.
    assert.ok(open(wire, window).ok);
  });

  test('behind the signature (a sender key misused): every flipped header, nonce, ciphertext and tag byte fails the AEAD', () => {
    const wire = seal({ counter: 4n });
    const signed = wire.subarray(0, wire.length - 64);
    const parsed = parseEnvelope(wire);
    assert.ok(parsed.ok);
    const hl = parsed.parts.headerBytes.length;
    const ctStart = hl + 32 + 24 + 4;
    for (let i = 0; i < signed.length; i++) {
      if (i >= ctStart - 4 && i < ctStart) continue; // ct_len: a framing error, covered above
      const bad = Buffer.from(signed);
      bad[i] = bad[i]! ^ 0x01;
      const r = open(resign(bad), new ReplayWindow());
      let allowed: readonly string[];
      if (i === 0) allowed = ['bad_version'];
      else if (i < 33) allowed = ['unknown_sender'];
      else if (i < 65) allowed = ['wrong_recipient'];
      else if (i === 89 || i === 90) allowed = ['malformed', 'decrypt_failed'];
      else if (i === HEADER_FIXED_BYTES - 1) allowed = ['malformed'];
      else if (i >= HEADER_FIXED_BYTES && i < hl) allowed = ['malformed', 'decrypt_failed'];
      else if (i >= hl && i < hl + 32) allowed = ['decrypt_failed', 'low_order_key']; // ephemeral key
      else allowed = ['decrypt_failed']; // AAD (msgId, counter, ts), nonce, ciphertext, tag
      assert.ok(!r.ok && allowed.includes(r.reason), `byte ${i}: ${reasonOf(r)}, expected ${allowed.join('|')}`);
    }
  });

  test('a replayed envelope is rejected, also after the window was persisted and restored (agent restart)', () => {
    const window = new ReplayWindow();
    const wire = seal({ counter: 1n });
    assert.ok(open(wire, window).ok);
    assert.equal(reasonOf(open(wire, window)), 'replay');
    const restarted = ReplayWindow.fromJSON(JSON.parse(JSON.stringify(window.toJSON())));
    assert.equal(reasonOf(open(wire, restarted)), 'replay');
    // A fresh envelope with the same counter (a relay cannot make one, a confused sender could) is a replay too.
    assert.equal(reasonOf(open(seal({ counter: 1n }), restarted)), 'replay');
  });

  test('reordering inside the window is accepted once each; beyond the window it is rejected', () => {
    const window = new ReplayWindow(); // 1024
    const wires = new Map<bigint, Buffer>();
    for (const c of [1n, 2n, 3n, 4n, 5n, 2000n, 977n, 976n]) wires.set(c, seal({ counter: c }));
    for (const c of [5n, 3n, 1n, 4n, 2n]) assert.ok(open(wires.get(c)!, window).ok, `counter ${c}`);
    for (const c of [1n, 2n, 3n, 4n, 5n]) assert.equal(reasonOf(open(wires.get(c)!, window)), 'replay');
    assert.ok(open(wires.get(2000n)!, window).ok);
    assert.ok(open(wires.get(977n)!, window).ok, '2000 - 977 = 1023: still inside');
    assert.equal(reasonOf(open(wires.get(976n)!, window)), 'too_old_for_window');
    assert.equal(reasonOf(open(wires.get(5n)!, window)), 'too_old_for_window');
  });

  test('stale timestamps (6 minutes old, 6 minutes ahead) are rejected and do not move the window; 5 minutes is fine', () => {
    const window = new ReplayWindow();
    assert.equal(reasonOf(open(seal({ counter: 7n, ts: NOW - 6 * MINUTE }), window)), 'stale');
    assert.equal(reasonOf(open(seal({ counter: 7n, ts: NOW + 6 * MINUTE }), window)), 'stale');
    assert.ok(open(seal({ counter: 7n, ts: NOW - 5 * MINUTE }), window).ok, 'counter 7 was not consumed by the stale ones');
    assert.ok(open(seal({ counter: 8n, ts: NOW + 5 * MINUTE }), window).ok);
  });

  test('re-addressed envelopes are rejected', () => {
    const toOther = seal({ counter: 1n }, undefined, otherAgent);
    // Delivered to the wrong agent as is.
    assert.equal(reasonOf(open(toOther, new ReplayWindow())), 'wrong_recipient');
    // The relay rewrites `to`: the signature covers it.
    const rewritten = Buffer.from(toOther);
    agent.sign.publicKey.copy(rewritten, 33);
    assert.equal(reasonOf(open(rewritten, new ReplayWindow())), 'bad_signature');
    // Rewritten and re-signed by another key while still claiming to be the desktop.
    const intruder = ed25519KeyPair();
    assert.equal(reasonOf(open(resign(rewritten.subarray(0, rewritten.length - 64), intruder), new ReplayWindow())), 'bad_signature');
    // Honestly signed by another key: not the pinned peer.
    const fromIntruder = seal({}, undefined, agent, { sign: intruder, box: x25519KeyPair() });
    assert.equal(reasonOf(open(fromIntruder, new ReplayWindow())), 'unknown_sender');
    // Even a sender that re-signs a rewritten header cannot move the body to another agent: the AEAD fails.
    assert.equal(reasonOf(open(resign(rewritten.subarray(0, rewritten.length - 64)), new ReplayWindow())), 'decrypt_failed');
    // And the intended agent still opens the original.
    assert.ok(open(toOther, new ReplayWindow(), { as: otherAgent }).ok);
  });

  test('low-order ephemeral keys are rejected; sealing to a low-order key refuses', () => {
    const wire = seal({ counter: 3n });
    const parsed = parseEnvelope(wire);
    assert.ok(parsed.ok);
    const p = parsed.parts;
    const lowOrder = [
      Buffer.alloc(32), // 0
      Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]), // 1
      h('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'), // order 8
      h('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157'), // order 8
      h('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'), // p - 1
    ];
    for (const ephemeralPublicKey of lowOrder) {
      const bad = assembleEnvelope({ headerBytes: p.headerBytes, ephemeralPublicKey, nonce: p.nonce, ciphertext: p.ciphertext, senderSignSecretKey: desktop.sign.secretKey });
      assert.equal(reasonOf(open(bad, new ReplayWindow())), 'low_order_key', ephemeralPublicKey.toString('hex'));
    }
    assert.throws(
      () => sealEnvelope({ header: { from: keyToHex(desktop.sign.publicKey), to: keyToHex(agent.sign.publicKey), msgId: newMsgId(), counter: 1n, ts: NOW, type: 'ping' }, body: Buffer.alloc(0), senderSign: desktop.sign, recipientBoxPublicKey: lowOrder[2]! }),
      (e: unknown) => e instanceof CryptoError && e.code === 'low_order_point',
    );
  });

  test('size cap: 1 MiB exactly opens, one byte more is refused on both sides', () => {
    const headerLength = HEADER_FIXED_BYTES + 'command'.length;
    const maxBody = MAX_ENVELOPE_BYTES - headerLength - ENVELOPE_OVERHEAD_BYTES;
    const wire = seal({}, Buffer.alloc(maxBody, 7));
    assert.equal(wire.length, MAX_ENVELOPE_BYTES);
    assert.ok(open(wire, new ReplayWindow()).ok);
    assert.throws(() => seal({}, Buffer.alloc(maxBody + 1)), (e: unknown) => e instanceof EnvelopeError && e.code === 'too_large');
    assert.equal(reasonOf(open(Buffer.concat([wire, Buffer.from([0])]), new ReplayWindow())), 'oversize');
  });

  test('the window moves only after a successful decrypt', () => {
    const window = new ReplayWindow();
    const good = seal({ counter: 11n });
    const bad = Buffer.from(good);
    bad[bad.length - 100] = bad[bad.length - 100]! ^ 1;
    assert.equal(reasonOf(open(bad, window)), 'bad_signature');
    const signed = good.subarray(0, good.length - 64);
    const badCt = Buffer.from(signed);
    badCt[badCt.length - 1] = badCt[badCt.length - 1]! ^ 1;
    assert.equal(reasonOf(open(resign(badCt), window)), 'decrypt_failed');
    assert.equal(window.highest, 0n);
    assert.ok(open(good, window).ok);
    assert.equal(window.highest, 11n);
  });
});

describe('hostile bytes never throw', () => {
  test('property: random bytes, and a valid envelope with random bytes spliced in, are rejected with a known reason', () => {
    const wire = seal({ counter: 21n }, Buffer.from('{"argv":["true"]}'));
    const window = new ReplayWindow();
    const spliced = fc
      .tuple(fc.nat({ max: wire.length }), fc.nat({ max: 8 }), fc.uint8Array({ minLength: 1, maxLength: 8 }))
      .map(([at, cut, insert]) => Buffer.concat([wire.subarray(0, at), Buffer.from(insert), wire.subarray(Math.min(wire.length, at + cut))]))
      .filter((b) => !b.equals(wire));
    const arbitrary = fc.oneof(fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)), spliced);
    fc.assert(
      fc.property(arbitrary, (bytes) => {
        const r = open(bytes, window);
        assert.ok(!r.ok, 'accepted');
        assert.ok((REJECT_REASONS as readonly string[]).includes(r.reason));
      }),
      { numRuns: 400 },
    );
    assert.equal(window.highest, 0n);
  });
});

describe('headers', () => {
  const valid: Omit<Header, 'v'> = { from: 'ab'.repeat(32), to: 'cd'.repeat(32), msgId: '01'.repeat(16), counter: 5n, ts: NOW, type: 'ping' };

  test('parseHeaderUnverified gives the relay the header of a valid envelope and a reason otherwise', () => {
    const wire = seal({ counter: 12n, type: 'result' });
    const r = parseHeaderUnverified(wire);
    assert.ok(r.ok);
    assert.equal(r.header.counter, 12n);
    assert.equal(r.header.to, keyToHex(agent.sign.publicKey));
    assert.deepEqual(parseHeaderUnverified(wire.subarray(0, 50)), { ok: false, reason: 'malformed' });
    assert.deepEqual(parseHeaderUnverified(Buffer.concat([Buffer.from([9]), wire.subarray(1)])), { ok: false, reason: 'bad_version' });
    assert.deepEqual(parseHeaderUnverified(Buffer.alloc(MAX_ENVELOPE_BYTES + 1)), { ok: false, reason: 'oversize' });
  });

  test('the encoding is canonical: fixed layout, big-endian, and decoding gives the same header back', () => {
    const bytes = encodeHeader(valid);
    assert.equal(bytes.length, HEADER_FIXED_BYTES + 4);
    assert.equal(bytes.toString('hex'), '01' + 'ab'.repeat(32) + 'cd'.repeat(32) + '01'.repeat(16) + '0000000000000005' + NOW.toString(16).padStart(16, '0') + '04' + Buffer.from('ping').toString('hex'));
  });

  test('encodeHeader refuses fields outside the v1 layout', () => {
    const bads: Array<Partial<Omit<Header, 'v'>>> = [
      { from: 'AB'.repeat(32) },
      { to: 'cd'.repeat(31) },
      { msgId: '01'.repeat(17) },
      { counter: -1n },
      { counter: 1n << 64n },
      { ts: -1 },
      { ts: 1.5 },
      { ts: Number.MAX_SAFE_INTEGER + 2 },
      { type: '' },
      { type: 'Command' },
      { type: '9lives' },
      { type: 'a'.repeat(33) },
      { type: 'comm and' },
    ];
    for (const bad of bads) {
      assert.throws(() => encodeHeader({ ...valid, ...bad }), (e: unknown) => e instanceof EnvelopeError && e.code === 'invalid_header', JSON.stringify(bad, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
    }
  });

  test('sealEnvelope refuses a header whose from is not the signing key', () => {
    assert.throws(() => seal({ from: keyToHex(otherAgent.sign.publicKey) }), (e: unknown) => e instanceof EnvelopeError && e.code === 'key_mismatch');
  });
});
