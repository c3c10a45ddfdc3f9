/**
 * The stable error types a user can meet. Each is the `type` of an `ApplicationFailure` (or the `code` of a
 * CLI/compile error), never told apart by message text. The README's error table is generated from this list
 * by hand: keep them in step.
 */
export const ErrorType = {
  /** A DAG failed to compile: cycles, unknown parents, bad fields... The message names the node and field. */
  compileError: 'dag_compile_error',
  /** A destructive command node ran (or was about to run) without an approved approval_gate parent. */
  destructiveWithoutGate: 'destructive_without_gate',
  /** An approval gate was not decided within its timeout (default 24h). */
  approvalTimeout: 'approval_timeout',
  /** An approver rejected a gate. */
  approvalRejected: 'approval_rejected',
  /** The projected worst-case cost of the next Claude call would pass the run's cost_cap_usd. */
  costCapExceeded: 'cost_cap_exceeded',
  /** The model is not in the price table, so its cost cannot be bounded. */
  unknownModel: 'unknown_model',
  /** No enrolled, reachable agent can run the command. */
  agentUnavailable: 'agent_unavailable',
  /**
   * The agent does not serve the run's tenant (it was removed from the tenant after the DAG was registered, or the
   * agent name came from a param): nothing was sent. Non-retryable.
   */
  agentNotInTenant: 'agent_not_in_tenant',
  /**
   * The relay the agent is enrolled through is not connected (down, unreachable, its pin does not match, or not
   * configured): nothing was sent. Retryable; other relays' agents are not affected.
   */
  relayUnavailable: 'relay_unavailable',
  /** The command went out but no accepted result came back in time. Retryable: the agent answers a retry from its record. */
  agentNoAnswer: 'agent_no_answer',
  /** A command ran and exited non-zero. */
  commandFailed: 'command_failed',
  /** A node did not run because a parent failed. */
  parentFailed: 'parent_failed',
  /** A node failed; the run fails naming it. */
  nodeFailed: 'node_failed',
  /**
   * A Claude attempt failed before the API processed it (429/5xx/overloaded, or the connection was refused), so it
   * cannot have been billed: the workflow releases its reservation and retries under a fresh one.
   */
  claudeNotProcessed: 'claude_not_processed',
  /** The Claude API refused the request for a reason retrying cannot fix (auth, bad request). */
  claudeRequestRejected: 'claude_request_rejected',
  /** The tenant does not exist (or its name is invalid). */
  unknownTenant: 'unknown_tenant',
  /** No DAG of that name is registered in the tenant. */
  unknownDag: 'unknown_dag',
  /** Run parameters do not match the DAG's declared params. */
  badParams: 'bad_params',
  /** The workflow input is not what Orch expects ({tenant, params}). */
  badInput: 'bad_input',
  /**
   * A command a gate released no longer matches what the approvers signed (its agent or argv changed after the
   * approval, or the gate never listed it): it is not run.
   */
  approvalMismatch: 'approval_mismatch',
  /** A gate names an approver who is not in the tenant's approver list (`orch approver add`). */
  unknownApprover: 'unknown_approver',
  /** The run's signed start (`orch run`) does not hold: bad signature, another run's, or stale. */
  badStart: 'bad_start',
} as const;

export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

/**
 * An error with a stable code, thrown by Orch's non-workflow code (tenant store, CLI, config). Activities turn it
 * into a non-retryable ApplicationFailure of the same type; the CLI prints its message and exits 1.
 */
export class OrchError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'OrchError';
  }
}
