/**
 * The `orch-agent` command. Exit codes: 0 ok, 1 a failure (bad state, insecure files, relay down at start), 2 a
 * usage error. Errors are one line saying what is wrong and what to do.
 *
 *   orch-agent enroll --relay wss://HOST:PORT --relay-pin sha256/... --desktop SIGNHEX --desktop-box-key BOXHEX
 *                     [--tier read-only|standard|infrastructure] [--allow FILE] [--state-dir DIR] [--json]
 *   orch-agent run    [--state-dir DIR] [--stdio]
 *   orch-agent status [--state-dir DIR] [--json]
 *
 * The state directory is --state-dir, else $ORCH_AGENT_HOME, else /var/lib/orch-agent.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { keyToHex } from '../protocol/envelope';
import { RELAY_PATH } from '../protocol/relay-handshake';
import { ALLOWLIST_FILE, boxKeyProblem, loadAgentConfig, pinProblem, relayUrlProblem, signKeyProblem, tierProblem, writeAgentConfig, writePrivateFileAtomic, type AgentConfig } from './config';
import { AGENT_VERSION, AgentHandler, type AgentLog } from './handler';
import { AgentSetupError, ensureStateDir, loadAgentIdentity, loadOrCreateAgentIdentity, resolveStateDir } from './identity';
import { Ledger } from './ledger';
import { effectiveTier, loadAllowlistFile, parseAllowlist, type Tier } from './policy';

export const LEDGER_FILE = 'ledger.sqlite';

class UsageError extends Error {}

export type Out = { log: (line: string) => void; err: (line: string) => void };
const stdio: Out = { log: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };

interface Command {
  usage: string;
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, unknown>, out: Out): Promise<number>;
}

const stateDirOpt = { 'state-dir': { type: 'string' } } as const;

const COMMANDS: Record<string, Command> = {
  enroll: {
    usage: 'orch-agent enroll --relay wss://HOST:PORT --relay-pin sha256/... --desktop SIGNHEX --desktop-box-key BOXHEX [--tier TIER] [--allow FILE] [--state-dir DIR] [--json]',
    help: [
      'Create this server\'s agent identity (if it has none), pin the relay and the desktop, and install the allowlist.',
      'Prints the agent\'s public keys and the `orch agent add` line to run on the desktop.',
      '  --relay URL             the relay, wss://HOST:PORT (as `orch relay start` prints it)',
      '  --relay-pin PIN         the relay certificate\'s pin, sha256/...',
      '  --desktop HEX           the desktop\'s Ed25519 public key (`orch whoami`)',
      '  --desktop-box-key HEX   the desktop\'s X25519 public key (`orch whoami`)',
      '  --tier TIER             read-only (default), standard or infrastructure',
      '  --allow FILE            the allowlist (YAML or JSON; see agent/README.md); copied into the state dir',
      '  --state-dir DIR         default $ORCH_AGENT_HOME or /var/lib/orch-agent',
    ].join('\n'),
    options: {
      relay: { type: 'string' },
      'relay-pin': { type: 'string' },
      desktop: { type: 'string' },
      'desktop-box-key': { type: 'string' },
      tier: { type: 'string' },
      allow: { type: 'string' },
      json: { type: 'boolean' },
      ...stateDirOpt,
    },
    run: enroll,
  },
  run: {
    usage: 'orch-agent run [--state-dir DIR] [--stdio]',
    help: [
      'Connect to the relay and answer the enrolled desktop until stopped (SIGTERM/SIGINT). Reconnects with backoff.',
      '  --stdio   instead of the relay, read one base64 envelope per line on stdin and write each reply as one',
      '            base64 line on stdout (for tests and debugging; the same checks apply)',
    ].join('\n'),
    options: { stdio: { type: 'boolean' }, ...stateDirOpt },
    run: runAgent,
  },
  status: {
    usage: 'orch-agent status [--state-dir DIR] [--json]',
    help: 'Print the identity, tier, relay, pinned desktop and counters.',
    options: { json: { type: 'boolean' }, ...stateDirOpt },
    run: status,
  },
};

function topHelp(): string {
  return ['orch-agent: the Orch agent daemon for a managed server', '', 'Commands:', ...Object.values(COMMANDS).map((c) => `  ${c.usage}`), '', 'orch-agent COMMAND --help for details.'].join('\n');
}

/** Run the CLI with `argv` (without node and script); resolves to the exit code. */
export async function runAgentCli(argv: string[], out: Out = stdio): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out.log(topHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    out.log(AGENT_VERSION);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    out.err(`orch-agent: unknown command "${name}"\n${topHelp()}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    if (values.help) {
      out.log(`usage: ${command.usage}\n\n${command.help}`);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    return await command.run(values, out);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      out.err(`orch-agent ${name}: ${(err as Error).message}\nusage: ${command.usage}`);
      return 2;
    }
    if (err instanceof AgentSetupError) {
      out.err(`orch-agent ${name}: ${err.message}`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    out.err(`orch-agent ${name}: ${e.code ? `${e.code}: ` : ''}${e.message}`);
    return 1;
  }
}

// ---------------------------------------------------------------------------------------------- enroll

async function enroll(values: Record<string, unknown>, out: Out): Promise<number> {
  const need = (flag: string): string => {
    const v = values[flag];
    if (typeof v !== 'string' || v.length === 0) throw new UsageError(`--${flag} is required`);
    return v;
  };
  const relay = withRelayPath(need('relay'));
  const pin = need('relay-pin');
  const desktop = need('desktop').toLowerCase();
  const desktopBox = need('desktop-box-key').toLowerCase();
  const tier = (values.tier as string | undefined) ?? 'read-only';
  const problem = relayUrlProblem(relay) ?? pinProblem(pin) ?? signKeyProblem('--desktop', desktop) ?? boxKeyProblem('--desktop-box-key', desktopBox) ?? tierProblem(tier);
  if (problem) throw new UsageError(problem);

  // Validate the allowlist before touching anything, so a typo leaves the server as it was.
  let allowText: string | undefined;
  if (typeof values.allow === 'string') {
    try {
      allowText = fs.readFileSync(values.allow, 'utf8');
    } catch (err) {
      throw new UsageError(`--allow ${values.allow}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    parseAllowlist(allowText, values.allow);
  }

  const stateDir = ensureStateDir(resolveStateDir(values['state-dir'] as string | undefined));
  const { identity, created } = loadOrCreateAgentIdentity(stateDir);
  const allowlistFile = path.join(stateDir, ALLOWLIST_FILE);
  if (allowText !== undefined) writePrivateFileAtomic(allowlistFile, allowText);
  else if (!fs.existsSync(allowlistFile)) {
    writePrivateFileAtomic(allowlistFile, '# Nothing is allowed until you list commands here; see agent/README.md.\nversion: 1\ncommands: []\n');
  }
  const entries = parseAllowlist(fs.readFileSync(allowlistFile, 'utf8'), allowlistFile).entries.length;
  const config: AgentConfig = {
    v: 1,
    relay: { url: relay, pin },
    desktop: { signKey: desktop, boxKey: desktopBox },
    tier: tier as Tier,
    allowlistFile,
    enrolledAt: new Date().toISOString(),
  };
  writeAgentConfig(stateDir, config);

  const signKey = keyToHex(identity.sign.publicKey);
  const boxKey = keyToHex(identity.box.publicKey);
  const addLine = `orch agent add NAME --key ${signKey} --box-key ${boxKey} --tier ${tier} --allow ${typeof values.allow === 'string' ? values.allow : 'FILE'}`;
  if (values.json) {
    out.log(JSON.stringify({ stateDir, created, signKey, boxKey, fingerprint: identity.fingerprint, tier, allowlistFile, allowlistEntries: entries, addCommand: addLine }, null, 2));
    return 0;
  }
  out.log(created ? `Created the agent identity in ${stateDir}.` : `Kept the existing agent identity in ${stateDir}.`);
  out.log(`  sign key:    ${signKey}`);
  out.log(`  box key:     ${boxKey}`);
  out.log(`  fingerprint: ${identity.fingerprint}`);
  out.log(`  tier:        ${tier}`);
  out.log(`  allowlist:   ${allowlistFile} (${entries} ${entries === 1 ? 'entry' : 'entries'})`);
  out.log(`  relay:       ${relay} (pinned ${pin})`);
  out.log('');
  out.log('On the desktop, pin this agent (replace NAME; FILE is the same allowlist):');
  out.log(`  ${addLine}`);
  out.log('Then start the agent: systemctl enable --now orch-agent (or: orch-agent run).');
  return 0;
}

/** `wss://HOST:PORT` means the relay's standard path; an explicit path is kept. */
function withRelayPath(url: string): string {
  try {
    const u = new URL(url);
    if (u.pathname === '/' || u.pathname === '') u.pathname = RELAY_PATH;
    return u.toString();
  } catch {
    return url; // relayUrlProblem reports it
  }
}

// ------------------------------------------------------------------------------------------------- run

interface Loaded {
  stateDir: string;
  config: AgentConfig;
  handler: AgentHandler;
  ledger: Ledger;
  identity: ReturnType<typeof loadAgentIdentity>;
}

/** Load and check everything the agent needs; fails before any connection when something is wrong. */
export function loadAgent(stateDirFlag: string | undefined, log: AgentLog): Loaded {
  const stateDir = resolveStateDir(stateDirFlag);
  const identity = loadAgentIdentity(stateDir);
  const config = loadAgentConfig(stateDir);
  const allowlist = loadAllowlistFile(config.allowlistFile);
  const ledger = Ledger.open(path.join(stateDir, LEDGER_FILE));
  const handler = new AgentHandler({
    identity,
    desktop: { signPublicKey: Buffer.from(config.desktop.signKey, 'hex'), boxPublicKey: Buffer.from(config.desktop.boxKey, 'hex') },
    policy: { tier: config.tier, allowlist },
    ledger,
    home: stateDir,
    log,
  });
  return { stateDir, config, handler, ledger, identity };
}

function jsonLog(event: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), ...event })}\n`);
}

async function runAgent(values: Record<string, unknown>): Promise<number> {
  // Everything the agent creates (ledger, WAL, temp files) is private to its user.
  process.umask(0o077);
  const agent = loadAgent(values['state-dir'] as string | undefined, jsonLog);
  const { handler, ledger, config, identity } = agent;
  const tier = effectiveTier({ tier: config.tier, allowlist: loadAllowlistFile(config.allowlistFile) });

  const handle = async (wire: Buffer, send: (reply: Buffer) => Promise<void>) => {
    try {
      const reply = await handler.handleEnvelope(wire);
      if (reply) await send(reply);
    } catch (err) {
      // A lost reply is safe: the desktop retries with the same commandId and gets the ledger's answer.
      jsonLog({ level: 'error', event: 'handle_failed', error: (err as Error).message });
    }
  };

  let stop: () => Promise<void>;
  let done: Promise<void>;
  if (values.stdio) {
    const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
    const pending = new Set<Promise<void>>();
    const write = async (reply: Buffer) => {
      process.stdout.write(`${reply.toString('base64')}\n`);
    };
    rl.on('line', (line) => {
      const text = line.trim();
      if (!text) return;
      const p = handle(Buffer.from(text, 'base64'), write).finally(() => pending.delete(p));
      pending.add(p);
    });
    done = new Promise<void>((resolve) => rl.once('close', () => void Promise.allSettled([...pending]).then(() => resolve())));
    stop = async () => rl.close();
  } else {
    const { RelayClient } = await import('../protocol/relay-client');
    const client = new RelayClient({
      url: config.relay.url,
      pin: config.relay.pin,
      identity: { publicKey: identity.sign.publicKey, secretKey: identity.sign.secretKey },
      onEnvelope: (wire) => void handle(wire, (reply) => client.send(reply)),
      log: (e) => jsonLog({ level: 'info', component: 'relay-client', ...e }),
    });
    client.on('connected', () => jsonLog({ level: 'info', event: 'relay_connected', relay: config.relay.url }));
    client.on('disconnected', () => jsonLog({ level: 'warn', event: 'relay_disconnected', relay: config.relay.url, hint: 'reconnecting with backoff' }));
    let closed!: () => void;
    done = new Promise<void>((resolve) => (closed = resolve));
    stop = async () => {
      await client.close();
      closed();
    };
    await client.start();
  }

  jsonLog({ level: 'info', event: 'ready', version: AGENT_VERSION, fingerprint: identity.fingerprint, signKey: keyToHex(identity.sign.publicKey), tier, transport: values.stdio ? 'stdio' : 'relay' });
  const onSignal = (signal: string) => {
    jsonLog({ level: 'info', event: 'stopping', signal, running: handler.running });
    void stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await done;
  await handler.drain();
  ledger.close();
  jsonLog({ level: 'info', event: 'stopped' });
  return 0;
}

// ---------------------------------------------------------------------------------------------- status

async function status(values: Record<string, unknown>, out: Out): Promise<number> {
  const stateDir = resolveStateDir(values['state-dir'] as string | undefined);
  const identity = loadAgentIdentity(stateDir);
  const config = loadAgentConfig(stateDir);
  let allowlistEntries: number | string;
  let tier: Tier = config.tier;
  try {
    const allowlist = loadAllowlistFile(config.allowlistFile);
    allowlistEntries = allowlist.entries.length;
    tier = effectiveTier({ tier: config.tier, allowlist });
  } catch (err) {
    allowlistEntries = `invalid: ${(err as Error).message}`;
  }
  const ledgerFile = path.join(stateDir, LEDGER_FILE);
  let counters: Record<string, number> = {};
  let commands: Record<string, number> = {};
  if (fs.existsSync(ledgerFile)) {
    const ledger = Ledger.open(ledgerFile);
    try {
      counters = ledger.counters();
      commands = ledger.commandCounts();
    } finally {
      ledger.close();
    }
  }
  const report = {
    stateDir,
    version: AGENT_VERSION,
    signKey: keyToHex(identity.sign.publicKey),
    boxKey: keyToHex(identity.box.publicKey),
    fingerprint: identity.fingerprint,
    tier,
    relay: config.relay,
    desktop: config.desktop,
    allowlistFile: config.allowlistFile,
    allowlistEntries,
    commands,
    counters,
  };
  if (values.json) {
    out.log(JSON.stringify(report, null, 2));
    return 0;
  }
  out.log(`orch-agent ${AGENT_VERSION} in ${stateDir}`);
  out.log(`  sign key:    ${report.signKey}`);
  out.log(`  box key:     ${report.boxKey}`);
  out.log(`  fingerprint: ${report.fingerprint}`);
  out.log(`  tier:        ${tier}`);
  out.log(`  relay:       ${config.relay.url} (pin ${config.relay.pin})`);
  out.log(`  desktop:     ${config.desktop.signKey}`);
  out.log(`  allowlist:   ${config.allowlistFile} (${allowlistEntries} entries)`);
  out.log(`  commands:    ${Object.entries(commands).map(([k, v]) => `${k} ${v}`).join(', ') || 'none yet'}`);
  out.log(`  counters:    ${Object.entries(counters).map(([k, v]) => `${k} ${v}`).join(', ') || 'none yet'}`);
  return 0;
}
