/**
 * `orch plan --tenant T "request"`: asks Claude for a DAG (desktop-worker/planner.ts), reviews it, shows it as
 * YAML with its worst-case cost and, for a name already registered, the diff; `--register` signs and registers
 * it, `--run` also starts it. Without either, nothing is stored (the planner's audit rows aside).
 */
import os from 'node:os';
import { compileDag } from '../../workflows/dag/compile';
import type { CompiledDag } from '../../workflows/dag/types';
import { OrchError } from '../../protocol/errors';
import { resolveAgentBinary } from '../../infra/agent-binary';
import { tenantAgentRecords } from '../agent-registry';
import { loadConfig } from '../config';
import { openTenantStore } from '../tenant-access';
import { checkTenantName, dagHash, type RegisteredDag } from '../tenant-store';
import {
  PlanCode,
  agentExplainCheck,
  askForDag,
  destructiveChanges,
  lineDiff,
  nextVersion,
  plannerContext,
  reviewPlan,
  toYaml,
  type AllowlistCheck,
  type PlanNote,
} from '../planner';
import { CommandUsageError, printJson, runCommand, type CommandSpec, type Out } from './shared';

/**
 * Claude Opus 4.5: priced in workflows/prices.ts and not deprecated. (claude-sonnet-4-5, the earlier default, reached
 * end-of-life on 2026-11-30 per the Anthropic SDK's deprecation list.)
 */
export const DEFAULT_PLAN_MODEL = 'claude-opus-4-5';
export const DEFAULT_PLAN_MAX_TOKENS = 4096;
/** Room for the call and its one retry at the default model and max_tokens (each about $0.10 + input at worst). */
export const DEFAULT_PLAN_MAX_COST_USD = 0.5;

function positiveNumber(raw: unknown, flag: string, fallback: number, integer = false): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new CommandUsageError(`${flag} must be a positive ${integer ? 'integer' : 'number'}, got "${String(raw)}"`);
  return n;
}

/** The allowlist check through the Go agent's own `explain`; without a binary every command is unchecked (refused). */
async function allowlistChecker(): Promise<AllowlistCheck> {
  try {
    return agentExplainCheck(await resolveAgentBinary({ log: (l) => process.stderr.write(`orch plan: ${l}\n`) }));
  } catch (err) {
    const reason = `no orch-agent binary to run its policy check (${(err as Error).message.split('\n')[0]})`;
    return () => ({ allowed: undefined, reason });
  }
}

function registeredOrUndefined(get: () => RegisteredDag): RegisteredDag | undefined {
  try {
    return get();
  } catch (err) {
    if (err instanceof OrchError && err.code === 'unknown_dag') return undefined;
    throw err;
  }
}

function showNotes(out: Out, notes: PlanNote[], prefix: string, toErr = false): void {
  for (const n of notes) (toErr ? out.err : out.log)(`${prefix}${n.message}`);
}

export const planSpec: CommandSpec = {
  summary: 'ask Claude for a DAG from a request in plain words; review, then register or run it',
  usage:
    'orch plan --tenant T "REQUEST" [--name DAG] [--model M] [--max-tokens N] [--max-cost-usd USD] [--register | --run [--param NAME=VALUE ...] [--follow]] [--json]',
  help: `Asks Claude (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL) for a DAG through tool use with the DAG's JSON Schema,
telling it the tenant's agents with their tiers and allowlists and the priced models. Then Orch reviews it:
  - an answer that does not match the schema is sent back once with the problems, then reported (plan_invalid);
  - a command matching a destructive pattern is marked destructive: true, and every destructive command
    without an approval gate as a direct parent gets one inserted in front of it (each change is listed);
  - agents the tenant does not have, and commands their tier or allowlist would refuse (the Go agent's own
    check, orch-agent explain), are refused with the reason;
  - its worst case (every Claude node at max_tokens) must fit its cost_cap_usd.
It prints the DAG as YAML with that worst case against the cap. For a name already registered it shows the diff
against the registered version; if a destructive node or its gate changed, the new version (signed anew when
registered) needs approval again at its gates, and runs of the old version are unaffected.
Without --register or --run nothing is stored. --register signs and registers it (as orch dag register);
--run also starts it (as orch run; --param, --follow as there).
The planner's own calls are capped at --max-cost-usd (default $${DEFAULT_PLAN_MAX_COST_USD}: each call's worst case is checked before
it is sent) and written to the tenant's audit chain (claude_call, or cost_cap_exceeded). Defaults: --model
${DEFAULT_PLAN_MODEL}, --max-tokens ${DEFAULT_PLAN_MAX_TOKENS}. Exit 0 planned, 1 refused or failed, 2 usage error.`,
  options: {
    tenant: { type: 'string', short: 't' },
    name: { type: 'string' },
    model: { type: 'string' },
    'max-tokens': { type: 'string' },
    'max-cost-usd': { type: 'string' },
    register: { type: 'boolean' },
    run: { type: 'boolean' },
    param: { type: 'string', short: 'p', multiple: true },
    follow: { type: 'boolean', short: 'f' },
    json: { type: 'boolean' },
  },
  optionHelp: {
    name: 'the name of the DAG',
    model: `the planner's model (default ${DEFAULT_PLAN_MODEL})`,
    'max-tokens': `its max_tokens (default ${DEFAULT_PLAN_MAX_TOKENS})`,
    'max-cost-usd': `cap on the planner's own calls (default $${DEFAULT_PLAN_MAX_COST_USD})`,
    register: 'sign and register the DAG',
    run: 'register it and start a run (as orch run)',
    param: 'a parameter of the run (with --run; repeatable)',
    follow: 'follow the run (with --run)',
  },
  args: ['[request...]'],
  run: (args, out) =>
    runCommand('plan', args, out, async () => {
      const { values, positionals } = args;
      const request = positionals.join(' ').trim();
      if (typeof values.tenant !== 'string') throw new CommandUsageError('--tenant T is required: the tenant the DAG is for');
      if (!request) throw new CommandUsageError('the request is missing: say what the DAG should do, in quotes');
      if (request.length > 10_000) throw new CommandUsageError('the request is over 10000 characters; say it shorter');
      if ((values.param || values.follow) && !values.run) throw new CommandUsageError('--param and --follow go with --run');
      const tenant = checkTenantName(values.tenant);
      const model = typeof values.model === 'string' ? values.model : DEFAULT_PLAN_MODEL;
      const maxTokens = positiveNumber(values['max-tokens'], '--max-tokens', DEFAULT_PLAN_MAX_TOKENS, true);
      const maxCostUsd = positiveNumber(values['max-cost-usd'], '--max-cost-usd', DEFAULT_PLAN_MAX_COST_USD);
      const json = Boolean(values.json);
      const config = loadConfig();
      const actor = os.userInfo().username;
      const agents = tenantAgentRecords(config.home, tenant);
      const check = await allowlistChecker();
      // The audit rows are checkpointed with the desktop key, and registering signs: both need the identity.
      const store = await openTenantStore(config.home);
      let registeredName: string | undefined;
      try {
        store.get(tenant);
        const hinted = typeof values.name === 'string' ? registeredOrUndefined(() => store.getDag(tenant, values.name as string)) : undefined;
        const context = plannerContext(tenant, agents, config.prices, hinted ? { version: hinted.version, yaml: toYaml(hinted.source) } : undefined);
        const asked = await askForDag({
          anthropic: config.anthropic,
          prices: config.prices,
          model,
          maxTokens,
          maxCostUsd,
          request: typeof values.name === 'string' ? `${request}\n\n(Name the DAG "${values.name}".)` : request,
          context,
          audit: (e) => store.append({ tenant, actor, action: e.action, subject: e.subject, details: e.details, idempotencyKey: `plan/${process.pid}/${Date.now()}/${Math.random().toString(36).slice(2)}` }),
        });
        const answer = asked.source;
        if (typeof values.name === 'string') answer.name = values.name;
        const name = String(answer.name);
        const registered = registeredOrUndefined(() => store.getDag(tenant, name));
        answer.version = nextVersion(registered?.version);
        const review = reviewPlan(answer, { tenant, agents, prices: config.prices, checkAllowlist: check });
        const planner = { model, attempts: asked.attempts, costUsd: asked.costUsd, capUsd: maxCostUsd, inputTokens: asked.inputTokens, outputTokens: asked.outputTokens };
        const yaml = toYaml(review.source);
        const notesOut = review.notes.map((n) => ({ ...n }));

        if (review.refusals.length > 0 || !review.dag) {
          if (json) printJson(out, { ok: false, tenant, name, refusals: review.refusals, notes: notesOut, yaml, planner });
          else {
            out.err(`orch plan: refused the plan for "${name}" (${review.refusals.length} problem${review.refusals.length === 1 ? '' : 's'}); nothing was stored:`);
            showNotes(out, review.refusals, '  refused: ', true);
            showNotes(out, review.notes, '  note: ', true);
            out.err(`planner call: $${asked.costUsd.toFixed(6)} of --max-cost-usd $${maxCostUsd}. The plan as answered:`);
            out.err(yaml.trimEnd());
          }
          return 1;
        }
        const dag: CompiledDag = review.dag;

        // Against the registered version: the diff, what changed among destructive nodes and their gates.
        let diff: { against: string; lines: string[]; unchanged: boolean; destructiveChanged: string[]; needsApprovalAgain: boolean } | undefined;
        if (registered) {
          const sameContent = dagHash({ ...review.source, version: registered.version }) === registered.hash;
          if (sameContent) review.source.version = registered.version;
          const before = compileDag(registered.source, { knownModels: Object.keys(config.prices) });
          const changed = sameContent ? [] : destructiveChanges(before.ok ? before.dag : undefined, dag);
          diff = {
            against: registered.version,
            lines: lineDiff(toYaml(registered.source), toYaml(review.source)),
            unchanged: sameContent,
            destructiveChanged: changed,
            needsApprovalAgain: changed.length > 0,
          };
        }
        const finalYaml = toYaml(review.source);
        const summary = {
          tenant,
          name,
          version: String(review.source.version),
          nodes: dag.nodes.length,
          worstCaseUsd: review.worstCaseUsd,
          costCapUsd: dag.costCapUsd,
          destructiveNodes: dag.nodes.filter((n) => n.type === 'command' && n.destructive).map((n) => n.id),
        };

        let registration: { version: string; hash: string } | undefined;
        if ((values.register || values.run) && !diff?.unchanged) {
          const reg = store.registerDag(tenant, review.source as unknown as { name: string; version: string | number }, finalYaml, actor);
          registration = { version: reg.version, hash: reg.hash };
          registeredName = reg.name;
        } else if (values.run && diff?.unchanged) registeredName = name;

        if (json) {
          printJson(out, { ok: true, ...summary, yaml: finalYaml, notes: notesOut, planner, ...(diff ? { diff } : {}), registered: registration ?? null, stored: registration !== undefined });
        } else {
          out.log(`plan for tenant "${tenant}": DAG "${name}" v${summary.version}, ${dag.nodes.length} nodes (${model}, ${asked.attempts} attempt${asked.attempts === 1 ? '' : 's'}, $${asked.costUsd.toFixed(6)} of --max-cost-usd $${maxCostUsd})`);
          showNotes(out, review.notes, '  changed: ');
          out.log(`worst-case cost: $${review.worstCaseUsd.toFixed(6)} (every Claude node at max_tokens) against the cap of $${dag.costCapUsd}`);
          out.log('---');
          out.log(finalYaml.trimEnd());
          out.log('---');
          if (diff) {
            if (diff.unchanged) out.log(`same as the registered v${diff.against}: nothing new to register`);
            else {
              out.log(`diff against the registered v${diff.against}:`);
              for (const l of diff.lines) if (!l.startsWith('  ')) out.log(l);
              if (diff.needsApprovalAgain) {
                out.log(`destructive node${diff.destructiveChanged.length === 1 ? '' : 's'} or gate${diff.destructiveChanged.length === 1 ? '' : 's'} changed: ${diff.destructiveChanged.join(', ')}; v${summary.version} is a new signed version and needs approval again at its gates (runs of v${diff.against} are unaffected)`);
              } else out.log('no destructive node or gate changed');
            }
          }
          if (registration) out.log(`registered "${name}" v${registration.version} in tenant "${tenant}" (signed, sha256 ${registration.hash.slice(0, 16)}…)`);
          else if (!values.run) out.log(`nothing stored: add --register to sign and register it, or --run to also start it`);
        }
      } finally {
        store.close();
      }
      if (!values.run || !registeredName) return 0;
      // Started exactly as `orch run` starts it (signed start, params checked), through the same command.
      const { main } = await import('../cli');
      const runArgs = ['run', registeredName, '--tenant', tenant, ...((values.param as string[] | undefined) ?? []).flatMap((p) => ['--param', p]), ...(values.follow ? ['--follow'] : []), ...(json ? ['--json'] : [])];
      return main(runArgs, out);
    }),
};

export { PlanCode };
