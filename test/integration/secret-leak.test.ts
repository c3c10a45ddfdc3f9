/**
 * A tenant secret used by a command leaks nowhere (issue 4): the real `orch up` (dev server with its SQLite
 * database under ORCH_HOME, worker, local relay and agent) as a child process, the secret set through
 * `orch secret set` from stdin, a registered DAG whose command echoes `${secrets.TOKEN}` on the local agent, run
 * with `orch run --follow`. The node's output shows `token=***`; the audit rows name the secret only. Then, with
 * Orch stopped, every byte of every file under ORCH_HOME (Temporal's database and WAL, tenant databases, relay and
 * agent state, logs) and everything the processes printed is searched for the value raw, as hex and as base64.
 * The only hit allowed is the agent's own ledger (the unmasked result it keeps for retries; see the test).
 *
 * Controls keep the scanner honest: a canary in the run's workflow id IS found in Temporal's database (so that
 * database is searchable as raw bytes and the run really is there; its payloads are encrypted by the payload codec,
 * test/integration/payload-codec.test.ts), and files holding the value raw, as hex and as base64 at each alignment
 * are found.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeDesktopIdentity } from '../../desktop-worker/identity';
import { eventually, freePort, uid } from '../support/harness';
import { runOrch } from '../support/orch-process';

const SECRET = `sv-${randomBytes(30).toString('base64url')}`;
const CANARY = `canary-${randomBytes(12).toString('hex')}`;

let dir: string;
let home: string;
let env: NodeJS.ProcessEnv;
const service = uid('orch-test-secret-leak');
/** Everything the CLI processes printed, scanned with the files. */
const printed: string[] = [];


function orch(args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return runOrch(args, env, input).then((r) => {
    printed.push(r.stdout, r.stderr);
    return r;
  });
}

/**
 * The byte strings that betray `value`: itself (UTF-8 and UTF-16LE), its hex in both cases, and its base64
 * (standard and URL alphabets) at each of the three alignments it can have in a longer encoded stream. For base64
 * only the part that depends on the value alone is kept: the first group (which mixes in preceding bytes) and the
 * last (padding, following bytes) are cut.
 */
function needles(value: string): Array<{ encoding: string; bytes: Buffer }> {
  const raw = Buffer.from(value, 'utf8');
  const out: Array<{ encoding: string; bytes: Buffer }> = [
    { encoding: 'raw', bytes: raw },
    { encoding: 'utf16le', bytes: Buffer.from(value, 'utf16le') },
    { encoding: 'hex', bytes: Buffer.from(raw.toString('hex')) },
    { encoding: 'HEX', bytes: Buffer.from(raw.toString('hex').toUpperCase()) },
  ];
  for (let offset = 0; offset < 3; offset++) {
    const b64 = Buffer.concat([Buffer.alloc(offset), raw]).toString('base64').slice(4, -4);
    out.push({ encoding: `base64@${offset}`, bytes: Buffer.from(b64) });
    out.push({ encoding: `base64url@${offset}`, bytes: Buffer.from(b64.replace(/\+/g, '-').replace(/\//g, '_')) });
  }
  return out;
}

function filesUnder(root: string): string[] {
  return fs
    .readdirSync(root, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath, d.name));
}

/** Every (file, encoding) where `value` shows. */
function scan(files: string[], value: string): Array<{ file: string; encoding: string }> {
  const hits: Array<{ file: string; encoding: string }> = [];
  const wanted = needles(value);
  for (const file of files) {
    const bytes = fs.readFileSync(file);
    for (const n of wanted) if (bytes.includes(n.bytes)) hits.push({ file, encoding: n.encoding });
  }
  return hits;
}

let up: { child: ChildProcess; exited: Promise<number>; logFile: string } | undefined;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-secret-leak-'));
  home = path.join(dir, 'home');
  env = {
    ...process.env,
    ORCH_HOME: home,
    ORCH_KEYCHAIN_SERVICE: service,
    ORCH_TEMPORAL_PORT: String(await freePort()),
    ORCH_TEMPORAL_UI_PORT: String(await freePort()),
    ORCH_RELAY_PORT: String(await freePort()),
    TEMPORAL_ADDRESS: '',
  };
  const logFile = path.join(dir, 'orch-up.log');
  const log = fs.openSync(logFile, 'w', 0o600);
  const child = spawn(process.execPath, ['bin/orch.mjs', 'up'], { env, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  up = { child, exited, logFile };
  await eventually(async () => fs.readFileSync(logFile, 'utf8').includes('Orch is up.') || child.exitCode !== null, 120_000, '`orch up` to be up');
  assert.equal(child.exitCode, null, `orch up exited early:\n${fs.readFileSync(logFile, 'utf8')}`);
});

afterAll(async () => {
  if (up && up.child.exitCode === null) {
    up.child.kill('SIGINT');
    await up.exited;
  }
  await removeDesktopIdentity({ home, service }).catch(() => {});
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a secret used by a command is in no file Orch writes, no log, no audit row and no output', async () => {
  const set = await orch(['secret', 'set', '--tenant', 'demo', 'TOKEN'], `${SECRET}\n`);
  assert.equal(set.code, 0, set.stderr);

  const dagFile = path.join(dir, 'leak-check.json');
  fs.writeFileSync(
    dagFile,
    JSON.stringify({
      name: 'leak-check',
      version: 1,
      cost_cap_usd: 0.01,
      params: { canary: { type: 'string', pattern: '[a-z0-9-]+' } },
      nodes: [
        { id: 'use', type: 'command', agent: 'local', argv: ['echo', 'token=${secrets.TOKEN}'] },
        { id: 'canary', type: 'command', agent: 'local', argv: ['echo', 'canary=${params.canary}'] },
      ],
    }),
  );
  const reg = await orch(['dag', 'register', dagFile, '--tenant', 'demo']);
  assert.equal(reg.code, 0, reg.stderr);

  const workflowId = `${uid('leak')}-${CANARY}`;
  const run = await orch(['run', 'leak-check', '--tenant', 'demo', '--param', `canary=${CANARY}`, '--id', workflowId, '--follow']);
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /use: succeeded — exit 0: token=\*\*\*/);

  const status = await orch(['status', workflowId, '--json']);
  assert.equal(status.code, 0, status.stderr);
  const parsed = JSON.parse(status.stdout) as { status: { nodes: Array<{ id: string; summary?: string }> } };
  const use = parsed.status.nodes.find((n) => n.id === 'use');
  assert.equal(use?.summary, 'exit 0: token=***\n', 'the agent echoed the value, the activity masked it');

  // The audit rows of the run name the secret (the argv template), never its value.
  const rows = await orch(['audit', 'log', '--tenant', 'demo', '--run', workflowId, '--json']);
  assert.equal(rows.code, 0, rows.stderr);
  const sent = (JSON.parse(rows.stdout) as Array<{ action: string; subject: string; details: { argv?: string[] } }>).find(
    (r) => r.action === 'command_sent' && r.subject === 'use',
  );
  assert.deepEqual(sent?.details.argv, ['echo', 'token=${secrets.TOKEN}']);
  const secretRows = await orch(['audit', 'log', '--tenant', 'demo', '--action', 'set_secret', '--json']);
  assert.deepEqual((JSON.parse(secretRows.stdout) as Array<{ subject: string }>).map((r) => r.subject), ['TOKEN']);

  // Stop Orch, so every database is closed and its WAL is where it leaves it.
  up!.child.kill('SIGINT');
  assert.equal(await up!.exited, 0, fs.readFileSync(up!.logFile, 'utf8'));

  const printedFile = path.join(dir, 'cli-output.txt');
  fs.writeFileSync(printedFile, printed.join('\n'));
  const files = [...filesUnder(home), up!.logFile, printedFile];
  const temporalDb = files.filter((f) => f.startsWith(path.join(home, 'temporal', 'dev.db')));
  assert.ok(temporalDb.length > 0, `Temporal's database is under ORCH_HOME: ${files.join(', ')}`);
  for (const part of ['tenants', 'relay', 'agent', 'logs']) {
    assert.ok(files.some((f) => f.startsWith(path.join(home, part) + path.sep)), `${part} is among the files scanned`);
  }

  // Controls: the run's history is in the Temporal files as searchable bytes, and each encoding is found.
  assert.ok(scan(temporalDb, CANARY).length > 0, 'the canary (in the workflow id, which Temporal keeps plain) is found in Temporal\'s database');
  const controls = path.join(dir, 'controls');
  fs.mkdirSync(controls);
  const raw = Buffer.from(SECRET);
  const planted: Record<string, Buffer> = {
    raw: Buffer.concat([Buffer.from('x'), raw, Buffer.from('y')]),
    hex: Buffer.from(`00${raw.toString('hex')}ff`),
    b64a: Buffer.from(Buffer.concat([Buffer.from('k'), raw]).toString('base64')),
    b64b: Buffer.from(Buffer.concat([Buffer.from('ke'), raw, Buffer.from('z')]).toString('base64url')),
  };
  for (const [name, bytes] of Object.entries(planted)) fs.writeFileSync(path.join(controls, name), bytes);
  const controlHits = new Set(scan(filesUnder(controls), SECRET).map((h) => path.basename(h.file)));
  assert.deepEqual([...controlHits].sort(), Object.keys(planted).sort(), 'the scanner finds the value in every planted encoding');
  fs.rmSync(controls, { recursive: true });

  // The one place the value is expected: the agent's ledger keeps each finished command's result verbatim (the
  // echo printed the value), so a retried activity gets it byte for byte; masking is the desktop's job, done
  // before the result enters history. In a real deployment that file is on the managed server, which is handed
  // the secret to run the command anyway; it is private to the agent (0600). Everything else must be clean.
  const ledger = path.join(home, 'agent', 'ledger.db');
  const hits = scan(files, SECRET);
  const onServer = hits.filter((h) => h.file === ledger);
  const leaks = hits.filter((h) => !onServer.includes(h));
  assert.deepEqual(leaks, [], `the secret value was found: ${JSON.stringify(leaks)}`);
  for (const h of onServer) {
    if (process.platform !== 'win32') assert.equal(fs.statSync(h.file).mode & 0o777, 0o600, `${h.file} is private to the agent`);
    process.stdout.write(`# known: the agent's ledger holds the command's unmasked output (${path.basename(h.file)}, ${h.encoding})\n`);
  }
});
