/**
 * Compiling and running a DAG source inside a workflow: shared by the registered-DAG workflow (workflows/index.ts)
 * and the inline `runDag` of workflows/inline-dag.ts. Deterministic code only.
 */
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import { bindParams } from './dag/params';
import { compileDag } from './dag/compile';
import type { CompileIssue } from './dag/types';
import { ErrorType } from '../protocol/errors';
import { runCompiledDag } from './runner';
import { OrchSession, type SessionOptions } from './session';
import type { InlineDagRunInput, RunResult } from './shared';
import type { PriceTable } from './prices';

export const TENANT_NAME = /^[A-Za-z0-9_-]{1,100}$/;

function describeIssues(issues: CompileIssue[]): string {
  return issues.map((i) => i.message).join('; ');
}

export function checkInput(input: unknown, needDag: boolean): asserts input is { tenant?: string; params?: Record<string, unknown>; dag?: unknown } {
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

export async function runSource(
  tenant: string,
  source: unknown,
  params: Record<string, unknown>,
  prices: PriceTable,
  dagHash?: string,
  approvals: Pick<SessionOptions, 'gateContext' | 'start'> = {},
): Promise<RunResult> {
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
    ...approvals,
  });
  return runCompiledDag(session, compiled.dag, bound.values);
}
