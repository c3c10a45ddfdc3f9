/**
 * The per-node compilers: a node's id, type, needs and description (compileNode), then the fields of each node
 * type: command (agent, argv, timeout, cwd, and the destructive check that requires an approval_gate parent),
 * claude (model, prompt, system, max_tokens) and approval_gate (message, timeout, approvers, four eyes). Pure code.
 */

import type { CompiledClaudeNode, CompiledCommandNode, CompiledGateNode, CompiledNode, ParamSpec } from './types';
import * as L from './limits';
import { destructivePattern } from '../../protocol/destructive';
import { parseTemplate } from './template';
import {
  CompileCode,
  checkArgvAuditSize,
  checkInteger,
  checkName,
  checkString,
  checkTemplate,
  checkText,
  checkUnknownKeys,
  clip,
  describe,
  get,
  hasOwn,
  isPlainObject,
  type IssueList,
  type Subject,
  type TemplateRules,
  type TemplateScope,
} from './checks';
import type { GraphNode } from './graph';

const COMMON_NODE_KEYS = ['id', 'type', 'needs', 'description'];
const NODE_KEYS: Record<string, ReadonlySet<string>> = {
  command: new Set([...COMMON_NODE_KEYS, 'agent', 'argv', 'timeout_seconds', 'destructive', 'cwd']),
  claude: new Set([...COMMON_NODE_KEYS, 'model', 'prompt', 'system', 'max_tokens']),
  approval_gate: new Set([...COMMON_NODE_KEYS, 'message', 'timeout_seconds', 'approvers', 'min_approvals', 'distinct_from_starter']),
};
const NODE_TYPES = Object.keys(NODE_KEYS);
const AGENT_PARAM_REF = /^\$\{params\.([^}]*)\}$/;

export interface NodeContext {
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

export function compileNode(issues: IssueList, raw: unknown, i: number, ctx: NodeContext): CompiledNode | undefined {
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

  const typeRaw = checkString(issues, subject, `${at}.type`, get(raw, 'type'), `type is missing; use one of ${NODE_TYPES.join(', ')}`, 'type must be a string');
  let type: string | undefined;
  if (typeRaw !== undefined && !hasOwn(NODE_KEYS, typeRaw)) {
    issues.add(CompileCode.unknownNodeType, subject, `${at}.type`, `type ${JSON.stringify(clip(typeRaw))} is not a node type; use one of ${NODE_TYPES.join(', ')}`);
  } else if (typeRaw !== undefined) {
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

function compileCommand(issues: IssueList, subject: Subject, at: string, raw: Record<string, unknown>, scope: TemplateScope, ctx: NodeContext): CompiledCommandNode | undefined {
  const before = issues.items.length;

  // agent: a literal name, or exactly one ${params.X} the run supplies.
  const agentField = `${at}.agent`;
  const agentRaw = checkString(issues, subject, agentField, get(raw, 'agent'), 'agent is missing; name the enrolled agent that runs this command', 'agent must be an agent name string');
  let agent: string | undefined;
  if (agentRaw !== undefined) {
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

  const cwdField = `${at}.cwd`;
  const cwdRaw = checkString(issues, subject, cwdField, get(raw, 'cwd'), undefined, 'cwd must be a path string');
  let cwd: string | undefined;
  if (cwdRaw !== undefined) {
    if (cwdRaw.length > L.MAX_PATH_LENGTH) {
      issues.add(CompileCode.tooLong, subject, cwdField, `cwd is ${cwdRaw.length} characters, over the limit of ${L.MAX_PATH_LENGTH}`);
    } else if (/[\u0000-\u001F\u007F]/.test(cwdRaw)) {
      issues.add(CompileCode.controlCharacter, subject, cwdField, 'cwd contains a control character; remove it');
    } else if (cwdRaw.includes('${')) {
      issues.add(CompileCode.referenceNotAllowed, subject, cwdField, 'cwd is a literal path and cannot use ${...}; write the directory out');
    } else if (!cwdRaw.startsWith('/')) {
      issues.add(CompileCode.invalidPath, subject, cwdField, `cwd ${JSON.stringify(clip(cwdRaw))} is not absolute; start it with /`);
    } else if (cwdRaw.split('/').includes('..')) {
      issues.add(CompileCode.invalidPath, subject, cwdField, `cwd ${JSON.stringify(clip(cwdRaw))} contains a ".." segment; write the directory without ..`);
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

function compileClaude(issues: IssueList, subject: Subject, at: string, raw: Record<string, unknown>, scope: TemplateScope, ctx: NodeContext): CompiledClaudeNode | undefined {
  const before = issues.items.length;
  const modelField = `${at}.model`;
  const modelMissing = `model is missing; use one of ${[...ctx.knownModels].join(', ') || 'the models in the price table'}`;
  const modelRaw = checkString(issues, subject, modelField, get(raw, 'model'), modelMissing, 'model must be a model name string');
  let model: string | undefined;
  if (modelRaw !== undefined && !ctx.knownModels.has(modelRaw)) {
    issues.add(
      CompileCode.unknownModel,
      subject,
      modelField,
      `model ${JSON.stringify(clip(modelRaw))} is not in the price table, so its cost cannot be bounded; use one of ${[...ctx.knownModels].join(', ') || '(none configured)'}`,
    );
  } else if (modelRaw !== undefined) model = modelRaw;

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
