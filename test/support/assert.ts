/**
 * node:assert/strict for tests under jest. jest runs each test file in its own V8 context, so arrays and plain
 * objects made by Node itself or by native addons (fs.readdirSync, better-sqlite3 rows, JSON from another module
 * graph) have the outer context's prototypes, and `deepStrictEqual` (which compares prototypes) would call two
 * identical values different ("Compared values have no visual difference"). The deep comparisons here first copy
 * plain arrays and objects of either context into this one; everything else (Buffers, class instances, null
 * prototypes, primitives) is compared exactly as node:assert/strict does.
 */
import strict from 'node:assert/strict';
import { OrchError } from '../../protocol/errors';

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as object | null;
  if (proto === null) return false;
  // Object.prototype of any context: its own prototype is null and its constructor is named Object.
  return Object.getPrototypeOf(proto) === null && (proto as { constructor?: { name?: string } }).constructor?.name === 'Object';
}

/** A copy of `v` whose plain arrays and objects belong to this context. */
export function local<T>(v: T, seen = new Map<object, unknown>()): T {
  if (typeof v !== 'object' || v === null) return v;
  if (seen.has(v)) return seen.get(v) as T;
  if (Array.isArray(v)) {
    const from = v as unknown[];
    const out: unknown[] = new Array(from.length);
    seen.set(v, out);
    for (let i = 0; i < from.length; i++) if (i in from) out[i] = local(from[i], seen);
    return out as T;
  }
  if (isPlainObject(v)) {
    const out: Record<string | symbol, unknown> = {};
    seen.set(v, out);
    for (const key of Reflect.ownKeys(v)) {
      const d = Object.getOwnPropertyDescriptor(v, key)!;
      if ('value' in d) d.value = local(d.value, seen);
      Object.defineProperty(out, key, d);
    }
    return out as T;
  }
  return v;
}

const deep = {
  deepEqual: (actual: unknown, expected: unknown, message?: string | Error) => strict.deepEqual(local(actual), local(expected), message),
  deepStrictEqual: (actual: unknown, expected: unknown, message?: string | Error) => strict.deepStrictEqual(local(actual), local(expected), message),
  notDeepEqual: (actual: unknown, expected: unknown, message?: string | Error) => strict.notDeepEqual(local(actual), local(expected), message),
  notDeepStrictEqual: (actual: unknown, expected: unknown, message?: string | Error) => strict.notDeepStrictEqual(local(actual), local(expected), message),
};

const assert: typeof strict = Object.assign((value: unknown, message?: string | Error) => strict.ok(value, message), strict, deep) as typeof strict;
export default assert;

/** The OrchError code `fn` throws (undefined when it returns; a note when it throws something else). */
export function orchErrorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof OrchError ? err.code : `not an OrchError: ${String(err)}`;
  }
  return undefined;
}
