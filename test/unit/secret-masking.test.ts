/**
 * maskSecrets masks any run of 8 or more characters of a secret, not only the whole value, and stays linear on
 * megabytes of output. Checked against a brute-force reference on random texts.
 */
import { describe, test } from '@jest/globals';
import fc from 'fast-check';
import assert from '../support/assert';
import { MASK, MASK_RUN_LENGTH, maskSecrets, maskedFailure } from '../../activities/secrets';
import { ApplicationFailure } from '@temporalio/common';

/** Which characters of `text` a correct masker must hide: brute force over every substring of every value. */
function mustHide(text: string, values: readonly string[]): boolean[] {
  const hide = Array.from({ length: text.length }, () => false);
  for (const v of values) {
    const min = Math.min(MASK_RUN_LENGTH, v.length);
    for (let from = 0; from < v.length; from++) {
      for (let to = from + min; to <= v.length; to++) {
        const piece = v.slice(from, to);
        for (let at = text.indexOf(piece); at !== -1; at = text.indexOf(piece, at + 1)) for (let k = at; k < at + piece.length; k++) hide[k] = true;
      }
    }
  }
  return hide;
}

/** The text a reference masker returns: each maximal hidden stretch becomes one `***`. */
function reference(text: string, values: readonly string[]): string {
  const hide = mustHide(text, values.filter((v) => v.length > 0));
  let out = '';
  for (let i = 0; i < text.length; i++) {
    if (!hide[i]) out += text[i];
    else if (i === 0 || !hide[i - 1]) out += MASK;
  }
  return out;
}

const SECRET = 'sk-live-4f9a8b7c6d5e4f3a2b1c';

describe('maskSecrets', () => {
  test('every slice of 8 or more characters of a secret is masked, wherever it starts', () => {
    for (let from = 0; from < SECRET.length; from++) {
      for (let to = from + MASK_RUN_LENGTH; to <= SECRET.length; to++) {
        const slice = SECRET.slice(from, to);
        const out = maskSecrets(`before [${slice}] after`, [SECRET]);
        assert.equal(out, 'before [***] after', `slice ${from}..${to}`);
      }
    }
  });

  test('a slice of 7 characters is left alone (the documented threshold)', () => {
    const seven = SECRET.slice(5, 12);
    assert.equal(maskSecrets(`x ${seven} y`, [SECRET]), `x ${seven} y`);
  });

  test('whole values shorter than 8 characters are still masked; old behaviour kept', () => {
    assert.equal(maskSecrets('a=hunter2 b=hunter2', ['hunter2']), 'a=*** b=***');
    assert.equal(maskSecrets('x=abcdef', ['abc', 'abcdef']), 'x=***');
    assert.equal(maskSecrets('tail: hunt', ['hunter2'], true), 'tail: ***');
    assert.equal(maskSecrets('tail: hunt', ['hunter2'], false), 'tail: hunt');
    assert.equal(maskSecrets('nothing here', []), 'nothing here');
  });

  test('agrees with a brute-force reference on random texts and secrets (property)', () => {
    const alphabet = fc.constantFrom('a', 'b', 'c', 'd', '-', ' ', 'é', '\u{1F600}');
    const value = fc.string({ unit: alphabet, minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 3 }), fc.array(fc.oneof(value, fc.string({ unit: alphabet, maxLength: 10 })), { maxLength: 8 }), (values, parts) => {
        // Text made of pieces of the secrets and noise, so long shared runs are common.
        const text = parts.join('');
        assert.equal(maskSecrets(text, values), reference(text, values));
      }),
      { seed: 8, numRuns: 2000 },
    );
  });

  // Generous bound: the machine may be loaded (this file runs beside others); a quadratic scan of 2 MB would
  // take minutes, a linear one well under a second when idle.
  test('megabytes of output with many secrets are masked in linear time', () => {
    const secrets = Array.from({ length: 50 }, (_, i) => `secret-${i}-${'q'.repeat(i % 7)}-0123456789abcdef${i}`);
    const line = 'GET /index.html 200 1234 "curl/8.0" ok ';
    const text = line.repeat(Math.ceil(2_000_000 / line.length)) + secrets[17]!.slice(3, 20);
    const started = Date.now();
    const out = maskSecrets(text, secrets);
    const ms = Date.now() - started;
    assert.ok(out.endsWith(MASK), out.slice(-40));
    assert.ok(ms < 10_000, `${ms} ms for 2 MB`);
  });

  test('failures: the message and the details lose every slice of a secret', () => {
    const err = ApplicationFailure.nonRetryable(`bad token ${SECRET.slice(2, 14)} in line`, 'command_failed', { echoed: SECRET.slice(9) });
    const masked = maskedFailure(err, [SECRET]) as ApplicationFailure;
    assert.equal(masked.message, 'bad token *** in line');
    assert.deepEqual(masked.details, [{ echoed: MASK }]);
    assert.equal(masked.type, 'command_failed');
    assert.equal(masked.nonRetryable, true);
  });
});
