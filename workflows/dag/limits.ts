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
