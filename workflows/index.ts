/**
 * The workflows module the Orch worker loads. Every registered DAG is a workflow type of its own: the default
 * export handles any type name that is not one of the named workflows below, and runs the tenant's registered
 * DAG of that name. Deterministic code only.
 */
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import { bindParams } from './dag/params';
import { compileDag } from './dag/compile';
import type { CompileIssue } from './dag/types';
import { ErrorType } from './errors';
import { runCompiledDag } from './runner';
import { OrchSession, activities, errorOf } from './session';
import type { DagRunInput, InlineDagRunInput, RunResult } from './shared';
import type { PriceTable } from './prices';

export { restartWithReview } from './examples/restart-with-review';

const TENANT_NAME = /^[A-Za-z0-9_-]{1,100}$/;

function describeIssues(issues: CompileIssue[]): string {
  return issues.map((i) => i.message).join('; ');
}

function checkInput(input: unknown, needDag: boolean): asserts input is { tenant?: string; params?: Record<string, unknown>; dag?: unknown } {
  const i = input as Partial<InlineDagRunInput> | null | undefined;
  const ok =
    typeof i === 'object' &&
    i !== null &&
    (i.params === undefined || (typeof i.params === 'object' && i.params !== null && !Array.isArray(i.params))) &&
    (!needDag || i.dag !== undefined);
  if (!ok) {
    throw ApplicationFailure.nonRetryable(
      needDag
        ? 'runDag expects {"dag": {...}, "params": {...}, "tenant": "..."}'
        : `workflow type "${workflowInfo().workflowType}" expects {"tenant": "NAME", "params": {...}}`,
      ErrorType.badInput,
    );
  }
}

async function runSource(tenant: string, source: unknown, params: Record<string, unknown>, prices: PriceTable, dagHash?: string): Promise<RunResult> {
  const compiled = compileDag(source, { knownModels: Object.keys(prices) });
  if (!compiled.ok) throw ApplicationFailure.nonRetryable(`the DAG does not compile: ${describeIssues(compiled.issues)}`, ErrorType.compileError, compiled.issues);
  const bound = bindParams(compiled.dag.params, params);
  if (!bound.ok) throw ApplicationFailure.nonRetryable(`bad params: ${describeIssues(bound.issues)}`, ErrorType.badParams, bound.issues);
  const session = new OrchSession({
    tenant,
    dag: compiled.dag.name,
    dagVersion: compiled.dag.version,
    dagHash,
    costCapUsd: compiled.dag.costCapUsd,
    prices,
  });
  return runCompiledDag(session, compiled.dag, bound.values);
}

/** Runs an inline DAG: for developers, tests, and `orch run --file`. */
export async function runDag(input: InlineDagRunInput): Promise<RunResult> {
  checkInput(input, true);
  const tenant = input.tenant ?? 'adhoc';
  if (!TENANT_NAME.test(tenant)) throw ApplicationFailure.nonRetryable(`tenant name "${tenant}" is not valid`, ErrorType.unknownTenant);
  const { prices } = await activities.loading.loadRunConfig();
  return runSource(tenant, input.dag, input.params ?? {}, prices);
}

/** Any other workflow type: the tenant's registered DAG of that name. */
export default async function registeredDag(input: DagRunInput): Promise<RunResult> {
  checkInput(input, false);
  if (typeof input.tenant !== 'string' || !TENANT_NAME.test(input.tenant)) {
    throw ApplicationFailure.nonRetryable(`workflow input needs "tenant": a tenant name made of letters, digits, _ and -`, ErrorType.badInput);
  }
  const name = workflowInfo().workflowType;
  // The definition is read once, by an activity: it and its hash are in this run's history, so editing or
  // re-registering the DAG later never changes a run that has started.
  let loaded;
  try {
    loaded = await activities.loading.loadDag({ tenant: input.tenant, name });
  } catch (err) {
    // Fail the run with the stable type (unknown_tenant, unknown_dag, ...), not a generic activity failure.
    const { type, message } = errorOf(err);
    throw ApplicationFailure.nonRetryable(message, type, { tenant: input.tenant, dag: name });
  }
  return runSource(input.tenant, loaded.source, input.params ?? {}, loaded.prices, loaded.hash);
}
