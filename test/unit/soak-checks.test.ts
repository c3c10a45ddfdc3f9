/**
 * The soak tests' checks (test/support/soak-checks.ts) fail on a bad result: a lost or changed acknowledged audit
 * row, and at the SIEM a gap, a duplicate that no kill explains, or two different events for one row.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { acknowledgedRowProblems, checkShippedCopy, shippedCopyProblems, soakRounds, type ReceivedRow } from '../support/soak-checks';

const row = (seq: number, variant = ''): ReceivedRow => ({ seq, text: `{"kind":"orch.audit.row","seq":${seq}${variant}}` });
const rows = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => row(from + i));

describe('soak counts', () => {
  test('short in npm test, long under test:soak, ORCH_SOAK_KILLS wins; a bad count is refused', () => {
    assert.equal(soakRounds(4, 40, {}), 4);
    assert.equal(soakRounds(4, 40, { ORCH_SOAK: '1' }), 40);
    assert.equal(soakRounds(4, 40, { ORCH_SOAK: '1', ORCH_SOAK_KILLS: '7' }), 7);
    assert.throws(() => soakRounds(4, 40, { ORCH_SOAK_KILLS: 'many' }), /ORCH_SOAK_KILLS must be a whole number/);
    assert.throws(() => soakRounds(4, 40, { ORCH_SOAK_KILLS: '0' }), /at least 1/);
  });
});

describe('acknowledged audit rows', () => {
  const acked = new Map([
    [1, 'a'.repeat(64)],
    [2, 'b'.repeat(64)],
  ]);
  test('all there: no problem', () => {
    assert.deepEqual(acknowledgedRowProblems(new Map([...acked, [3, 'c'.repeat(64)]]), acked), []);
  });
  test('one missing, one changed: both named', () => {
    assert.deepEqual(acknowledgedRowProblems(new Map([[2, 'd'.repeat(64)]]), acked), ['acknowledged row 1 is missing', 'acknowledged row 2 changed: bbbbbbbbbbbb… became dddddddddddd…']);
  });
});

describe('what the SIEM holds', () => {
  test('every row once: whole', () => {
    const report = checkShippedCopy(rows(1, 10), 10, new Map());
    assert.deepEqual(shippedCopyProblems(report), []);
    assert.equal(report.rows, 10);
    assert.equal(report.resent, 0);
  });

  test('a byte-identical re-send of rows acknowledged while the cursor stayed behind: whole, counted as re-sent', () => {
    const unsaved = new Map([
      [4, 1],
      [5, 1],
    ]);
    const report = checkShippedCopy([...rows(1, 5), ...rows(4, 10)], 10, unsaved);
    assert.deepEqual(shippedCopyProblems(report), []);
    assert.equal(report.resent, 2);
  });

  test('a deliberately duplicated row that no kill explains fails', () => {
    const report = checkShippedCopy([...rows(1, 10), row(7)], 10, new Map([[4, 1]]));
    assert.deepEqual(report.unexplained, [7]);
    assert.deepEqual(shippedCopyProblems(report), ['duplicate not explained by a kill after the acknowledgement: row 7']);
  });

  test('a row re-sent more often than its kills explain fails', () => {
    const report = checkShippedCopy([...rows(1, 10), row(4), row(4)], 10, new Map([[4, 1]]));
    assert.deepEqual(report.unexplained, [4]);
  });

  test('a gap fails, naming the rows', () => {
    const report = checkShippedCopy([...rows(1, 3), ...rows(6, 10)], 10, new Map());
    assert.deepEqual(shippedCopyProblems(report), ['gap: no event holds row 4, 5']);
  });

  test('a lost tail fails: the head is what must be reached', () => {
    assert.deepEqual(checkShippedCopy(rows(1, 8), 10, new Map()).missing, [9, 10]);
  });

  test('two different events for one row fail, even where a re-send was allowed', () => {
    const report = checkShippedCopy([...rows(1, 10), row(5, ',"x":1')], 10, new Map([[5, 1]]));
    assert.deepEqual(shippedCopyProblems(report), ['different events hold row 5']);
  });

  test('rows past the head fail', () => {
    assert.deepEqual(shippedCopyProblems(checkShippedCopy(rows(1, 11), 10, new Map())), ["rows after the chain's head: 11"]);
  });
});
