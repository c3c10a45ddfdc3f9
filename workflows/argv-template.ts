/**
 * Secrets in hand-written workflows: `secret('NAME')` is the only way to put a secret into a command's argv.
 *
 * The command activity resolves the template language of workflows/dag/template.ts, where `${secrets.NAME}` is a
 * reference and `$${` a literal `${`. A DAG's argv is that language, written by its author in YAML. A hand-written
 * workflow's argv is code and data mixed: a string may come from workflow input, a signal or a parent's output,
 * and text such as `${secrets.DB_PASSWORD}` in it must reach the agent as that text, never as the secret's value.
 * So {@link argvTemplate} escapes every `${` of a string and writes a reference only for a {@link Secret}, an
 * instance only workflow code can make (input arrives as JSON, which has no class instances).
 *
 * Pure code: runs inside the workflow sandbox.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { ErrorType } from '../protocol/errors';
import { NAME_PATTERN } from './dag/limits';

/** A reference to one of the tenant's secrets, resolved inside the command activity. Make it with {@link secret}. */
export class Secret {
  /** @internal use {@link secret} */
  constructor(readonly name: string) {}

  /** Shown as the reference, never a value (there is none in workflow code). */
  toString(): string {
    return `\${secrets.${this.name}}`;
  }
}

/** One piece of an argv element: literal text, or a secret. */
export type ArgvPart = string | Secret;
/** An argv element: text, a secret, or pieces joined without separators (`['--token=', secret('API')]`). */
export type ArgvElement = ArgvPart | readonly ArgvPart[];

/**
 * A secret reference for a command's argv.
 *
 * @example await command('deploy', { agent: 'web-1', argv: ['deploy', ['--token=', secret('DEPLOY_TOKEN')], input.branch] });
 */
export function secret(name: string): Secret {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw ApplicationFailure.nonRetryable(`secret(${JSON.stringify(String(name)).slice(0, 60)}): a secret name is letters, digits, _ and -`, ErrorType.badInput);
  }
  return new Secret(name);
}

function escapeLiteral(text: string): string {
  return text.split('${').join('$${');
}

/**
 * The argv as the command activity's template: every string literal (its `${` escaped as `$${`), every
 * {@link Secret} a `${secrets.NAME}` reference. Anything else (a number, a look-alike plain object from input) is
 * refused with `bad_input`, as is a `$` right before a secret in one element, which the template language cannot
 * write (it would read back as the `$${` escape).
 *
 * @example argvTemplate(['echo', '${secrets.X}', secret('X')]) // ['echo', '$${secrets.X}', '${secrets.X}']
 */
export function argvTemplate(argv: readonly ArgvElement[]): string[] {
  if (!Array.isArray(argv)) throw ApplicationFailure.nonRetryable('argv must be a list', ErrorType.badInput);
  return argv.map((element: unknown, i) => {
    const parts: readonly unknown[] = Array.isArray(element) ? element : [element];
    // Literal pieces are joined before they are escaped: '$' then '{' in two pieces is a `${` too.
    let out = '';
    let literal = '';
    for (const part of parts) {
      if (typeof part === 'string') literal += part;
      else if (part instanceof Secret) {
        if (literal.endsWith('$')) {
          throw ApplicationFailure.nonRetryable(`argv element ${i}: a "$" right before ${part.toString()} cannot be passed on; put it in an element of its own`, ErrorType.badInput);
        }
        out += escapeLiteral(literal) + part.toString();
        literal = '';
      } else {
        throw ApplicationFailure.nonRetryable(`argv element ${i} must be text or secret('NAME'), got ${part === null ? 'null' : typeof part}`, ErrorType.badInput);
      }
    }
    return out + escapeLiteral(literal);
  });
}
