import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fc from 'fast-check';
import {
  REJECT_REASONS,
  RejectCounters,
  ReplayWindow,
  ReplayWindowError,
  UINT64_MAX,
  type RejectReason,
} from '../../protocol/replay-window';

const isCode = (code: string) => (e: unknown) => e instanceof ReplayWindowError && e.code === code;

/** The specification as a model: a set of accepted counters and the highest one. */
class ModelWindow {
  private readonly seen = new Set<bigint>();
  private top = 0n;
  constructor(readonly size: number) {}
  check(c: bigint): 'ok' | 'replay' | 'too_old' {
    if (c > this.top) return 'ok';
    if (this.top - c >= BigInt(this.size)) return 'too_old';
    return this.seen.has(c) ? 'replay' : 'ok';
  }
  accept(c: bigint): void {
    this.seen.add(c);
    if (c > this.top) this.top = c;
  }
}

describe('ReplayWindow', () => {
  test('a fresh window accepts a counter once, then calls it a replay', () => {
    const w = new ReplayWindow();
    assert.equal(w.check(1n), 'ok');
    w.accept(1n);
    assert.equal(w.check(1n), 'replay');
    assert.throws(() => w.accept(1n), isCode('not_acceptable'));
  });

  test('check does not mutate', () => {
    const w = new ReplayWindow();
    for (let i = 0; i < 3; i++) assert.equal(w.check(5n), 'ok');
    assert.equal(w.highest, 0n);
    assert.deepEqual(w.toJSON(), new ReplayWindow().toJSON());
  });

  test('counter 0 works like any other', () => {
    const w = new ReplayWindow();
    assert.equal(w.check(0n), 'ok');
    w.accept(0n);
    assert.equal(w.check(0n), 'replay');
  });

  test('reorder inside the window is accepted once; at the edge and beyond it is too old', () => {
    const w = new ReplayWindow(64);
    w.accept(100n);
    assert.equal(w.check(37n), 'ok'); // top - 37 = 63 < 64: the oldest counter still inside
    w.accept(37n);
    assert.equal(w.check(37n), 'replay');
    assert.equal(w.check(36n), 'too_old'); // top - 36 = 64
    assert.equal(w.check(99n), 'ok');
  });

  test('sliding clears the ring slots it enters (no stale bit reads as a replay)', () => {
    const w = new ReplayWindow(64); // three blocks in the ring: counters 5 and 101 share slot 0, bit 5
    w.accept(5n);
    w.accept(40n);
    w.accept(102n); // two blocks forward: a partial slide, not a reset
    assert.equal(w.check(101n), 'ok');
    assert.equal(w.check(40n), 'replay');
    assert.equal(w.check(5n), 'too_old');
    w.accept(1_000_000n);
    assert.equal(w.check(1_000_000n - 63n), 'ok');
    assert.equal(w.check(1_000_000n - 64n), 'too_old');
  });

  test('the oldest counter inside the window keeps its bit after a slide (the spare block)', () => {
    const w = new ReplayWindow(64);
    w.accept(1n);
    w.accept(64n); // top - 1 = 63 < 64: counter 1 is still inside the window
    assert.equal(w.check(1n), 'replay');
  });

  test('works at the top of the uint64 range and refuses counters outside it', () => {
    const w = new ReplayWindow();
    w.accept(UINT64_MAX);
    assert.equal(w.check(UINT64_MAX), 'replay');
    assert.equal(w.check(UINT64_MAX - 1n), 'ok');
    assert.throws(() => w.check(UINT64_MAX + 1n), isCode('invalid_argument'));
    assert.throws(() => w.check(-1n), isCode('invalid_argument'));
  });

  test('window sizes must be positive multiples of 32', () => {
    for (const bad of [0, 31, 33, -32, 1.5, 1 << 20]) {
      assert.throws(() => new ReplayWindow(bad), isCode('invalid_argument'), String(bad));
    }
  });

  test('toJSON/fromJSON round trip keeps every verdict (the "after a restart" case)', () => {
    const w = new ReplayWindow(128);
    for (const c of [3n, 200n, 150n, 199n, 90n]) w.accept(c);
    const restored = ReplayWindow.fromJSON(JSON.parse(JSON.stringify(w.toJSON())));
    for (let c = 0n; c <= 260n; c++) assert.equal(restored.check(c), w.check(c), `counter ${c}`);
    assert.equal(restored.check(150n), 'replay');
  });

  test('fromJSON refuses anything toJSON did not write', () => {
    const good = new ReplayWindow(64).toJSON();
    const bads: unknown[] = [
      null,
      'x',
      { ...good, v: 2 },
      { ...good, size: 65 },
      { ...good, top: '-1' },
      { ...good, top: '18446744073709551616' },
      { ...good, top: '01' },
      { ...good, bitmap: good.bitmap.slice(2) },
      { ...good, bitmap: good.bitmap.replace(/^0/, 'g') },
    ];
    for (const bad of bads) assert.throws(() => ReplayWindow.fromJSON(bad), isCode('invalid_state'), JSON.stringify(bad));
  });

  test('property: any sequence — each counter accepted at most once; accepted iff new and within the window', () => {
    const size = 64;
    // A walk around the highest counter so far, so that replays, reorders inside the window, the window's
    // edge and slides of one or many blocks all happen often; sometimes it starts near 2^64.
    const walk = fc
      .tuple(
        fc.constantFrom(0n, 1000n, UINT64_MAX - 400n),
        fc.array(fc.oneof(fc.integer({ min: -80, max: 8 }), fc.integer({ min: 0, max: 200 })), { maxLength: 200 }),
      )
      .map(([start, steps]) => {
        let high = start;
        return steps.map((step) => {
          let c = high + BigInt(step);
          if (c < 0n) c = 0n;
          if (c > UINT64_MAX) c = UINT64_MAX;
          if (c > high) high = c;
          return c;
        });
      });
    fc.assert(
      fc.property(walk, fc.boolean(), (counters, persistMidway) => {
        let w = new ReplayWindow(size);
        const model = new ModelWindow(size);
        const accepted = new Set<bigint>();
        counters.forEach((c, i) => {
          if (persistMidway && i === Math.floor(counters.length / 2)) {
            w = ReplayWindow.fromJSON(JSON.parse(JSON.stringify(w.toJSON())));
          }
          const verdict = w.check(c);
          assert.equal(verdict, model.check(c), `counter ${c} at step ${i}`);
          if (verdict === 'ok') {
            assert.ok(!accepted.has(c), `counter ${c} accepted twice`);
            w.accept(c);
            model.accept(c);
            accepted.add(c);
          }
        });
      }),
      { numRuns: 300 },
    );
  });
});

describe('RejectCounters', () => {
  test('counts by reason, reports every reason, calls the hook', () => {
    const seen: Array<[RejectReason, number]> = [];
    const counters = new RejectCounters((reason, n) => seen.push([reason, n]));
    counters.record('replay');
    counters.record('replay');
    counters.record('bad_signature');
    assert.equal(counters.get('replay'), 2);
    assert.equal(counters.total, 3);
    const snap = counters.snapshot();
    assert.deepEqual(Object.keys(snap).sort(), [...REJECT_REASONS].sort());
    assert.equal(snap.stale, 0);
    assert.deepEqual(seen, [
      ['replay', 1],
      ['replay', 2],
      ['bad_signature', 1],
    ]);
    assert.throws(() => counters.record('nope' as RejectReason), isCode('invalid_argument'));
  });
});
