/**
 * What the desktop's CLI command modules share: the shape desktop-worker/cli.ts registers, and one way to end a
 * command with an error (one line on stderr; with --json also `{ "error": { "code", "message" } }` on stdout, so
 * scripts branch on the code, never on the text).
 */
import type { ParseArgsConfig } from 'node:util';
import { OrchError } from '../../protocol/errors';
import { logUnexpectedError } from '../cli-log';

export type Out = { log: (line: string) => void; err: (line: string) => void };
export type CommandArgs = { values: Record<string, unknown>; positionals: string[] };

export interface CommandSpec {
  summary: string;
  usage: string;
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(args: CommandArgs, out: Out): Promise<number>;
}

/** A usage mistake: exit code 2. */
export class CommandUsageError extends Error {}

export function printJson(out: Out, value: unknown): void {
  out.log(JSON.stringify(value, null, 2));
}

/**
 * Runs a command body and turns its errors into the CLI's exit codes: 2 for usage, 1 for OrchError (stable
 * code), 1 with "unexpected error" otherwise. The same behaviour whether or not cli.ts's own handler is around.
 */
export async function runCommand(name: string, args: CommandArgs, out: Out, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof CommandUsageError) {
      out.err(`orch ${name}: ${err.message}`);
      return 2;
    }
    const code = err instanceof OrchError ? err.code : 'unexpected_error';
    const message = err instanceof OrchError ? err.message : `unexpected error: ${(err as Error).message?.split('\n')[0] ?? String(err)}`;
    out.err(`orch ${name}: ${message}`);
    if (args.values.json) printJson(out, { error: { code, message } });
    if (!(err instanceof OrchError)) logUnexpectedError(name, err);
    return 1;
  }
}
