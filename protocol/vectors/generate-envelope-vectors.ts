/**
 * Writes protocol/vectors/envelope-v1.json: known-answer vectors for envelope v1 (see ../ENVELOPE.md).
 * Deterministic: fixed keys, ephemeral keys, nonces and clocks, so the output is the same on every run.
 *
 *   npx tsx protocol/vectors/generate-envelope-vectors.ts           # rewrite the file
 *   npx tsx protocol/vectors/generate-envelope-vectors.ts --check   # exit 1 if the file is out of date
 *
 * test/unit/envelope.test.ts also checks that the committed file equals what this produces.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  HEADER_FIXED_BYTES,
  MAX_ENVELOPE_BYTES,
  assembleEnvelope,
  deriveBodyKey,
  encodeHeader,
  keyToHex,
  parseEnvelope,
  sealEnvelope,
  KDF_LABEL,
  SIGNATURE_LABEL,
  type Header,
} from '../envelope';
import { ReplayWindow, type RejectReason, type ReplayWindowState } from '../replay-window';
import {
  ed25519KeyPairFromSeed,
  signDetached,
  x25519,
  x25519PublicKey,
  type SignKeyPair,
} from '../primitives';

export const VECTORS_PATH = join(dirname(fileURLToPath(import.meta.url)), 'envelope-v1.json');

/** 32 bytes counting up from `start`: easy to recognise in a hex dump. */
const counting = (start: number, length = 32): Buffer => Buffer.from(Array.from({ length }, (_, i) => (start + i) & 0xff));
const hex = (b: Buffer): string => b.toString('hex');

/** 2026-01-01T00:00:00Z: every positive vector's ts; receivers open them at ts + 1 s. */
const T0 = 1_767_225_600_000;
const OPEN_AT = T0 + 1000;
const MINUTE = 60_000;

interface Party {
  sign: SignKeyPair;
  boxSecret: Buffer;
  boxPublic: Buffer;
}

function party(signSeedStart: number, boxSecretStart: number): Party {
  const boxSecret = counting(boxSecretStart);
  return { sign: ed25519KeyPairFromSeed(counting(signSeedStart)), boxSecret, boxPublic: x25519PublicKey(boxSecret) };
}

function describeParty(p: Party): Record<string, string> {
  return {
    sign_seed: hex(p.sign.secretKey.subarray(0, 32)),
    sign_public: hex(p.sign.publicKey),
    box_secret: hex(p.boxSecret),
    box_public: hex(p.boxPublic),
  };
}

/** A known order-8 point on Curve25519 (u-coordinate), as in the X25519 small-order blocklists. */
const LOW_ORDER_POINT = Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex');

export function buildEnvelopeVectors(): unknown {
  const sender = party(0x00, 0x40); // the desktop
  const recipient = party(0x20, 0x60); // the agent this receiver is
  const otherAgent = party(0x80, 0xa0); // another enrolled agent
  const stranger = party(0xc0, 0xe0); // a key nobody pinned

  const headerFor = (over: Partial<Omit<Header, 'v'>> = {}): Omit<Header, 'v'> => ({
    from: keyToHex(sender.sign.publicKey),
    to: keyToHex(recipient.sign.publicKey),
    msgId: hex(counting(0x10, 16)),
    counter: 1n,
    ts: T0,
    type: 'command',
    ...over,
  });

  // ------------------------------------------------------------------------------------ positive vectors
  const positiveInputs: Array<{ name: string; description: string; header: Omit<Header, 'v'>; body: Buffer; ephStart: number; nonceStart: number }> = [
    {
      name: 'command_json',
      description: 'A command from the desktop to an agent, JSON body.',
      header: headerFor(),
      body: Buffer.from(JSON.stringify({ commandId: 'wf-1/run-1/restart', argv: ['systemctl', 'restart', 'nginx'], timeoutMs: 30000 }), 'utf8'),
      ephStart: 0x70,
      nonceStart: 0x90,
    },
    {
      name: 'ping_empty_body',
      description: 'An empty body: the ciphertext is the 16-byte tag alone.',
      header: headerFor({ msgId: hex(counting(0x30, 16)), counter: 2n, type: 'ping' }),
      body: Buffer.alloc(0),
      ephStart: 0x71,
      nonceStart: 0x91,
    },
    {
      name: 'result_binary_max_counter',
      description: 'Every byte value in the body; the largest counter (2^64-1); a type using every allowed class.',
      header: headerFor({ msgId: hex(counting(0x50, 16)), counter: (1n << 64n) - 1n, type: 'result.v1_x-9' }),
      body: counting(0x00, 256),
      ephStart: 0x72,
      nonceStart: 0x92,
    },
  ];

  const positive = positiveInputs.map((p) => {
    const ephemeralSecret = counting(p.ephStart);
    const ephemeral = { publicKey: x25519PublicKey(ephemeralSecret), secretKey: ephemeralSecret };
    const nonce = counting(p.nonceStart, 24);
    const wire = sealEnvelope({
      header: p.header,
      body: p.body,
      senderSign: sender.sign,
      recipientBoxPublicKey: recipient.boxPublic,
      ephemeral,
      nonce,
    });
    const headerBytes = encodeHeader(p.header);
    const shared = x25519(ephemeralSecret, recipient.boxPublic);
    const bodyKey = deriveBodyKey(shared, ephemeral.publicKey, recipient.boxPublic);
    const parsed = parseEnvelope(wire);
    if (!parsed.ok) throw new Error(`generator: own vector ${p.name} does not parse`);
    return {
      name: p.name,
      description: p.description,
      header: { ...p.header, counter: p.header.counter.toString(10) },
      body_hex: hex(p.body),
      ephemeral_secret: hex(ephemeralSecret),
      ephemeral_public: hex(ephemeral.publicKey),
      nonce: hex(nonce),
      intermediate: {
        header_bytes: hex(headerBytes),
        shared_secret: hex(shared),
        kdf_info: hex(Buffer.concat([ephemeral.publicKey, recipient.boxPublic, KDF_LABEL])),
        body_key: hex(bodyKey),
        ciphertext_with_tag: hex(parsed.parts.ciphertext),
        signature: hex(parsed.parts.signature),
      },
      wire_hex: hex(wire),
      open: { now: OPEN_AT },
    };
  });

  // ------------------------------------------------------------------------------------ negative vectors
  const base = Buffer.from(positive[0]!.wire_hex, 'hex');
  const baseParsed = parseEnvelope(base);
  if (!baseParsed.ok) throw new Error('generator: base vector does not parse');
  const bp = baseParsed.parts;

  const seal = (over: Partial<Omit<Header, 'v'>>, opts: { from?: Party; toBox?: Buffer; ephStart?: number } = {}): Buffer => {
    const from = opts.from ?? sender;
    const ephemeralSecret = counting(opts.ephStart ?? 0x73);
    return sealEnvelope({
      header: headerFor({ from: keyToHex(from.sign.publicKey), ...over }),
      body: Buffer.from('{"argv":["id"]}'),
      senderSign: from.sign,
      recipientBoxPublicKey: opts.toBox ?? recipient.boxPublic,
      ephemeral: { publicKey: x25519PublicKey(ephemeralSecret), secretKey: ephemeralSecret },
      nonce: counting(0x93, 24),
    });
  };
  const flip = (buf: Buffer, index: number): Buffer => {
    const out = Buffer.from(buf);
    out[index] = out[index]! ^ 0x01;
    return out;
  };
  const windowAfter = (...counters: bigint[]): ReplayWindowState => {
    const w = new ReplayWindow();
    for (const c of counters) w.accept(c);
    return w.toJSON();
  };

  const headerLength = bp.headerBytes.length;
  const ciphertextStart = headerLength + 32 + 24 + 4;
  const tampered = Buffer.from(bp.ciphertext);
  tampered[0] = tampered[0]! ^ 0x01;
  const upperCasedType = Buffer.from(base);
  upperCasedType[HEADER_FIXED_BYTES] = 0x43; // 'c' -> 'C'
  // A header with another ts, validly signed by the real sender over the original ciphertext: only the AEAD's
  // associated data can catch this, so it shows that the header really is bound into the ciphertext.
  const headerTsChanged = encodeHeader({ ...headerFor(), ts: T0 + 1 });
  // What a hostile relay does to re-address: rewrite `to` in an envelope sealed to another agent.
  const toOther = seal({ to: keyToHex(otherAgent.sign.publicKey) }, { toBox: otherAgent.boxPublic });
  const readdressed = Buffer.from(toOther);
  recipient.sign.publicKey.copy(readdressed, 33);
  // Re-signed by a stranger's key while still claiming to be from the desktop.
  const resignedByStranger = Buffer.concat([base.subarray(0, base.length - 64), signDetached(Buffer.concat([SIGNATURE_LABEL, base.subarray(0, base.length - 64)]), stranger.sign.secretKey)]);

  type Negative = {
    name: string;
    description: string;
    wire_hex?: string;
    wire_fill?: { byte: string; length: number };
    open: { now: number; window: ReplayWindowState | null };
    expected: RejectReason;
  };
  const fresh = { now: OPEN_AT, window: null };
  const negative: Negative[] = [
    { name: 'oversize', description: `One byte over the ${MAX_ENVELOPE_BYTES}-byte cap (rejected before parsing).`, wire_fill: { byte: '01', length: MAX_ENVELOPE_BYTES + 1 }, open: fresh, expected: 'oversize' },
    { name: 'empty', description: 'Zero bytes.', wire_hex: '', open: fresh, expected: 'malformed' },
    { name: 'truncated', description: 'command_json without its last byte.', wire_hex: hex(base.subarray(0, base.length - 1)), open: fresh, expected: 'malformed' },
    { name: 'trailing_byte', description: 'command_json with one extra byte.', wire_hex: hex(Buffer.concat([base, Buffer.from([0])])), open: fresh, expected: 'malformed' },
    { name: 'ct_length_mismatch', description: 'ct_len one larger than the ciphertext present.', wire_hex: hex(flip(base, ciphertextStart - 1)), open: fresh, expected: 'malformed' },
    { name: 'type_not_canonical', description: "Type 'command' with its first letter upper-cased.", wire_hex: hex(upperCasedType), open: fresh, expected: 'malformed' },
    { name: 'bad_version', description: 'Version byte 2.', wire_hex: hex(Buffer.concat([Buffer.from([2]), base.subarray(1)])), open: fresh, expected: 'bad_version' },
    { name: 'wrong_recipient', description: 'Validly sealed and signed, but to another agent.', wire_hex: hex(toOther), open: fresh, expected: 'wrong_recipient' },
    { name: 'unknown_sender', description: 'Validly sealed and signed by a key the receiver did not pin.', wire_hex: hex(seal({}, { from: stranger })), open: fresh, expected: 'unknown_sender' },
    { name: 'readdressed_by_relay', description: 'Sealed to another agent; `to` rewritten to this receiver.', wire_hex: hex(readdressed), open: fresh, expected: 'bad_signature' },
    { name: 'resigned_by_stranger', description: 'command_json with its signature replaced by a stranger\'s.', wire_hex: hex(resignedByStranger), open: fresh, expected: 'bad_signature' },
    { name: 'flipped_ciphertext_byte', description: 'command_json with bit 0 of the first ciphertext byte flipped.', wire_hex: hex(flip(base, ciphertextStart)), open: fresh, expected: 'bad_signature' },
    { name: 'flipped_signature_byte', description: 'command_json with bit 0 of the last byte flipped.', wire_hex: hex(flip(base, base.length - 1)), open: fresh, expected: 'bad_signature' },
    {
      name: 'low_order_ephemeral',
      description: 'Signed by the sender, ephemeral key replaced by an order-8 point.',
      wire_hex: hex(assembleEnvelope({ headerBytes: bp.headerBytes, ephemeralPublicKey: LOW_ORDER_POINT, nonce: bp.nonce, ciphertext: bp.ciphertext, senderSignSecretKey: sender.sign.secretKey })),
      open: fresh,
      expected: 'low_order_key',
    },
    {
      name: 'zero_ephemeral',
      description: 'Signed by the sender, ephemeral key all zero.',
      wire_hex: hex(assembleEnvelope({ headerBytes: bp.headerBytes, ephemeralPublicKey: Buffer.alloc(32), nonce: bp.nonce, ciphertext: bp.ciphertext, senderSignSecretKey: sender.sign.secretKey })),
      open: fresh,
      expected: 'low_order_key',
    },
    {
      name: 'ciphertext_tampered_resigned',
      description: 'Signed by the sender over a ciphertext with one bit flipped.',
      wire_hex: hex(assembleEnvelope({ headerBytes: bp.headerBytes, ephemeralPublicKey: bp.ephemeralPublicKey, nonce: bp.nonce, ciphertext: tampered, senderSignSecretKey: sender.sign.secretKey })),
      open: fresh,
      expected: 'decrypt_failed',
    },
    {
      name: 'header_swapped_resigned',
      description: 'The sender signs command_json\'s ciphertext under a header with a different ts: the AAD differs.',
      wire_hex: hex(assembleEnvelope({ headerBytes: headerTsChanged, ephemeralPublicKey: bp.ephemeralPublicKey, nonce: bp.nonce, ciphertext: bp.ciphertext, senderSignSecretKey: sender.sign.secretKey })),
      open: fresh,
      expected: 'decrypt_failed',
    },
    {
      name: 'sealed_to_other_box_key',
      description: 'Addressed to this receiver but sealed to another agent\'s X25519 key.',
      wire_hex: hex(seal({}, { toBox: otherAgent.boxPublic })),
      open: fresh,
      expected: 'decrypt_failed',
    },
    { name: 'stale_past', description: 'ts six minutes before now.', wire_hex: hex(seal({ ts: OPEN_AT - 6 * MINUTE })), open: fresh, expected: 'stale' },
    { name: 'stale_future', description: 'ts six minutes after now.', wire_hex: hex(seal({ ts: OPEN_AT + 6 * MINUTE })), open: fresh, expected: 'stale' },
    { name: 'replay', description: 'command_json (counter 1) to a window that accepted 1.', wire_hex: hex(base), open: { now: OPEN_AT, window: windowAfter(1n) }, expected: 'replay' },
    { name: 'too_old_for_window', description: 'command_json (counter 1) to a window whose top is 2000 (size 1024).', wire_hex: hex(base), open: { now: OPEN_AT, window: windowAfter(2000n) }, expected: 'too_old_for_window' },
  ];

  return {
    description:
      'Known-answer vectors for the Orch sealed envelope, version 1. Construction: protocol/ENVELOPE.md. ' +
      'Generated by protocol/vectors/generate-envelope-vectors.ts; do not edit by hand.',
    version: 1,
    parties: {
      sender: describeParty(sender),
      recipient: describeParty(recipient),
      other_agent: describeParty(otherAgent),
      stranger: describeParty(stranger),
    },
    labels: { kdf: hex(KDF_LABEL), signature: hex(SIGNATURE_LABEL) },
    open_defaults: {
      receiver: 'recipient',
      pinned_sender: 'sender',
      max_skew_ms: 300000,
      window_size: 1024,
      note: 'window null means a fresh window; otherwise restore the given toJSON() state first',
    },
    positive,
    negative,
  };
}

export function renderEnvelopeVectors(): string {
  return `${JSON.stringify(buildEnvelopeVectors(), null, 2)}\n`;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const text = renderEnvelopeVectors();
  if (process.argv.includes('--check')) {
    const current = readFileSync(VECTORS_PATH, 'utf8');
    if (current !== text) {
      console.error(`${VECTORS_PATH} is out of date: run npx tsx protocol/vectors/generate-envelope-vectors.ts`);
      process.exit(1);
    }
    console.log(`${VECTORS_PATH} is up to date`);
  } else {
    writeFileSync(VECTORS_PATH, text);
    console.log(`wrote ${VECTORS_PATH}`);
  }
}
