/**
 * Size and range limits for DAG sources and run parameters.
 *
 * The text, name, agent-name and path limits come from the seeds' input-validation table (task text 50,000
 * chars, workflow name 100, agent name 50, file path 4,096). The others are ours: they bound the work a
 * compile does inside workflow code and keep a DAG something a person can review before approving it.
 * Lengths count UTF-16 code units (`string.length`), the same unit the seeds' validator used.
 */

/** Prompt, system prompt, gate message, descriptions, string param values. Seeds: task text. */
export const MAX_TEXT_LENGTH = 50_000;
/** DAG name, node id, param names, approver names. Seeds: workflow name. */
export const MAX_NAME_LENGTH = 100;
/** Agent names. Seeds: agent name. */
export const MAX_AGENT_NAME_LENGTH = 50;
/** Working directory of a command. Seeds: file path. */
export const MAX_PATH_LENGTH = 4_096;
/** A version written as a string ("2024-06-01", "1.2.3"). */
export const MAX_VERSION_LENGTH = 100;

/** Nodes per DAG: far above any runbook a person reviews, low enough that compiling stays cheap. */
export const MAX_NODES = 500;
/** Parents per node. */
export const MAX_NEEDS_PER_NODE = 100;
/** Declared params per DAG. */
export const MAX_PARAMS = 100;
/** Values in one param's `enum`. */
export const MAX_ENUM_VALUES = 1_000;
/** Length of a param's `pattern` source: long regexes are unreviewable and costly to run. */
export const MAX_PATTERN_LENGTH = 1_000;
/** Approvers named on one gate. */
export const MAX_APPROVERS = 100;
/**
 * A gate's `min_approvals`: every approval's signed statement goes into the gate's audit row, which must fit the
 * row's 64 KiB of details (desktop-worker/audit-log.ts AUDIT_LIMITS.details).
 */
export const MAX_MIN_APPROVALS = 5;
/**
 * An approval's comment, checked when the signal or update arrives (refused there, never an audit failure later):
 * MAX_MIN_APPROVALS comments of up to 3 UTF-8 bytes per character, with their statements, fit one audit row.
 */
export const MAX_APPROVAL_COMMENT_LENGTH = 1_000;
/** The `approver` display label of an approve signal (the audit row's actor holds 256). */
export const MAX_APPROVER_LABEL_LENGTH = 100;

/** Elements of a command's argv (Linux allows far more; a runbook step that needs more is a script). */
export const MAX_ARGV_ELEMENTS = 256;
/** Length of one argv element; also long enough for a `sh -c` script of a page or so. */
export const MAX_ARGV_ELEMENT_LENGTH = 4_096;

/** Upper bound for a Claude node's `max_tokens` (the largest output any current model allows). */
export const MAX_MAX_TOKENS = 128_000;

/** Command timeout bounds in seconds: one second to one day. */
export const MIN_COMMAND_TIMEOUT_SECONDS = 1;
export const MAX_COMMAND_TIMEOUT_SECONDS = 86_400;
export const DEFAULT_COMMAND_TIMEOUT_SECONDS = 300;

/** Approval gate timeout bounds in seconds: one second to 30 days; the default is 24 hours (seeds). */
export const MIN_GATE_TIMEOUT_SECONDS = 1;
export const MAX_GATE_TIMEOUT_SECONDS = 30 * 86_400;
export const DEFAULT_GATE_TIMEOUT_SECONDS = 86_400;

/** `cost_cap_usd` must be > 0 and at most this: a cap that cannot bind is a typo, not a cap. */
export const MAX_COST_CAP_USD = 10_000;

/** Largest DAG file the CLI reads. */
export const MAX_SOURCE_BYTES = 1024 * 1024;
/** YAML aliases expanded per file: enough for sharing a few blocks, too few for a "billion laughs". */
export const MAX_YAML_ALIASES = 16;

/** Every name (DAG, node id, param, agent, approver): letters, digits, `_` and `-`. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]+$/;

/**
 * Names that match NAME_PATTERN but are refused: as object keys they reach `Object.prototype`, and code
 * that later indexes params or nodes by name with `obj[name]` would read or set the prototype.
 */
export const RESERVED_NAMES: readonly string[] = ['__proto__', 'constructor', 'prototype'];

/** True when `s` is a well-formed name of at most `max` characters. */
export function isValidName(s: string, max: number = MAX_NAME_LENGTH): boolean {
  return s.length > 0 && s.length <= max && NAME_PATTERN.test(s) && !RESERVED_NAMES.includes(s);
}

// ---------------------------------------------------------------------------------------------- audit row
// What one row of the tenant's audit log holds (desktop-worker/audit-log.ts refuses anything larger with
// `audit_entry_invalid`). Values that end up in a row are bounded below so that an oversize one is refused where
// the user wrote it (compile, `orch run`), never by the audit append at run time, which would fail the run late.

/** Bounds on one audit row, in UTF-16 code units except `details` (bytes of canonical JSON, UTF-8). */
export const AUDIT_ROW_LIMITS = {
  tenant: 128,
  actor: 256,
  action: 64,
  subject: 1024,
  idempotencyKey: 256,
  details: 64 * 1024,
} as const;

/** A Temporal run id (a UUID): part of every idempotency key a run writes. */
export const RUN_ID_LENGTH = 36;
/**
 * Room for the step part of a run's idempotency keys (`command/NODE/result`, `claude/NODE/2/cap`, `gate/NODE`,
 * ...): a node id of MAX_NAME_LENGTH plus 28 characters of step words and counters.
 */
export const MAX_AUDIT_STEP_LENGTH = MAX_NAME_LENGTH + 28;
/**
 * A run's workflow id (`orch run --id`): the idempotency key `WORKFLOW_ID/RUN_ID/STEP` must fit the row's 256,
 * so 256 - 36 - 128 - 2 = 90 characters.
 */
export const MAX_WORKFLOW_ID_LENGTH = AUDIT_ROW_LIMITS.idempotencyKey - RUN_ID_LENGTH - MAX_AUDIT_STEP_LENGTH - 2;
/**
 * A gate's message as the gate's audit row stores it: bytes of its JSON string (UTF-8; `"`, `\` and control
 * characters escaped). 16 KiB leaves the row room for the approvals' comments and statements.
 */
export const MAX_GATE_MESSAGE_AUDIT_BYTES = 16 * 1024;
/**
 * A command's argv as the `command_sent` row stores it (params rendered, `${secrets.NAME}` kept as written):
 * bytes of its JSON array. 32 KiB leaves the row room for the ids, the agent and an approval's digest.
 */
export const MAX_ARGV_AUDIT_BYTES = 32 * 1024;

/**
 * Bytes of `JSON.stringify(value)` in UTF-8, without Node's Buffer (this runs in workflow code too). For strings
 * and arrays of strings this equals the canonical JSON the audit row stores (RFC 8785 escapes the same way).
 *
 * @example jsonUtf8Bytes(['echo', 'é']) // 14
 */
export function jsonUtf8Bytes(value: unknown): number {
  const text = JSON.stringify(value) ?? '';
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** Why `id` cannot be a run's workflow id, or undefined when it can. */
export function workflowIdProblem(id: string): string | undefined {
  if (id.length === 0) return 'the workflow id is empty';
  if (id.length > MAX_WORKFLOW_ID_LENGTH) {
    return `the workflow id is ${id.length} characters, over the limit of ${MAX_WORKFLOW_ID_LENGTH} (the audit rows' idempotency keys hold it with the run id and the step)`;
  }
  return undefined;
}
