/**
 * The DAG format and compiler. Everything here is pure and safe in workflow code. Reading YAML files lives on the
 * CLI side (desktop-worker/dag-yaml.ts: it imports `yaml`).
 */

export type {
  ApprovalGateNodeSource,
  ClaudeNodeSource,
  CommandNodeSource,
  CompileIssue,
  CompileOptions,
  CompileResult,
  CompiledClaudeNode,
  CompiledCommandNode,
  CompiledDag,
  CompiledGateNode,
  CompiledNode,
  DagSource,
  NodeSource,
  NodeSourceBase,
  ParamSpec,
  ParamType,
  ParamValues,
} from './types';
export * from './limits';
export { compileDag, CompileCode } from './compile';
export type { CompileCodeName } from './compile';
export { destructivePattern, DESTRUCTIVE_PATTERN_NAMES } from './destructive';
export type { DestructivePatternName } from './destructive';
export { bindParams, checkParamConstraints, coerceParamValue, ParamIssueCode } from './params';
export type { BindResult } from './params';
export { parseTemplate, renderTemplate, templateReferences } from './template';
export type { ParsedTemplate, TemplateContext, TemplatePart, TemplateReferences, TemplateSyntaxError } from './template';
export { neutraliseServerOutputTags, SERVER_OUTPUT_SYSTEM_PROMPT, wrapServerOutput } from './server-output';
