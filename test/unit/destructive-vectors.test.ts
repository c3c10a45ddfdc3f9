/**
 * Destructive-check vectors (protocol/vectors/destructive.json): the committed file is what the generator writes,
 * so it cannot go stale against protocol/destructive.ts, and it puts every pattern to the Go port
 * (agent/internal/policy/destructive_vectors_test.go), flagged and harmless argvs both.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fs from 'node:fs';
import { DESTRUCTIVE_PATTERN_NAMES, destructivePattern } from '../../protocol/destructive';
import {
  DESTRUCTIVE_VECTORS_PATH,
  renderDestructiveVectors,
  type DestructiveVector,
} from '../../protocol/vectors/generate-destructive-vectors';

const text = fs.readFileSync(DESTRUCTIVE_VECTORS_PATH, 'utf8');
const vectors = JSON.parse(text) as DestructiveVector[];

describe('destructive-check vectors', () => {
  test('the committed file is what the generator writes (npx tsx protocol/vectors/generate-destructive-vectors.ts)', () => {
    assert.equal(text, renderDestructiveVectors());
  });

  test('every vector is destructivePattern\'s answer', () => {
    const wrong = vectors.filter((v) => {
      const rule = destructivePattern(v.argv);
      return v.flagged !== (rule !== undefined) || v.rule !== rule;
    });
    assert.deepEqual(wrong.slice(0, 20), []);
  });

  test('every pattern name is exercised, and thousands of argvs on either side', () => {
    const rules = new Set(vectors.map((v) => v.rule));
    assert.deepEqual(DESTRUCTIVE_PATTERN_NAMES.filter((name) => !rules.has(name)), []);
    assert.ok(vectors.filter((v) => v.flagged).length > 3000);
    assert.ok(vectors.filter((v) => !v.flagged).length > 2000);
    assert.equal(new Set(vectors.map((v) => JSON.stringify(v.argv))).size, vectors.length, 'each argv once');
  });

  test('the file stays small enough to review and to commit', () => {
    assert.ok(Buffer.byteLength(text) < 1_500_000, `${Buffer.byteLength(text)} bytes`);
  });
});
