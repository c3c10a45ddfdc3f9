/**
 * The `orch` command tree on commander: every CommandSpec (cli.ts, commands/*.ts) becomes a commander command, each
 * of its subcommands one too, so every command and subcommand has generated help (`--help`, `orch help COMMAND`),
 * parsing mistakes are found the same way everywhere (unknown option, missing or extra argument, unknown
 * subcommand: exit 2, one line naming the problem and one with the usage), and the tree is what shell completion
 * (completion.ts) offers. The commands' bodies are unchanged: each gets `{ values, positionals }` as before, values
 * keyed by option name (`box-key`), positionals starting with the subcommand's name.
 */
import { Command, CommanderError, Option } from 'commander';
import { CommandUsageError, reportFailure, withUsageHint, type CommandSpec, type Out, type SubcommandSpec } from './commands/shared';

type OptionDef = CommandSpec['options'][string];

/** The usage line shown at the top of a command's help (alternatives separated by " | " go on lines of their own). */
const usageLines = new WeakMap<Command, string>();

/** The full name of a command: `orch agent add`. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** What a command's help shows after "usage:". */
export function usageOf(cmd: Command): string {
  const usage = usageLines.get(cmd);
  if (usage === undefined) return `${commandPath(cmd)} ${cmd.usage()}`;
  return usage.split(' | ').join('\n       ');
}

/** Subcommands run when their command is given none (`orch runs` lists): their help is their command's. */
const defaults = new WeakSet<Command>();

/** The usage hint of a usage mistake in `cmd`: its usage (the alternative that is about it) and where its help is. */
function hintOf(cmd: Command): { usage: string; helpHint: string } {
  const helpAt = commandPath(defaults.has(cmd) && cmd.parent ? cmd.parent : cmd);
  const helpHint = `see ${helpAt} --help`;
  if (!cmd.parent) return { usage: `${cmd.name()} COMMAND [options]`, helpHint };
  const subs = visibleSubcommands(cmd).map((c) => c.name());
  if (subs.length) return { usage: `${helpAt} ${subs.join('|')} ...`, helpHint };
  const path = commandPath(cmd);
  const alternatives = (usageLines.get(cmd) ?? `${path} ${cmd.usage()}`).split(' | ');
  const usage = alternatives.find((a) => a.startsWith(`${path} `) || a === path) ?? alternatives[0]!;
  return { usage, helpHint };
}

/** A command's subcommands as its help lists them (not the hidden default one, not `help`). */
export function visibleSubcommands(cmd: Command): Command[] {
  return cmd.commands.length ? cmd.createHelp().visibleCommands(cmd).filter((c) => c.name() !== 'help') : [];
}

/** Sets up one command the way every orch command is: help and errors through `out`, nothing printed by commander on a mistake. */
function prepare(cmd: Command, out: Out): Command {
  cmd.configureOutput({
    writeOut: (s) => out.log(s.replace(/\n$/, '')),
    writeErr: (s) => out.err(s.replace(/\n$/, '')),
    outputError: () => {},
  });
  cmd.configureHelp({ styleTitle: (s) => (s === 'Usage:' ? 'usage:' : s), commandUsage: usageOf, sortSubcommands: false });
  cmd.showSuggestionAfterError(true);
  cmd.exitOverride((err) => {
    throw new ParseFailure(cmd, err);
  });
  return cmd;
}

/** A mistake commander found while parsing, with the command it was found in. */
class ParseFailure extends Error {
  constructor(
    readonly command: Command,
    readonly commander: CommanderError,
  ) {
    super(commander.message);
  }
}

/** The placeholder of an option's value in help: --tenant T, --key HEX, --box-key BOX_KEY. */
const METAVAR: Record<string, string> = { tenant: 'T', param: 'NAME=VALUE', key: 'HEX', 'box-key': 'HEX', id: 'WORKFLOW_ID', out: 'FILE', allow: 'FILE', url: 'URL' };
/** The help line of options many commands share. */
const COMMON_OPTION_HELP: Record<string, string> = {
  json: 'machine-readable output; a failure as {"error":{"code","message"}}',
  tenant: 'the tenant',
};

function toOption(name: string, def: OptionDef, description: string | undefined): Option {
  const value = def.type === 'string' ? ` <${METAVAR[name] ?? name.toUpperCase().replace(/-/g, '_')}>` : '';
  const o = new Option(`${def.short ? `-${def.short}, ` : ''}--${name}${value}`, description ?? COMMON_OPTION_HELP[name] ?? '');
  // Repeatable (--tenant A --tenant B), as node:util parseArgs's `multiple`.
  if (def.multiple) o.argParser((v: string, previous: unknown) => [...((previous as string[] | undefined) ?? []), v]);
  return o;
}

/** commander's option values back into the names the command bodies read (`box-key`, `no-demo`). */
function valuesOf(cmd: Command, names: readonly string[]): Record<string, unknown> {
  const opts = cmd.opts();
  const values: Record<string, unknown> = {};
  for (const name of names) {
    if (name.startsWith('no-')) {
      // commander keeps `--no-demo` as demo=false.
      if (opts[name.slice(3).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] === false) values[name] = true;
      continue;
    }
    const v = opts[name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())];
    if (v !== undefined) values[name] = v;
  }
  return values;
}

/** The exit code the command that ran returned. */
interface Exit {
  code: number;
}

function addOptions(cmd: Command, spec: CommandSpec, names: readonly string[]): void {
  for (const name of names) {
    const def = spec.options[name];
    if (!def) throw new Error(`${commandPath(cmd)}: no option --${name} in its command's options`);
    cmd.addOption(toOption(name, def, spec.optionHelp?.[name]));
  }
}

function addLeaf(cmd: Command, spec: CommandSpec, topName: string, names: readonly string[], args: readonly string[], sub: SubcommandSpec | undefined, out: Out, exit: Exit): void {
  addOptions(cmd, spec, names);
  for (const a of args) cmd.argument(a);
  cmd.action(async () => {
    const values = valuesOf(cmd, names);
    const positionals = [...(sub && !sub.isDefault ? [sub.name] : []), ...cmd.args];
    const hint = hintOf(cmd);
    try {
      exit.code = await spec.run(withUsageHint({ values, positionals }, hint), out);
    } catch (err) {
      exit.code = reportFailure(out, err, { name: topName, json: values.json === true, ...hint });
    }
  });
}

/** The `orch` program: one commander command per spec, one per subcommand. */
export function buildProgram(commands: Record<string, CommandSpec>, root: { description: string; version: string; after: string }, out: Out, exit: Exit): Command {
  const program = prepare(new Command('orch'), out);
  program.description(root.description).usage('COMMAND [options]').version(root.version, '--version', 'the version').addHelpText('after', `\n${root.after}`);
  usageLines.set(program, 'orch COMMAND [options]');
  for (const [name, spec] of Object.entries(commands)) {
    const cmd = prepare(program.command(name), out).summary(spec.summary).description(spec.summary);
    usageLines.set(cmd, spec.usage);
    cmd.addHelpText('after', `\n${spec.help}`);
    if (!spec.subcommands) {
      addLeaf(cmd, spec, name, Object.keys(spec.options), spec.args ?? [], undefined, out, exit);
      continue;
    }
    // Given no subcommand, or one it does not have: a usage mistake that names them.
    const subs = spec.subcommands.map((s) => s.name);
    // Options it does not know (--json before a mistyped subcommand) are left for that error to name.
    cmd.argument('[subcommand]').allowExcessArguments().allowUnknownOption();
    cmd.action(() => {
      const given = cmd.args.find((a) => !a.startsWith('-'));
      throw new CommandUsageError(given === undefined ? `expects a subcommand: ${subs.join(', ')}` : `unknown subcommand "${given}" (one of: ${subs.join(', ')})`);
    });
    for (const sub of spec.subcommands) {
      const s = prepare(cmd.command(sub.name, sub.isDefault ? { isDefault: true, hidden: true } : {}), out).summary(sub.summary).description(sub.summary);
      if (sub.isDefault) defaults.add(s);
      usageLines.set(s, sub.usage);
      addLeaf(s, spec, name, sub.options ?? Object.keys(spec.options), sub.args ?? [], sub, out, exit);
    }
  }
  return program;
}

/** Turns a mistake commander found into the words of a usage error. */
function problemOf(f: ParseFailure): string {
  let text = f.commander.message.replace(/^error: /, '');
  text = text.replace(/^unknown command '(.*)'/, 'unknown command "$1"');
  // "(Did you mean run?)" on a line of its own, kept on the problem's line.
  text = text.replace(/\n\(Did you mean (.*)\?\)$/, ' (did you mean $1?)');
  return text.split('\n')[0]!;
}

/**
 * Parses argv against the program and runs the command it names; returns the exit code (0 ok, 1 failure, 2 usage).
 * Every usage mistake, found by commander or by a command, is reported by reportFailure.
 */
export async function runProgram(program: Command, argv: string[], out: Out, exit: Exit): Promise<number> {
  const json = argv.includes('--json');
  try {
    await program.parseAsync(optionsAfterSubcommand(program, argv), { from: 'user' });
    return exit.code;
  } catch (err) {
    let failure = err;
    let cmd: Command = program;
    if (err instanceof ParseFailure) {
      const code = err.commander.code;
      // `orch help COMMAND` shows the help with code commander.help and exit code 0.
      if (code === 'commander.helpDisplayed' || code === 'commander.version' || (code === 'commander.help' && err.commander.exitCode === 0)) return 0;
      cmd = err.command;
      failure = new CommandUsageError(problemOf(err));
    } else if (err instanceof CommandUsageError) {
      // Thrown by a command's own check before it ran (a command given no subcommand): which one is in argv.
      cmd = findCommand(program, argv);
    }
    const top = topOf(cmd);
    return reportFailure(out, failure, { name: top === program ? '' : top.name(), json, ...hintOf(cmd) });
  }
}

/**
 * `orch agent --json list` as `orch agent list --json`: options given between a command group and its subcommand
 * belong to the subcommand (the group itself has none), so they are moved after it. Only when every one of them is
 * an option of that subcommand (a value-taking one with its value); anything else is left for the parser to report.
 */
export function optionsAfterSubcommand(program: Command, argv: readonly string[]): string[] {
  const group = program.commands.find((c) => c.name() === argv[0]);
  if (!group || group.commands.length === 0 || !argv[1]?.startsWith('-')) return [...argv];
  const flagOf = (arg: string) => (arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg);
  const optionIn = (cmd: Command, flag: string) => cmd.options.find((o) => o.long === flag || o.short === flag);
  // Options (with their values) up to the first word that is not one: the subcommand.
  const moved: string[] = [];
  let i = 1;
  while (i < argv.length && argv[i]!.startsWith('-') && argv[i] !== '--') {
    const arg = argv[i++]!;
    moved.push(arg);
    const option = group.commands.map((c) => optionIn(c, flagOf(arg))).find((o) => o !== undefined);
    if (!option) return [...argv];
    if ((option.required || option.optional) && !arg.includes('=') && i < argv.length) moved.push(argv[i++]!);
  }
  const sub = group.commands.find((c) => c.name() === argv[i]);
  if (!sub || moved.some((arg) => arg.startsWith('-') && !optionIn(sub, flagOf(arg)))) return [...argv];
  return [argv[0]!, argv[i]!, ...moved, ...argv.slice(i + 1)];
}

/** The deepest command argv names (for the usage hint of a mistake found outside commander's parsing). */
function findCommand(program: Command, argv: string[]): Command {
  let cmd = program;
  for (const a of argv) {
    if (a.startsWith('-')) continue;
    const next = cmd.commands.find((c) => c.name() === a);
    if (!next) break;
    cmd = next;
  }
  return cmd;
}

function topOf(cmd: Command): Command {
  let c = cmd;
  while (c.parent?.parent) c = c.parent;
  return c;
}
