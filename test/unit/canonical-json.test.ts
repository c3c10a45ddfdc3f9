/**
 * protocol/canonical-json.ts, the one RFC 8785 serialiser, against an independent reference: the straightforward
 * recursive serialiser the project had before the audit chain's fast serialiser was merged into it (kept here,
 * verbatim but for names, so the two cannot drift apart). Same text for every JSON value, and for every value
 * I-JSON refuses the same error code at the same JSON Pointer. The RFC's own examples are in audit-chain.test.ts.
 */
import { describe, test } from '@jest/globals';
import fc from 'fast-check';
import assert from '../support/assert';
import {
  CanonicalJsonError,
  CanonicalJsonErrorCode,
  MAX_CANONICAL_DEPTH,
  canonicalString,
  canonicalize,
  isCanonicalObjectText,
  quoteString,
  tryCanonicalize,
} from '../../protocol/canonical-json';

// ------------------------------------------------------------------------------------------ the reference

// The happy path carries no path at all (this runs once per audit row on verify); a failure is thrown with an
// empty path and each enclosing container prefixes its own key as the error passes through it.
function referenceWithKey(err: unknown, key: string | number): never {
  if (err instanceof CanonicalJsonError) {
    throw new CanonicalJsonError(err.code, '/' + String(key).replace(/~/g, '~0').replace(/\//g, '~1') + err.path, err.reason);
  }
  throw err;
}

function referenceSerialize(value: unknown, depth: number): string {
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
      out += referenceSerialize(arr[i], depth);
    } catch (err) {
      referenceWithKey(err, i);
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
      referenceWithKey(new CanonicalJsonError(CanonicalJsonErrorCode.loneSurrogate, '', 'member name holds a lone surrogate'), key);
    }
    if (i > 0) out += ',';
    try {
      out += JSON.stringify(key) + ':' + referenceSerialize(rec[key], depth);
    } catch (err) {
      referenceWithKey(err, key);
    }
  }
  return out + '}';
}


function reference(value: unknown): string {
  return referenceSerialize(value, 0);
}

/** Well-formed UTF-16: no lone surrogate (String#isWellFormed, written out for the ES2022 library types). */
function isWellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

// ------------------------------------------------------------------------------------------------ values

const specialChars = fc.constantFrom('"', '\\', '/', '\u0000', '\u001f', '\u007f', '\u2028', 'é', '😀', '\ud800', '\udc00', '~', 'a/b');
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.array(fc.oneof(specialChars, fc.string({ maxLength: 3 })), { maxLength: 5 }).map((parts) => parts.join('')),
);
const anyNumber = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(1e21, 1e-7, -0, 5e-324, 2 ** 53, NaN, Infinity, -Infinity));
const odd = fc.constantFrom<unknown>(undefined, 10n, new Date(0), new Map(), Buffer.from('x'), Symbol('s'), () => 1, Object.create(null), { [Symbol('k')]: 1 });
const { value: anyValue } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    anyString,
    anyNumber,
    fc.boolean(),
    fc.constant(null),
    odd,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(anyString, tie('value'), { maxKeys: 5 }),
  ),
}));

function outcome(fn: () => string): string {
  try {
    return 'ok ' + fn();
  } catch (err) {
    assert.ok(err instanceof CanonicalJsonError, String(err));
    return `error ${err.code} ${err.path}`;
  }
}

describe('canonical JSON: one serialiser, equal to the reference', () => {
  test('random values, including what I-JSON refuses: the same text, or the same error code at the same path', () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        const want = outcome(() => reference(value));
        assert.equal(outcome(() => canonicalize(value)), want);
        // tryCanonicalize is the same serialiser without the error walk.
        const fast = tryCanonicalize(value);
        assert.equal(fast === undefined ? 'refused' : 'ok ' + fast, want.startsWith('ok ') ? want : 'refused');
      }),
      { numRuns: 3000 },
    );
  });

  test('nesting: at the limit it serialises, one past it is too deep (also for a cycle)', () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_CANONICAL_DEPTH; i++) deep = [deep];
    assert.equal(canonicalize(deep), reference(deep));
    assert.equal(outcome(() => canonicalize([deep])), outcome(() => reference([deep])));
    assert.ok(outcome(() => canonicalize([deep])).startsWith(`error ${CanonicalJsonErrorCode.tooDeep}`));
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    assert.ok(outcome(() => canonicalize(cycle)).startsWith(`error ${CanonicalJsonErrorCode.tooDeep} /self/self`));
  });

  test('the first refused value is named in serialisation order, with JSON Pointer escapes', () => {
    assert.equal(outcome(() => canonicalize({ b: NaN, a: [1, undefined] })), `error ${CanonicalJsonErrorCode.unsupportedType} /a/1`);
    assert.equal(outcome(() => canonicalize({ 'x/y~': { z: Infinity } })), `error ${CanonicalJsonErrorCode.nonFiniteNumber} /x~1y~0/z`);
    assert.equal(outcome(() => canonicalize({ ['\ud800']: 1 })), `error ${CanonicalJsonErrorCode.loneSurrogate} /\ud800`);
  });

  test('strings: quoteString and canonicalString are JSON.stringify for well-formed strings, and refuse lone surrogates', () => {
    fc.assert(
      fc.property(anyString, (s) => {
        const wellFormed = isWellFormed(s);
        assert.equal(quoteString(s), wellFormed ? JSON.stringify(s) : undefined);
        assert.equal(outcome(() => canonicalString(s, '/p')), wellFormed ? 'ok ' + JSON.stringify(s) : `error ${CanonicalJsonErrorCode.loneSurrogate} /p`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isCanonicalObjectText: the integer, decimal and member-name shortcuts', () => {
  const cases: Array<[string, boolean]> = [
    ['{"a":0}', true],
    ['{"a":-0}', false],
    ['{"a":-5}', true],
    ['{"a":05}', false],
    ['{"a":-05}', false],
    ['{"a":123456789012345}', true],
    ['{"a":1234567890123456}', true],
    ['{"a":12345678901234567890}', false],
    ['{"a":12345678901234567000}', true],
    ['{"a":1e21}', false],
    ['{"a":1e+21}', true],
    ['{"a":-0.5}', true],
    ['{"a":1.50}', false],
    ['{"a":1,"b":2}', true],
    ['{"b":1,"a":2}', false],
    ['{"a":1,"a":2}', false],
    ['{"a":1,"ab":2}', true],
    ['{"ab":1,"a":2}', false],
    ['{"\\n":1,"a":2}', true],
    ['{"a":1,"\\n":2}', false],
    ['{"a":1,"\\"":2,"b":3}', false],
    ['{"\\"":1,"a":2,"b":3}', true],
    ['{"\\"":1,"a":2,"a":3}', false],
    ['{"\ud83d\ude00":1,"\uff61":2}', true],
    ['{"\uff61":1,"\ud83d\ude00":2}', false],
    ['{"a":0.0123}', true],
    ['{"a":-0.5}', true],
    ['{"a":0.000001}', true],
    ['{"a":0.0000001}', false],
    ['{"a":1e-7}', true],
    ['{"a":0.1}', true],
    ['{"a":0.10}', false],
    ['{"a":0.0}', false],
    ['{"a":-0.0}', false],
    ['{"a":00.5}', false],
    ['{"a":.5}', false],
    ['{"a":5.}', false],
    ['{"a":123456789012.345}', true],
    ['{"a":1234567890123.456}', true],
    ['{"a":0.123456789012345}', true],
    ['{"a":0.1234567890123456}', true],
    ['{"a":0.12345678901234567}', false],
    ['{"a":9007199254740993}', false],
    ['{"a":1.5.5}', false],
    ['{"a":1.5e3}', false],
  ];
  test.each(cases)('%s -> %s', (text, want) => {
    assert.equal(isCanonicalObjectText(text), want);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    // The definition: the text is canonicalize() of what it parses to.
    assert.equal(parsed !== undefined && canonicalize(parsed) === text, want);
  });
});

test('isCanonicalObjectText decides number tokens as Number#toString writes them back', () => {
  // Tokens near the shortcut's edges: up to 17 digits, leading and trailing zeros, up to 8 zeros after the point,
  // signs, exponents, and stray characters.
  const digits = (max: number) => fc.string({ unit: fc.constantFrom(...'0123456789'.split('')), maxLength: max });
  const token = fc.oneof(
    fc.tuple(fc.constantFrom('', '-'), digits(17), fc.constantFrom('.', ''), fc.nat(8), digits(17)).map(
      ([sign, int, point, zeros, frac]) => sign + int + point + '0'.repeat(point === '' ? 0 : zeros) + frac,
    ),
    fc.tuple(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom('', 'e', 'E', '+', '.', '0')).map(([x, tail]) => String(x) + tail),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => String(x)),
  );
  fc.assert(
    fc.property(token, (t) => {
      const text = `{"a":${t}}`;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      const reference = parsed !== undefined && tryCanonicalize(parsed) === text; // 1e400 parses to Infinity: refused
      assert.equal(isCanonicalObjectText(text), reference, text);
    }),
    { numRuns: 20000 },
  );
});
