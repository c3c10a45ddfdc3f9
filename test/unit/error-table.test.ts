/**
 * One error vocabulary: protocol/errors.ts's ERROR_CODES is the one table of stable codes, the README's "## Errors"
 * table lists exactly its codes, and every code the source throws as a string literal is in it. Codes passed
 * through constants are checked by the compiler instead (`OrchError.code` is an `ErrorCode`; ErrorType,
 * TransportFailure and SecretFailure `satisfies` it).
 */
import { describe, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import assert from '../support/assert';
import { ERROR_CODES, ErrorType } from '../../protocol/errors';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** Where Orch's TypeScript lives (tests excluded: they may throw codes on purpose). */
const SOURCE_DIRS = ['desktop-worker', 'activities', 'relay', 'infra', 'protocol', 'workflows'];
const known = new Set<string>(Object.keys(ERROR_CODES));

/** The codes in the first column of the README's "## Errors" table (a cell may hold several: `a` / `b`). */
function readmeErrorCodes(readme: string): string[] {
  const start = readme.indexOf('\n## Errors\n');
  assert.ok(start >= 0, 'README.md has no "## Errors" section');
  const next = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, next < 0 ? undefined : next);
  const codes: string[] = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|');
    if (!line.startsWith('|') || cells.length < 3) continue;
    for (const m of (cells[1] ?? '').matchAll(/`([^`]+)`/g)) codes.push(m[1]!);
  }
  return codes;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules') sourceFiles(p, out);
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) {
      out.push(p);
    }
  }
  return out;
}

/** The string literals an expression can evaluate to when it is one (`'a'`, `cond ? 'a' : 'b'`, `'a' as never`); none otherwise. */
function literalsOf(e: ts.Expression | undefined): string[] {
  if (!e) return [];
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return [e.text];
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isTypeAssertionExpression(e)) return literalsOf(e.expression);
  if (ts.isConditionalExpression(e)) return [...literalsOf(e.whenTrue), ...literalsOf(e.whenFalse)];
  return [];
}

interface Use {
  code: string;
  at: string;
  /** What the call says about retries: ApplicationFailure.retryable / nonRetryable. */
  retryable?: boolean;
}

/**
 * Literal codes in the source: the first argument of `new OrchError(...)`, the literal a subclass of OrchError
 * passes to `super(...)`, the type of `ApplicationFailure.nonRetryable/retryable(msg, type)`, `new
 * ApplicationFailure(msg, type)` and `ApplicationFailure.create({ type })`, and the literals of a retry policy's
 * `nonRetryableErrorTypes`.
 */
function literalCodes(files: { name: string; text: string }[]): Use[] {
  const parsed = files.map((f) => ({ name: f.name, sf: ts.createSourceFile(f.name, f.text, ts.ScriptTarget.Latest, true) }));
  // Subclasses of OrchError, to any depth, by class name.
  const subclasses = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const { sf } of parsed) {
      const visit = (n: ts.Node): void => {
        if (ts.isClassDeclaration(n) && n.name && !subclasses.has(n.name.text)) {
          const base = n.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression;
          if (base && ts.isIdentifier(base) && (base.text === 'OrchError' || subclasses.has(base.text))) {
            subclasses.add(n.name.text);
            grew = true;
          }
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
  }
  const uses: Use[] = [];
  for (const { name, sf } of parsed) {
    const at = (n: ts.Node) => `${name}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}`;
    const add = (e: ts.Expression | undefined, retryable?: boolean) => {
      for (const code of literalsOf(e)) uses.push({ code, at: at(e!), ...(retryable === undefined ? {} : { retryable }) });
    };
    let inSubclass = false;
    const visit = (n: ts.Node): void => {
      const wasInSubclass = inSubclass;
      if (ts.isClassDeclaration(n)) inSubclass = n.name !== undefined && subclasses.has(n.name.text);
      if (ts.isNewExpression(n) && ts.isIdentifier(n.expression)) {
        if (n.expression.text === 'OrchError') add(n.arguments?.[0]);
        if (n.expression.text === 'ApplicationFailure') add(n.arguments?.[1]);
      }
      if (ts.isCallExpression(n)) {
        const callee = n.expression;
        if (inSubclass && callee.kind === ts.SyntaxKind.SuperKeyword) add(n.arguments[0]);
        if (ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) && callee.expression.text === 'ApplicationFailure') {
          const method = callee.name.text;
          if (method === 'nonRetryable' || method === 'retryable') add(n.arguments[1], method === 'retryable');
          if (method === 'create' && n.arguments[0] && ts.isObjectLiteralExpression(n.arguments[0])) {
            for (const p of n.arguments[0].properties) {
              if (ts.isPropertyAssignment(p) && ts.isIdentifier(p.name) && p.name.text === 'type') add(p.initializer);
            }
          }
        }
      }
      if (ts.isPropertyAssignment(n) && ts.isIdentifier(n.name) && n.name.text === 'nonRetryableErrorTypes' && ts.isArrayLiteralExpression(n.initializer)) {
        for (const el of n.initializer.elements) add(el, false);
      }
      ts.forEachChild(n, visit);
      inSubclass = wasInSubclass;
    };
    visit(sf);
  }
  return uses;
}

function sourceTree(): { name: string; text: string }[] {
  return SOURCE_DIRS.flatMap((d) => sourceFiles(path.join(root, d))).map((f) => ({ name: path.relative(root, f), text: fs.readFileSync(f, 'utf8') }));
}

describe('the error table', () => {
  test('every ErrorType constant is a code of ERROR_CODES', () => {
    assert.deepEqual(
      Object.values(ErrorType).filter((c) => !known.has(c)),
      [],
    );
  });

  test("the README's Errors table lists exactly the codes of ERROR_CODES", () => {
    const readme = readmeErrorCodes(fs.readFileSync(path.join(root, 'README.md'), 'utf8'));
    const inReadme = new Set(readme);
    assert.deepEqual(
      readme.filter((c, i) => readme.indexOf(c) !== i),
      [],
      'codes listed twice in the README',
    );
    assert.deepEqual(
      [...known].filter((c) => !inReadme.has(c)),
      [],
      'codes in protocol/errors.ts ERROR_CODES but not in the README: add a row to its "## Errors" table',
    );
    assert.deepEqual(
      readme.filter((c) => !known.has(c)),
      [],
      'codes in the README but not in protocol/errors.ts ERROR_CODES',
    );
  });

  test('every code the source throws as a literal is in ERROR_CODES, with its retryability', () => {
    const uses = literalCodes(sourceTree());
    // The scan finds something: a parser that silently matched nothing would pass anything.
    assert.ok(uses.length > 50, `only ${uses.length} literal codes found`);
    assert.deepEqual(
      uses.filter((u) => !known.has(u.code)).map((u) => `${u.at}: ${u.code}`),
      [],
      'codes not in protocol/errors.ts ERROR_CODES: add them there and to the README',
    );
    assert.deepEqual(
      uses
        .filter((u) => u.retryable !== undefined && known.has(u.code) && ERROR_CODES[u.code as keyof typeof ERROR_CODES].retryable !== u.retryable)
        .map((u) => `${u.at}: ${u.code} is ${u.retryable ? '' : 'not '}retryable here`),
      [],
    );
  });

  test('the scan sees the forms codes are thrown in', () => {
    const text = [
      "class FooError extends OrchError { constructor() { super('zz_sub', 'm'); } }",
      "class BarError extends FooError { constructor() { super(); new Other('zz_not_a_code'); } }",
      "class BazError extends BarError { constructor(code: string) { super(code); } }",
      "throw new OrchError('zz_new', `a, b`);",
      "throw new OrchError(ok ? 'zz_then' : 'zz_else', 'm');",
      "throw new OrchError('zz_cast' as never, 'm');",
      "throw ApplicationFailure.nonRetryable(`m, ${x}`, 'zz_nonretryable', { a: 1 });",
      "throw ApplicationFailure.retryable('m', 'zz_retryable');",
      "throw ApplicationFailure.create({ message: 'm', type: 'zz_create' });",
      "throw new ApplicationFailure('m', 'zz_ctor');",
      "const p = { retry: { nonRetryableErrorTypes: [ErrorType.badInput, 'zz_policy'] } };",
      "throw new OrchError(SomeCode.x, 'm'); throw new ConfigError('SETTING', 'm');",
    ].join('\n');
    const uses = literalCodes([{ name: 'x.ts', text }]);
    assert.deepEqual(
      uses.map((u) => `${u.code}${u.retryable === undefined ? '' : u.retryable ? '+' : '-'}`),
      ['zz_sub', 'zz_new', 'zz_then', 'zz_else', 'zz_cast', 'zz_nonretryable-', 'zz_retryable+', 'zz_create', 'zz_ctor', 'zz_policy-'],
    );
  });
});
