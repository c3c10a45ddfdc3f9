/**
 * `orch completion bash|zsh`: a completion script made from the commander tree (cli-program.ts), so it offers
 * exactly the commands, subcommands and options `orch` has. It completes command and subcommand names, and after
 * a "-" the options of the command named so far; an option's value and a command's arguments are left to the
 * shell (file names).
 *
 *   bash: source <(orch completion bash)        (or save it in /etc/bash_completion.d/orch)
 *   zsh:  source <(orch completion zsh)         (after compinit; or save it as _orch in a directory of $fpath)
 */
import type { Command, Option } from 'commander';
import { visibleSubcommands } from './cli-program';

export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

interface Node {
  /** `agent add`; the root is "". */
  path: string;
  words: string[];
  options: string[];
  /** The options that take a value: the word after one of them is its value, not a command. */
  valued: string[];
}

function flagsOf(options: readonly Option[]): { all: string[]; valued: string[] } {
  const all: string[] = [];
  const valued: string[] = [];
  for (const o of options) {
    const flags = [o.long, o.short].filter((f): f is string => typeof f === 'string');
    if (o.long) all.push(o.long);
    if (o.required || o.optional) valued.push(...flags);
  }
  return { all, valued };
}

function nodes(cmd: Command, path: string, out: Node[]): Node[] {
  const subs = visibleSubcommands(cmd);
  // A command run without a subcommand runs its default one (`orch runs` lists): its options are the command's too.
  const defaults = cmd.commands.filter((c) => !subs.includes(c) && c.name() !== 'help');
  const own = flagsOf([...cmd.options, ...defaults.flatMap((d) => d.options)]);
  // Arguments with a fixed set of values (orch completion bash|zsh) are offered like subcommands.
  const choices = cmd.registeredArguments.flatMap((a) => a.argChoices ?? []);
  out.push({
    path,
    words: [...subs.map((c) => c.name()), ...choices, ...(path === '' ? ['help'] : [])],
    options: [...own.all, '--help', ...(path === '' ? ['--version'] : [])],
    valued: own.valued,
  });
  for (const s of subs) nodes(s, path ? `${path} ${s.name()}` : s.name(), out);
  return out;
}

/** A shell function `NAME PATH` that prints the words of PATH (one `case`). */
function table(name: string, all: Node[], pick: (n: Node) => string[]): string {
  const cases = all.filter((n) => pick(n).length).map((n) => `    "${n.path}") echo "${pick(n).join(' ')}" ;;`);
  return `${name}() {\n  case "$1" in\n${cases.join('\n')}\n  esac\n}`;
}

function tables(program: Command): string {
  const all = nodes(program, '', []);
  return [table('_orch_words', all, (n) => n.words), table('_orch_options', all, (n) => n.options), table('_orch_valued', all, (n) => n.valued)].join('\n');
}

/**
 * The loop both shells share: walks the words before the cursor, following subcommand names and skipping option
 * values, and leaves the command path in `cmdpath` and whether the cursor is on an option's value in `skip`.
 */
const WALK = `    if [[ -n "$skip" ]]; then skip=""; continue; fi
    if [[ "$word" == -* ]]; then
      if [[ "$word" != *=* && " $(_orch_valued "$cmdpath") " == *" $word "* ]]; then skip=1; fi
      continue
    fi
    if [[ " $(_orch_words "$cmdpath") " == *" $word "* ]]; then cmdpath="\${cmdpath:+$cmdpath }$word"; fi`;

export function completionScript(program: Command, shell: CompletionShell): string {
  if (shell === 'bash') {
    return `# bash completion for orch (orch completion bash): source <(orch completion bash)
${tables(program)}
_orch_completion() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmdpath="" word="" skip="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
${WALK}
  done
  COMPREPLY=()
  if [[ -n "$skip" ]]; then return 0; fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_orch_options "$cmdpath")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_orch_words "$cmdpath")" -- "$cur"))
  fi
}
complete -o default -F _orch_completion orch
`;
  }
  return `#compdef orch
# zsh completion for orch (orch completion zsh): source <(orch completion zsh), or save it as _orch in $fpath
${tables(program)}
_orch() {
  local cur="\${words[CURRENT]}" cmdpath="" word="" skip="" i list
  for ((i = 2; i < CURRENT; i++)); do
    word="\${words[i]}"
${WALK}
  done
  if [[ -n "$skip" ]]; then _files; return; fi
  if [[ "$cur" == -* ]]; then list="$(_orch_options "$cmdpath")"; else list="$(_orch_words "$cmdpath")"; fi
  if [[ -n "$list" ]]; then compadd -- \${=list}; else _files; fi
}
if (( ! $+functions[compdef] )); then autoload -Uz compinit && compinit; fi
compdef _orch orch
`;
}
