/**
 * Reading a DAG file (YAML or JSON) into a plain value for `compileDag`. CLI-side: never imported by workflow
 * code (it imports `yaml`). YAML is read as YAML 1.2 with the core schema (so `yes` stays a string and `0o14`
 * is the only octal), JSON files with JSON.parse. Refused: files over MAX_SOURCE_BYTES, duplicate keys,
 * several documents in one file, custom tags, more than MAX_YAML_ALIASES aliases, and an alias inside the
 * node it refers to (it would make a cyclic object). Never throws.
 */

import { parseDocument, visit } from 'yaml';
import type { YAMLError } from 'yaml';
import type { CompileIssue } from '../workflows/dag/types';
import { MAX_SOURCE_BYTES, MAX_YAML_ALIASES } from '../workflows/dag/limits';

export const ParseCode = {
  fileTooLarge: 'file_too_large',
  emptyDocument: 'empty_document',
  jsonSyntax: 'json_syntax',
  yamlSyntax: 'yaml_syntax',
  duplicateKey: 'duplicate_key',
  multipleDocuments: 'multiple_documents',
  unsupportedTag: 'yaml_unsupported_tag',
  aliasLimit: 'yaml_alias_limit',
  recursiveAlias: 'yaml_recursive_alias',
} as const;

export type ParseResult = { ok: true; source: unknown } | { ok: false; issues: CompileIssue[] };

const FIELD = '(file)';

function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function issue(code: string, fileName: string, message: string, line?: number, column?: number): CompileIssue {
  const where = line !== undefined ? ` line ${line}${column !== undefined ? `, column ${column}` : ''}` : '';
  const i: CompileIssue = { code, field: FIELD, message: `${fileName}${where}: ${message}` };
  if (line !== undefined) i.line = line;
  if (column !== undefined) i.column = column;
  return i;
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** True when following the value's object references can come back to where it started. */
function hasCycle(root: unknown): boolean {
  const onPath = new Set<object>();
  const done = new Set<object>();
  const stack: Array<{ obj: object; children: unknown[]; next: number }> = [];
  const enter = (v: unknown): boolean => {
    if (typeof v !== 'object' || v === null || done.has(v)) return false;
    if (onPath.has(v)) return true;
    onPath.add(v);
    stack.push({ obj: v, children: Array.isArray(v) ? v : Object.values(v), next: 0 });
    return false;
  };
  if (enter(root)) return true;
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (!top) break;
    if (top.next < top.children.length) {
      const child = top.children[top.next++];
      if (enter(child)) return true;
    } else {
      stack.pop();
      onPath.delete(top.obj);
      done.add(top.obj);
    }
  }
  return false;
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/:\s*$/, '').replace(/ at line \d+, column \d+$/, '');
}

function yamlIssue(e: YAMLError, fileName: string): CompileIssue {
  const pos = e.linePos?.[0];
  const code =
    e.code === 'DUPLICATE_KEY'
      ? ParseCode.duplicateKey
      : e.code === 'MULTIPLE_DOCS'
        ? ParseCode.multipleDocuments
        : e.code === 'TAG_RESOLVE_FAILED'
          ? ParseCode.unsupportedTag
          : ParseCode.yamlSyntax;
  const hint =
    code === ParseCode.duplicateKey
      ? '; each key may appear once in a mapping'
      : code === ParseCode.multipleDocuments
        ? '; put one DAG per file'
        : code === ParseCode.unsupportedTag
          ? '; DAG files use plain YAML without tags'
          : '';
  return issue(code, fileName, `${firstLine(e.message)}${hint}`, pos?.line, pos?.col);
}

/**
 * Parses DAG file text; `fileName` picks JSON (`.json`) or YAML and names the file in messages.
 *
 * @example const r = parseDagText(fs.readFileSync(p, 'utf8'), p); if (r.ok) compileDag(r.source, opts);
 */
export function parseDagText(text: string, fileName: string): ParseResult {
  try {
    return parseUnchecked(text, fileName);
  } catch (e) {
    // Deep nesting can overflow the stack inside the parser; anything else here is a parser bug.
    const why = e instanceof RangeError ? 'the file is nested too deeply to read' : 'the file could not be parsed';
    return { ok: false, issues: [issue(ParseCode.yamlSyntax, fileName, `${why}; simplify it`)] };
  }
}

function parseUnchecked(rawText: string, fileName: string): ParseResult {
  if (typeof rawText !== 'string') {
    return { ok: false, issues: [issue(ParseCode.yamlSyntax, String(fileName), 'expected the text of a DAG file')] };
  }
  const bytes = rawText.length > MAX_SOURCE_BYTES ? rawText.length : utf8Length(rawText);
  if (bytes > MAX_SOURCE_BYTES) {
    return {
      ok: false,
      issues: [issue(ParseCode.fileTooLarge, fileName, `is ${bytes} bytes or more, over the limit of ${MAX_SOURCE_BYTES} bytes; split the DAG`)],
    };
  }
  const text = rawText.startsWith('\uFEFF') ? rawText.slice(1) : rawText;
  if (text.trim().length === 0) {
    return { ok: false, issues: [issue(ParseCode.emptyDocument, fileName, 'the file is empty; write a DAG in it')] };
  }
  if (/\.json$/i.test(fileName)) return parseJson(text, fileName);
  return parseYaml(text, fileName);
}

function parseJson(text: string, fileName: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const message = e instanceof Error ? e.message : 'invalid JSON';
    const at = /position (\d+)/.exec(message);
    let pos = at?.[1] !== undefined ? lineAndColumn(text, Number(at[1])) : undefined;
    if (!pos) {
      // Newer V8 messages quote the text instead of giving a position; the YAML parser can usually place it.
      const where = parseDocument(text, { version: '1.2', schema: 'core', logLevel: 'error' }).errors[0]?.linePos?.[0];
      if (where) pos = { line: where.line, column: where.col };
    }
    const why = (firstLine(message).split(', "')[0] ?? 'invalid JSON').slice(0, 100);
    return { ok: false, issues: [issue(ParseCode.jsonSyntax, fileName, `${why}; fix the JSON syntax`, pos?.line, pos?.column)] };
  }
  // JSON.parse keeps the last of duplicate keys silently; a YAML 1.2 parse of the same text finds them.
  const doc = parseDocument(text, { version: '1.2', schema: 'core', uniqueKeys: true, prettyErrors: true, logLevel: 'error' });
  const duplicates = doc.errors.filter((e) => e.code === 'DUPLICATE_KEY').map((e) => yamlIssue(e, fileName));
  if (duplicates.length > 0) return { ok: false, issues: duplicates };
  return { ok: true, source: value };
}

function parseYaml(text: string, fileName: string): ParseResult {
  const doc = parseDocument(text, {
    version: '1.2',
    schema: 'core',
    uniqueKeys: true,
    stringKeys: true,
    merge: false,
    prettyErrors: true,
    strict: true,
    logLevel: 'error',
  });
  const problems = [...doc.errors, ...doc.warnings].map((e) => yamlIssue(e, fileName));
  if (problems.length > 0) return { ok: false, issues: problems };

  let aliases = 0;
  visit(doc, {
    Alias() {
      aliases++;
    },
  });
  if (aliases > MAX_YAML_ALIASES) {
    return {
      ok: false,
      issues: [issue(ParseCode.aliasLimit, fileName, `uses ${aliases} YAML aliases, over the limit of ${MAX_YAML_ALIASES}; write the repeated parts out`)],
    };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (e) {
    if (e instanceof RangeError) throw e;
    return {
      ok: false,
      issues: [issue(ParseCode.aliasLimit, fileName, `its YAML aliases expand too far (limit ${MAX_YAML_ALIASES}); write the repeated parts out`)],
    };
  }
  if (aliases > 0 && hasCycle(value)) {
    return { ok: false, issues: [issue(ParseCode.recursiveAlias, fileName, 'a YAML alias refers to a node that contains it; remove the recursive alias')] };
  }
  if (value === null || value === undefined) {
    return { ok: false, issues: [issue(ParseCode.emptyDocument, fileName, 'the file holds no DAG (only comments or an empty document); write a DAG in it')] };
  }
  return { ok: true, source: value };
}
