/**
 * What the Temporal UI shows of an Orch run: the one-line summaries on each activity and timer a run schedules
 * (Temporal user metadata), and the run's current details (Markdown: the node table, the cost against the cap, and
 * how to approve a waiting gate). Pure code, safe in workflow code: the output depends only on the arguments, so it
 * is the same on every replay.
 *
 * Summaries are written into history. They name nodes, agents, models and argv as the DAG wrote them (secrets stay
 * `${secrets.NAME}` references, resolved only inside the command activity), never outputs or prompts.
 */
import type { NodeStatus, PendingGate, RunStatus } from './shared';

/** Longest summary written on an activity or timer. */
export const MAX_SUMMARY_CHARS = 200;
/**
 * Longest current-details text. The UI (2.42) renders it in a frame whose address carries the whole text, so it
 * stays a few kilobytes.
 */
export const MAX_DETAILS_CHARS = 8_000;
const MAX_NODE_ROWS = 60;
const MAX_CELL_CHARS = 80;
const MAX_GATES_SHOWN = 5;
const MAX_RELEASES_SHOWN = 10;

/** One line of at most `max` characters: whitespace runs become one space, a longer text ends with `…`. */
export function oneLine(text: string, max = MAX_SUMMARY_CHARS): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** An argv as a person would type it: elements with spaces or quotes, and empty ones, in JSON quotes. */
export function argvText(argv: readonly string[]): string {
  return argv.map((a) => (a === '' || /[\s"'\\]/.test(a) ? JSON.stringify(a) : a)).join(' ');
}

/** A word for a POSIX shell: as is when plain, else in single quotes. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9._:@/=+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `24 h`, `30 min`, `90 s`: a gate's timeout as the UI shows it. */
export function durationText(seconds: number): string {
  if (seconds >= 3600 && seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** Summaries of what a run schedules, one per kind; Orch's own bookkeeping starts with `orch:`. */
export const summaries = {
  command: (node: string, agent: string, argv: readonly string[]) => oneLine(`${node}: ${argvText(argv)} on ${agent}`),
  claude: (node: string, model: string, maxTokens: number, attempt = 1) =>
    oneLine(`${node}: ${model}, max ${maxTokens} tokens${attempt > 1 ? `, attempt ${attempt}` : ''}`),
  claudeBackoff: (node: string, seconds: number, nextAttempt: number) => oneLine(`${node}: wait ${seconds} s before Claude attempt ${nextAttempt}`),
  gateTimer: (gate: string, timeoutSeconds: number) => oneLine(`approval gate "${gate}" (${durationText(timeoutSeconds)})`),
  audit: (action: string, subject: string) => oneLine(`orch: audit append (${action} ${subject})`),
  loadDag: (tenant: string, name: string) => oneLine(`orch: load DAG ${name} of tenant ${tenant}`),
  loadGateContext: (tenant: string) => oneLine(`orch: load approvers and agent tiers of tenant ${tenant}`),
  loadRunConfig: () => 'orch: load run config (model prices)',
  countTokens: (node: string, model: string) => oneLine(`orch: count input tokens (${node}, ${model})`),
};

/**
 * Plain text inside Markdown: `$` escaped (the UI's renderer reads `$...$` as math), `<` too (no HTML from a gate
 * message or a command's output), and backticks, which would open code.
 */
function text(t: string, max: number): string {
  return oneLine(t, max).replace(/[$<`]/g, (c) => `\\${c}`);
}

/** Text for a Markdown table cell: one line, no cell separator, bounded. */
function cell(t: string): string {
  return text(t, MAX_CELL_CHARS).replace(/\|/g, '\\|');
}

/** Inline code that cannot be closed early by a backtick in the text. */
function code(text: string, max = MAX_CELL_CHARS): string {
  return `\`${oneLine(text, max).replace(/`/g, "'")}\``;
}

/** Dollars as `0.05 USD`: a `$` sign would be read as math by the UI's Markdown renderer. */
function usd(n: number): string {
  return `${n.toFixed(6).replace(/0{1,4}$/, '')} USD`;
}

const STATE_MARK: Record<NodeStatus['state'], string> = {
  pending: '· pending',
  running: '▶ running',
  waiting_approval: '‖ waiting for approval',
  succeeded: '✓ succeeded',
  failed: '✗ failed',
  skipped: '– skipped',
  cancelled: '– cancelled',
};

function nodeNote(n: NodeStatus): string {
  if (n.error) return `${n.error.type}: ${n.error.message}`;
  const cost = n.costUsd !== undefined ? `${usd(n.costUsd)} ` : '';
  return `${cost}${n.summary ?? ''}`;
}

/** How to decide one waiting gate: what it releases, the `orch approve` line and, if it takes one, the signal JSON. */
function gateSection(workflowId: string, g: PendingGate): string[] {
  const lines = [`### Waiting for approval: gate ${code(g.gate)}`, '', text(g.message, 300), ''];
  lines.push(`Deadline ${g.deadline}. Approvals ${g.approvals.length} of ${g.needed}${g.approvers ? `, from: ${g.approvers.map((a) => code(a, 40)).join(', ')}` : ''}.`, '');
  if (g.released.length === 0) lines.push('It releases no command.', '');
  else {
    lines.push(`It releases (digest ${code(g.releaseDigest.slice(0, 16), 20)}…):`);
    for (const r of g.released.slice(0, MAX_RELEASES_SHOWN)) {
      lines.push(`- ${code(r.node, 40)} on ${code(r.agent, 40)} (${r.tier}${r.destructive ? ', destructive' : ''}): ${code(argvText(r.argv), 160)}`);
    }
    if (g.released.length > MAX_RELEASES_SHOWN) lines.push(`- … and ${g.released.length - MAX_RELEASES_SHOWN} more (orch status ${workflowId})`);
    lines.push('');
  }
  lines.push('Approve from a terminal (signed with your key; `--reject` to reject):', '', '```', `orch approve ${shellWord(workflowId)} ${shellWord(g.gate)} --comment "checked"`, '```', '');
  if (g.approvers) {
    lines.push('This gate names approvers, so it takes only signed decisions: a plain signal from *Send Signal* is refused.', '');
  } else {
    const signal = { gate: g.gate, decision: 'approve', approver: 'YOUR NAME', comment: 'checked' };
    lines.push('Or here: *More Actions*, *Send Signal*, signal `approve`, with this input (recorded as unverified; `"decision": "reject"` rejects):', '', '```', JSON.stringify(signal), '```', '');
  }
  return lines;
}

/** One node's row of the details' node table. */
export function nodeRow(n: NodeStatus): string {
  return `| ${cell(n.id)} | ${n.type} | ${STATE_MARK[n.state]} | ${cell(nodeNote(n))} |`;
}

/**
 * The run's current details as Markdown, for `setCurrentDetails`: a header, the cost, the node table, the failure
 * if any, and a section for each waiting gate. Bounded by {@link MAX_DETAILS_CHARS}. `rowOf` gives a node's row (a
 * caller that keeps the rows of unchanged nodes passes its cache; see nodeRow).
 */
export function renderRunDetails(workflowId: string, s: RunStatus, rowOf: (n: NodeStatus) => string = nodeRow): string {
  const state = s.state === 'waiting_approval' ? 'waiting for approval' : s.state;
  const lines = [
    `**${cell(s.dag)}** v${cell(s.dagVersion)} · tenant ${code(s.tenant, 100)} · **${state}**`,
    '',
    `Cost: ${usd(s.cost.spentUsd)} spent + ${usd(s.cost.reservedUsd)} reserved of the ${usd(s.cost.capUsd)} cap`,
    '',
  ];
  if (s.failure) lines.push(`Failed${s.failure.node ? ` at node ${code(s.failure.node, 100)}` : ''}: ${code(s.failure.type, 60)} ${cell(s.failure.message)}`, '');
  lines.push('| node | type | state | note |', '| --- | --- | --- | --- |');
  for (const n of s.nodes.slice(0, MAX_NODE_ROWS)) lines.push(rowOf(n));
  if (s.nodes.length > MAX_NODE_ROWS) lines.push(`| … | | | ${s.nodes.length - MAX_NODE_ROWS} more nodes: orch status ${cell(workflowId)} |`);
  lines.push('');
  for (const g of s.pendingGates.slice(0, MAX_GATES_SHOWN)) lines.push(...gateSection(workflowId, g));
  if (s.pendingGates.length > MAX_GATES_SHOWN) lines.push(`… and ${s.pendingGates.length - MAX_GATES_SHOWN} more waiting gates: orch status ${workflowId}`);
  // Last, and dispensable: the UI (2.42) sizes the frame it renders this in a line or two short of the text.
  lines.push('', `Updated on every node change; \`orch status ${shellWord(workflowId)}\` shows the same.`);
  const text = lines.join('\n').trimEnd();
  if (text.length <= MAX_DETAILS_CHARS) return text;
  // Cut at a line end, so no table row or code line is left half-written.
  const tail = '\n\n… (cut here: `orch status` shows the whole run)';
  const head = text.slice(0, MAX_DETAILS_CHARS - tail.length);
  return `${head.slice(0, Math.max(head.lastIndexOf('\n'), 0))}${tail}`;
}

/** What `orch run` knows of a run when it starts it: the static summary and details of the run in the UI. */
export interface RunStartInfo {
  dag: string;
  version: string;
  tenant: string;
  /** Bound params (DAG params are plain values: secrets are `${secrets.NAME}` references, never params). */
  params: Record<string, unknown>;
  costCapUsd: number;
  dagHash?: string;
  nodes: ReadonlyArray<{ id: string; type: string }>;
  workflowId: string;
  /** Who started it, as a label (the operator's user name and key prefix). */
  startedBy: string;
}

function paramText(params: Record<string, unknown>, max: number, valueChars: number): string {
  const names = Object.keys(params).sort();
  const shown = names.slice(0, max).map((k) => `${k}=${oneLine(String(params[k]), valueChars)}`);
  return shown.join(', ') + (names.length > max ? `, … (${names.length - max} more)` : '');
}

/** The run's static summary: DAG, version, tenant and the first params, one line. */
export function runStartSummary(r: RunStartInfo): string {
  const params = Object.keys(r.params).length ? ` · ${paramText(r.params, 4, 40)}` : '';
  return oneLine(`${r.dag} v${r.version} · tenant ${r.tenant}${params}`);
}

/** The run's static details (Markdown): what was started, by whom, with which params, and how to follow it. */
export function runStartDetails(r: RunStartInfo): string {
  const lines = [
    `**${cell(r.dag)}** v${cell(r.version)} for tenant ${code(r.tenant, 100)}, started by ${cell(r.startedBy)} with \`orch run\`.`,
    '',
    `Cost cap ${usd(r.costCapUsd)}${r.dagHash ? ` · DAG sha256 ${code(r.dagHash.slice(0, 16), 20)}…` : ''}`,
    '',
  ];
  const names = Object.keys(r.params).sort();
  if (names.length) {
    lines.push('| param | value |', '| --- | --- |');
    for (const k of names.slice(0, 20)) lines.push(`| ${cell(k)} | ${cell(String(r.params[k]))} |`);
    if (names.length > 20) lines.push(`| … | ${names.length - 20} more |`);
    lines.push('');
  }
  const shown = r.nodes.slice(0, 30).map((n) => `${code(n.id, 60)} (${n.type})`);
  lines.push(`Nodes: ${shown.join(', ')}${r.nodes.length > 30 ? `, … ${r.nodes.length - 30} more` : ''}`, '');
  lines.push(`Follow it: \`orch status ${shellWord(r.workflowId)}\`; the run's current details below show its nodes as they move.`);
  return lines.join('\n').slice(0, 4000);
}
