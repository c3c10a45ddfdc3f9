/**
 * `orch relay add | list | remove | start`: the relays this desktop reaches its agents through, each named and
 * pinned (desktop-worker/relay-registry.ts), and `start`, which runs a relay (relay/main.ts).
 */
import { orchHome } from '../../infra/paths';
import { auditAgentChange } from '../agent-audit';
import { LOCAL_RELAY, RelayRegistry, type RelayRecord } from '../relay-registry';
import { CommandUsageError, printJson, runCommand, type CommandArgs, type CommandSpec, type Out } from './shared';

export const relayOptions = {
  url: { type: 'string' },
  pin: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export const relayUsage = 'orch relay add NAME --url wss://HOST:PORT/v1/relay --pin sha256/... [--json] | orch relay list [--json] | orch relay remove NAME [--json] | orch relay start [options]';

export const relayHelp = `The relays this desktop reaches its agents through, in <ORCH_HOME>/agents.sqlite (mode 0600). Every agent is
enrolled through exactly one of them (\`orch agent add ... --relay NAME\`); the worker of \`orch up\` connects to each
relay that has agents, checks its pin on every connection, and sends each agent's commands through its relay. A
relay that is down fails only its own agents' commands (relay_unavailable, retried).
  add NAME     --url the relay's address as servers and this desktop reach it (wss://HOST:PORT/v1/relay) and
               --pin its certificate's pin (sha256/..., both printed by \`orch relay start\`). NAME: 1-50 letters,
               digits, "_" or "-". The relay \`orch up\` runs on this machine is added as "${LOCAL_RELAY}".
  list         the relays, with how many agents each reaches.
  remove NAME  forget a relay; refused while an agent is enrolled through it.
  start        run a relay here (the same as the \`orch-relay\` command; \`orch relay start --help\` lists its options).
Adding and removing a relay is recorded in every tenant's audit log (add_relay, remove_relay).`;

function only(values: Record<string, unknown>, allowed: string[], sub: string): void {
  for (const [k, v] of Object.entries(values)) {
    if (v !== undefined && !allowed.includes(k)) throw new CommandUsageError(`--${k} does not apply to \`orch relay ${sub}\` (usage: ${relayUsage})`);
  }
}

function stringOpt(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

async function add(args: CommandArgs, out: Out, relays: RelayRegistry, home: string): Promise<number> {
  const [, name, ...rest] = args.positionals;
  only(args.values, ['url', 'pin', 'json'], 'add');
  if (!name || rest.length) throw new CommandUsageError('usage: orch relay add NAME --url wss://HOST:PORT/v1/relay --pin sha256/...');
  const url = stringOpt(args.values, 'url');
  const pin = stringOpt(args.values, 'pin');
  if (url === undefined) throw new CommandUsageError('--url is required: the relay\'s wss://HOST:PORT/v1/relay, as `orch relay start` prints it');
  if (pin === undefined) throw new CommandUsageError("--pin is required: the relay certificate's sha256/... pin, as `orch relay start` prints it");
  const relay = relays.add({ name, url, pin });
  await auditAgentChange(home, 'add_relay', relay.name, { url: relay.url, pin: relay.pin });
  if (args.values.json) printJson(out, relay);
  else {
    out.log(`relay "${relay.name}" added (${relay.url}, pin ${relay.pin})`);
    out.log(`enroll agents through it: orch agent add NAME --key HEX --box-key HEX --tier TIER --relay ${relay.name}`);
  }
  return 0;
}

async function remove(args: CommandArgs, out: Out, relays: RelayRegistry, home: string): Promise<number> {
  const [, name, ...rest] = args.positionals;
  only(args.values, ['json'], 'remove');
  if (!name || rest.length) throw new CommandUsageError('usage: orch relay remove NAME');
  relays.remove(name);
  await auditAgentChange(home, 'remove_relay', name, {});
  if (args.values.json) printJson(out, { name, removed: true });
  else out.log(`relay "${name}" removed`);
  return 0;
}

function list(args: CommandArgs, out: Out, relays: RelayRegistry): number {
  only(args.values, ['json'], 'list');
  if (args.positionals.length > 1) throw new CommandUsageError('usage: orch relay list [--json]');
  const counts = relays.agentCounts();
  const rows = relays.list().map((r: RelayRecord) => ({ ...r, agents: counts.get(r.name) ?? 0 }));
  // Agents whose relay is not configured (only possible for agents from before named relays, or a hand-edited
  // file): shown, so an operator sees why their commands fail relay_unavailable.
  const orphans = [...counts].filter(([name]) => !rows.some((r) => r.name === name));
  if (args.values.json) {
    printJson(out, rows);
    return 0;
  }
  if (!rows.length) out.log('no relays yet: orch relay add NAME --url wss://HOST:PORT/v1/relay --pin sha256/... (orch up adds its own as "local")');
  for (const r of rows) out.log(`${r.name.padEnd(20)} ${r.url}  ${r.pin}  ${r.agents} agent${r.agents === 1 ? '' : 's'}`);
  for (const [name, n] of orphans) out.err(`warning: ${n} agent${n === 1 ? ' is' : 's are'} enrolled through relay "${name}", which is not configured (orch relay add ${name} ...)`);
  return 0;
}

/** `orch relay add|list|remove ...` (`start` is dispatched by cli.ts to relay/main.ts before option parsing). */
export async function relayCommand(args: CommandArgs, out: Out): Promise<number> {
  return runCommand('relay', args, out, async () => {
    const sub = args.positionals[0];
    if (sub !== 'add' && sub !== 'list' && sub !== 'remove') throw new CommandUsageError(`usage: ${relayUsage}`);
    const home = orchHome();
    const relays = RelayRegistry.open(home);
    try {
      if (sub === 'add') return await add(args, out, relays, home);
      if (sub === 'remove') return await remove(args, out, relays, home);
      return list(args, out, relays);
    } finally {
      relays.close();
    }
  });
}

export const relaySpec: CommandSpec = {
  summary: 'name and pin the relays your agents are reached through (add, list, remove), or run one (start)',
  usage: relayUsage,
  help: relayHelp,
  options: relayOptions,
  optionHelp: { url: "the relay's address, wss://HOST:PORT/v1/relay", pin: "its certificate's pin, sha256/..." },
  subcommands: [
    { name: 'add', summary: 'name and pin a relay', usage: 'orch relay add NAME --url wss://HOST:PORT/v1/relay --pin sha256/... [--json]', args: ['<name>'], options: ['url', 'pin', 'json'] },
    { name: 'list', summary: 'the relays, with how many agents each reaches', usage: 'orch relay list [--json]', options: ['json'] },
    { name: 'remove', summary: 'forget a relay (refused while an agent is enrolled through it)', usage: 'orch relay remove NAME [--json]', args: ['<name>'], options: ['json'] },
    // Its options are those of orch-relay start: cli.ts adds them (relay/cli-options.ts) and runs it.
    { name: 'start', summary: 'run a relay here (the same as orch-relay start)', usage: 'orch relay start [options]', options: [] },
  ],
  run: relayCommand,
};
