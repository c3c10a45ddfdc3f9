/**
 * `orch approver add | list | remove` with the desktop identity in the test run's keychain (so audit checkpoints are
 * signed), through the command objects cli.ts registers. Each change is an audit row of the tenant's chain,
 * which still verifies; errors are one line with a stable code under --json, never a stack trace.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import fs from 'node:fs';
import assert from '../support/assert';
import { tempHome } from '../support/harness';
import { approverSpec } from '../../desktop-worker/commands/approvers';
import { auditSpec } from '../../desktop-worker/commands/audit';
import { initSpec } from '../../desktop-worker/commands/identity';
import type { CommandSpec } from '../../desktop-worker/commands/shared';
import { openTenantStore } from '../../desktop-worker/tenant-access';
import { ed25519KeyPair } from '../../protocol/primitives';
import { parseArgs } from 'node:util';

let home: string;
const key = ed25519KeyPair().publicKey.toString('hex');
const specs: Record<string, CommandSpec> = { approver: approverSpec, audit: auditSpec, init: initSpec };

/** The command as cli.ts runs it (same spec, same strict argument parsing), in this process: ORCH_HOME is the test's. */
async function orch(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const [name, ...rest] = args;
  const spec = specs[name!]!;
  const out: string[] = [];
  const err: string[] = [];
  const io = { log: (l: string) => out.push(l), err: (l: string) => err.push(l) };
  const saved = process.env.ORCH_HOME;
  process.env.ORCH_HOME = home;
  try {
    if (rest.includes('--help')) return { code: 0, stdout: `usage: ${spec.usage}\n\n${spec.help}`, stderr: '' };
    const parsed = parseArgs({ args: rest, options: spec.options, allowPositionals: true, strict: true });
    const code = await spec.run(parsed as { values: Record<string, unknown>; positionals: string[] }, io);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    if (saved === undefined) delete process.env.ORCH_HOME;
    else process.env.ORCH_HOME = saved;
  }
}

beforeAll(async () => {
  home = tempHome();
  const init = await orch(['init']);
  assert.equal(init.code, 0, init.stderr);
  const store = await openTenantStore(home);
  store.create('acme', 'test');
  store.close();
}, 60_000);

afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

describe('orch approver', () => {
  test('--help, add, list, remove; audited; the chain verifies', async () => {
    const help = await orch(['approver', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: orch approver add NAME --key HEX --tenant T/);
    const added = await orch(['approver', 'add', 'alice', '--key', key.toUpperCase(), '--tenant', 'acme', '--json']);
    assert.equal(added.code, 0, added.stderr);
    assert.deepEqual({ ...JSON.parse(added.stdout), addedAt: undefined }, { tenant: 'acme', name: 'alice', key, addedAt: undefined, version: 1 });
    const listed = JSON.parse((await orch(['approver', 'list', '--json'])).stdout) as Array<{ tenant: string; name: string; key: string }>;
    assert.deepEqual(listed.map((a) => [a.tenant, a.name, a.key]), [['acme', 'alice', key]]);
    const text = await orch(['approver', 'list', '--tenant', 'acme']);
    assert.match(text.stdout, new RegExp(`acme +alice +${key}`));
    const removed = await orch(['approver', 'remove', 'alice', '--tenant', 'acme']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /approver "alice" removed from tenant "acme"; approver list version 2/);
    const rows = (await orch(['audit', 'export', '--tenant', 'acme', '--format', 'jsonl'])).stdout;
    assert.match(rows, /"action":"add_approver"/);
    assert.match(rows, /"action":"remove_approver"/);
    const verify = await orch(['audit', 'verify', '--tenant', 'acme']);
    assert.equal(verify.code, 0, `${verify.stdout}\n${verify.stderr}`);
  });

  test('mistakes: exit 2 for usage, 1 with a stable code for bad input; no stack traces', async () => {
    const usage = await orch(['approver', 'add', 'bob', '--tenant', 'acme']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^orch approver: --key HEX is required/);
    const badKey = await orch(['approver', 'add', 'bob', '--key', 'abc', '--tenant', 'acme', '--json']);
    assert.equal(badKey.code, 1);
    assert.equal(JSON.parse(badKey.stdout).error.code, 'bad_approver_key');
    const unknown = await orch(['approver', 'remove', 'nobody', '--tenant', 'acme', '--json']);
    assert.equal(unknown.code, 1);
    assert.equal(JSON.parse(unknown.stdout).error.code, 'unknown_approver');
    const noTenant = await orch(['approver', 'add', 'bob', '--key', key, '--tenant', 'nope', '--json']);
    assert.equal(noTenant.code, 1);
    assert.equal(JSON.parse(noTenant.stdout).error.code, 'unknown_tenant');
    for (const r of [usage, badKey, unknown, noTenant]) assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});
