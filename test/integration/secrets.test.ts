/**
 * Tenant secrets with a real OS keychain (run inside infra/ci-keyring.sh, as `npm test` does): set through the
 * CLI from stdin, listed by name only, stored only as ciphertext, resolved and masked by the runCommand activity,
 * the seed's environment conventions, and never sent to Claude.
 */
import { beforeAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities, type CommandTransport } from '../../activities';
import type { CommandRequest } from '../../activities/types';
import { compileDag } from '../../workflows/dag/compile';
import { renderTemplate } from '../../workflows/dag/template';
import { DEFAULT_PRICES } from '../../workflows/prices';
import { useDesktopHome } from '../support/desktop-home';
import { uid } from '../support/harness';
import { MockActivityEnvironment } from '@temporalio/testing';

/** Runs an activity function as Temporal's worker would (with an activity context, for its heartbeats). */
function inActivity<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return new MockActivityEnvironment().run(fn, ...args);
}

const VALUE = `s3cr3t-${uid('v')}-value`;
const ENV_VALUE = `envtoken-${uid('e')}`;

const tenant = uid('sec');
const desk = useDesktopHome('orch-test-secrets', { storeEnv: { ...process.env, TOKEN_DEPLOY: ENV_VALUE } });

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name));
}

/** An agent stand-in that echoes its argv to stdout and stderr: what the activity does around it is under test. */
const seen: CommandRequest[] = [];
const echo: CommandTransport = {
  async run(req) {
    seen.push(req);
    if (req.argv[0] === 'fail') throw ApplicationFailure.nonRetryable(`agent refused: ${req.argv.join(' ')}`, 'command_not_allowed', { argv: req.argv });
    const text = req.argv.join(' ');
    return { exitCode: 0, stdout: text, stderr: `err: ${text}`, truncated: false, durationMs: 1 };
  },
};

beforeAll(() => {
  desk.store.create(tenant, 'tester');
});

describe('orch secret', () => {
  test('set reads stdin (never argv), list shows names only, the value is only ciphertext on disk', async () => {
    const set = await desk.orch(['secret', 'set', '--tenant', tenant, 'DB_PASSWORD'], `${VALUE}\n`);
    assert.equal(set.code, 0, set.stderr);
    assert.ok(!set.stdout.includes(VALUE) && !set.stderr.includes(VALUE));
    // A value on the command line is a usage error: there is no such argument.
    const argv = await desk.orch(['secret', 'set', '--tenant', tenant, 'OTHER', 'value-in-argv']);
    assert.equal(argv.code, 2);

    const list = await desk.orch(['secret', 'list', '--tenant', tenant, '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(!list.stdout.includes(VALUE));
    assert.deepEqual((JSON.parse(list.stdout) as Array<{ name: string; source: string }>).filter((s) => s.source === 'tenant').map((s) => s.name), ['DB_PASSWORD']);

    assert.equal(await desk.store.secrets(tenant).get('DB_PASSWORD'), VALUE);
    // Every byte under ORCH_HOME (tenant database, WAL, identity.json): the value is nowhere in clear.
    const needle = Buffer.from(VALUE);
    for (const file of filesUnder(desk.home)) assert.ok(!fs.readFileSync(file).includes(needle), `${file} holds the secret in clear`);
    // The audit row names the secret and says nothing of its value.
    const rows = [...desk.store.auditLog(tenant).rows({ action: 'set_secret' })];
    assert.deepEqual(rows.map((r) => r.subject), ['DB_PASSWORD']);
    assert.ok(!JSON.stringify(rows).includes(VALUE));

    const del = await desk.orch(['secret', 'delete', '--tenant', tenant, 'GONE']);
    assert.equal(del.code, 1);
  });
});

describe('runCommand resolves and masks', () => {
  const acts = () => createActivities({ registry: { loadDag: () => ({ source: {}, hash: '' }) }, prices: () => DEFAULT_PRICES, claude: () => ({}), audit: desk.store, commands: echo });
  const req = (argv: string[]): CommandRequest => ({ tenant, agent: 'web-1', argv, timeoutSeconds: 5, commandId: uid('cmd') });

  test('the agent gets the value; stdout and stderr come back masked; env convention secrets too', async () => {
    await desk.store.secrets(tenant).set('API_TOKEN', Buffer.from(VALUE), 'tester');
    // What the workflow sends: params rendered, secret references kept (keepSecrets).
    const argv = ['curl', '-H', renderTemplate('Authorization: Bearer ${secrets.API_TOKEN}', { params: {}, keepSecrets: true }), '${secrets.TOKEN_DEPLOY}'];
    assert.ok(!argv.join(' ').includes(VALUE));
    const result = await inActivity(acts().runCommand, req(argv));
    assert.deepEqual(seen.at(-1)!.argv, ['curl', '-H', `Authorization: Bearer ${VALUE}`, ENV_VALUE]);
    assert.equal(result.stdout, 'curl -H Authorization: Bearer *** ***');
    assert.equal(result.stderr, 'err: curl -H Authorization: Bearer *** ***');
  });

  test('errors are masked too, and keep their type', async () => {
    await assert.rejects(inActivity(acts().runCommand, req(['fail', '${secrets.API_TOKEN}'])), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'command_not_allowed');
      assert.ok(!err.message.includes(VALUE) && !JSON.stringify(err.details).includes(VALUE));
      assert.match(err.message, /\*\*\*/);
      return true;
    });
  });

  test('a param value naming a secret stays literal text, and an unknown secret fails before anything runs', async () => {
    const argv = [renderTemplate('echo ${params.p}', { params: { p: '${secrets.API_TOKEN}' }, keepSecrets: true })];
    const result = await inActivity(acts().runCommand, req(argv));
    assert.equal(seen.at(-1)!.argv[0], 'echo ${secrets.API_TOKEN}');
    assert.equal(result.stdout, 'echo ${secrets.API_TOKEN}');
    const before = seen.length;
    await assert.rejects(inActivity(acts().runCommand, req(['echo', '${secrets.NOPE}'])), (err: unknown) => err instanceof ApplicationFailure && err.type === 'secret_missing');
    assert.equal(seen.length, before);
  });
});

describe('secrets never go to Claude', () => {
  test('a DAG with ${secrets.X} in a claude prompt does not compile', () => {
    const result = compileDag(
      {
        name: 'leaky',
        version: 1,
        cost_cap_usd: 0.1,
        nodes: [{ id: 'ask', type: 'claude', model: 'claude-haiku-4-5', max_tokens: 10, prompt: 'the password is ${secrets.DB_PASSWORD}' }],
      },
      { knownModels: Object.keys(DEFAULT_PRICES) },
    );
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.issues.some((i) => i.code === 'secret_in_prompt'));
  });
});
