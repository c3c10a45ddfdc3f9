/**
 * Temporal's Payload message (temporal.api.common.v1.Payload) in protobuf's binary form, written and read by hand:
 * the payload codec (payload-codec.ts) seals a payload's protobuf bytes, and loading @temporalio/proto (the whole
 * Temporal API, about half of `orch status`'s start-up) just for this one message cost the CLI more than the call
 * itself. Fields 1 (metadata, map<string, bytes>) and 2 (data, bytes) are what the SDK and Orch set; a payload with
 * anything else (field 3, external_payloads, or a field a later API adds) goes through @temporalio/proto as before,
 * so nothing is ever dropped. test/unit/payload-wire.test.ts checks both directions against @temporalio/proto.
 */
import type { Payload } from '@temporalio/common';
// A default import: the package is CommonJS (see runs.ts). Loaded only for a payload this module does not handle.
import proto from '@temporalio/proto';

const payloadProto = () => proto.temporal.api.common.v1.Payload;

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/** A length-delimited field: tag, length, bytes. */
function fieldLength(bytes: number): number {
  return 1 + varintLength(bytes) + bytes;
}

/** The protobuf bytes of a payload (as protobufjs's Payload.encode writes them: metadata entries, then data). */
export function encodePayload(payload: Payload): Uint8Array {
  if ((payload as { externalPayloads?: unknown[] }).externalPayloads?.length) return payloadProto().encode(payload).finish();
  const entries: Array<[Uint8Array, Uint8Array, number]> = [];
  let total = 0;
  for (const [k, v] of Object.entries(payload.metadata ?? {})) {
    if (v === null || v === undefined) continue;
    const key = Buffer.from(k, 'utf8');
    const entry = fieldLength(key.length) + fieldLength(v.length);
    entries.push([key, v, entry]);
    total += fieldLength(entry);
  }
  const data = payload.data;
  if (data && data.length) total += fieldLength(data.length);
  const out = new Uint8Array(total);
  let at = 0;
  for (const [key, value, entry] of entries) {
    out[at++] = 0x0a; // field 1, length-delimited
    at = writeVarint(out, at, entry);
    out[at++] = 0x0a; // entry key
    at = writeVarint(out, at, key.length);
    out.set(key, at);
    at += key.length;
    out[at++] = 0x12; // entry value
    at = writeVarint(out, at, value.length);
    out.set(value, at);
    at += value.length;
  }
  if (data && data.length) {
    out[at++] = 0x12; // field 2, length-delimited
    at = writeVarint(out, at, data.length);
    out.set(data, at);
  }
  return out;
}

class Unhandled extends Error {}

function readVarint(buf: Uint8Array, pos: { at: number }): number {
  let n = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (pos.at >= buf.length) throw new Unhandled();
    const b = buf[pos.at++]!;
    n += (b & 0x7f) * scale;
    if (b < 0x80) return n;
    scale *= 128;
  }
  throw new Unhandled();
}

function readBytes(buf: Uint8Array, pos: { at: number }): Uint8Array {
  const len = readVarint(buf, pos);
  if (pos.at + len > buf.length) throw new Unhandled();
  const out = buf.subarray(pos.at, pos.at + len);
  pos.at += len;
  return out;
}

function decodeSimple(buf: Uint8Array): Payload {
  const metadata: Record<string, Uint8Array> = {};
  let data: Uint8Array | undefined;
  const pos = { at: 0 };
  while (pos.at < buf.length) {
    const tag = readVarint(buf, pos);
    if (tag === 0x0a) {
      const entry = readBytes(buf, pos);
      const e = { at: 0 };
      let key = '';
      let value: Uint8Array = new Uint8Array(0);
      while (e.at < entry.length) {
        const t = readVarint(entry, e);
        if (t === 0x0a) key = Buffer.from(readBytes(entry, e)).toString('utf8');
        else if (t === 0x12) value = readBytes(entry, e);
        else throw new Unhandled();
      }
      metadata[key] = Buffer.from(value);
    } else if (tag === 0x12) {
      data = Buffer.from(readBytes(buf, pos));
    } else {
      throw new Unhandled();
    }
  }
  // protobufjs reads an absent bytes field as empty bytes.
  return { metadata, data: data ?? Buffer.alloc(0) };
}

/** A payload from its protobuf bytes (what protobufjs's Payload.decode gives, for the fields Payload has). */
export function decodePayload(buf: Uint8Array): Payload {
  try {
    return decodeSimple(buf);
  } catch (err) {
    if (!(err instanceof Unhandled)) throw err;
    return payloadProto().decode(buf);
  }
}
