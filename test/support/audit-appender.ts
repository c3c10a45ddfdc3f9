/**
 * Appends rows to a tenant audit log from its own process, for the cross-process tests.
 *
 *   node --import tsx test/support/audit-appender.ts DB_FILE TENANT WRITER_ID COUNT [PAUSE_MS]
 *
 * The checkpoint key comes from ORCH_TEST_AUDIT_SEED (hex, 32 bytes), generated fresh by the test. Each row is
 * appended with idempotency key WRITER_ID/i, and every third row is appended a second time with the same key,
 * as a retried activity would. Prints `ready`, waits for a line on stdin, appends, then prints one JSON line
 * with the seqs it was handed.
 */
import Database from 'better-sqlite3';
import sodium from 'sodium-native';
import { ed25519CheckpointSigner } from '../../protocol/audit-chain';
import { AuditLog } from '../../desktop-worker/audit-log';

const [file, tenant, writer, countText, pauseText] = process.argv.slice(2);
// A pause between appends stands for the work an activity does between audit rows; without it one writer
// re-takes the lock before SQLite's busy handler wakes the others, and the writers run in long bursts.
const pauseMs = Number(pauseText ?? '0');
const pause = new Int32Array(new SharedArrayBuffer(4));
const seedHex = process.env.ORCH_TEST_AUDIT_SEED;
if (file === undefined || tenant === undefined || writer === undefined || countText === undefined || seedHex === undefined) {
  console.error('usage: audit-appender.ts DB_FILE TENANT WRITER_ID COUNT (with ORCH_TEST_AUDIT_SEED set)');
  process.exit(2);
}

const publicKey = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES);
const secretKey = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES);
sodium.crypto_sign_seed_keypair(publicKey, secretKey, Buffer.from(seedHex, 'hex'));

const db = new Database(file, { timeout: 30_000 });
const log = new AuditLog(db, tenant, { signer: ed25519CheckpointSigner({ publicKey, secretKey }), checkpointEvery: 25 });
// Start together: print ready, then wait for the test to write a line to every writer's stdin at once, so the
// writers overlap instead of running one after another as their start-up times happen to fall.
console.log('ready');
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
process.stdin.pause();

const seqs: number[] = [];
for (let i = 0; i < Number(countText); i++) {
  const entry = {
    actor: `writer:${writer}`,
    action: 'command_sent',
    subject: `agent:${writer}`,
    details: { writer, i, pid: process.pid },
    idempotencyKey: `${writer}/${i}`,
  };
  const row = log.append(entry);
  if (i % 3 === 0) {
    const retried = log.append(entry);
    if (retried.seq !== row.seq || retried.hash !== row.hash) {
      console.error(`retry of ${writer}/${i} returned seq ${retried.seq}, first write was ${row.seq}`);
      process.exit(1);
    }
  }
  seqs.push(row.seq);
  if (pauseMs > 0) Atomics.wait(pause, 0, 0, pauseMs);
}
db.close();
console.log(JSON.stringify({ writer, seqs }));
