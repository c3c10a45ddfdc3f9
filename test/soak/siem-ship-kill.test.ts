/**
 * `orch audit ship` SIGKILLed between the SIEM's acknowledgement and its own cursor save, again and again (short
 * form in `npm test`, 4 kills; long form in `npm run test:soak`, 40): at the end the SIEM holds every row of the
 * chain, no gap, and no duplicate beyond the unavoidable re-send of a batch that was acknowledged while the
 * shipper died before recording it, and every such re-send is byte-identical, so `orch audit verify-export`
 * drops it and the copy verifies against the desktop's key.
 *
 * Real processes: `node bin/orch.mjs audit ship` as a user runs it, a real desktop identity in the OS keychain
 * (run inside infra/ci-keyring.sh, as `npm test` does), and the local Splunk HEC server (test/support/fake-siem.ts),
 * which stores and fsyncs each batch, writes its 2xx answer, and then kills the shipper itself, so the kill lands
 * in that window by construction (one round in four kills the shipper as a batch arrives, before it is stored,
 * instead); after each kill the test reads the shipper's cursor from the tenant database to count the rounds where
 * the window was hit (the cursor behind what the SIEM stored) and which rows may come twice.
 */
import { expect, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { canonicalize } from '../../protocol/canonical-json';
import { useDesktopHome } from '../support/desktop-home';
import { FAKE_SPLUNK_TOKEN } from '../support/fake-siem';
import { uid } from '../support/harness';
import { ORCH_BIN } from '../support/orch-process';
import { checkShippedCopy, shippedCopyProblems, soakRounds, type ReceivedRow } from '../support/soak-checks';

const KILLS = soakRounds(4, 40);
const BATCH = 5;

const desk = useDesktopHome('orch-soak-ship', { siem: true });

const shipArgs = (tenant: string) => ['audit', 'ship', '--tenant', tenant, '--to', 'splunk-hec', '--url', desk.siem.url, '--insecure-http', '--batch-size', String(BATCH), '--json'];

/** The audit row events the SIEM stored for this tenant, in arrival order, with their exact bytes. */
function receivedRows(tenant: string): ReceivedRow[] {
  const out: ReceivedRow[] = [];
  for (const { event } of desk.siem.received()) {
    const rec = (event as { event?: { kind?: string; tenant?: string; seq?: number } }).event;
    if (rec?.kind === 'orch.audit.row' && rec.tenant === tenant && typeof rec.seq === 'number') out.push({ seq: rec.seq, text: canonicalize(rec) });
  }
  return out;
}

function cursorOf(tenant: string): number {
  const row = desk.store.get(tenant).prepare("SELECT last_seq FROM siem_cursor WHERE vendor = 'splunk-hec'").get() as { last_seq: number } | undefined;
  return row?.last_seq ?? 0;
}

test(`a shipper killed between the SIEM's 2xx and its cursor save, ${KILLS} times: no gap, no unexplained duplicate`, async () => {
  const tenant = uid('soak');
  desk.store.create(tenant, 'tester');
  await desk.store.secrets(tenant).set('SPLUNK_HEC_TOKEN', Buffer.from(FAKE_SPLUNK_TOKEN), 'tester');
  const log = desk.store.auditLog(tenant);
  // seq -> how many times the SIEM acknowledged it while the shipper's cursor stayed behind it.
  const unsaved = new Map<number, number>();
  let windowHits = 0;

  for (let round = 0; round < KILLS; round++) {
    // New work between shipments, as a desktop's runs would add.
    for (let i = 0; i < 15 + Math.floor(Math.random() * 15); i++) log.append({ actor: 'tester', action: 'command_sent', subject: `node-${round}-${i}`, details: { round, i } });
    const child = spawn(process.execPath, [ORCH_BIN, ...shipArgs(tenant)], { env: desk.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
    // At least 15 rows at 5 events a batch: three or more batches; die at one of the first three. Most rounds die
    // right after the SIEM's answer; every fourth some milliseconds later (wherever that falls), and every fourth
    // as the batch arrives, before the SIEM stores it (a batch in flight must be sent again, not skipped).
    const request = 1 + Math.floor(Math.random() * 3);
    const mode = round % 4;
    await desk.siem.killAfterAck(child.pid!, request, mode === 2 ? { onArrival: true } : { delayMs: mode === 3 ? Math.floor(Math.random() * 20) : 0 });
    const how = await exited;
    assert.equal(how, 'SIGKILL', `round ${round}: the shipper was to be killed, but ended with ${String(how)}: ${output}`);
    await desk.siem.killAfterAck(0, 0);

    const cursor = cursorOf(tenant);
    const stored = receivedRows(tenant).reduce((m, r) => Math.max(m, r.seq), 0);
    assert.ok(cursor <= stored, `round ${round}: the cursor (${cursor}) is ahead of what the SIEM acknowledged (${stored})`);
    if (stored > cursor && mode !== 2) windowHits++;
    for (let seq = cursor + 1; seq <= stored; seq++) unsaved.set(seq, (unsaved.get(seq) ?? 0) + 1);
  }

  const last = await desk.orch(shipArgs(tenant));
  assert.equal(last.code, 0, last.stdout + last.stderr);
  const head = log.head().seq;
  assert.equal((JSON.parse(last.stdout) as { toSeq: number }).toSeq, head);
  assert.equal(cursorOf(tenant), head);

  const received = receivedRows(tenant);
  const report = checkShippedCopy(received, head, unsaved);
  assert.deepEqual(shippedCopyProblems(report), [], JSON.stringify(report));
  assert.equal(report.rows, head);
  // The kills did land between the acknowledgement and the cursor save (else this test tests nothing).
  assert.ok(windowHits >= 1, `the cursor caught up with the SIEM in every one of ${KILLS} rounds`);

  // The SIEM's copy verifies on its own, with the desktop's key, the re-sends dropped as exact duplicates.
  const file = path.join(desk.home, `${tenant}.received`);
  fs.writeFileSync(file, desk.siem.received().map((r) => canonicalize(r.event)).filter((l) => l.includes(tenant)).join('\n') + '\n');
  const verified = await desk.orch(['audit', 'verify-export', file, '--key', desk.identity.sign.publicKey.toString('hex'), '--json']);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  const v = JSON.parse(verified.stdout) as { sinceSeq: number; untilSeq: number; rows: number; duplicates: number };
  assert.deepEqual([v.sinceSeq, v.untilSeq, v.rows], [1, head, head]);
  expect(v.duplicates).toBeGreaterThanOrEqual(report.resent);
  process.stderr.write(
    `[soak] ${KILLS} shipper kills: the cursor was behind the SIEM after ${windowHits}; ${report.resent} row events re-sent (byte-identical), ${head} rows held once each\n`,
  );

  // Control: the same checks on this very copy with row 1 dropped (a gap) and the head row, which no kill came
  // near, received twice must fail.
  const headRow = received.find((r) => r.seq === head)!;
  const spoiled = checkShippedCopy([...received.filter((r) => r.seq !== 1), headRow], head, unsaved);
  assert.deepEqual([spoiled.missing, spoiled.unexplained], [[1], [head]]);
  const problems = shippedCopyProblems(spoiled);
  assert.ok(problems.some((p) => p.startsWith('gap:')) && problems.some((p) => p.startsWith('duplicate not explained')), problems.join('\n'));
}, 10 * 60_000);
