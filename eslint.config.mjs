// `npm run lint` (also run by `npm test`): the boundaries of ARCHITECTURE.md, enforced rather than hoped for.
// - Everywhere: no floating promises (a promise nobody awaits loses its error).
// - workflows/ (and the test and bench workflow files, which are bundled the same way): deterministic workflow
//   code imports only @temporalio/workflow, @temporalio/common and other workflow code. Node built-ins, I/O
//   libraries and the activity, desktop, relay, infra, protocol and agent code are refused, except protocol/'s
//   workflow-safe modules (workflowSafeProtocol) and activities/types.ts (the activities' contract, types only, for
//   proxyActivities<Activities>). workflows/tsconfig.json backs this with a typecheck without Node types.
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

/** Workflow code: bundled into the workflow sandbox (the same list is workflows/tsconfig.json's `include`). */
export const workflowFiles = ['workflows/**/*.ts', 'test/support/test-workflows.ts', 'bench/bench-workflows.ts', 'bench/plain-workflows.ts'];
/**
 * The modules of protocol/ that workflow code may import: pure, deterministic, no imports of their own beyond each
 * other (and @noble's SHA-256), no I/O. They live in protocol/ because both sides use them (they are not workflow code): the one
 * canonical-JSON serialiser (release digests), the one error vocabulary (OrchError, ERROR_CODES, ErrorType) and the
 * destructive-command check (the DAG compiler, the runner, the planner, the Go agent's vectors), and the approval
 * attestation's data types (approval-types) and its digest and signed message (approval-digest, with @noble's
 * SHA-256; the signing and checking code in approval.ts uses node:crypto and sodium).
 * test/unit/workflow-boundary.test.ts checks the workflow typecheck's program holds nothing else of protocol/.
 */
export const workflowSafeProtocol = ['canonical-json', 'errors', 'destructive', 'approval-types', 'approval-digest'];
const outsideWorkflows = ['activities', 'desktop-worker', 'relay', 'infra', 'protocol', 'agent', 'test', 'bench'];

/** `dir/` may not import these top-level folders (ARCHITECTURE.md's "may import" column). */
const layerRules = [
  { files: ['infra/**/*.ts'], forbidden: ['desktop-worker', 'activities', 'relay', 'workflows'] },
  // The relay reads its settings and logs through the one settings module and the one logger, which live in infra/.
  { files: ['relay/**/*.ts'], forbidden: ['desktop-worker', 'activities', 'workflows', 'infra'], except: { infra: ['settings', 'log'] } },
  { files: ['protocol/**/*.ts'], forbidden: ['desktop-worker', 'activities', 'relay', 'workflows', 'infra'] },
  { files: ['activities/**/*.ts'], forbidden: ['desktop-worker', 'relay'] },
].map(({ files, forbidden, except = {} }) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: forbidden.map((d) => ({
          // An excepted module is left out by a regex (a gitignore group cannot re-include a file under an excluded folder).
          ...(except[d] ? { regex: `^(\\.\\./)+${d}(/(?!(${except[d].join('|')})$).*)?$` } : { group: [`../${d}/**`, `../../${d}/**`, `../${d}`, `../../${d}`] }),
          message: `this part may not import ${d}/ (see ARCHITECTURE.md, Parts)`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  // The launchers (bin/*.mjs) are linted too, type-aware through bin/tsconfig.json (allowJs): they start processes
  // and await builds, where a floating promise loses an error just the same. So are jest's own hooks (test/*.mjs:
  // the suite's global setup and teardown, the sequencer), through the same settings as the project service's
  // default project (a test/tsconfig.json would be the nearest config of every test file).
  { ignores: ['node_modules/**', 'dist/**', 'agent/**', '**/*.mjs', '!bin/*.mjs', '!test/*.mjs', '**/*.cjs', '**/*.js'] },
  {
    files: ['**/*.ts', 'bin/*.mjs', 'test/*.mjs'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: { allowDefaultProject: ['test/*.mjs'], defaultProject: 'bin/tsconfig.json' }, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  {
    files: workflowFiles,
    rules: {
      // workflows/tsconfig.json has no Node types, so these are type errors there too; this rule says why and what
      // to use instead.
      'no-restricted-globals': [
        'error',
        ...['process', 'Buffer', 'require', '__dirname', '__filename', 'global', 'setImmediate', 'setInterval', 'fetch', 'crypto', 'performance'].map((name) => ({
          name,
          message: 'not available or not deterministic in workflow code: use @temporalio/workflow (sleep, uuid4, workflowInfo) or pass it in through an activity',
        })),
      ],
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...builtinModules.filter((m) => !m.startsWith('_')).map((name) => ({ name, message: 'workflow code is deterministic: no Node built-ins (use @temporalio/workflow)' })),
            { name: 'yaml', message: 'parse YAML on the CLI side (desktop-worker/dag-yaml.ts), not in workflow code' },
            ...['@temporalio/activity', '@temporalio/client', '@temporalio/worker', '@temporalio/testing', '@anthropic-ai/sdk', 'better-sqlite3', 'sodium-native', 'ws'].map((name) => ({ name, message: 'not workflow-safe: workflow code imports only @temporalio/workflow and @temporalio/common' })),
          ],
          patterns: [
            { group: ['node:*'], message: 'workflow code is deterministic: no Node built-ins' },
            {
              // A regex: a gitignore-style group that refuses the folder itself cannot let activities/types back in.
              regex: '(^|/)activities(/(?!types$).*)?$',
              message: 'activities reach workflow code through activities/types.ts only (`import type { Activities }` and proxyActivities): the implementation is Node code',
            },
            ...outsideWorkflows.filter((d) => d !== 'activities').map((d) => ({
              // The workflow-safe part of protocol/ (workflowSafeProtocol) is pure code shared with the other side.
              group: [`../${d}/**`, `../../${d}/**`, `../../../${d}/**`, ...(d === 'protocol' ? workflowSafeProtocol.flatMap((m) => [`!../protocol/${m}`, `!../../protocol/${m}`, `!../../../protocol/${m}`]) : [])],
              message: `workflow code may not import ${d}/ (it is not workflow-safe)`,
            })),
          ],
        },
      ],
    },
  },
  ...layerRules,
  {
    // One module reads the environment (infra/settings.ts: the table of settings, typed readers, processEnv()).
    // Tests and benchmarks are exempt: they build the environments of the processes they start.
    files: ['**/*.ts'],
    ignores: ['infra/settings.ts', 'test/**', 'bench/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'read settings through infra/settings.ts (setting(Env.x), processEnv() as an `env` parameter default); add a new variable to its SETTINGS table' },
      ],
    },
  },
  {
    // The launchers run before any TypeScript: they read the environment through bin/launcher-env.mjs, whose
    // launcherSetting('NAME') names only rows of SETTINGS (test/unit/config-table.test.ts checks them).
    files: ['bin/*.mjs'],
    ignores: ['bin/launcher-env.mjs'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: "read the environment through bin/launcher-env.mjs (launcherSetting('NAME') with NAME a row of infra/settings.ts SETTINGS, childEnv())" },
      ],
    },
  },
);
