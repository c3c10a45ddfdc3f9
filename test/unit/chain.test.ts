/**
 * workflows/chain.ts: the two ways the runner and the session chain a node's steps. Each keeps exactly what the code
 * it replaced did (runs replay through the form they were recorded with): the same microtask turns to settle, and
 * the same answer to a synchronous throw.
 */
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { awaitStep, awaitTrack, thenStep, thenTrack } from '../../workflows/chain';

/** Microtask turns until `p` settles (at most 20). */
async function turnsToSettle(p: Promise<unknown>): Promise<number> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let turns = 0; turns < 20; turns++) {
    if (settled) return turns;
    await Promise.resolve();
  }
  return -1;
}

describe('the runner step chains', () => {
  test('both pass the value on, and settle in as many turns as the async function and its await they replaced', async () => {
    const seen: number[] = [];
    const replaced = async (step: () => Promise<number>) => {
      const r = await step();
      seen.push(r);
    };
    const want = await turnsToSettle(replaced(() => Promise.resolve(1)));
    assert.equal(await turnsToSettle(awaitStep(() => Promise.resolve(2), (r) => void seen.push(r))), want);
    assert.equal(await turnsToSettle(thenStep(() => Promise.resolve(3), (r) => void seen.push(r))), want);
    assert.deepEqual(seen, [1, 2, 3]);
  });

  test('a synchronous throw: the awaiting form rejects, the then() form throws to its caller (as executeLean did)', async () => {
    const boom = () => {
      throw new Error('render failed');
    };
    const rejected = awaitStep(boom, () => undefined);
    await assert.rejects(rejected, /render failed/);
    assert.throws(() => thenStep(boom, () => undefined), /render failed/);
  });
});

describe('the session track chains', () => {
  for (const [name, chain] of [
    ['awaitTrack', awaitTrack],
    ['thenTrack', thenTrack],
  ] as const) {
    test(`${name}: start first, the body's failure through failed(), start's failure as it is`, async () => {
      const calls: string[] = [];
      const ok = await chain(
        () => void calls.push('start'),
        () => (calls.push('body'), Promise.resolve(7)),
        () => assert.fail('no failure'),
      );
      assert.equal(ok, 7);
      assert.deepEqual(calls, ['start', 'body']);

      const failed = (err: unknown) => new Error(`node failed: ${(err as Error).message}`);
      await assert.rejects(chain(() => undefined, () => Promise.reject(new Error('activity')), failed), /node failed: activity/);
      await assert.rejects(
        chain(
          () => undefined,
          () => {
            throw new Error('sync');
          },
          failed,
        ),
        /node failed: sync/,
      );
      let bodyRan = false;
      await assert.rejects(
        chain(
          () => {
            throw new Error('used twice');
          },
          () => ((bodyRan = true), Promise.resolve(0)),
          failed,
        ),
        (err: Error) => err.message === 'used twice',
      );
      assert.equal(bodyRan, false);
    });
  }

  test('both settle in as many turns as the async trackAwaiting they replaced, on success and on failure', async () => {
    const replaced = async (body: () => Promise<number>) => {
      try {
        return await body();
      } catch (err) {
        throw new Error(String(err));
      }
    };
    for (const body of [() => Promise.resolve(1), () => Promise.reject(new Error('x'))]) {
      const want = await turnsToSettle(replaced(body));
      for (const chain of [awaitTrack, thenTrack]) {
        const p = chain(() => undefined, body, (err) => new Error(String(err)));
        assert.equal(await turnsToSettle(p), want);
        await p.catch(() => undefined);
      }
    }
  });
});
