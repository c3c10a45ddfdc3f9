/**
 * What the desktop's CLI command modules share: the shape desktop-worker/cli.ts registers (cli-program.ts turns it
 * into commander commands, with generated help and shell completion), and one way to end a command with an error:
 * one line on stderr (a usage mistake adds a line with the usage), and with --json also
 * `{ "error": { "code", "message" } }` on stdout, so scripts branch on the code, never on the text.
 */
import type { ParseArgsConfig } from 'node:util';
import { OrchError } from '../../protocol/errors';
import { logUnexpectedError } from '../cli-log';
import { TemporalCliError } from '../../infra/temporal-cli';
import { DevServerError } from '../dev-server';

export type Out = { log: (line: string) => void; err: (line: string) => void };
export type CommandArgs = { values: Record<string, unknown>; positionals: string[] };

/** One subcommand of a command (`orch agent add`): its help, its arguments and which of the command's options it takes. */
export interface SubcommandSpec {
  name: string;
  summary: string;
  /** The whole usage line, for example `orch agent add NAME --key HEX ...`. */
  usage: string;
  /** Its arguments in commander syntax: `<name>` required, `[name]` optional, `[words...]` the rest. */
  args?: string[];
  /** Which of the command's options it takes (default: all of them). */
  options?: readonly string[];
  /** Run when the command is given no subcommand (`orch runs` lists); its name then does not reach `run`. */
  isDefault?: boolean;
}

export interface CommandSpec {
  summary: string;
  usage: string;
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** One line per option for the generated help; options left out are listed without one. */
  optionHelp?: Readonly<Record<string, string>>;
  /** The arguments of a command without subcommands, in commander syntax (`<workflow_id>`); default none. */
  args?: string[];
  /** Subcommands: `run` then gets the subcommand's name as its first positional (unless it is the default one). */
  subcommands?: SubcommandSpec[];
  run(args: CommandArgs, out: Out): Promise<number>;
}

/** A usage mistake: exit code 2. */
export class CommandUsageError extends Error {}

/** The `code` of a usage mistake in the --json error object. */
export const USAGE_ERROR_CODE = 'usage';

export function printJson(out: Out, value: unknown): void {
  out.log(JSON.stringify(value, null, 2));
}

/** An error that carries a stable code (OrchError, DevServerError, TemporalCliError): shown as it is, exit 1. */
function codeOf(err: unknown): string | undefined {
  if (err instanceof OrchError || err instanceof DevServerError || err instanceof TemporalCliError) return err.code;
  return undefined;
}

/**
 * Ends a command with an error, the one way every `orch` command does: returns the exit code.
 * - a usage mistake (CommandUsageError): `orch NAME: PROBLEM`, then `usage: ...` naming where the help is; exit 2;
 * - an error with a stable code: `orch NAME: MESSAGE`; exit 1;
 * - anything else: `orch NAME: unexpected error: FIRST LINE` (the stack with ORCH_DEBUG set); exit 1.
 * With `json`, also `{ "error": { "code", "message" } }` on stdout (code "usage" for a usage mistake).
 */
export function reportFailure(out: Out, err: unknown, ctx: { name: string; json: boolean; usage?: string; helpHint?: string }): number {
  const who = `orch${ctx.name ? ` ${ctx.name}` : ''}`;
  if (err instanceof CommandUsageError) {
    out.err(`${who}: ${err.message}`);
    const usage = ctx.usage ?? '';
    // Messages that are themselves a usage line need no second one.
    if (usage && !err.message.includes(usage)) out.err(`usage: ${usage}${ctx.helpHint ? `   (${ctx.helpHint})` : ''}`);
    else if (ctx.helpHint) out.err(ctx.helpHint);
    if (ctx.json) printJson(out, { error: { code: USAGE_ERROR_CODE, message: err.message } });
    return 2;
  }
  const code = codeOf(err);
  const message = code !== undefined ? (err as Error).message : `unexpected error: ${(err as Error)?.message?.split('\n')[0] ?? String(err)}`;
  out.err(`${who}: ${message}`);
  if (ctx.json) printJson(out, { error: { code: code ?? 'unexpected_error', message } });
  // With ORCH_DEBUG, the stack of an error Orch has no code for (a bug), as a log line (cli-log.ts).
  if (code === undefined) logUnexpectedError(ctx.name || 'orch', err);
  return 1;
}

/** Where cli-program.ts says which subcommand runs, for the usage hint of a usage mistake. */
const USAGE_HINT = Symbol('orch.usageHint');
export type UsageHint = { usage: string; helpHint: string };
export function withUsageHint(args: CommandArgs, hint: UsageHint): CommandArgs {
  Object.defineProperty(args, USAGE_HINT, { value: hint, enumerable: false });
  return args;
}
export function usageHintOf(args: CommandArgs): UsageHint | undefined {
  return (args as unknown as Record<symbol, UsageHint | undefined>)[USAGE_HINT];
}

/**
 * Runs a command body and turns its errors into the CLI's exit codes and output (reportFailure): the same whether
 * or not cli.ts's own handler is around.
 */
export async function runCommand(name: string, args: CommandArgs, out: Out, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    return reportFailure(out, err, { name, json: args.values.json === true, ...usageHintOf(args) });
  }
}
