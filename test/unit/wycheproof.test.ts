/**
 * The primitives wrappers against every case of Project Wycheproof (../shared/vectors/wycheproof/, from the repo
 * root). `valid` must pass with the exact expected output, `invalid` must be rejected; `acceptable` cases are
 * counted by what the wrapper did, and for X25519 every low-order public key must be rejected.
 */
import { afterAll, describe, test } from '@jest/globals';
import assert from '../support/assert';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CryptoError,
  chacha20Poly1305Open,
  chacha20Poly1305Seal,
  ed25519KeyPairFromSeed,
  kdf,
  signDetached,
  verifyDetached,
  x25519,
  xchacha20Poly1305Open,
  xchacha20Poly1305Seal,
} from '../../protocol/primitives';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const vectorDir = join(repoRoot, '..', 'shared', 'vectors', 'wycheproof');

interface WycheproofTest {
  tcId: number;
  comment: string;
  flags: string[];
  result: 'valid' | 'invalid' | 'acceptable';
  [field: string]: unknown;
}
interface WycheproofFile {
  algorithm: string;
  numberOfTests: number;
  testGroups: Array<{ tests: WycheproofTest[]; [field: string]: unknown }>;
}

function load(name: string): WycheproofFile {
  const path = join(vectorDir, name);
  // Fail loudly: a missing file must not look like "all zero cases passed".
  assert.ok(existsSync(path), `Wycheproof vectors missing: ${path} (see ../shared/vectors/README.md)`);
  const file = JSON.parse(readFileSync(path, 'utf8')) as WycheproofFile;
  const count = file.testGroups.reduce((n, g) => n + g.tests.length, 0);
  assert.ok(count > 0, `${name}: zero test cases`);
  assert.equal(count, file.numberOfTests, `${name}: numberOfTests does not match the cases present`);
  return file;
}

const hex = (s: unknown): Buffer => {
  assert.equal(typeof s, 'string');
  return Buffer.from(s as string, 'hex');
};

const summary: string[] = [];
afterAll(() => {
  // Printed so a run shows how many cases each file really exercised.
  for (const line of summary) console.log(line);
});

type Tally = Record<string, number>;
const bump = (t: Tally, k: string): void => {
  t[k] = (t[k] ?? 0) + 1;
};

function aeadSuite(
  fileName: string,
  seal: typeof chacha20Poly1305Seal,
  open: typeof chacha20Poly1305Open,
): void {
  test(fileName, () => {
    const file = load(fileName);
    const tally: Tally = {};
    for (const group of file.testGroups) {
      for (const t of group.tests) {
        const where = `${fileName} tcId ${t.tcId} (${t.comment})`;
        const key = hex(t.key);
        const iv = hex(t.iv);
        const aad = hex(t.aad);
        const msg = hex(t.msg);
        const expected = Buffer.concat([hex(t.ct), hex(t.tag)]);
        if (t.result === 'valid') {
          assert.deepEqual(seal(key, iv, msg, aad), expected, `${where}: seal`);
          assert.deepEqual(open(key, iv, expected, aad), msg, `${where}: open`);
          bump(tally, 'valid passed');
        } else if (t.result === 'invalid') {
          // Invalid nonce sizes are a caller error (typed throw); a modified tag is hostile input (null).
          let rejectedBy: string;
          try {
            const out = open(key, iv, expected, aad);
            assert.equal(out, null, `${where}: invalid case was accepted`);
            rejectedBy = 'null';
          } catch (err) {
            assert.ok(err instanceof CryptoError, `${where}: unexpected ${String(err)}`);
            assert.equal(err.code, 'invalid_length', where);
            rejectedBy = 'invalid_length';
          }
          bump(tally, `invalid rejected (${rejectedBy})`);
        } else {
          assert.fail(`${where}: unexpected acceptable case; decide and record what the wrapper does`);
        }
      }
    }
    summary.push(`${fileName}: ${JSON.stringify(tally)}`);
    assert.equal(Object.values(tally).reduce((a, b) => a + b, 0), file.numberOfTests);
  });
}

describe('Wycheproof', () => {
  aeadSuite('chacha20_poly1305_test.json', chacha20Poly1305Seal, chacha20Poly1305Open);
  aeadSuite('xchacha20_poly1305_test.json', xchacha20Poly1305Seal, xchacha20Poly1305Open);

  test('x25519_test.json', () => {
    const file = load('x25519_test.json');
    const tally: Tally = {};
    for (const group of file.testGroups) {
      for (const t of group.tests) {
        const where = `x25519 tcId ${t.tcId} (${t.comment}; ${t.flags.join(',')})`;
        const expected = hex(t.shared);
        const lowOrder = t.flags.includes('LowOrderPublic') || t.flags.includes('ZeroSharedSecret') || expected.every((b) => b === 0);
        let shared: Buffer | null = null;
        try {
          shared = x25519(hex(t.private), hex(t.public));
        } catch (err) {
          assert.ok(err instanceof CryptoError && err.code === 'low_order_point', `${where}: unexpected ${String(err)}`);
        }
        if (t.result === 'valid') {
          assert.ok(shared, `${where}: valid case rejected`);
          assert.deepEqual(shared, expected, where);
          bump(tally, 'valid passed');
        } else if (t.result === 'invalid') {
          assert.equal(shared, null, `${where}: invalid case accepted`);
          bump(tally, 'invalid rejected');
        } else if (lowOrder) {
          // The point of the wrapper: a key that forces a known shared secret is refused.
          assert.equal(shared, null, `${where}: low-order public key accepted`);
          bump(tally, 'acceptable low-order rejected');
        } else if (shared === null) {
          bump(tally, `acceptable rejected (${t.flags.join(',')})`);
        } else {
          assert.deepEqual(shared, expected, `${where}: acceptable case computed a wrong secret`);
          bump(tally, 'acceptable computed as expected');
        }
      }
    }
    summary.push(`x25519_test.json: ${JSON.stringify(tally)}`);
    assert.ok((tally['acceptable low-order rejected'] ?? 0) > 0, 'no low-order case exercised');
    assert.equal(Object.values(tally).reduce((a, b) => a + b, 0), file.numberOfTests);
  });

  test('ed25519_test.json', () => {
    const file = load('ed25519_test.json');
    const tally: Tally = {};
    for (const group of file.testGroups) {
      // This release of the vectors carries public keys only, so signing is checked by the RFC 8032 test below.
      const pk = hex((group.publicKey as { pk: string }).pk);
      for (const t of group.tests) {
        const where = `ed25519 tcId ${t.tcId} (${t.comment}; ${t.flags.join(',')})`;
        const msg = hex(t.msg);
        const sig = hex(t.sig);
        const ok = verifyDetached(sig, msg, pk);
        if (t.result === 'valid') {
          assert.equal(ok, true, `${where}: valid signature rejected`);
          bump(tally, 'valid passed');
        } else if (t.result === 'invalid') {
          assert.equal(ok, false, `${where}: invalid signature accepted`);
          bump(tally, 'invalid rejected');
        } else {
          bump(tally, `acceptable ${ok ? 'accepted' : 'rejected'}`);
        }
      }
    }
    summary.push(`ed25519_test.json: ${JSON.stringify(tally)}`);
    const cases = (tally['valid passed'] ?? 0) + (tally['invalid rejected'] ?? 0) + (tally['acceptable accepted'] ?? 0) + (tally['acceptable rejected'] ?? 0);
    assert.equal(cases, file.numberOfTests);
  });
});

describe('Ed25519 signing (RFC 8032 section 7.1, TEST 2)', () => {
  test('seed to key pair and signature are deterministic and match the RFC', () => {
    const kp = ed25519KeyPairFromSeed(hex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb'));
    assert.equal(kp.publicKey.toString('hex'), '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c');
    const sig = signDetached(hex('72'), kp.secretKey);
    assert.equal(
      sig.toString('hex'),
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
    );
    assert.equal(verifyDetached(sig, hex('72'), kp.publicKey), true);
  });
});

describe('KDF (keyed BLAKE2b) known answers', () => {
  test('BLAKE2b-512 keyed, reference KAT (blake2b-kat.txt, empty input, key 00..3f)', () => {
    const key = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    assert.equal(
      kdf(key, Buffer.alloc(0), 64).toString('hex'),
      '10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568',
    );
  });

  test('refuses keys and outputs outside the safe range', () => {
    assert.throws(() => kdf(Buffer.alloc(8), Buffer.alloc(0), 32), (e: unknown) => e instanceof CryptoError && e.code === 'invalid_length');
    assert.throws(() => kdf(Buffer.alloc(32), Buffer.alloc(0), 8), (e: unknown) => e instanceof CryptoError && e.code === 'invalid_length');
  });
});
