/**
 * Compile issues and the checks that report them: the stable issue codes, the issue list, the small helpers every
 * part of the compiler uses, the field checks (text, names, integers, unknown keys), the template check, and the
 * argv audit-size check. Pure code, as all of the compiler (compile.ts), so it also runs inside workflow code.
 */

import type { CompileIssue } from './types';
import * as L from './limits';
import { parseTemplate } from './template';

/** Stable codes of compile issues. Tell issues apart by these, never by message text. */
export const CompileCode = {
  notAnObject: 'not_an_object',
  missingField: 'missing_field',
  wrongType: 'wrong_type',
  unknownField: 'unknown_field',
  empty: 'empty',
  tooLong: 'too_long',
  tooMany: 'too_many',
  invalidName: 'invalid_name',
  notInteger: 'not_integer',
  outOfRange: 'out_of_range',
  controlCharacter: 'control_character',
  duplicateId: 'duplicate_id',
  unknownNodeType: 'unknown_node_type',
  unknownParent: 'unknown_parent',
  selfDependency: 'self_dependency',
  duplicateNeed: 'duplicate_need',
  cycle: 'cycle',
  unknownAgent: 'unknown_agent',
  unknownModel: 'unknown_model',
  invalidPath: 'invalid_path',
  badTemplate: 'bad_template',
  unknownParamReference: 'unknown_param_reference',
  unknownNodeReference: 'unknown_node_reference',
  nonAncestorReference: 'non_ancestor_reference',
  referenceNotAllowed: 'reference_not_allowed',
  secretInPrompt: 'secret_in_prompt',
  templatedExecutable: 'templated_executable',
  destructiveWithoutGate: 'destructive_without_gate',
  gateOptionNeedsApprovers: 'gate_option_needs_approvers',
  badParamType: 'bad_param_type',
  badParamSpec: 'bad_param_spec',
  invalidRegex: 'invalid_regex',
  badEnum: 'bad_enum',
  badDefault: 'bad_default',
  duplicateApprover: 'duplicate_approver',
  /** A gate message or an argv larger than its audit row holds (limits.ts, "audit row"). */
  tooLargeForAudit: 'too_large_for_audit',
} as const;

export type CompileCodeName = (typeof CompileCode)[keyof typeof CompileCode];

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

export function hasOwn(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A field's value, with null read as absent. */
export function get(obj: Record<string, unknown>, key: string): unknown {
  if (!hasOwn(obj, key)) return undefined;
  const v = obj[key];
  return v === null ? undefined : v;
}

export function clip(s: string, max = 40): string {
  return s.length > max ? s.slice(0, max - 3) + '...' : s;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(clip(v))}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `the ${typeof v} ${String(v)}`;
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

/** A key as it appears in a field path: plain when it is a name, quoted otherwise. */
export function keyPath(key: string): string {
  return /^[A-Za-z0-9_-]{1,100}$/.test(key) ? key : JSON.stringify(clip(key));
}

export function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Who an issue is about: "DAG", `node "build"`, `node #3`, `param "region"`. */
export interface Subject {
  label: string;
  node?: string;
}

export class IssueList {
  readonly items: CompileIssue[] = [];

  add(code: CompileCodeName, subject: Subject, field: string, message: string): void {
    const issue: CompileIssue = { code, field, message: `${subject.label} (${field}): ${message}` };
    if (subject.node !== undefined) issue.node = subject.node;
    this.items.push(issue);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Field checks. Each reports its own issue and returns the value only when it is usable.

/**
 * A string field's first checks: present (`missing` is the issue's message; without it the field is optional and
 * its absence no issue) and a string (`mustBe`, e.g. "agent must be an agent name string", then what it got).
 * Returns the value only when it is a string.
 */
export function checkString(issues: IssueList, subject: Subject, field: string, value: unknown, missing: string | undefined, mustBe: string): string | undefined {
  if (value === undefined) {
    if (missing !== undefined) issues.add(CompileCode.missingField, subject, field, missing);
    return undefined;
  }
  if (typeof value !== 'string') {
    issues.add(CompileCode.wrongType, subject, field, `${mustBe}, got ${describe(value)}`);
    return undefined;
  }
  return value;
}

/** What checkText and checkName check a field against; `what` names the field in messages ("the node id"). */
export interface StringFieldOptions {
  required: boolean;
  max: number;
  what: string;
}

/** Whether a string field is at most `max` characters; reports it when it is longer. */
function checkLength(issues: IssueList, subject: Subject, field: string, value: string, opts: { max: number; what: string }): boolean {
  if (value.length <= opts.max) return true;
  issues.add(CompileCode.tooLong, subject, field, `${opts.what} is ${value.length} characters, over the limit of ${opts.max}; shorten it`);
  return false;
}

export function checkText(issues: IssueList, subject: Subject, field: string, raw: unknown, opts: StringFieldOptions): string | undefined {
  const value = checkString(issues, subject, field, raw, opts.required ? `${opts.what} is missing; add it` : undefined, `${opts.what} must be a string`);
  if (value === undefined) return undefined;
  if (opts.required && value.trim().length === 0) {
    issues.add(CompileCode.empty, subject, field, `${opts.what} is empty; write some text`);
    return undefined;
  }
  if (!checkLength(issues, subject, field, value, opts)) return undefined;
  if (value.includes('\u0000')) {
    issues.add(CompileCode.controlCharacter, subject, field, `${opts.what} contains a NUL character; remove it`);
    return undefined;
  }
  return value;
}

export function checkName(issues: IssueList, subject: Subject, field: string, raw: unknown, opts: StringFieldOptions): string | undefined {
  const missing = opts.required ? `${opts.what} is missing; add one (letters, digits, _ and -)` : undefined;
  const value = checkString(issues, subject, field, raw, missing, `${opts.what} must be a string`);
  if (value === undefined) return undefined;
  if (!checkLength(issues, subject, field, value, opts)) return undefined;
  if (!L.NAME_PATTERN.test(value)) {
    issues.add(CompileCode.invalidName, subject, field, `${opts.what} ${JSON.stringify(clip(value))} may only use letters, digits, _ and -; rename it`);
    return undefined;
  }
  if (L.RESERVED_NAMES.includes(value)) {
    issues.add(CompileCode.invalidName, subject, field, `${opts.what} "${value}" is reserved; choose another name`);
    return undefined;
  }
  return value;
}

export function checkInteger(
  issues: IssueList,
  subject: Subject,
  field: string,
  value: unknown,
  opts: { required: boolean; min: number; max: number; what: string },
): number | undefined {
  if (value === undefined) {
    if (opts.required) issues.add(CompileCode.missingField, subject, field, `${opts.what} is missing; add an integer from ${opts.min} to ${opts.max}`);
    return undefined;
  }
  if (!isFiniteNumber(value)) {
    issues.add(CompileCode.wrongType, subject, field, `${opts.what} must be a number, got ${describe(value)}`);
    return undefined;
  }
  if (!Number.isInteger(value)) {
    issues.add(CompileCode.notInteger, subject, field, `${opts.what} must be a whole number, got ${value}`);
    return undefined;
  }
  if (value < opts.min || value > opts.max) {
    issues.add(CompileCode.outOfRange, subject, field, `${opts.what} is ${value}, outside ${opts.min}..${opts.max}; pick a value in range`);
    return undefined;
  }
  return value;
}

export function checkUnknownKeys(issues: IssueList, subject: Subject, prefix: string, obj: Record<string, unknown>, allowed: ReadonlySet<string>, what: string): void {
  for (const key of Object.keys(obj)) {
    if (allowed.has(key)) continue;
    const field = prefix ? `${prefix}.${keyPath(key)}` : keyPath(key);
    issues.add(CompileCode.unknownField, subject, field, `${what} has no field ${JSON.stringify(clip(key))}; allowed fields are ${[...allowed].join(', ')}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Templates

export type SecretRule = 'allowed' | 'secret_in_prompt' | 'not_allowed';

export interface TemplateRules {
  nodes: boolean;
  secrets: SecretRule;
}

export interface TemplateScope {
  declaredParams: Set<string> | undefined;
  idIndex: Map<string, number>;
  ancestors: () => Set<number>;
  selfIndex: number;
}

export function checkTemplate(issues: IssueList, subject: Subject, field: string, text: string, rules: TemplateRules, scope: TemplateScope, what: string): boolean {
  const before = issues.items.length;
  const parsed = parseTemplate(text);
  for (const err of parsed.errors) {
    const why = err.code === 'unterminated_reference' ? 'has a "${" with no closing "}"' : `uses ${JSON.stringify(err.text)}, which is not a reference Orch knows`;
    issues.add(
      CompileCode.badTemplate,
      subject,
      field,
      `${what} ${why} (at offset ${err.index}); use \${params.NAME}, \${nodes.ID.output}${rules.secrets === 'allowed' ? ', ${secrets.NAME}' : ''}, or write $\${ for a literal \${`,
    );
  }
  const seen = new Set<string>();
  for (const part of parsed.parts) {
    if (part.kind === 'text') continue;
    const key = `${part.kind}:${part.kind === 'node' ? part.id : part.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (part.kind === 'param') {
      if (scope.declaredParams && !scope.declaredParams.has(part.name)) {
        issues.add(CompileCode.unknownParamReference, subject, field, `${what} uses \${params.${part.name}} but the DAG declares no param "${part.name}"; declare it under params or fix the name`);
      }
    } else if (part.kind === 'node') {
      if (!rules.nodes) {
        issues.add(CompileCode.referenceNotAllowed, subject, field, `${what} cannot use another node's output (\${nodes.${part.id}.output}); only claude prompts and gate messages can`);
        continue;
      }
      const idx = scope.idIndex.get(part.id);
      if (idx === undefined) {
        issues.add(CompileCode.unknownNodeReference, subject, field, `${what} uses the output of node "${part.id}", which does not exist; fix the id`);
      } else if (idx === scope.selfIndex || !scope.ancestors().has(idx)) {
        issues.add(CompileCode.nonAncestorReference, subject, field, `${what} uses the output of node "${part.id}", which is not an ancestor of this node; add "${part.id}" to needs (directly or through a parent)`);
      }
    } else {
      if (rules.secrets === 'secret_in_prompt') {
        issues.add(CompileCode.secretInPrompt, subject, field, `${what} uses \${secrets.${part.name}}; secrets never go to Claude, remove it`);
      } else if (rules.secrets === 'not_allowed') {
        issues.add(CompileCode.referenceNotAllowed, subject, field, `${what} uses \${secrets.${part.name}}; secrets are only allowed in command argv`);
      }
    }
  }
  return issues.items.length === before;
}

/** An argv (as written, or with params rendered) must fit the `command_sent` audit row. */
export function checkArgvAuditSize(issues: IssueList, subject: Subject, field: string, argv: readonly string[], rendered = false): void {
  const bytes = L.jsonUtf8Bytes(argv);
  if (bytes > L.MAX_ARGV_AUDIT_BYTES) {
    issues.add(
      CompileCode.tooLargeForAudit,
      subject,
      field,
      `argv${rendered ? ' with these params' : ''} takes ${bytes} bytes in the command's audit row, over the limit of ${L.MAX_ARGV_AUDIT_BYTES}; shorten it or use a script on the server`,
    );
  }
}
