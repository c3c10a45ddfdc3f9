/**
 * SIGKILL during heavy audit appends, 5 times in `npm test` and 50 times in `npm run test:soak`: after every
 * kill the database passes `PRAGMA integrity_check`, every row the appender was told was committed (it printed
 * `ack SEQ HASH` after the append returned) is there with that hash, and the whole chain, with its signed
 * checkpoints, verifies, also against the signed head the appender keeps in the real OS keychain (run inside
 * infra/ci-keyring.sh, as `npm test` and `npm run test:soak` do) and the checkpoint rule: a kill between a
 * checkpoint's commit and its copy to the keychain leaves the head behind the database, which must not read as
 * tampering.
 */
import { test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ed25519KeyPairFromSeed, randomBytes } from '../../protocol/primitives';
import { AuditLog, DEFAULT_CHECKPOINT_POLICY } from '../../desktop-worker/audit-log';
import { KeychainAuditHeads } from '../../desktop-worker/audit-head';
import { acknowledgedRowProblems, soakRounds } from '../support/soak-checks';

const APPENDER = fileURLToPath(new URL('../support/audit-heavy-appender.ts', import.meta.url));
const KILLS = soakRounds(5, 50);

test(`SIGKILL during heavy appends, ${KILLS} times: nothing acknowledged is lost and the chain verifies`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-soak-'));
  const file = path.join(dir, 'acme.sqlite');
  const seed = randomBytes(32);
  const publicKey = ed25519KeyPairFromSeed(seed).publicKey;
  const acked = new Map<number, string>();
  const headService = `orch-soak-head-${randomBytes(4).toString('hex')}`;
  const heads = new KeychainAuditHeads(headService, 'soak');
  let headBehind = 0;
  try {
    for (let round = 0; round < KILLS; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', APPENDER, file, 'acme'], {
        env: { ...process.env, ORCH_TEST_AUDIT_SEED: seed.toString('hex'), ORCH_TEST_AUDIT_HEAD_SERVICE: headService, ORCH_TEST_AUDIT_HEAD_ACCOUNT: 'soak' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let buf = '';
      let firstAck: () => void = () => {};
      const started = new Promise<void>((resolve) => (firstAck = resolve));
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('ack ')) firstAck();
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await Promise.race([started, exited]);
      // Kill at a different point of the append cycle each round.
      await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 150)));
      child.kill('SIGKILL');
      await exited;
      // Only whole lines count: a line cut by the kill was not fully reported.
      for (const line of buf.split('\n').slice(0, -1)) {
        const m = /^ack (\d+) ([0-9a-f]{64})$/.exec(line);
        assert.ok(m, `unexpected output: ${line}`);
        acked.set(Number(m[1]), m[2]!);
      }

      const db = new Database(file);
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `round ${round}`);
        const rows = new Map((db.prepare('SELECT seq, hash FROM audit').all() as Array<{ seq: number; hash: string }>).map((r) => [r.seq, r.hash]));
        assert.deepEqual(acknowledgedRowProblems(rows, acked), [], `round ${round}`);
        if (round === 0 && acked.size > 0) {
          // Control: the same check with an acknowledged row gone, and one changed, must fail.
          const [seq] = [...acked.keys()];
          const gone = new Map(rows);
          gone.delete(seq!);
          assert.deepEqual(acknowledgedRowProblems(gone, acked), [`acknowledged row ${seq} is missing`]);
          const changed = new Map(rows).set(seq!, '0'.repeat(64));
          assert.match(acknowledgedRowProblems(changed, acked).join('\n'), new RegExp(`^acknowledged row ${seq} changed`));
        }
        const log = new AuditLog(db, 'acme');
        const signedHead = heads.read('acme');
        assert.ok(signedHead, `round ${round}: no signed head in the keychain`);
        const result = log.verify(publicKey, { signedHead, checkpointPolicy: { ...DEFAULT_CHECKPOINT_POLICY, every: 10 } });
        assert.ok(result.ok, `round ${round}: ${JSON.stringify(result)}`);
        const lastCheckpoint = log.checkpoints().at(-1)!;
        if (signedHead.seq < lastCheckpoint.seq) headBehind++;
      } finally {
        db.close();
      }
    }
    assert.ok(acked.size >= KILLS, `only ${acked.size} rows were acknowledged over ${KILLS} rounds`);
    // How often the kill fell between a checkpoint's commit and its copy to the keychain (informational).
    process.stderr.write(`[soak] the keychain head was behind the database's last checkpoint after ${headBehind} of ${KILLS} kills\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 15 * 60_000);
