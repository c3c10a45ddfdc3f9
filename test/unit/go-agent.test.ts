// The Go agent's own checks, run from `npm test` in agent/: vet, gofmt, the unit tests under the race detector, and
// each native fuzz target for a short run (a crash is a failure; the inputs that found it are written to that
// package's testdata/fuzz, to keep in the repo). Each check prints the tool's output when it fails.
// In a whole `npm test` the suite's setup starts the checks in the background (test/support/go-checks.ts) and this
// file, ordered after the integration files, asserts on their results; run alone it runs them itself.
// On this 2-core machine: vet ~5 s, go test -race ~15-60 s (the first run compiles the race runtime; minutes under
// load), fuzzing 5 x 5 s plus an instrumented build each. The long fuzz runs are in test/soak/go-fuzz.test.ts.
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { assertOk } from '../support/go';
import { GO_CHECKS, GO_CHECKS_DIR_ENV, backgroundResult } from '../support/go-checks';

const backgroundDir = process.env[GO_CHECKS_DIR_ENV];

describe(`Go agent (agent/)${backgroundDir ? ', checks run in the background since the suite started' : ''}`, () => {
  for (const check of GO_CHECKS) {
    test(
      check.title,
      async () => {
        const r = backgroundDir ? await backgroundResult(backgroundDir, check) : await check.run();
        assertOk(r, check.title);
        if (check.name === 'gofmt') assert.equal(r.output.trim(), '', `gofmt would change these files (run \`gofmt -w .\` in agent/):\n${r.output}`);
      },
      check.timeoutMs + 5_000,
    );
  }
});
