import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { compileDag } from '../../workflows/dag/compile';
import { DESTRUCTIVE_CASES, NOT_DESTRUCTIVE_CASES } from '../../protocol/vectors/destructive-cases';
import { destructivePattern } from '../../protocol/destructive';
import { parseDagText } from '../../desktop-worker/dag-yaml';
import type { CompileIssue, CompileOptions, CompiledCommandNode } from '../../workflows/dag/types';
import {
  DEFAULT_COMMAND_TIMEOUT_SECONDS,
  DEFAULT_GATE_TIMEOUT_SECONDS,
  MAX_ARGV_ELEMENTS,
  MAX_ARGV_ELEMENT_LENGTH,
  MAX_PATH_LENGTH,
  MAX_SOURCE_BYTES,
  MAX_TEXT_LENGTH,
  MAX_YAML_ALIASES,
} from '../../workflows/dag/limits';

const MODELS = ['claude-sonnet-4-5', 'claude-haiku-4-5'];
const OPTS: CompileOptions = { knownModels: MODELS, knownAgents: ['web1', 'db1'] };

type Obj = Record<string, unknown>;
const dag = (nodes: unknown, extra: Obj = {}): Obj => ({ name: 'd', version: 1, cost_cap_usd: 5, nodes, ...extra });
const cmd = (id: string, extra: Obj = {}): Obj => ({ id, type: 'command', agent: 'web1', argv: ['uptime'], ...extra });
const gate = (id: string, extra: Obj = {}): Obj => ({ id, type: 'approval_gate', message: 'Go ahead?', ...extra });
const claude = (id: string, extra: Obj = {}): Obj => ({ id, type: 'claude', model: 'claude-sonnet-4-5', prompt: 'hi', max_tokens: 100, ...extra });
const without = (o: Obj, key: string): Obj => {
  const copy = { ...o };
  delete copy[key];
  return copy;
};

interface InvalidCase {
  name: string;
  source: unknown;
  code: string;
  node?: string;
  field: string;
  options?: CompileOptions;
}

const INVALID: InvalidCase[] = [
  { name: 'a string instead of a DAG', source: 'hello', code: 'not_an_object', field: '(root)' },
  { name: 'an array instead of a DAG', source: [1, 2], code: 'not_an_object', field: '(root)' },
  { name: 'missing name', source: without(dag([cmd('a')]), 'name'), code: 'missing_field', field: 'name' },
  { name: 'name with a space', source: dag([cmd('a')], { name: 'my dag' }), code: 'invalid_name', field: 'name' },
  { name: 'name of 101 characters', source: dag([cmd('a')], { name: 'n'.repeat(101) }), code: 'too_long', field: 'name' },
  { name: 'missing version', source: without(dag([cmd('a')]), 'version'), code: 'missing_field', field: 'version' },
  { name: 'version a boolean', source: dag([cmd('a')], { version: true }), code: 'wrong_type', field: 'version' },
  { name: 'missing cost cap', source: without(dag([cmd('a')]), 'cost_cap_usd'), code: 'missing_field', field: 'cost_cap_usd' },
  { name: 'cost cap zero', source: dag([cmd('a')], { cost_cap_usd: 0 }), code: 'out_of_range', field: 'cost_cap_usd' },
  { name: 'cost cap too large', source: dag([cmd('a')], { cost_cap_usd: 10_001 }), code: 'out_of_range', field: 'cost_cap_usd' },
  { name: 'cost cap as a string', source: dag([cmd('a')], { cost_cap_usd: '5' }), code: 'wrong_type', field: 'cost_cap_usd' },
  { name: 'unknown top-level key', source: dag([cmd('a')], { owner: 'me' }), code: 'unknown_field', field: 'owner' },
  { name: 'missing nodes', source: without(dag([]), 'nodes'), code: 'missing_field', field: 'nodes' },
  { name: 'empty nodes', source: dag([]), code: 'empty', field: 'nodes' },
  { name: 'nodes a mapping', source: dag({ a: cmd('a') }), code: 'wrong_type', field: 'nodes' },
  { name: 'node a string', source: dag(['a']), code: 'wrong_type', field: 'nodes[0]' },
  { name: 'node without id', source: dag([without(cmd('a'), 'id')]), code: 'missing_field', field: 'nodes[0].id' },
  { name: 'node id with a dot', source: dag([cmd('a.b')]), code: 'invalid_name', field: 'nodes[0].id' },
  { name: 'node id reserved', source: dag([cmd('constructor')]), code: 'invalid_name', field: 'nodes[0].id' },
  { name: 'duplicate id', source: dag([cmd('a'), cmd('a')]), code: 'duplicate_id', node: 'a', field: 'nodes[1].id' },
  { name: 'unknown node type', source: dag([{ id: 'a', type: 'shell' }]), code: 'unknown_node_type', node: 'a', field: 'nodes[0].type' },
  { name: 'unknown key on a node', source: dag([cmd('a', { command_line: 'ls' })]), code: 'unknown_field', node: 'a', field: 'nodes[0].command_line' },
  { name: 'needs a string', source: dag([cmd('a'), cmd('b', { needs: 'a' })]), code: 'wrong_type', node: 'b', field: 'nodes[1].needs' },
  { name: 'needs holding a number', source: dag([cmd('a'), cmd('b', { needs: [1] })]), code: 'wrong_type', node: 'b', field: 'nodes[1].needs[0]' },
  { name: 'unknown parent', source: dag([cmd('a', { needs: ['ghost'] })]), code: 'unknown_parent', node: 'a', field: 'nodes[0].needs[0]' },
  { name: 'self dependency', source: dag([cmd('a', { needs: ['a'] })]), code: 'self_dependency', node: 'a', field: 'nodes[0].needs[0]' },
  { name: 'parent listed twice', source: dag([cmd('a'), cmd('b', { needs: ['a', 'a'] })]), code: 'duplicate_need', node: 'b', field: 'nodes[1].needs[1]' },
  {
    name: 'three-node cycle',
    source: dag([cmd('a', { needs: ['c'] }), cmd('b', { needs: ['a'] }), cmd('c', { needs: ['b'] })]),
    code: 'cycle',
    node: 'a',
    field: 'nodes[0].needs',
  },
  { name: 'command without agent', source: dag([without(cmd('a'), 'agent')]), code: 'missing_field', node: 'a', field: 'nodes[0].agent' },
  { name: 'agent name of 51 characters', source: dag([cmd('a', { agent: 'w'.repeat(51) })]), code: 'too_long', node: 'a', field: 'nodes[0].agent' },
  { name: 'agent name with a slash', source: dag([cmd('a', { agent: 'web/1' })]), code: 'invalid_name', node: 'a', field: 'nodes[0].agent' },
  { name: 'agent not enrolled', source: dag([cmd('a', { agent: 'web9' })]), code: 'unknown_agent', node: 'a', field: 'nodes[0].agent' },
  { name: 'agent from an undeclared param', source: dag([cmd('a', { agent: '${params.host}' })]), code: 'unknown_param_reference', node: 'a', field: 'nodes[0].agent' },
  {
    name: 'agent from an integer param',
    source: dag([cmd('a', { agent: '${params.n}' })], { params: { n: { type: 'integer' } } }),
    code: 'wrong_type',
    node: 'a',
    field: 'nodes[0].agent',
  },
  { name: 'argv missing', source: dag([without(cmd('a'), 'argv')]), code: 'missing_field', node: 'a', field: 'nodes[0].argv' },
  { name: 'argv a string', source: dag([cmd('a', { argv: 'ls -la' })]), code: 'wrong_type', node: 'a', field: 'nodes[0].argv' },
  { name: 'argv empty', source: dag([cmd('a', { argv: [] })]), code: 'empty', node: 'a', field: 'nodes[0].argv' },
  { name: 'argv holding a number', source: dag([cmd('a', { argv: ['sleep', 5] })]), code: 'wrong_type', node: 'a', field: 'nodes[0].argv[1]' },
  {
    name: 'argv with too many elements',
    source: dag([cmd('a', { argv: ['echo', ...Array.from({ length: MAX_ARGV_ELEMENTS }, () => 'x')] })]),
    code: 'too_many',
    node: 'a',
    field: 'nodes[0].argv',
  },
  {
    name: 'argv element too long',
    source: dag([cmd('a', { argv: ['echo', 'x'.repeat(MAX_ARGV_ELEMENT_LENGTH + 1)] })]),
    code: 'too_long',
    node: 'a',
    field: 'nodes[0].argv[1]',
  },
  { name: 'argv element with NUL', source: dag([cmd('a', { argv: ['cat', 'a\u0000b'] })]), code: 'control_character', node: 'a', field: 'nodes[0].argv[1]' },
  { name: 'executable from a param', source: dag([cmd('a', { argv: ['${params.p}'] })], { params: { p: { type: 'string' } } }), code: 'templated_executable', node: 'a', field: 'nodes[0].argv[0]' },
  { name: 'node output in argv', source: dag([cmd('a'), cmd('b', { needs: ['a'], argv: ['echo', '${nodes.a.output}'] })]), code: 'reference_not_allowed', node: 'b', field: 'nodes[1].argv[1]' },
  { name: 'undeclared param in argv', source: dag([cmd('a', { argv: ['ping', '${params.host}'] })]), code: 'unknown_param_reference', node: 'a', field: 'nodes[0].argv[1]' },
  { name: 'command timeout zero', source: dag([cmd('a', { timeout_seconds: 0 })]), code: 'out_of_range', node: 'a', field: 'nodes[0].timeout_seconds' },
  { name: 'command timeout over a day', source: dag([cmd('a', { timeout_seconds: 86_401 })]), code: 'out_of_range', node: 'a', field: 'nodes[0].timeout_seconds' },
  { name: 'command timeout fractional', source: dag([cmd('a', { timeout_seconds: 1.5 })]), code: 'not_integer', node: 'a', field: 'nodes[0].timeout_seconds' },
  { name: 'destructive flag a string', source: dag([cmd('a', { destructive: 'yes' })]), code: 'wrong_type', node: 'a', field: 'nodes[0].destructive' },
  { name: 'relative cwd', source: dag([cmd('a', { cwd: 'srv/app' })]), code: 'invalid_path', node: 'a', field: 'nodes[0].cwd' },
  { name: 'cwd with ..', source: dag([cmd('a', { cwd: '/srv/../etc' })]), code: 'invalid_path', node: 'a', field: 'nodes[0].cwd' },
  { name: 'cwd too long', source: dag([cmd('a', { cwd: '/' + 'd'.repeat(MAX_PATH_LENGTH) })]), code: 'too_long', node: 'a', field: 'nodes[0].cwd' },
  { name: 'claude with an unknown model', source: dag([claude('a', { model: 'gpt-4' })]), code: 'unknown_model', node: 'a', field: 'nodes[0].model' },
  { name: 'claude without prompt', source: dag([without(claude('a'), 'prompt')]), code: 'missing_field', node: 'a', field: 'nodes[0].prompt' },
  { name: 'claude prompt too long', source: dag([claude('a', { prompt: 'p'.repeat(MAX_TEXT_LENGTH + 1) })]), code: 'too_long', node: 'a', field: 'nodes[0].prompt' },
  { name: 'claude without max_tokens', source: dag([without(claude('a'), 'max_tokens')]), code: 'missing_field', node: 'a', field: 'nodes[0].max_tokens' },
  { name: 'max_tokens zero', source: dag([claude('a', { max_tokens: 0 })]), code: 'out_of_range', node: 'a', field: 'nodes[0].max_tokens' },
  { name: 'max_tokens too big', source: dag([claude('a', { max_tokens: 128_001 })]), code: 'out_of_range', node: 'a', field: 'nodes[0].max_tokens' },
  { name: 'max_tokens a string', source: dag([claude('a', { max_tokens: '100' })]), code: 'wrong_type', node: 'a', field: 'nodes[0].max_tokens' },
  {
    name: 'prompt using a sibling output',
    source: dag([cmd('a'), cmd('b'), claude('c', { needs: ['a'], prompt: 'look: ${nodes.b.output}' })]),
    code: 'non_ancestor_reference',
    node: 'c',
    field: 'nodes[2].prompt',
  },
  { name: 'prompt using its own output', source: dag([claude('c', { prompt: '${nodes.c.output}' })]), code: 'non_ancestor_reference', node: 'c', field: 'nodes[0].prompt' },
  { name: 'prompt using a missing node', source: dag([claude('c', { prompt: '${nodes.ghost.output}' })]), code: 'unknown_node_reference', node: 'c', field: 'nodes[0].prompt' },
  { name: 'secret in a prompt', source: dag([claude('c', { prompt: 'key ${secrets.API_KEY}' })]), code: 'secret_in_prompt', node: 'c', field: 'nodes[0].prompt' },
  { name: 'secret in a system prompt', source: dag([claude('c', { system: 'key ${secrets.API_KEY}' })]), code: 'secret_in_prompt', node: 'c', field: 'nodes[0].system' },
  { name: 'unknown template form', source: dag([claude('c', { prompt: 'home ${env.HOME}' })]), code: 'bad_template', node: 'c', field: 'nodes[0].prompt' },
  { name: 'unterminated reference', source: dag([claude('c', { prompt: 'x ${params.a' })]), code: 'bad_template', node: 'c', field: 'nodes[0].prompt' },
  { name: 'gate without message', source: dag([without(gate('g'), 'message')]), code: 'missing_field', node: 'g', field: 'nodes[0].message' },
  { name: 'gate timeout over 30 days', source: dag([gate('g', { timeout_seconds: 31 * 86_400 })]), code: 'out_of_range', node: 'g', field: 'nodes[0].timeout_seconds' },
  { name: 'approvers not a list', source: dag([gate('g', { approvers: 'alice' })]), code: 'wrong_type', node: 'g', field: 'nodes[0].approvers' },
  { name: 'approver not a name', source: dag([gate('g', { approvers: ['alice', 'bob smith'] })]), code: 'invalid_name', node: 'g', field: 'nodes[0].approvers[1]' },
  { name: 'secret in a gate message', source: dag([gate('g', { message: 'pw ${secrets.PW}' })]), code: 'reference_not_allowed', node: 'g', field: 'nodes[0].message' },
  { name: 'destructive flag without gate', source: dag([cmd('a', { destructive: true })]), code: 'destructive_without_gate', node: 'a', field: 'nodes[0].needs' },
  {
    name: 'rm -rf marked not destructive, no gate',
    source: dag([cmd('a', { argv: ['rm', '-rf', '/var/tmp/x'], destructive: false })]),
    code: 'destructive_without_gate',
    node: 'a',
    field: 'nodes[0].needs',
  },
  {
    name: 'destructive behind a gate that is only a grandparent',
    source: dag([gate('g'), cmd('check', { needs: ['g'] }), cmd('wipe', { needs: ['check'], argv: ['mkfs.ext4', '/dev/sdb1'] })]),
    code: 'destructive_without_gate',
    node: 'wipe',
    field: 'nodes[2].needs',
  },
  { name: 'param of an unknown type', source: dag([cmd('a')], { params: { x: { type: 'date' } } }), code: 'bad_param_type', field: 'params.x.type' },
  { name: 'param spec not a mapping', source: dag([cmd('a')], { params: { x: 'string' } }), code: 'wrong_type', field: 'params.x' },
  { name: 'param default of the wrong type', source: dag([cmd('a')], { params: { x: { type: 'integer', default: 'ten' } } }), code: 'bad_default', field: 'params.x.default' },
  { name: 'param default outside enum', source: dag([cmd('a')], { params: { x: { type: 'string', enum: ['a', 'b'], default: 'c' } } }), code: 'bad_default', field: 'params.x.default' },
  { name: 'param with a bad regex', source: dag([cmd('a')], { params: { x: { type: 'string', pattern: '([a-z' } } }), code: 'invalid_regex', field: 'params.x.pattern' },
  { name: 'param enum of mixed types', source: dag([cmd('a')], { params: { x: { type: 'string', enum: ['a', 2] } } }), code: 'bad_enum', field: 'params.x.enum[1]' },
  { name: 'param min above max', source: dag([cmd('a')], { params: { x: { type: 'number', min: 5, max: 1 } } }), code: 'bad_param_spec', field: 'params.x.min' },
  { name: 'param with an unknown key', source: dag([cmd('a')], { params: { x: { type: 'string', regex: 'a+' } } }), code: 'unknown_field', field: 'params.x.regex' },
  { name: 'param named __proto__', source: JSON.parse('{"name":"d","version":1,"cost_cap_usd":5,"nodes":[{"id":"a","type":"command","agent":"web1","argv":["ls"]}],"params":{"__proto__":{"type":"string"}}}'), code: 'invalid_name', field: 'params.__proto__' },
];

describe('compileDag rejects invalid DAGs, each with its own code, node, field and message', () => {
  const messages: string[] = [];
  for (const c of INVALID) {
    test(c.name, () => {
      const r = compileDag(c.source, c.options ?? OPTS);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.issues.length, 1, `expected one issue, got ${JSON.stringify(r.issues, null, 1)}`);
      const issue = r.issues[0] as CompileIssue;
      assert.equal(issue.code, c.code);
      assert.equal(issue.node, c.node);
      assert.equal(issue.field, c.field);
      assert.ok(issue.message.length > 0 && !issue.message.includes('\n'), 'one line');
      assert.ok(issue.message.includes(issue.field), 'names the field');
      if (c.node !== undefined) assert.ok(issue.message.includes(`"${c.node}"`), 'names the node');
      messages.push(issue.message);
    });
  }
  test('there are at least 40 cases and no two share a message', () => {
    assert.ok(INVALID.length >= 40);
    assert.equal(messages.length, INVALID.length);
    assert.equal(new Set(messages).size, messages.length);
  });
});

describe('compileDag: reporting', () => {
  test('collects every issue, not just the first', () => {
    const r = compileDag(dag([cmd('a', { agent: 'web9' }), claude('b', { model: 'gpt-4' }), gate('c', { timeout_seconds: 0 })], { cost_cap_usd: -1 }), OPTS);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(
      r.issues.map((i) => [i.code, i.field]),
      [
        ['out_of_range', 'cost_cap_usd'],
        ['unknown_agent', 'nodes[0].agent'],
        ['unknown_model', 'nodes[1].model'],
        ['out_of_range', 'nodes[2].timeout_seconds'],
      ],
    );
  });

  test('a cycle names every node on it, and not the nodes merely behind it', () => {
    const r = compileDag(dag([cmd('a', { needs: ['c'] }), cmd('b', { needs: ['a'] }), cmd('c', { needs: ['b'] }), cmd('after', { needs: ['c'] })]), OPTS);
    assert.equal(r.ok, false);
    if (r.ok) return;
    const cycles = r.issues.filter((i) => i.code === 'cycle');
    assert.equal(cycles.length, 1);
    const msg = cycles[0]?.message ?? '';
    for (const id of ['a', 'b', 'c']) assert.ok(msg.includes(`"${id}"`), `names ${id}`);
    assert.ok(!msg.includes('"after"'));
  });

  test('two separate cycles give two cycle issues', () => {
    const r = compileDag(dag([cmd('a', { needs: ['b'] }), cmd('b', { needs: ['a'] }), cmd('x', { needs: ['y'] }), cmd('y', { needs: ['x'] })]), OPTS);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(
      r.issues.filter((i) => i.code === 'cycle').map((i) => i.node),
      ['a', 'x'],
    );
  });

  test('without knownAgents any well-formed agent name is accepted', () => {
    const r = compileDag(dag([cmd('a', { agent: 'anything-at-all' })]), { knownModels: MODELS });
    assert.equal(r.ok, true);
  });

  test('an empty knownModels refuses every model', () => {
    const r = compileDag(dag([claude('a')]), { knownModels: [] });
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.issues[0]?.code, 'unknown_model');
  });
});

describe('compileDag: valid DAGs', () => {
  test('orders nodes topologically, ties broken by source order, and fills defaults', () => {
    const source = dag(
      [
        cmd('report', { needs: ['left', 'right'] }),
        cmd('right', { needs: ['root'] }),
        cmd('left', { needs: ['root'] }),
        cmd('root'),
        cmd('lonely'),
      ],
      { version: 2, description: 'diamond' },
    );
    const r = compileDag(source, OPTS);
    assert.equal(r.ok, true);
    if (!r.ok) return;
    assert.deepEqual(
      r.dag.nodes.map((n) => n.id),
      ['root', 'right', 'left', 'report', 'lonely'],
    );
    assert.equal(r.dag.version, '2');
    assert.equal(r.dag.description, 'diamond');
    assert.equal(r.dag.costCapUsd, 5);
    assert.deepEqual(r.dag.params, {});
    const root = r.dag.nodes.find((n) => n.id === 'root') as CompiledCommandNode;
    assert.deepEqual(root, { id: 'root', needs: [], type: 'command', agent: 'web1', argv: ['uptime'], timeoutSeconds: DEFAULT_COMMAND_TIMEOUT_SECONDS, destructive: false });
  });

  test('compiles every node type with its fields in camelCase', () => {
    const source = {
      name: 'cleanup',
      version: '2024-06-01',
      cost_cap_usd: 1.5,
      params: {
        host: { type: 'string', pattern: '[a-z0-9-]+', max_length: 63 },
        days: { type: 'integer', default: 7, min: 1, max: 365 },
      },
      nodes: [
        { id: 'check', type: 'command', agent: '${params.host}', argv: ['df', '-h'], timeout_seconds: 30, cwd: '/srv' },
        { id: 'think', type: 'claude', needs: ['check'], model: 'claude-haiku-4-5', prompt: 'Disk: ${nodes.check.output}', system: 'Be brief.', max_tokens: 400 },
        { id: 'ok', type: 'approval_gate', needs: ['think'], message: 'Delete logs older than ${params.days} days? ${nodes.think.output}', approvers: ['alice'], timeout_seconds: 3600 },
        { id: 'clean', type: 'command', needs: ['ok'], agent: 'web1', argv: ['find', '/var/log/app', '-mtime', '+${params.days}', '-delete'] },
      ],
    };
    const r = compileDag(source, OPTS);
    assert.equal(r.ok, true, JSON.stringify(r));
    if (!r.ok) return;
    assert.deepEqual(r.dag, {
      name: 'cleanup',
      version: '2024-06-01',
      costCapUsd: 1.5,
      // Params compile to themselves.
      params: source.params,
      nodes: [
        { id: 'check', needs: [], type: 'command', agent: '${params.host}', argv: ['df', '-h'], timeoutSeconds: 30, destructive: false, cwd: '/srv' },
        { id: 'think', needs: ['check'], type: 'claude', model: 'claude-haiku-4-5', prompt: 'Disk: ${nodes.check.output}', system: 'Be brief.', maxTokens: 400 },
        { id: 'ok', needs: ['think'], type: 'approval_gate', message: 'Delete logs older than ${params.days} days? ${nodes.think.output}', timeoutSeconds: 3600, approvers: ['alice'] },
        {
          id: 'clean',
          needs: ['ok'],
          type: 'command',
          agent: 'web1',
          argv: ['find', '/var/log/app', '-mtime', '+${params.days}', '-delete'],
          timeoutSeconds: DEFAULT_COMMAND_TIMEOUT_SECONDS,
          destructive: true,
          destructiveReason: 'find-delete',
        },
      ],
    });
  });

  test('gate defaults to 24 hours; null fields count as absent', () => {
    const r = compileDag(dag([gate('g', { needs: null, approvers: null })], { description: null }), OPTS);
    assert.equal(r.ok, true);
    if (!r.ok) return;
    assert.deepEqual(r.dag.nodes[0], { id: 'g', needs: [], type: 'approval_gate', message: 'Go ahead?', timeoutSeconds: DEFAULT_GATE_TIMEOUT_SECONDS });
  });

  test('a destructive flag behind a direct gate compiles with reason "flag"', () => {
    const r = compileDag(dag([gate('g'), cmd('a', { needs: ['g'], destructive: true })]), OPTS);
    assert.equal(r.ok, true);
    if (!r.ok) return;
    const a = r.dag.nodes[1] as CompiledCommandNode;
    assert.equal(a.destructive, true);
    assert.equal(a.destructiveReason, 'flag');
  });

  test('a pattern match is destructive even when the flag says false', () => {
    const r = compileDag(dag([gate('g'), cmd('a', { needs: ['g'], destructive: false, argv: ['psql', '-c', 'DROP TABLE users'] })]), OPTS);
    assert.equal(r.ok, true);
    if (!r.ok) return;
    const a = r.dag.nodes[1] as CompiledCommandNode;
    assert.equal(a.destructive, true);
    assert.equal(a.destructiveReason, 'sql-drop-table');
  });

  test('the message of destructive_without_gate names the matched pattern', () => {
    const r = compileDag(dag([cmd('a', { argv: ['sh', '-c', 'dd if=/dev/zero of=/dev/sda'] })]), OPTS);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.issues[0]?.code, 'destructive_without_gate');
    assert.ok(r.issues[0]?.message.includes('dd-of'));
  });

  test('secrets are allowed in command argv; $${ escapes are not references', () => {
    const r = compileDag(dag([cmd('a', { argv: ['curl', '-H', 'Authorization: ${secrets.TOKEN}', 'https://x/$${not_a_ref}'] })]), OPTS);
    assert.equal(r.ok, true, JSON.stringify(r));
  });

  test('compiling is deterministic and does not modify its input', () => {
    const source = dag([cmd('b', { needs: ['a'] }), cmd('a'), gate('g', { needs: ['b'] })], { params: { p: { type: 'string', enum: ['x'] } } });
    const frozen = deepFreeze(structuredClone(source));
    const one = compileDag(frozen, OPTS);
    const two = compileDag(frozen, OPTS);
    assert.deepEqual(one, two);
    assert.deepEqual(frozen, source);
    assert.deepEqual(JSON.parse(JSON.stringify(one)), one, 'plain JSON, safe in Temporal payloads');
  });
});

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

describe('destructivePattern', () => {
  for (const [argv, name] of DESTRUCTIVE_CASES) {
    test(`${JSON.stringify(argv)} is ${name}`, () => assert.equal(destructivePattern(argv), name));
  }

  for (const argv of NOT_DESTRUCTIVE_CASES) {
    test(`${JSON.stringify(argv)} is not destructive`, () => assert.equal(destructivePattern(argv), undefined));
  }

  test('deeply nested shells stop at the depth limit instead of recursing forever', () => {
    let script = 'rm -rf /';
    for (let i = 0; i < 12; i++) script = `sh -c ${JSON.stringify(script)}`;
    // Beyond the depth limit nothing is claimed either way; what matters is that it returns.
    const r = destructivePattern(['sh', '-c', script]);
    assert.ok(r === undefined || r === 'rm-recursive-or-force' || r === 'too-complex-to-check');
    assert.equal(destructivePattern(['sh', '-c', 'sh -c "sh -c \\"rm -rf /\\""']), 'rm-recursive-or-force');
  });

  test('input too costly to examine counts as destructive, never as safe', () => {
    // Interpreter code is read as a script and each quoted string in it again: this is far over the budget.
    const code = '"a b" '.repeat(800);
    const started = performance.now();
    assert.equal(destructivePattern(['python3', '-c', ...Array.from({ length: 255 }, () => code)]), 'too-complex-to-check');
    assert.ok(performance.now() - started < 5000, 'returns in bounded time');
  });

  test('many wrappers in a row stay fast (memoised)', () => {
    const argv = [...Array.from({ length: 250 }, () => 'sudo'), 'rm', '-rf', '/'];
    assert.equal(destructivePattern(argv), 'rm-recursive-or-force');
    assert.equal(destructivePattern(Array.from({ length: 256 }, () => 'sudo')), undefined);
  });
});

describe('parseDagText', () => {
  const codes = (r: ReturnType<typeof parseDagText>): string[] => (r.ok ? [] : r.issues.map((i) => i.code));

  test('reads YAML 1.2 core schema, and the result compiles', () => {
    const text = [
      'name: disk-check',
      'version: 3',
      'cost_cap_usd: 0.5',
      'nodes:',
      '  - id: df',
      '    type: command',
      '    agent: web1',
      '    argv: [df, -h, yes, on, 012]',
    ].join('\n');
    const r = parseDagText(text, 'disk.yaml');
    assert.equal(r.ok, true);
    if (!r.ok) return;
    const c = compileDag(r.source, OPTS);
    assert.equal(c.ok, false, 'a YAML 1.1 reader would turn yes/on into booleans; 1.2 keeps strings, 012 is a number');
    if (c.ok) return;
    assert.deepEqual(
      c.issues.map((i) => [i.code, i.field]),
      [['wrong_type', 'nodes[0].argv[4]']],
    );
  });

  test('duplicate keys are refused with line and column', () => {
    const r = parseDagText('name: a\nname: b\n', 'd.yaml');
    assert.deepEqual(codes(r), ['duplicate_key']);
    if (!r.ok) {
      assert.equal(r.issues[0]?.line, 2);
      assert.equal(r.issues[0]?.column, 1);
      assert.equal(r.issues[0]?.field, '(file)');
      assert.ok(r.issues[0]?.message.startsWith('d.yaml line 2, column 1: '));
    }
  });

  test('syntax errors carry line and column', () => {
    const r = parseDagText('name: a\nnodes: [\n  - x\n', 'd.yaml');
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.ok(r.issues.every((i) => i.code === 'yaml_syntax'));
      assert.equal(typeof r.issues[0]?.line, 'number');
      assert.equal(typeof r.issues[0]?.column, 'number');
    }
  });

  test('several documents, custom tags and empty files are refused', () => {
    assert.deepEqual(codes(parseDagText('a: 1\n---\nb: 2\n', 'd.yaml')), ['multiple_documents']);
    assert.deepEqual(codes(parseDagText('a: !shell "rm -rf /"\n', 'd.yaml')), ['yaml_unsupported_tag']);
    assert.deepEqual(codes(parseDagText('# only a comment\n', 'd.yaml')), ['empty_document']);
    assert.deepEqual(codes(parseDagText('', 'd.json')), ['empty_document']);
  });

  test('alias bombs and recursive aliases are refused', () => {
    const lol = ['a: &a [x, x, x, x]', 'b: &b [*a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b]', 'd: &d [*c, *c, *c, *c]', 'e: [*d, *d, *d, *d]'].join('\n');
    assert.deepEqual(codes(parseDagText(lol, 'd.yaml')), ['yaml_alias_limit']);
    const many = ['x: &x 1', ...Array.from({ length: MAX_YAML_ALIASES + 1 }, (_, k) => `k${k}: *x`)].join('\n');
    assert.deepEqual(codes(parseDagText(many, 'd.yaml')), ['yaml_alias_limit']);
    assert.deepEqual(codes(parseDagText('a: &r [1, *r]\n', 'd.yaml')), ['yaml_recursive_alias']);
    const few = parseDagText('x: &x [1]\ny: *x\n', 'd.yaml');
    assert.deepEqual(few, { ok: true, source: { x: [1], y: [1] } });
  });

  test('files over 1 MiB are refused, counting UTF-8 bytes', () => {
    const big = 'é'.repeat(MAX_SOURCE_BYTES / 2 + 1);
    assert.ok(big.length < MAX_SOURCE_BYTES);
    assert.deepEqual(codes(parseDagText(`a: "${big}"`, 'd.yaml')), ['file_too_large']);
    assert.deepEqual(codes(parseDagText(`{"a": "${'x'.repeat(MAX_SOURCE_BYTES)}"}`, 'd.json')), ['file_too_large']);
  });

  test('JSON files: syntax errors and duplicate keys are refused', () => {
    assert.deepEqual(parseDagText('{"a": [1, 2]}', 'D.JSON'), { ok: true, source: { a: [1, 2] } });
    assert.deepEqual(codes(parseDagText('{"a": 1,\n "b": }', 'd.json')), ['json_syntax']);
    const unclosed = parseDagText('{"a": 1,\n "b": [1, 2}', 'd.json');
    assert.deepEqual(codes(unclosed), ['json_syntax']);
    if (!unclosed.ok) assert.equal(unclosed.issues[0]?.line, 2);
    assert.deepEqual(codes(parseDagText('{"a": 1, "a": 2}', 'd.json')), ['duplicate_key']);
  });
});
