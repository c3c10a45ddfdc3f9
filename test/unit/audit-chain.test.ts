import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import sodium from 'sodium-native';
import { CanonicalJsonError, CanonicalJsonErrorCode, canonicalize, isCanonicalObjectText } from '../../protocol/canonical-json';
import {
  AuditChainError,
  AuditChainErrorCode,
  CHECKPOINT_DOMAIN,
  GENESIS_HASH,
  canonicalRowEncoding,
  checkpointMessage,
  computeRowHash,
  ed25519CheckpointSigner,
  nextAuditRow,
  rowHashInput,
  signCheckpoint,
  validateAuditChain,
  validateStoredAuditChain,
  validate_audit_chain,
  verifyCheckpointSignature,
  type AuditProblem,
  type AuditRow,
  type CheckpointSigner,
  type SignedCheckpoint,
  type StoredAuditRow,
} from '../../protocol/audit-chain';
import { ERROR_CODES, OrchError } from '../../protocol/errors';
import { AUDIT_VECTORS_PATH, buildAuditVectors, renderAuditVectors } from '../../protocol/vectors/generate-audit-vectors';

function newSigner(): CheckpointSigner {
  const publicKey = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES);
  const secretKey = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES);
  sodium.crypto_sign_keypair(publicKey, secretKey);
  return ed25519CheckpointSigner({ publicKey, secretKey });
}

/** A CanonicalJsonError is an OrchError (one base class, its code in the one table), so the CLI prints it under its code. */
function assertCanonicalError(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof CanonicalJsonError && err instanceof OrchError && err.code === code && code in ERROR_CODES);
}

describe('canonical JSON (RFC 8785)', () => {
  test('RFC 8785 §3.2.2 example: literals, numbers and string escapes', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    );
    assert.equal(
      canonicalize(input),
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  test('RFC 8785 §3.2.3 example: members sorted by UTF-16 code units, not code points', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const out = canonicalize(input);
    const order = [...out.matchAll(/"([^"]*)":"[^"]*"/g)].map((m) => m[1]);
    assert.deepEqual(order, ['\\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  });

  test('RFC 8785 Appendix B number serialisation', () => {
    const table: Array<[string, string]> = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, expected] of table) {
      assert.equal(canonicalize(Buffer.from(bits, 'hex').readDoubleBE(0)), expected, bits);
    }
    assert.equal(canonicalize({ a: 0.1, b: 1e21, c: -0 }), '{"a":0.1,"b":1e+21,"c":0}');
  });

  test('no whitespace, nested structures, literal non-ASCII, escaped controls', () => {
    assert.equal(canonicalize({ z: [1, [2, { y: {}, x: [] }]], a: 'é😀\u2028', c: '\u0001\t' }), '{"a":"é😀\u2028","c":"\\u0001\\t","z":[1,[2,{"x":[],"y":{}}]]}');
    assert.equal(canonicalize([]), '[]');
    assert.equal(canonicalize('x'), '"x"');
    assert.equal(canonicalize(null), 'null');
    assert.equal(canonicalize(Object.assign(Object.create(null) as object, { b: 1, a: 2 })), '{"a":2,"b":1}');
  });

  test('refuses what I-JSON cannot hold, with stable codes', () => {
    assertCanonicalError(() => canonicalize(NaN), CanonicalJsonErrorCode.nonFiniteNumber);
    assertCanonicalError(() => canonicalize({ a: [Infinity] }), CanonicalJsonErrorCode.nonFiniteNumber);
    assertCanonicalError(() => canonicalize({ a: -Infinity }), CanonicalJsonErrorCode.nonFiniteNumber);
    assertCanonicalError(() => canonicalize({ a: undefined }), CanonicalJsonErrorCode.unsupportedType);
    assertCanonicalError(() => canonicalize([1, undefined]), CanonicalJsonErrorCode.unsupportedType);
    assertCanonicalError(() => canonicalize([1, , 3]), CanonicalJsonErrorCode.unsupportedType);
    assertCanonicalError(() => canonicalize({ f: () => 1 }), CanonicalJsonErrorCode.unsupportedType);
    assertCanonicalError(() => canonicalize({ n: 10n }), CanonicalJsonErrorCode.unsupportedType);
    assertCanonicalError(() => canonicalize({ s: Symbol('x') }), CanonicalJsonErrorCode.unsupportedType);
    assertCanonicalError(() => canonicalize({ [Symbol('k')]: 1 }), CanonicalJsonErrorCode.unsupportedType);
    assertCanonicalError(() => canonicalize({ d: new Date(0) }), CanonicalJsonErrorCode.unsupportedType);
    assertCanonicalError(() => canonicalize(new Map()), CanonicalJsonErrorCode.unsupportedType);
    assertCanonicalError(() => canonicalize(Buffer.from('x')), CanonicalJsonErrorCode.unsupportedType);
    assertCanonicalError(() => canonicalize({ s: 'a\ud800b' }), CanonicalJsonErrorCode.loneSurrogate);
    assertCanonicalError(() => canonicalize({ s: '\udc00' }), CanonicalJsonErrorCode.loneSurrogate);
    assertCanonicalError(() => canonicalize({ ['k\ud83d']: 1 }), CanonicalJsonErrorCode.loneSurrogate);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assertCanonicalError(() => canonicalize(cyclic), CanonicalJsonErrorCode.tooDeep);
  });

  test('errors point at the offending value', () => {
    try {
      canonicalize({ a: { 'b/c': [0, NaN] } });
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof CanonicalJsonError);
      assert.equal(err.path, '/a/b~1c/1');
    }
  });
});

describe('audit chain vectors', () => {
  const file = readFileSync(AUDIT_VECTORS_PATH, 'utf8');
  const vectors = JSON.parse(file) as ReturnType<typeof buildAuditVectors>;

  test('the committed vectors file is reproduced byte for byte', () => {
    assert.equal(renderAuditVectors(), file);
  });

  test('every row hash is SHA-256 of prevHash bytes || UTF-8 canonical JCS, recomputed independently', () => {
    let prev = GENESIS_HASH;
    assert.ok(vectors.rows.length >= 5 && vectors.rows.length <= 8);
    for (const { row, canonical, hashInputHex, hash } of vectors.rows) {
      assert.equal(row.prevHash, prev, `seq ${row.seq} chains`);
      const { hash: _h, ...unhashed } = row;
      // JCS of the whole row object, not the hand-ordered fast path, so the two cannot drift apart.
      assert.equal(canonicalize({ v: 1, ...unhashed }), canonical);
      assert.equal(canonicalRowEncoding(row), canonical);
      const input = Buffer.concat([Buffer.from(prev, 'hex'), Buffer.from(canonical, 'utf8')]);
      assert.equal(input.toString('hex'), hashInputHex);
      assert.equal(rowHashInput(row).toString('hex'), hashInputHex);
      assert.equal(createHash('sha256').update(input).digest('hex'), hash);
      assert.equal(computeRowHash(row), hash);
      assert.equal(row.hash, hash);
      prev = hash;
    }
  });

  test('the vectors exercise the rules a second implementation could get wrong', () => {
    const all = vectors.rows.map((r) => r.canonical).join('\n');
    assert.ok(all.includes('"\u{1F600}":"grin","\ufb33":"dalet"'), 'UTF-16 member order');
    assert.ok(all.includes('"tokens":{"in":1e+21,"out":5e-324}'), 'ECMAScript exponent form');
    assert.ok(all.includes('"cost_cap_usd":0.1'), '0.1');
    assert.ok(all.includes('"ratio":0,'), '-0 as 0');
    assert.ok(all.includes('"tiny":1e-7'), 'small exponent');
    assert.ok(all.includes('\\u0007bell'), 'control escape');
    assert.ok(all.includes('line\u2028sep'), 'U+2028 literal');
    assert.ok(all.includes('日本語'), 'non-ASCII literal');
  });

  test('the checkpoint signature reproduces from the TEST ONLY seed and verifies', () => {
    const cp = vectors.checkpoint;
    assert.match(cp.warning, /TEST ONLY/);
    const pk = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES);
    const sk = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES);
    sodium.crypto_sign_seed_keypair(pk, sk, Buffer.from(cp.seedHex, 'hex'));
    assert.equal(pk.toString('hex'), cp.publicKeyHex);
    const last = vectors.rows[vectors.rows.length - 1]!.row;
    const body = canonicalize({ v: 1, tenant: 'acme', seq: last.seq, hash: last.hash, ts: cp.signed.ts });
    assert.equal(cp.messageUtf8, CHECKPOINT_DOMAIN + body);
    assert.equal(Buffer.from(cp.messageUtf8, 'utf8').toString('hex'), cp.messageHex);
    assert.equal(checkpointMessage(cp.signed).toString('hex'), cp.messageHex);
    // Ed25519 is deterministic: the same seed and message give the same signature bytes.
    const sig = Buffer.alloc(sodium.crypto_sign_BYTES);
    sodium.crypto_sign_detached(sig, Buffer.from(cp.messageHex, 'hex'), sk);
    assert.equal(sig.toString('hex'), cp.signed.signature);
    assert.ok(sodium.crypto_sign_verify_detached(sig, Buffer.from(cp.messageHex, 'hex'), pk));
    const result = validateAuditChain(
      vectors.rows.map((r) => r.row),
      { checkpoints: [cp.signed], trustedPublicKey: pk },
    );
    assert.deepEqual(result, { ok: true, count: vectors.rows.length, head: { seq: last.seq, hash: last.hash } });
  });
});

// --------------------------------------------------------------------------------------- tampering

const TENANT = 'acme';

function buildChain(n: number, tenant = TENANT): AuditRow[] {
  const rows: AuditRow[] = [];
  let head = { seq: 0, hash: GENESIS_HASH };
  const base = Date.UTC(2025, 0, 1);
  for (let i = 0; i < n; i++) {
    const row = nextAuditRow(head, {
      ts: new Date(base + i * 1000).toISOString(),
      tenant,
      actor: i % 3 === 0 ? 'operator:zoë' : `workflow:run-${i % 7}`,
      action: ['run_workflow', 'command_sent', 'claude_call', 'approve_gate'][i % 4]!,
      subject: `run:${i}`,
      details: { i, usd: i * 0.1, nested: { list: [i, 'ü', { deep: i % 2 === 0 }] }, big: 1e21 },
    });
    rows.push(row);
    head = row;
  }
  return rows;
}

/** Recomputes a row's hash over its (possibly forged) content, as an attacker who can write the store would. */
function rehash(row: Omit<AuditRow, 'hash'>): AuditRow {
  return { ...row, hash: computeRowHash(row) };
}

function checkpointAt(rows: AuditRow[], seq: number, signer: CheckpointSigner, tenant = TENANT): SignedCheckpoint {
  const row = rows[seq - 1]!;
  return signCheckpoint({ tenant, seq, hash: row.hash, ts: '2025-02-01T00:00:00.000Z' }, signer);
}

function randomHex64(): string {
  return randomBytes(32).toString('hex');
}

const EDIT_FIELDS = ['actor', 'action', 'subject', 'tenant', 'ts', 'details', 'detailsNumber', 'seq', 'prevHash', 'hash'] as const;

function editRow(row: AuditRow, field: (typeof EDIT_FIELDS)[number], n: number): AuditRow {
  switch (field) {
    case 'actor':
      return { ...row, actor: row.actor + '!' };
    case 'action':
      return { ...row, action: 'delete_secret' === row.action ? 'set_secret' : 'delete_secret' };
    case 'subject':
      return { ...row, subject: row.subject.replace('run:', 'run:x') };
    case 'tenant':
      return { ...row, tenant: 'other' };
    case 'ts':
      return { ...row, ts: row.ts.replace(/\.\d{3}Z$/, '.999Z') === row.ts ? row.ts.replace(/\.\d{3}Z$/, '.001Z') : row.ts.replace(/\.\d{3}Z$/, '.999Z') };
    case 'details':
      return { ...row, details: { ...row.details, nested: { list: [n, 'u', { deep: true }] } } };
    case 'detailsNumber':
      return { ...row, details: { ...row.details, usd: (row.details.usd as number) + 1e-9 } };
    case 'seq':
      return { ...row, seq: n === row.seq ? row.seq + 1 : n };
    case 'prevHash':
      return { ...row, prevHash: randomHex64() };
    case 'hash':
      return { ...row, hash: randomHex64() };
  }
}

describe('validateAuditChain', () => {
  const N = 200;
  const chain = buildChain(N);
  const signer = newSigner();
  const headCheckpoint = checkpointAt(chain, N, signer);
  const opts = { checkpoints: [headCheckpoint], trustedPublicKey: signer.publicKey };

  test('an untouched chain verifies, with its count and head; the snake_case name is the same function', () => {
    const result = validateAuditChain(chain, opts);
    assert.deepEqual(result, { ok: true, count: N, head: { seq: N, hash: chain[N - 1]!.hash } });
    assert.equal(validate_audit_chain, validateAuditChain);
  });

  test('1,000 random single tamperings are each detected at the right first seq', () => {
    type Tamper =
      | { kind: 'edit'; k: number; field: (typeof EDIT_FIELDS)[number]; n: number }
      | { kind: 'delete'; k: number }
      | { kind: 'insert'; k: number; chained: boolean }
      | { kind: 'replay'; m: number; after: number }
      | { kind: 'swap'; i: number; j: number };
    const seqArb = fc.integer({ min: 1, max: N });
    const tamperArb: fc.Arbitrary<Tamper> = fc.oneof(
      fc.record({ kind: fc.constant('edit' as const), k: seqArb, field: fc.constantFrom(...EDIT_FIELDS), n: seqArb }),
      fc.record({ kind: fc.constant('delete' as const), k: seqArb }),
      fc.record({ kind: fc.constant('insert' as const), k: seqArb, chained: fc.boolean() }),
      fc
        .tuple(seqArb, seqArb)
        .map(([a, b]) => ({ kind: 'replay' as const, m: Math.min(a, b), after: Math.max(a, b) })),
      fc
        .tuple(seqArb, seqArb)
        .filter(([a, b]) => a !== b)
        .map(([a, b]) => ({ kind: 'swap' as const, i: Math.min(a, b), j: Math.max(a, b) })),
    );

    const seen = new Map<string, number>();
    fc.assert(
      fc.property(tamperArb, (t) => {
        const rows = chain.slice();
        let firstBadSeq: number;
        let problems: AuditProblem[];
        switch (t.kind) {
          case 'edit':
            rows[t.k - 1] = editRow(rows[t.k - 1]!, t.field, t.n);
            firstBadSeq = t.k;
            problems = ['edited'];
            break;
          case 'delete':
            rows.splice(t.k - 1, 1);
            firstBadSeq = t.k;
            // Only the signed head checkpoint reveals that the newest row is gone.
            problems = t.k === N ? ['truncated'] : ['deleted'];
            break;
          case 'insert': {
            // A forged row that hashes to itself, claiming the seq of the row it is put in front of.
            const prevHash = t.chained ? (t.k === 1 ? GENESIS_HASH : chain[t.k - 2]!.hash) : randomHex64();
            const { hash: _h, ...orig } = chain[t.k - 1]!;
            rows.splice(t.k - 1, 0, rehash({ ...orig, actor: 'attacker', details: { forged: true }, prevHash }));
            firstBadSeq = t.k;
            // Chained onto the right parent, the forgery and the genuine row are two children of one row.
            problems = t.chained ? ['fork'] : ['inserted'];
            break;
          }
          case 'replay':
            rows.splice(t.after, 0, chain[t.m - 1]!);
            firstBadSeq = t.m;
            problems = ['inserted'];
            break;
          case 'swap':
            rows[t.i - 1] = chain[t.j - 1]!;
            rows[t.j - 1] = chain[t.i - 1]!;
            firstBadSeq = t.i;
            problems = ['reordered'];
            break;
        }
        const result = validateAuditChain(rows, opts);
        assert.equal(result.ok, false, `${JSON.stringify(t)} not detected`);
        if (result.ok) return;
        assert.equal(result.firstBadSeq, firstBadSeq, `${JSON.stringify(t)}: ${result.problem} ${result.detail}`);
        assert.ok(problems.includes(result.problem), `${JSON.stringify(t)}: got ${result.problem}, want ${problems.join('|')}`);
        seen.set(result.problem, (seen.get(result.problem) ?? 0) + 1);
      }),
      {
        numRuns: 1000,
        // The edges random draws may miss: first and last rows, where the genesis and the head checkpoint matter.
        examples: [
          [{ kind: 'insert', k: N, chained: true }],
          [{ kind: 'insert', k: 1, chained: true }],
          [{ kind: 'delete', k: N }],
          [{ kind: 'delete', k: 1 }],
          [{ kind: 'swap', i: 1, j: N }],
          [{ kind: 'swap', i: N - 1, j: N }],
          [{ kind: 'edit', k: N, field: 'hash', n: 1 }],
          [{ kind: 'edit', k: 1, field: 'prevHash', n: 1 }],
          [{ kind: 'replay', m: N, after: N }],
        ],
      },
    );
    // Every class was actually exercised, so the run proves something about each.
    for (const p of ['edited', 'deleted', 'inserted', 'fork', 'reordered', 'truncated'] as const) {
      assert.ok((seen.get(p) ?? 0) > 0, `no ${p} case in the run`);
    }
  });

  test('a full rewrite with recomputed hashes passes the hash chain but not the signed checkpoints', () => {
    const checkpoints = [50, 100, 150, 200].map((s) => checkpointAt(chain, s, signer));
    const rewriteFrom = (from: number): AuditRow[] => {
      const rows = chain.slice(0, from - 1);
      let head = from === 1 ? { seq: 0, hash: GENESIS_HASH } : rows[from - 2]!;
      for (const orig of chain.slice(from - 1)) {
        const row = nextAuditRow(head, { ...orig, details: { ...orig.details, rewritten: true } });
        rows.push(row);
        head = row;
      }
      return rows;
    };
    const rewritten = rewriteFrom(120);
    assert.equal(validateAuditChain(rewritten).ok, true, 'the chain alone cannot see a recomputed rewrite');
    const result = validateAuditChain(rewritten, { checkpoints, trustedPublicKey: signer.publicKey });
    assert.deepEqual(
      { ok: result.ok, firstBadSeq: !result.ok && result.firstBadSeq, problem: !result.ok && result.problem },
      { ok: false, firstBadSeq: 101, problem: 'checkpoint_mismatch' },
    );
    const fromGenesis = validateAuditChain(rewriteFrom(1), { checkpoints, trustedPublicKey: signer.publicKey });
    assert.equal(!fromGenesis.ok && fromGenesis.problem, 'checkpoint_mismatch');
    assert.equal(!fromGenesis.ok && fromGenesis.firstBadSeq, 1);

    // The attacker re-signs the rewritten heads with a key of their own: the signatures fail instead.
    const attacker = newSigner();
    const forged = [50, 100, 150, 200].map((s) => checkpointAt(rewritten, s, attacker));
    const reSigned = validateAuditChain(rewritten, { checkpoints: forged, trustedPublicKey: signer.publicKey });
    assert.equal(!reSigned.ok && reSigned.problem, 'bad_checkpoint_signature');
    assert.equal(!reSigned.ok && reSigned.firstBadSeq, 50);
  });

  test('a cut tail is caught by a signed checkpoint past the end', () => {
    const checkpoints = [50, 100, 150, 200].map((s) => checkpointAt(chain, s, signer));
    const cut = validateAuditChain(chain.slice(0, 160), { checkpoints, trustedPublicKey: signer.publicKey });
    assert.equal(!cut.ok && cut.problem, 'truncated');
    assert.equal(!cut.ok && cut.firstBadSeq, 161);
    const cutAtCheckpoint = validateAuditChain(chain.slice(0, 150), { checkpoints, trustedPublicKey: signer.publicKey });
    assert.equal(!cutAtCheckpoint.ok && cutAtCheckpoint.firstBadSeq, 151);
    const emptied = validateAuditChain([], { checkpoints, trustedPublicKey: signer.publicKey });
    assert.equal(!emptied.ok && emptied.problem, 'truncated');
    assert.equal(!emptied.ok && emptied.firstBadSeq, 1);
    assert.equal(validateAuditChain(chain.slice(0, 160)).ok, true, 'without checkpoints a cut tail is invisible');
  });

  test('a checkpoint signed by another key is rejected, whatever key it names', () => {
    const other = newSigner();
    const byOther = checkpointAt(chain, 100, other);
    assert.equal(verifyCheckpointSignature(byOther, signer.publicKey), false);
    const r1 = validateAuditChain(chain, { checkpoints: [byOther], trustedPublicKey: signer.publicKey });
    assert.equal(!r1.ok && r1.problem, 'bad_checkpoint_signature');
    assert.equal(!r1.ok && r1.firstBadSeq, 100);

    // Claiming the trusted key as signer does not help: the signature is checked against the trusted key.
    const claiming = { ...byOther, signerPublicKey: signer.publicKey.toString('hex') };
    assert.equal(verifyCheckpointSignature(claiming, signer.publicKey), false);
    const r2 = validateAuditChain(chain, { checkpoints: [claiming], trustedPublicKey: signer.publicKey });
    assert.equal(!r2.ok && r2.problem, 'bad_checkpoint_signature');

    // A genuine checkpoint whose fields were edited no longer verifies.
    const genuine = checkpointAt(chain, 100, signer);
    assert.equal(verifyCheckpointSignature(genuine, signer.publicKey), true);
    for (const edited of [
      { ...genuine, seq: 99 },
      { ...genuine, hash: chain[98]!.hash },
      { ...genuine, ts: '2025-02-01T00:00:00.001Z' },
      { ...genuine, tenant: 'other' },
      { ...genuine, signature: genuine.signature.slice(0, -2) + (genuine.signature.endsWith('00') ? '01' : '00') },
    ]) {
      assert.equal(verifyCheckpointSignature(edited, signer.publicKey), false, JSON.stringify(edited));
      const r = validateAuditChain(chain, { checkpoints: [edited], trustedPublicKey: signer.publicKey });
      assert.equal(!r.ok && r.problem, 'bad_checkpoint_signature');
    }

    // The custom verifier hook is honoured.
    const r3 = validateAuditChain(chain, { checkpoints: [genuine], verifyCheckpoint: () => false });
    assert.equal(!r3.ok && r3.problem, 'bad_checkpoint_signature');
  });

  test('a genuine checkpoint of another tenant does not vouch for this chain', () => {
    const otherChain = buildChain(120, 'globex');
    const cp = checkpointAt(otherChain, 100, signer, 'globex');
    const r = validateAuditChain(chain, { checkpoints: [cp], trustedPublicKey: signer.publicKey });
    assert.equal(!r.ok && r.problem, 'checkpoint_mismatch');
    const pinned = validateAuditChain(chain, { tenant: 'globex' });
    assert.equal(!pinned.ok && pinned.problem, 'inserted');
    assert.equal(!pinned.ok && pinned.firstBadSeq, 1);
  });

  test('checkpoints without a way to check their signatures are refused', () => {
    assert.throws(
      () => validateAuditChain(chain, { checkpoints: [headCheckpoint] }),
      (err: unknown) => err instanceof AuditChainError && err instanceof OrchError && err.code === AuditChainErrorCode.verifierMissing && err.code in ERROR_CODES,
    );
  });

  test('two rows chained onto one parent are a fork', () => {
    const rows = chain.slice(0, 10);
    const sibling = nextAuditRow(rows[4]!, { ...rows[5]!, actor: 'writer-b' });
    rows.splice(6, 0, sibling);
    const r = validateAuditChain(rows);
    assert.equal(!r.ok && r.problem, 'fork');
    assert.equal(!r.ok && r.firstBadSeq, 6);
  });

  test('streams any iterable, and an empty chain is valid', () => {
    function* gen(): Generator<AuditRow> {
      yield* chain;
    }
    assert.equal(validateAuditChain(gen(), opts).ok, true);
    assert.deepEqual(validateAuditChain([]), { ok: true, count: 0, head: { seq: 0, hash: GENESIS_HASH } });
  });

  test('computeRowHash refuses malformed rows with a stable code', () => {
    const { hash: _h, ...row } = chain[0]!;
    for (const bad of [
      { ...row, seq: 0 },
      { ...row, seq: 1.5 },
      { ...row, ts: '2025-01-01T00:00:00Z' },
      { ...row, prevHash: GENESIS_HASH.toUpperCase().replace(/0/g, 'A') },
      { ...row, details: [] as unknown as Record<string, unknown> },
      { ...row, actor: 5 as unknown as string },
    ]) {
      assert.throws(
        () => computeRowHash(bad),
        (err: unknown) => err instanceof AuditChainError && err.code === AuditChainErrorCode.malformedRow,
      );
    }
  });
});

// ------------------------------------------------------------------------------ fast paths vs the reference

/** What a store's details text must be: exactly the JCS text of the JSON object it parses to. */
function referenceIsCanonicalObjectText(text: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  try {
    return canonicalize(value) === text;
  } catch {
    return false;
  }
}

/** The row hash computed from the JCS reference, not from audit-chain.ts's hand-ordered encoding. */
function referenceRowHash(row: Omit<AuditRow, 'hash'>): string {
  const canonical = canonicalize({ v: 1, ...row });
  return createHash('sha256').update(Buffer.from(row.prevHash, 'hex')).update(canonical, 'utf8').digest('hex');
}

/** The hash an attacker with the file would store for a row whose details text is `detailsText` verbatim. */
function hashOverText(row: Omit<AuditRow, 'hash' | 'details'>, detailsText: string): string {
  const encoded =
    `{"action":${JSON.stringify(row.action)},"actor":${JSON.stringify(row.actor)},"details":${detailsText},` +
    `"prevHash":"${row.prevHash}","seq":${row.seq},"subject":${JSON.stringify(row.subject)},` +
    `"tenant":${JSON.stringify(row.tenant)},"ts":"${row.ts}","v":1}`;
  return createHash('sha256').update(Buffer.from(row.prevHash, 'hex')).update(encoded, 'utf8').digest('hex');
}

function toStored(row: AuditRow): StoredAuditRow {
  const { details, ...rest } = row;
  return { ...rest, detailsText: canonicalize(details) };
}

// Strings over all of Unicode (controls, quotes, backslashes, U+2028, astral pairs), biased towards the
// characters JCS treats specially.
const specialChars = fc.constantFrom('"', '\\', '/', '\u0000', '\u0007', '\b', '\t', '\n', '\f', '\r', '\u001f', '\u007f', '\u2028', 'é', '😀', '\ufb33');
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.array(fc.oneof(specialChars, fc.string({ maxLength: 3 })), { maxLength: 6 }).map((parts) => parts.join('')),
);
const specialNumber = fc.constantFrom(1e21, 1e-7, 0.1, -0, 5e-324, -5e-324, 2 ** 53, -(2 ** 53), 1.7976931348623157e308, 123456789012345680000, 0.000001);
const anyNumber = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.maxSafeInteger(), specialNumber);
const { json: anyJson } = fc.letrec<{ json: unknown }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    anyString,
    anyNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(anyString, tie('json'), { maxKeys: 5 }),
  ),
}));
const anyDetails = fc.dictionary(anyString, anyJson, { maxKeys: 6 }) as fc.Arbitrary<Record<string, unknown>>;
const anyTs = fc.integer({ min: 0, max: Date.UTC(9999, 11, 31) }).map((ms) => new Date(ms).toISOString());
const anyEntry = fc.record({ ts: anyTs, tenant: anyString, actor: anyString, action: anyString, subject: anyString, details: anyDetails });

describe('verification fast paths equal the JCS reference', () => {
  test('random rows: the row encoding is canonicalize() of the row, and both verifiers accept the chain', () => {
    fc.assert(
      fc.property(fc.array(anyEntry, { minLength: 1, maxLength: 5 }), (entries) => {
        const rows: AuditRow[] = [];
        let head = { seq: 0, hash: GENESIS_HASH };
        for (const entry of entries) {
          const tenant = entries[0]!.tenant;
          const row = nextAuditRow(head, { ...entry, tenant });
          const { hash, ...unhashed } = row;
          assert.equal(canonicalRowEncoding(row), canonicalize({ v: 1, ...unhashed }));
          assert.equal(hash, referenceRowHash(unhashed));
          rows.push(row);
          head = row;
        }
        const expected = { ok: true, count: rows.length, head: { seq: head.seq, hash: head.hash } };
        assert.deepEqual(validateAuditChain(rows), expected);
        // The store path hashes the details text as stored, never parsing it.
        assert.deepEqual(validateStoredAuditChain(rows.map(toStored)), expected);
      }),
      { numRuns: 300 },
    );
  });

  test('details the fast serialiser cannot take give canonicalize()s result or its exact error', () => {
    const loneSurrogates = fc.string({ unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((c) => String.fromCharCode(c)), maxLength: 4 });
    const odd = fc.oneof(
      anyJson,
      loneSurrogates,
      fc.constantFrom(NaN, Infinity, -Infinity, undefined, 10n, new Date(0), new Map(), Buffer.from('x'), Symbol('s'), () => 1),
    );
    const { value } = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        odd,
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(fc.oneof(anyString, loneSurrogates), tie('value'), { maxKeys: 4 }),
      ),
    }));
    const outcome = (fn: () => string): string => {
      try {
        return 'ok ' + fn();
      } catch (err) {
        assert.ok(err instanceof CanonicalJsonError, String(err));
        return `error ${err.code} ${err.path}`;
      }
    };
    const base = { seq: 1, ts: '2025-01-02T03:04:05.006Z', tenant: 'acme', actor: 'a', action: 'b', subject: 'c', prevHash: GENESIS_HASH };
    fc.assert(
      fc.property(fc.dictionary(fc.oneof(anyString, loneSurrogates), value, { maxKeys: 4 }), (details) => {
        const fast = outcome(() => canonicalRowEncoding({ ...base, details }));
        const reference = outcome(() => canonicalize(details));
        if (reference.startsWith('error')) assert.equal(fast, reference);
        else assert.equal(fast, 'ok ' + canonicalize({ v: 1, ...base, details }));
      }),
      { numRuns: 1000 },
    );
    // Nesting at the limit and one past it.
    let deep: unknown = {};
    for (let i = 0; i < 255; i++) deep = [deep];
    assert.equal(outcome(() => canonicalRowEncoding({ ...base, details: { d: deep } })).startsWith('error'), true);
    assert.equal(outcome(() => canonicalRowEncoding({ ...base, details: { d: (deep as unknown[])[0] } })).startsWith('ok'), true);
  });

  test('isCanonicalObjectText accepts exactly the JCS text of a JSON object', () => {
    const canonicalText = anyDetails.map((d) => canonicalize(d));
    fc.assert(
      fc.property(canonicalText, (text) => assert.equal(isCanonicalObjectText(text), true, text)),
      { numRuns: 500 },
    );
    // Canonical text with one character inserted, deleted or replaced, mostly from JSON's own alphabet.
    const alphabet = fc.oneof(
      fc.constantFrom(...'{}[],:" \\/0123456789-+.eEtrufalsnbu\u0000\u001f\u007f\u2028\ud800\udc00\ud83d\ude00aAF'.split('')),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 2 }),
    );
    const mutated = fc
      .tuple(canonicalText, fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), alphabet)
      .map(([text, at, how, ch]) => {
        const i = at % (text.length + 1);
        if (how === 'insert') return text.slice(0, i) + ch + text.slice(i);
        if (how === 'delete') return text.slice(0, i) + text.slice(i + 1);
        return text.slice(0, i) + ch + text.slice(i + 1);
      });
    const reordered = anyDetails.map((d) => JSON.stringify(d));
    fc.assert(
      fc.property(fc.oneof(mutated, reordered, fc.string({ unit: 'binary', maxLength: 20 })), (text) =>
        assert.equal(isCanonicalObjectText(text), referenceIsCanonicalObjectText(text), JSON.stringify(text)),
      ),
      { numRuns: 5000 },
    );
    const nest = (n: number): string => '{"a":'.repeat(n) + '{}' + '}'.repeat(n);
    const cases: Array<[string, boolean]> = [
      ['{}', true],
      ['{"":0,"a":[1e+21,0.1,5e-324,-1,true,false,null],"b":{"c":"\\u001f\\b\\t\\n\\f\\r\\"\\\\\u007f\u2028😀"}}', true],
      ['{"__proto__":{"x":1}}', true],
      ['{"\\r":1,"1":2,"\u0080":3,"😀":4,"\ufb33":5}', true],
      [nest(255), true],
      [nest(256), false],
      ['{"a":"\\u001F"}', false],
      ['{"a":"\\u0008"}', false],
      ['{"a":"\\/"}', false],
      ['{"a":"\\u0041"}', false],
      ['{"a":"\\ud800"}', false],
      ['{"a":"\ud800"}', false],
      ['{"a":"\udc00\ud800"}', false],
      ['{"a":-0}', false],
      ['{"a":1E21}', false],
      ['{"a":1e21}', false],
      ['{"a":1.0}', false],
      ['{"a":01}', false],
      ['{"a":1e400}', false],
      ['{"a":1,"a":1}', false],
      ['{"b":1,"a":2}', false],
      ['{ "a":1}', false],
      ['{"a":1} ', false],
      ['[]', false],
      ['"x"', false],
      ['{"a":tru}', false],
      ['{"a":1', false],
      ['', false],
    ];
    for (const [text, want] of cases) {
      assert.equal(referenceIsCanonicalObjectText(text), want, `reference on ${JSON.stringify(text)}`);
      assert.equal(isCanonicalObjectText(text), want, JSON.stringify(text));
    }
  });

  test('ts is checked exactly as the regex in AUDIT-CHAIN.md says', () => {
    const TS_RULE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
    const base = { seq: 1, tenant: 'acme', actor: 'a', action: 'b', subject: 'c', details: {}, prevHash: GENESIS_HASH };
    const near = fc.tuple(anyTs, fc.nat(), fc.constantFrom(...'0123456789-:.TZtz x\u0660'.split(''), '', '00')).map(([ts, at, ch]) => {
      const i = at % (ts.length + 1);
      return ts.slice(0, i) + ch + ts.slice(i + 1);
    });
    fc.assert(
      fc.property(near, (ts) => {
        let accepted = true;
        try {
          computeRowHash({ ...base, ts });
        } catch (err) {
          assert.ok(err instanceof AuditChainError && err.code === AuditChainErrorCode.malformedRow);
          accepted = false;
        }
        assert.equal(accepted, TS_RULE.test(ts), ts);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('validateStoredAuditChain', () => {
  const N = 60;
  const chain = buildChain(N);

  test('every tampering the in-memory verifier names, the store verifier names the same way', () => {
    const signer = newSigner();
    const opts = { checkpoints: [checkpointAt(chain, N, signer)], trustedPublicKey: signer.publicKey };
    const seqArb = fc.integer({ min: 1, max: N });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ kind: fc.constant('edit' as const), k: seqArb, field: fc.constantFrom(...EDIT_FIELDS), n: seqArb }),
          fc.record({ kind: fc.constant('delete' as const), k: seqArb }),
          fc.record({ kind: fc.constant('insert' as const), k: seqArb, chained: fc.boolean() }),
          fc.record({ kind: fc.constant('swap' as const), i: seqArb, j: seqArb }),
        ),
        (t) => {
          const rows = chain.slice();
          if (t.kind === 'edit') rows[t.k - 1] = editRow(rows[t.k - 1]!, t.field, t.n);
          else if (t.kind === 'delete') rows.splice(t.k - 1, 1);
          else if (t.kind === 'insert') {
            const prevHash = t.chained ? (t.k === 1 ? GENESIS_HASH : chain[t.k - 2]!.hash) : randomHex64();
            const { hash: _h, ...orig } = chain[t.k - 1]!;
            rows.splice(t.k - 1, 0, rehash({ ...orig, actor: 'attacker', details: { forged: true }, prevHash }));
          } else {
            rows[t.i - 1] = chain[t.j - 1]!;
            rows[t.j - 1] = chain[t.i - 1]!;
          }
          const memory = validateAuditChain(rows, opts);
          assert.deepEqual(validateStoredAuditChain(rows.map(toStored), opts), memory);
          if (t.kind !== 'swap' || t.i !== t.j) assert.equal(memory.ok, false);
        },
      ),
      { numRuns: 400 },
    );
  });

  test('a stored hash is compared digit for digit: another spelling or type of the same digest is an edit', () => {
    const stored = chain.map(toStored);
    const k = 17;
    const right = stored[k - 1]!.hash;
    for (const hash of [right.toUpperCase(), right.slice(0, 63), right + '0', ` ${right}`, right.slice(0, 62) + right.slice(63) + right[62], 7, null]) {
      const edited = stored.slice();
      edited[k - 1] = { ...stored[k - 1]!, hash: hash as string };
      const result = validateStoredAuditChain(edited);
      assert.deepEqual([!result.ok && result.firstBadSeq, !result.ok && result.problem], [k, 'edited'], String(hash));
    }
    // And after those, the same verifier still verifies the whole chain (the bytes it keeps of the last hash it
    // compared are not taken for another row's).
    assert.equal(validateStoredAuditChain(stored).ok, true);
    assert.equal(validateAuditChain(chain).ok, true);
  });

  test('stored details text: an edit of the bytes, or non-canonical text under a recomputed hash, is an edit', () => {
    const stored = chain.map(toStored);
    assert.equal(validateStoredAuditChain(stored).ok, true);
    const k = 30;
    const { detailsText, hash: _h, ...fields } = stored[k - 1]!;
    // The attacker's hash function is right: over the canonical text it reproduces the stored hash.
    assert.equal(hashOverText(fields, detailsText), stored[k - 1]!.hash);
    const value = JSON.parse(detailsText) as Record<string, unknown>;
    const variants = [
      JSON.stringify(value, null, 1), // same value, whitespace
      JSON.stringify(Object.fromEntries(Object.entries(value).reverse())), // same value, member order
      detailsText.replace('1e+21', '1E21'), // same value, exponent form
      detailsText.slice(0, -1) + ',"usd":' + String(value.usd) + '}', // duplicate member
      '[' + detailsText + ']', // not an object
      detailsText.slice(0, -1), // not JSON
    ];
    for (const text of variants) {
      assert.notEqual(text, detailsText);
      const edited = stored.slice();
      edited[k - 1] = { ...stored[k - 1]!, detailsText: text };
      const plain = validateStoredAuditChain(edited);
      assert.deepEqual([!plain.ok && plain.firstBadSeq, !plain.ok && plain.problem], [k, 'edited'], text);
      // Even with the hash recomputed over the new bytes (and every later row rechained), it is refused.
      const forged = edited.slice(0, k - 1);
      let prev = stored[k - 2]!.hash;
      for (const row of edited.slice(k - 1)) {
        const { hash: _old, detailsText: text2, ...rest } = row;
        const next = { ...rest, prevHash: prev, detailsText: text2 };
        const hash = hashOverText(next, text2);
        forged.push({ ...next, hash });
        prev = hash;
      }
      const rehashed = validateStoredAuditChain(forged);
      assert.deepEqual([!rehashed.ok && rehashed.firstBadSeq, !rehashed.ok && rehashed.problem], [k, 'edited'], text);
    }
  });
});
