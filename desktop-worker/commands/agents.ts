/**
 * `orch agent add | list | remove`: the desktop's half of enrollment (desktop-worker/agent-registry.ts).
 */
import { orchHome } from '../paths';
import { AGENT_TIERS, AgentRegistry, checkAgentName, readAllowlistFile, type AgentRecord } from '../agent-registry';
import { DEFAULT_HEARTBEAT_MS, ONLINE_WINDOW_MS } from '../agent-transport';
import { fingerprintOf, loadDesktopIdentity } from '../identity';
import { OrchError } from '../../workflows/errors';
import { CommandUsageError, printJson, runCommand, type CommandArgs, type CommandSpec, type Out } from './shared';
import { auditAgentChange } from '../agent-audit';
import path from 'node:path';

/** Where `orch agent list` finds the relay when no --relay/--relay-pin is given. */
export const RelayEnv = { url: 'ORCH_RELAY_URL', pin: 'ORCH_RELAY_PIN' } as const;

export const agentOptions = {
  key: { type: 'string' },
  'box-key': { type: 'string' },
  tier: { type: 'string' },
  allow: { type: 'string' },
  relay: { type: 'string' },
  'relay-pin': { type: 'string' },
  ping: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export const agentUsage =
  'orch agent add NAME --key HEX --box-key HEX --tier read-only|standard|infrastructure [--allow FILE] [--json] | orch agent list [--ping [--relay URL --relay-pin PIN]] [--json] | orch agent remove NAME [--json]';

export const agentHelp = `Enrolled agents, with their pinned public keys, in <ORCH_HOME>/agents.sqlite (mode 0600).
  add NAME     pin a server's agent: --key is its Ed25519 public key, --box-key its X25519 public key (64 hex
               digits each, as \`orch-agent enroll\` prints them), --tier its security tier, --allow the allowlist
               file you gave the agent (kept here for reference; the agent enforces its own copy).
               NAME is what DAG command nodes use in \`agent:\`: 1-50 letters, digits, "_" or "-".
  list         enrolled agents, online when heard from within the last ${ONLINE_WINDOW_MS / 1000} s: a running Orch worker
               pings its agents through the relay every ${DEFAULT_HEARTBEAT_MS / 1000} s and records when each answered.
               --ping asks them now, through the relay (--relay wss://HOST:PORT/v1/relay --relay-pin sha256/..., or
               ${RelayEnv.url} and ${RelayEnv.pin}), as this desktop. The relay keeps one connection per key, so
               while \`orch up\` runs, --ping takes the relay session from the worker: leave it out then.
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
  };
}

async function add(args: CommandArgs, out: Out, registry: AgentRegistry): Promise<number> {
  const [, name, ...rest] = args.positionals;
  only(args.values, ['key', 'box-key', 'tier', 'allow', 'json'], 'add');
  if (!name || rest.length) throw new CommandUsageError('usage: orch agent add NAME --key HEX --box-key HEX --tier TIER [--allow FILE]');
  const key = stringOpt(args.values, 'key');
  const boxKey = stringOpt(args.values, 'box-key');
  const tier = stringOpt(args.values, 'tier');
  if (key === undefined) throw new CommandUsageError("--key is required: the agent's Ed25519 public key (64 hex digits, from `orch-agent enroll`)");
  if (boxKey === undefined) throw new CommandUsageError("--box-key is required: the agent's X25519 public key (64 hex digits, from `orch-agent enroll`)");
  if (tier === undefined) throw new CommandUsageError(`--tier is required: one of ${AGENT_TIERS.join(', ')}`);
  checkAgentName(name);
  const allowFile = stringOpt(args.values, 'allow');
  const allowlist = allowFile === undefined ? null : readAllowlistFile(allowFile);
  const agent = registry.add({ name, signKeyHex: key, boxKeyHex: boxKey, tier, allowlist });
  const shown = describeAgent(agent);
  await auditAgentChange(path.dirname(registry.file), 'enroll_agent', agent.name, { tier: agent.tier, fingerprint: shown.fingerprint, signKey: key });
  if (args.values.json) printJson(out, shown);
  else out.log(`agent "${agent.name}" added (tier ${agent.tier}, fingerprint ${shown.fingerprint})`);
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

type Presence = { online: boolean; source: 'ping' | 'last_seen'; agentVersion?: string; reportedTier?: string };

function fromLastSeen(a: AgentRecord, now: number): Presence {
  const seen = a.lastSeen ? Date.parse(a.lastSeen) : NaN;
  return { online: Number.isFinite(seen) && now - seen <= ONLINE_WINDOW_MS, source: 'last_seen' };
}

/** Pings every agent through the relay now; undefined (after one line on stderr) when that cannot be done. */
async function pingAll(home: string, agents: AgentRecord[], relay: { url: string; pin: string }, out: Out): Promise<Map<string, Presence> | undefined> {
  let identity;
  try {
    identity = await loadDesktopIdentity({ home });
  } catch (err) {
    if (!(err instanceof OrchError)) throw err;
    out.err(`orch agent list: cannot ping (${err.message}); showing when each agent was last heard from`);
    return undefined;
  }
  const { connectRelayTransport } = await import('../agent-transport');
  const link = await connectRelayTransport({ home, identity, relay, waitMs: RELAY_CONNECT_MS, heartbeatMs: 0 });
  try {
    if (!link.connected) {
      const why = link.startError ? `${link.startError.code}: ${link.startError.message}` : `no answer within ${RELAY_CONNECT_MS / 1000} s`;
      out.err(`orch agent list: cannot ping through the relay at ${relay.url} (${why}); showing when each agent was last heard from`);
      return undefined;
    }
    const results = await Promise.all(agents.map(async (a) => [a.name, await link.transport.ping(a.name, PING_TIMEOUT_MS)] as const));
    const map = new Map<string, Presence>();
    for (const [name, pong] of results) {
      map.set(name, pong ? { online: true, source: 'ping', agentVersion: pong.agentVersion, reportedTier: pong.tier } : { online: false, source: 'ping' });
    }
    return map;
  } finally {
    await link.close();
  }
}

async function list(args: CommandArgs, out: Out, registry: AgentRegistry, home: string): Promise<number> {
  only(args.values, ['relay', 'relay-pin', 'ping', 'json'], 'list');
  if (args.positionals.length > 1) throw new CommandUsageError('usage: orch agent list [--ping [--relay URL --relay-pin PIN]] [--json]');
  let relay: { url: string; pin: string } | undefined;
  if (args.values.ping) {
    const url = stringOpt(args.values, 'relay') ?? (process.env[RelayEnv.url] || undefined);
    const pin = stringOpt(args.values, 'relay-pin') ?? (process.env[RelayEnv.pin] || undefined);
    if (url === undefined || pin === undefined) {
      throw new CommandUsageError(`--ping needs the relay's URL and pin (--relay and --relay-pin, or ${RelayEnv.url} and ${RelayEnv.pin})`);
    }
    relay = { url, pin };
  } else if (args.values.relay !== undefined || args.values['relay-pin'] !== undefined) {
    throw new CommandUsageError('--relay and --relay-pin go with --ping');
  }
  const agents = registry.list();
  const pinged = relay && agents.length ? await pingAll(home, agents, relay, out) : undefined;
  // Re-read after pinging: each pong moved last_seen.
  const now = Date.now();
  const rows = (pinged ? registry.list() : agents).map((a) => ({ ...describeAgent(a), ...(pinged?.get(a.name) ?? fromLastSeen(a, now)) }));
  if (args.values.json) {
    printJson(out, rows);
    return 0;
  }
  if (!rows.length) {
    out.log('no agents enrolled yet: orch agent add NAME --key HEX --box-key HEX --tier standard');
    return 0;
  }
  for (const r of rows) {
    const seen = r.lastSeen ? `last seen ${r.lastSeen}` : 'never seen';
    const status = r.online ? `online (${r.source === 'ping' ? 'answered a ping now' : seen})` : `offline (${seen})`;
    const mismatch = r.reportedTier && r.reportedTier !== r.tier ? ` (the agent reports tier ${r.reportedTier})` : '';
    out.log(`${r.name.padEnd(20)} ${r.tier.padEnd(15)} ${status}${mismatch}  ${r.fingerprint}`);
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
