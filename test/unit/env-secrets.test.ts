import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { envSecrets } from '../../desktop-worker/secrets';
import { TenantStore } from '../../desktop-worker/tenant-store';

describe("the worker's environment secrets belong to the tenants ORCH_ENV_SECRET_TENANTS names", () => {
  const env = { API_KEY_PAGER: 'pager-secret', TOKEN_DEPLOY: 'deploy-secret', HOME: '/root' };

  test('unset: every tenant (one worker, one tenant); set: only the tenants named', () => {
    assert.deepEqual([...envSecrets(env, 'acme').keys()].sort(), ['API_KEY_PAGER', 'TOKEN_DEPLOY']);
    const scoped = { ...env, ORCH_ENV_SECRET_TENANTS: 'acme, ops' };
    assert.deepEqual([...envSecrets(scoped, 'acme').keys()].sort(), ['API_KEY_PAGER', 'TOKEN_DEPLOY']);
    assert.deepEqual([...envSecrets(scoped, 'ops').keys()].sort(), ['API_KEY_PAGER', 'TOKEN_DEPLOY']);
    assert.equal(envSecrets(scoped, 'globex').size, 0);
    assert.equal(envSecrets(scoped).size, 0, 'no tenant: none');
  });

  test("a run of another tenant does not resolve them (the activity's secret source)", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-env-secrets-'));
    try {
      const store = new TenantStore(home, { env: { ...env, ORCH_ENV_SECRET_TENANTS: 'acme' } });
      store.create('acme');
      store.create('globex');
      assert.equal((await store.secretValues('acme')).get('API_KEY_PAGER'), 'pager-secret');
      assert.equal((await store.secretValues('globex')).has('API_KEY_PAGER'), false);
      store.close();
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
