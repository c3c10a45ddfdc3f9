/**
 * RFC 8785 JSON Canonicalization Scheme (JCS).
 *
 * The audit chain, checkpoints and anything else Orch hashes or signs as JSON go through this one function,
 * so two implementations that follow RFC 8785 produce the same bytes:
 * - object members sorted by their names compared as arrays of UTF-16 code units (RFC 8785 §3.2.3);
 * - strings serialised as ECMAScript `JSON.stringify` does (RFC 8785 §3.2.2.2): only `"`, `\` and control
 *   characters escaped, everything else literal, so the UTF-8 output carries non-ASCII text as is;
 * - numbers serialised as ECMAScript `Number.prototype.toString` does (RFC 8785 §3.2.2.3), `-0` as `0`;
 * - no whitespace.
 *
 * Input must be I-JSON (RFC 7493), as RFC 8785 §3.1 requires, so this refuses, with a typed error, what
 * has no single JSON meaning: NaN and ±Infinity, `undefined`, functions, symbols, BigInt, strings or names
 * holding a lone surrogate, and objects that are not plain (Date, Map, Buffer, class instances: their JSON
 * form depends on a `toJSON` or on nothing at all, which a second implementation cannot reproduce).
 *
 * This is the project's one RFC 8785 implementation: one serialiser ({@link tryCanonicalize}, which the audit
 * chain runs once per row and everything else reaches through {@link canonicalize}), one check that a text is
 * already canonical ({@link isCanonicalObjectText}, for stored rows), and, off the happy path only, a walk
 * that names the first value I-JSON refuses.
 */
import { OrchError, type ErrorCode } from './errors';

/** Stable codes of {@link CanonicalJsonError}; callers branch on these, never on the message. */
export const CanonicalJsonErrorCode = {
  nonFiniteNumber: 'canonical_json_non_finite_number',
  unsupportedType: 'canonical_json_unsupported_type',
  loneSurrogate: 'canonical_json_lone_surrogate',
  tooDeep: 'canonical_json_too_deep',
} as const satisfies Record<string, ErrorCode>;
export type CanonicalJsonErrorCodeName = (typeof CanonicalJsonErrorCode)[keyof typeof CanonicalJsonErrorCode];

/** An OrchError like every other, its codes in the one table (protocol/errors.ts ERROR_CODES). */
export class CanonicalJsonError extends OrchError {
  override readonly name = 'CanonicalJsonError';
  declare readonly code: CanonicalJsonErrorCodeName;
  constructor(
    code: CanonicalJsonErrorCodeName,
    /** JSON Pointer (RFC 6901) to the offending value, '' for the root. */
    readonly path: string,
    /** The message without the path. */
    readonly reason: string,
  ) {
    super(code, `${reason} at ${path === '' ? '(root)' : path}`);
  }
}

/**
 * Nesting bound: deep enough for any real audit detail, shallow enough that a cyclic or hostile value fails
 * with a typed error instead of a stack overflow.
 */
export const MAX_CANONICAL_DEPTH = 256;

/**
 * Serialises `value` per RFC 8785.
 *
 * @example
 * canonicalize({ b: [1e21, 0.1], a: 'é' }) // '{"a":"é","b":[1e+21,0.1]}'
 * @throws {CanonicalJsonError} for values I-JSON cannot hold.
 */
export function canonicalize(value: unknown): string {
  const text = tryCanonicalize(value);
  if (text === undefined) throwProblem(value);
  return text;
}

/**
 * Serialises one JSON string per RFC 8785 §3.2.2.2 (after refusing lone surrogates, `JSON.stringify` is
 * exactly that rule).
 */
export function canonicalString(s: string, path = ''): string {
  const quoted = quoteString(s);
  if (quoted === undefined) throw new CanonicalJsonError(CanonicalJsonErrorCode.loneSurrogate, path, 'string holds a lone surrogate');
  return quoted;
}

/** Serialises one JSON number per RFC 8785 §3.2.2.3. */
export function canonicalNumber(n: number, path = ''): string {
  if (!Number.isFinite(n)) {
    throw new CanonicalJsonError(CanonicalJsonErrorCode.nonFiniteNumber, path, `number ${String(n)} is not finite`);
  }
  // Number#toString is the ECMAScript algorithm RFC 8785 adopts; it already writes -0 as "0".
  return String(n);
}

// ----------------------------------------------------------------------------------------- the serialiser

/**
 * JCS of a string, or undefined for one holding a lone surrogate. A string with nothing to escape (the common
 * case) is quoted without JSON.stringify.
 */
export function quoteString(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return isWellFormed(s) ? JSON.stringify(s) : undefined;
  }
  return '"' + s + '"';
}

/**
 * `canonicalize(value)`, or undefined (never an exception) for a value I-JSON refuses; {@link canonicalize}
 * then walks the value again to name what and where. This is the one serialiser: no per-member try/catch and
 * no JSON.stringify of plain strings on the way, and small member lists sorted by insertion.
 */
export function tryCanonicalize(value: unknown): string | undefined {
  return serialize(value, 0);
}

function serialize(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return quoteString(value);
    case 'number':
      // Number#toString is the ECMAScript algorithm RFC 8785 adopts; it already writes -0 as "0".
      return Number.isFinite(value) ? String(value) : undefined;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (depth >= MAX_CANONICAL_DEPTH) return undefined;
      if (Array.isArray(value)) {
        const arr = value as readonly unknown[];
        let out = '[';
        for (let i = 0; i < arr.length; i++) {
          // A hole reads as undefined and is refused like one.
          const item = serialize(arr[i], depth + 1);
          if (item === undefined) return undefined;
          out += i === 0 ? item : ',' + item;
        }
        return out + ']';
      }
      if (!isPlainRecord(value)) return undefined;
      const keys = Object.keys(value);
      sortNames(keys);
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        const name = quoteString(key);
        if (name === undefined) return undefined;
        const member = serialize(value[key], depth + 1);
        if (member === undefined) return undefined;
        out += (i === 0 ? name : ',' + name) + ':' + member;
      }
      return out + '}';
    }
    default:
      // undefined, function, symbol, bigint: JSON.stringify would drop, null out or throw on these; I-JSON
      // has no such values, so a caller passing one has a bug we must not hash over silently.
      return undefined;
  }
}

/** A plain object (prototype Object.prototype or null) without symbol keys: the only objects JCS serialises. */
function isPlainRecord(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return (proto === Object.prototype || proto === null) && Object.getOwnPropertySymbols(value).length === 0;
}

/**
 * Sorts member names by UTF-16 code units (RFC 8785 §3.2.3; what `<` on strings and Array#sort compare), in
 * place.
 */
function sortNames(keys: string[]): void {
  if (keys.length > 16) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
}

// ------------------------------------------------------------------------------ naming what I-JSON refuses

/**
 * Throws the typed error for the first value (in serialisation order: array items in order, members in JCS
 * order, a member's name before its value) that {@link serialize} refused.
 */
function throwProblem(value: unknown): never {
  const problem = findProblem(value, 0);
  // Unreachable unless serialize and findProblem disagree, which the unit tests rule out.
  throw problem ?? new CanonicalJsonError(CanonicalJsonErrorCode.unsupportedType, '', 'value is not I-JSON');
}

function pointerToken(key: string | number): string {
  return '/' + String(key).replace(/~/g, '~0').replace(/\//g, '~1');
}

function atKey(problem: CanonicalJsonError | undefined, key: string | number): CanonicalJsonError | undefined {
  return problem === undefined ? undefined : new CanonicalJsonError(problem.code, pointerToken(key) + problem.path, problem.reason);
}

function findProblem(value: unknown, depth: number): CanonicalJsonError | undefined {
  switch (typeof value) {
    case 'string':
      return isWellFormed(value) ? undefined : new CanonicalJsonError(CanonicalJsonErrorCode.loneSurrogate, '', 'string holds a lone surrogate');
    case 'number':
      return Number.isFinite(value) ? undefined : new CanonicalJsonError(CanonicalJsonErrorCode.nonFiniteNumber, '', `number ${String(value)} is not finite`);
    case 'boolean':
      return undefined;
    case 'object': {
      if (value === null) return undefined;
      if (depth >= MAX_CANONICAL_DEPTH) {
        return new CanonicalJsonError(CanonicalJsonErrorCode.tooDeep, '', `nesting deeper than ${MAX_CANONICAL_DEPTH} (or a cycle)`);
      }
      if (Array.isArray(value)) {
        const arr = value as readonly unknown[];
        for (let i = 0; i < arr.length; i++) {
          const problem = atKey(findProblem(arr[i], depth + 1), i);
          if (problem !== undefined) return problem;
        }
        return undefined;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
        return new CanonicalJsonError(
          CanonicalJsonErrorCode.unsupportedType,
          '',
          `${typeof ctor === 'string' ? ctor : 'non-plain object'} is not a plain JSON object`,
        );
      }
      if (Object.getOwnPropertySymbols(value).length > 0) {
        return new CanonicalJsonError(CanonicalJsonErrorCode.unsupportedType, '', 'object has symbol keys');
      }
      const keys = Object.keys(value);
      sortNames(keys);
      const rec = value as Record<string, unknown>;
      for (const key of keys) {
        if (!isWellFormed(key)) {
          return atKey(new CanonicalJsonError(CanonicalJsonErrorCode.loneSurrogate, '', 'member name holds a lone surrogate'), key);
        }
        const problem = atKey(findProblem(rec[key], depth + 1), key);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    default:
      return new CanonicalJsonError(CanonicalJsonErrorCode.unsupportedType, '', `${typeof value} is not a JSON value`);
  }
}

// String.prototype.isWellFormed is native from Node 20; the regex keeps this correct on runtimes without it.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const nativeIsWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

function isWellFormed(s: string): boolean {
  return nativeIsWellFormed !== undefined ? nativeIsWellFormed.call(s) : !LONE_SURROGATE.test(s);
}

// ------------------------------------------------------------------------------ checking canonical text

// Scanner state for isCanonicalObjectText; synchronous use only.
let scanText = '';
let scanPos = 0;

/**
 * True exactly when `text` is the JCS text of a JSON object: `canonicalize(JSON.parse(text)) === text` and the
 * parsed value is an object, checked in one pass without building the value. Canonical text has no
 * whitespace, members in strictly increasing UTF-16 order (so no duplicates), strings escaped exactly as
 * JSON.stringify does, no lone surrogates, numbers written as Number#toString writes them, and nesting below
 * MAX_CANONICAL_DEPTH.
 */
export function isCanonicalObjectText(text: string): boolean {
  if (typeof text !== 'string' || text.charCodeAt(0) !== 0x7b) return false;
  scanText = text;
  scanPos = 0;
  const ok = scanObject(0) && scanPos === text.length;
  scanText = '';
  return ok;
}

function scanValue(depth: number): boolean {
  const c = scanText.charCodeAt(scanPos);
  switch (c) {
    case 0x7b:
      return scanObject(depth);
    case 0x5b:
      return scanArray(depth);
    case 0x22:
      return scanString() !== STRING_BAD;
    case 0x74:
      return scanLiteral('true');
    case 0x66:
      return scanLiteral('false');
    case 0x6e:
      return scanLiteral('null');
    default:
      return c === 0x2d || (c >= 0x30 && c <= 0x39) ? scanNumber() : false;
  }
}

function scanLiteral(word: string): boolean {
  if (!scanText.startsWith(word, scanPos)) return false;
  scanPos += word.length;
  return true;
}

function scanObject(depth: number): boolean {
  if (depth >= MAX_CANONICAL_DEPTH) return false;
  scanPos++; // {
  if (scanText.charCodeAt(scanPos) === 0x7d) {
    scanPos++;
    return true;
  }
  // The previous member name, as a range of the text while it is plain (no escapes), else as a string.
  let previousStart = -1;
  let previousEnd = -1;
  let previousName: string | undefined;
  for (;;) {
    if (scanText.charCodeAt(scanPos) !== 0x22) return false;
    const start = scanPos + 1;
    const kind = scanString();
    if (kind === STRING_BAD) return false;
    const end = scanPos - 1;
    if (kind === STRING_PLAIN && previousName === undefined) {
      // Both plain: compare the text in place, by UTF-16 code units as `<` does.
      if (previousStart >= 0 && !rangeLess(previousStart, previousEnd, start, end)) return false;
      previousStart = start;
      previousEnd = end;
    } else {
      const name = kind === STRING_PLAIN ? scanText.slice(start, end) : (JSON.parse(scanText.slice(start - 1, end + 1)) as string);
      const previous = previousName ?? (previousStart >= 0 ? scanText.slice(previousStart, previousEnd) : undefined);
      if (previous !== undefined && !(previous < name)) return false;
      previousName = name;
    }
    if (scanText.charCodeAt(scanPos) !== 0x3a) return false;
    scanPos++;
    if (!scanValue(depth + 1)) return false;
    const c = scanText.charCodeAt(scanPos++);
    if (c === 0x7d) return true;
    if (c !== 0x2c) return false;
  }
}

/** scanText[a0, a1) < scanText[b0, b1), comparing UTF-16 code units as `<` on strings does. */
function rangeLess(a0: number, a1: number, b0: number, b1: number): boolean {
  const n = Math.min(a1 - a0, b1 - b0);
  for (let i = 0; i < n; i++) {
    const d = scanText.charCodeAt(a0 + i) - scanText.charCodeAt(b0 + i);
    if (d !== 0) return d < 0;
  }
  return a1 - a0 < b1 - b0;
}

function scanArray(depth: number): boolean {
  if (depth >= MAX_CANONICAL_DEPTH) return false;
  scanPos++; // [
  if (scanText.charCodeAt(scanPos) === 0x5d) {
    scanPos++;
    return true;
  }
  for (;;) {
    if (!scanValue(depth + 1)) return false;
    const c = scanText.charCodeAt(scanPos++);
    if (c === 0x5d) return true;
    if (c !== 0x2c) return false;
  }
}

const STRING_BAD = 0;
const STRING_PLAIN = 1;
const STRING_ESCAPED = 2;

/** Scans a string token at scanPos as JSON.stringify writes it; returns which kind, STRING_BAD if it is not. */
function scanString(): number {
  const text = scanText;
  let pos = scanPos + 1;
  let kind = STRING_PLAIN;
  for (;;) {
    if (pos >= text.length) return STRING_BAD;
    const c = text.charCodeAt(pos);
    if (c === 0x22) {
      scanPos = pos + 1;
      return kind;
    }
    if (c === 0x5c) {
      kind = STRING_ESCAPED;
      const e = text.charCodeAt(pos + 1);
      if (e === 0x22 || e === 0x5c || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        pos += 2;
        continue;
      }
      // \u00xx, lowercase, only for the controls without a two-character form (not \b \t \n \f \r).
      if (e !== 0x75 || text.charCodeAt(pos + 2) !== 0x30 || text.charCodeAt(pos + 3) !== 0x30) return STRING_BAD;
      const hi = text.charCodeAt(pos + 4);
      const lo = text.charCodeAt(pos + 5);
      if (hi !== 0x30 && hi !== 0x31) return STRING_BAD;
      const low = lo >= 0x30 && lo <= 0x39 ? lo - 0x30 : lo >= 0x61 && lo <= 0x66 ? lo - 0x61 + 10 : -1;
      if (low < 0) return STRING_BAD;
      const unit = (hi - 0x30) * 16 + low;
      if (unit === 0x08 || unit === 0x09 || unit === 0x0a || unit === 0x0c || unit === 0x0d) return STRING_BAD;
      pos += 6;
      continue;
    }
    if (c < 0x20) return STRING_BAD;
    if (c >= 0xd800 && c <= 0xdfff) {
      // A high surrogate must be followed by a low one; a low one on its own is lone.
      const next = text.charCodeAt(pos + 1);
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return STRING_BAD;
      pos += 2;
      continue;
    }
    pos++;
  }
}

/** A number token is canonical exactly when Number#toString gives it back (so no -0, 1E21, 1.0, 01, +1). */
function scanNumber(): boolean {
  const text = scanText;
  const start = scanPos;
  // The common case without a string: an integer of at most 15 digits, which Number#toString writes back
  // digit for digit unless it is -0 or has a leading zero.
  const first = text.charCodeAt(start) === 0x2d ? start + 1 : start;
  let pos = first;
  for (;;) {
    const c = text.charCodeAt(pos);
    if (c >= 0x30 && c <= 0x39) pos++;
    else break;
  }
  const after = text.charCodeAt(pos);
  const digits = pos - first;
  if (digits >= 1 && digits <= 15 && after !== 0x2e && after !== 0x65 && after !== 0x45 && after !== 0x2b && after !== 0x2d) {
    scanPos = pos;
    return text.charCodeAt(first) !== 0x30 || (digits === 1 && first === start);
  }
  for (;;) {
    const c = text.charCodeAt(pos);
    if ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45) pos++;
    else break;
  }
  const token = text.slice(start, pos);
  scanPos = pos;
  return String(Number(token)) === token;
}
