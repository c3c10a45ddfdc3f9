/**
 * The chat-to-DAG planner behind `orch plan`: asks Claude, through tool use with the DAG's JSON Schema
 * (workflows/dag/schema.ts), for a DAG that does what the operator asked, then reviews the answer as data:
 *
 *  1. the answer must match the schema (one retry with the problems told to the model, then `plan_invalid`);
 *  2. a command matching a destructive pattern (protocol/destructive.ts) is marked `destructive: true`;
 *  3. every destructive command without an approval gate as a direct parent gets one inserted in front of it, and
 *     so does every command its agent would run only with a signed approval (not read-only on a standard or
 *     infrastructure agent: protocol/APPROVAL.md);
 *  4. the result must compile (compile.ts) with the tenant's agents and the priced models;
 *  5. each command must pass its agent's tier and allowlist, decided by the Go agent's own policy code
 *     (`orch-agent explain --tier T --allow FILE -- ARGV` run as a process, so there is one implementation);
 *  6. its worst case (every Claude node at max_tokens) must fit the DAG's cost cap.
 *
 * The planner's own Claude calls are cost-capped (each call's worst case is reserved against `maxCostUsd` before
 * it is sent) and audited in the tenant's chain like a node's call (`claude_call`, or `cost_cap_exceeded`).
 */
import crypto from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { stringify } from 'yaml';
import { compileDag } from '../workflows/dag/compile';
import { destructivePattern } from '../protocol/destructive';
import { MAX_NAME_LENGTH } from '../workflows/dag/limits';
import { DAG_JSON_SCHEMA, DAG_NODE_SCHEMAS } from '../workflows/dag/schema';
import { SERVER_OUTPUT_SYSTEM_PROMPT } from '../workflows/dag/server-output';
import type { CompiledDag, CompiledNode, DagSource } from '../workflows/dag/types';
import { actualCost, nanoToUsd, usdToNano, worstCaseCost } from '../workflows/cost-ledger';
import type { PriceTable } from '../workflows/prices';
import { OrchError } from '../protocol/errors';
import type { AgentRecord } from './agent-registry';
import type { AllowlistCheck, AllowlistVerdict } from './agent-policy';

export { agentExplainCheck, type AllowlistCheck, type AllowlistVerdict } from './agent-policy';

/** Stable codes of what the planner reports. Scripts branch on these, never on the text. */
export const PlanCode = {
  /** The model's answer did not match the DAG schema, twice. */
  invalid: 'plan_invalid',
  /** The planner's own call would pass --max-cost-usd. */
  plannerCostCap: 'cost_cap_exceeded',
  /** The plan's worst case is over its own cost_cap_usd. */
  overCap: 'plan_over_cost_cap',
  /** A command its agent's tier or allowlist would refuse. */
  commandNotAllowed: 'command_not_allowed',
  /** The allowlist could not be checked (no orch-agent binary): refused rather than passed unchecked. */
  allowlistUnchecked: 'allowlist_check_unavailable',
  claudeRejected: 'claude_request_rejected',
  claudeUnavailable: 'claude_not_processed',
  markedDestructive: 'marked_destructive',
  gateInserted: 'gate_inserted',
  notChecked: 'not_checked',
} as const;

export interface PlanNote {
  code: string;
  node?: string;
  message: string;
}

export const PLAN_TOOL_NAME = 'submit_dag';
/** How many times the model may answer: the first answer and one retry after a schema problem. */
export const PLAN_ATTEMPTS = 2;

// ------------------------------------------------------------------------------------------- schema check

type Schema = Record<string, unknown>;

function typeOk(value: unknown, t: string): boolean {
  switch (t) {
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    default:
      return false;
  }
}

function shortJson(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/**
 * Checks `value` against the subset of JSON Schema that schema.ts uses; returns one line per problem, naming its
 * path (`nodes[2].argv`). `oneOf` over node schemas is decided by the node's `type`, so a node gets the problems
 * of its own kind rather than of all three.
 *
 * @example schemaProblems({ name: 'x' }, DAG_JSON_SCHEMA) // ['version: required', 'cost_cap_usd: required', 'nodes: required']
 */
export function schemaProblems(value: unknown, schema: Schema = DAG_JSON_SCHEMA as unknown as Schema, at = ''): string[] {
  const where = at || '(top)';
  const problems: string[] = [];
  if (Array.isArray(schema.oneOf)) {
    const kind = typeOk(value, 'object') ? (value as Record<string, unknown>).type : undefined;
    const chosen = typeof kind === 'string' ? (DAG_NODE_SCHEMAS as Record<string, Schema>)[kind] : undefined;
    if (!chosen) return [`${where}.type: must be one of ${Object.keys(DAG_NODE_SCHEMAS).join(', ')}`];
    return schemaProblems(value, chosen, at);
  }
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
  if (types.length && !types.some((t) => typeOk(value, t))) return [`${where}: must be ${types.join(' or ')}, got ${shortJson(value)}`];
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) problems.push(`${where}: must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`);
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) problems.push(`${where}: must not be empty`);
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) problems.push(`${where}: longer than ${schema.maxLength} characters`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(value)) problems.push(`${where}: must match ${schema.pattern}`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) problems.push(`${where}: must be at least ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) problems.push(`${where}: must be at most ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) problems.push(`${where}: needs at least ${schema.minItems} item(s)`);
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) problems.push(`${where}: more than ${schema.maxItems} items`);
    if (schema.items) value.forEach((item, i) => problems.push(...schemaProblems(item, schema.items as Schema, `${at}[${i}]`)));
  }
  if (typeOk(value, 'object')) {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required as string[] | undefined) ?? []) if (!(r in obj)) problems.push(`${at ? `${at}.` : ''}${r}: required`);
    for (const [k, v] of Object.entries(obj)) {
      const sub = `${at ? `${at}.` : ''}${k}`;
      if (props[k]) problems.push(...schemaProblems(v, props[k], sub));
      else if (schema.additionalProperties === false) problems.push(`${sub}: unknown field`);
      else if (typeof schema.additionalProperties === 'object') problems.push(...schemaProblems(v, schema.additionalProperties as Schema, sub));
    }
  }
  return problems;
}

// ----------------------------------------------------------------------------------------- the Claude call

export interface PlannerAudit {
  (entry: { action: string; subject: string; details: Record<string, unknown> }): void;
}

export interface AskOptions {
  anthropic: { apiKey?: string; baseURL?: string };
  prices: PriceTable;
  model: string;
  maxTokens: number;
  /** The most the planner's calls together may cost, in USD. */
  maxCostUsd: number;
  request: string;
  /** What the model is told about the tenant (agents, tiers, allowlists, models, an earlier version). */
  context: string;
  audit: PlannerAudit;
}

export interface AskResult {
  source: Record<string, unknown>;
  attempts: number;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
}

const PLANNER_SYSTEM = [
  'You turn an operator\'s request into an Orch DAG: a runbook of command, claude and approval_gate nodes.',
  `Answer only by calling the ${PLAN_TOOL_NAME} tool with the DAG.`,
  'Rules: commands run without a shell (argv only: no pipes, redirections or &&); use only the agents listed and',
  'only commands their tier and allowlist allow; mark every command that changes or deletes anything',
  'destructive: true and put an approval_gate node directly in its needs; order steps with needs; keep',
  'cost_cap_usd small and max_tokens modest; only use models from the list.',
].join('\n');

function claudeClient(settings: AskOptions['anthropic']): Anthropic {
  if (!settings.apiKey) {
    throw new OrchError(PlanCode.claudeRejected, 'ANTHROPIC_API_KEY is not set: set it (and ANTHROPIC_BASE_URL for a proxy) to plan with Claude');
  }
  // One request per reservation: the SDK must not retry behind the cost check's back.
  return new Anthropic({ apiKey: settings.apiKey, baseURL: settings.baseURL, maxRetries: 0, timeout: 300_000 });
}

type Message = Anthropic.MessageParam;

const TOOL = {
  name: PLAN_TOOL_NAME,
  description: 'Submit the DAG that carries out the request.',
  input_schema: DAG_JSON_SCHEMA as unknown as Anthropic.Tool.InputSchema,
};

/**
 * Asks for a DAG, retrying once when the answer does not match the schema. Each call's worst case (its input
 * tokens, counted by the API or bounded by bytes, plus max_tokens) is checked against what is left of
 * `maxCostUsd` before it is sent; each call is audited with its real usage.
 *
 * @throws {OrchError} plan_invalid, cost_cap_exceeded, claude_request_rejected, claude_not_processed
 */
export async function askForDag(o: AskOptions): Promise<AskResult> {
  const price = o.prices[o.model];
  if (!price) throw new OrchError('unknown_model', `model "${o.model}" has no price in the price table, so the planner's cost cannot be bounded; choose another with --model`);
  const client = claudeClient(o.anthropic);
  const system = `${PLANNER_SYSTEM}\n\n${o.context}`;
  const requestSha256 = crypto.createHash('sha256').update(o.request).digest('hex');
  const messages: Message[] = [{ role: 'user', content: o.request }];
  const cap = usdToNano(o.maxCostUsd);
  let spent = 0;
  let inputTokens = 0;
  let outputTokens = 0;
  let lastProblems: string[] = [];
  for (let attempt = 1; attempt <= PLAN_ATTEMPTS; attempt++) {
    const params = { model: o.model, system, messages, tools: [TOOL], tool_choice: { type: 'tool' as const, name: PLAN_TOOL_NAME } };
    let counted: number;
    try {
      counted = (await client.messages.countTokens(params)).input_tokens;
    } catch (err) {
      if (err instanceof Anthropic.APIError && (err.status === 401 || err.status === 403)) throw rejected(err);
      // No tokenizer yields more tokens than UTF-8 bytes: a safe bound when counting is unavailable.
      counted = Buffer.byteLength(JSON.stringify(params), 'utf8') + 64;
    }
    const worst = worstCaseCost(price, counted, o.maxTokens);
    if (spent + worst > cap) {
      const details = { purpose: 'plan', model: o.model, attempt, spentUsd: nanoToUsd(spent), projectedUsd: nanoToUsd(worst), capUsd: o.maxCostUsd, requestSha256 };
      o.audit({ action: 'cost_cap_exceeded', subject: 'plan', details });
      throw new OrchError(
        PlanCode.plannerCostCap,
        `the planner's call would pass its cost cap: spent $${nanoToUsd(spent).toFixed(6)} + this call's worst case $${nanoToUsd(worst).toFixed(6)} (${counted} input tokens, ${o.maxTokens} max_tokens of ${o.model}) > --max-cost-usd $${o.maxCostUsd}; raise --max-cost-usd or lower --max-tokens`,
      );
    }
    let answer: Anthropic.Message;
    try {
      answer = await client.messages.create({ ...params, max_tokens: o.maxTokens });
    } catch (err) {
      const unbilled = err instanceof Anthropic.APIError && typeof err.status === 'number';
      // A call that may have been processed (a timeout, a dropped connection) is counted at its worst case.
      o.audit({ action: 'claude_call', subject: 'plan', details: { purpose: 'plan', model: o.model, attempt, failed: true, costUsd: unbilled ? 0 : nanoToUsd(worst), requestSha256 } });
      throw rejected(err);
    }
    const inTok = answer.usage.input_tokens + (answer.usage.cache_creation_input_tokens ?? 0) + (answer.usage.cache_read_input_tokens ?? 0);
    const cost = actualCost(price, inTok, answer.usage.output_tokens);
    spent += cost;
    inputTokens += inTok;
    outputTokens += answer.usage.output_tokens;
    o.audit({
      action: 'claude_call',
      subject: 'plan',
      details: { purpose: 'plan', model: o.model, inputTokens: inTok, outputTokens: answer.usage.output_tokens, costUsd: nanoToUsd(cost), attempt, requestSha256 },
    });
    const use = answer.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use' && b.name === PLAN_TOOL_NAME);
    lastProblems = use ? schemaProblems(use.input) : [`the answer did not call the ${PLAN_TOOL_NAME} tool${answer.stop_reason === 'max_tokens' ? ' (it stopped at max_tokens; raise --max-tokens)' : ''}`];
    if (lastProblems.length === 0 && use) {
      return { source: use.input as Record<string, unknown>, attempts: attempt, costUsd: nanoToUsd(spent), inputTokens, outputTokens };
    }
    // Tell the model what was wrong, in the conversation it answered in, and ask once more.
    messages.push({ role: 'assistant', content: answer.content as Anthropic.ContentBlockParam[] });
    const feedback = `The DAG does not match the schema:\n${lastProblems.slice(0, 30).join('\n')}\nCall ${PLAN_TOOL_NAME} again with a corrected DAG.`;
    messages.push({
      role: 'user',
      content: use ? [{ type: 'tool_result', tool_use_id: use.id, is_error: true, content: feedback }] : feedback,
    });
  }
  throw new OrchError(
    PlanCode.invalid,
    `Claude's answer did not match the DAG schema after ${PLAN_ATTEMPTS} attempts: ${lastProblems.slice(0, 5).join('; ')}${lastProblems.length > 5 ? ` (and ${lastProblems.length - 5} more)` : ''}`,
  );
}

function rejected(err: unknown): OrchError {
  if (err instanceof Anthropic.APIError && typeof err.status === 'number') {
    const retryable = err.status === 429 || err.status === 529 || err.status >= 500;
    return new OrchError(retryable ? PlanCode.claudeUnavailable : PlanCode.claudeRejected, `Claude API answered ${err.status}: ${err.message.split('\n')[0]}${retryable ? ' (try again later)' : ''}`);
  }
  return new OrchError(PlanCode.claudeUnavailable, `Claude API unreachable: ${(err as Error).message?.split('\n')[0] ?? String(err)}`);
}

/** What the model is told about the tenant: its agents with tier and allowlist, the models, an earlier version. */
export function plannerContext(tenant: string, agents: readonly AgentRecord[], prices: PriceTable, registered?: { version: string; yaml: string }): string {
  const lines = [`Tenant: ${tenant}`, '', 'Agents this tenant may use (name, tier, allowlist):'];
  if (agents.length === 0) lines.push('  (none: a plan can only use claude and approval_gate nodes)');
  for (const a of agents) {
    lines.push(`- ${a.name} (tier ${a.tier})`);
    const allow = a.allowlist === null ? '(no allowlist recorded on this desktop)' : a.allowlist.length > 4000 ? `${a.allowlist.slice(0, 4000)}\n…(cut)` : a.allowlist;
    lines.push(...allow.split('\n').map((l) => `    ${l}`));
  }
  lines.push('', `Models: ${Object.keys(prices).join(', ')}`);
  if (registered) lines.push('', `A version of this DAG is registered (v${registered.version}); change it only as the request asks:`, registered.yaml);
  return lines.join('\n');
}

// ----------------------------------------------------------------------------------------------- review


export interface ReviewOptions {
  tenant: string;
  agents: readonly AgentRecord[];
  prices: PriceTable;
  checkAllowlist: AllowlistCheck;
}

export interface Review {
  /** The DAG as it would be registered: destructive marks and inserted gates applied. */
  source: DagSource;
  dag?: CompiledDag;
  notes: PlanNote[];
  refusals: PlanNote[];
  worstCaseUsd: number;
}

function freshId(taken: Set<string>, base: string): string {
  const stem = base.slice(0, MAX_NAME_LENGTH - 4);
  let id = stem;
  for (let n = 2; taken.has(id); n++) id = `${stem}-${n}`;
  taken.add(id);
  return id;
}

/** The upper bound the claude activity uses when tokens cannot be counted: bytes plus framing. */
function promptTokenBound(node: { prompt: string; system?: string }): number {
  const system = node.system ? `${SERVER_OUTPUT_SYSTEM_PROMPT}\n\n${node.system}` : SERVER_OUTPUT_SYSTEM_PROMPT;
  return Buffer.byteLength(system, 'utf8') + Buffer.byteLength(node.prompt, 'utf8') + 64;
}

/**
 * The worst case of one run: every Claude node's prompt as written (bounded by its bytes) and max_tokens of
 * output. Parents' output inserted at run time is not known here; the run reserves it against the cap itself.
 */
export function worstCaseUsd(dag: CompiledDag, prices: PriceTable): number {
  let nano = 0;
  for (const n of dag.nodes) {
    if (n.type !== 'claude') continue;
    const price = prices[n.model];
    if (price) nano += worstCaseCost(price, promptTokenBound(n), n.maxTokens);
  }
  return nanoToUsd(nano);
}

/**
 * Reviews a schema-valid DAG from the model: marks destructive commands, gates the ungated ones, compiles it
 * for the tenant, checks each command against its agent's allowlist and the worst case against the cap.
 * Pure except for `checkAllowlist`.
 */
export function reviewPlan(answer: Record<string, unknown>, o: ReviewOptions): Review {
  // A copy made with this realm's JSON (the compiler accepts only plain objects), never shared with the caller.
  const source = JSON.parse(JSON.stringify(answer)) as DagSource;
  const notes: PlanNote[] = [];
  const refusals: PlanNote[] = [];
  const nodes = source.nodes;
  const taken = new Set(nodes.map((n) => n.id));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const out: typeof nodes = [];
  const agentsByName = new Map(o.agents.map((a) => [a.name, a]));
  // Each command is put to its agent's policy once (a process per check), for the gate decision and the refusal.
  const verdicts = new Map<string, AllowlistVerdict>();
  const check = (agent: AgentRecord, argv: readonly string[], cwd: string | undefined): AllowlistVerdict => {
    const key = JSON.stringify([agent.name, argv, cwd ?? null]);
    let v = verdicts.get(key);
    if (!v) verdicts.set(key, (v = o.checkAllowlist(agent, argv, cwd)));
    return v;
  };
  for (const node of nodes) {
    if (node.type === 'command') {
      const pattern = destructivePattern(node.argv);
      if (pattern !== undefined && node.destructive !== true) {
        node.destructive = true;
        notes.push({ code: PlanCode.markedDestructive, node: node.id, message: `marked node "${node.id}" destructive: \`${node.argv.join(' ')}\` matches the destructive pattern "${pattern}" and the model had not marked it` });
      }
      const gated = (node.needs ?? []).some((p) => byId.get(p)?.type === 'approval_gate');
      // A command its agent runs only with a signed approval (not read-only, on a standard or infrastructure
      // agent) needs a gate as much as a destructive one: without it, the agent refuses it at run time.
      const agent = agentsByName.get(node.agent);
      const needsApproval = !gated && node.destructive !== true && agent !== undefined && !node.argv.some((a) => a.includes('${')) && check(agent, node.argv, node.cwd).approvalRequired === true;
      if ((node.destructive === true || needsApproval) && !gated) {
        const why = node.destructive === true ? 'destructive' : `agent ${node.agent} runs it only with a signed approval`;
        const gateId = freshId(taken, `approve-${node.id}`);
        const gate = {
          id: gateId,
          type: 'approval_gate' as const,
          message: `Approve node "${node.id}": run \`${node.argv.join(' ')}\` on agent ${node.agent} (${why}; gate inserted by orch plan)`,
          ...(node.needs && node.needs.length ? { needs: [...node.needs] } : {}),
        };
        out.push(gate);
        byId.set(gateId, gate);
        node.needs = [gateId];
        notes.push({ code: PlanCode.gateInserted, node: node.id, message: `inserted approval gate "${gateId}" in front of ${node.destructive === true ? 'destructive ' : ''}node "${node.id}" (${node.destructive === true ? 'the model left it ungated' : `not read-only: agent ${node.agent} runs it only with a signed approval`})` });
      }
    }
    out.push(node);
  }
  source.nodes = out;

  const knownAgents = o.agents.map((a) => a.name);
  const compiled = compileDag(source, { knownModels: Object.keys(o.prices), knownAgents });
  if (!compiled.ok) {
    for (const i of compiled.issues) {
      const hint = i.code === 'unknown_agent' ? ` (tenant "${o.tenant}" has ${knownAgents.length ? knownAgents.join(', ') : 'no agents'})` : '';
      refusals.push({ code: i.code, ...(i.node ? { node: i.node } : {}), message: `${i.message}${hint}` });
    }
    return { source, notes, refusals, worstCaseUsd: 0 };
  }
  const dag = compiled.dag;
  const agents = new Map(o.agents.map((a) => [a.name, a]));
  for (const n of dag.nodes) {
    if (n.type !== 'command') continue;
    const agent = agents.get(n.agent);
    if (!agent) {
      notes.push({ code: PlanCode.notChecked, node: n.id, message: `node "${n.id}": agent "${n.agent}" is chosen at run time, so its allowlist is checked by the agent then` });
      continue;
    }
    if (n.argv.some((a) => a.includes('${'))) {
      notes.push({ code: PlanCode.notChecked, node: n.id, message: `node "${n.id}": its argv uses params, so agent ${agent.name} checks it against its allowlist at run time` });
      continue;
    }
    const v = check(agent, n.argv, n.cwd);
    if (v.allowed === false) {
      refusals.push({ code: PlanCode.commandNotAllowed, node: n.id, message: `node "${n.id}": agent ${agent.name} (tier ${agent.tier}) would refuse \`${n.argv.join(' ')}\`: ${v.reason}` });
    } else if (v.allowed === undefined) {
      refusals.push({ code: PlanCode.allowlistUnchecked, node: n.id, message: `node "${n.id}": could not check \`${n.argv.join(' ')}\` against agent ${agent.name}'s allowlist: ${v.reason}` });
    }
  }
  const worst = worstCaseUsd(dag, o.prices);
  if (worst > dag.costCapUsd) {
    refusals.push({ code: PlanCode.overCap, message: `its worst case $${worst.toFixed(6)} (every Claude node at max_tokens) is over its cost cap $${dag.costCapUsd}; lower max_tokens or raise cost_cap_usd` });
  }
  return { source, dag, notes, refusals, worstCaseUsd: worst };
}

// -------------------------------------------------------------------------------------- diff and version

const TOP_ORDER = ['name', 'version', 'description', 'cost_cap_usd', 'params', 'nodes'];
const NODE_ORDER = ['id', 'type', 'description', 'needs', 'agent', 'argv', 'cwd', 'destructive', 'model', 'system', 'prompt', 'max_tokens', 'message', 'approvers', 'timeout_seconds'];

function ordered(obj: Record<string, unknown>, order: readonly string[]): Record<string, unknown> {
  const keys = Object.keys(obj).sort((x, y) => (order.includes(x) ? order.indexOf(x) : order.length) - (order.includes(y) ? order.indexOf(y) : order.length) || (x < y ? -1 : x > y ? 1 : 0));
  return Object.fromEntries(keys.map((k) => [k, obj[k]]));
}

/**
 * The DAG as YAML with its fields in one fixed order (name first, each node's id and type first), whatever order
 * the model or the stored canonical JSON has them in, so two versions diff by content only.
 */
export function toYaml(source: unknown): string {
  let value = source;
  if (typeof source === 'object' && source !== null && !Array.isArray(source)) {
    const top = ordered(source as Record<string, unknown>, TOP_ORDER);
    if (Array.isArray(top.nodes)) top.nodes = top.nodes.map((n: unknown) => (typeof n === 'object' && n !== null && !Array.isArray(n) ? ordered(n as Record<string, unknown>, NODE_ORDER) : n));
    value = top;
  }
  return stringify(value, { lineWidth: 0 });
}

/** A line diff (longest common subsequence): ' ' kept, '-' removed, '+' added. */
export function lineDiff(before: string, after: string): string[] {
  const a = before.split('\n');
  const b = after.split('\n');
  if (a.length * b.length > 4_000_000) return ['(too large to diff line by line)'];
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push(`  ${a[i]}`);
      i++;
      j++;
    } else if (j < b.length && (i >= a.length || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) out.push(`+ ${b[j++]}`);
    else out.push(`- ${a[i++]}`);
  }
  return out;
}

/** What a destructive node is, for comparing versions: what it runs, where, and every gate in front of it. */
function destructiveFingerprints(dag: CompiledDag): Map<string, string> {
  const byId = new Map<string, CompiledNode>(dag.nodes.map((n) => [n.id, n]));
  const out = new Map<string, string>();
  for (const n of dag.nodes) {
    if (n.type !== 'command' || !n.destructive) continue;
    const gates = n.needs
      .map((p) => byId.get(p))
      .filter((p): p is CompiledNode => p?.type === 'approval_gate')
      .map((g) => ({ ...g, needs: [...g.needs].sort() }));
    out.set(n.id, JSON.stringify({ node: { ...n, needs: [...n.needs].sort() }, gates }));
  }
  return out;
}

/** The destructive nodes added, removed or changed (with their gates) between two versions. */
export function destructiveChanges(before: CompiledDag | undefined, after: CompiledDag): string[] {
  const a = before ? destructiveFingerprints(before) : new Map<string, string>();
  const b = destructiveFingerprints(after);
  const changed = new Set<string>();
  for (const [id, fp] of b) if (a.get(id) !== fp) changed.add(id);
  for (const id of a.keys()) if (!b.has(id)) changed.add(id);
  return [...changed].sort();
}

/** The version a plan gets: 1 for a new name, else one past the registered version (or `<v>-2` for a non-number). */
export function nextVersion(registered: string | undefined): string | number {
  if (registered === undefined) return 1;
  if (/^\d{1,15}$/.test(registered)) return Number(registered) + 1;
  const m = /^(.*)-(\d{1,15})$/.exec(registered);
  return m ? `${m[1]}-${Number(m[2]) + 1}` : `${registered}-2`;
}
