/**
 * The DAG compiler: checks a parsed DAG source (`unknown`: it comes from a file, the planner or a signal) and
 * turns it into the `CompiledDag` the runner executes.
 *
 * Pure and deterministic (no I/O, clock or randomness), so it also runs inside workflow code. It never throws
 * on bad input: every problem becomes a `CompileIssue` with a stable code, and all of them are reported at
 * once so an operator fixes a file in one pass. `null` counts as absent (YAML writes an empty value as null).
 */

import type {
  CompileIssue,
  CompileOptions,
  CompileResult,
  CompiledClaudeNode,
  CompiledCommandNode,
  CompiledDag,
  CompiledGateNode,
  CompiledNode,
  ParamSpec,
  ParamType,
  ParamValues,
} from './types';
import * as L from './limits';
import { destructivePattern } from '../../protocol/destructive';
import { parseTemplate, renderTemplate } from './template';
import { anchoredPattern, checkParamConstraints, coerceParamValue } from './params';

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

const TOP_LEVEL_KEYS = new Set(['name', 'version', 'description', 'cost_cap_usd', 'params', 'nodes']);
const COMMON_NODE_KEYS = ['id', 'type', 'needs', 'description'];
const NODE_KEYS: Record<string, ReadonlySet<string>> = {
  command: new Set([...COMMON_NODE_KEYS, 'agent', 'argv', 'timeout_seconds', 'destructive', 'cwd']),
  claude: new Set([...COMMON_NODE_KEYS, 'model', 'prompt', 'system', 'max_tokens']),
  approval_gate: new Set([...COMMON_NODE_KEYS, 'message', 'timeout_seconds', 'approvers', 'min_approvals', 'distinct_from_starter']),
};
const NODE_TYPES = Object.keys(NODE_KEYS);
const PARAM_SPEC_KEYS = new Set(['type', 'description', 'required', 'default', 'enum', 'pattern', 'max_length', 'min', 'max']);
const PARAM_TYPES: readonly ParamType[] = ['string', 'number', 'integer', 'boolean'];
const AGENT_PARAM_REF = /^\$\{params\.([^}]*)\}$/;

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

function hasOwn(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A field's value, with null read as absent. */
function get(obj: Record<string, unknown>, key: string): unknown {
  if (!hasOwn(obj, key)) return undefined;
  const v = obj[key];
  return v === null ? undefined : v;
}

function clip(s: string, max = 40): string {
  return s.length > max ? s.slice(0, max - 3) + '...' : s;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(clip(v))}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `the ${typeof v} ${String(v)}`;
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

/** A key as it appears in a field path: plain when it is a name, quoted otherwise. */
function keyPath(key: string): string {
  return /^[A-Za-z0-9_-]{1,100}$/.test(key) ? key : JSON.stringify(clip(key));
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Who an issue is about: "DAG", `node "build"`, `node #3`, `param "region"`. */
interface Subject {
  label: string;
  node?: string;
}

class IssueList {
  readonly items: CompileIssue[] = [];

  add(code: CompileCodeName, subject: Subject, field: string, message: string): void {
    const issue: CompileIssue = { code, field, message: `${subject.label} (${field}): ${message}` };
    if (subject.node !== undefined) issue.node = subject.node;
    this.items.push(issue);
  }
}

/** A min-heap of node indexes, so Kahn's algorithm breaks ties by source order in O(n log n). */
class IndexHeap {
  private readonly a: number[] = [];

  get size(): number {
    return this.a.length;
  }

  push(v: number): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((a[p] ?? 0) <= v) break;
      a[i] = a[p] ?? 0;
      i = p;
    }
    a[i] = v;
  }

  pop(): number | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let mv = last;
      if (l < a.length && (a[l] ?? 0) < mv) {
        m = l;
        mv = a[l] ?? 0;
      }
      if (r < a.length && (a[r] ?? 0) < mv) m = r;
      if (m === i) break;
      a[i] = a[m] ?? 0;
      i = m;
    }
    a[i] = last;
    return top;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Field checks. Each reports its own issue and returns the value only when it is usable.

function checkText(
  issues: IssueList,
  subject: Subject,
  field: string,
  value: unknown,
  opts: { required: boolean; max: number; what: string },
): string | undefined {
  if (value === undefined) {
    if (opts.required) issues.add(CompileCode.missingField, subject, field, `${opts.what} is missing; add it`);
    return undefined;
  }
  if (typeof value !== 'string') {
    issues.add(CompileCode.wrongType, subject, field, `${opts.what} must be a string, got ${describe(value)}`);
    return undefined;
  }
  if (opts.required && value.trim().length === 0) {
    issues.add(CompileCode.empty, subject, field, `${opts.what} is empty; write some text`);
    return undefined;
  }
  if (value.length > opts.max) {
    issues.add(CompileCode.tooLong, subject, field, `${opts.what} is ${value.length} characters, over the limit of ${opts.max}; shorten it`);
    return undefined;
  }
  if (value.includes('\u0000')) {
    issues.add(CompileCode.controlCharacter, subject, field, `${opts.what} contains a NUL character; remove it`);
    return undefined;
  }
  return value;
}

function checkName(
  issues: IssueList,
  subject: Subject,
  field: string,
  value: unknown,
  opts: { required: boolean; max: number; what: string },
): string | undefined {
  if (value === undefined) {
    if (opts.required) issues.add(CompileCode.missingField, subject, field, `${opts.what} is missing; add one (letters, digits, _ and -)`);
    return undefined;
  }
  if (typeof value !== 'string') {
    issues.add(CompileCode.wrongType, subject, field, `${opts.what} must be a string, got ${describe(value)}`);
    return undefined;
  }
  if (value.length > opts.max) {
    issues.add(CompileCode.tooLong, subject, field, `${opts.what} is ${value.length} characters, over the limit of ${opts.max}; shorten it`);
    return undefined;
  }
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

function checkInteger(
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

function checkUnknownKeys(issues: IssueList, subject: Subject, prefix: string, obj: Record<string, unknown>, allowed: ReadonlySet<string>, what: string): void {
  for (const key of Object.keys(obj)) {
    if (allowed.has(key)) continue;
    const field = prefix ? `${prefix}.${keyPath(key)}` : keyPath(key);
    issues.add(CompileCode.unknownField, subject, field, `${what} has no field ${JSON.stringify(clip(key))}; allowed fields are ${[...allowed].join(', ')}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Params

function checkParamSpecs(issues: IssueList, raw: unknown): { specs: Record<string, ParamSpec>; declared: Set<string> | undefined } {
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

// ---------------------------------------------------------------------------------------------------------------
// Templates

type SecretRule = 'allowed' | 'secret_in_prompt' | 'not_allowed';

interface TemplateRules {
  nodes: boolean;
  secrets: SecretRule;
}

interface TemplateScope {
  declaredParams: Set<string> | undefined;
  idIndex: Map<string, number>;
  ancestors: () => Set<number>;
  selfIndex: number;
}

function checkTemplate(issues: IssueList, subject: Subject, field: string, text: string, rules: TemplateRules, scope: TemplateScope, what: string): boolean {
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

// ---------------------------------------------------------------------------------------------------------------
// Graph

interface GraphNode {
  /** Index in the source `nodes` array. */
  index: number;
  id: string;
  type: unknown;
  /** Indexes of known parents, deduplicated, without self. */
  parents: number[];
}

/** Topological order by Kahn's algorithm; among ready nodes the earliest in the source goes first. */
function topologicalOrder(graph: Map<number, GraphNode>): { order: number[]; placed: Set<number> } {
  const indegree = new Map<number, number>();
  const children = new Map<number, number[]>();
  for (const g of graph.values()) {
    indegree.set(g.index, g.parents.length);
    for (const p of g.parents) {
      const list = children.get(p);
      if (list) list.push(g.index);
      else children.set(p, [g.index]);
    }
  }
  const ready = new IndexHeap();
  for (const [i, d] of indegree) if (d === 0) ready.push(i);
  const order: number[] = [];
  const placed = new Set<number>();
  while (ready.size > 0) {
    const i = ready.pop();
    if (i === undefined) break;
    order.push(i);
    placed.add(i);
    for (const c of children.get(i) ?? []) {
      const d = (indegree.get(c) ?? 0) - 1;
      indegree.set(c, d);
      if (d === 0) ready.push(c);
    }
  }
  return { order, placed };
}

/** Strongly connected components of the unplaced nodes (Kosaraju, iterative: no recursion depth limit). */
function cyclicComponents(graph: Map<number, GraphNode>, placed: Set<number>): number[][] {
  const members = [...graph.keys()].filter((i) => !placed.has(i)).sort((a, b) => a - b);
  const inSet = new Set(members);
  const edges = (i: number): number[] => (graph.get(i)?.parents ?? []).filter((p) => inSet.has(p));
  const reverse = new Map<number, number[]>();
  for (const i of members) {
    for (const p of edges(i)) {
      const list = reverse.get(p);
      if (list) list.push(i);
      else reverse.set(p, [i]);
    }
  }
  const visited = new Set<number>();
  const finish: number[] = [];
  for (const s of members) {
    if (visited.has(s)) continue;
    visited.add(s);
    const stack: Array<{ v: number; next: number; out: number[] }> = [{ v: s, next: 0, out: edges(s) }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (!top) break;
      const w = top.out[top.next];
      if (w !== undefined) {
        top.next++;
        if (!visited.has(w)) {
          visited.add(w);
          stack.push({ v: w, next: 0, out: edges(w) });
        }
      } else {
        stack.pop();
        finish.push(top.v);
      }
    }
  }
  const assigned = new Set<number>();
  const components: number[][] = [];
  for (let k = finish.length - 1; k >= 0; k--) {
    const s = finish[k];
    if (s === undefined || assigned.has(s)) continue;
    const comp: number[] = [];
    const stack = [s];
    assigned.add(s);
    while (stack.length > 0) {
      const v = stack.pop();
      if (v === undefined) break;
      comp.push(v);
      for (const w of reverse.get(v) ?? []) {
        if (!assigned.has(w)) {
          assigned.add(w);
          stack.push(w);
        }
      }
    }
    if (comp.length > 1) components.push(comp.sort((a, b) => a - b));
  }
  return components.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
}

/** A shortest cycle through `start` inside `component`, following needs: [start, p1, ..., start]. */
function cycleThrough(graph: Map<number, GraphNode>, component: number[], start: number): number[] {
  const inComp = new Set(component);
  const prev = new Map<number, number>();
  const queue = [start];
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q] ?? start;
    for (const p of graph.get(v)?.parents ?? []) {
      if (!inComp.has(p)) continue;
      if (p === start) {
        const path = [start];
        let cur = v;
        while (cur !== start) {
          path.push(cur);
          cur = prev.get(cur) ?? start;
        }
        const forward = [start, ...path.slice(1).reverse()];
        forward.push(start);
        return forward;
      }
      if (!prev.has(p)) {
        prev.set(p, v);
        queue.push(p);
      }
    }
  }
  return [start, start];
}

// ---------------------------------------------------------------------------------------------------------------
// The compiler

/**
 * Checks and compiles a DAG source.
 *
 * @example
 *   const r = compileDag(parsedYaml, { knownModels: ['claude-sonnet-4-5'] });
 *   if (!r.ok) for (const i of r.issues) console.error(i.code, i.message);
 */
export function compileDag(source: unknown, options: CompileOptions): CompileResult {
  const issues = new IssueList();
  const dag: Subject = { label: 'DAG' };
  if (!isPlainObject(source)) {
    issues.add(CompileCode.notAnObject, dag, '(root)', `expected a mapping with name, version, cost_cap_usd and nodes, got ${describe(source)}; check the file is a DAG`);
    return { ok: false, issues: issues.items };
  }
  const knownModels = new Set(Array.isArray(options?.knownModels) ? options.knownModels : []);
  const knownAgents = Array.isArray(options?.knownAgents) ? new Set(options.knownAgents) : undefined;

  checkUnknownKeys(issues, dag, '', source, TOP_LEVEL_KEYS, 'a DAG');
  const name = checkName(issues, dag, 'name', get(source, 'name'), { required: true, max: L.MAX_NAME_LENGTH, what: 'the DAG name' });

  let version: string | undefined;
  const versionRaw = get(source, 'version');
  if (versionRaw === undefined) {
    issues.add(CompileCode.missingField, dag, 'version', 'version is missing; add one, e.g. version: 1');
  } else if (typeof versionRaw === 'number') {
    if (Number.isFinite(versionRaw)) version = String(versionRaw);
    else issues.add(CompileCode.wrongType, dag, 'version', `version must be a finite number or a string, got ${describe(versionRaw)}`);
  } else if (typeof versionRaw === 'string') {
    if (versionRaw.trim().length === 0) issues.add(CompileCode.empty, dag, 'version', 'version is an empty string; write e.g. "1" or "2024-06-01"');
    else if (versionRaw.length > L.MAX_VERSION_LENGTH) issues.add(CompileCode.tooLong, dag, 'version', `version is ${versionRaw.length} characters, over the limit of ${L.MAX_VERSION_LENGTH}`);
    else if (/[\u0000-\u001F\u007F]/.test(versionRaw)) issues.add(CompileCode.controlCharacter, dag, 'version', 'version contains control characters; use plain text');
    else version = versionRaw;
  } else {
    issues.add(CompileCode.wrongType, dag, 'version', `version must be a string or a number, got ${describe(versionRaw)}`);
  }

  const description = checkText(issues, dag, 'description', get(source, 'description'), { required: false, max: L.MAX_TEXT_LENGTH, what: 'description' });

  let costCapUsd: number | undefined;
  const capRaw = get(source, 'cost_cap_usd');
  if (capRaw === undefined) {
    issues.add(CompileCode.missingField, dag, 'cost_cap_usd', 'cost_cap_usd is missing; every DAG needs a spending cap in US dollars, e.g. cost_cap_usd: 5');
  } else if (!isFiniteNumber(capRaw)) {
    issues.add(CompileCode.wrongType, dag, 'cost_cap_usd', `cost_cap_usd must be a number of US dollars, got ${describe(capRaw)}`);
  } else if (capRaw <= 0 || capRaw > L.MAX_COST_CAP_USD) {
    issues.add(CompileCode.outOfRange, dag, 'cost_cap_usd', `cost_cap_usd is ${capRaw}; it must be more than 0 and at most ${L.MAX_COST_CAP_USD}`);
  } else {
    costCapUsd = capRaw;
  }

  const { specs, declared } = checkParamSpecs(issues, get(source, 'params'));

  const nodesRaw = get(source, 'nodes');
  let nodeList: unknown[] = [];
  if (nodesRaw === undefined) {
    issues.add(CompileCode.missingField, dag, 'nodes', 'nodes is missing; add a list of nodes');
  } else if (!Array.isArray(nodesRaw)) {
    issues.add(CompileCode.wrongType, dag, 'nodes', `nodes must be a list of nodes, got ${describe(nodesRaw)}`);
  } else if (nodesRaw.length === 0) {
    issues.add(CompileCode.empty, dag, 'nodes', 'nodes is an empty list; a DAG needs at least one node');
  } else {
    if (nodesRaw.length > L.MAX_NODES) {
      issues.add(CompileCode.tooMany, dag, 'nodes', `has ${nodesRaw.length} nodes, over the limit of ${L.MAX_NODES}; split the DAG`);
    }
    nodeList = nodesRaw;
  }

  // Pass 1: ids and types, so needs and references can be resolved whatever the order of the list.
  const idIndex = new Map<string, number>();
  const graph = new Map<number, GraphNode>();
  nodeList.forEach((raw, i) => {
    if (!isPlainObject(raw)) return;
    const id = get(raw, 'id');
    if (typeof id !== 'string' || !L.isValidName(id) || idIndex.has(id)) return;
    idIndex.set(id, i);
    graph.set(i, { index: i, id, type: get(raw, 'type'), parents: [] });
  });
  for (const g of graph.values()) {
    const raw = nodeList[g.index] as Record<string, unknown>;
    const needs = get(raw, 'needs');
    if (!Array.isArray(needs)) continue;
    for (const n of needs) {
      if (typeof n !== 'string') continue;
      const p = idIndex.get(n);
      if (p === undefined || p === g.index || g.parents.includes(p)) continue;
      g.parents.push(p);
    }
  }
  const { order, placed } = topologicalOrder(graph);

  const ancestorCache = new Map<number, Set<number>>();
  const ancestorsOf = (i: number): Set<number> => {
    const cached = ancestorCache.get(i);
    if (cached) return cached;
    const seen = new Set<number>();
    const stack = [...(graph.get(i)?.parents ?? [])];
    while (stack.length > 0) {
      const v = stack.pop();
      if (v === undefined || seen.has(v)) continue;
      seen.add(v);
      stack.push(...(graph.get(v)?.parents ?? []));
    }
    ancestorCache.set(i, seen);
    return seen;
  };

  // Pass 2: every field of every node.
  const compiled = new Map<number, CompiledNode>();
  const firstById = new Map<string, number>();
  nodeList.forEach((raw, i) => {
    const node = compileNode(issues, raw, i, {
      idIndex,
      firstById,
      graph,
      declaredParams: declared,
      specs,
      knownModels,
      knownAgents,
      ancestors: () => ancestorsOf(i),
      nodeList,
    });
    if (node) compiled.set(i, node);
  });

  for (const component of cyclicComponents(graph, placed)) {
    const start = component[0] ?? 0;
    const path = cycleThrough(graph, component, start).map((k) => graph.get(k)?.id ?? `#${k}`);
    const steps = path.slice(0, -1).map((id, k) => `"${id}" needs "${path[k + 1] ?? ''}"`);
    const onCycle = component.map((k) => `"${graph.get(k)?.id ?? k}"`).join(', ');
    issues.add(
      CompileCode.cycle,
      { label: `node "${path[0] ?? ''}"`, node: path[0] ?? '' },
      `nodes[${start}].needs`,
      `nodes ${onCycle} form a cycle (${steps.join(', ')}); remove one of these needs`,
    );
  }

  if (issues.items.length > 0 || name === undefined || version === undefined || costCapUsd === undefined) {
    return { ok: false, issues: issues.items };
  }
  const nodes: CompiledNode[] = [];
  for (const i of order) {
    const n = compiled.get(i);
    if (n) nodes.push(n);
  }
  const result: CompiledDag = { name, version, costCapUsd, params: specs, nodes };
  if (description !== undefined) result.description = description;
  return { ok: true, dag: result };
}

interface NodeContext {
  idIndex: Map<string, number>;
  firstById: Map<string, number>;
  graph: Map<number, GraphNode>;
  declaredParams: Set<string> | undefined;
  specs: Record<string, ParamSpec>;
  knownModels: Set<string>;
  knownAgents: Set<string> | undefined;
  ancestors: () => Set<number>;
  nodeList: unknown[];
}

function compileNode(issues: IssueList, raw: unknown, i: number, ctx: NodeContext): CompiledNode | undefined {
  const at = `nodes[${i}]`;
  if (!isPlainObject(raw)) {
    issues.add(CompileCode.wrongType, { label: `node #${i}` }, at, `each node must be a mapping with id and type, got ${describe(raw)}`);
    return undefined;
  }
  const before = issues.items.length;
  const idRaw = get(raw, 'id');
  const provisional: Subject = { label: typeof idRaw === 'string' && L.isValidName(idRaw) ? `node "${idRaw}"` : `node #${i}` };
  const id = checkName(issues, provisional, `${at}.id`, idRaw, { required: true, max: L.MAX_NAME_LENGTH, what: 'the node id' });
  const subject: Subject = id !== undefined ? { label: `node "${id}"`, node: id } : provisional;
  if (id !== undefined) {
    const first = ctx.firstById.get(id);
    if (first !== undefined) {
      issues.add(CompileCode.duplicateId, subject, `${at}.id`, `id "${id}" is already used by nodes[${first}]; give every node its own id`);
    } else ctx.firstById.set(id, i);
  }
  const selfIndex = id !== undefined && ctx.idIndex.get(id) === i ? i : -1;

  const typeRaw = get(raw, 'type');
  let type: string | undefined;
  if (typeRaw === undefined) {
    issues.add(CompileCode.missingField, subject, `${at}.type`, `type is missing; use one of ${NODE_TYPES.join(', ')}`);
  } else if (typeof typeRaw !== 'string') {
    issues.add(CompileCode.wrongType, subject, `${at}.type`, `type must be a string, got ${describe(typeRaw)}`);
  } else if (!hasOwn(NODE_KEYS, typeRaw)) {
    issues.add(CompileCode.unknownNodeType, subject, `${at}.type`, `type ${JSON.stringify(clip(typeRaw))} is not a node type; use one of ${NODE_TYPES.join(', ')}`);
  } else {
    type = typeRaw;
    const allowed = NODE_KEYS[typeRaw];
    if (allowed) checkUnknownKeys(issues, subject, at, raw, allowed, `a ${typeRaw} node`);
  }

  const needs = checkNeeds(issues, subject, at, get(raw, 'needs'), id, ctx);
  const description = checkText(issues, subject, `${at}.description`, get(raw, 'description'), { required: false, max: L.MAX_TEXT_LENGTH, what: 'description' });

  const scope: TemplateScope = { declaredParams: ctx.declaredParams, idIndex: ctx.idIndex, ancestors: ctx.ancestors, selfIndex };
  let node: CompiledNode | undefined;
  if (type === 'command') node = compileCommand(issues, subject, at, raw, scope, ctx);
  else if (type === 'claude') node = compileClaude(issues, subject, at, raw, scope, ctx);
  else if (type === 'approval_gate') node = compileGate(issues, subject, at, raw, scope);

  if (!node || id === undefined || needs === undefined || issues.items.length !== before) return undefined;
  node.id = id;
  node.needs = needs;
  if (description !== undefined) node.description = description;
  return node;
}

function checkNeeds(issues: IssueList, subject: Subject, at: string, value: unknown, id: string | undefined, ctx: NodeContext): string[] | undefined {
  if (value === undefined) return [];
  const field = `${at}.needs`;
  if (!Array.isArray(value)) {
    issues.add(CompileCode.wrongType, subject, field, `needs must be a list of node ids, got ${describe(value)}`);
    return undefined;
  }
  if (value.length > L.MAX_NEEDS_PER_NODE) {
    issues.add(CompileCode.tooMany, subject, field, `needs lists ${value.length} parents, over the limit of ${L.MAX_NEEDS_PER_NODE}`);
  }
  const out: string[] = [];
  let ok = true;
  value.forEach((n: unknown, k) => {
    const f = `${field}[${k}]`;
    if (typeof n !== 'string') {
      issues.add(CompileCode.wrongType, subject, f, `each entry of needs must be a node id string, got ${describe(n)}`);
      ok = false;
    } else if (id !== undefined && n === id) {
      issues.add(CompileCode.selfDependency, subject, f, `the node needs itself; remove "${n}" from its needs`);
      ok = false;
    } else if (out.includes(n)) {
      issues.add(CompileCode.duplicateNeed, subject, f, `"${n}" is listed twice in needs; list each parent once`);
      ok = false;
    } else if (!ctx.idIndex.has(n)) {
      issues.add(CompileCode.unknownParent, subject, f, `needs ${JSON.stringify(clip(n))}, but no node has that id; fix the id or add the node`);
      ok = false;
    } else out.push(n);
  });
  return ok ? out : undefined;
}

function compileCommand(
  issues: IssueList,
  subject: Subject,
  at: string,
  raw: Record<string, unknown>,
  scope: TemplateScope,
  ctx: NodeContext,
): CompiledCommandNode | undefined {
  const before = issues.items.length;

  // agent: a literal name, or exactly one ${params.X} the run supplies.
  const agentRaw = get(raw, 'agent');
  let agent: string | undefined;
  const agentField = `${at}.agent`;
  if (agentRaw === undefined) {
    issues.add(CompileCode.missingField, subject, agentField, 'agent is missing; name the enrolled agent that runs this command');
  } else if (typeof agentRaw !== 'string') {
    issues.add(CompileCode.wrongType, subject, agentField, `agent must be an agent name string, got ${describe(agentRaw)}`);
  } else {
    const ref = AGENT_PARAM_REF.exec(agentRaw);
    if (ref) {
      const paramName = ref[1] ?? '';
      if (ctx.declaredParams && !ctx.declaredParams.has(paramName)) {
        issues.add(CompileCode.unknownParamReference, subject, agentField, `agent uses \${params.${clip(paramName)}} but the DAG declares no param "${clip(paramName)}"; declare it or fix the name`);
      } else {
        const spec = hasOwn(ctx.specs, paramName) ? ctx.specs[paramName] : undefined;
        if (spec && spec.type !== 'string') {
          issues.add(CompileCode.wrongType, subject, agentField, `agent comes from param "${paramName}", which is ${spec.type}; agent params must be strings`);
        } else agent = agentRaw;
      }
    } else {
      agent = checkName(issues, subject, agentField, agentRaw, { required: true, max: L.MAX_AGENT_NAME_LENGTH, what: 'the agent name' });
      if (agent !== undefined && ctx.knownAgents && !ctx.knownAgents.has(agent)) {
        issues.add(CompileCode.unknownAgent, subject, agentField, `agent "${agent}" is not enrolled in this tenant; enroll it or use one of the enrolled agents`);
        agent = undefined;
      }
    }
  }

  // argv
  const argvRaw = get(raw, 'argv');
  const argvField = `${at}.argv`;
  let argv: string[] | undefined;
  if (argvRaw === undefined) {
    issues.add(CompileCode.missingField, subject, argvField, 'argv is missing; give the executable and its arguments as a list, e.g. [df, -h]');
  } else if (!Array.isArray(argvRaw)) {
    issues.add(CompileCode.wrongType, subject, argvField, `argv must be a list of strings (no shell is used), got ${describe(argvRaw)}`);
  } else if (argvRaw.length === 0) {
    issues.add(CompileCode.empty, subject, argvField, 'argv is an empty list; give at least the executable');
  } else {
    if (argvRaw.length > L.MAX_ARGV_ELEMENTS) {
      issues.add(CompileCode.tooMany, subject, argvField, `argv has ${argvRaw.length} elements, over the limit of ${L.MAX_ARGV_ELEMENTS}; use a script on the server`);
    }
    const out: string[] = [];
    argvRaw.forEach((a: unknown, k) => {
      const f = `${argvField}[${k}]`;
      if (typeof a !== 'string') {
        issues.add(CompileCode.wrongType, subject, f, `argv element ${k} must be a string, got ${describe(a)}; quote it`);
        return;
      }
      if (a.length > L.MAX_ARGV_ELEMENT_LENGTH) {
        issues.add(CompileCode.tooLong, subject, f, `argv element ${k} is ${a.length} characters, over the limit of ${L.MAX_ARGV_ELEMENT_LENGTH}`);
        return;
      }
      if (a.includes('\u0000')) {
        issues.add(CompileCode.controlCharacter, subject, f, `argv element ${k} contains a NUL byte, which no program can receive; remove it`);
        return;
      }
      if (k === 0) {
        if (a.length === 0) {
          issues.add(CompileCode.empty, subject, f, 'the executable (argv[0]) is an empty string; name the program to run');
          return;
        }
        const refs = parseTemplate(a);
        if (refs.parts.some((p) => p.kind !== 'text')) {
          issues.add(CompileCode.templatedExecutable, subject, f, 'the executable (argv[0]) must be written literally, not taken from params, nodes or secrets, so allowlists and destructive checks see it');
          return;
        }
      }
      if (checkTemplate(issues, subject, f, a, { nodes: false, secrets: 'allowed' }, scope, `argv element ${k}`)) out.push(a);
    });
    if (out.length === argvRaw.length) argv = out;
    if (argv !== undefined) checkArgvAuditSize(issues, subject, argvField, argv);
  }

  const timeoutRaw = get(raw, 'timeout_seconds');
  const timeout = checkInteger(issues, subject, `${at}.timeout_seconds`, timeoutRaw, {
    required: false,
    min: L.MIN_COMMAND_TIMEOUT_SECONDS,
    max: L.MAX_COMMAND_TIMEOUT_SECONDS,
    what: 'timeout_seconds',
  });

  const flagRaw = get(raw, 'destructive');
  let flag = false;
  if (flagRaw !== undefined) {
    if (typeof flagRaw !== 'boolean') {
      issues.add(CompileCode.wrongType, subject, `${at}.destructive`, `destructive must be true or false, got ${describe(flagRaw)}`);
    } else flag = flagRaw;
  }

  const cwdRaw = get(raw, 'cwd');
  let cwd: string | undefined;
  if (cwdRaw !== undefined) {
    const f = `${at}.cwd`;
    if (typeof cwdRaw !== 'string') {
      issues.add(CompileCode.wrongType, subject, f, `cwd must be a path string, got ${describe(cwdRaw)}`);
    } else if (cwdRaw.length > L.MAX_PATH_LENGTH) {
      issues.add(CompileCode.tooLong, subject, f, `cwd is ${cwdRaw.length} characters, over the limit of ${L.MAX_PATH_LENGTH}`);
    } else if (/[\u0000-\u001F\u007F]/.test(cwdRaw)) {
      issues.add(CompileCode.controlCharacter, subject, f, 'cwd contains a control character; remove it');
    } else if (cwdRaw.includes('${')) {
      issues.add(CompileCode.referenceNotAllowed, subject, f, 'cwd is a literal path and cannot use ${...}; write the directory out');
    } else if (!cwdRaw.startsWith('/')) {
      issues.add(CompileCode.invalidPath, subject, f, `cwd ${JSON.stringify(clip(cwdRaw))} is not absolute; start it with /`);
    } else if (cwdRaw.split('/').includes('..')) {
      issues.add(CompileCode.invalidPath, subject, f, `cwd ${JSON.stringify(clip(cwdRaw))} contains a ".." segment; write the directory without ..`);
    } else cwd = cwdRaw;
  }

  // Destructive: the flag, or a known pattern in the argv as written (templates unrendered), whatever the flag
  // says. Checked even when other fields are wrong, so the operator hears about the missing gate at once.
  let pattern: string | undefined;
  if (Array.isArray(argvRaw)) pattern = destructivePattern(argvRaw.map((a: unknown) => (typeof a === 'string' ? a : '')));
  const destructive = flag || pattern !== undefined;
  if (destructive) {
    const parentIsGate = (Array.isArray(get(raw, 'needs')) ? (get(raw, 'needs') as unknown[]) : []).some((n) => {
      if (typeof n !== 'string') return false;
      const p = ctx.idIndex.get(n);
      if (p === undefined) return false;
      return ctx.graph.get(p)?.type === 'approval_gate';
    });
    if (!parentIsGate) {
      const why = pattern !== undefined ? `matches the destructive pattern "${pattern}"` : 'is marked destructive: true';
      issues.add(
        CompileCode.destructiveWithoutGate,
        subject,
        `${at}.needs`,
        `the command ${why} but no direct parent is an approval_gate; add an approval_gate node and list it in this node's needs`,
      );
    }
  }

  if (issues.items.length !== before || agent === undefined || argv === undefined) return undefined;
  const node: CompiledCommandNode = {
    id: '',
    needs: [],
    type: 'command',
    agent,
    argv,
    timeoutSeconds: timeout ?? L.DEFAULT_COMMAND_TIMEOUT_SECONDS,
    destructive,
  };
  if (destructive) node.destructiveReason = pattern ?? 'flag';
  if (cwd !== undefined) node.cwd = cwd;
  return node;
}

function compileClaude(
  issues: IssueList,
  subject: Subject,
  at: string,
  raw: Record<string, unknown>,
  scope: TemplateScope,
  ctx: NodeContext,
): CompiledClaudeNode | undefined {
  const before = issues.items.length;
  const modelRaw = get(raw, 'model');
  let model: string | undefined;
  const modelField = `${at}.model`;
  if (modelRaw === undefined) {
    issues.add(CompileCode.missingField, subject, modelField, `model is missing; use one of ${[...ctx.knownModels].join(', ') || 'the models in the price table'}`);
  } else if (typeof modelRaw !== 'string') {
    issues.add(CompileCode.wrongType, subject, modelField, `model must be a model name string, got ${describe(modelRaw)}`);
  } else if (!ctx.knownModels.has(modelRaw)) {
    issues.add(
      CompileCode.unknownModel,
      subject,
      modelField,
      `model ${JSON.stringify(clip(modelRaw))} is not in the price table, so its cost cannot be bounded; use one of ${[...ctx.knownModels].join(', ') || '(none configured)'}`,
    );
  } else model = modelRaw;

  const rules: TemplateRules = { nodes: true, secrets: 'secret_in_prompt' };
  const prompt = checkText(issues, subject, `${at}.prompt`, get(raw, 'prompt'), { required: true, max: L.MAX_TEXT_LENGTH, what: 'prompt' });
  if (prompt !== undefined) checkTemplate(issues, subject, `${at}.prompt`, prompt, rules, scope, 'prompt');
  const system = checkText(issues, subject, `${at}.system`, get(raw, 'system'), { required: false, max: L.MAX_TEXT_LENGTH, what: 'system' });
  if (system !== undefined) checkTemplate(issues, subject, `${at}.system`, system, rules, scope, 'system');
  const maxTokens = checkInteger(issues, subject, `${at}.max_tokens`, get(raw, 'max_tokens'), { required: true, min: 1, max: L.MAX_MAX_TOKENS, what: 'max_tokens' });

  if (issues.items.length !== before || model === undefined || prompt === undefined || maxTokens === undefined) return undefined;
  const node: CompiledClaudeNode = { id: '', needs: [], type: 'claude', model, prompt, maxTokens };
  if (system !== undefined) node.system = system;
  return node;
}

/** An argv (as written, or with params rendered) must fit the `command_sent` audit row. */
function checkArgvAuditSize(issues: IssueList, subject: Subject, field: string, argv: readonly string[], rendered = false): void {
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

/**
 * The audit-row limits a run's params can still break after the DAG compiled: each command's argv with the params
 * rendered (secret references kept, as the runner sends them). `orch run` checks this before it starts a run, so
 * a long param value fails there and not at the command's audit row.
 *
 * @example runAuditIssues(compiled.dag, { service: 'nginx' }) // []
 */
export function runAuditIssues(dag: CompiledDag, params: ParamValues): CompileIssue[] {
  const issues = new IssueList();
  for (const node of dag.nodes) {
    if (node.type !== 'command') continue;
    const argv = node.argv.map((a) => renderTemplate(a, { params, keepSecrets: true }));
    checkArgvAuditSize(issues, { label: `node "${node.id}"`, node: node.id }, `nodes.${node.id}.argv`, argv, true);
  }
  return issues.items;
}

function compileGate(issues: IssueList, subject: Subject, at: string, raw: Record<string, unknown>, scope: TemplateScope): CompiledGateNode | undefined {
  const before = issues.items.length;
  const message = checkText(issues, subject, `${at}.message`, get(raw, 'message'), { required: true, max: L.MAX_TEXT_LENGTH, what: 'message' });
  if (message !== undefined) checkTemplate(issues, subject, `${at}.message`, message, { nodes: true, secrets: 'not_allowed' }, scope, 'message');
  if (message !== undefined && L.jsonUtf8Bytes(message) > L.MAX_GATE_MESSAGE_AUDIT_BYTES) {
    issues.add(
      CompileCode.tooLargeForAudit,
      subject,
      `${at}.message`,
      `message takes ${L.jsonUtf8Bytes(message)} bytes in the gate's audit row, over the limit of ${L.MAX_GATE_MESSAGE_AUDIT_BYTES}; shorten it`,
    );
  }
  const timeout = checkInteger(issues, subject, `${at}.timeout_seconds`, get(raw, 'timeout_seconds'), {
    required: false,
    min: L.MIN_GATE_TIMEOUT_SECONDS,
    max: L.MAX_GATE_TIMEOUT_SECONDS,
    what: 'timeout_seconds',
  });

  const approversRaw = get(raw, 'approvers');
  let approvers: string[] | undefined;
  if (approversRaw !== undefined) {
    const f = `${at}.approvers`;
    if (!Array.isArray(approversRaw)) {
      issues.add(CompileCode.wrongType, subject, f, `approvers must be a list of approver names, got ${describe(approversRaw)}`);
    } else if (approversRaw.length === 0) {
      issues.add(CompileCode.empty, subject, f, 'approvers is an empty list, so nobody could approve; name at least one or leave it out');
    } else if (approversRaw.length > L.MAX_APPROVERS) {
      issues.add(CompileCode.tooMany, subject, f, `approvers lists ${approversRaw.length} names, over the limit of ${L.MAX_APPROVERS}`);
    } else {
      const out: string[] = [];
      approversRaw.forEach((a: unknown, k) => {
        const name = checkName(issues, subject, `${f}[${k}]`, a, { required: true, max: L.MAX_NAME_LENGTH, what: `approver ${k}` });
        if (name === undefined) return;
        if (out.includes(name)) issues.add(CompileCode.duplicateApprover, subject, `${f}[${k}]`, `approver "${name}" is listed twice; list each approver once`);
        else out.push(name);
      });
      if (out.length === approversRaw.length) approvers = out;
    }
  }

  // Four eyes and N approvers need verified identities, so both need `approvers:` (whose signatures are checked).
  const minApprovals = checkInteger(issues, subject, `${at}.min_approvals`, get(raw, 'min_approvals'), {
    required: false,
    min: 1,
    max: L.MAX_MIN_APPROVALS,
    what: 'min_approvals',
  });
  if (minApprovals !== undefined && minApprovals > 1) {
    if (approversRaw === undefined) {
      issues.add(CompileCode.gateOptionNeedsApprovers, subject, `${at}.min_approvals`, `min_approvals: ${minApprovals} needs an approvers list (only signed approvals from named approvers can be counted as distinct)`);
    } else if (approvers !== undefined && minApprovals > approvers.length) {
      issues.add(CompileCode.outOfRange, subject, `${at}.min_approvals`, `min_approvals is ${minApprovals} but only ${approvers.length} approver(s) are listed, so the gate could never open`);
    }
  }
  const distinctRaw = get(raw, 'distinct_from_starter');
  if (distinctRaw !== undefined && typeof distinctRaw !== 'boolean') {
    issues.add(CompileCode.wrongType, subject, `${at}.distinct_from_starter`, `distinct_from_starter must be true or false, got ${describe(distinctRaw)}`);
  } else if (distinctRaw === true && approversRaw === undefined) {
    issues.add(CompileCode.gateOptionNeedsApprovers, subject, `${at}.distinct_from_starter`, 'distinct_from_starter: true needs an approvers list (the starter is told apart from approvers by their signing keys)');
  }

  if (issues.items.length !== before || message === undefined) return undefined;
  const node: CompiledGateNode = { id: '', needs: [], type: 'approval_gate', message, timeoutSeconds: timeout ?? L.DEFAULT_GATE_TIMEOUT_SECONDS };
  if (approvers !== undefined) node.approvers = approvers;
  if (minApprovals !== undefined) node.minApprovals = minApprovals;
  if (typeof distinctRaw === 'boolean') node.distinctFromStarter = distinctRaw;
  return node;
}
