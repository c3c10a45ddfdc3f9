/**
 * The checks of a DAG's `params` declarations (their names and specs: type, required, pattern, max_length, min, max,
 * enum, default). Binding a run's values to them at run time is params.ts. Pure code.
 */

import type { ParamSpec, ParamType } from './types';
import * as L from './limits';
import { anchoredPattern, checkParamConstraints, coerceParamValue } from './params';
import { CompileCode, checkInteger, checkName, checkText, checkUnknownKeys, clip, describe, get, isFiniteNumber, isPlainObject, keyPath, type IssueList, type Subject } from './checks';

const PARAM_SPEC_KEYS = new Set(['type', 'description', 'required', 'default', 'enum', 'pattern', 'max_length', 'min', 'max']);
const PARAM_TYPES: readonly ParamType[] = ['string', 'number', 'integer', 'boolean'];

export function checkParamSpecs(issues: IssueList, raw: unknown): { specs: Record<string, ParamSpec>; declared: Set<string> | undefined } {
  const specs: Array<[string, ParamSpec]> = [];
  if (raw === undefined) return { specs: {}, declared: new Set() };
  const dag: Subject = { label: 'DAG' };
  if (!isPlainObject(raw)) {
    issues.add(CompileCode.wrongType, dag, 'params', `params must be a mapping of param name to spec, got ${describe(raw)}`);
    return { specs: {}, declared: undefined };
  }
  const names = Object.keys(raw);
  if (names.length > L.MAX_PARAMS) {
    issues.add(CompileCode.tooMany, dag, 'params', `declares ${names.length} params, over the limit of ${L.MAX_PARAMS}; remove some`);
  }
  const declared = new Set<string>();
  for (const name of names) {
    const field = `params.${keyPath(name)}`;
    const subject: Subject = { label: `param ${JSON.stringify(clip(name))}` };
    const validName = checkName(issues, subject, field, name, { required: true, max: L.MAX_NAME_LENGTH, what: 'the param name' });
    if (validName === undefined) continue;
    declared.add(name);
    const spec = checkParamSpec(issues, subject, field, raw[name]);
    if (spec) specs.push([name, spec]);
  }
  return { specs: Object.fromEntries(specs), declared };
}

function checkParamSpec(issues: IssueList, subject: Subject, field: string, raw: unknown): ParamSpec | undefined {
  if (!isPlainObject(raw)) {
    issues.add(CompileCode.wrongType, subject, field, `the spec must be a mapping with at least a type, got ${describe(raw)}`);
    return undefined;
  }
  const before = issues.items.length;
  checkUnknownKeys(issues, subject, field, raw, PARAM_SPEC_KEYS, 'a param spec');
  const typeRaw = get(raw, 'type');
  let type: ParamType | undefined;
  if (typeRaw === undefined) {
    issues.add(CompileCode.missingField, subject, `${field}.type`, `type is missing; use one of ${PARAM_TYPES.join(', ')}`);
  } else if (typeof typeRaw !== 'string' || !(PARAM_TYPES as readonly string[]).includes(typeRaw)) {
    issues.add(CompileCode.badParamType, subject, `${field}.type`, `type ${describe(typeRaw)} is not one of ${PARAM_TYPES.join(', ')}`);
  } else {
    type = typeRaw as ParamType;
  }
  const spec: ParamSpec = { type: type ?? 'string' };
  const description = checkText(issues, subject, `${field}.description`, get(raw, 'description'), {
    required: false,
    max: L.MAX_TEXT_LENGTH,
    what: 'description',
  });
  if (description !== undefined) spec.description = description;

  const required = get(raw, 'required');
  if (required !== undefined) {
    if (typeof required !== 'boolean') {
      issues.add(CompileCode.wrongType, subject, `${field}.required`, `required must be true or false, got ${describe(required)}`);
    } else spec.required = required;
  }

  const isString = type === 'string';
  const isNumeric = type === 'number' || type === 'integer';

  const pattern = get(raw, 'pattern');
  if (pattern !== undefined) {
    if (typeof pattern !== 'string') {
      issues.add(CompileCode.wrongType, subject, `${field}.pattern`, `pattern must be a regular expression in a string, got ${describe(pattern)}`);
    } else if (type !== undefined && !isString) {
      issues.add(CompileCode.badParamSpec, subject, `${field}.pattern`, `pattern only applies to string params, this one is ${type}; remove it`);
    } else if (pattern.length > L.MAX_PATTERN_LENGTH) {
      issues.add(CompileCode.tooLong, subject, `${field}.pattern`, `pattern is ${pattern.length} characters, over the limit of ${L.MAX_PATTERN_LENGTH}`);
    } else {
      try {
        anchoredPattern(pattern);
        spec.pattern = pattern;
      } catch (e) {
        const why = e instanceof Error ? e.message.split('\n')[0] ?? '' : '';
        issues.add(CompileCode.invalidRegex, subject, `${field}.pattern`, `pattern /${clip(pattern)}/ is not a valid regular expression (${clip(why, 80)}); fix it`);
      }
    }
  }

  const maxLength = get(raw, 'max_length');
  if (maxLength !== undefined) {
    if (type !== undefined && !isString) {
      issues.add(CompileCode.badParamSpec, subject, `${field}.max_length`, `max_length only applies to string params, this one is ${type}; remove it`);
    } else {
      const v = checkInteger(issues, subject, `${field}.max_length`, maxLength, { required: false, min: 1, max: L.MAX_TEXT_LENGTH, what: 'max_length' });
      if (v !== undefined) spec.max_length = v;
    }
  }

  for (const bound of ['min', 'max'] as const) {
    const v = get(raw, bound);
    if (v === undefined) continue;
    if (type !== undefined && !isNumeric) {
      issues.add(CompileCode.badParamSpec, subject, `${field}.${bound}`, `${bound} only applies to number and integer params, this one is ${type}; remove it`);
    } else if (!isFiniteNumber(v)) {
      issues.add(CompileCode.wrongType, subject, `${field}.${bound}`, `${bound} must be a finite number, got ${describe(v)}`);
    } else spec[bound] = v;
  }
  if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) {
    issues.add(CompileCode.badParamSpec, subject, `${field}.min`, `min ${spec.min} is greater than max ${spec.max}; swap or fix them`);
  }

  if (type !== undefined) {
    const enumRaw = get(raw, 'enum');
    if (enumRaw !== undefined) {
      if (!Array.isArray(enumRaw) || enumRaw.length === 0) {
        issues.add(CompileCode.badEnum, subject, `${field}.enum`, `enum must be a non-empty list of ${type} values, got ${Array.isArray(enumRaw) ? 'an empty list' : describe(enumRaw)}`);
      } else if (enumRaw.length > L.MAX_ENUM_VALUES) {
        issues.add(CompileCode.tooMany, subject, `${field}.enum`, `enum has ${enumRaw.length} values, over the limit of ${L.MAX_ENUM_VALUES}`);
      } else {
        const values: Array<string | number | boolean> = [];
        enumRaw.forEach((e: unknown, k) => {
          const v = coerceParamValue(type, e, false);
          if (v === undefined) {
            issues.add(CompileCode.badEnum, subject, `${field}.enum[${k}]`, `enum value ${describe(e)} is not a ${type}; make every value a ${type}`);
          } else if (typeof v === 'string' && v.length > L.MAX_TEXT_LENGTH) {
            issues.add(CompileCode.badEnum, subject, `${field}.enum[${k}]`, `enum value is ${v.length} characters, over the limit of ${L.MAX_TEXT_LENGTH}`);
          } else values.push(v);
        });
        if (values.length === enumRaw.length) spec.enum = values;
      }
    }

    const def = get(raw, 'default');
    if (def !== undefined) {
      const v = coerceParamValue(type, def, false);
      if (v === undefined) {
        issues.add(CompileCode.badDefault, subject, `${field}.default`, `default ${describe(def)} is not a ${type}; give a ${type} default or none`);
      } else {
        const problems = checkParamConstraints(spec, v, `${field}.default`, `${subject.label} default`);
        for (const p of problems) issues.items.push({ code: CompileCode.badDefault, field: p.field, message: p.message });
        if (problems.length === 0) spec.default = v;
      }
    }
  }
  return issues.items.length === before && type !== undefined ? spec : undefined;
}
