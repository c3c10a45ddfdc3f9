import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { DEFAULT_RATE, RateLimiter, TokenBucket } from '../../relay/token-bucket';
import { OfflineQueue } from '../../relay/offline-queue';

describe('token bucket', () => {
  test('defaults are 60 per second, burst 120', () => {
    assert.deepEqual(DEFAULT_RATE, { perSecond: 60, burst: 120 });
  });

  test('a full bucket gives exactly `burst` tokens at once, then refuses', () => {
    const b = new TokenBucket({ perSecond: 60, burst: 120 }, 1000);
    let taken = 0;
    while (b.take(1000)) taken++;
    assert.equal(taken, 120);
    assert.equal(b.take(1000), false);
  });

  test('it refills at the configured rate, fractions included', () => {
    const b = new TokenBucket({ perSecond: 10, burst: 10 }, 0);
    for (let i = 0; i < 10; i++) assert.equal(b.take(0), true);
    assert.equal(b.take(99), false); // 0.99 of a token
    assert.equal(b.take(100), true); // one token after 100 ms
    assert.equal(b.take(100), false);
    let taken = 0;
    for (let t = 101; t <= 1100; t++) if (b.take(t)) taken++;
    assert.equal(taken, 10); // one second at 10/s
  });

  test('it never holds more than `burst`, however long it was idle', () => {
    const b = new TokenBucket({ perSecond: 100, burst: 5 }, 0);
    let taken = 0;
    while (b.take(3_600_000)) taken++;
    assert.equal(taken, 5);
  });

  test('a clock stepping back mints nothing', () => {
    const b = new TokenBucket({ perSecond: 1, burst: 1 }, 10_000);
    assert.equal(b.take(10_000), true);
    assert.equal(b.take(5_000), false);
    assert.equal(b.take(10_500), false);
    assert.equal(b.take(11_000), true);
  });

  test('limiter: keys have separate buckets, and sweeping forgets only full ones', () => {
    const l = new RateLimiter({ perSecond: 1, burst: 2 });
    assert.equal(l.take('a', 0), true);
    assert.equal(l.take('a', 0), true);
    assert.equal(l.take('a', 0), false);
    assert.equal(l.take('b', 0), true);
    l.sweep(500); // a has 0.5, b has 1.5: neither full
    assert.equal(l.size, 2);
    assert.equal(l.take('a', 500), false); // sweeping did not reset a
    l.sweep(10_000);
    assert.equal(l.size, 0);
  });
});

describe('offline queue', () => {
  const item = (bytes: number, expiresAt = 1000, msgId = '00'.repeat(16)) => ({ frame: Buffer.alloc(bytes), msgId, expiresAt });

  test('bounded in count per recipient: the newest is refused', () => {
    const q = new OfflineQueue({ maxCount: 2, maxBytes: 1000, ttlMs: 1000, maxTotalBytes: 10_000 });
    assert.deepEqual(q.enqueue('r', item(10)), { ok: true });
    assert.deepEqual(q.enqueue('r', item(10)), { ok: true });
    assert.deepEqual(q.enqueue('r', item(10)), { ok: false, reason: 'queue_full' });
    assert.deepEqual(q.enqueue('other', item(10)), { ok: true });
    assert.equal(q.count, 3);
  });

  test('bounded in bytes per recipient and in total', () => {
    const q = new OfflineQueue({ maxCount: 100, maxBytes: 100, ttlMs: 1000, maxTotalBytes: 150 });
    assert.deepEqual(q.enqueue('r', item(60)), { ok: true });
    assert.deepEqual(q.enqueue('r', item(41)), { ok: false, reason: 'queue_full' });
    assert.deepEqual(q.enqueue('r', item(40)), { ok: true });
    assert.deepEqual(q.enqueue('s', item(51)), { ok: false, reason: 'relay_full' }); // total would be 151: all queues are full, not s's
    assert.deepEqual(q.enqueue('s', item(50)), { ok: true });
    assert.equal(q.bytes, 150);
  });

  test('drain splits live from expired and empties the recipient; sweep drops expired ones', () => {
    const q = new OfflineQueue({ maxCount: 10, maxBytes: 1000, ttlMs: 1000, maxTotalBytes: 10_000 });
    q.enqueue('r', item(1, 100));
    q.enqueue('r', item(2, 200));
    q.enqueue('s', item(3, 100));
    q.enqueue('s', item(4, 300));
    const d = q.drain('r', 150);
    assert.deepEqual([d.live.length, d.expired.length], [1, 1]);
    assert.equal(q.countFor('r'), 0);
    const swept = q.sweep(150);
    assert.deepEqual(swept.map((s) => s.item.frame.length), [3]);
    assert.equal(q.count, 1);
    assert.equal(q.bytes, 4);
  });
});
