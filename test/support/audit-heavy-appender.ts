/**
 * Appends audit rows as fast as it can until killed, printing `ack SEQ HASH` after each append returned (the
 * row is then committed with synchronous=FULL). For the SIGKILL soak test. With ORCH_TEST_AUDIT_HEAD_SERVICE and
 * ORCH_TEST_AUDIT_HEAD_ACCOUNT it stores each checkpoint as the signed head in the OS keychain, as the desktop does.
 *
 *   node --import tsx test/support/audit-heavy-appender.ts DB_FILE TENANT   (ORCH_TEST_AUDIT_SEED = hex seed)
 */
import Database from 'better-sqlite3';
import { ed25519CheckpointSigner } from '../../protocol/audit-chain';
import { ed25519KeyPairFromSeed } from '../../protocol/primitives';
import { AuditLog } from '../../desktop-worker/audit-log';
import { KeychainAuditHeads } from '../../desktop-worker/audit-head';

const [file, tenant] = process.argv.slice(2);
const seed = process.env.ORCH_TEST_AUDIT_SEED;
if (!file || !tenant || !seed) {
  console.error('usage: audit-heavy-appender.ts DB_FILE TENANT (with ORCH_TEST_AUDIT_SEED)');
  process.exit(2);
}
const headService = process.env.ORCH_TEST_AUDIT_HEAD_SERVICE;
const headAccount = process.env.ORCH_TEST_AUDIT_HEAD_ACCOUNT;
const db = new Database(file, { timeout: 30_000 });
const log = new AuditLog(db, tenant, {
  signer: ed25519CheckpointSigner(ed25519KeyPairFromSeed(Buffer.from(seed, 'hex'))),
  checkpointEvery: 10,
  ...(headService && headAccount ? { heads: new KeychainAuditHeads(headService, headAccount), onHeadError: (err) => { throw err; } } : {}),
});
for (let i = 0; ; i++) {
  const row = log.append({ actor: 'soak', action: 'command_sent', subject: `n${i}`, details: { i, pad: 'x'.repeat(i % 200) } });
  // Synchronous write: the line is out before the next append starts.
  process.stdout.write(`ack ${row.seq} ${row.hash}\n`);
}
