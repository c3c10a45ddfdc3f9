/**
 * Committed workflow histories (test/fixtures/histories): runs recorded by a released version, replayed by every
 * `npm test` against the current workflow code, so a change that would break a run already parked at a 24-hour
 * gate (or mid-retry, or waiting on a Claude call) fails the suite instead of a user's run.
 *
 * `npm run record:histories` runs the suites that produce each kind of run and then, in the replay step, keeps one
 * history of each kind below. Re-record only on purpose: when a change to workflow code is meant to be
 * incompatible (and is shipped behind `patched()` or a new workflow type), or to add a kind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;

export const FIXTURE_DIR = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'fixtures', 'histories');

/** The kinds of run that must each have a committed history, and how to recognise one. */
export const FIXTURE_KINDS: { kind: string; about: string; matches: (h: HistoryFacts) => boolean }[] = [
  {
    kind: 'dag-every-node-type',
    about: 'a DAG run that completed with a command, a Claude call and an approved gate',
    matches: (h) => h.status === 'completed' && h.activities.has('runCommand') && h.activities.has('callClaude') && h.signals.has('approve'),
  },
  { kind: 'gate-approved', about: 'a run whose gate was approved by signal, then completed', matches: (h) => h.status === 'completed' && h.signals.has('approve') },
  { kind: 'gate-rejected', about: 'a run that failed with approval_rejected', matches: (h) => h.status === 'failed' && h.failureTypes.has('approval_rejected') },
  { kind: 'gate-timed-out', about: 'a run that failed with approval_timeout (its timer fired)', matches: (h) => h.status === 'failed' && h.failureTypes.has('approval_timeout') && h.timersFired > 0 },
  { kind: 'cost-cap', about: 'a run that failed with cost_cap_exceeded', matches: (h) => h.status === 'failed' && h.failureTypes.has('cost_cap_exceeded') },
  { kind: 'command-retried', about: 'a sealed command whose activity ran more than one attempt', matches: (h) => h.activities.has('runCommand') && h.maxAttempt.get('runCommand')! > 1 },
  { kind: 'hand-written', about: 'a hand-written workflow on the developer API (restartWithReview)', matches: (h) => h.workflowType === 'restartWithReview' },
  {
    kind: 'claude-fast-path',
    about: 'a completed run whose Claude calls reserved their byte bound and appended their own audit rows (patch orch-claude-bound-and-activity-audit-v1: no token count, no claude_call append from the workflow)',
    matches: (h) =>
      h.status === 'completed' &&
      h.activities.has('callClaude') &&
      h.patches.has('orch-claude-bound-and-activity-audit-v1') &&
      !h.localActivities.has('countClaudeTokens'),
  },
  {
    kind: 'command-fast-path',
    about: 'a completed run whose command activity wrote its own command_sent and command_result rows, over more than one attempt (patch orch-command-activity-audit-v1)',
    matches: (h) => h.status === 'completed' && h.activities.has('runCommand') && h.maxAttempt.get('runCommand')! > 1 && h.patches.has('orch-command-activity-audit-v1'),
  },
  {
    kind: 'lean-node-path',
    about: 'a DAG run that completed with a command, a Claude call and an approved gate, on the node path with fewer promises (patch orch-lean-node-promises-v1)',
    matches: (h) =>
      h.status === 'completed' && h.activities.has('runCommand') && h.activities.has('callClaude') && h.signals.has('approve') && h.patches.has('orch-lean-node-promises-v1'),
  },
  {
    kind: 'single-parent-path',
    about: 'a DAG run that completed with a command, a Claude call and an approved gate, whose nodes with one parent await it directly (patch orch-lean-node-promises-v2)',
    matches: (h) =>
      h.status === 'completed' && h.activities.has('runCommand') && h.activities.has('callClaude') && h.signals.has('approve') && h.patches.has('orch-lean-node-promises-v2'),
  },
];

export interface HistoryFacts {
  workflowType: string;
  status: 'completed' | 'failed' | 'other';
  activities: Set<string>;
  maxAttempt: Map<string, number>;
  signals: Set<string>;
  timersFired: number;
  failureTypes: Set<string>;
  /** Patch ids the run decided (its `core_patch` markers). */
  patches: Set<string>;
  /** Types of the local activities it ran (its `core_local_activity` markers). */
  localActivities: Set<string>;
}

/** What a history shows, read from its events (no payload decoding needed). */
export function factsOf(history: History): HistoryFacts {
  const facts: HistoryFacts = {
    workflowType: '',
    status: 'other',
    activities: new Set(),
    maxAttempt: new Map(),
    signals: new Set(),
    timersFired: 0,
    failureTypes: new Set(),
    patches: new Set(),
    localActivities: new Set(),
  };
  // A marker's details as text (core writes them as JSON payloads, never through the payload codec).
  const markerText = (m: temporal.api.history.v1.IMarkerRecordedEventAttributes) =>
    Object.values(m.details ?? {})
      .flatMap((p) => p.payloads ?? [])
      .map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8'))
      .join('\n');
  const scheduled = new Map<string, string>();
  const collectTypes = (failure: unknown) => {
    const text = JSON.stringify(failure ?? {});
    for (const m of text.matchAll(/"type":"([a-z_]+)"/g)) facts.failureTypes.add(m[1]!);
  };
  for (const e of history.events ?? []) {
    const id = String(e.eventId ?? '');
    if (e.workflowExecutionStartedEventAttributes) facts.workflowType = e.workflowExecutionStartedEventAttributes.workflowType?.name ?? '';
    if (e.workflowExecutionCompletedEventAttributes) facts.status = 'completed';
    if (e.workflowExecutionFailedEventAttributes) {
      facts.status = 'failed';
      collectTypes(e.workflowExecutionFailedEventAttributes.failure);
    }
    const sched = e.activityTaskScheduledEventAttributes;
    if (sched) {
      const type = sched.activityType?.name ?? '';
      scheduled.set(id, type);
      facts.activities.add(type);
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const type = scheduled.get(String(started.scheduledEventId ?? '')) ?? '';
      facts.maxAttempt.set(type, Math.max(facts.maxAttempt.get(type) ?? 0, started.attempt ?? 1));
    }
    if (e.workflowExecutionSignaledEventAttributes) facts.signals.add(e.workflowExecutionSignaledEventAttributes.signalName ?? '');
    if (e.timerFiredEventAttributes) facts.timersFired++;
    const marker = e.markerRecordedEventAttributes;
    if (marker?.markerName === 'core_patch') for (const m of markerText(marker).matchAll(/"(orch-[a-z0-9-]+)"/g)) facts.patches.add(m[1]!);
    if (marker?.markerName === 'core_local_activity') for (const m of markerText(marker).matchAll(/"activity_type":"([A-Za-z]+)"/g)) facts.localActivities.add(m[1]!);
  }
  return facts;
}

export interface Fixture {
  kind: string;
  workflowId: string;
  history: History;
}

export function readFixtures(): Fixture[] {
  if (!fs.existsSync(FIXTURE_DIR)) return [];
  return fs
    .readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const raw = JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, f), 'utf8')) as { kind: string; workflowId: string; history: string };
      return { kind: raw.kind, workflowId: raw.workflowId, history: temporal.api.history.v1.History.decode(Buffer.from(raw.history, 'base64')) };
    });
}

export function writeFixture(kind: string, workflowId: string, history: History): string {
  fs.mkdirSync(FIXTURE_DIR, { recursive: true });
  const file = path.join(FIXTURE_DIR, `${kind}.json`);
  // The history as Temporal's own protobuf encoding (base64): exactly what the server sent, decoded the same way by
  // every SDK version; the JSON around it says what it is.
  const bytes = temporal.api.history.v1.History.encode(history).finish();
  const body = { kind, workflowId, recordedWith: process.env.npm_package_version ?? 'unknown', events: history.events?.length ?? 0, history: Buffer.from(bytes).toString('base64') };
  fs.writeFileSync(file, `${JSON.stringify(body, null, 1)}\n`);
  return file;
}
