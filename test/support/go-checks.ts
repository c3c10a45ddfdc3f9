/**
 * The Go agent's checks for `npm test` (vet, gofmt, `go test -race`, the short fuzz runs) as one list, run either
 * inline by test/unit/go-agent.test.ts (a run of that file alone) or in the background from the suite's global
 * setup, beside the TypeScript tests: they are CPU work on the second core, independent of Temporal, and took
 * about 70 s of the suite's serial time when the test file ran them itself. In the background each check writes
 * its result to `<dir>/<name>.json` as it finishes; the test file (ordered late by test/sequencer.mjs) waits for
 * each file and asserts on it, so a check that fails or never finishes fails the suite exactly as before.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FUZZ_TARGETS, go, goRun } from './go';

/** Short in `npm test`; `npm run test:soak` fuzzes each target for minutes (test/soak/go-fuzz.test.ts). */
export const FUZZ_SECONDS = 5;

/** Where the suite's setup tells the test processes that the checks run in the background. */
export const GO_CHECKS_DIR_ENV = 'ORCH_TEST_GO_CHECKS_DIR';

export interface GoCheck {
  /** The file name of its result, and the test's name. */
  name: string;
  title: string;
  run(signal?: AbortSignal): Promise<GoResult>;
  timeoutMs: number;
}

export interface GoResult {
  code: number | null;
  output: string;
  ms: number;
}

async function timed(args: string[], tool = go, signal?: AbortSignal): Promise<GoResult> {
  const started = Date.now();
  try {
    const r = await goRun(args, tool, signal);
    return { ...r, ms: Date.now() - started };
  } catch (err) {
    return { code: null, output: String((err as Error)?.message ?? err), ms: Date.now() - started };
  }
}

/** In order: a fuzz run must start from the committed seeds, so the cache is cleaned just before them. */
export const GO_CHECKS: readonly GoCheck[] = [
  { name: 'vet', title: 'go vet ./...', run: (signal) => timed(['vet', './...'], go, signal), timeoutMs: 120_000 },
  { name: 'gofmt', title: 'gofmt -l . prints nothing', run: (signal) => timed(['-l', '.'], go && path.join(path.dirname(go), 'gofmt'), signal), timeoutMs: 60_000 },
  // The race detector needs cgo: a C compiler (gcc) on this machine.
  { name: 'race', title: 'go test -race ./...', run: (signal) => timed(['test', '-race', '-count=1', './...'], go, signal), timeoutMs: 480_000 },
  {
    name: 'fuzzcache',
    title: 'go clean -fuzzcache: each fuzz run starts from the committed seeds (testdata/fuzz), as a clean machine does',
    run: (signal) => timed(['clean', '-fuzzcache'], go, signal),
    timeoutMs: 60_000,
  },
  ...FUZZ_TARGETS.map(([target, pkg]) => ({
    name: `fuzz-${target}`,
    title: `fuzz ${target} (${pkg}) for ${FUZZ_SECONDS} s`,
    run: (signal?: AbortSignal) => timed(['test', '-run', '^$', '-fuzz', `^${target}$`, '-fuzztime', `${FUZZ_SECONDS}s`, pkg], go, signal),
    timeoutMs: (FUZZ_SECONDS + 120) * 1000,
  })),
];

/**
 * Runs every check one after the other, writing each result to `dir` as it finishes (first to a temporary name,
 * then renamed, so a reader never sees half a file). Resolves when all are done or `signal` aborts (the suite's
 * teardown: the running check's process is killed); never rejects.
 */
export async function runGoChecksInto(dir: string, signal?: AbortSignal): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  for (const check of GO_CHECKS) {
    if (signal?.aborted) return;
    const result = await check.run(signal);
    const file = path.join(dir, `${check.name}.json`);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(result));
    fs.renameSync(`${file}.tmp`, file);
  }
}

/** The result the background run wrote for `check`, waiting for it up to the check's own time limit. */
export async function backgroundResult(dir: string, check: GoCheck): Promise<GoResult> {
  const file = path.join(dir, `${check.name}.json`);
  const deadline = Date.now() + check.timeoutMs;
  for (;;) {
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as GoResult;
    if (Date.now() > deadline) return { code: null, output: `no result from the background run in ${check.timeoutMs / 1000} s (${file})`, ms: check.timeoutMs };
    await new Promise((r) => setTimeout(r, 250));
  }
}
