/**
 * The Go agent's native fuzz targets, long: 2 minutes each under `npm run test:soak` (ORCH_FUZZ_SECONDS sets
 * another length). `npm test` fuzzes each for 5 s in test/unit/go-agent.test.ts, so this file is skipped there.
 * A crash fails the test; the input that found it is saved under the package's testdata/fuzz, to keep in the repo.
 */
import { describe, test } from '@jest/globals';
import { FUZZ_TARGETS, cleanFuzzCache, fuzz } from '../support/go';

const soak = process.env.ORCH_SOAK === '1';
const seconds = Number(process.env.ORCH_FUZZ_SECONDS ?? 120);
if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`ORCH_FUZZ_SECONDS must be a whole number of seconds, not "${process.env.ORCH_FUZZ_SECONDS}"`);

(soak ? describe : describe.skip)(`Go agent fuzz targets, ${seconds} s each (npm run test:soak)`, () => {
  test('go clean -fuzzcache first, as a clean machine starts', cleanFuzzCache, 60_000);
  for (const [target, pkg] of FUZZ_TARGETS) {
    test(`fuzz ${target} (${pkg}) for ${seconds} s`, () => fuzz(target, pkg, seconds), (seconds + 180) * 1000);
  }
});
