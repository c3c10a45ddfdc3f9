/**
 * Templates in DAG fields. The only forms are:
 *   ${params.NAME}      a run parameter (an absent optional param renders as the empty string)
 *   ${nodes.ID.output}  a parent's output, wrapped by `wrapServerOutput`
 *   ${secrets.NAME}     a secret, resolved inside the activity that runs the command (command argv only)
 *   $${                 a literal `${` (the only escape; a lone `$` is just a `$`)
 * Any other `${...}` is an error, so a typo is caught at compile time instead of reaching a server.
 *
 * Rendering is a single pass: a substituted value is never scanned again, so a param whose value is
 * `${secrets.DB_PASSWORD}` stays that literal text. Render a command's argv in one pass where the secrets are
 * available; never render params first and secrets later over the result.
 *
 * The one sanctioned two-step form is `keepSecrets`: the workflow renders params with `keepSecrets: true`, which
 * returns a template again (every `${` of literal or substituted text escaped as `$${`, each secret reference
 * kept as `${secrets.NAME}`), and the activity renders that with the `secret` resolver. The second pass sees
 * only the references the DAG author wrote, so it equals the single pass: a param value can never name a secret.
 */

import type { ParamValues } from './types';
import { wrapServerOutput } from './server-output';

export type TemplatePart =
  | { kind: 'text'; text: string }
  | { kind: 'param'; name: string }
  | { kind: 'node'; id: string }
  | { kind: 'secret'; name: string };

export interface TemplateSyntaxError {
  /** 'unterminated_reference' or 'bad_reference'. */
  code: 'unterminated_reference' | 'bad_reference';
  /** The offending text, e.g. `${env.HOME}`, cut to 60 characters. */
  text: string;
  /** Offset in the template. */
  index: number;
}

export interface ParsedTemplate {
  parts: TemplatePart[];
  errors: TemplateSyntaxError[];
}

const NAME = '[A-Za-z0-9_-]+';
const PARAM_REF = new RegExp(`^params\\.(${NAME})$`);
const NODE_REF = new RegExp(`^nodes\\.(${NAME})\\.output$`);
const SECRET_REF = new RegExp(`^secrets\\.(${NAME})$`);

function clip(s: string): string {
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** Splits a template into literal text and references, collecting syntax errors instead of throwing. */
export function parseTemplate(template: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  const errors: TemplateSyntaxError[] = [];
  let text = '';
  let i = 0;
  while (i < template.length) {
    if (template.startsWith('$${', i)) {
      text += '${';
      i += 3;
      continue;
    }
    if (template.startsWith('${', i)) {
      const close = template.indexOf('}', i + 2);
      if (close < 0) {
        errors.push({ code: 'unterminated_reference', text: clip(template.slice(i)), index: i });
        text += template.slice(i);
        break;
      }
      const expr = template.slice(i + 2, close);
      const param = PARAM_REF.exec(expr);
      const node = NODE_REF.exec(expr);
      const secret = SECRET_REF.exec(expr);
      const ref: TemplatePart | undefined = param?.[1]
        ? { kind: 'param', name: param[1] }
        : node?.[1]
          ? { kind: 'node', id: node[1] }
          : secret?.[1]
            ? { kind: 'secret', name: secret[1] }
            : undefined;
      if (ref) {
        if (text) parts.push({ kind: 'text', text });
        text = '';
        parts.push(ref);
      } else {
        errors.push({ code: 'bad_reference', text: clip(template.slice(i, close + 1)), index: i });
        text += template.slice(i, close + 1);
      }
      i = close + 1;
      continue;
    }
    text += template[i];
    i++;
  }
  if (text) parts.push({ kind: 'text', text });
  return { parts, errors };
}

export interface TemplateReferences {
  params: string[];
  nodes: string[];
  secrets: string[];
}

/** The well-formed references in a template, each name once, in order of first use. */
export function templateReferences(template: string): TemplateReferences {
  const refs: TemplateReferences = { params: [], nodes: [], secrets: [] };
  for (const part of parseTemplate(template).parts) {
    if (part.kind === 'param' && !refs.params.includes(part.name)) refs.params.push(part.name);
    else if (part.kind === 'node' && !refs.nodes.includes(part.id)) refs.nodes.push(part.id);
    else if (part.kind === 'secret' && !refs.secrets.includes(part.name)) refs.secrets.push(part.name);
  }
  return refs;
}

export interface TemplateContext {
  params: ParamValues;
  /** A finished ancestor's output; required when the template uses `${nodes.ID.output}`. */
  nodeOutput?: (id: string) => string | undefined;
  /** A secret's value; only activities pass this. Without it a `${secrets.NAME}` reference throws. */
  secret?: (name: string) => string | undefined;
  /**
   * Workflow side of command argv: keep `${secrets.NAME}` references for the activity and return a template
   * (see the module comment) instead of plain text. Ignored when `secret` is given.
   */
  keepSecrets?: boolean;
}

/** `text` as template text that renders back to exactly `text`. */
function escapeTemplateText(text: string): string {
  return text.split('${').join('$${');
}

/**
 * Renders a compiled (so already checked) template. Throws on a syntax error, on a node output or secret the
 * context cannot supply: after compile these mean a bug in the caller, not bad input.
 *
 * @example renderTemplate('df -h ${params.mount}', { params: { mount: '/var' } }) // 'df -h /var'
 */
export function renderTemplate(template: string, ctx: TemplateContext): string {
  const { parts, errors } = parseTemplate(template);
  const first = errors[0];
  if (first) throw new Error(`template has an invalid reference ${first.text} at offset ${first.index}`);
  const keep = ctx.keepSecrets === true && ctx.secret === undefined;
  let out = '';
  // In keepSecrets mode the output is itself a template: literal pieces are collected in `pending` and escaped
  // when a kept reference (or the end) closes them.
  let pending = '';
  const emit = (text: string) => {
    if (keep) pending += text;
    else out += text;
  };
  for (const part of parts) {
    switch (part.kind) {
      case 'text':
        emit(part.text);
        break;
      case 'param': {
        const v = Object.prototype.hasOwnProperty.call(ctx.params, part.name) ? ctx.params[part.name] : undefined;
        emit(v === undefined ? '' : String(v));
        break;
      }
      case 'node': {
        const output = ctx.nodeOutput?.(part.id);
        if (output === undefined) throw new Error(`template needs the output of node "${part.id}", which is not available`);
        emit(wrapServerOutput(part.id, output));
        break;
      }
      case 'secret': {
        if (keep) {
          // `$` directly before a reference would read back as the `$${` escape; the syntax has no way to
          // write it, so refuse rather than send the agent something else than the DAG says.
          if (pending.endsWith('$')) throw new Error(`a "$" directly before \${secrets.${part.name}} cannot be passed on to the activity`);
          out += escapeTemplateText(pending) + '${secrets.' + part.name + '}';
          pending = '';
          break;
        }
        const value = ctx.secret?.(part.name);
        if (value === undefined) throw new Error(`template needs secret "${part.name}", which is not available here`);
        out += value;
        break;
      }
    }
  }
  if (keep) out += escapeTemplateText(pending);
  return out;
}
