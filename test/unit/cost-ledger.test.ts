import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import fc from 'fast-check';
import { CostLedger, FRAMING_TOKENS, actualCost, inputTokenBound, nanoToUsd, usdToNano, utf8ByteLength, worstCaseCost } from '../../workflows/cost-ledger';
import { DEFAULT_PRICES, nanoUsdPerToken, priceTableProblems } from '../../workflows/prices';

const haiku = DEFAULT_PRICES['claude-haiku-4-5']!;

describe('cost ledger', () => {
  test('worst case = input tokens at the input price + max_tokens at the output price, in exact nano-dollars', () => {
    // haiku 4.5: $1 / MTok in = 1000 nano-USD per token, $5 / MTok out = 5000.
    assert.equal(worstCaseCost(haiku, 100, 1000), 100 * 1000 + 1000 * 5000);
    assert.equal(nanoToUsd(worstCaseCost(haiku, 100, 1000)), 0.0051);
    assert.equal(actualCost(haiku, 100, 20), 200_000);
    assert.equal(nanoUsdPerToken(0.8), 800);
    assert.equal(nanoUsdPerToken(22.5), 22_500);
  });

  test('a reservation that would pass the cap is refused and books nothing', () => {
    const l = new CostLedger(usdToNano(0.008));
    assert.equal(l.reserve('a', usdToNano(0.005)).fits, true);
    const second = l.reserve('b', usdToNano(0.005));
    assert.equal(second.fits, false);
    assert.equal(second.reserved, usdToNano(0.005));
    assert.equal(l.reserved, usdToNano(0.005), 'the refused one holds nothing');
    l.settle('a', usdToNano(0.0002));
    assert.equal(l.spent, usdToNano(0.0002));
    assert.equal(l.reserved, 0);
    assert.equal(l.reserve('b', usdToNano(0.005)).fits, true, 'real usage freed the rest');
  });

  test('exactly at the cap fits; one nano-dollar more does not', () => {
    const l = new CostLedger(1000);
    assert.equal(l.reserve('x', 1000).fits, true);
    const m = new CostLedger(1000);
    assert.equal(m.reserve('x', 1001).fits, false);
  });

  test('release drops a reservation; a key cannot reserve twice', () => {
    const l = new CostLedger(100);
    l.reserve('x', 60);
    assert.throws(() => l.reserve('x', 10));
    l.release('x');
    assert.equal(l.reserved, 0);
    assert.equal(l.spent, 0);
  });

  test('property: whatever the order of reserve/settle/release, spent + reserved never passes the cap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1e9 }),
        fc.array(fc.tuple(fc.constantFrom('reserve', 'settle', 'release'), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 5e8 })), { maxLength: 60 }),
        (cap, ops) => {
          const l = new CostLedger(cap);
          const held = new Map<string, number>();
          for (const [op, k, amount] of ops) {
            const key = `k${k}`;
            if (op === 'reserve' && !held.has(key)) {
              if (l.reserve(key, amount).fits) held.set(key, amount);
            } else if (op === 'settle' && held.has(key)) {
              // Real usage never exceeds the worst case that was reserved.
              l.settle(key, Math.min(amount, held.get(key)!));
              held.delete(key);
            } else if (op === 'release' && held.has(key)) {
              l.release(key);
              held.delete(key);
            }
            assert.ok(l.spent + l.reserved <= cap);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('price table', () => {
  test('every default model has sane prices and the operator format is checked', () => {
    assert.deepEqual(priceTableProblems(DEFAULT_PRICES), []);
    assert.ok(Object.keys(DEFAULT_PRICES).length >= 10);
    assert.deepEqual(priceTableProblems({ 'm-1': { inputPerMTok: 1, outputPerMTok: 2 } }), []);
    assert.equal(priceTableProblems({ 'm 1': { inputPerMTok: 1, outputPerMTok: 2 } }).length, 1);
    assert.equal(priceTableProblems({ m: { inputPerMTok: -1, outputPerMTok: 2 } }).length, 1);
    assert.equal(priceTableProblems({ m: { inputPerMTok: 1 } }).length, 1);
    assert.equal(priceTableProblems([]).length, 1);
  });
});

describe('input token bound', () => {
  test('utf8ByteLength (workflow code, no Buffer) equals Buffer.byteLength for any string, lone surrogates included', () => {
    for (const t of ['', 'a', 'é', '€', '😀', 'a😀b', '\ud800', 'x\udc00y', '\ud83d\ud83d\ude00']) assert.equal(utf8ByteLength(t), Buffer.byteLength(t, 'utf8'), JSON.stringify(t));
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (t) => utf8ByteLength(t) === Buffer.byteLength(t, 'utf8')));
  });

  test('the bound is the UTF-8 bytes of system and prompt plus the framing', () => {
    assert.equal(inputTokenBound('sys', 'héllo'), 3 + 6 + FRAMING_TOKENS);
  });
});
