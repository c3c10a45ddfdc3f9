/**
 * Binding run parameters to a DAG's declared params. Runs in the CLI, the workflow and the Start Workflow form
 * path alike, so values from a command line (always strings) and from JSON (typed) are both accepted.
 */

import type { CompileIssue, ParamSpec, ParamType, ParamValues } from './types';
import { MAX_TEXT_LENGTH } from './limits';

export type BindResult = { ok: true; values: ParamValues } | { ok: false; issues: CompileIssue[] };

/** Stable codes of param problems (a run fails with ErrorType.badParams and these issues). */
export const ParamIssueCode = {
  notAnObject: 'params_not_an_object',
  unknown: 'unknown_param',
  missing: 'missing_param',
  wrongType: 'param_wrong_type',
  notInEnum: 'param_not_in_enum',
  patternMismatch: 'param_pattern_mismatch',
  tooLong: 'param_too_long',
  outOfRange: 'param_out_of_range',
  controlCharacter: 'param_control_character',
} as const;

/** C0 controls except tab and newline, DEL, and C1 controls: they hide text in terminals and logs. */
const CONTROL_CHARACTER = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^[+-]?\d+$/;

function hasOwn(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 37) + '...' : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}

/** The anchored form of a spec's pattern: the whole value must match. */
export function anchoredPattern(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`);
}

/**
 * Converts `raw` to the param's type. `fromText`: accept the CLI's strings ("42", "true") for numbers and
 * booleans. Returns undefined when it cannot.
 */
export function coerceParamValue(type: ParamType, raw: unknown, fromText: boolean): string | number | boolean | undefined {
  switch (type) {
    case 'string':
      return typeof raw === 'string' ? raw : undefined;
    case 'number':
      if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined;
      if (fromText && typeof raw === 'string' && DECIMAL.test(raw.trim())) {
        const n = Number(raw.trim());
        return Number.isFinite(n) ? n : undefined;
      }
      return undefined;
    case 'integer':
      if (typeof raw === 'number') return Number.isSafeInteger(raw) ? raw : undefined;
      if (fromText && typeof raw === 'string' && INTEGER.test(raw.trim())) {
        const n = Number(raw.trim());
        return Number.isSafeInteger(n) ? n : undefined;
      }
      return undefined;
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (fromText && raw === 'true') return true;
      if (fromText && raw === 'false') return false;
      return undefined;
    default:
      return undefined;
  }
}

/**
 * The issues with one typed value against its spec (not its type: call after `coerceParamValue`).
 * `label` names the value in messages ("param \"region\"", "default of param \"region\"").
 */
export function checkParamConstraints(
  spec: ParamSpec,
  value: string | number | boolean,
  field: string,
  label: string,
): CompileIssue[] {
  const issues: CompileIssue[] = [];
  const add = (code: string, message: string): void => {
    issues.push({ code, field, message: `${label} (${field}): ${message}` });
  };
  if (typeof value === 'string') {
    const limit = Math.min(spec.max_length ?? MAX_TEXT_LENGTH, MAX_TEXT_LENGTH);
    if (value.length > limit) {
      add(ParamIssueCode.tooLong, `is ${value.length} characters, over the limit of ${limit}; supply a shorter value`);
    }
    const control = CONTROL_CHARACTER.exec(value);
    if (control) {
      const code = control[0].charCodeAt(0).toString(16).padStart(4, '0');
      add(ParamIssueCode.controlCharacter, `contains the control character U+${code}; only tab and newline are allowed, remove it`);
    }
    if (spec.pattern !== undefined && issues.length === 0) {
      let re: RegExp | undefined;
      try {
        re = anchoredPattern(spec.pattern);
      } catch {
        re = undefined;
      }
      if (!re || !re.test(value)) {
        add(ParamIssueCode.patternMismatch, `${describe(value)} does not match the pattern /${spec.pattern}/; supply a value that does`);
      }
    }
  }
  if (typeof value === 'number') {
    if (spec.min !== undefined && value < spec.min) add(ParamIssueCode.outOfRange, `${value} is below the minimum ${spec.min}`);
    if (spec.max !== undefined && value > spec.max) add(ParamIssueCode.outOfRange, `${value} is above the maximum ${spec.max}`);
  }
  if (spec.enum !== undefined && !spec.enum.some((e) => e === value)) {
    const allowed = spec.enum.map((e) => JSON.stringify(e)).join(', ');
    add(ParamIssueCode.notInEnum, `${describe(value)} is not one of the allowed values ${allowed.length > 200 ? allowed.slice(0, 197) + '...' : allowed}`);
  }
  return issues;
}

/**
 * Checks and converts supplied run parameters against the DAG's declared params.
 *
 * @example bindParams({ n: { type: 'integer' } }, { n: '3' }) // { ok: true, values: { n: 3 } }
 */
export function bindParams(specs: Record<string, ParamSpec>, supplied: Record<string, unknown>): BindResult {
  const issues: CompileIssue[] = [];
  if (!isPlainObject(supplied)) {
    return {
      ok: false,
      issues: [{ code: ParamIssueCode.notAnObject, field: 'params', message: `params (params): expected an object of name to value, got ${describe(supplied)}` }],
    };
  }
  const declared = isPlainObject(specs) ? specs : {};
  for (const name of Object.keys(supplied)) {
    if (!hasOwn(declared, name)) {
      const known = Object.keys(declared);
      issues.push({
        code: ParamIssueCode.unknown,
        field: `params.${name}`,
        message: `param "${name}" (params.${name}) is not declared by this DAG; ${known.length ? `declared params are ${known.join(', ')}` : 'it declares no params'}`,
      });
    }
  }
  const entries: Array<[string, string | number | boolean]> = [];
  for (const name of Object.keys(declared)) {
    const spec = declared[name];
    if (!spec) continue;
    const field = `params.${name}`;
    const label = `param "${name}"`;
    const given = hasOwn(supplied, name) ? supplied[name] : undefined;
    if (given === undefined) {
      if (spec.default !== undefined) {
        entries.push([name, spec.default]);
      } else if (spec.required !== false) {
        issues.push({ code: ParamIssueCode.missing, field, message: `${label} (${field}) is required and was not supplied; pass it as ${name}=VALUE` });
      }
      continue;
    }
    const value = coerceParamValue(spec.type, given, true);
    if (value === undefined) {
      issues.push({ code: ParamIssueCode.wrongType, field, message: `${label} (${field}) must be ${article(spec.type)}, got ${describe(given)}` });
      continue;
    }
    const problems = checkParamConstraints(spec, value, field, label);
    if (problems.length > 0) issues.push(...problems);
    else entries.push([name, value]);
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, values: Object.fromEntries(entries) };
}

function article(type: ParamType): string {
  return type === 'integer' ? 'an integer' : `a ${type}`;
}
