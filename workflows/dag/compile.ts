/**
 * The DAG compiler: checks a parsed DAG source (`unknown`: it comes from a file, the planner or a signal) and
 * turns it into the `CompiledDag` the runner executes.
 *
 * Pure and deterministic (no I/O, clock or randomness), so it also runs inside workflow code. It never throws
 * on bad input: every problem becomes a `CompileIssue` with a stable code, and all of them are reported at
 * once so an operator fixes a file in one pass. `null` counts as absent (YAML writes an empty value as null).
 */
import type { CompileIssue, CompileOptions, CompileResult, CompiledDag, CompiledNode, ParamValues } from './types';
import * as L from './limits';
import { renderTemplate } from './template';
import { CompileCode, IssueList, checkArgvAuditSize, checkName, checkText, checkUnknownKeys, describe, get, isFiniteNumber, isPlainObject, type Subject } from './checks';
import { cycleThrough, cyclicComponents, topologicalOrder, type GraphNode } from './graph';
import { compileNode } from './nodes';
import { checkParamSpecs } from './param-specs';

export { CompileCode, type CompileCodeName } from './checks';

const TOP_LEVEL_KEYS = new Set(['name', 'version', 'description', 'cost_cap_usd', 'params', 'nodes']);

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
