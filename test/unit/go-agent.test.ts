// The Go agent's own checks, run from `npm test` in agent/: vet, gofmt, the unit tests under the race detector, and
// each native fuzz target for a short run (a crash is a failure; the inputs that found it are written to that
// package's testdata/fuzz, to keep in the repo). Each check prints the tool's output when it fails.
// On this 2-core machine: vet ~5 s, go test -race ~15-60 s (the first run compiles the race runtime), fuzzing 5 x 30 s
// plus an instrumented build each: about 3 minutes in all.
import { describe, test } from '@jest/globals';
import assert from '../support/assert';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findGo } from '../../infra/agent-binary';

const agentDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../agent');
const go = findGo();
const FUZZ_SECONDS = 30;
/** Every native fuzz target (`grep -rn '^func Fuzz' agent/`): add new ones here. */
const FUZZ_TARGETS: Array<[target: string, pkg: string]> = [
  ['FuzzParse', './internal/envelope'],
  ['FuzzDecodeHeader', './internal/envelope'],
  ['FuzzParseAllowlist', './internal/policy'],
  ['FuzzDecode', './internal/messages'],
  ['FuzzJoinDecoders', './internal/join'],
];

function goRun(args: string[], tool = go): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    if (!tool) return reject(new Error('no Go toolchain (go on PATH or /usr/local/go/bin/go): install Go (see agent/go.mod)'));
    const env = { ...process.env, GOFLAGS: '-mod=readonly', PATH: `${path.dirname(tool)}${path.delimiter}${process.env.PATH ?? ''}` };
    const child = spawn(tool, args, { cwd: agentDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

function assertOk(r: { code: number | null; output: string }, what: string): void {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.output}`);
}

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
  }, 240_000);

  test('go clean -fuzzcache: each fuzz run starts from the committed seeds (testdata/fuzz), as a clean machine does', async () => {
    // The corpus Go keeps between runs in its cache made a worker stall (no executions, then "context deadline
    // exceeded") on this machine; a crash's input is written to testdata/fuzz in any case, so nothing is lost.
    assertOk(await goRun(['clean', '-fuzzcache']), 'go clean -fuzzcache');
  }, 60_000);

  for (const [target, pkg] of FUZZ_TARGETS) {
    test(`fuzz ${target} (${pkg}) for ${FUZZ_SECONDS} s`, async () => {
      const r = await goRun(['test', '-run', '^$', '-fuzz', `^${target}$`, '-fuzztime', `${FUZZ_SECONDS}s`, pkg]);
      assertOk(r, `go test -fuzz ${target} ${pkg} (a failing input is saved under ${pkg}/testdata/fuzz/${target})`);
    }, (FUZZ_SECONDS + 120) * 1000);
  }
});
