/**
 * Nothing in Temporal's database in plaintext (issue 9). The real `orch up` (its dev server on a SQLite file under
 * ORCH_HOME, its worker, relay and read-only local Go agent, the fake Anthropic server) and the real `orch` CLI
 * run DAGs with a marker in their params, a command whose output is a marker not present in any input (echo -e of
 * hex escapes), a Claude answer, an approval signal's comment and a failing command's message. Then:
 * - the dev server's SQLite file and its WAL hold none of the markers, raw, hex or base64; controls: workflows
 *   started by a plain client (no codec) with a marker, its hex and its base64 as input, which the same scan must
 *   find, so the scan can fail;
 * - `temporal workflow show` prints ciphertext (binary/encrypted, no marker), and with `--codec-endpoint` pointed
 *   at the codec server `orch up` runs, the markers decoded: they really are in those histories;
 * - the codec server refuses foreign, `null` and suffix origins and a missing token;
 * - the encrypted histories replay against the production workflows with the codec on.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { startFakeAnthropic, type FakeAnthropic } from '../support/anthropic';
import { eventually, freePort, tempHome, uid } from '../support/harness';
import { resolveTemporalCli } from '../../infra/temporal-cli';
import { temporalDbFile } from '../../infra/paths';
import { ephemeralLow } from '../../infra/ports';
import { WORKFLOWS_PATH } from '../../desktop-worker/plugin';
import { encryptedDataConverter, loadPayloadCodec } from '../../desktop-worker/payload-codec';
import { runOrch } from '../support/orch-process';

let anthropic: FakeAnthropic;
let up: { child: ChildProcess; output: () => string; exited: Promise<number> } | undefined;

beforeAll(async () => {
  anthropic = await startFakeAnthropic();
});
afterAll(async () => {
  if (up && up.child.exitCode === null) {
    up.child.kill('SIGINT');
    await up.exited;
  }
  await anthropic?.stop();
});


function orch(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return runOrch(args, { ...process.env, ...env });
}

/** Every form a marker could take in the database: raw, hex (both cases), base64 and base64url at each alignment. */
function forms(marker: string): string[] {
  const bytes = Buffer.from(marker, 'utf8');
  const out = [marker, bytes.toString('hex'), bytes.toString('hex').toUpperCase()];
  for (const k of [0, 1, 2]) {
    const padded = Buffer.concat([Buffer.alloc(k, 0x41), bytes]);
    // Characters mixing prefix bits, and the last 4 (mixing what follows), are left out.
    const start = [0, 2, 3][k]!;
    for (const enc of [padded.toString('base64'), padded.toString('base64url')]) out.push(enc.slice(start, enc.length - 4));
  }
  return out;
}

/** Which of the markers appear, in which form, in the files (read as bytes). */
function scan(files: string[], markers: Record<string, string>): string[] {
  const found: string[] = [];
  for (const file of files) {
    if (!fs.existsSync(file)) continue;
    const bytes = fs.readFileSync(file);
    for (const [name, marker] of Object.entries(markers)) {
      for (const form of forms(marker)) if (bytes.includes(Buffer.from(form, 'latin1'))) found.push(`${name} as ${JSON.stringify(form)} in ${path.basename(file)}`);
    }
  }
  return found;
}

const r = uid('m').replace(/[^A-Za-z0-9]/g, '').slice(-10);
const MARKERS = {
  param: `PARAMMARK-${r}-q81`,
  output: `OUTMARK-${r}-z52`,
  answer: `fake reply to: CLAUDEQ-${r}`,
  signal: `SIGNALMARK-${r}-w07`,
  failure: `FAILMARK-${r}: No such file`,
};
const hexEscapes = (s: string) => [...Buffer.from(s)].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');

const DAG = `name: codec-markers
version: 1
cost_cap_usd: 0.05
params:
  marker:
    type: string
    pattern: "[A-Za-z0-9-]{1,64}"
nodes:
  - id: out
    type: command
    agent: local
    argv: [echo, -e, '${hexEscapes(MARKERS.output)}']
    timeout_seconds: 30
  - id: ask
    type: claude
    needs: [out]
    model: claude-haiku-4-5
    max_tokens: 100
    prompt: "CLAUDEQ-${r} about \${params.marker}: \${nodes.out.output}"
  - id: approve
    type: approval_gate
    needs: [ask]
    message: "go on with \${params.marker}?"
  - id: after
    type: claude
    needs: [approve]
    model: claude-haiku-4-5
    max_tokens: 50
    prompt: "the gate was approved"
`;

const FAILING_DAG = `name: codec-failure
version: 1
cost_cap_usd: 0.01
nodes:
  - id: missing
    type: command
    agent: local
    argv: [df, -h, '/FAILMARK-${r}']
    timeout_seconds: 30
`;

test('orch up with the codec: no marker in the SQLite file or WAL; temporal workflow show is ciphertext, decoded only through the codec server; replay passes', async () => {
  const home = tempHome();
  const port = await freePort();
  const uiPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ORCH_HOME: home,
    ORCH_TEMPORAL_PORT: String(port),
    ORCH_TEMPORAL_UI_PORT: String(uiPort),
    ORCH_RELAY_PORT: String(await freePort()),
    ANTHROPIC_API_KEY: anthropic.apiKey,
    ANTHROPIC_BASE_URL: anthropic.baseURL,
    TEMPORAL_ADDRESS: '',
  };
  const child = spawn(process.execPath, ['bin/orch.mjs', 'up'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  up = { child, output: () => log, exited: new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1))) };
  await eventually(async () => log.includes('Orch is up.') || child.exitCode !== null, 180_000, '`orch up` to be up');
  assert.equal(child.exitCode, null, `orch up exited early:\n${log}`);
  assert.match(log, /created the key that encrypts what Orch stores in Temporal/);
  assert.match(log, /codec server\s+http:\/\/127\.0\.0\.1:\d+/);
  const codecInfo = JSON.parse(fs.readFileSync(path.join(home, 'run', 'codec-server.json'), 'utf8')) as { url: string; uiEndpoint: string; token: string; namespace: string };
  assert.equal(fs.statSync(path.join(home, 'run', 'codec-server.json')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(home, 'run', 'temporal-http.json')).mode & 0o777, 0o600, 'orch up published its dev server\'s HTTP API port');
  // Picked below the ephemeral range (infra/ports.ts): a bind(0) by the dev server itself could not have taken it first.
  assert.ok((JSON.parse(fs.readFileSync(path.join(home, 'run', 'temporal-http.json'), 'utf8')) as { httpPort: number }).httpPort < ephemeralLow());

  const keys = await orch(['keys', 'list', '--json'], env);
  assert.equal(keys.code, 0, keys.stderr);
  assert.equal((JSON.parse(keys.stdout) as Array<{ current: boolean }>).filter((k) => k.current).length, 1);

  const dagFile = path.join(home, 'codec-markers.yaml');
  fs.writeFileSync(dagFile, DAG);
  const failingFile = path.join(home, 'codec-failure.yaml');
  fs.writeFileSync(failingFile, FAILING_DAG);
  for (const file of [dagFile, failingFile]) {
    const reg = await orch(['dag', 'register', file, '--tenant', 'demo'], env);
    assert.equal(reg.code, 0, reg.stderr);
  }

  // A run with a marker in its params, a command output, a Claude answer and a signal with a comment.
  const okId = uid('codec-ok');
  const run = await orch(['run', 'codec-markers', '--tenant', 'demo', '--param', `marker=${MARKERS.param}`, '--id', okId], env);
  assert.equal(run.code, 0, run.stderr);
  await eventually(async () => {
    const s = await orch(['status', okId, '--json'], env);
    return s.code === 0 && JSON.parse(s.stdout).status?.pendingGates?.length === 1;
  }, 90_000, 'the run to wait at its gate');
  const approve = await orch(['approve', okId, 'approve', '--comment', MARKERS.signal], env);
  assert.equal(approve.code, 0, approve.stderr);
  let last = '';
  const done = await eventually(async () => {
    const s = await orch(['status', okId, '--json'], env);
    last = `${s.stdout}\n${s.stderr}`;
    const parsed = s.code === 0 ? JSON.parse(s.stdout) : undefined;
    return parsed?.temporalStatus === 'COMPLETED' || parsed?.temporalStatus === 'FAILED' ? parsed : undefined;
  }, 90_000, 'the run to end').catch((err: Error) => {
    throw new Error(`${err.message}\nlast status: ${last}\norch up:\n${log.slice(-4000)}`);
  });
  assert.equal(done.temporalStatus, 'COMPLETED', JSON.stringify(done));
  // The CLI decodes through the codec: what it shows is the plaintext.
  const out = (done.status.nodes as Array<{ id: string; summary?: string }>).find((n) => n.id === 'out');
  assert.match(out?.summary ?? '', new RegExp(MARKERS.output));
  const calls = (await anthropic.messages()).filter((m) => m.prompt.includes(`CLAUDEQ-${r}`));
  assert.equal(calls.length, 1);
  assert.match(calls[0]!.prompt, new RegExp(MARKERS.param));
  assert.ok(calls[0]!.prompt.startsWith(`CLAUDEQ-${r}`), 'the fake answers "fake reply to: " + the prompt, so the answer marker is in the answer');

  // A run that fails: the failure message carries the command's error.
  const failId = uid('codec-fail');
  const failRun = await orch(['run', 'codec-failure', '--tenant', 'demo', '--id', failId, '--follow'], env);
  assert.equal(failRun.code, 1, `${failRun.stdout}\n${failRun.stderr}`);
  assert.match(failRun.stdout + failRun.stderr, new RegExp(`FAILMARK-${r}`), 'the CLI shows the decoded failure');

  // Controls: a plain client (no codec) plants a marker, its hex and its base64 as workflow input; the scan must
  // find each, so a plaintext payload in these files would have been found.
  const controls = { raw: `CONTROLRAW-${r}-a1`, hex: `CONTROLHEX-${r}-b2`, b64: `CONTROLB64-${r}-c3` };
  const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
  try {
    const plain = new Client({ connection, namespace: codecInfo.namespace });
    const planted = [controls.raw, Buffer.from(controls.hex).toString('hex'), `x${Buffer.from(controls.b64).toString('base64')}`];
    for (const [i, arg] of planted.entries()) {
      const h = await plain.workflow.start('no-such-workflow', { taskQueue: uid('nobody'), workflowId: uid(`control-${i}`), args: [arg] });
      await h.terminate('control');
    }
  } finally {
    await connection.close();
  }
  const dbFile = temporalDbFile(home);
  const files = [dbFile, `${dbFile}-wal`];
  assert.ok(fs.existsSync(dbFile), `the dev server's database ${dbFile}`);
  await eventually(async () => {
    const found = scan(files, controls);
    return ['raw', 'hex', 'b64'].every((n) => found.some((f) => f.startsWith(`${n} as`)));
  }, 30_000, 'the scan to find all three planted controls');
  assert.deepEqual(scan(files, MARKERS), [], 'no marker in the database while Orch runs');

  // temporal workflow show: ciphertext without the codec server; the markers with it.
  const cli = await resolveTemporalCli({ log: () => undefined });
  const show = (id: string, extra: string[] = []) => {
    const res = spawnSync(cli.path, ['workflow', 'show', '-w', id, '--address', `127.0.0.1:${port}`, '--namespace', codecInfo.namespace, '-o', 'json', ...extra], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    return res.stdout;
  };
  for (const id of [okId, failId]) {
    const raw = show(id);
    assert.match(raw, new RegExp(Buffer.from('binary/encrypted').toString('base64')));
    for (const [name, marker] of Object.entries(MARKERS)) for (const form of forms(marker)) assert.ok(!raw.includes(form), `${name} in temporal workflow show of ${id}`);
  }
  const decoded = (id: string) => show(id, ['--codec-endpoint', codecInfo.url, '--codec-auth', `Bearer ${codecInfo.token}`, '--codec-header', `X-Namespace=${codecInfo.namespace}`]);
  // `-o json` prints each decoded payload's data as base64 of its JSON: the markers appear in one of their forms.
  const has = (text: string, marker: string) => forms(marker).some((f) => text.includes(f));
  const okDecoded = decoded(okId);
  for (const name of ['param', 'output', 'signal', 'answer'] as const) assert.ok(has(okDecoded, MARKERS[name]), `${name} decoded by the codec server`);
  assert.ok(has(decoded(failId), MARKERS.failure), 'the failure decoded');

  // The codec server `orch up` runs: the UI's exact origin only, and only with its token.
  const body = JSON.stringify({ payloads: [] });
  const post = (url: string, headers: Record<string, string>) =>
    fetch(url, { method: 'POST', body, headers: { 'Content-Type': 'application/json', 'X-Namespace': codecInfo.namespace, ...headers } });
  const uiOrigin = `http://127.0.0.1:${uiPort}`;
  assert.equal((await post(`${codecInfo.uiEndpoint}/decode`, { Origin: uiOrigin })).status, 200);
  for (const origin of ['https://evil.example', 'null', `http://127.0.0.1:${uiPort}.evil.example`, `http://127.0.0.1:${port}`]) {
    const res = await post(`${codecInfo.uiEndpoint}/decode`, { Origin: origin });
    assert.equal(res.status, 403, origin);
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  }
  assert.equal((await post(`${codecInfo.url}/decode`, { Origin: uiOrigin })).status, 401, 'no token');
  const settings = (await (await fetch(`http://127.0.0.1:${uiPort}/api/v1/settings`)).json()) as { Codec?: { Endpoint?: string } };
  assert.equal(settings.Codec?.Endpoint, codecInfo.uiEndpoint, 'the UI is configured with the codec endpoint');

  // Replay of the encrypted histories against the production workflows, with the codec on.
  const codec = await loadPayloadCodec(home);
  const replayConnection = await Connection.connect({ address: `127.0.0.1:${port}` });
  try {
    const client = new Client({ connection: replayConnection, namespace: codecInfo.namespace, dataConverter: encryptedDataConverter(codec) });
    const histories = [];
    for (const id of [okId, failId]) histories.push({ workflowId: id, history: await client.workflow.getHandle(id).fetchHistory() });
    for (const { workflowId, history } of histories) {
      await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH, dataConverter: encryptedDataConverter(codec) }, history, workflowId);
    }
  } finally {
    await replayConnection.close();
  }

  // After a clean stop (the WAL checkpointed into the file), still nothing.
  child.kill('SIGINT');
  assert.equal(await up.exited, 0, log);
  assert.ok(!fs.existsSync(path.join(home, 'run', 'codec-server.json')), 'the token file is removed at stop');
  assert.ok(!fs.existsSync(path.join(home, 'run', 'temporal-http.json')), 'the HTTP API port file is removed at stop');
  assert.deepEqual(scan(files, MARKERS), [], 'no marker in the database after the stop');
  assert.equal(scan(files, controls).length > 0, true);
}, 600_000);
