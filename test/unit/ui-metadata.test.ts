import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { MAX_DETAILS_CHARS, MAX_SUMMARY_CHARS, renderRunDetails, shellWord, summaries } from '../../workflows/ui-metadata';
import type { PendingGate, RunStatus } from '../../workflows/shared';

const gate = (over: Partial<PendingGate> = {}): PendingGate => ({
  gate: 'approve',
  message: 'Restart nginx?',
  since: '2025-01-01T00:00:00.000Z',
  deadline: '2025-01-02T00:00:00.000Z',
  released: [{ commandId: 'wf/run/restart', node: 'restart', agent: 'web-1', tier: 'standard', argv: ['systemctl', 'restart', 'nginx'], destructive: false }],
  releaseDigest: 'ab'.repeat(32),
  needed: 1,
  distinctFromStarter: false,
  approvals: [],
  refused: [],
  ...over,
});

const status = (over: Partial<RunStatus> = {}): RunStatus => ({
  tenant: 'demo',
  dag: 'demo-review',
  dagVersion: '1',
  state: 'waiting_approval',
  nodes: [
    { id: 'disks', type: 'command', state: 'succeeded', summary: 'exit 0: Filesystem | Size' },
    { id: 'checklist', type: 'claude', state: 'succeeded', costUsd: 0.000123, summary: 'a\nchecklist' },
    { id: 'approve', type: 'approval_gate', state: 'waiting_approval' },
    { id: 'restart', type: 'command', state: 'pending' },
  ],
  cost: { capUsd: 0.05, spentUsd: 0.000123, reservedUsd: 0 },
  pendingGates: [gate()],
  ignoredSignals: [],
  ...over,
});

describe('summaries on activities and timers', () => {
  test('name the node, and Orch bookkeeping says orch:', () => {
    assert.equal(summaries.command('disks', 'web-1', ['df', '-h']), 'disks: df -h on web-1');
    assert.equal(summaries.claude('checklist', 'claude-haiku-4-5', 400), 'checklist: claude-haiku-4-5, max 400 tokens');
    assert.equal(summaries.claude('checklist', 'claude-haiku-4-5', 400, 2), 'checklist: claude-haiku-4-5, max 400 tokens, attempt 2');
    assert.equal(summaries.gateTimer('approve', 86_400), 'approval gate "approve" (24 h)');
    assert.equal(summaries.gateTimer('approve', 90), 'approval gate "approve" (90 s)');
    assert.equal(summaries.gateTimer('approve', 1800), 'approval gate "approve" (30 min)');
    assert.equal(summaries.audit('command_sent', 'disks'), 'orch: audit append (command_sent disks)');
    assert.match(summaries.loadDag('demo', 'demo-review'), /^orch: load DAG demo-review/);
    assert.match(summaries.countTokens('checklist', 'claude-haiku-4-5'), /^orch: count input tokens \(checklist/);
  });

  test('secrets stay references, argv with spaces is quoted, and a summary is one bounded line', () => {
    assert.equal(summaries.command('deploy', 'web-1', ['deploy', '--token=${secrets.TOKEN}', 'a b']), 'deploy: deploy --token=${secrets.TOKEN} "a b" on web-1');
    const long = summaries.command('n', 'a', ['echo', 'x'.repeat(1000), '\n\nmore']);
    assert.equal(long.length, MAX_SUMMARY_CHARS);
    assert.ok(long.endsWith('…') && !long.includes('\n'));
  });
});

describe('current details', () => {
  test('show the node table, the cost against the cap, and how to approve the waiting gate', () => {
    const md = renderRunDetails('demo-review-1', status());
    assert.match(md, /\*\*demo-review\*\* v1 · tenant `demo` · \*\*waiting for approval\*\*/);
    assert.match(md, /Cost: 0\.000123 USD spent \+ 0\.00 USD reserved of the 0\.05 USD cap/);
    assert.match(md, /\| node \| type \| state \| note \|/);
    assert.match(md, /\| disks \| command \| ✓ succeeded \| exit 0: Filesystem \\\| Size \|/, 'a | in a cell is escaped');
    assert.match(md, /\| checklist \| claude \| ✓ succeeded \| 0\.000123 USD a checklist \|/, 'a newline in a cell becomes a space');
    assert.match(md, /\| approve \| approval_gate \| ‖ waiting for approval \|/);
    assert.match(md, /### Waiting for approval: gate `approve`/);
    assert.match(md, /- `restart` on `web-1` \(standard\): `systemctl restart nginx`/);
    assert.ok(md.includes('orch approve demo-review-1 approve --comment "checked"'));
    assert.ok(md.includes('{"gate":"approve","decision":"approve","approver":"YOUR NAME","comment":"checked"}'));
  });

  test('text from messages and outputs cannot turn into math, HTML or code in the UI', () => {
    const md = renderRunDetails('w', status({ pendingGates: [gate({ message: 'Pay $5 and $6 <img src=x> `x`' })] }));
    assert.ok(md.includes('Pay \\$5 and \\$6 \\<img src=x> \\`x\\`'), md);
  });

  test('a gate that names approvers offers no plain signal, and an odd workflow id is shell-quoted', () => {
    const md = renderRunDetails("it's mine", status({ pendingGates: [gate({ approvers: ['alice', 'bob'], needed: 2 })] }));
    assert.ok(!md.includes('"decision":"approve"'));
    assert.match(md, /takes only signed decisions/);
    assert.ok(md.includes(`orch approve ${shellWord("it's mine")} approve`));
    assert.equal(shellWord("it's mine"), `'it'\\''s mine'`);
  });

  test('stay bounded however large the run', () => {
    const nodes = Array.from({ length: 500 }, (_, i) => ({ id: `node-${i}`, type: 'command' as const, state: 'failed' as const, error: { type: 'command_failed', message: 'x'.repeat(5000) } }));
    const gates = Array.from({ length: 20 }, (_, i) => gate({ gate: `g${i}`, message: 'm'.repeat(5000), released: Array.from({ length: 50 }, () => gate().released[0]!) }));
    const md = renderRunDetails('w'.repeat(400), status({ state: 'failed', nodes, pendingGates: gates, failure: { node: 'node-1', type: 'command_failed', message: 'y'.repeat(5000) } }));
    assert.ok(md.length <= MAX_DETAILS_CHARS, `${md.length} characters`);
    assert.match(md, /Failed at node `node-1`: `command_failed`/);
  });
});
