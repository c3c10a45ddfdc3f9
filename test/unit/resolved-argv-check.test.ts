/**
 * refuseUngatedDestructive (activities/resolved-argv-check.ts), the runCommand activity's check of the argv with
 * secrets resolved: which requests it refuses, and the audit row it writes (to a real tenant audit log).
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { COMMAND_REFUSED_ACTION, refuseUngatedDestructive } from '../../activities/resolved-argv-check';
import type { CommandRequest } from '../../activities/types';
import { TenantStore } from '../../desktop-worker/tenant-store';

const base: CommandRequest = { tenant: 'acme', agent: 'web-1', argv: ['sh', '-c', '${secrets.SCRIPT}'], timeoutSeconds: 10, commandId: 'wf/run/wipe' };
const resolvedTo = (argv: string[]): CommandRequest => ({ ...base, argv });

function withStore(fn: (store: TenantStore) => void): void {
  const store = new TenantStore(fs.mkdtempSync(path.join(os.tmpdir(), 'orch-recheck-')));
  try {
    store.create('acme');
    fn(store);
  } finally {
    store.close();
  }
}

const refusals = (store: TenantStore) => [...store.auditLog('acme').rows({ action: COMMAND_REFUSED_ACTION })];

describe('the destructive check on the resolved argv', () => {
  test('refused: destructive only once resolved, and no approved gate released it (audited once per command id)', () => {
    withStore((store) => {
      const resolved = resolvedTo(['sh', '-c', 'rm -rf /srv/data']);
      for (let attempt = 0; attempt < 2; attempt++) {
        let thrown: unknown;
        try {
          refuseUngatedDestructive(base, resolved, store);
        } catch (err) {
          thrown = err;
        }
        assert.ok(thrown instanceof ApplicationFailure);
        assert.equal(thrown.type, 'destructive_without_gate');
        assert.equal(thrown.nonRetryable, true);
        assert.ok(!thrown.message.includes('/srv/data'), 'the message quotes the resolved argv');
      }
      const rows = refusals(store);
      assert.equal(rows.length, 1, 'a retried attempt writes no second row');
      assert.equal(rows[0]!.subject, 'wipe');
      assert.equal(rows[0]!.details.pattern, 'rm-recursive-or-force');
      assert.equal(rows[0]!.details.commandId, 'wf/run/wipe');
      assert.ok(!JSON.stringify(rows[0]).includes('/srv/data'));
    });
  });

  test('not refused: harmless once resolved; already destructive before (the workflow gated it); released by an approved gate', () => {
    withStore((store) => {
      refuseUngatedDestructive(base, resolvedTo(['sh', '-c', 'echo rm -rf /']), store);
      const template = { ...base, argv: ['rm', '-rf', '${secrets.DIR}'] };
      refuseUngatedDestructive(template, { ...template, argv: ['rm', '-rf', '/srv/data'] }, store);
      const released = { ...base, approval: { approvals: [], released: [] } } as CommandRequest;
      refuseUngatedDestructive(released, { ...released, argv: ['sh', '-c', 'rm -rf /srv/data'] }, store);
      assert.deepEqual(refusals(store), []);
    });
  });
});
