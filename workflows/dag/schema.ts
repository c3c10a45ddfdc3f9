/**
 * The DAG file format (types.ts, `DagSource`) as a JSON Schema (draft 2020-12 subset), written once here. Pure
 * data: the chat-to-DAG planner (desktop-worker/planner.ts) gives it to Claude as the input schema of its
 * `submit_dag` tool and checks the model's answer against it before compiling. The compiler (compile.ts) stays
 * the authority on everything a schema cannot say (cycles, templates, destructive commands without a gate, the
 * tenant's agents, known models); test/unit/planner.test.ts checks that every field named here compiles.
 *
 * Only these keywords are used: type, properties, required, additionalProperties, items, minItems, maxItems,
 * enum, minimum, maximum, minLength, maxLength, pattern, oneOf (with a `type` const discriminator), description.
 */
import * as L from './limits';

const NAME = '^[A-Za-z0-9_-]+$';

const commonNode = {
  id: { type: 'string', pattern: NAME, minLength: 1, maxLength: L.MAX_NAME_LENGTH, description: 'Unique node id.' },
  needs: {
    type: 'array',
    items: { type: 'string', pattern: NAME },
    maxItems: L.MAX_NEEDS_PER_NODE,
    description: 'Ids of the nodes that must succeed before this one starts.',
  },
  description: { type: 'string', maxLength: L.MAX_TEXT_LENGTH },
} as const;

const commandNode = {
  type: 'object',
  description: 'Runs one command (argv, never through a shell) on an enrolled agent.',
  properties: {
    ...commonNode,
    type: { type: 'string', enum: ['command'] },
    agent: { type: 'string', minLength: 1, maxLength: L.MAX_AGENT_NAME_LENGTH, description: 'Name of one of the tenant\'s agents.' },
    argv: {
      type: 'array',
      items: { type: 'string', maxLength: L.MAX_ARGV_ELEMENT_LENGTH },
      minItems: 1,
      maxItems: L.MAX_ARGV_ELEMENTS,
      description: 'Executable and arguments; no shell. Elements may use ${params.NAME}.',
    },
    timeout_seconds: { type: 'integer', minimum: L.MIN_COMMAND_TIMEOUT_SECONDS, maximum: L.MAX_COMMAND_TIMEOUT_SECONDS },
    destructive: { type: 'boolean', description: 'true when the command changes or deletes anything; it then needs an approval_gate as a direct parent.' },
    cwd: { type: 'string', maxLength: L.MAX_PATH_LENGTH, description: 'Absolute working directory on the server.' },
  },
  required: ['id', 'type', 'agent', 'argv'],
  additionalProperties: false,
} as const;

const claudeNode = {
  type: 'object',
  description: 'Asks Claude; ${nodes.ID.output} inserts a parent command\'s output.',
  properties: {
    ...commonNode,
    type: { type: 'string', enum: ['claude'] },
    model: { type: 'string', minLength: 1, maxLength: L.MAX_NAME_LENGTH },
    prompt: { type: 'string', minLength: 1, maxLength: L.MAX_TEXT_LENGTH },
    system: { type: 'string', maxLength: L.MAX_TEXT_LENGTH },
    max_tokens: { type: 'integer', minimum: 1, maximum: L.MAX_MAX_TOKENS },
  },
  required: ['id', 'type', 'model', 'prompt', 'max_tokens'],
  additionalProperties: false,
} as const;

const gateNode = {
  type: 'object',
  description: 'Waits for a person to approve before the nodes that need it run.',
  properties: {
    ...commonNode,
    type: { type: 'string', enum: ['approval_gate'] },
    message: { type: 'string', minLength: 1, maxLength: L.MAX_TEXT_LENGTH },
    timeout_seconds: { type: 'integer', minimum: L.MIN_GATE_TIMEOUT_SECONDS, maximum: L.MAX_GATE_TIMEOUT_SECONDS },
    approvers: { type: 'array', items: { type: 'string', minLength: 1, maxLength: L.MAX_NAME_LENGTH }, minItems: 1, maxItems: L.MAX_APPROVERS },
    min_approvals: { type: 'integer', minimum: 1, maximum: L.MAX_APPROVERS, description: 'distinct approvers whose signed approvals open the gate; needs approvers.' },
    distinct_from_starter: { type: 'boolean', description: "refuse the run's starter as an approver (four eyes); default true for gates releasing destructive commands; needs approvers." },
  },
  required: ['id', 'type', 'message'],
  additionalProperties: false,
} as const;

const paramSpec = {
  type: 'object',
  properties: {
    type: { type: 'string', enum: ['string', 'number', 'integer', 'boolean'] },
    description: { type: 'string', maxLength: L.MAX_TEXT_LENGTH },
    required: { type: 'boolean' },
    default: { type: ['string', 'number', 'boolean'] },
    enum: { type: 'array', items: { type: ['string', 'number', 'boolean'] }, maxItems: L.MAX_ENUM_VALUES },
    pattern: { type: 'string', maxLength: L.MAX_PATTERN_LENGTH },
    max_length: { type: 'integer', minimum: 1 },
    min: { type: 'number' },
    max: { type: 'number' },
  },
  required: ['type'],
  additionalProperties: false,
} as const;

/** The JSON Schema of a DAG source (`DagSource`). */
export const DAG_JSON_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', pattern: NAME, minLength: 1, maxLength: L.MAX_NAME_LENGTH, description: 'DAG name (a Temporal workflow type).' },
    version: { type: ['string', 'integer'], description: 'Version; the planner sets it.' },
    description: { type: 'string', maxLength: L.MAX_TEXT_LENGTH },
    cost_cap_usd: { type: 'number', minimum: 0, maximum: L.MAX_COST_CAP_USD, description: 'Most a run may spend on Claude, in US dollars.' },
    params: { type: 'object', additionalProperties: paramSpec, description: 'Run parameters by name.' },
    nodes: { type: 'array', items: { oneOf: [commandNode, claudeNode, gateNode] }, minItems: 1, maxItems: L.MAX_NODES },
  },
  required: ['name', 'version', 'cost_cap_usd', 'nodes'],
  additionalProperties: false,
} as const;

/** The node schemas by node `type`, for the planner's validator (oneOf is told apart by `type`). */
export const DAG_NODE_SCHEMAS = { command: commandNode, claude: claudeNode, approval_gate: gateNode } as const;
