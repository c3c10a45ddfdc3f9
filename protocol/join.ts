/**
 * The join flow, version 1 (protocol/JOIN.md): the invite token, the join proof, and the `join_request` and
 * `join_result` messages. The desktop (`orch agent invite`, the worker) and the vectors use it; the Go agent has its
 * own implementation (agent/internal/join) checked against the same vectors.
 *
 * @example
 * const token = encodeInviteToken({ relayUrl, relayPin, desktopSign, desktopBox, joinSecret: randomBytes(32), expiresAt });
 * const invite = decodeInviteToken(token); // throws JoinError('bad_token') for anything else
 */
import { createHash } from 'node:crypto';
import { constantTimeEqual, CryptoError, kdf, x25519, randomBytes, zeroize } from './primitives';
import { derivePermitSecret, permitHash } from './relay-handshake';

export const JOIN_TOKEN_PREFIX = 'orchjoin1.';
export const JOIN_TOKEN_VERSION = 1;
export const JOIN_SECRET_BYTES = 32;
export const MAX_RELAY_URL_LENGTH = 512;
const TOKEN_FIXED_BYTES = 1 + 32 + 32 + 32 + 32 + 8 + 2;
export const PROOF_KEY_LABEL = Buffer.from('orch/join/v1/proof-key\u0000', 'ascii');
export const PROOF_LABEL = Buffer.from('orch/join/v1/proof\u0000', 'ascii');
/** The longest an invite may last: the relay keeps a permit at most 7 days (protocol/RELAY.md). */
export const MAX_INVITE_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000;
export const MAX_ALLOWLIST_TEXT_BYTES = 64 * 1024;
export const MAX_JOIN_TENANTS = 64;

/** The refusal reasons of JOIN.md "The desktop's checks" (the envelope's own reasons come from replay-window.ts). */
export const JOIN_REFUSALS = ['bad_request', 'unknown_invite', 'bad_proof', 'replay', 'reused', 'expired', 'key_in_use', 'name_taken'] as const;
export type JoinRefusal = (typeof JOIN_REFUSALS)[number];

export class JoinError extends Error {
  constructor(
    readonly code: 'bad_token' | 'expired_token',
    message: string,
  ) {
    super(message);
    this.name = 'JoinError';
  }
}

export interface InviteToken {
  /** wss://HOST:PORT/PATH */
  relayUrl: string;
  /** The 32-byte SHA-256 of the relay certificate's SPKI (the pin without `sha256/`). */
  relayPin: Buffer;
  desktopSign: Buffer;
  desktopBox: Buffer;
  joinSecret: Buffer;
  /** ms since the Unix epoch. */
  expiresAt: number;
}

const URL_RULE = /^wss:\/\/[\x21-\x7e]+$/;

function checkUrl(url: string): string | null {
  if (url.length < 1 || url.length > MAX_RELAY_URL_LENGTH) return `the relay URL must be 1..${MAX_RELAY_URL_LENGTH} characters`;
  if (!URL_RULE.test(url)) return 'the relay URL must be wss://HOST[:PORT][/PATH] in printable ASCII';
  return null;
}

const isZero = (b: Buffer) => b.every((x) => x === 0);

/** `orchjoin1.` + unpadded base64url of the canonical layout (JOIN.md "Invite token"). */
export function encodeInviteToken(t: InviteToken): string {
  const problem = checkUrl(t.relayUrl);
  if (problem) throw new TypeError(problem);
  for (const [name, b] of [['relayPin', t.relayPin], ['desktopSign', t.desktopSign], ['desktopBox', t.desktopBox], ['joinSecret', t.joinSecret]] as const) {
    if (b.length !== 32) throw new TypeError(`${name} must be 32 bytes`);
  }
  if (!Number.isSafeInteger(t.expiresAt) || t.expiresAt < 0) throw new TypeError('expiresAt must be ms since the epoch');
  const url = Buffer.from(t.relayUrl, 'ascii');
  const out = Buffer.alloc(TOKEN_FIXED_BYTES + url.length);
  out[0] = JOIN_TOKEN_VERSION;
  t.relayPin.copy(out, 1);
  t.desktopSign.copy(out, 33);
  t.desktopBox.copy(out, 65);
  t.joinSecret.copy(out, 97);
  out.writeBigUInt64BE(BigInt(t.expiresAt), 129);
  out.writeUInt16BE(url.length, 137);
  url.copy(out, 139);
  return JOIN_TOKEN_PREFIX + out.toString('base64url');
}

/**
 * Strict decoding; throws JoinError('bad_token') for anything that is not exactly a v1 token, and
 * JoinError('expired_token') when `now` (ms) is given and past its expiry.
 */
export function decodeInviteToken(token: string, now?: number): InviteToken {
  const bad = (why: string) => new JoinError('bad_token', `not a valid Orch invite token: ${why}; copy the whole line \`orch agent invite\` printed`);
  const text = token.trim();
  if (!text.startsWith(JOIN_TOKEN_PREFIX)) throw bad(`it must start with ${JOIN_TOKEN_PREFIX}`);
  const body = text.slice(JOIN_TOKEN_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw bad('it contains characters outside base64url');
  const raw = Buffer.from(body, 'base64url');
  if (raw.toString('base64url') !== body) throw bad('its base64url is not canonical');
  if (raw.length < TOKEN_FIXED_BYTES) throw bad('it is too short');
  if (raw[0] !== JOIN_TOKEN_VERSION) throw bad(`version ${raw[0]} is not supported (this program reads version ${JOIN_TOKEN_VERSION})`);
  const expires = raw.readBigUInt64BE(129);
  if (expires > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('its expiry is out of range');
  const urlLen = raw.readUInt16BE(137);
  if (raw.length !== TOKEN_FIXED_BYTES + urlLen) throw bad('its length does not match');
  const relayUrl = raw.subarray(139).toString('latin1');
  const urlProblem = checkUrl(relayUrl);
  if (urlProblem) throw bad(urlProblem);
  const t: InviteToken = {
    relayUrl,
    relayPin: Buffer.from(raw.subarray(1, 33)),
    desktopSign: Buffer.from(raw.subarray(33, 65)),
    desktopBox: Buffer.from(raw.subarray(65, 97)),
    joinSecret: Buffer.from(raw.subarray(97, 129)),
    expiresAt: Number(expires),
  };
  if ([t.relayPin, t.desktopSign, t.desktopBox, t.joinSecret].some(isZero)) throw bad('it holds an all-zero key');
  if (now !== undefined && now > t.expiresAt) {
    throw new JoinError('expired_token', `this invite expired at ${new Date(t.expiresAt).toISOString()}; ask for a new one (orch agent invite)`);
  }
  return t;
}

/** 32 fresh random bytes. */
export function newJoinSecret(): Buffer {
  return randomBytes(JOIN_SECRET_BYTES);
}

/** What the desktop stores: SHA-256(join_secret). */
export function joinSecretHash(joinSecret: Uint8Array): Buffer {
  return createHash('sha256').update(joinSecret).digest();
}

/** What the desktop registers with the relay (PERMIT) for this secret. */
export function invitePermitHash(joinSecret: Uint8Array): Buffer {
  const permit = derivePermitSecret(joinSecret);
  try {
    return permitHash(permit);
  } finally {
    zeroize(permit);
  }
}

export function proofKey(joinSecret: Uint8Array): Buffer {
  return kdf(joinSecret, PROOF_KEY_LABEL, 32);
}

export interface ProofInput {
  joinSecret: Uint8Array;
  agentSign: Uint8Array;
  agentBox: Uint8Array;
  desktopSign: Uint8Array;
  desktopBox: Uint8Array;
  relayPin: Uint8Array;
  expiresAt: number;
}

export function proofMessage(p: Omit<ProofInput, 'joinSecret'>): Buffer {
  const expires = Buffer.alloc(8);
  expires.writeBigUInt64BE(BigInt(p.expiresAt));
  return Buffer.concat([PROOF_LABEL, p.agentSign, p.agentBox, p.desktopSign, p.desktopBox, p.relayPin, expires]);
}

/** proof = KDF(proof_key, PROOF_LABEL || agent_sign || agent_box || desktop_sign || desktop_box || relay_pin || expires_at). */
export function joinProof(p: ProofInput): Buffer {
  const key = proofKey(p.joinSecret);
  try {
    return kdf(key, proofMessage(p), 32);
  } finally {
    zeroize(key);
  }
}

export function verifyJoinProof(p: ProofInput, proof: Uint8Array): boolean {
  return proof.byteLength === 32 && constantTimeEqual(joinProof(p), proof);
}

// ------------------------------------------------------------------------------------------------ messages

export interface JoinRequestMessage {
  kind: 'join_request';
  signKey: string;
  boxKey: string;
  hostname: string;
  agentVersion: string;
  joinSecret: string;
  proof: string;
}

export type JoinResultMessage =
  | {
      kind: 'join_result';
      status: 'ok';
      name: string;
      tier: string;
      tenants: string[];
      allowlist?: string;
      /** The approver keys of the joined tenants that have any (APPROVAL.md), by tenant, with their list versions (>= 1). */
      approvers?: Record<string, { version: number; keys: string[] }>;
    }
  | { kind: 'join_result'; status: 'refused'; reason: string };

const HEX64 = /^[0-9a-f]{64}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;
const NAME = /^[A-Za-z0-9_-]+$/;

function onlyKeys(m: Record<string, unknown>, keys: string[]): string | null {
  for (const k of Object.keys(m)) if (!keys.includes(k)) return `unknown field "${k.slice(0, 40)}"`;
  for (const k of keys) if (m[k] === undefined) return `missing field "${k}"`;
  return null;
}

const text = (name: string, v: unknown, max: number) => (typeof v === 'string' && v.length >= 1 && v.length <= max && !CONTROL.test(v) ? null : `${name} must be 1..${max} printable chars`);
const hex64 = (name: string, v: unknown) => (typeof v === 'string' && HEX64.test(v) ? null : `${name} must be 64 lowercase hex digits`);

export function joinRequestProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const m = value as Record<string, unknown>;
  if (m.kind !== 'join_request') return 'kind must be join_request';
  return (
    onlyKeys(m, ['kind', 'signKey', 'boxKey', 'hostname', 'agentVersion', 'joinSecret', 'proof']) ??
    hex64('signKey', m.signKey) ??
    hex64('boxKey', m.boxKey) ??
    text('hostname', m.hostname, 253) ??
    text('agentVersion', m.agentVersion, 64) ??
    hex64('joinSecret', m.joinSecret) ??
    hex64('proof', m.proof) ??
    lowOrderProblem(m.boxKey as string)
  );
}

function lowOrderProblem(boxHex: string): string | null {
  const probe = randomBytes(32);
  try {
    zeroize(x25519(probe, Buffer.from(boxHex, 'hex')));
    return null;
  } catch (err) {
    if (err instanceof CryptoError && err.code === 'low_order_point') return 'boxKey is a low-order point';
    throw err;
  } finally {
    zeroize(probe);
  }
}

export function joinResultProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const m = value as Record<string, unknown>;
  if (m.kind !== 'join_result') return 'kind must be join_result';
  if (m.status === 'refused') return onlyKeys(m, ['kind', 'status', 'reason']) ?? (typeof m.reason === 'string' && m.reason.length >= 1 && m.reason.length <= 512 ? null : 'reason must be 1..512 chars');
  if (m.status !== 'ok') return 'status must be ok or refused';
  const keys = ['kind', 'status', 'name', 'tier', 'tenants', ...(m.allowlist === undefined ? [] : ['allowlist']), ...(m.approvers === undefined ? [] : ['approvers'])];
  return (
    onlyKeys(m, keys) ??
    (typeof m.name === 'string' && m.name.length <= 50 && NAME.test(m.name) ? null : 'name must be 1..50 of [A-Za-z0-9_-]') ??
    (m.tier === 'read-only' || m.tier === 'standard' || m.tier === 'infrastructure' ? null : 'tier must be read-only, standard or infrastructure') ??
    (Array.isArray(m.tenants) && m.tenants.length >= 1 && m.tenants.length <= MAX_JOIN_TENANTS && m.tenants.every((t) => typeof t === 'string' && t.length <= 100 && NAME.test(t))
      ? null
      : `tenants must be 1..${MAX_JOIN_TENANTS} names of [A-Za-z0-9_-]`) ??
    (m.allowlist === undefined || (typeof m.allowlist === 'string' && Buffer.byteLength(m.allowlist) <= MAX_ALLOWLIST_TEXT_BYTES) ? null : `allowlist must be text of at most ${MAX_ALLOWLIST_TEXT_BYTES} bytes`) ??
    (m.approvers === undefined ? null : joinApproversProblem(m.approvers, m.tenants as string[]))
  );
}

function parseJson(b: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
  } catch {
    return undefined;
  }
}

/** The request, or undefined for anything that is not exactly one. Never throws. */
export function decodeJoinRequest(b: Uint8Array): JoinRequestMessage | undefined {
  const v = parseJson(b);
  return joinRequestProblem(v) === null ? (v as JoinRequestMessage) : undefined;
}

function joinApproversProblem(v: unknown, tenants: string[]): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'approvers must be an object of tenant names';
  for (const [tenant, list] of Object.entries(v as Record<string, unknown>)) {
    if (!tenants.includes(tenant)) return 'approvers name a tenant the agent does not join';
    if (typeof list !== 'object' || list === null || Array.isArray(list)) return 'approvers of a tenant must be { version, keys }';
    const l = list as Record<string, unknown>;
    if (Object.keys(l).length !== 2 || !('version' in l) || !('keys' in l)) return 'approvers of a tenant must be exactly { version, keys }';
    if (typeof l.version !== 'number' || !Number.isSafeInteger(l.version) || l.version < 1) return 'approvers version must be an integer from 1';
    if (!Array.isArray(l.keys) || l.keys.length > 256 || new Set(l.keys).size !== l.keys.length || !l.keys.every((k) => typeof k === 'string' && HEX64.test(k))) {
      return 'approvers keys must be at most 256 distinct keys of 64 lowercase hex';
    }
  }
  return null;
}

export function decodeJoinResult(b: Uint8Array): JoinResultMessage | undefined {
  const v = parseJson(b);
  return joinResultProblem(v) === null ? (v as JoinResultMessage) : undefined;
}

/** Body bytes, keys in the order of JOIN.md. Throws (a programming error) for an invalid message. */
export function encodeJoinMessage(m: JoinRequestMessage | JoinResultMessage): Buffer {
  const problem = m.kind === 'join_request' ? joinRequestProblem(m) : joinResultProblem(m);
  if (problem) throw new TypeError(`invalid ${m.kind}: ${problem}`);
  const ordered =
    m.kind === 'join_request'
      ? { kind: m.kind, signKey: m.signKey, boxKey: m.boxKey, hostname: m.hostname, agentVersion: m.agentVersion, joinSecret: m.joinSecret, proof: m.proof }
      : m.status === 'refused'
        ? { kind: m.kind, status: m.status, reason: m.reason }
        : {
            kind: m.kind,
            status: m.status,
            name: m.name,
            tier: m.tier,
            tenants: m.tenants,
            ...(m.allowlist === undefined ? {} : { allowlist: m.allowlist }),
            ...(m.approvers === undefined ? {} : { approvers: m.approvers }),
          };
  return Buffer.from(JSON.stringify(ordered), 'utf8');
}

/** `sha256/<base64>` from the 32-byte pin, and back. */
export function pinText(pin: Uint8Array): string {
  return `sha256/${Buffer.from(pin).toString('base64')}`;
}

export function pinBytes(pin: string): Buffer {
  const b = Buffer.from(pin.replace(/^sha256\//, ''), 'base64');
  if (!pin.startsWith('sha256/') || b.length !== 32) throw new TypeError('a pin is sha256/<base64 of 32 bytes>');
  return b;
}
