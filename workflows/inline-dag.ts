/**
 * `runDag`: runs a DAG given inline in the workflow input, with no signature. For developers' own workers and
 * the tests' workers only: the production worker (`orch up`, `orch worker`) loads workflows/index.ts, which does
 * not export it, so there every run is of a registered DAG signed by the desktop key. A developer who wants it
 * exports it from their own workflows module:
 *
 * @example
 * // my-workflows.ts, given to orchPlugin(deps, { workflowsPath })
 * export { runDag } from 'orch/workflows/inline-dag';
 * export { default } from 'orch/workflows/index';
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { ErrorType } from '../protocol/errors';
import { TENANT_NAME, checkInput, runSource } from './run-source';
import { activities } from './activity-proxies';
import { decideSignedApprovals } from './session';
import type { InlineDagRunInput, RunResult } from './shared';
import { summaries } from './ui-metadata';

/** Runs an inline, unsigned DAG (never registered on the production worker). */
export async function runDag(input: InlineDagRunInput): Promise<RunResult> {
  decideSignedApprovals();
  checkInput(input, true);
  const tenant = input.tenant ?? 'adhoc';
  if (!TENANT_NAME.test(tenant)) throw ApplicationFailure.nonRetryable(`tenant name "${tenant}" is not valid`, ErrorType.unknownTenant);
  const { prices } = await activities.loading.loadRunConfig.executeWithOptions({ summary: summaries.loadRunConfig() }, []);
  return runSource(tenant, input.dag, input.params ?? {}, prices);
}
