/**
 * The planner's pure parts: the DAG JSON Schema agrees with the compiler, answers are checked against it, and the
 * review marks, gates, refuses and prices a plan; versions are compared by their destructive nodes and gates.
 * (The Claude call, the audit rows, the Go agent's allowlist check and the CLI: test/integration/planner.test.ts.)
 */
import { describe, test } from '@jest/globals';
import { agentRecord } from '../support/agent-record';
import assert from '../support/assert';
import { compileDag } from '../../workflows/dag/compile';
import { DAG_JSON_SCHEMA, DAG_NODE_SCHEMAS } from '../../workflows/dag/schema';
import { DEFAULT_PRICES } from '../../workflows/prices';
import type { CompiledDag } from '../../workflows/dag/types';
import { PlanCode, destructiveChanges, lineDiff, nextVersion, reviewPlan, schemaProblems, toYaml, worstCaseUsd, type AllowlistCheck } from '../../desktop-worker/planner';

type Obj = Record<string, unknown>;
const MODELS = Object.keys(DEFAULT_PRICES);
const agent = agentRecord;
const AGENTS = [agent('web-1'), agent('db-1', 'infrastructure')];
const allowAll: AllowlistCheck = () => ({ allowed: true, reason: 'would run' });
const review = (answer: Obj, check: AllowlistCheck = allowAll) => reviewPlan(answer, { tenant: 'acme', agents: AGENTS, prices: DEFAULT_PRICES, checkAllowlist: check });
const plan = (nodes: Obj[], extra: Obj = {}): Obj => ({ name: 'p', version: 1, cost_cap_usd: 1, nodes, ...extra });
const cmd = (id: string, argv: string[], extra: Obj = {}): Obj => ({ id, type: 'command', agent: 'web-1', argv, ...extra });
const gate = (id: string, extra: Obj = {}): Obj => ({ id, type: 'approval_gate', message: 'ok?', ...extra });

function compiled(source: Obj): CompiledDag {
  const r = compileDag(source, { knownModels: MODELS });
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  return r.dag;
}

describe('the DAG JSON Schema', () => {
  test('every field it names is one the compiler accepts, for every node type and param spec', () => {
    const everything = {
      name: 'all-fields',
      version: 1,
      description: 'd',
      cost_cap_usd: 1,
      params: { svc: { type: 'string', description: 's', required: false, default: 'nginx', enum: ['nginx', 'php'], pattern: '[a-z]+', max_length: 10 }, n: { type: 'integer', min: 1, max: 5, default: 2 } },
      nodes: [
        { id: 'look', type: 'command', agent: 'web-1', argv: ['uptime'], needs: [], description: 'x', timeout_seconds: 10, destructive: false, cwd: '/tmp' },
        { id: 'think', type: 'claude', needs: ['look'], description: 'y', model: 'claude-haiku-4-5', prompt: '${nodes.look.output}', system: 's', max_tokens: 10 },
        { id: 'ok', type: 'approval_gate', needs: ['think'], description: 'z', message: 'go?', timeout_seconds: 60, approvers: ['alice'], min_approvals: 1, distinct_from_starter: true },
      ],
    };
    assert.deepEqual(schemaProblems(everything), []);
    const r = compileDag(everything, { knownModels: MODELS, knownAgents: ['web-1'] });
    assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
    // The schema lists exactly these fields: one it names that this DAG leaves out would go unchecked here.
    const used = (o: object) => Object.keys(o).sort();
    for (const [i, kind] of (['command', 'claude', 'approval_gate'] as const).entries()) {
      assert.deepEqual(used(DAG_NODE_SCHEMAS[kind].properties), used(everything.nodes[i]!), kind);
    }
    assert.deepEqual(used(DAG_JSON_SCHEMA.properties), used(everything));
    const paramFields = new Set([...Object.keys(everything.params.svc), ...Object.keys(everything.params.n)]);
    assert.deepEqual(used(DAG_JSON_SCHEMA.properties.params.additionalProperties.properties), [...paramFields].sort());
  });

  test('an answer off the schema gets one problem per fault, each naming its path', () => {
    assert.deepEqual(schemaProblems({ name: 'x' }), ['version: required', 'cost_cap_usd: required', 'nodes: required']);
    const bad = plan([cmd('a', [], { shell: true, destructive: 'yes' }), { id: 'b', type: 'script' }, gate('c', { timeout_seconds: 1.5 })], { cost_cap_usd: '1' });
    const problems = schemaProblems(bad);
    for (const expected of [
      /^cost_cap_usd: must be number/,
      /^nodes\[0\]\.argv: needs at least 1 item/,
      /^nodes\[0\]\.shell: unknown field/,
      /^nodes\[0\]\.destructive: must be boolean/,
      /^nodes\[1\]\.type: must be one of command, claude, approval_gate/,
      /^nodes\[2\]\.timeout_seconds: must be integer/,
    ]) {
      assert.ok(problems.some((p) => expected.test(p)), `${expected} in ${problems.join(' | ')}`);
    }
    assert.equal(problems.length, 6, problems.join(' | '));
    assert.deepEqual(schemaProblems('not a dag'), ['(top): must be object, got "not a dag"']);
  });
});

describe('reviewing a plan', () => {
  test('a destructive command the model left ungated gets a gate in front of it, with the same parents', () => {
    const r = review(plan([cmd('check', ['nginx', '-t']), cmd('restart', ['systemctl', 'restart', 'nginx'], { needs: ['check'], destructive: true })]));
    assert.deepEqual(r.refusals, []);
    assert.deepEqual(r.notes.map((n) => `${n.code}:${n.node}`), [`${PlanCode.gateInserted}:restart`]);
    const ids = r.source.nodes.map((n) => `${n.id}<${(n.needs ?? []).join(',')}`);
    assert.deepEqual(ids, ['check<', 'approve-restart<check', 'restart<approve-restart']);
    assert.ok(r.dag);
  });

  test('a command that deletes without destructive: true is marked and gated; an already gated one is left alone', () => {
    const r = review(plan([cmd('wipe', ['rm', '-rf', '/srv/app/cache']), gate('ok'), cmd('wipe2', ['rm', '-rf', '/srv/app/tmp'], { needs: ['ok'] })]));
    assert.deepEqual(r.refusals, []);
    assert.deepEqual(r.notes.map((n) => `${n.code}:${n.node}`), [`${PlanCode.markedDestructive}:wipe`, `${PlanCode.gateInserted}:wipe`, `${PlanCode.markedDestructive}:wipe2`]);
    const wipe = r.dag!.nodes.find((n) => n.id === 'wipe');
    assert.ok(wipe?.type === 'command' && wipe.destructive && wipe.needs[0] === 'approve-wipe');
    // The inserted id never collides with one the model chose.
    const taken = review(plan([gate('approve-x'), cmd('x', ['rm', '-rf', '/srv/x'])]));
    assert.ok(taken.source.nodes.some((n) => n.id === 'approve-x-2'));
  });

  test('a command its agent runs only with a signed approval (not read-only) gets a gate too; a read-only one does not', () => {
    const seen: string[] = [];
    const check: AllowlistCheck = (a, argv) => {
      seen.push(`${a.name}:${argv.join(' ')}`);
      return { allowed: true, reason: '', approvalRequired: argv[0] === 'touch' };
    };
    const r = review(plan([cmd('look', ['uptime']), cmd('mark', ['touch', '/srv/app/maintenance'], { needs: ['look'] })]), check);
    assert.deepEqual(r.refusals, []);
    assert.deepEqual(r.notes.map((n) => `${n.code}:${n.node}`), [`${PlanCode.gateInserted}:mark`]);
    assert.match(r.notes[0]!.message, /not read-only: agent web-1 runs it only with a signed approval/);
    assert.deepEqual(r.source.nodes.map((n) => `${n.id}<${(n.needs ?? []).join(',')}`), ['look<', 'approve-mark<look', 'mark<approve-mark']);
    assert.deepEqual(seen, ['web-1:uptime', 'web-1:touch /srv/app/maintenance'], 'each command is checked once');
    const mark = r.dag!.nodes.find((n) => n.id === 'mark');
    assert.ok(mark?.type === 'command' && !mark.destructive, 'gated, not marked destructive');
  });

  test('an agent the tenant does not have is refused, naming the agents it has', () => {
    const r = review(plan([cmd('a', ['uptime'], { agent: 'mail-9' })]));
    assert.equal(r.refusals.length, 1);
    assert.equal(r.refusals[0]!.code, 'unknown_agent');
    assert.match(r.refusals[0]!.message, /"mail-9".*tenant "acme" has web-1, db-1/);
  });

  test("a command the agent's allowlist refuses is refused with the rule; an unknowable one is refused too", () => {
    const seen: string[] = [];
    const check: AllowlistCheck = (a, argv) => {
      seen.push(`${a.name}:${argv.join(' ')}`);
      return argv[0] === 'reboot' ? { allowed: false, reason: 'rule not-allowlisted: no entry' } : argv[0] === 'nosuch' ? { allowed: undefined, reason: 'not here' } : { allowed: true, reason: '' };
    };
    const r = review(plan([cmd('up', ['uptime']), cmd('rb', ['nosuch']), cmd('p', ['echo', '${params.x}'])], { params: { x: { type: 'string' } } }), check);
    assert.deepEqual(seen, ['web-1:uptime', 'web-1:nosuch'], 'templated argv is left to the agent at run time');
    assert.deepEqual(r.refusals.map((n) => `${n.code}:${n.node}`), [`${PlanCode.allowlistUnchecked}:rb`]);
    assert.deepEqual(r.notes.map((n) => `${n.code}:${n.node}`), [`${PlanCode.notChecked}:p`]);
    const refused = review(plan([cmd('rb', ['reboot'], { agent: 'db-1' })]), check);
    assert.ok(refused.refusals.some((n) => n.code === PlanCode.commandNotAllowed && /db-1 \(tier infrastructure\).*not-allowlisted/.test(n.message)), JSON.stringify(refused.refusals));
  });

  test('the worst case counts every Claude node at max_tokens and is refused over the cap', () => {
    const node = { id: 'c', type: 'claude', model: 'claude-sonnet-4-5', prompt: 'hello', max_tokens: 10_000 };
    const fits = review(plan([node], { cost_cap_usd: 1 }));
    // 10,000 output tokens at $15/MTok = $0.15, plus the prompt's byte bound at $3/MTok.
    assert.ok(fits.worstCaseUsd > 0.15 && fits.worstCaseUsd < 0.16, String(fits.worstCaseUsd));
    assert.equal(worstCaseUsd(fits.dag!, DEFAULT_PRICES), fits.worstCaseUsd);
    const over = review(plan([node], { cost_cap_usd: 0.1 }));
    assert.deepEqual(over.refusals.map((n) => n.code), [PlanCode.overCap]);
    assert.match(over.refusals[0]!.message, /worst case \$0\.15\d+ .* over its cost cap \$0\.1/);
  });
});

describe('comparing versions', () => {
  const base = plan([cmd('check', ['nginx', '-t']), gate('ok', { needs: ['check'] }), cmd('restart', ['systemctl', 'restart', 'nginx'], { needs: ['ok'], destructive: true })]);
  const edit = (f: (nodes: Obj[]) => void): Obj => {
    const copy = JSON.parse(JSON.stringify(base)) as Obj;
    f(copy.nodes as Obj[]);
    return copy;
  };
  test('a changed destructive command or its gate is listed; other changes are not', () => {
    const before = compiled(base);
    assert.deepEqual(destructiveChanges(before, compiled(base)), []);
    assert.deepEqual(destructiveChanges(before, compiled(edit((n) => ((n[0] as Obj).argv = ['uptime'])))), []);
    assert.deepEqual(destructiveChanges(before, compiled(edit((n) => ((n[2] as Obj).argv = ['systemctl', 'restart', 'php-fpm'])))), ['restart']);
    assert.deepEqual(destructiveChanges(before, compiled(edit((n) => ((n[1] as Obj).message = 'sure?')))), ['restart']);
    assert.deepEqual(destructiveChanges(before, compiled(edit((n) => ((n[1] as Obj).timeout_seconds = 60)))), ['restart']);
    assert.deepEqual(destructiveChanges(undefined, compiled(base)), ['restart'], 'a new DAG: every destructive node is new');
    assert.deepEqual(destructiveChanges(before, compiled(edit((n) => n.splice(1, 2)))), ['restart'], 'removed');
  });

  test('line diff and the next version', () => {
    assert.deepEqual(lineDiff('a\nb\nc', 'a\nx\nc'), ['  a', '+ x', '- b', '  c']);
    assert.deepEqual(lineDiff('a', 'a'), ['  a']);
    // Field order (the model's, or the stored canonical JSON's) never shows up as a change.
    const a = { nodes: [{ type: 'command', argv: ['uptime'], id: 'x', agent: 'web-1' }], cost_cap_usd: 1, version: 1, name: 'p' };
    const b = { name: 'p', version: 1, cost_cap_usd: 1, nodes: [{ id: 'x', type: 'command', agent: 'web-1', argv: ['uptime'] }] };
    assert.equal(toYaml(a), toYaml(b));
    assert.match(toYaml(a), /^name: p\nversion: 1\ncost_cap_usd: 1\nnodes:\n {2}- id: x\n {4}type: command\n/);
    assert.equal(nextVersion(undefined), 1);
    assert.equal(nextVersion('3'), 4);
    assert.equal(nextVersion('2024-01'), '2024-2');
    assert.equal(nextVersion('beta'), 'beta-2');
  });
});
