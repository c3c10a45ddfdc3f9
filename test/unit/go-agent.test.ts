// The Go agent's own checks, run from `npm test` in agent/: vet, gofmt, the unit tests under the race detector, and
// each native fuzz target for a short run (a crash is a failure; the inputs that found it are written to that
// package's testdata/fuzz, to keep in the repo). Each check prints the tool's output when it fails.
// On this 2-core machine: vet ~5 s, go test -race ~15-60 s (the first run compiles the race runtime; minutes under
// load), fuzzing 5 x 5 s plus an instrumented build each. The long fuzz runs are in test/soak/go-fuzz.test.ts.
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import path from 'node:path';
import { FUZZ_TARGETS, assertOk, cleanFuzzCache, fuzz, go, goRun } from '../support/go';

/** Short here; `npm run test:soak` fuzzes each target for minutes (test/soak/go-fuzz.test.ts). */
const FUZZ_SECONDS = 5;

describe('Go agent (agent/)', () => {
  test('go vet ./...', async () => {
    assertOk(await goRun(['vet', './...']), 'go vet ./...');
  }, 120_000);

  test('gofmt -l . prints nothing', async () => {
    const r = await goRun(['-l', '.'], go && path.join(path.dirname(go), 'gofmt'));
    assertOk(r, 'gofmt -l .');
    assert.equal(r.output.trim(), '', `gofmt would change these files (run \`gofmt -w .\` in agent/):\n${r.output}`);
  }, 60_000);

  test('go test -race ./...', async () => {
    // The race detector needs cgo: a C compiler (gcc) on this machine.
    assertOk(await goRun(['test', '-race', '-count=1', './...']), 'go test -race ./... (needs a C compiler for the race detector)');
  }, 480_000);

  test('go clean -fuzzcache: each fuzz run starts from the committed seeds (testdata/fuzz), as a clean machine does', cleanFuzzCache, 60_000);

  for (const [target, pkg] of FUZZ_TARGETS) {
    test(`fuzz ${target} (${pkg}) for ${FUZZ_SECONDS} s`, () => fuzz(target, pkg, FUZZ_SECONDS), (FUZZ_SECONDS + 120) * 1000);
  }
});
