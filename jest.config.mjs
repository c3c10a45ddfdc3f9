/**
 * The test suite on jest (`npm test`; one file: `npx jest test/unit/envelope.test.ts`).
 *
 * - ESM, as the project is: TypeScript is transformed by @swc/jest (no type check here; test/global-setup.ts
 *   runs `tsc --noEmit` before the integration suites), and jest runs under `--experimental-vm-modules`
 *   (bin/run-tests.mjs and the `jest` script set it; `npx jest` reads NODE_OPTIONS from the same place).
 * - Projects: `unit` needs nothing; `integration` (test/integration, test/e2e, test/replay) gets one global setup
 *   (test/global-setup.ts) that starts one real Temporal dev server and bundles the workflows; it also runs the
 *   soak files (test/soak) in their short form (a few kills each). With ORCH_SOAK=1 (`npm run test:soak`) the one
 *   project is `soak`: the same files in their long form (test/support/soak-checks.ts sets the counts).
 * - One test file at a time, each in a fresh worker process (workerIdleMemoryLimit recycles the worker after
 *   every file): integration files start their own Temporal Worker, whose native runtime is a process-wide
 *   singleton, and spawn relays and agents; a fresh process per file is what they were written for.
 * - test/sequencer.mjs runs unit, then integration, then e2e, and the history replay last.
 */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];

const common = {
  rootDir: '.',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc },
  extensionsToTreatAsEsm: ['.ts'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json', 'node'],
};

const soak = process.env.ORCH_SOAK === '1';

const projects = soak
  ? [{ ...common, displayName: 'soak', testMatch: ['<rootDir>/test/soak/**/*.test.ts'], globalSetup: '<rootDir>/test/global-setup.mjs', globalTeardown: '<rootDir>/test/global-teardown.mjs' }]
  : [
      { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
      {
        ...common,
        displayName: 'integration',
        testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/test/soak/**/*.test.ts', '<rootDir>/test/e2e/**/*.test.ts', '<rootDir>/test/replay/**/*.test.ts'],
        globalSetup: '<rootDir>/test/global-setup.mjs',
        globalTeardown: '<rootDir>/test/global-teardown.mjs',
      },
    ];

export default {
  projects,
  testSequencer: '<rootDir>/test/sequencer.mjs',
  maxWorkers: 1,
  workerIdleMemoryLimit: '1MB',
  // Integration tests start real processes; each sets tighter bounds where it waits on something.
  testTimeout: 300_000,
  coverageProvider: 'v8',
  collectCoverageFrom: ['workflows/**/*.ts', 'activities/**/*.ts', 'desktop-worker/**/*.ts', 'protocol/**/*.ts', 'relay/**/*.ts', 'infra/**/*.ts', '!**/vectors/generate-*.ts'],
  coverageReporters: ['text-summary', 'json-summary'],
};
