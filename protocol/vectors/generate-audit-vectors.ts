/**
 * Builds `audit-chain-v1.json`, the known-answer vectors of the audit chain format (see ../AUDIT-CHAIN.md).
 *
 *   npx tsx protocol/vectors/generate-audit-vectors.ts          # rewrite the file
 *   npx tsx protocol/vectors/generate-audit-vectors.ts --check  # exit 1 if the file differs
 *
 * The unit tests rebuild the vectors and require the committed file byte for byte, so a change to the format
 * cannot slip in without the vectors (and a second implementation) noticing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sodium from 'sodium-native';
import { canonicalize } from '../canonical-json';
import {
  AUDIT_CHAIN_VERSION,
  CHECKPOINT_DOMAIN,
  GENESIS_HASH,
  canonicalRowEncoding,
  checkpointMessage,
  ed25519CheckpointSigner,
  nextAuditRow,
  rowHashInput,
  signCheckpoint,
  type AuditRow,
} from '../audit-chain';

export const AUDIT_VECTORS_PATH = fileURLToPath(new URL('./audit-chain-v1.json', import.meta.url));

/**
 * TEST ONLY. A published seed: anyone can sign with it. It exists so a second implementation can reproduce
 * the checkpoint signature byte for byte. Never trust its public key anywhere but in these vectors.
 */
export const TEST_ONLY_CHECKPOINT_SEED_HEX = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';

const TENANT = 'acme';

// Chosen to exercise every rule a second implementation could get wrong: key order by UTF-16 code units
// (U+FB33 sorts after U+1F600 there, before it by code point), ECMAScript number forms (1e21, 0.1, -0, 5e-324,
// 1e-7, 2^53), escapes of control characters and quotes, literal non-ASCII, U+2028, nesting, empty details.
const ENTRIES: ReadonlyArray<{ ts: string; actor: string; action: string; subject: string; details: Record<string, unknown> }> = [
  {
    ts: '2025-01-02T03:04:05.006Z',
    actor: 'operator:alice',
    action: 'create_tenant',
    subject: 'tenant:acme',
    details: {},
  },
  {
    ts: '2025-01-02T03:04:06.000Z',
    actor: 'operator:alice',
    action: 'register_dag',
    subject: 'dag:restart-web@3',
    details: { dag: 'restart-web', version: 3, nodes: ['check', 'gate', 'restart'], signed: true },
  },
  {
    ts: '2025-01-02T03:05:00.123Z',
    actor: 'operator:zoë',
    action: 'run_workflow',
    subject: 'run:restart-web-7f3a',
    details: { params: { host: 'web-01', note: 'Ünïcödé — 日本語 😀', '\ufb33': 'dalet', '\u{1F600}': 'grin' }, cost_cap_usd: 0.1 },
  },
  {
    ts: '2025-01-02T03:05:01.999Z',
    actor: 'workflow:restart-web-7f3a',
    action: 'claude_call',
    subject: 'node:summarise',
    details: { model: 'claude-x', usd: 0.000123, tokens: { in: 1e21, out: 5e-324 }, ratio: -0, tiny: 1e-7, big: 9007199254740992 },
  },
  {
    ts: '2025-01-02T03:06:00.000Z',
    actor: 'approver:bob',
    action: 'approve_gate',
    subject: 'gate:restart-web-7f3a/gate',
    details: { decision: 'approve', comment: 'ok "quoted" \\ tab\there\nline\u2028sep\u0007bell', empty: [], nothing: null },
  },
  {
    ts: '2025-01-02T03:06:02.500Z',
    actor: 'workflow:restart-web-7f3a',
    action: 'command_sent',
    subject: 'agent:web-01',
    details: { argv: ['systemctl', 'restart', 'nginx'], exit_code: 0, nested: { a: [{ b: [{ c: true }] }], z: false } },
  },
];

export interface AuditVectors {
  description: string;
  version: number;
  genesisPrevHash: string;
  hashRule: string;
  rows: Array<{ row: AuditRow; canonical: string; hashInputHex: string; hash: string }>;
  checkpoint: {
    warning: string;
    seedHex: string;
    publicKeyHex: string;
    domain: string;
    messageUtf8: string;
    messageHex: string;
    signed: ReturnType<typeof signCheckpoint>;
  };
}

export function buildAuditVectors(): AuditVectors {
  const rows: AuditVectors['rows'] = [];
  let head = { seq: 0, hash: GENESIS_HASH };
  for (const entry of ENTRIES) {
    const row = nextAuditRow(head, { ...entry, tenant: TENANT });
    rows.push({ row, canonical: canonicalRowEncoding(row), hashInputHex: rowHashInput(row).toString('hex'), hash: row.hash });
    head = { seq: row.seq, hash: row.hash };
  }

  const seed = Buffer.from(TEST_ONLY_CHECKPOINT_SEED_HEX, 'hex');
  const publicKey = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES);
  const secretKey = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES);
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  const cpHead = { tenant: TENANT, seq: head.seq, hash: head.hash, ts: '2025-01-02T03:06:03.000Z' };
  const message = checkpointMessage(cpHead);
  const signed = signCheckpoint(cpHead, ed25519CheckpointSigner({ publicKey, secretKey }));

  return {
    description:
      'Orch audit chain v1 known-answer vectors. hash = SHA-256(bytes(prevHash) || UTF-8(JCS({v,seq,ts,tenant,actor,action,subject,details,prevHash}))). See protocol/AUDIT-CHAIN.md.',
    version: AUDIT_CHAIN_VERSION,
    genesisPrevHash: GENESIS_HASH,
    hashRule: 'sha256(hex_decode(prevHash) || utf8(canonical))',
    rows,
    checkpoint: {
      warning: 'TEST ONLY: this seed is public. Ed25519 (RFC 8032) keypair from crypto_sign_seed_keypair(seed).',
      seedHex: TEST_ONLY_CHECKPOINT_SEED_HEX,
      publicKeyHex: publicKey.toString('hex'),
      domain: CHECKPOINT_DOMAIN,
      messageUtf8: message.toString('utf8'),
      messageHex: message.toString('hex'),
      signed,
    },
  };
}

/** The file's exact text: JSON.stringify with two-space indent and a final newline (not JCS, it is for humans). */
export function renderAuditVectors(v: AuditVectors = buildAuditVectors()): string {
  return JSON.stringify(v, null, 2) + '\n';
}

// Keep the canonical-json import honest for readers: the row encoding above must equal plain JCS.
export function rowCanonicalMatchesJcs(row: AuditRow): boolean {
  const { hash: _hash, ...rest } = row;
  return canonicalize({ v: AUDIT_CHAIN_VERSION, ...rest }) === canonicalRowEncoding(row);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const text = renderAuditVectors();
  for (const { row } of buildAuditVectors().rows) {
    if (!rowCanonicalMatchesJcs(row)) throw new Error(`row ${row.seq}: hand-ordered encoding differs from JCS`);
  }
  if (process.argv.includes('--check')) {
    const current = readFileSync(AUDIT_VECTORS_PATH, 'utf8');
    if (current !== text) {
      console.error(`${AUDIT_VECTORS_PATH} is out of date: run without --check to rewrite it`);
      process.exit(1);
    }
    console.log('audit vectors up to date');
  } else {
    writeFileSync(AUDIT_VECTORS_PATH, text);
    console.log(`wrote ${AUDIT_VECTORS_PATH}`);
  }
}
