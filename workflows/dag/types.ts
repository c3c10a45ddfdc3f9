/**
 * The DAG format. A DAG is written by an operator in YAML or JSON (parsed outside workflow code), compiled by
 * `compileDag` (pure, deterministic, also used inside workflows) into a `CompiledDag` the runner executes.
 *
 * Field names in the source follow the file format (snake_case); the compiled form uses camelCase.
 */

export type ParamType = 'string' | 'number' | 'integer' | 'boolean';

/** A declared run parameter. */
export interface ParamSpec {
  type: ParamType;
  description?: string;
  /** Absent or true: the run must supply it unless `default` is given. */
  required?: boolean;
  default?: string | number | boolean;
  /** Allowed values. */
  enum?: Array<string | number | boolean>;
  /** For strings: a regular expression the whole value must match. */
  pattern?: string;
  /** For strings: maximum length (never more than the global limit). */
  max_length?: number;
  /** For numbers. */
  min?: number;
  max?: number;
}

export interface NodeSourceBase {
  id: string;
  type: string;
  needs?: string[];
  description?: string;
}

export interface CommandNodeSource extends NodeSourceBase {
  type: 'command';
  /** Name of the enrolled agent that runs it. May be `${params.NAME}`. */
  agent: string;
  /** Executable and arguments. Never run through a shell. Elements may use `${params.NAME}`. */
  argv: string[];
  timeout_seconds?: number;
  /** Marks the node destructive. A command matching a known destructive pattern is destructive anyway. */
  destructive?: boolean;
  /** Working directory on the server. */
  cwd?: string;
}

export interface ClaudeNodeSource extends NodeSourceBase {
  type: 'claude';
  model: string;
  /** Template: `${params.NAME}` and `${nodes.ID.output}` (a parent's output, wrapped in <server-output>). */
  prompt: string;
  system?: string;
  max_tokens: number;
}

export interface ApprovalGateNodeSource extends NodeSourceBase {
  type: 'approval_gate';
  message: string;
  /** Default 86400 (24 hours). */
  timeout_seconds?: number;
  /** If given, only these approvers' signed decisions count (names from the tenant's approver list). */
  approvers?: string[];
  /** Distinct approvers needed to open the gate (default 1; more than 1 needs `approvers`). */
  min_approvals?: number;
  /** Refuse the run starter's approval (four eyes). Default: true when the gate names approvers and releases a destructive command. */
  distinct_from_starter?: boolean;
}

export type NodeSource = CommandNodeSource | ClaudeNodeSource | ApprovalGateNodeSource;

/** The DAG as written in a file, after YAML/JSON parsing. */
export interface DagSource {
  name: string;
  version: string | number;
  description?: string;
  cost_cap_usd: number;
  params?: Record<string, ParamSpec>;
  nodes: NodeSource[];
}

interface CompiledNodeBase {
  id: string;
  needs: string[];
  description?: string;
}

export interface CompiledCommandNode extends CompiledNodeBase {
  type: 'command';
  agent: string;
  argv: string[];
  timeoutSeconds: number;
  /** Flag OR pattern match. */
  destructive: boolean;
  /** Why it is destructive: 'flag' or the name of the pattern that matched. */
  destructiveReason?: string;
  cwd?: string;
}

export interface CompiledClaudeNode extends CompiledNodeBase {
  type: 'claude';
  model: string;
  prompt: string;
  system?: string;
  maxTokens: number;
}

export interface CompiledGateNode extends CompiledNodeBase {
  type: 'approval_gate';
  message: string;
  timeoutSeconds: number;
  approvers?: string[];
  minApprovals?: number;
  distinctFromStarter?: boolean;
}

export type CompiledNode = CompiledCommandNode | CompiledClaudeNode | CompiledGateNode;

export interface CompiledDag {
  name: string;
  version: string;
  description?: string;
  costCapUsd: number;
  params: Record<string, ParamSpec>;
  /** In a topological order: every node comes after all of its `needs`. */
  nodes: CompiledNode[];
}

/** One compile problem. `node` is absent for DAG-level problems. */
export interface CompileIssue {
  /** Stable code, e.g. 'cycle', 'unknown_parent', 'duplicate_id'. */
  code: string;
  node?: string;
  /** Dotted path of the offending field, e.g. 'nodes[2].argv[0]' or 'cost_cap_usd'. */
  field: string;
  /** One line a person can act on; names the node and the field. */
  message: string;
  /** Problems found while parsing a DAG file (field '(file)'): 1-based line and column, when known. */
  line?: number;
  column?: number;
}

export type CompileResult = { ok: true; dag: CompiledDag } | { ok: false; issues: CompileIssue[] };

export interface CompileOptions {
  /** Models the price table knows; any other model is rejected (its cost could not be bounded). */
  knownModels: readonly string[];
  /** When given, a command node's (literal) agent must be one of these. */
  knownAgents?: readonly string[];
}

/** Values a run supplies for the DAG's params, after `bindParams` checked them. */
export type ParamValues = Record<string, string | number | boolean>;
