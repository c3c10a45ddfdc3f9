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
 */

/** Stable codes of {@link CanonicalJsonError}; callers branch on these, never on the message. */
export const CanonicalJsonErrorCode = {
  nonFiniteNumber: 'canonical_json_non_finite_number',
  unsupportedType: 'canonical_json_unsupported_type',
  loneSurrogate: 'canonical_json_lone_surrogate',
  tooDeep: 'canonical_json_too_deep',
} as const;
export type CanonicalJsonErrorCodeName = (typeof CanonicalJsonErrorCode)[keyof typeof CanonicalJsonErrorCode];

export class CanonicalJsonError extends Error {
  override readonly name = 'CanonicalJsonError';
  constructor(
    readonly code: CanonicalJsonErrorCodeName,
    /** JSON Pointer (RFC 6901) to the offending value, '' for the root. */
    readonly path: string,
    /** The message without the path. */
    readonly reason: string,
  ) {
    super(`${reason} at ${path === '' ? '(root)' : path}`);
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
  return serialize(value, 0);
}

/**
 * Serialises one JSON string per RFC 8785 §3.2.2.2 (after refusing lone surrogates, `JSON.stringify` is
 * exactly that rule). Exported so code that builds a canonical object with fixed keys by hand (the audit row
 * hash, on its hot path) uses the same rule.
 */
export function canonicalString(s: string, path = ''): string {
  if (!isWellFormed(s)) {
    throw new CanonicalJsonError(CanonicalJsonErrorCode.loneSurrogate, path, 'string holds a lone surrogate');
  }
  return JSON.stringify(s);
}

/** Serialises one JSON number per RFC 8785 §3.2.2.3. */
export function canonicalNumber(n: number, path = ''): string {
  if (!Number.isFinite(n)) {
    throw new CanonicalJsonError(CanonicalJsonErrorCode.nonFiniteNumber, path, `number ${String(n)} is not finite`);
  }
  // Number#toString is the ECMAScript algorithm RFC 8785 adopts; it already writes -0 as "0".
  return String(n);
}

// The happy path carries no path at all (this runs once per audit row on verify); a failure is thrown with an
// empty path and each enclosing container prefixes its own key as the error passes through it.
function withKey(err: unknown, key: string | number): never {
  if (err instanceof CanonicalJsonError) {
    throw new CanonicalJsonError(err.code, '/' + String(key).replace(/~/g, '~0').replace(/\//g, '~1') + err.path, err.reason);
  }
  throw err;
}

function serialize(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      if (!isWellFormed(value)) throw new CanonicalJsonError(CanonicalJsonErrorCode.loneSurrogate, '', 'string holds a lone surrogate');
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new CanonicalJsonError(CanonicalJsonErrorCode.nonFiniteNumber, '', `number ${String(value)} is not finite`);
      }
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (depth >= MAX_CANONICAL_DEPTH) {
        throw new CanonicalJsonError(CanonicalJsonErrorCode.tooDeep, '', `nesting deeper than ${MAX_CANONICAL_DEPTH} (or a cycle)`);
      }
      if (Array.isArray(value)) return serializeArray(value, depth + 1);
      return serializeObject(value, depth + 1);
    default:
      // undefined, function, symbol, bigint: JSON.stringify would drop, null out or throw on these; I-JSON
      // has no such values, so a caller passing one has a bug we must not hash over silently.
      throw new CanonicalJsonError(CanonicalJsonErrorCode.unsupportedType, '', `${typeof value} is not a JSON value`);
  }
}

function serializeArray(arr: readonly unknown[], depth: number): string {
  let out = '[';
  for (let i = 0; i < arr.length; i++) {
    if (i > 0) out += ',';
    // A hole reads as undefined and is refused like one.
    try {
      out += serialize(arr[i], depth);
    } catch (err) {
      withKey(err, i);
    }
  }
  return out + ']';
}

function serializeObject(obj: object, depth: number): string {
  const proto = Object.getPrototypeOf(obj) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    const ctor = (obj as { constructor?: { name?: unknown } }).constructor?.name;
    throw new CanonicalJsonError(
      CanonicalJsonErrorCode.unsupportedType,
      '',
      `${typeof ctor === 'string' ? ctor : 'non-plain object'} is not a plain JSON object`,
    );
  }
  if (Object.getOwnPropertySymbols(obj).length > 0) {
    throw new CanonicalJsonError(CanonicalJsonErrorCode.unsupportedType, '', 'object has symbol keys');
  }
  // Array#sort without a comparator compares strings by UTF-16 code units: exactly RFC 8785 §3.2.3.
  const keys = Object.keys(obj).sort();
  const rec = obj as Record<string, unknown>;
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (!isWellFormed(key)) {
      withKey(new CanonicalJsonError(CanonicalJsonErrorCode.loneSurrogate, '', 'member name holds a lone surrogate'), key);
    }
    if (i > 0) out += ',';
    try {
      out += JSON.stringify(key) + ':' + serialize(rec[key], depth);
    } catch (err) {
      withKey(err, key);
    }
  }
  return out + '}';
}

// String.prototype.isWellFormed is native from Node 20; the regex keeps this correct on runtimes without it.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const nativeIsWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

function isWellFormed(s: string): boolean {
  return nativeIsWellFormed !== undefined ? nativeIsWellFormed.call(s) : !LONE_SURROGATE.test(s);
}
