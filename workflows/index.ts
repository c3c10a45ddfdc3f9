/**
 * The workflows module the production Orch worker loads (`orch up`, `orch worker`, `npm run build`). Every
 * registered DAG is a workflow type of its own: the default export handles any workflow type name and runs the
 * tenant's registered DAG of that name, whose signature by the desktop key the loading activity checks. Nothing
 * else is exported: the inline `runDag` (workflows/inline-dag.ts) and the example workflows
 * (workflows/examples/) would run code or DAGs nobody signed, so only developers' and tests' workers load them.
 * Deterministic code only.
 */
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import { ErrorType } from '../protocol/errors';
import { TENANT_NAME, checkInput, runSource } from './run-source';
import { activities } from './activity-proxies';
import { decideSignedApprovals, errorOf } from './session';
import type { DagRunInput, RunResult } from './shared';
import { summaries } from './ui-metadata';

/** Any workflow type: the tenant's registered DAG of that name. */
export default async function registeredDag(input: DagRunInput): Promise<RunResult> {
  checkInput(input, false);
  if (typeof input.tenant !== 'string' || !TENANT_NAME.test(input.tenant)) {
    throw ApplicationFailure.nonRetryable(`workflow input needs "tenant": a tenant name made of letters, digits, _ and -`, ErrorType.badInput);
  }
  decideSignedApprovals();
  const name = workflowInfo().workflowType;
  // The definition is read once, by an activity: it and its hash are in this run's history, so editing or
  // re-registering the DAG later never changes a run that has started.
  let loaded;
  try {
    loaded = await activities.loading.loadDag.executeWithOptions({ summary: summaries.loadDag(input.tenant, name) }, [{ tenant: input.tenant, name }]);
  } catch (err) {
    // Fail the run with the stable type (unknown_tenant, unknown_dag, ...), not a generic activity failure.
    const { type, message } = errorOf(err);
    throw ApplicationFailure.nonRetryable(message, type, { tenant: input.tenant, dag: name });
  }
  // Approver keys and agent tiers come with the signed DAG load, never from the workflow input; the input's signed
  // start (orch run) only names who started the run, and counts only for a key that load knows.
  return runSource(input.tenant, loaded.source, input.params ?? {}, loaded.prices, loaded.hash, {
    ...(loaded.gateContext ? { gateContext: loaded.gateContext } : {}),
    ...(input.start !== undefined ? { start: input.start } : {}),
  });
}
