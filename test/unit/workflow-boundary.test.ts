/**
 * The workflow boundary, enforced rather than hoped for (ARCHITECTURE.md, Parts): workflow code is typechecked on
 * its own without Node's types (workflows/tsconfig.json, run by `npm run typecheck` and the suite's global setup),
 * and eslint.config.mjs refuses imports of anything that is not workflow-safe. These tests fail when Node's types
 * creep back into that typecheck (through an import of Node code, as `typeof` the activities' implementation once
 * did), when Node globals stop being type errors there, or when the lint rules let Node code in.
 */
import { describe, test } from '@jest/globals';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import ts from 'typescript';
import assert from '../support/assert';
// eslint.config.mjs is plain ESM without types.
// @ts-expect-error: no declaration file for eslint.config.mjs
import { workflowFiles, workflowSafeProtocol } from '../../eslint.config.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const configPath = path.join(root, 'workflows/tsconfig.json');

function workflowConfig(): ts.ParsedCommandLine {
  const read = ts.readConfigFile(configPath, (f) => ts.sys.readFile(f));
  assert.equal(read.error, undefined, 'workflows/tsconfig.json does not parse');
  return ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(configPath), undefined, configPath);
}

/** A program of the workflow typecheck, optionally with one more (virtual, never written) file. */
function workflowProgram(extra?: { file: string; text: string }): ts.Program {
  const parsed = workflowConfig();
  const host = ts.createCompilerHost(parsed.options);
  if (extra) {
    const { fileExists, readFile, getSourceFile } = host;
    host.fileExists = (f) => f === extra.file || fileExists.call(host, f);
    host.readFile = (f) => (f === extra.file ? extra.text : readFile.call(host, f));
    host.getSourceFile = (f, lang, ...rest) => (f === extra.file ? ts.createSourceFile(f, extra.text, lang) : getSourceFile.call(host, f, lang, ...rest));
  }
  return ts.createProgram({ rootNames: extra ? [...parsed.fileNames, extra.file] : parsed.fileNames, options: parsed.options, host });
}

const rel = (f: string) => path.relative(root, f).split(path.sep).join('/');

describe('workflow code is typechecked without Node', () => {
  test("the workflow typecheck's program holds no Node types and no project file that is not workflow-safe", () => {
    const files = workflowProgram().getSourceFiles().map((s) => s.fileName);
    const nodeTypes = files.filter((f) => f.includes('/node_modules/@types/node/'));
    assert.deepEqual(nodeTypes, [], "Node's types reach workflows/tsconfig.json's program: something workflow code imports (even `import type`) loads Node code");
    const ours = files.map(rel).filter((f) => !f.startsWith('..') && !f.includes('node_modules/'));
    const exact = new Set<string>(workflowFiles.filter((g: string) => !g.includes('*')));
    const allowed = (f: string) =>
      f.startsWith('workflows/') || exact.has(f) || f === 'activities/types.ts' || workflowSafeProtocol.some((m: string) => f === `protocol/${m}.ts`);
    assert.deepEqual(ours.filter((f) => !allowed(f)), [], 'workflow code loads project files outside workflows/, activities/types.ts and protocol/ workflow-safe modules');
    // The program is the real one: the entry points, every workflow file lint treats as such, and the shared modules.
    for (const f of ['workflows/index.ts', 'workflows/session.ts', ...exact, 'protocol/errors.ts', 'protocol/destructive.ts', 'activities/types.ts']) {
      assert.ok(ours.includes(f), `${f} is not in the workflow typecheck`);
    }
  });

  test('Node globals and built-in modules are type errors in workflow code', () => {
    const file = path.join(root, 'workflows/__boundary_probe__.ts');
    const text = [
      "import fs from 'node:fs';",
      "import { ErrorType } from '../protocol/errors';",
      'export const env = process.env.HOME;',
      "export const bytes = Buffer.from('x');",
      'export const later = setImmediate;',
      'export const ok = [fs, ErrorType.cancelled];',
    ].join('\n');
    const program = workflowProgram({ file, text });
    const source = program.getSourceFile(file)!;
    const diagnostics = [...program.getSemanticDiagnostics(source), ...program.getSyntacticDiagnostics(source)];
    const lines = diagnostics.map((d) => source.getLineAndCharacterOfPosition(d.start ?? 0).line + 1).sort();
    // Line 1: no module node:fs; lines 3-5: no process, Buffer, setImmediate. Line 2 (a workflow-safe import) is fine.
    assert.deepEqual(lines, [1, 3, 4, 5], diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('\n'));
  });
});

describe('lint refuses imports that are not workflow-safe', () => {
  // Syntax-only lint (no type information: the probe file does not exist), with the project's own rules.
  const eslint = new ESLint({
    cwd: root,
    overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parserOptions: { projectService: false } }, rules: { '@typescript-eslint/no-floating-promises': 'off' } }],
  });
  const imports: Array<[string, boolean]> = [
    ["import type { Activities } from '../activities/types';", true],
    ["import { ErrorType } from '../protocol/errors';", true],
    ["import { canonicalize } from '../protocol/canonical-json';", true],
    ["import { destructivePattern } from '../protocol/destructive';", true],
    ["import type { SignedApproval } from '../protocol/approval-types';", true],
    ["import { proxyActivities } from '@temporalio/workflow';", true],
    ["import type { Activities } from '../activities';", false],
    ["import type { ActivityDeps } from '../activities/index';", false],
    ["import type { ClaudeSettings } from '../activities/claude';", false],
    ["import { checkCommandApproval } from '../protocol/approval';", false],
    ["import type { SignedApproval } from '../protocol/approval';", false],
    ["import { seal } from '../protocol/envelope';", false],
    ["import { loadConfig } from '../desktop-worker/config';", false],
    ["import { parse } from 'yaml';", false],
    ["import fs from 'node:fs';", false],
    ["import { Context } from '@temporalio/activity';", false],
  ];

  test.each(imports)('%s (allowed: %s)', async (line, allowed) => {
    for (const file of ['workflows/__probe__.ts', 'workflows/dag/__probe__.ts']) {
      const text = file.includes('/dag/') ? line.replace("'../", "'../../") : line;
      const [result] = await eslint.lintText(`${text}\n`, { filePath: path.join(root, file) });
      const refused = result!.messages.filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports');
      assert.equal(refused.length === 0, allowed, `${file}: ${text} -> ${JSON.stringify(result!.messages.map((m) => m.message))}`);
    }
  });

  test('Node globals are refused in workflow code, and allowed elsewhere', async () => {
    // (process.env is refused outside infra/settings.ts too: Buffer is a global only workflow code may not use.)
    const text = "export const bytes = Buffer.from('x');\n";
    const [inWorkflow] = await eslint.lintText(text, { filePath: path.join(root, 'workflows/__probe__.ts') });
    assert.deepEqual(inWorkflow!.messages.map((m) => m.ruleId), ['no-restricted-globals']);
    const [inDesktop] = await eslint.lintText(text, { filePath: path.join(root, 'desktop-worker/__probe__.ts') });
    assert.deepEqual(inDesktop!.messages, []);
  });
});
