/**
 * The approver store (desktop-worker/approvers.ts) and `orch approver` (desktop-worker/commands/approvers.ts):
 * names and keys checked, each change audited in the tenant's chain in the same transaction, the version going up
 * on every change, and the CLI's usage errors and listing.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert, { orchErrorCode } from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addApprover, approverKeySet, listApprovers, removeApprover } from '../../desktop-worker/approvers';
import { approverCommand } from '../../desktop-worker/commands/approvers';
import { TenantStore } from '../../desktop-worker/tenant-store';

const KEY_A = 'a'.repeat(63) + '1';
const KEY_B = 'B'.repeat(64);

const codeOf = orchErrorCode;

function freshHome(): { home: string; store: TenantStore } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-approvers-'));
  const store = new TenantStore(home);
  store.create('acme');
  store.create('other');
  return { home, store };
}

describe('approver store', () => {
  test('add, list, remove; keys lowered; the version goes up on every change; each change is an audit row', () => {
    const { store } = freshHome();
    try {
      assert.deepEqual(listApprovers('acme', { store }), []);
      assert.deepEqual(approverKeySet('acme', { store }), { version: 0, keys: [] });
      const a = addApprover('acme', 'alice', KEY_A, { store, actor: 'ops' });
      assert.equal(a.version, 1);
      const b = addApprover('acme', 'bob@example.com', KEY_B, { store, actor: 'ops' });
      assert.equal(b.key, 'b'.repeat(64));
      assert.equal(b.version, 2);
      assert.deepEqual(
        listApprovers('acme', { store }).map((x) => [x.name, x.key]),
        [
          ['alice', KEY_A],
          ['bob@example.com', 'b'.repeat(64)],
        ],
      );
      assert.ok(!Number.isNaN(Date.parse(listApprovers('acme', { store })[0]!.addedAt)));
      // Tenants are separate.
      assert.deepEqual(listApprovers('other', { store }), []);
      const removed = removeApprover('acme', 'alice', { store, actor: 'ops' });
      assert.equal(removed.key, KEY_A);
      assert.equal(removed.version, 3);
      assert.deepEqual(approverKeySet('acme', { store }), { version: 3, keys: ['b'.repeat(64)] });

      const rows = [...store.auditLog('acme').rows()].filter((r) => r.action.endsWith('_approver'));
      assert.deepEqual(
        rows.map((r) => [r.action, r.subject, r.actor, (r.details as { key: string }).key, (r.details as { version: number }).version]),
        [
          ['add_approver', 'alice', 'ops', KEY_A, 1],
          ['add_approver', 'bob@example.com', 'ops', 'b'.repeat(64), 2],
          ['remove_approver', 'alice', 'ops', KEY_A, 3],
        ],
      );
      assert.equal(store.auditLog('acme').verify().ok, true);
    } finally {
      store.close();
    }
  });

  test('refusals change nothing: no row, no audit entry, no version bump', () => {
    const { store } = freshHome();
    try {
      addApprover('acme', 'alice', KEY_A, { store });
      const auditBefore = [...store.auditLog('acme').rows()].length;
      const cases: Array<[() => unknown, string]> = [
        [() => addApprover('acme', 'alice', KEY_B, { store }), 'approver_exists'],
        [() => addApprover('acme', 'carol', KEY_A.toUpperCase(), { store }), 'approver_key_in_use'],
        [() => addApprover('acme', 'carol', 'abc', { store }), 'bad_approver_key'],
        [() => addApprover('acme', 'carol', 'g'.repeat(64), { store }), 'bad_approver_key'],
        [() => addApprover('acme', 'carol', KEY_A + '00', { store }), 'bad_approver_key'],
        [() => addApprover('acme', 'a b', KEY_B, { store }), 'bad_approver_name'],
        [() => addApprover('acme', '', KEY_B, { store }), 'bad_approver_name'],
        [() => addApprover('acme', 'x'.repeat(101), KEY_B, { store }), 'bad_approver_name'],
        [() => removeApprover('acme', 'nobody', { store }), 'unknown_approver'],
        [() => addApprover('nope', 'carol', KEY_B, { store }), 'unknown_tenant'],
        [() => addApprover('../x', 'carol', KEY_B, { store }), 'bad_input'],
      ];
      for (const [fn, code] of cases) assert.equal(codeOf(fn), code, code);
      assert.equal([...store.auditLog('acme').rows()].length, auditBefore);
      assert.deepEqual(approverKeySet('acme', { store }), { version: 1, keys: [KEY_A] });
    } finally {
      store.close();
    }
  });
});

describe('orch approver', () => {
  let home: string;
  const saved = process.env.ORCH_HOME;
  beforeAll(() => {
    const h = freshHome();
    home = h.home;
    addApprover('acme', 'alice', KEY_A, { store: h.store });
    h.store.close();
    process.env.ORCH_HOME = home;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.ORCH_HOME;
    else process.env.ORCH_HOME = saved;
  });

  async function run(positionals: string[], values: Record<string, unknown> = {}): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await approverCommand({ positionals, values }, { log: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out, err };
  }

  test('list shows every tenant, or one; --json is the store list with the tenant', async () => {
    const all = await run(['list']);
    assert.equal(all.code, 0);
    assert.ok(all.out.some((l) => l.includes('acme') && l.includes('alice') && l.includes(KEY_A)), all.out.join('\n'));
    const json = await run(['list'], { tenant: 'acme', json: true });
    assert.equal(json.code, 0);
    const parsed = JSON.parse(json.out.join('\n')) as Array<{ tenant: string; name: string; key: string }>;
    assert.deepEqual(parsed.map((a) => [a.tenant, a.name, a.key]), [['acme', 'alice', KEY_A]]);
    const empty = await run(['list'], { tenant: 'other' });
    assert.equal(empty.code, 0);
    assert.match(empty.out.join('\n'), /no approvers in tenant "other"/);
  });

  test('usage mistakes exit 2 with a one-line message; bad input exits 1 with its code under --json', async () => {
    for (const [pos, values] of [
      [['add', 'carol'], { key: KEY_B }],
      [['add', 'carol'], { tenant: 'acme' }],
      [['remove'], { tenant: 'acme' }],
      [['frobnicate'], {}],
      [['list', 'extra'], {}],
      [['remove', 'alice'], { tenant: 'acme', key: KEY_A }],
    ] as Array<[string[], Record<string, unknown>]>) {
      const r = await run(pos, values);
      assert.equal(r.code, 2, `${pos.join(' ')} ${JSON.stringify(values)}`);
      assert.equal(r.err.length, 1);
      assert.match(r.err[0]!, /^orch approver: /);
    }
    const bad = await run(['add', 'carol'], { tenant: 'acme', key: 'xyz', json: true });
    assert.equal(bad.code, 1);
    assert.equal((JSON.parse(bad.out.join('\n')) as { error: { code: string } }).error.code, 'bad_approver_key');
    const unknown = await run(['list'], { tenant: 'nope', json: true });
    assert.equal(unknown.code, 1);
    assert.equal((JSON.parse(unknown.out.join('\n')) as { error: { code: string } }).error.code, 'unknown_tenant');
    // Nothing was added by the refused commands.
    const s = new TenantStore(home);
    try {
      assert.deepEqual(listApprovers('acme', { store: s }).map((a) => a.name), ['alice']);
    } finally {
      s.close();
    }
  });
});
