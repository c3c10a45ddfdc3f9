/**
 * Audit export, shipping and verification through the CLI, as real processes: `orch audit ...` in its own
 * process, a real desktop identity in the OS keychain (run inside infra/ci-keyring.sh, as `npm test` does), and
 * one local HTTP server process speaking the Splunk HEC, Datadog and Sumo Logic intake APIs.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { canonicalize } from '../../protocol/canonical-json';
import { FAKE_DATADOG_KEY, FAKE_SPLUNK_TOKEN, FAKE_SUMO_CODE, startFakeSiem } from '../support/fake-siem';
import { useDesktopHome } from '../support/desktop-home';
import { uid } from '../support/harness';
import { ORCH_BIN } from '../support/orch-process';

const desk = useDesktopHome('orch-test-audit', { siem: true });

const publicKeyHex = () => desk.identity.sign.publicKey.toString('hex');

function newTenant(rows: number): string {
  const tenant = uid('aud');
  desk.store.create(tenant, 'tester');
  const log = desk.store.auditLog(tenant);
  for (let i = 0; i < rows; i++) log.append({ actor: 'tester', action: 'command_sent', subject: `node-${i}`, details: { i, note: 'héllo "quoted"' } });
  return tenant;
}

/** Writes what a SIEM received back out as lines, in any order it likes, for verify-export. */
function receivedFile(events: unknown[], name: string): string {
  const file = path.join(desk.home, `${name}.received`);
  fs.writeFileSync(file, events.map((e) => canonicalize(e)).reverse().join('\n') + '\n');
  return file;
}

describe('orch audit export', () => {
  test('the same range exported again is byte-identical, and the copy verifies on its own', async () => {
    const tenant = newTenant(40);
    const f1 = path.join(desk.home, `${tenant}-1.jsonl`);
    const first = await desk.orch(['audit', 'export', '--tenant', tenant, '--format', 'jsonl', '--out', f1, '--json']);
    assert.equal(first.code, 0, first.stderr);
    const summary = JSON.parse(first.stdout) as { sinceSeq: number; untilSeq: number; exportSeq: number; checkpoints: number };
    // Without --until, the export's own row is the last one exported, and its end is signed.
    assert.equal(summary.untilSeq, summary.exportSeq);
    const lines = fs.readFileSync(f1, 'utf8').trim().split('\n');
    assert.equal(JSON.parse(lines[0]!).kind, 'orch.audit.export');
    const last = JSON.parse(lines[lines.length - 1]!) as { kind: string; seq: number };
    assert.deepEqual([last.kind, last.seq], ['orch.audit.checkpoint', summary.untilSeq]);
    assert.equal((fs.statSync(f1).mode & 0o777).toString(8), '600');

    // More activity, other exports (one ending inside the range): the range still exports to the same bytes.
    desk.store.auditLog(tenant).append({ actor: 'tester', action: 'approve_gate', subject: 'g', details: {} });
    assert.equal((await desk.orch(['audit', 'export', '--tenant', tenant, '--format', 'jsonl', '--until', '10', '--out', path.join(desk.home, 'mid.jsonl')])).code, 0);
    for (const format of ['jsonl', 'splunk-hec']) {
      const a = path.join(desk.home, `${tenant}-${format}-a`);
      const b = path.join(desk.home, `${tenant}-${format}-b`);
      if (format !== 'jsonl') assert.equal((await desk.orch(['audit', 'export', '--tenant', tenant, '--format', format, '--since', '1', '--until', String(summary.untilSeq), '--out', a])).code, 0);
      const again = await desk.orch(['audit', 'export', '--tenant', tenant, '--format', format, '--since', '1', '--until', String(summary.untilSeq), '--out', b]);
      assert.equal(again.code, 0, again.stderr);
      assert.ok(fs.readFileSync(format === 'jsonl' ? f1 : a).equals(fs.readFileSync(b)), `${format} re-export differs`);
    }

    const verified = await desk.orch(['audit', 'verify-export', f1, '--key', publicKeyHex(), '--json']);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.equal((JSON.parse(verified.stdout) as { rows: number }).rows, summary.untilSeq);

    // A copy edited after export fails on its own, naming the row.
    const edited = lines.map((l) => (l.includes('"seq":7,') && l.includes('orch.audit.row') ? l.replace(/"subject":"node-\d+"/, '"subject":"node-X"') : l));
    const fe = path.join(desk.home, `${tenant}-edited.jsonl`);
    fs.writeFileSync(fe, edited.join('\n') + '\n');
    const bad = await desk.orch(['audit', 'verify-export', fe, '--key', publicKeyHex(), '--json']);
    assert.equal(bad.code, 1);
    assert.deepEqual(
      (({ firstBadSeq, problem }) => ({ firstBadSeq, problem }))(JSON.parse(bad.stdout) as { firstBadSeq: number; problem: string }),
      { firstBadSeq: 7, problem: 'edited' },
    );
    // And under another key nothing verifies.
    const foreign = await desk.orch(['audit', 'verify-export', f1, '--key', 'ab'.repeat(32), '--json']);
    assert.equal(foreign.code, 1);
  });
});

describe('orch audit verify', () => {
  test('an edited or a deleted row in the tenant database is found, with its seq', async () => {
    for (const [tamper, problem] of [
      ["UPDATE audit SET details = '{\"i\":99,\"note\":\"x\"}' WHERE seq = 12", 'edited'],
      ['DELETE FROM audit WHERE seq = 12', 'deleted'],
    ] as const) {
      const tenant = newTenant(30);
      const ok = await desk.orch(['audit', 'verify', '--tenant', tenant, '--json']);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.equal((JSON.parse(ok.stdout) as { count: number }).count, 31);
      const raw = new Database(path.join(desk.home, 'tenants', `${tenant}.sqlite`));
      raw.exec(tamper);
      raw.close();
      const res = await desk.orch(['audit', 'verify', '--tenant', tenant, '--json']);
      assert.equal(res.code, 1);
      const r = JSON.parse(res.stdout) as { ok: boolean; firstBadSeq: number; problem: string };
      assert.deepEqual([r.ok, r.firstBadSeq, r.problem], [false, 12, problem]);
      const text = await desk.orch(['audit', 'verify', '--tenant', tenant]);
      assert.match(text.stderr, /BROKEN: .* seq 12: /);
    }
  });

  test('audit log lists one action', async () => {
    const tenant = newTenant(3);
    desk.store.auditLog(tenant).append({ actor: 'alice', action: 'approve_gate', subject: 'gate', details: { workflowId: 'wf-1' } });
    const res = await desk.orch(['audit', 'log', '--tenant', tenant, '--run', 'wf-1', '--json']);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual((JSON.parse(res.stdout) as Array<{ action: string }>).map((r) => r.action), ['approve_gate']);
  });
});

describe('orch audit ship', () => {
  const storeFile = () => path.join(desk.home, 'siem-received.jsonl');

  const tokens = async (tenant: string, splunk = FAKE_SPLUNK_TOKEN, datadog = FAKE_DATADOG_KEY) => {
    await desk.store.secrets(tenant).set('SPLUNK_HEC_TOKEN', Buffer.from(splunk), 'tester');
    await desk.store.secrets(tenant).set('DATADOG_API_KEY', Buffer.from(datadog), 'tester');
  };
  const urlFor = (vendor: string, base: string) => (vendor === 'sumo' ? `${base}/receiver/v1/http/${FAKE_SUMO_CODE}` : base);
  const eventsOf = (vendor: string, tenant: string) =>
    desk.siem
      .received()
      .filter((r) => r.vendor === vendor)
      .map((r) => (vendor === 'sumo' ? JSON.parse(r.event as string) : r.event) as Record<string, unknown>)
      .filter((e) => JSON.stringify(e).includes(tenant));

  test('each vendor accepts its shape; the received copy verifies on its own', async () => {
    const tenant = newTenant(25);
    await tokens(tenant);
    for (const vendor of ['splunk-hec', 'datadog', 'sumo']) {
      const res = await desk.orch(['audit', 'ship', '--tenant', tenant, '--to', vendor, '--url', urlFor(vendor, desk.siem.url), '--insecure-http', '--batch-size', '7', '--json']);
      assert.equal(res.code, 0, res.stdout + res.stderr);
      const summary = JSON.parse(res.stdout) as { toSeq: number; batches: number };
      assert.ok(summary.batches > 1);
      const events = eventsOf(vendor, tenant);
      const file = receivedFile(events, `${tenant}-${vendor}`);
      const verified = await desk.orch(['audit', 'verify-export', file, '--key', publicKeyHex(), '--json']);
      assert.equal(verified.code, 0, verified.stdout);
      const v = JSON.parse(verified.stdout) as { sinceSeq: number; untilSeq: number; duplicates: number };
      assert.deepEqual([v.sinceSeq, v.untilSeq, v.duplicates], [1, summary.toSeq, 0]);
    }
    // The secrets never travelled: no event holds a token.
    assert.ok(!fs.readFileSync(storeFile(), 'utf8').includes(FAKE_SPLUNK_TOKEN));
    assert.ok(!fs.readFileSync(storeFile(), 'utf8').includes(FAKE_DATADOG_KEY));
  });

  test('a plain http:// URL is refused unless --insecure-http is given: nothing is sent', async () => {
    const tenant = newTenant(3);
    await tokens(tenant);
    const before = desk.siem.received().length;
    for (const vendor of ['splunk-hec', 'datadog', 'sumo']) {
      const res = await desk.orch(['audit', 'ship', '--tenant', tenant, '--to', vendor, '--url', urlFor(vendor, desk.siem.url), '--json']);
      assert.equal(res.code, 1, res.stdout + res.stderr);
      const error = (JSON.parse(res.stdout) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'siem_insecure_http');
      assert.match(error.message, /--insecure-http/);
      // The Sumo URL's token is not echoed back in the refusal.
      assert.ok(!res.stdout.includes(FAKE_SUMO_CODE) && !res.stderr.includes(FAKE_SUMO_CODE));
    }
    assert.equal(desk.siem.received().length, before);
    const plain = await desk.orch(['audit', 'ship', '--tenant', tenant, '--to', 'splunk-hec', '--url', desk.siem.url]);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr + plain.stdout, /plain http.*--insecure-http/);
    assert.ok(!/\n\s+at /.test(plain.stderr), plain.stderr);
    const allowed = await desk.orch(['audit', 'ship', '--tenant', tenant, '--to', 'splunk-hec', '--url', desk.siem.url, '--insecure-http', '--json']);
    assert.equal(allowed.code, 0, allowed.stdout + allowed.stderr);
    assert.ok(desk.siem.received().length > before);
  });

  test('a wrong credential is refused without retrying; 429 and 503 are retried', async () => {
    const tenant = newTenant(5);
    await tokens(tenant, 'wrong-token', 'wrong-key');
    for (const vendor of ['splunk-hec', 'datadog']) {
      const res = await desk.orch(['audit', 'ship', '--tenant', tenant, '--to', vendor, '--url', desk.siem.url, '--insecure-http', '--json']);
      assert.equal(res.code, 1);
      assert.equal((JSON.parse(res.stdout) as { error: { code: string } }).error.code, 'siem_rejected');
      assert.ok(!res.stdout.includes('wrong-token') && !res.stderr.includes('wrong-token'));
    }
    await tokens(tenant);
    await desk.siem.failNext(429, 1);
    const r1 = await desk.orch(['audit', 'ship', '--tenant', tenant, '--to', 'splunk-hec', '--url', desk.siem.url, '--insecure-http', '--json']);
    assert.equal(r1.code, 0, r1.stdout + r1.stderr);
    assert.equal((JSON.parse(r1.stdout) as { retries: number }).retries, 1);
    await desk.siem.failNext(503, 2);
    const r2 = await desk.orch(['audit', 'ship', '--tenant', tenant, '--to', 'datadog', '--url', desk.siem.url, '--insecure-http', '--json']);
    assert.equal(r2.code, 0, r2.stdout + r2.stderr);
    assert.equal((JSON.parse(r2.stdout) as { retries: number }).retries, 2);
  });

  test('a shipper killed mid-way resumes after the last acknowledged row: no gap, no duplicate', async () => {
    const tenant = newTenant(120);
    await tokens(tenant);
    const dyingStore = path.join(desk.home, `${tenant}-dying.jsonl`);
    const dying = await startFakeSiem({ store: dyingStore, dieAfter: 45 });
    const child = spawn(process.execPath, [ORCH_BIN, 'audit', 'ship', '--tenant', tenant, '--to', 'sumo', '--url', urlFor('sumo', dying.url), '--insecure-http', '--batch-size', '10'], {
      env: desk.env,
      stdio: 'ignore',
    });
    const shipperExit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await dying.exited;
    // The shipper is now retrying against a dead server: kill it there.
    await new Promise((r) => setTimeout(r, 700));
    child.kill('SIGKILL');
    await shipperExit;
    const partial = dying.received().length;
    assert.ok(partial > 0 && partial <= 45, `received ${partial}`);

    const revived = await startFakeSiem({ store: dyingStore, port: dying.port });
    try {
      const res = await desk.orch(['audit', 'ship', '--tenant', tenant, '--to', 'sumo', '--url', urlFor('sumo', revived.url), '--insecure-http', '--batch-size', '10', '--json']);
      assert.equal(res.code, 0, res.stdout + res.stderr);
      const events = revived.received().map((r) => JSON.parse(r.event as string) as { kind: string; seq: number });
      const rowSeqs = events.filter((e) => e.kind === 'orch.audit.row').map((e) => e.seq);
      const head = desk.store.auditLog(tenant).head().seq;
      // Rows 1..head, each exactly once, in order, across the two shippers.
      assert.deepEqual(rowSeqs, Array.from({ length: head }, (_, i) => i + 1));
      const file = receivedFile(revived.received().map((r) => JSON.parse(r.event as string)), `${tenant}-resumed`);
      const verified = await desk.orch(['audit', 'verify-export', file, '--key', publicKeyHex(), '--json']);
      assert.equal(verified.code, 0, verified.stdout);
      assert.equal((JSON.parse(verified.stdout) as { duplicates: number }).duplicates, 0);
    } finally {
      await revived.stop();
    }
  });
});
