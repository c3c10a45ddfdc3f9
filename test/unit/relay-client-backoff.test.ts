import { test } from '@jest/globals';
import assert from '../support/assert';
import { backoffDelay } from '../../protocol/relay-client';

test('backoff: the ceiling doubles from minMs and stops at maxMs; the delay stays in [ceiling/2, ceiling]', () => {
  const ceilings = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000];
  ceilings.forEach((ceiling, attempt) => {
    assert.equal(backoffDelay(attempt, 500, 30_000, () => 0), ceiling / 2, `attempt ${attempt} low end`);
    assert.equal(backoffDelay(attempt, 500, 30_000, () => 1), ceiling, `attempt ${attempt} high end`);
  });
  assert.equal(backoffDelay(10_000, 500, 30_000, () => 1), 30_000); // no overflow to Infinity
});

test('backoff: jitter spreads clients that start together', () => {
  const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(3, 500, 30_000)));
  assert.ok(delays.size > 25, `only ${delays.size} distinct delays`);
  for (const d of delays) assert.ok(d >= 2000 && d <= 4000);
});
