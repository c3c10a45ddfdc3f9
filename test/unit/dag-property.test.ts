import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fc from 'fast-check';
import { compileDag } from '../../workflows/dag/compile';
import { parseDagText } from '../../desktop-worker/dag-yaml';
import type { CompileOptions, CompileResult } from '../../workflows/dag/types';

const OPTS: CompileOptions = { knownModels: ['claude-sonnet-4-5', 'claude-haiku-4-5'] };
const RUNS = 300;

/** A result is well-formed: ok with a DAG, or not ok with at least one complete issue. */
function wellFormed(r: CompileResult): boolean {
  if (r.ok) return Array.isArray(r.dag.nodes) && r.dag.nodes.length > 0;
  return (
    r.issues.length > 0 &&
    r.issues.every((i) => typeof i.code === 'string' && i.code.length > 0 && typeof i.field === 'string' && typeof i.message === 'string' && i.message.length > 0 && !i.message.includes('\n'))
  );
}

const ids = ['a', 'b', 'c', 'd', 'e'];
const idArb = fc.oneof(fc.constantFrom(...ids), fc.constantFrom('', 'a.b', 'constructor', '__proto__', 'x'.repeat(101)), fc.anything());
const stringish = fc.oneof(
  fc.constantFrom('rm', '-rf', '/', 'sh', '-c', 'rm -rf /', 'ls', '${params.p}', '${nodes.a.output}', '${secrets.S}', '$${x}', '${', '${bad}', 'drop table t'),
  fc.string({ maxLength: 20 }),
);
const nodeArb = fc.record(
  {
    id: idArb,
    type: fc.oneof(fc.constantFrom('command', 'claude', 'approval_gate', 'shell'), fc.anything()),
    needs: fc.oneof(fc.array(fc.oneof(fc.constantFrom(...ids), fc.anything()), { maxLength: 4 }), fc.anything()),
    agent: fc.oneof(fc.constantFrom('web1', '${params.p}', '${params.q}', 'bad name'), fc.anything()),
    argv: fc.oneof(fc.array(stringish, { maxLength: 5 }), fc.anything()),
    destructive: fc.oneof(fc.boolean(), fc.anything()),
    timeout_seconds: fc.oneof(fc.integer({ min: -5, max: 100_000 }), fc.double(), fc.anything()),
    cwd: fc.oneof(fc.constantFrom('/srv', 'rel', '/a/../b'), fc.anything()),
    model: fc.oneof(fc.constantFrom('claude-sonnet-4-5', 'gpt-4'), fc.anything()),
    prompt: fc.oneof(stringish, fc.anything()),
    system: stringish,
    max_tokens: fc.oneof(fc.integer({ min: -5, max: 200_000 }), fc.anything()),
    message: fc.oneof(stringish, fc.anything()),
    approvers: fc.oneof(fc.array(fc.constantFrom('alice', 'bob smith', ''), { maxLength: 3 }), fc.anything()),
  },
  { requiredKeys: [] },
);
const paramsArb = fc.oneof(
  fc.dictionary(
    fc.constantFrom('p', 'q', 'bad name', '__proto__'),
    fc.record(
      {
        type: fc.oneof(fc.constantFrom('string', 'number', 'integer', 'boolean', 'date'), fc.anything()),
        default: fc.anything(),
        enum: fc.oneof(fc.array(fc.oneof(fc.string(), fc.integer(), fc.boolean()), { maxLength: 3 }), fc.anything()),
        pattern: fc.oneof(fc.constantFrom('[a-z]+', '([', '.*'), fc.anything()),
        min: fc.anything(),
        max: fc.anything(),
        max_length: fc.anything(),
        required: fc.anything(),
      },
      { requiredKeys: ['type'] },
    ),
  ),
  fc.anything(),
);
const almostDag = fc.record(
  {
    name: fc.oneof(fc.constantFrom('dag', 'bad name'), fc.anything()),
    version: fc.oneof(fc.integer(), fc.string(), fc.anything()),
    cost_cap_usd: fc.oneof(fc.double(), fc.integer({ min: -1, max: 20_000 }), fc.anything()),
    description: fc.anything(),
    params: paramsArb,
    nodes: fc.oneof(fc.array(nodeArb, { maxLength: 8 }), fc.anything()),
    extra: fc.anything(),
  },
  { requiredKeys: ['nodes'] },
);

describe('compileDag never throws', () => {
  test('on arbitrary values', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => wellFormed(compileDag(v, OPTS))),
      { numRuns: RUNS },
    );
  });

  test('on arbitrary JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => wellFormed(compileDag(v, OPTS))),
      { numRuns: RUNS },
    );
  });

  test('on objects shaped almost like DAGs', () => {
    fc.assert(
      fc.property(almostDag, (v) => wellFormed(compileDag(v, OPTS))),
      { numRuns: RUNS },
    );
  });
});

/** A random acyclic graph: node r may need any node of lower rank; nodes are listed in a random order. */
const acyclicDag = fc.integer({ min: 1, max: 25 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    edges: fc.array(fc.array(fc.boolean(), { minLength: n, maxLength: n }), { minLength: n, maxLength: n }),
    order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
    kinds: fc.array(fc.constantFrom('command', 'claude', 'approval_gate'), { minLength: n, maxLength: n }),
  }),
);

/** The specified order: repeatedly the earliest-listed node whose parents are all placed. */
function expectedOrder(nodes: Array<{ id: string; needs: string[] }>): string[] {
  const placed = new Set<string>();
  const out: string[] = [];
  while (out.length < nodes.length) {
    const next = nodes.find((n) => !placed.has(n.id) && n.needs.every((p) => placed.has(p)));
    if (!next) throw new Error('not acyclic');
    placed.add(next.id);
    out.push(next.id);
  }
  return out;
}

describe('acyclic DAGs', () => {
  test('always compile, in an order that respects needs and breaks ties by source order', () => {
    fc.assert(
      fc.property(acyclicDag, ({ n, edges, order, kinds }) => {
        const nodes = order.map((rank) => {
          const needs: string[] = [];
          for (let lower = 0; lower < rank; lower++) if (edges[rank]?.[lower]) needs.push(`n${lower}`);
          const id = `n${rank}`;
          const kind = kinds[rank];
          if (kind === 'claude') {
            const ref = needs.length > 0 ? ` \${nodes.${needs[0]}.output}` : '';
            return { id, type: 'claude', needs, model: 'claude-haiku-4-5', prompt: `summarise${ref}`, max_tokens: 10 };
          }
          if (kind === 'approval_gate') return { id, type: 'approval_gate', needs, message: 'ok?' };
          return { id, type: 'command', needs, agent: 'web1', argv: ['uptime'] };
        });
        const r = compileDag({ name: 'random', version: 1, cost_cap_usd: 1, nodes }, OPTS);
        assert.equal(r.ok, true, JSON.stringify(r));
        if (!r.ok) return;
        assert.equal(r.dag.nodes.length, n);
        const position = new Map(r.dag.nodes.map((node, k) => [node.id, k]));
        for (const node of r.dag.nodes) {
          for (const p of node.needs) assert.ok((position.get(p) ?? Infinity) < (position.get(node.id) ?? -1), `${p} before ${node.id}`);
        }
        assert.deepEqual(
          r.dag.nodes.map((x) => x.id),
          expectedOrder(nodes),
        );
      }),
      { numRuns: RUNS },
    );
  });
});

describe('cycles', () => {
  test('a back edge on an acyclic chain always gives a cycle issue naming the nodes on it', () => {
    const chain = fc.integer({ min: 2, max: 30 }).chain((n) =>
      fc.record({
        n: fc.constant(n),
        from: fc.integer({ min: 0, max: n - 2 }),
        span: fc.integer({ min: 1, max: n - 1 }),
        reversed: fc.boolean(),
      }),
    );
    fc.assert(
      fc.property(chain, ({ n, from, span, reversed }) => {
        const to = Math.min(n - 1, from + span);
        const nodes = Array.from({ length: n }, (_, k) => ({
          id: `c${k}`,
          type: 'command',
          agent: 'web1',
          argv: ['true'],
          needs: k === 0 ? [] : [`c${k - 1}`],
        }));
        // c{from} also needs c{to}, which (through the chain) needs c{from}.
        nodes[from]?.needs.push(`c${to}`);
        const r = compileDag({ name: 'chain', version: 1, cost_cap_usd: 1, nodes: reversed ? [...nodes].reverse() : nodes }, OPTS);
        assert.equal(r.ok, false);
        if (r.ok) return;
        const cycles = r.issues.filter((i) => i.code === 'cycle');
        assert.equal(cycles.length, 1, JSON.stringify(r.issues));
        const message = cycles[0]?.message ?? '';
        for (let k = 0; k < n; k++) {
          const onCycle = k >= from && k <= to;
          assert.equal(message.includes(`"c${k}"`), onCycle, `c${k} ${onCycle ? 'named' : 'not named'} in: ${message}`);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('parseDagText never throws', () => {
  const yamlish = fc
    .array(fc.constantFrom('&a ', '*a', '[', ']', '{', '}', ': ', '- ', '\n', '  ', '!!str ', '!foo ', '<<: ', '---\n', '"', "'", 'key', '1', '\t', '#', '? ', '|', '>', ',', '%YAML 1.2\n'), {
      maxLength: 40,
    })
    .map((parts) => parts.join(''));

  for (const fileName of ['dag.yaml', 'dag.json']) {
    test(`on arbitrary strings (${fileName}), and what it returns compiles without throwing`, () => {
      fc.assert(
        fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 100 }), yamlish), (text) => {
          const r = parseDagText(text, fileName);
          if (r.ok) return wellFormed(compileDag(r.source, OPTS));
          return r.issues.length > 0 && r.issues.every((i) => i.field === '(file)' && i.code.length > 0 && !i.message.includes('\n'));
        }),
        { numRuns: RUNS },
      );
    });
  }
});
