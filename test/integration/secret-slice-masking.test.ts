/**
 * A slice of a secret (any 8 or more of its characters, not the whole value) is masked everywhere a run's output
 * goes: the activity result and the failure in Temporal's history, the node summaries in `status`, and the
 * tenant's audit rows. Real path: a real dev server, a real worker with the Orch plugin, and a real Go agent
 * (read-only tier) reached over sealed envelopes, which runs `grep` on a file holding the tenant's secret.
 *
 * A canary printed beside the slice keeps the test honest: it IS found in the history, the summaries and the
 * audit row, so those are searched as the plain text they are.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from '../support/assert';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityDeps } from '../../activities';
import type { SecretSource } from '../../activities/secrets';
import { eventually, startTestWorker, tempHome, uid, type TestWorker } from '../support/harness';
import { startPipeAgent, type PipeAgent } from '../support/stdio-agent';
import { statusQuery } from '../../workflows/shared';

const TENANT = 'engine-test';
const hex = (n: number) => randomBytes(n).toString('hex');
/** The secret; the commands print only a slice of its middle: 8 hex digits, a dash, 4 more (13 characters). */
const SECRET = `sv-${hex(4)}-${hex(4)}-${hex(4)}`;
const SLICE = SECRET.slice(3, 16);
const CANARY = `canary-${hex(6)}`;
let pipe: PipeAgent;
let w: TestWorker;
let dataFile: string;

beforeAll(async () => {
  const home = tempHome();
  // A file on the server that holds the secret (a config file, an env file), which a command greps.
  const dataDir = fs.mkdtempSync(path.join(path.dirname(home), 'orch-slice-data-'));
  dataFile = path.join(dataDir, 'app.env');
  fs.writeFileSync(dataFile, `${CANARY} API_KEY=${SECRET}\n`);
  pipe = await startPipeAgent({ home, tenants: [TENANT], allow: ['grep'], tier: 'read-only' });
  const secrets: SecretSource = { secretValues: async () => new Map([['API_KEY', SECRET]]) };
  w = await startTestWorker({ commands: pipe.transport, secrets } as Partial<ActivityDeps>, home);
});

afterAll(async () => {
  await w?.stop();
  await pipe?.close();
  if (dataFile) fs.rmSync(path.dirname(dataFile), { recursive: true, force: true });
});

test('a command that prints a slice of a secret: masked in history, node summaries and audit rows', async () => {
  // -o prints only the matches: the canary and 13 characters from the middle of the secret. The failing node
  // also names a missing file (-s keeps grep quiet about it), so it exits 2 with the same stdout.
  const grep = ['grep', '-o', '-h', '-s', '-E', '-e', 'canary-[0-9a-f]+', '-e', '[0-9a-f]{8}-[0-9a-f]{4}'];
  const dag = {
    name: 'slice-of-a-secret',
    version: 1,
    cost_cap_usd: 1,
    nodes: [
      { id: 'reads', type: 'command', agent: 'web-1', argv: [...grep, dataFile] },
      { id: 'fails', type: 'command', agent: 'web-1', needs: ['reads'], argv: [...grep, dataFile, `${dataFile}.missing`] },
    ],
  };
  const workflowId = uid('slice');
  const handle = await w.client.workflow.start('runDag', { taskQueue: w.taskQueue, workflowId, args: [{ tenant: TENANT, dag, params: {} }] });
  await assert.rejects(handle.result(), (err: unknown) => err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure && err.cause.type === 'command_failed');

  // History: the activity results and the failure.
  const history = JSON.stringify(await handle.fetchHistory());
  const payloads = [...history.matchAll(/"data":"([A-Za-z0-9+/=]*)"/g)].map((m) => Buffer.from(m[1]!, 'base64').toString('utf8')).join('\n');
  const failures = [...history.matchAll(/"message":"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join('\n');
  const everything = `${history}\n${payloads}`;
  assert.ok(payloads.includes(CANARY), 'the canary (control) is in the history payloads');
  assert.ok(failures.includes(CANARY) && failures.includes('exited with code 2'), 'the failure message (control) names the output');
  assert.ok(!everything.includes(SLICE), 'a slice of the secret is in the history');
  assert.ok(!everything.includes(SECRET.slice(3, 11)), '8 characters of the secret are in the history');
  assert.match(payloads, /\*\*\*/);

  // Node summaries.
  const status = await handle.query(statusQuery);
  const summaries = status.nodes.map((n) => n.summary ?? '').join('\n');
  assert.ok(summaries.includes(CANARY), summaries);
  assert.ok(!summaries.includes(SLICE), summaries);
  assert.match(summaries, /\*\*\*/);

  // Audit rows of this run (run_finished carries the failure).
  const rows = await eventually(async () => {
    const mine = [...w.store.auditLog(TENANT).rows()].filter((r) => JSON.stringify(r.details).includes(workflowId));
    return mine.some((r) => r.action === 'run_finished') ? mine : undefined;
  });
  const audit = JSON.stringify(rows);
  assert.ok(audit.includes(CANARY), 'the failure in the run_finished row (control)');
  assert.ok(!audit.includes(SLICE) && !audit.includes(SECRET.slice(3, 11)), audit);
});
