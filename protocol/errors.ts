/**
 * Names for the stable error types workflow code throws and matches on. Each is the `type` of an
 * `ApplicationFailure` (or the `code` of a CLI/compile error), never told apart by message text. Every value is a
 * code of {@link ERROR_CODES}, the one table of codes, which the README's error table is checked against.
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
  /** A four-eyes gate names one approver, and the run's starter is not proven (no signed start): nobody could approve it. */
  fourEyesUnproven: 'four_eyes_unproven',
  /** The run refused an approval decision (the update's failure type; `orch approve` prints the reason). */
  approvalRefused: 'approval_refused',
  /** A value is larger than its audit row holds: the row is refused on every retry, so the run fails at once. */
  auditEntryInvalid: 'audit_entry_invalid',
  /** The agent's own tier or allowlist refused the command. Non-retryable. */
  commandNotAllowed: 'command_not_allowed',
  /** The agent started the command earlier and died; it will not run it again. Non-retryable. */
  indeterminate: 'indeterminate',
  /** The run was cancelled from outside (the UI, `temporal workflow cancel`), not by a failing node. */
  cancelled: 'cancelled',
} as const satisfies Record<string, ErrorCode>;

export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

/** Where a user, a workflow or a test meets a code. */
export type ErrorSurface =
  /** The `type` of the ApplicationFailure a run, node or activity fails with (`orch status`, `orch run --json`). */
  | 'run'
  /** The `orch` command's error (exit 1; with `--json`, `{"error": {"code", "message"}}`). */
  | 'cli'
  /** Stops `orch up` or a worker at start. */
  | 'worker'
  /** What an agent is told or reports: a join refusal (protocol/JOIN.md) or its refusal of a command. */
  | 'agent';

export interface ErrorCodeInfo {
  readonly where: readonly ErrorSurface[];
  /** Temporal retries an activity that fails with it: true only where the failed attempt did nothing. */
  readonly retryable: boolean;
  /** When it happens, in a few words (the README's Errors table says it for users). */
  readonly when: string;
}

/**
 * Every stable error code Orch has, in one table: the ErrorType values above, every OrchError code, every
 * ApplicationFailure type and every `orch ... --json` error code. The README's "## Errors" table lists the same
 * codes, and test/unit/error-table.test.ts fails when a code is thrown that is not here or the README and this
 * table differ: add a code here and to the README in the same change.
 */
export const ERROR_CODES = {
  // The DAG, its params and the workflow input
  dag_compile_error: { where: ['run', 'cli'], retryable: false, when: 'the DAG does not compile' },
  bad_params: { where: ['run', 'cli'], retryable: false, when: 'run parameters do not match the DAG params' },
  bad_input: { where: ['run', 'cli'], retryable: false, when: 'malformed input: workflow input, a name, a file, a flag value' },
  bad_argv_template: { where: ['run'], retryable: false, when: 'a command argv is not a valid secrets-only template' },
  unknown_tenant: { where: ['run', 'cli'], retryable: false, when: 'no such tenant' },
  unknown_dag: { where: ['run', 'cli'], retryable: false, when: 'no DAG of that name in the tenant' },
  tenant_exists: { where: ['cli'], retryable: false, when: 'orch tenant create: the tenant exists' },
  dag_hash_mismatch: { where: ['run', 'cli'], retryable: false, when: 'a stored DAG was altered outside Orch' },
  dag_signature_invalid: { where: ['run', 'worker'], retryable: false, when: 'a registered DAG is unsigned, altered or signed by another key' },
  dag_signer_invalid: { where: ['cli'], retryable: false, when: 'the desktop key signed a DAG or bundle its own public key does not verify' },
  workflow_bundle_invalid: { where: ['worker'], retryable: false, when: 'ORCH_WORKFLOW_BUNDLE has no valid signature by this desktop' },
  bad_config: { where: ['cli', 'worker'], retryable: false, when: 'a setting (environment, prices file, relay settings) is invalid' },
  // Gates and approvals
  destructive_without_gate: { where: ['run'], retryable: false, when: 'a destructive command without an approved gate parent' },
  approval_timeout: { where: ['run'], retryable: false, when: 'a gate was not decided within its timeout' },
  approval_rejected: { where: ['run'], retryable: false, when: 'an approver rejected a gate' },
  approval_mismatch: { where: ['run'], retryable: false, when: 'a released command changed after its gate was approved' },
  approval_refused: { where: ['cli'], retryable: false, when: 'orch approve: the run refused the decision' },
  unknown_approver: { where: ['run', 'cli'], retryable: false, when: 'no approver of that name in the tenant' },
  bad_approver_name: { where: ['cli'], retryable: false, when: 'orch approver add: the name is not valid' },
  bad_approver_key: { where: ['cli'], retryable: false, when: 'orch approver add: the key is not an Ed25519 public key in hex' },
  approver_exists: { where: ['cli'], retryable: false, when: 'orch approver add: the name is taken' },
  approver_key_in_use: { where: ['cli'], retryable: false, when: 'orch approver add: the key is another approver' },
  comment_too_long: { where: ['cli'], retryable: false, when: 'orch approve: the comment is over 1,000 characters' },
  gate_not_waiting: { where: ['cli'], retryable: false, when: 'orch approve: the run is not waiting at that gate' },
  bad_start: { where: ['run'], retryable: false, when: "the run's signed start does not hold" },
  four_eyes_unproven: { where: ['run'], retryable: false, when: "a four-eyes gate names one approver and the run's starter is not proven" },
  // Runs seen from the CLI
  unknown_workflow: { where: ['cli'], retryable: false, when: 'Temporal has no run of that id' },
  query_failed: { where: ['cli'], retryable: false, when: 'a run did not answer a query or update (no worker?)' },
  temporal_unreachable: { where: ['cli'], retryable: false, when: 'the CLI cannot reach Temporal' },
  cancelled: { where: ['run'], retryable: false, when: 'the run was cancelled from outside' },
  node_failed: { where: ['run'], retryable: false, when: 'a node failed with no more specific type' },
  parent_failed: { where: ['run'], retryable: false, when: 'a node was not run because a parent failed' },
  unexpected_error: { where: ['cli'], retryable: false, when: 'a CLI command failed in a way Orch has no code for' },
  usage: { where: ['cli'], retryable: false, when: 'a command was used wrongly (exit 2): unknown option, missing argument, bad option value' },
  // Claude and the cost cap
  cost_cap_exceeded: { where: ['run', 'cli'], retryable: false, when: "the next Claude call's worst case would pass the cap" },
  unknown_model: { where: ['run', 'cli'], retryable: false, when: 'the model has no price' },
  claude_request_rejected: { where: ['run', 'cli'], retryable: false, when: 'the Claude API refused the request' },
  claude_not_processed: { where: ['run', 'cli'], retryable: true, when: 'the Claude API did not process the request' },
  plan_invalid: { where: ['cli'], retryable: false, when: "orch plan: the model's answer is not a DAG, twice" },
  plan_over_cost_cap: { where: ['cli'], retryable: false, when: "orch plan: the plan's worst case is over its cost cap" },
  allowlist_check_unavailable: { where: ['cli'], retryable: false, when: "orch plan: an agent's allowlist could not be checked" },
  // Agents, relays and commands
  agent_unavailable: { where: ['run'], retryable: false, when: 'no enrolled agent of that name' },
  agent_not_in_tenant: { where: ['run'], retryable: false, when: "the node's agent does not serve the run's tenant" },
  relay_unavailable: { where: ['run'], retryable: true, when: "the agent's relay is not connected: nothing sent" },
  agent_no_answer: { where: ['run'], retryable: true, when: 'no accepted result came back in time' },
  command_failed: { where: ['run'], retryable: false, when: 'a command exited non-zero' },
  command_not_allowed: { where: ['run', 'agent', 'cli'], retryable: false, when: "the agent's tier or allowlist refused the command" },
  indeterminate: { where: ['run', 'agent'], retryable: false, when: 'the agent died while the command ran' },
  counter_exhausted: { where: ['run'], retryable: false, when: "an agent's envelope counter is used up" },
  unknown_agent: { where: ['cli'], retryable: false, when: 'no enrolled agent of that name' },
  agent_exists: { where: ['cli'], retryable: false, when: 'an agent of that name is enrolled' },
  agent_key_in_use: { where: ['cli'], retryable: false, when: 'the key is enrolled as another agent' },
  invite_exists: { where: ['cli'], retryable: false, when: 'an unused invite for that name is pending' },
  unknown_invite: { where: ['agent'], retryable: false, when: 'join: no such invite' },
  reused: { where: ['agent'], retryable: false, when: 'join: the invite was already used' },
  expired: { where: ['agent'], retryable: false, when: 'join: the invite expired' },
  key_in_use: { where: ['agent'], retryable: false, when: "join: the agent's key is already enrolled" },
  name_taken: { where: ['agent'], retryable: false, when: 'join: an agent of that name was enrolled meanwhile' },
  unknown_relay: { where: ['cli'], retryable: false, when: '--relay names no configured relay' },
  relay_exists: { where: ['cli'], retryable: false, when: 'orch relay add: the name is taken' },
  relay_in_use: { where: ['cli'], retryable: false, when: 'orch relay remove: agents are enrolled through it' },
  // Secrets
  secret_missing: { where: ['run', 'cli'], retryable: false, when: 'the tenant has no secret of that name' },
  secrets_unavailable: { where: ['run', 'cli'], retryable: false, when: 'the process has no OS keychain, so no secrets' },
  secrets_key_missing: { where: ['run', 'cli'], retryable: false, when: "the keychain has no key for the tenant's secrets" },
  secrets_key_mismatch: { where: ['run', 'cli'], retryable: false, when: 'a secret was sealed with another key' },
  secret_corrupt: { where: ['run', 'cli'], retryable: false, when: 'a stored secret does not decrypt' },
  bad_secret_name: { where: ['cli'], retryable: false, when: 'orch secret set: the name is not valid' },
  bad_secret_value: { where: ['cli'], retryable: false, when: 'orch secret set: the value is empty, too long or holds NUL' },
  // The desktop identity, the keychain and payload keys
  keychain_unavailable: { where: ['cli', 'worker'], retryable: false, when: 'no OS keychain reachable' },
  keychain_locked: { where: ['worker'], retryable: false, when: "Orch's own keyring password is wrong" },
  relay_port_in_use: { where: ['cli'], retryable: false, when: "orch up: the local relay's port (ORCH_RELAY_PORT) is taken" },
  identity_missing: { where: ['cli'], retryable: false, when: 'no desktop identity yet' },
  identity_keys_missing: { where: ['cli', 'worker'], retryable: false, when: 'identity.json exists but the keychain has no keys for it' },
  identity_mismatch: { where: ['cli', 'worker'], retryable: false, when: "the keychain's keys do not match identity.json" },
  identity_corrupt: { where: ['cli', 'worker'], retryable: false, when: 'identity.json or a keychain entry is malformed' },
  payload_keys_missing: { where: ['cli', 'worker'], retryable: false, when: 'no payload keys yet' },
  payload_key_missing: { where: ['cli', 'worker'], retryable: false, when: 'a listed payload key is not in the keychain' },
  payload_key_corrupt: { where: ['cli', 'worker'], retryable: false, when: 'a payload key in the keychain is malformed' },
  payload_keys_corrupt: { where: ['cli'], retryable: false, when: 'orch keys import: an imported key is malformed' },
  payload_key_unknown: { where: ['cli', 'worker'], retryable: false, when: 'a payload is encrypted with a key this desktop lacks' },
  payload_corrupt: { where: ['cli', 'worker'], retryable: false, when: 'a payload does not decrypt' },
  payload_keys_import_refused: { where: ['cli'], retryable: false, when: 'orch keys import: not a valid export for this desktop' },
  // The audit log and the SIEM
  audit_entry_invalid: { where: ['run'], retryable: false, when: 'a value is larger than its audit row holds' },
  audit_row_malformed: { where: ['run', 'cli'], retryable: false, when: 'an audit row or checkpoint has a field of the wrong type or format' },
  audit_checkpoint_verifier_missing: { where: ['cli'], retryable: false, when: 'a signed head or checkpoint policy given without a trusted public key' },
  audit_checkpoint_signer_invalid: { where: ['cli', 'worker'], retryable: false, when: 'the checkpoint signer key is malformed or signs what its public key does not verify' },
  canonical_json_non_finite_number: { where: ['run', 'cli'], retryable: false, when: 'a value to hash or sign holds NaN or Infinity' },
  canonical_json_unsupported_type: { where: ['run', 'cli'], retryable: false, when: 'a value to hash or sign is not JSON (undefined, a function, a Date...)' },
  canonical_json_lone_surrogate: { where: ['run', 'cli'], retryable: false, when: 'a string to hash or sign holds a lone surrogate' },
  canonical_json_too_deep: { where: ['run', 'cli'], retryable: false, when: 'a value to hash or sign nests too deep (or is cyclic)' },
  audit_no_signer: { where: ['cli'], retryable: false, when: 'export or ship without the desktop identity' },
  audit_trusted_key_missing: { where: ['cli'], retryable: false, when: 'a log with checkpoints verified without a public key' },
  audit_chain_broken: { where: ['cli'], retryable: false, when: 'orch audit verify found the chain altered' },
  audit_head_unreadable: { where: ['cli'], retryable: false, when: "the tenant's signed head cannot be read from the keychain" },
  audit_head_unwritable: { where: ['cli', 'worker'], retryable: false, when: "the tenant's signed head cannot be stored in the keychain" },
  unreadable: { where: ['cli'], retryable: false, when: 'orch audit verify-export: the file is not an Orch export' },
  siem_rejected: { where: ['cli'], retryable: false, when: 'the SIEM refused a batch' },
  siem_unavailable: { where: ['cli'], retryable: false, when: 'the SIEM was unreachable after retries' },
  siem_insecure_http: { where: ['cli'], retryable: false, when: 'orch audit ship to http:// without --insecure-http' },
  ship_in_progress: { where: ['cli'], retryable: false, when: 'another orch audit ship holds the destination' },
  ship_cursor_mismatch: { where: ['cli'], retryable: false, when: 'the destination holds rows this chain no longer has' },
} as const satisfies Record<string, ErrorCodeInfo>;

/** Every stable error code (a key of {@link ERROR_CODES}). */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * An error with a stable code, thrown by Orch's non-workflow code (tenant store, CLI, config). Activities turn it
 * into a non-retryable ApplicationFailure of the same type; the CLI prints its message and exits 1. Its code is
 * one of {@link ERROR_CODES}, so the compiler refuses a code that is not in the table.
 *
 * @example throw new OrchError('unknown_tenant', `tenant "${name}" does not exist: create it with \`orch tenant create ${name}\``);
 */
export class OrchError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'OrchError';
  }
}
