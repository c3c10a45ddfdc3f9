import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, loadPrices } from '../../desktop-worker/config';
import { DEFAULT_PRICES } from '../../workflows/prices';
import { orchWorkerTuning } from '../../desktop-worker/worker-tuning';

const home = () => fs.mkdtempSync(path.join(os.tmpdir(), 'orch-config-'));

describe('configuration', () => {
  test('defaults: a local dev server on 127.0.0.1:7233 with the UI on 8233, task queue orch', () => {
    const c = loadConfig({ ORCH_HOME: home() });
    assert.deepEqual(c.temporal, { kind: 'dev-server', ip: '127.0.0.1', port: 7233, uiPort: 8233, namespace: 'default' });
    assert.equal(c.taskQueue, 'orch');
    assert.equal(c.prices, DEFAULT_PRICES);
    assert.equal(c.retentionDays, 30);
    assert.equal(loadConfig({ ORCH_HOME: home(), ORCH_RETENTION_DAYS: '90' }).retentionDays, 90);
    // The worker's sticky cache: small by default, so runs parked at gates do not each hold memory (issue 11).
    assert.equal(c.maxCachedWorkflows, 25);
    assert.equal(loadConfig({ ORCH_HOME: home(), ORCH_MAX_CACHED_WORKFLOWS: '0' }).maxCachedWorkflows, 0);
    assert.deepEqual(orchWorkerTuning(c.maxCachedWorkflows), { maxCachedWorkflows: 25, reuseV8Context: true });
  });

  test('TEMPORAL_ADDRESS selects an external Temporal through envconfig', () => {
    const c = loadConfig({ ORCH_HOME: home(), TEMPORAL_ADDRESS: 'temporal.example:7233', TEMPORAL_NAMESPACE: 'ops' });
    assert.equal(c.temporal.kind, 'external');
    if (c.temporal.kind === 'external') {
      assert.equal(c.temporal.connect.connectionOptions.address, 'temporal.example:7233');
      assert.equal(c.temporal.namespace, 'ops');
    }
  });

  test('a wrong setting names itself', () => {
    const bad = (env: NodeJS.ProcessEnv, setting: RegExp) => {
      assert.throws(() => loadConfig({ ORCH_HOME: home(), ...env }), (e: unknown) => e instanceof ConfigError && setting.test(e.message));
    };
    bad({ ORCH_TEMPORAL_PORT: 'seventy' }, /^ORCH_TEMPORAL_PORT: "seventy" is not a TCP port/);
    bad({ ORCH_TEMPORAL_PORT: '70000' }, /^ORCH_TEMPORAL_PORT/);
    bad({ ORCH_TASK_QUEUE: 'has space' }, /^ORCH_TASK_QUEUE/);
    bad({ ORCH_WORKFLOW_BUNDLE: '/no/such/bundle.js' }, /^ORCH_WORKFLOW_BUNDLE/);
    bad({ ORCH_RETENTION_DAYS: '0' }, /^ORCH_RETENTION_DAYS: "0" is not a number of days from 1 to 3650/);
    bad({ ORCH_RETENTION_DAYS: '7.5' }, /^ORCH_RETENTION_DAYS/);
    bad({ ORCH_RETENTION_DAYS: 'a week' }, /^ORCH_RETENTION_DAYS/);
    bad({ ORCH_MAX_CACHED_WORKFLOWS: 'lots' }, /^ORCH_MAX_CACHED_WORKFLOWS: "lots" is not a number of runs from 0 to 10000/);
    bad({ ORCH_MAX_CACHED_WORKFLOWS: '20000' }, /^ORCH_MAX_CACHED_WORKFLOWS/);
  });

  test('prices.json extends and overrides the defaults; a bad file is refused with its problem', () => {
    const dir = home();
    const file = path.join(dir, 'prices.json');
    fs.writeFileSync(file, JSON.stringify({ 'claude-future-1': { inputPerMTok: 4, outputPerMTok: 20 }, 'claude-haiku-4-5': { inputPerMTok: 2, outputPerMTok: 6 } }));
    const p = loadPrices(file);
    assert.deepEqual(p['claude-future-1'], { inputPerMTok: 4, outputPerMTok: 20 });
    assert.deepEqual(p['claude-haiku-4-5'], { inputPerMTok: 2, outputPerMTok: 6 });
    assert.deepEqual(p['claude-sonnet-4-5'], DEFAULT_PRICES['claude-sonnet-4-5']);
    fs.writeFileSync(file, '{ not json');
    assert.throws(() => loadPrices(file), /ORCH_PRICES_FILE: .* is not valid JSON/);
    fs.writeFileSync(file, JSON.stringify({ x: { inputPerMTok: 'free' } }));
    assert.throws(() => loadPrices(file), /x.inputPerMTok must be a number/);
  });
});
