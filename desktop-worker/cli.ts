/**
 * The `orch` command. Exit codes: 0 ok, 1 a failed run or rejected input, 2 a usage error.
 * Every error is one line saying what is wrong and what to do; no stack traces.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compileDag, runAuditIssues } from '../workflows/dag/compile';
import { MAX_WORKFLOW_ID_LENGTH, workflowIdProblem } from '../workflows/dag/limits';
import { bindParams } from '../workflows/dag/params';
import { parseDagText } from './dag-yaml';
import type { CompileIssue, CompiledDag } from '../workflows/dag/types';
import { ErrorType, OrchError } from '../protocol/errors';
import { runStartDetails, runStartSummary, type RunStartInfo } from '../workflows/ui-metadata';
import { signStart } from './approval-signing';
import { approveSpec } from './commands/gates';
import { follow } from './commands/follow';
import { formatStatus } from './commands/status-format';
import { statusQuery, type RunStatus } from '../workflows/shared';
import { loadDesktopIdentity } from './identity';
import { effectiveSettings, loadConfig } from './config';
import { orchHome } from '../infra/paths';
import { connectClient } from './temporal-client';
import { RunNotFoundError, openRunTransport } from './run-transport';
import { openTenantStore } from './tenant-access';
import { TenantStore, checkTenantName } from './tenant-store';
import { agentSpec } from './commands/agents';
import { tenantAgentRecords, type AgentRecord } from './agent-registry';
import { agentExplainBatch, ungatedApprovalCommands, type UngatedCommand } from './agent-policy';
import { resolveAgentBinary } from '../infra/agent-binary';
import { auditSpec } from './commands/audit';
import { relaySpec } from './commands/relays';
import { secretSpec } from './commands/secrets';
import { approverSpec } from './commands/approvers';
import { initSpec, whoamiSpec } from './commands/identity';
import { keysSpec } from './commands/keys';
import { planSpec } from './commands/plan';
import { runsSpec } from './commands/runs';
import { CommandUsageError, printJson, type CommandSpec, type Out } from './commands/shared';
import { Argument } from 'commander';
import { buildProgram, runProgram } from './cli-program';
import { COMPLETION_SHELLS, completionScript, type CompletionShell } from './completion';
import { RELAY_START_HELP, RELAY_START_SUMMARY, addRelayStartOptions, relayStartValues } from '../relay/cli-options';

type Command = CommandSpec;
const stdio: Out = { log: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };

const jsonOpt = { json: { type: 'boolean' } } as const;
const tenantOpt = { tenant: { type: 'string', short: 't' } } as const;

function describeIssue(i: CompileIssue): string {
  return i.message;
}

/**
 * The agents a tenant's DAGs may name (its own, and those enrolled before tenants): command nodes naming any other
 * are compile issues that name the node.
 */
function agentsOfTenant(home: string, tenant: string): string[] {
  return tenantAgentRecords(home, tenant).map((a) => a.name);
}

/**
 * The tenant's ungated commands that its agents would run only with a signed approval (agent-policy.ts), checked
 * with the Go agent's own policy when its binary is at hand; without one, nothing is said.
 */
async function ungatedWarnings(dag: CompiledDag, tenantAgents: readonly AgentRecord[]): Promise<UngatedCommand[]> {
  const agents = tenantAgents.filter((a) => a.allowlist !== null);
  if (agents.length === 0 || !dag.nodes.some((n) => n.type === 'command')) return [];
  let bin: string;
  try {
    bin = await resolveAgentBinary({ log: (l) => process.stderr.write(`orch dag: ${l}\n`) });
  } catch {
    return [];
  }
  return ungatedApprovalCommands(dag, agents, agentExplainBatch(bin));
}

/** Reads, parses and compiles a DAG file with the configured price table and, given a tenant, its agents. */
function compileFile(file: string, config: { prices: Record<string, unknown> }, knownAgents?: string[]): { text: string; source: unknown; result: ReturnType<typeof compileDag> } {
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw new OrchError(ErrorType.badInput, `${file} is not a file`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof OrchError) throw err;
    throw new OrchError(ErrorType.badInput, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const parsed = parseDagText(text, path.basename(file));
  if (!parsed.ok) return { text, source: undefined, result: { ok: false, issues: parsed.issues } };
  return { text, source: parsed.source, result: compileDag(parsed.source, { knownModels: Object.keys(config.prices), ...(knownAgents ? { knownAgents } : {}) }) };
}

function parseParams(raw: unknown): Record<string, string> {
  const params: Record<string, string> = {};
  for (const kv of (raw as string[] | undefined) ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new CommandUsageError(`--param expects NAME=VALUE, got "${kv}"`);
    params[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return params;
}


const commands: Record<string, Command> = {
  up: {
    summary: 'start Orch: the Temporal dev server (or your cluster), the worker, a demo tenant',
    usage: 'orch up [--no-demo] [--no-local-agent] [--timings]',
    help: `Starts everything Orch needs on this machine and keeps running until Ctrl-C:
  - the pinned Temporal CLI (cached, built with go install if needed), running the Temporal dev server with its
    database in <ORCH_HOME>/temporal/dev.db, the Temporal UI on http://127.0.0.1:8233;
    with TEMPORAL_ADDRESS / TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE set, that Temporal is used instead;
  - the Orch worker on task queue "orch" (ORCH_TASK_QUEUE);
  - the desktop identity (created on first run; private keys in the OS keychain — on Linux without a desktop
    session, a keyring of Orch's own under <ORCH_HOME>/keyring, unlocked with a password you type or
    ORCH_KEYRING_PASSWORD);
  - a relay on 127.0.0.1:7443 (ORCH_RELAY_PORT), configured as the relay "local", and an agent "local" with a
    read-only allowlist enrolled through it, so command nodes run on this machine (skip both with --no-local-agent);
  - a connection to every relay you added (\`orch relay add\`) that has agents, pin checked; each command goes
    through its agent's relay, and a relay that is down fails only its agents' commands (relay_unavailable);
  - a tenant "demo" with the DAG "demo-review" (skip with --no-demo).
Runs parked at a gate when Orch stopped are resumed when it starts again.
The dev server, the codec server, the local relay and agent start side by side; Orch's workflows are bundled at
the first start and the bundle is reused while their sources are unchanged (<ORCH_CACHE_DIR>/workflow-bundle).
--timings (or ORCH_DEBUG=1) prints each start-up phase's span in ms before "Orch is up".`,
    options: { 'no-demo': { type: 'boolean' }, 'no-local-agent': { type: 'boolean' }, timings: { type: 'boolean' } },
    optionHelp: { 'no-demo': 'no tenant "demo" and DAG "demo-review"', 'no-local-agent': 'no local relay and agent', timings: 'print the start-up timeline (ms per phase)' },
    async run({ values }, out) {
      const { runUp } = await import('./up');
      return runUp({ demo: !values['no-demo'], localAgent: !values['no-local-agent'], timings: values.timings === true }, out);
    },
  },

  tenant: {
    summary: 'create or list tenants',
    usage: 'orch tenant create NAME [--json] | orch tenant list [--json]',
    help: `Each tenant is one SQLite file under <ORCH_HOME>/tenants (mode 0600). Names: 1-100 letters, digits, _ or -.`,
    options: { ...jsonOpt },
    subcommands: [
      { name: 'create', summary: 'create a tenant (its database, its first audit row)', usage: 'orch tenant create NAME [--json]', args: ['<name>'] },
      { name: 'list', summary: 'the tenants', usage: 'orch tenant list [--json]' },
    ],
    async run({ values, positionals }, out) {
      const [sub, name, ...rest] = positionals;
      if (sub === 'create' && (!name || rest.length)) throw new CommandUsageError('usage: orch tenant create NAME');
      if (sub === 'create') checkTenantName(name);
      // Creating writes the tenant's first audit row, checkpointed with the desktop key: that needs the identity.
      const store = sub === 'create' ? await openTenantStore(orchHome()) : new TenantStore(orchHome());
      try {
        if (sub === 'create' && name) {
          store.create(name, os.userInfo().username);
          if (values.json) printJson(out, { tenant: name, created: true, file: path.join(store.dir, `${name}.sqlite`) });
          else out.log(`tenant "${name}" created in ${store.dir}`);
          return 0;
        }
        if (sub === 'list') {
          if (name) throw new CommandUsageError('usage: orch tenant list');
          const tenants = store.list();
          if (values.json) printJson(out, tenants);
          else out.log(tenants.length ? tenants.join('\n') : 'no tenants yet: orch tenant create NAME');
          return 0;
        }
        throw new CommandUsageError('usage: orch tenant create NAME | orch tenant list');
      } finally {
        store.close();
      }
    },
  },

  dag: {
    summary: 'validate, register or list DAGs',
    usage: 'orch dag validate FILE [--tenant T] [--json] | orch dag register FILE --tenant T [--json] | orch dag list --tenant T [--json]',
    help: `validate: parses and compiles a YAML or JSON DAG file and lists every problem with its node and field; with
--tenant T, a command node naming an agent that does not serve T is one of them (register always checks that),
and a warning names each command no approval gate releases that its agent would run only with a signed approval
(not read-only on a standard or infrastructure agent: the run would fail with approval_required).
register: validates, then stores it in the tenant; its name becomes a Temporal workflow type.
list: the tenant's registered DAGs with version and hash.`,
    options: { ...jsonOpt, ...tenantOpt },
    optionHelp: { tenant: 'the tenant (validate: also check its agents)' },
    subcommands: [
      { name: 'validate', summary: 'parse and compile a DAG file; list every problem', usage: 'orch dag validate FILE [--tenant T] [--json]', args: ['<file>'] },
      { name: 'register', summary: 'validate, then sign and store it in the tenant', usage: 'orch dag register FILE --tenant T [--json]', args: ['<file>'] },
      { name: 'list', summary: "the tenant's registered DAGs", usage: 'orch dag list --tenant T [--json]' },
    ],
    async run({ values, positionals }, out) {
      const [sub, file, ...rest] = positionals;
      if (sub === 'list') {
        if (file) throw new CommandUsageError('usage: orch dag list --tenant T');
        if (!values.tenant) throw new CommandUsageError('--tenant T is required');
        const store = new TenantStore(orchHome());
        try {
          const dags = store.listDags(checkTenantName(values.tenant));
          if (values.json) printJson(out, dags);
          else out.log(dags.length ? dags.map((d) => `${d.name}  v${d.version}  ${d.hash.slice(0, 12)}  ${d.registeredAt}`).join('\n') : 'no DAGs registered');
          return 0;
        } finally {
          store.close();
        }
      }
      if ((sub !== 'validate' && sub !== 'register') || !file || rest.length) throw new CommandUsageError(`usage: ${commands.dag!.usage}`);
      if (sub === 'register' && typeof values.tenant !== 'string') throw new CommandUsageError('orch dag register needs --tenant T');
      const { prices } = loadConfig();
      const tenant = sub === 'register' ? checkTenantName(values.tenant) : undefined;
      const agentsTenant = typeof values.tenant === 'string' ? checkTenantName(values.tenant) : undefined;
      // Registering signs the DAG with the desktop key; validating needs no store at all.
      const store = tenant ? await openTenantStore(orchHome()) : undefined;
      try {
        // Check the tenant before compiling, so a typo in its name is the first thing reported.
        if (store && tenant) store.get(tenant);
        // The tenant's agents, read once: their names for the compiler, their tiers and allowlists for the warnings.
        const tenantAgents = agentsTenant === undefined ? undefined : tenantAgentRecords(orchHome(), agentsTenant);
        const { text, source, result } = compileFile(file, { prices }, tenantAgents?.map((a) => a.name));
        if (!result.ok) {
          if (values.json) printJson(out, { ok: false, file, issues: result.issues });
          else {
            out.err(`${file}: ${result.issues.length} problem${result.issues.length === 1 ? '' : 's'}`);
            for (const i of result.issues) out.err(`  ${describeIssue(i)}`);
          }
          return 1;
        }
        const dag: CompiledDag = result.dag;
        // Commands an agent of the tenant would refuse for want of an approval gate: warned, not refused (the
        // agent's own check is what holds; this says so before a run fails on it).
        const warnings = tenantAgents === undefined ? [] : await ungatedWarnings(dag, tenantAgents);
        if (!values.json) for (const w of warnings) out.err(`warning: ${w.message}`);
        if (!store || !tenant) {
          if (values.json) printJson(out, { ok: true, file, name: dag.name, version: dag.version, nodes: dag.nodes.length, costCapUsd: dag.costCapUsd, warnings });
          else out.log(`${file}: OK — DAG "${dag.name}" v${dag.version}, ${dag.nodes.length} nodes, cost cap $${dag.costCapUsd}`);
          return 0;
        }
        const reg = store.registerDag(tenant, source as { name: string; version: string | number }, text, os.userInfo().username);
        if (values.json) printJson(out, { ok: true, tenant, name: reg.name, version: reg.version, hash: reg.hash, warnings });
        else {
          out.log(`registered "${reg.name}" v${reg.version} in tenant "${tenant}" (sha256 ${reg.hash.slice(0, 16)}…)`);
          out.log(`run it: orch run ${reg.name} --tenant ${tenant}${Object.keys(dag.params).length ? ' --param NAME=VALUE' : ''} --follow`);
        }
        return 0;
      } finally {
        store?.close();
      }
    },
  },

  run: {
    summary: 'start a run of a registered DAG',
    usage: 'orch run DAG --tenant T [--param NAME=VALUE ...] [--follow] [--id WORKFLOW_ID] [--json]',
    help: `Checks the parameters against the DAG, then starts workflow type DAG with input {"tenant","params"} on
the task queue, with a start statement signed by your identity key (so four-eyes gates know who started it).
--follow shows progress until the run ends (exit 0 succeeded, 1 failed): on a terminal, the run's status redrawn
in place (nodes, cost against the cap, each waiting gate with every command it releases, the digest an approver
signs and the approve command); piped, a line per change; with --json, one JSON object per line (events node,
cost, gate, and end with the outcome).`,
    options: {
      ...jsonOpt,
      ...tenantOpt,
      param: { type: 'string', short: 'p', multiple: true },
      follow: { type: 'boolean', short: 'f' },
      id: { type: 'string' },
    },
    optionHelp: {
      param: 'a parameter of the DAG (repeatable)',
      follow: 'show progress until the run ends (exit 0 succeeded, 1 failed)',
      id: 'the workflow id (default: DAG name, time and a random suffix)',
      json: 'the started run as JSON (with --follow: JSON lines); a failure as {"error":{"code","message"}}',
    },
    args: ['<dag>'],
    async run({ values, positionals }, out) {
      const [dagName, ...rest] = positionals;
      if (!dagName || rest.length) throw new CommandUsageError(`usage: ${commands.run!.usage}`);
      if (typeof values.tenant !== 'string') throw new CommandUsageError('--tenant T is required: the tenant the DAG is registered in');
      const params = parseParams(values.param);
      // The audit rows hold the workflow id (limits.ts): a longer one is refused here, not by the first audit row.
      const idProblem = typeof values.id === 'string' ? workflowIdProblem(values.id) : undefined;
      if (idProblem) throw new CommandUsageError(`--id: ${idProblem}`);
      const config = loadConfig();
      const tenant = checkTenantName(values.tenant);
      // Reads the DAG with its signature checked, as the worker will.
      const store = await openTenantStore(config.home);
      let bound: Record<string, unknown>;
      let shown: Omit<RunStartInfo, 'workflowId' | 'startedBy'>;
      try {
        const dag = store.getDag(tenant, dagName);
        const compiled = compileDag(dag.source, { knownModels: Object.keys(config.prices), knownAgents: agentsOfTenant(config.home, tenant) });
        if (!compiled.ok) throw new OrchError(ErrorType.compileError, `the registered DAG no longer compiles: ${compiled.issues.map(describeIssue).join('; ')}`);
        const b = bindParams(compiled.dag.params, params);
        if (!b.ok) throw new OrchError(ErrorType.badParams, b.issues.map(describeIssue).join('; '));
        bound = b.values;
        const tooLarge = runAuditIssues(compiled.dag, b.values);
        if (tooLarge.length > 0) throw new OrchError(ErrorType.badParams, tooLarge.map(describeIssue).join('; '));
        const d = compiled.dag;
        shown = { dag: d.name, version: d.version, tenant, params: b.values, costCapUsd: d.costCapUsd, dagHash: dag.hash, nodes: d.nodes };
      } finally {
        store.close();
      }
      const identity = await loadDesktopIdentity({ home: config.home });
      const { client, close } = await connectClient(config);
      try {
        const workflowId = typeof values.id === 'string' ? values.id : `${dagName.slice(0, MAX_WORKFLOW_ID_LENGTH - 22)}-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${Math.random().toString(36).slice(2, 8)}`;
        // Signed with this operator's key: the run knows who started it, and four-eyes gates refuse that key's approval.
        const start = signStart(identity.sign, { tenant, workflowId, workflowType: dagName, params: bound });
        // What the Temporal UI shows at the top of the run's page (encrypted by the payload codec like any payload).
        const info: RunStartInfo = { ...shown, workflowId, startedBy: `${os.userInfo().username} (${identity.fingerprint.slice(0, 20)}…)` };
        const handle = await client.workflow.start(dagName, {
          taskQueue: config.taskQueue,
          workflowId,
          args: [{ tenant, params: bound, start }],
          staticSummary: runStartSummary(info),
          staticDetails: runStartDetails(info),
        });
        if (!values.follow) {
          if (values.json) printJson(out, { workflowId, runId: handle.firstExecutionRunId, dag: dagName, tenant });
          else {
            out.log(`started ${dagName} as workflow ${workflowId}`);
            out.log(`watch: orch status ${workflowId}   (or the Temporal UI)`);
          }
          return 0;
        }
        if (!values.json) out.log(`started ${dagName} as workflow ${workflowId}`);
        return await follow(handle, out, values.json ? 'json' : out === stdio && process.stdout.isTTY ? 'live' : 'lines');
      } finally {
        await close();
      }
    },
  },

  approve: approveSpec,

  config: {
    summary: 'the effective configuration, and where each value came from',
    usage: 'orch config [--json]',
    help: `Lists every setting Orch reads from the environment (the README's Configuration table) with its value here and
whether it came from the environment or is the default (keys and passwords: only whether they are set), then the
resolved paths and Temporal target, and checks them as the worker does at start. Exit 1 if a setting is not valid.`,
    options: { ...jsonOpt },
    optionHelp: { json: 'the settings as JSON' },
    async run({ values, positionals }, out) {
      if (positionals.length) throw new CommandUsageError(`usage: ${commands.config!.usage}`);
      const settings = effectiveSettings();
      let resolved: Record<string, unknown> | undefined;
      let problem: string | undefined;
      try {
        const c = loadConfig();
        resolved = {
          home: c.home,
          taskQueue: c.taskQueue,
          temporal: c.temporal.kind === 'dev-server' ? `a local dev server on ${c.temporal.ip}:${c.temporal.port} (UI :${c.temporal.uiPort})` : c.temporal.description,
          pricesFile: `${c.pricesFile}${fs.existsSync(c.pricesFile) ? '' : ' (absent: the default prices)'}`,
          models: Object.keys(c.prices).length,
          retentionDays: c.retentionDays,
          maxCachedWorkflows: c.maxCachedWorkflows,
          relayPort: c.relayPort,
          anthropicKey: c.anthropic.apiKey ? 'set' : 'not set (Claude nodes fail until it is)',
        };
      } catch (err) {
        if (!(err instanceof OrchError)) throw err;
        problem = err.message;
      }
      if (values.json) {
        printJson(out, { ok: problem === undefined, settings, resolved: resolved ?? null, ...(problem ? { problem } : {}) });
        return problem ? 1 : 0;
      }
      const w = Math.max(...settings.map((x) => x.env.length));
      for (const x of settings) out.log(`${x.env.padEnd(w)}  ${x.source === 'environment' ? 'env    ' : 'default'}  ${x.value}`);
      if (resolved) {
        out.log('');
        for (const [k, v] of Object.entries(resolved)) out.log(`${k}: ${String(v)}`);
      }
      if (problem) {
        out.err(`orch config: ${problem}`);
        return 1;
      }
      return 0;
    },
  },

  status: {
    summary: "show a run's nodes, cost, gates and outcome",
    usage: 'orch status WORKFLOW_ID [--json]',
    help: `Asks the run for its status query (node states, output summaries, cost spent and reserved, pending gates).`,
    options: { ...jsonOpt },
    args: ['<workflow_id>'],
    async run({ values, positionals }, out) {
      const [workflowId, ...rest] = positionals;
      if (!workflowId || rest.length) throw new CommandUsageError(`usage: ${commands.status!.usage}`);
      const transport = await openRunTransport(loadConfig(), { workflowId });
      try {
        // Both questions at once: one round trip instead of two.
        const [described, queried] = await Promise.allSettled([transport.describe(workflowId), transport.query<RunStatus>(workflowId, undefined, statusQuery.name)]);
        if (described.status === 'rejected') {
          if (described.reason instanceof RunNotFoundError) throw new OrchError('unknown_workflow', `no workflow "${workflowId}" in Temporal`);
          throw described.reason;
        }
        const description = described.value;
        // No answer: no worker, or not an Orch run.
        const status: RunStatus | undefined = queried.status === 'fulfilled' ? queried.value : undefined;
        if (values.json) {
          printJson(out, { workflowId, runId: description.runId, type: description.type, temporalStatus: description.status, status });
        } else {
          out.log(`${workflowId} (${description.type}): ${description.status}`);
          if (status) for (const l of formatStatus(status, workflowId)) out.log(l);
          else out.log('(no status: the worker is not running, or this is not an Orch run)');
        }
        return description.status === 'FAILED' || description.status === 'TIMED_OUT' ? 1 : 0;
      } finally {
        await transport.close();
      }
    },
  },
};

// The desktop identity, the agents it talks to, a relay; secrets; the audit log.
Object.assign(commands, { init: initSpec, whoami: whoamiSpec, agent: agentSpec, relay: relaySpec, secret: secretSpec, audit: auditSpec, approver: approverSpec, plan: planSpec, keys: keysSpec, runs: runsSpec });

commands.completion = {
  summary: 'print a shell completion script (bash or zsh)',
  usage: 'orch completion bash|zsh',
  help: `Prints a script that completes orch's commands, subcommands and options in your shell:
  bash: source <(orch completion bash)     (in ~/.bashrc; or save it as /etc/bash_completion.d/orch)
  zsh:  source <(orch completion zsh)      (in ~/.zshrc after compinit; or save it as _orch in a directory of $fpath)`,
  options: {},
  // cli.ts's program() gives it its argument and runs it (it needs the whole command tree).
  run: () => Promise.reject(new Error('orch completion runs through the program')),
};

/** The help of `orch` itself, after the list of commands. */
const ROOT_AFTER = `Run \`orch COMMAND --help\` for a command (and \`orch COMMAND SUBCOMMAND --help\`). Exit codes: 0 ok, 1 failed run or
rejected input, 2 usage error. With --json, a failure is {"error":{"code","message"}} on stdout (code "usage" for a
usage error), besides the line on stderr.
Environment: ORCH_HOME (data directory), TEMPORAL_ADDRESS (use an existing Temporal), ANTHROPIC_API_KEY.
Shell completion: source <(orch completion bash), or source <(orch completion zsh).`;
const ROOT = { description: 'orch — operations runbooks as durable Temporal workflows', version: 'orch 0.1.0', after: ROOT_AFTER };

/**
 * `orch relay start`: a relay run here, with the options of `orch-relay start` (relay/cli-options.ts, relay/main.ts).
 * Started from a desktop, the relay's admin is that desktop (its public signing key from identity.json, no keychain
 * needed), unless the operator named admins or chose --open.
 */
async function relayStart(values: Record<string, unknown>, out: Out): Promise<number> {
  const { runRelayStart } = await import('../relay/main');
  const given = { ...values } as Record<string, string | boolean | string[]>;
  if (given['admin-key'] === undefined && given.open !== true) {
    const { readPublicIdentity } = await import('./identity');
    let own;
    try {
      own = readPublicIdentity(orchHome());
    } catch (err) {
      out.err(`orch relay start: not naming this desktop as the relay's admin: ${(err as Error).message}`);
    }
    if (own) {
      given['admin-key'] = [own.sign.publicKey];
      out.err(`orch relay start: this desktop (${own.fingerprint}) is the relay's admin; its worker registers the agents it enrolls`);
    }
  }
  return runRelayStart(given, { out: out.log, err: out.err });
}

/** The commander program of `orch`, with `orch relay start` and `orch completion` besides the command specs. */
function program(out: Out, exit: { code: number }) {
  const p = buildProgram(commands, ROOT, out, exit);
  const relay = p.commands.find((c) => c.name() === 'relay')!;
  const start = relay.commands.find((c) => c.name() === 'start')!;
  addRelayStartOptions(start).summary(RELAY_START_SUMMARY).description(`${RELAY_START_SUMMARY} (the same as orch-relay start)`).addHelpText('after', `\n${RELAY_START_HELP}`);
  start.action(async () => {
    exit.code = await relayStart(relayStartValues(start), out);
  });
  const completion = p.commands.find((c) => c.name() === 'completion')!;
  completion.addArgument(new Argument('<shell>').choices(COMPLETION_SHELLS));
  completion.action((shell: CompletionShell) => {
    // The script is made from a program built anew, so no option value given here can reach it.
    out.log(completionScript(program({ log: () => {}, err: () => {} }, { code: 0 }), shell).trimEnd());
    exit.code = 0;
  });
  return p;
}

/**
 * The command `argv` names, as `orch` spells it (`dag validate`, `status`; `help` for none or an option first), or
 * undefined for one it does not know. bin/orch.mjs keeps V8's code cache covering each command that has run.
 */
export function commandName(argv: readonly string[]): string | undefined {
  const [first, second] = argv;
  if (first === undefined || first.startsWith('-') || first === 'help') return 'help';
  const spec = Object.hasOwn(commands, first) ? commands[first] : undefined;
  if (spec === undefined) return undefined;
  const sub = spec.subcommands?.find((s) => s.name === second);
  return sub === undefined ? first : `${first} ${sub.name}`;
}

export async function main(argv: string[], out: Out = stdio): Promise<number> {
  if (argv.length === 0) {
    // No command at all: the list of commands, and the usage exit code.
    const exit = { code: 0 };
    out.log(program(out, exit).helpInformation().trimEnd());
    return 2;
  }
  const exit = { code: 0 };
  return runProgram(program(out, exit), argv, out, exit);
}
