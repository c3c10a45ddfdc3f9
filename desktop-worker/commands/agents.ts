/**
 * `orch agent add | list | remove`: the desktop's half of enrollment (desktop-worker/agent-registry.ts).
 */
import { orchHome } from '../paths';
import { AGENT_TIERS, AgentRegistry, checkAgentName, checkTier, parseBoxKeyHex, parseKeyHex, readAllowlistFile, type AgentRecord } from '../agent-registry';
import { DEFAULT_HEARTBEAT_MS, ONLINE_WINDOW_MS } from '../agent-transport';
import { fingerprintOf, loadDesktopIdentity } from '../identity';
import { OrchError } from '../../workflows/errors';
import { CommandUsageError, printJson, runCommand, type CommandArgs, type CommandSpec, type Out } from './shared';
import { auditAgentChange } from '../agent-audit';
import { Env } from '../config';
import { LOCAL_RELAY, RelayRegistry } from '../relay-registry';
import path from 'node:path';

/** Variables read before named relays, ignored now (with a warning): a relay is named and pinned with `orch relay add`. */
const RETIRED_RELAY_ENV = ['ORCH_RELAY_URL', 'ORCH_RELAY_PIN'] as const;

export const agentOptions = {
  key: { type: 'string' },
  'box-key': { type: 'string' },
  tier: { type: 'string' },
  allow: { type: 'string' },
  relay: { type: 'string' },
  ping: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export const agentUsage =
  'orch agent add NAME --key HEX --box-key HEX --tier read-only|standard|infrastructure [--allow FILE] [--relay RELAY] [--json] | orch agent list [--relay RELAY] [--ping] [--json] | orch agent remove NAME [--json]';

export const agentHelp = `Enrolled agents, with their pinned public keys, in <ORCH_HOME>/agents.sqlite (mode 0600).
  add NAME     pin a server's agent: --key is its Ed25519 public key, --box-key its X25519 public key (64 hex
               digits each, as \`orch-agent enroll\` prints them), --tier its security tier, --allow the allowlist
               file you gave the agent (kept here for reference; the agent enforces its own copy).
               NAME is what DAG command nodes use in \`agent:\`: 1-50 letters, digits, "_" or "-".
               --relay RELAY is the named relay (\`orch relay list\`) the agent is reached through; default
               $${Env.relay}, else "${LOCAL_RELAY}" (the relay \`orch up\` runs) when it is configured, else the only relay.
  list         per agent: its relay, tier, online or offline (heard from within the last ${ONLINE_WINDOW_MS / 1000} s: a running
               Orch worker pings its agents through their relays every ${DEFAULT_HEARTBEAT_MS / 1000} s), when it was last seen,
               and from its last authenticated pong its version and the commands it ran and refused (older agents
               do not report those counts: "-"). Tenants are not shown: agents are not tenant-scoped yet.
               --relay RELAY lists only that relay's agents. --ping asks them now, each through its own relay,
               as this desktop. A relay keeps one connection per key, so while \`orch up\` runs, --ping takes the
               relay sessions from the worker: leave it out then.
  remove NAME  forget an agent: nothing more is sent to it or accepted from it.`;

const PING_TIMEOUT_MS = 3000;
const RELAY_CONNECT_MS = 5000;

function stringOpt(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

function only(values: Record<string, unknown>, allowed: string[], sub: string): void {
  for (const [k, v] of Object.entries(values)) {
    if (v !== undefined && !allowed.includes(k)) throw new CommandUsageError(`--${k} does not apply to \`orch agent ${sub}\` (usage: ${agentUsage})`);
  }
}

function describeAgent(a: AgentRecord) {
  return {
    name: a.name,
    tier: a.tier,
    signPublicKey: a.signPublicKey.toString('hex'),
    boxPublicKey: a.boxPublicKey.toString('hex'),
    fingerprint: fingerprintOf(a.signPublicKey, a.boxPublicKey),
    hasAllowlist: a.allowlist !== null,
    addedAt: a.addedAt,
    lastSeen: a.lastSeen,
    relay: a.relay,
    agentVersion: a.pong?.agentVersion ?? null,
    reportedTier: a.pong?.tier ?? null,
    commandsRun: a.pong?.commandsRun ?? null,
    commandsRefused: a.pong?.commandsRefused ?? null,
    pongAt: a.pong?.at ?? null,
  };
}

/** --relay NAME; a URL there is the pre-named-relays usage: say what to do instead. */
function relayName(values: Record<string, unknown>): string | undefined {
  const v = stringOpt(values, 'relay');
  if (v !== undefined && v.includes('://')) {
    throw new CommandUsageError(`--relay takes a relay NAME (\`orch relay list\`); to use ${v.slice(0, 80)}, name and pin it first: orch relay add NAME --url ${v.slice(0, 80)} --pin sha256/...`);
  }
  return v;
}

function warnRetiredEnv(out: Out): void {
  const set = RETIRED_RELAY_ENV.filter((k) => process.env[k]);
  if (set.length) out.err(`warning: ${set.join(' and ')} ${set.length === 1 ? 'is' : 'are'} no longer read: name and pin the relay with \`orch relay add NAME --url ... --pin ...\``);
}

/**
 * The relay an agent is enrolled through: --relay, else $ORCH_RELAY, else "local" when it is configured or no relay
 * is (the relay `orch up` adds, said on stderr), else the only one.
 */
function chooseRelay(explicit: string | undefined, relays: RelayRegistry, notes: string[]): string {
  const named = explicit ?? (process.env[Env.relay] || undefined);
  const configured = relays.list();
  if (named !== undefined) {
    if (!configured.some((r) => r.name === named)) {
      const from = explicit !== undefined ? '--relay' : `$${Env.relay}`;
      throw new OrchError('unknown_relay', `${from} names relay "${named}", which is not configured (${configured.length ? `configured: ${configured.map((r) => r.name).join(', ')}` : 'none is'}; add it with \`orch relay add ${named} --url ... --pin ...\`)`);
    }
    return named;
  }
  if (configured.some((r) => r.name === LOCAL_RELAY)) return LOCAL_RELAY;
  if (configured.length === 1) return configured[0]!.name;
  if (!configured.length) {
    notes.push(`note: no relay is configured yet, so the agent is enrolled through "${LOCAL_RELAY}", the relay \`orch up\` runs and adds; for a relay of your own: \`orch relay add NAME --url ... --pin ...\` and --relay NAME`);
    return LOCAL_RELAY;
  }
  throw new OrchError('unknown_relay', `more than one relay is configured (${configured.map((r) => r.name).join(', ')}): say which one reaches this agent with --relay NAME`);
}

async function add(args: CommandArgs, out: Out, registry: AgentRegistry): Promise<number> {
  const [, name, ...rest] = args.positionals;
  only(args.values, ['key', 'box-key', 'tier', 'allow', 'relay', 'json'], 'add');
  if (!name || rest.length) throw new CommandUsageError('usage: orch agent add NAME --key HEX --box-key HEX --tier TIER [--allow FILE] [--relay RELAY]');
  const key = stringOpt(args.values, 'key');
  const boxKey = stringOpt(args.values, 'box-key');
  const tier = stringOpt(args.values, 'tier');
  if (key === undefined) throw new CommandUsageError("--key is required: the agent's Ed25519 public key (64 hex digits, from `orch-agent enroll`)");
  if (boxKey === undefined) throw new CommandUsageError("--box-key is required: the agent's X25519 public key (64 hex digits, from `orch-agent enroll`)");
  if (tier === undefined) throw new CommandUsageError(`--tier is required: one of ${AGENT_TIERS.join(', ')}`);
  checkAgentName(name);
  const allowFile = stringOpt(args.values, 'allow');
  const allowlist = allowFile === undefined ? null : readAllowlistFile(allowFile);
  // Everything about the agent itself is checked before its relay: a typo in a key is the first thing reported.
  parseKeyHex("--key (the agent's Ed25519 public key)", key);
  parseBoxKeyHex("--box-key (the agent's X25519 public key)", boxKey);
  checkTier(tier);
  warnRetiredEnv(out);
  const relays = RelayRegistry.open(path.dirname(registry.file));
  let relay: string;
  const notes: string[] = [];
  try {
    relay = chooseRelay(relayName(args.values), relays, notes);
  } finally {
    relays.close();
  }
  const agent = registry.add({ name, signKeyHex: key, boxKeyHex: boxKey, tier, allowlist, relay });
  const shown = describeAgent(agent);
  await auditAgentChange(path.dirname(registry.file), 'enroll_agent', agent.name, { tier: agent.tier, fingerprint: shown.fingerprint, signKey: key, relay });
  if (args.values.json) printJson(out, shown);
  else out.log(`agent "${agent.name}" added (tier ${agent.tier}, relay ${relay}, fingerprint ${shown.fingerprint})`);
  for (const n of notes) out.err(n);
  return 0;
}

async function remove(args: CommandArgs, out: Out, registry: AgentRegistry): Promise<number> {
  const [, name, ...rest] = args.positionals;
  only(args.values, ['json'], 'remove');
  if (!name || rest.length) throw new CommandUsageError('usage: orch agent remove NAME');
  registry.remove(name);
  await auditAgentChange(path.dirname(registry.file), 'remove_agent', name, {});
  if (args.values.json) printJson(out, { name, removed: true });
  else out.log(`agent "${name}" removed`);
  return 0;
}

type Presence = { online: boolean; source: 'ping' | 'last_seen' };

function fromLastSeen(a: AgentRecord, now: number): Presence {
  const seen = a.lastSeen ? Date.parse(a.lastSeen) : NaN;
  return { online: Number.isFinite(seen) && now - seen <= ONLINE_WINDOW_MS, source: 'last_seen' };
}

/** Pings every agent through its own relay now; undefined (after one line on stderr) when that cannot be done at all. */
async function pingAll(home: string, agents: AgentRecord[], out: Out): Promise<Map<string, Presence> | undefined> {
  let identity;
  try {
    identity = await loadDesktopIdentity({ home });
  } catch (err) {
    if (!(err instanceof OrchError)) throw err;
    out.err(`orch agent list: cannot ping (${err.message}); showing when each agent was last heard from`);
    return undefined;
  }
  const { connectRelayTransports } = await import('../relay-pool');
  const links = await connectRelayTransports({ home, identity, waitMs: RELAY_CONNECT_MS, heartbeatMs: 0, only: [...new Set(agents.map((a) => a.relay))] });
  try {
    for (const name of new Set(agents.map((a) => a.relay))) {
      const status = links.relays().find((r) => r.name === name);
      if (status?.connected) continue;
      const why = status?.startError ? `${status.startError.code}: ${status.startError.message}` : status ? `no answer within ${RELAY_CONNECT_MS / 1000} s` : 'not configured';
      out.err(`orch agent list: cannot ping through relay "${name}" (${why}); its agents show when they were last heard from`);
    }
    const reachable = new Set(links.relays().filter((r) => r.connected).map((r) => r.name));
    const results = await Promise.all(agents.filter((a) => reachable.has(a.relay)).map(async (a) => [a.name, await links.transport.ping(a.name, PING_TIMEOUT_MS)] as const));
    const map = new Map<string, Presence>();
    for (const [name, pong] of results) map.set(name, { online: pong !== undefined, source: 'ping' });
    return map;
  } finally {
    await links.close();
  }
}

async function list(args: CommandArgs, out: Out, registry: AgentRegistry, home: string): Promise<number> {
  only(args.values, ['relay', 'ping', 'json'], 'list');
  if (args.positionals.length > 1) throw new CommandUsageError('usage: orch agent list [--relay RELAY] [--ping] [--json]');
  warnRetiredEnv(out);
  const relayOpt = relayName(args.values);
  const relay = relayOpt === undefined ? undefined : checkAgentName(relayOpt, 'relay');
  const pick = (all: AgentRecord[]) => (relay === undefined ? all : all.filter((a) => a.relay === relay));
  const agents = pick(registry.list());
  const pinged = args.values.ping && agents.length ? await pingAll(home, agents, out) : undefined;
  // Re-read after pinging: each pong moved last_seen and the pong columns.
  const now = Date.now();
  const rows = (pinged ? pick(registry.list()) : agents).map((a) => ({ ...describeAgent(a), ...(pinged?.get(a.name) ?? fromLastSeen(a, now)) }));
  if (args.values.json) {
    printJson(out, rows);
    return 0;
  }
  if (!rows.length) {
    out.log(relay === undefined ? 'no agents enrolled yet: orch agent add NAME --key HEX --box-key HEX --tier standard --relay RELAY' : `no agents are enrolled through relay "${relay}"`);
    return 0;
  }
  const count = (n: number | null) => (n === null ? '-' : String(n));
  out.log(`${'AGENT'.padEnd(20)} ${'TIER'.padEnd(15)} ${'STATUS'.padEnd(46)} ${'RELAY'.padEnd(12)} ${'VERSION'.padEnd(10)} ${'RUN'.padStart(6)} ${'REFUSED'.padStart(7)}  FINGERPRINT`);
  for (const r of rows) {
    const seen = r.lastSeen ? `last seen ${r.lastSeen}` : 'never seen';
    const status = r.online ? `online (${r.source === 'ping' ? 'answered a ping now' : seen})` : `offline (${seen})`;
    const mismatch = r.reportedTier && r.reportedTier !== r.tier ? ` (the agent reports tier ${r.reportedTier})` : '';
    out.log(
      `${r.name.padEnd(20)} ${r.tier.padEnd(15)} ${status.padEnd(46)} ${r.relay.padEnd(12)} ${(r.agentVersion ?? '-').padEnd(10)} ${count(r.commandsRun).padStart(6)} ${count(r.commandsRefused).padStart(7)}  ${r.fingerprint}${mismatch}`,
    );
  }
  return 0;
}

/** `orch agent add|list|remove ...` */
export async function agentCommand(args: CommandArgs, out: Out): Promise<number> {
  return runCommand('agent', args, out, async () => {
    const sub = args.positionals[0];
    if (sub !== 'add' && sub !== 'list' && sub !== 'remove') throw new CommandUsageError(`usage: ${agentUsage}`);
    const home = orchHome();
    const registry = AgentRegistry.open(home);
    try {
      if (sub === 'add') return await add(args, out, registry);
      if (sub === 'remove') return await remove(args, out, registry);
      return await list(args, out, registry, home);
    } finally {
      registry.close();
    }
  });
}

export const agentSpec: CommandSpec = {
  summary: 'enroll, list (online status) or remove agents',
  usage: agentUsage,
  help: agentHelp,
  options: agentOptions,
  run: agentCommand,
};
