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
  if (isPlainString(s)) return '"' + s + '"';
  return isWellFormed(s) ? JSON.stringify(s) : undefined;
}

/**
 * True when JCS writes `s` as itself between two quotes: it holds no control character, quote, backslash or
 * surrogate (a surrogate pair is written as is too, but is left to the slower path that checks it is a pair).
 */
export function isPlainString(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  return true;
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

// Per nesting level of the container isCanonicalObjectText is in: whether it is an object, and the object's
// previous member name, as a range of the text while names are plain (nameStart -1: none yet; -2: the name had
// escapes and is in levelName). Synchronous use only.
const levelIsObject = new Uint8Array(MAX_CANONICAL_DEPTH);
const levelNameStart = new Int32Array(MAX_CANONICAL_DEPTH);
const levelNameEnd = new Int32Array(MAX_CANONICAL_DEPTH);
const levelName: string[] = new Array<string>(MAX_CANONICAL_DEPTH).fill('');

// What isCanonicalObjectText expects next.
const AT_VALUE = 0;
const AT_NAME = 1;
const AFTER_VALUE = 2;

/**
 * True exactly when `text` is the JCS text of a JSON object: `canonicalize(JSON.parse(text)) === text` and the
 * parsed value is an object, checked in one pass without building the value. Canonical text has no
 * whitespace, members in strictly increasing UTF-16 order (so no duplicates), strings escaped exactly as
 * JSON.stringify does, no lone surrogates, numbers written as Number#toString writes them, and nesting below
 * MAX_CANONICAL_DEPTH.
 *
 * One loop with the open containers in typed arrays (verify runs this once per stored row): no recursion, no
 * closures, and nothing allocated for texts whose member names have no escapes and whose numbers are integers
 * or short decimals (see numberEnd).
 */
export function isCanonicalObjectText(text: string): boolean {
  if (typeof text !== 'string' || text.charCodeAt(0) !== 0x7b) return false;
  const length = text.length;
  let pos = 0;
  let depth = -1;
  let state = AT_VALUE;
  for (;;) {
    if (state === AFTER_VALUE) {
      if (depth < 0) return pos === length;
      const c = text.charCodeAt(pos++);
      if (c === 0x2c) state = levelIsObject[depth] === 1 ? AT_NAME : AT_VALUE;
      else if (c === (levelIsObject[depth] === 1 ? 0x7d : 0x5d)) depth--;
      else return false;
    } else if (state === AT_NAME) {
      if (text.charCodeAt(pos) !== 0x22) return false;
      const start = pos + 1;
      pos = stringEnd(text, pos);
      if (pos < 0) return false;
      const end = pos - 1;
      const previousStart = levelNameStart[depth]!;
      if (!stringHadEscape && previousStart !== -2) {
        // Both plain: compare the text in place, by UTF-16 code units as `<` does.
        if (previousStart >= 0 && !rangeLess(text, previousStart, levelNameEnd[depth]!, start, end)) return false;
        levelNameStart[depth] = start;
        levelNameEnd[depth] = end;
      } else {
        const name = stringHadEscape ? (JSON.parse(text.slice(start - 1, end + 1)) as string) : text.slice(start, end);
        if (previousStart !== -1) {
          const previous = previousStart === -2 ? levelName[depth]! : text.slice(previousStart, levelNameEnd[depth]);
          if (!(previous < name)) return false;
        }
        levelNameStart[depth] = -2;
        levelName[depth] = name;
      }
      if (text.charCodeAt(pos) !== 0x3a) return false;
      pos++;
      state = AT_VALUE;
    } else {
      const c = text.charCodeAt(pos);
      if (c === 0x7b || c === 0x5b) {
        if (++depth >= MAX_CANONICAL_DEPTH) return false;
        pos++;
        const isObject = c === 0x7b;
        if (text.charCodeAt(pos) === (isObject ? 0x7d : 0x5d)) {
          pos++;
          depth--;
          state = AFTER_VALUE;
        } else {
          levelIsObject[depth] = isObject ? 1 : 0;
          if (isObject) {
            levelNameStart[depth] = -1;
            state = AT_NAME;
          }
        }
        continue;
      }
      if (c === 0x22) pos = stringEnd(text, pos);
      else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) pos = numberEnd(text, pos);
      else if (c === 0x74) pos = text.startsWith('true', pos) ? pos + 4 : -1;
      else if (c === 0x66) pos = text.startsWith('false', pos) ? pos + 5 : -1;
      else if (c === 0x6e) pos = text.startsWith('null', pos) ? pos + 4 : -1;
      else return false;
      if (pos < 0) return false;
      state = AFTER_VALUE;
    }
  }
}

/** text[a0, a1) < text[b0, b1), comparing UTF-16 code units as `<` on strings does. */
function rangeLess(text: string, a0: number, a1: number, b0: number, b1: number): boolean {
  const n = Math.min(a1 - a0, b1 - b0);
  for (let i = 0; i < n; i++) {
    const d = text.charCodeAt(a0 + i) - text.charCodeAt(b0 + i);
    if (d !== 0) return d < 0;
  }
  return a1 - a0 < b1 - b0;
}

/** Whether the string stringEnd last accepted held an escape. */
let stringHadEscape = false;

/**
 * The string token at `pos` (its opening quote) as JSON.stringify writes it: returns the position after its
 * closing quote, or -1 if it is not such a token. Sets stringHadEscape.
 */
function stringEnd(text: string, pos: number): number {
  let escaped = false;
  pos++;
  for (;;) {
    const c = text.charCodeAt(pos); // NaN past the end: fails every test below but the last
    if (c === 0x22) {
      stringHadEscape = escaped;
      return pos + 1;
    }
    if (c >= 0x20 && c !== 0x5c && (c < 0xd800 || c > 0xdfff)) {
      pos++;
      continue;
    }
    if (c === 0x5c) {
      escaped = true;
      const e = text.charCodeAt(pos + 1);
      if (e === 0x22 || e === 0x5c || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        pos += 2;
        continue;
      }
      // \u00xx, lowercase, only for the controls without a two-character form (not \b \t \n \f \r).
      if (e !== 0x75 || text.charCodeAt(pos + 2) !== 0x30 || text.charCodeAt(pos + 3) !== 0x30) return -1;
      const hi = text.charCodeAt(pos + 4);
      const lo = text.charCodeAt(pos + 5);
      if (hi !== 0x30 && hi !== 0x31) return -1;
      const low = lo >= 0x30 && lo <= 0x39 ? lo - 0x30 : lo >= 0x61 && lo <= 0x66 ? lo - 0x61 + 10 : -1;
      if (low < 0) return -1;
      const unit = (hi - 0x30) * 16 + low;
      if (unit === 0x08 || unit === 0x09 || unit === 0x0a || unit === 0x0c || unit === 0x0d) return -1;
      pos += 6;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      // A high surrogate must be followed by a low one; a low one on its own is lone.
      const next = text.charCodeAt(pos + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return -1;
      pos += 2;
      continue;
    }
    // A control character, a lone low surrogate, or the end of the text.
    return -1;
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * The number token at `start` if Number#toString gives it back (so no -0, 1E21, 1.0, 01, +1): returns the
 * position after it, or -1.
 *
 * Two shapes are decided without converting: integers of at most 15 digits, which Number#toString writes back
 * digit for digit unless they are -0 or have a leading zero; and decimals `I.F` with at most 15 significant
 * digits, no leading zero in I (unless I is 0), no trailing zero in F, and (for I = 0) at most 5 zeros after
 * the point. Such a decimal is the only string of at most 15 significant digits that reads as its double (15
 * digits always survive decimal -> double -> decimal), so it is the shortest string that does, the digits
 * Number#toString picks; and with the value in [1e-6, 1e15) it writes them in this fixed notation (ECMA-262
 * Number::toString, -6 < n <= 21). Every other token is converted and compared.
 */
function numberEnd(text: string, start: number): number {
  const negative = text.charCodeAt(start) === 0x2d;
  const intStart = negative ? start + 1 : start;
  let pos = intStart;
  while (isDigit(text.charCodeAt(pos))) pos++;
  const intDigits = pos - intStart;
  const leadingZero = text.charCodeAt(intStart) === 0x30;
  let c = text.charCodeAt(pos);
  if (intDigits >= 1 && intDigits <= 15) {
    if (c !== 0x2e && c !== 0x65 && c !== 0x45 && c !== 0x2b && c !== 0x2d) {
      return leadingZero && (intDigits > 1 || negative) ? -1 : pos;
    }
    if (c === 0x2e && !(leadingZero && intDigits > 1)) {
      const fracStart = pos + 1;
      let end = fracStart;
      while (isDigit(text.charCodeAt(end))) end++;
      c = text.charCodeAt(end);
      if (end > fracStart && c !== 0x65 && c !== 0x45 && c !== 0x2b && c !== 0x2d && c !== 0x2e) {
        if (text.charCodeAt(end - 1) === 0x30) return -1; // a trailing zero: never written
        let significant = intDigits + (end - fracStart);
        if (leadingZero) {
          let firstNonZero = fracStart;
          while (text.charCodeAt(firstNonZero) === 0x30) firstNonZero++;
          significant = firstNonZero - fracStart <= 5 ? end - firstNonZero : 16;
        }
        if (significant <= 15) return end;
      }
    }
  }
  // Any other token: the characters a JSON number can hold, converted and written back.
  pos = start;
  for (;;) {
    c = text.charCodeAt(pos);
    if (isDigit(c) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45) pos++;
    else break;
  }
  const token = text.slice(start, pos);
  return String(Number(token)) === token ? pos : -1;
}
