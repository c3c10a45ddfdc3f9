/**
 * `orch agent add | list | remove`: the desktop's half of enrollment (desktop-worker/agent-registry.ts).
 */
import { orchHome } from '../../infra/paths';
import { AGENT_TIERS, AgentRegistry, checkAgentName, checkTenants, checkTier, parseBoxKeyHex, parseKeyHex, readAllowlistFile, type AgentRecord, type InviteRecord } from '../agent-registry';
import { DEFAULT_HEARTBEAT_MS, ONLINE_WINDOW_MS } from '../agent-transport';
import { fingerprintOf, loadDesktopIdentity, readPublicIdentity } from '../identity';
import { MAX_INVITE_LIFETIME_MS, encodeInviteToken, invitePermitHash, joinSecretHash, newJoinSecret, pinBytes } from '../../protocol/join';
import { zeroize } from '../../protocol/primitives';
import { TenantStore } from '../tenant-store';
import { OrchError } from '../../protocol/errors';
import { CommandUsageError, printJson, runCommand, type CommandArgs, type CommandSpec, type Out } from './shared';
import { auditAgentChange } from '../agent-audit';
import { Env } from '../config';
import { retiredSettingsSet, setting } from '../../infra/settings';
import { LOCAL_RELAY, RelayRegistry, checkRelayUrl } from '../relay-registry';
import path from 'node:path';

/** Variables read before named relays, ignored now (with a warning): a relay is named and pinned with `orch relay add`. */

export const agentOptions = {
  key: { type: 'string' },
  'box-key': { type: 'string' },
  tier: { type: 'string' },
  allow: { type: 'string' },
  relay: { type: 'string' },
  'relay-url': { type: 'string' },
  tenant: { type: 'string', multiple: true },
  expires: { type: 'string' },
  ping: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export const agentUsage =
  'orch agent invite NAME --tenant T [--tenant T2 ...] --tier read-only|standard|infrastructure [--allow FILE] [--relay RELAY] [--relay-url URL] [--expires 1h] [--json] | orch agent invites [--json] | orch agent add NAME --key HEX --box-key HEX --tier TIER [--tenant T ...] [--allow FILE] [--relay RELAY] [--json] | orch agent list [--relay RELAY] [--ping] [--json] | orch agent tenants NAME --tenant T [--tenant T2 ...] [--json] | orch agent remove NAME [--json]';

export const agentHelp = `Enrolled agents, with their pinned public keys, in <ORCH_HOME>/agents.sqlite (mode 0600).
  invite NAME  print one line to run on the server: \`sudo orch-agent join --install orchjoin1....\`. The token in it
               carries the relay's URL and pin, this desktop's public keys and a single-use join secret (32 random
               bytes) that expires (--expires, default 1h, at most 7d; units s, m, h, d). Only hashes of the secret
               are kept here. While \`orch up\` runs, its worker registers the invite with the relay and, when the
               server joins, pins its keys, audits enroll_agent in the invite's tenants and answers with the tier,
               tenants and allowlist (--allow FILE) given here (protocol/JOIN.md). No key is copied by hand.
               --tenant T (repeatable, required): the tenants whose DAGs may use the agent.
               --relay-url URL: the address servers reach the relay at, when it differs from the one this desktop
               uses (a relay behind NAT or a port forward); the pin is the relay's own either way.
  invites      invites with their state (pending, used, expired) and the refused join requests counted by reason.
  add NAME     pin a server's agent: --key is its Ed25519 public key, --box-key its X25519 public key (64 hex
               digits each, as \`orch-agent enroll\` prints them), --tier its security tier, --allow the allowlist
               file you gave the agent (kept here for reference; the agent enforces its own copy).
               NAME is what DAG command nodes use in \`agent:\`: 1-50 letters, digits, "_" or "-".
               --tenant T (repeatable): the tenants whose DAGs may use it; without it, every tenant may (as for
               agents enrolled before tenants).
               --relay RELAY is the named relay (\`orch relay list\`) the agent is reached through; default
               $${Env.relay}, else "${LOCAL_RELAY}" (the relay \`orch up\` runs) when it is configured, else the only relay.
  list         per agent: its relay, tier, online or offline (heard from within the last ${ONLINE_WINDOW_MS / 1000} s: a running
               Orch worker pings its agents through their relays every ${DEFAULT_HEARTBEAT_MS / 1000} s), when it was last seen,
               and from its last authenticated pong its version and the commands it ran and refused (older agents
               do not report those counts: "-"), and its tenants ("*": every tenant).
               --relay RELAY lists only that relay's agents. --ping asks them now, each through its own relay,
               as this desktop. A relay keeps one connection per key, so while \`orch up\` runs, --ping takes the
               relay sessions from the worker: leave it out then.
  tenants NAME set the tenants an agent serves (--tenant, repeatable); runs of other tenants that name it fail
               with agent_not_in_tenant, and the agent itself refuses their commands if it joined with tenants.
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
    tenants: a.tenants,
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
  const set = retiredSettingsSet();
  if (set.length) out.err(`warning: ${set.join(' and ')} ${set.length === 1 ? 'is' : 'are'} no longer read: name and pin the relay with \`orch relay add NAME --url ... --pin ...\``);
}

/**
 * The relay an agent is enrolled through: --relay, else $ORCH_RELAY, else "local" when it is configured or no relay
 * is (the relay `orch up` adds, said on stderr), else the only one.
 */
function chooseRelay(explicit: string | undefined, relays: RelayRegistry, notes: string[]): string {
  const named = explicit ?? setting(Env.relay);
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
  only(args.values, ['key', 'box-key', 'tier', 'allow', 'relay', 'tenant', 'json'], 'add');
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
  const tenants = checkTenants(tenantOpts(args.values));
  warnRetiredEnv(out);
  const relays = RelayRegistry.open(path.dirname(registry.file));
  let relay: string;
  const notes: string[] = [];
  try {
    relay = chooseRelay(relayName(args.values), relays, notes);
  } finally {
    relays.close();
  }
  const agent = registry.add({ name, signKeyHex: key, boxKeyHex: boxKey, tier, allowlist, relay, tenants });
  const shown = describeAgent(agent);
  await auditAgentChange(path.dirname(registry.file), 'enroll_agent', agent.name, { tier: agent.tier, fingerprint: shown.fingerprint, signKey: key, relay, tenants });
  if (args.values.json) printJson(out, shown);
  else out.log(`agent "${agent.name}" added (tier ${agent.tier}, relay ${relay}, tenants ${tenants.length ? tenants.join(', ') : 'all'}, fingerprint ${shown.fingerprint})`);
  for (const n of notes) out.err(n);
  return 0;
}

function tenantOpts(values: Record<string, unknown>): string[] {
  const v = values.tenant;
  return Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : [];
}

const DURATION = /^([1-9][0-9]{0,6})(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** --expires: 90s, 30m, 1h, 7d; at most {@link MAX_INVITE_LIFETIME_MS} (the relay keeps a permit 7 days at most). */
export function parseExpires(text: string | undefined): number {
  if (text === undefined) return UNIT_MS.h;
  const m = DURATION.exec(text);
  if (!m) throw new CommandUsageError(`--expires ${text.slice(0, 20)} is not a duration: use a number and s, m, h or d (for example 1h)`);
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms > MAX_INVITE_LIFETIME_MS) throw new CommandUsageError('--expires may be at most 7d (the relay keeps a join permit 7 days at most)');
  return ms;
}

/** The checks of the tenant names against the tenant store: an invite for a tenant that does not exist is a typo. */
function checkTenantsExist(home: string, tenants: string[]): void {
  const store = new TenantStore(home);
  try {
    const known = store.list();
    const missing = tenants.filter((t) => !known.includes(t));
    if (missing.length) throw new OrchError('unknown_tenant', `no tenant named ${missing.map((t) => `"${t}"`).join(', ')} (create it with \`orch tenant create ${missing[0]}\`; see \`orch tenant list\`)`);
  } finally {
    store.close();
  }
}

async function invite(args: CommandArgs, out: Out, registry: AgentRegistry, home: string): Promise<number> {
  const [, name, ...rest] = args.positionals;
  only(args.values, ['tier', 'allow', 'relay', 'relay-url', 'tenant', 'expires', 'json'], 'invite');
  if (!name || rest.length) throw new CommandUsageError('usage: orch agent invite NAME --tenant T --tier TIER [--allow FILE] [--relay RELAY] [--relay-url URL] [--expires 1h]');
  const serverRelayUrl = stringOpt(args.values, 'relay-url');
  if (serverRelayUrl !== undefined) checkRelayUrl(serverRelayUrl);
  checkAgentName(name);
  const tier = stringOpt(args.values, 'tier');
  if (tier === undefined) throw new CommandUsageError(`--tier is required: one of ${AGENT_TIERS.join(', ')}`);
  checkTier(tier);
  const tenants = checkTenants(tenantOpts(args.values));
  if (!tenants.length) throw new CommandUsageError('--tenant is required: the tenant whose DAGs may use this agent (repeat it for several)');
  const lifetime = parseExpires(stringOpt(args.values, 'expires'));
  const allowFile = stringOpt(args.values, 'allow');
  const allowlist = allowFile === undefined ? null : readAllowlistFile(allowFile);
  checkTenantsExist(home, tenants);
  const identity = readPublicIdentity(home);
  if (!identity) throw new OrchError('identity_missing', 'this desktop has no identity yet: run `orch init` first');
  warnRetiredEnv(out);
  const relays = RelayRegistry.open(home);
  const notes: string[] = [];
  let relayName_: string;
  let record;
  try {
    relayName_ = chooseRelay(relayName(args.values), relays, notes);
    record = relays.get(relayName_);
  } finally {
    relays.close();
  }
  if (!record) {
    throw new OrchError('unknown_relay', `relay "${relayName_}" is not configured yet, so there is no URL and pin to put in the invite: \`orch up\` adds the local one, or \`orch relay add NAME --url ... --pin ...\``);
  }
  const secret = newJoinSecret();
  try {
    const expiresAt = Date.now() + lifetime;
    const inv = registry.addInvite({ name, tier, tenants, allowlist, relay: record.name, relayPin: record.pin, secretHash: joinSecretHash(secret), permitHash: invitePermitHash(secret), expiresAt });
    const token = encodeInviteToken({
      relayUrl: serverRelayUrl === undefined ? record.url : checkRelayUrl(serverRelayUrl),
      relayPin: pinBytes(record.pin),
      desktopSign: Buffer.from(identity.sign.publicKey, 'hex'),
      desktopBox: Buffer.from(identity.box.publicKey, 'hex'),
      joinSecret: secret,
      expiresAt,
    });
    await auditAgentChange(home, 'invite_agent', name, { invite: inv.id, tier, tenants, relay: record.name, expiresAt: new Date(expiresAt).toISOString(), hasAllowlist: allowlist !== null }, undefined, tenants);
    const line = `sudo orch-agent join --install ${token}`;
    if (args.values.json) {
      printJson(out, { invite: inv.id, name, tier, tenants, relay: record.name, expiresAt: new Date(expiresAt).toISOString(), token, command: line });
    } else {
      out.log(line);
      out.err(`Run that line on the server (it is a secret until used or expired, ${new Date(expiresAt).toISOString()}). It joins as agent "${name}" (tier ${tier}, tenants ${tenants.join(', ')}) through relay "${record.name}" while \`orch up\` runs here; check with \`orch agent invites\` and \`orch agent list\`.`);
    }
    for (const n of notes) out.err(n);
    return 0;
  } finally {
    zeroize(secret);
  }
}

function inviteState(i: InviteRecord, now: number): 'used' | 'expired' | 'pending' {
  return i.usedAt ? 'used' : i.expiresAt < now ? 'expired' : 'pending';
}

function invites(args: CommandArgs, out: Out, registry: AgentRegistry): number {
  only(args.values, ['json'], 'invites');
  if (args.positionals.length > 1) throw new CommandUsageError('usage: orch agent invites [--json]');
  const now = Date.now();
  const rows = registry.listInvites().map((i) => ({
    id: i.id,
    name: i.name,
    state: inviteState(i, now),
    tier: i.tier,
    tenants: i.tenants,
    relay: i.relay,
    createdAt: i.createdAt,
    expiresAt: new Date(i.expiresAt).toISOString(),
    usedAt: i.usedAt,
    usedBy: i.usedBy,
    hostname: i.hostname,
  }));
  const refused = registry.joinRefusals();
  if (args.values.json) {
    printJson(out, { invites: rows, refused });
    return 0;
  }
  if (!rows.length) out.log('no invites yet: orch agent invite NAME --tenant T --tier standard');
  else {
    out.log(`${'ID'.padEnd(17)} ${'AGENT'.padEnd(20)} ${'STATE'.padEnd(8)} ${'TIER'.padEnd(15)} ${'RELAY'.padEnd(12)} ${'EXPIRES'.padEnd(25)} TENANTS / USED BY`);
    for (const r of rows) {
      const used = r.usedAt ? `  used ${r.usedAt} by ${r.hostname ?? '?'} (${(r.usedBy ?? '').slice(0, 16)})` : '';
      out.log(`${r.id.padEnd(17)} ${r.name.padEnd(20)} ${r.state.padEnd(8)} ${r.tier.padEnd(15)} ${r.relay.padEnd(12)} ${r.expiresAt.padEnd(25)} ${r.tenants.join(',')}${used}`);
    }
  }
  const reasons = Object.entries(refused);
  out.log(reasons.length ? `refused join requests: ${reasons.map(([k, v]) => `${k} ${v.count}`).join(', ')}` : 'refused join requests: none');
  return 0;
}

async function setTenants(args: CommandArgs, out: Out, registry: AgentRegistry, home: string): Promise<number> {
  const [, name, ...rest] = args.positionals;
  only(args.values, ['tenant', 'json'], 'tenants');
  if (!name || rest.length) throw new CommandUsageError('usage: orch agent tenants NAME --tenant T [--tenant T2 ...]');
  const tenants = checkTenants(tenantOpts(args.values));
  if (!tenants.length) throw new CommandUsageError('--tenant is required (repeat it for several)');
  const agent = registry.setTenants(name, tenants);
  await auditAgentChange(home, 'set_agent_tenants', name, { tenants });
  if (args.values.json) printJson(out, describeAgent(agent));
  else out.log(`agent "${name}" now serves ${tenants.join(', ')}`);
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
    out.log(relay === undefined ? 'no agents enrolled yet: orch agent invite NAME --tenant T --tier standard, then run the line it prints on the server' : `no agents are enrolled through relay "${relay}"`);
    return 0;
  }
  const count = (n: number | null) => (n === null ? '-' : String(n));
  out.log(`${'AGENT'.padEnd(20)} ${'TIER'.padEnd(15)} ${'STATUS'.padEnd(46)} ${'RELAY'.padEnd(12)} ${'VERSION'.padEnd(10)} ${'RUN'.padStart(6)} ${'REFUSED'.padStart(7)}  ${'FINGERPRINT'.padEnd(51)} TENANTS`);
  for (const r of rows) {
    const seen = r.lastSeen ? `last seen ${r.lastSeen}` : 'never seen';
    const status = r.online ? `online (${r.source === 'ping' ? 'answered a ping now' : seen})` : `offline (${seen})`;
    const mismatch = r.reportedTier && r.reportedTier !== r.tier ? ` (the agent reports tier ${r.reportedTier})` : '';
    out.log(
      `${r.name.padEnd(20)} ${r.tier.padEnd(15)} ${status.padEnd(46)} ${r.relay.padEnd(12)} ${(r.agentVersion ?? '-').padEnd(10)} ${count(r.commandsRun).padStart(6)} ${count(r.commandsRefused).padStart(7)}  ${r.fingerprint.padEnd(51)} ${r.tenants.length ? r.tenants.join(',') : '*'}${mismatch}`,
    );
  }
  return 0;
}

/** `orch agent add|list|remove ...` */
export async function agentCommand(args: CommandArgs, out: Out): Promise<number> {
  return runCommand('agent', args, out, async () => {
    const sub = args.positionals[0];
    if (sub !== 'add' && sub !== 'list' && sub !== 'remove' && sub !== 'invite' && sub !== 'invites' && sub !== 'tenants') throw new CommandUsageError(`usage: ${agentUsage}`);
    const home = orchHome();
    const registry = AgentRegistry.open(home);
    try {
      if (sub === 'add') return await add(args, out, registry);
      if (sub === 'invite') return await invite(args, out, registry, home);
      if (sub === 'invites') return invites(args, out, registry);
      if (sub === 'tenants') return await setTenants(args, out, registry, home);
      if (sub === 'remove') return await remove(args, out, registry);
      return await list(args, out, registry, home);
    } finally {
      registry.close();
    }
  });
}

export const agentSpec: CommandSpec = {
  summary: 'invite servers to join, enroll, list (online status) or remove agents',
  usage: agentUsage,
  help: agentHelp,
  options: agentOptions,
  optionHelp: {
    key: "the agent's Ed25519 public key (64 hex digits, from orch-agent enroll)",
    'box-key': "the agent's X25519 public key (64 hex digits)",
    tier: 'read-only, standard or infrastructure',
    allow: 'the allowlist file the agent enforces',
    relay: 'the named relay the agent is reached through (orch relay list)',
    'relay-url': 'the address servers reach the relay at, when it differs from this desktop\'s',
    tenant: 'a tenant whose DAGs may use the agent (repeatable)',
    expires: 'how long the invite is good for: 90s, 30m, 1h (default), at most 7d',
    ping: 'ask the agents now, through their relays',
  },
  subcommands: [
    { name: 'invite', summary: 'print the one line a server runs to join as an agent', usage: agentUsage.split(' | ')[0]!, args: ['<name>'], options: ['tier', 'allow', 'relay', 'relay-url', 'tenant', 'expires', 'json'] },
    { name: 'invites', summary: 'invites with their state, and refused join requests', usage: agentUsage.split(' | ')[1]!, options: ['json'] },
    { name: 'add', summary: "pin a server's agent by its public keys", usage: agentUsage.split(' | ')[2]!, args: ['<name>'], options: ['key', 'box-key', 'tier', 'allow', 'relay', 'tenant', 'json'] },
    { name: 'list', summary: 'the agents: relay, tier, online or offline, tenants', usage: agentUsage.split(' | ')[3]!, options: ['relay', 'ping', 'json'] },
    { name: 'tenants', summary: 'set the tenants an agent serves', usage: agentUsage.split(' | ')[4]!, args: ['<name>'], options: ['tenant', 'json'] },
    { name: 'remove', summary: 'forget an agent', usage: agentUsage.split(' | ')[5]!, args: ['<name>'], options: ['json'] },
  ],
  run: agentCommand,
};
