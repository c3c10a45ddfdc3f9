/**
 * Running the Go toolchain on the agent's module (agent/) from the tests: `go vet`, `go test -race` and the native
 * fuzz targets (test/unit/go-agent.test.ts runs them short in `npm test`, test/soak/go-fuzz.test.ts long in
 * `npm run test:soak`).
 */
import assert from './assert';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findGo } from '../../infra/agent-binary';

export const agentDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../agent');
export const go = findGo();

/** Every native fuzz target (`grep -rn '^func Fuzz' agent/`): add new ones here. */
export const FUZZ_TARGETS: ReadonlyArray<[target: string, pkg: string]> = [
  ['FuzzParse', './internal/envelope'],
  ['FuzzDecodeHeader', './internal/envelope'],
  ['FuzzParseAllowlist', './internal/policy'],
  ['FuzzDecode', './internal/messages'],
  ['FuzzJoinDecoders', './internal/join'],
];

export function goRun(args: string[], tool = go, signal?: AbortSignal): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    if (!tool) return reject(new Error('no Go toolchain (go on PATH or /usr/local/go/bin/go): install Go (see agent/go.mod)'));
    const env = { ...process.env, GOFLAGS: '-mod=readonly', PATH: `${path.dirname(tool)}${path.delimiter}${process.env.PATH ?? ''}` };
    const child = spawn(tool, args, { cwd: agentDir, env, stdio: ['ignore', 'pipe', 'pipe'], signal });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

export function assertOk(r: { code: number | null; output: string }, what: string): void {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.output}`);
}

/**
 * Empties the corpus Go keeps between runs in its cache, so each fuzz run starts from the committed seeds
 * (testdata/fuzz) as a clean machine does: a cached corpus made a worker stall (no executions, then "context
 * deadline exceeded") on this machine. A crash's input is written to testdata/fuzz in any case.
 */
export async function cleanFuzzCache(): Promise<void> {
  assertOk(await goRun(['clean', '-fuzzcache']), 'go clean -fuzzcache');
}

/** One fuzz target for `seconds`; a crash fails, and its input is saved under the package's testdata/fuzz. */
export async function fuzz(target: string, pkg: string, seconds: number): Promise<void> {
  const r = await goRun(['test', '-run', '^$', '-fuzz', `^${target}$`, '-fuzztime', `${seconds}s`, pkg]);
  assertOk(r, `go test -fuzz ${target} ${pkg} (a failing input is saved under ${pkg}/testdata/fuzz/${target})`);
}
