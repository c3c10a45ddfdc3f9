/**
 * The soak tests' counts and checks (test/soak), kept apart from the loops so test/unit/soak-checks.test.ts can
 * show each check fails on a bad result: a soak whose assertion cannot fail proves nothing.
 *
 * Counts: `npm test` runs every soak file in its short form; `npm run test:soak` (ORCH_SOAK=1) in its long form;
 * ORCH_SOAK_KILLS=N sets the count of either.
 */

/** How many kill rounds this run does: ORCH_SOAK_KILLS, else `long` under `npm run test:soak`, else `short`. */
export function soakRounds(short: number, long: number, env: NodeJS.ProcessEnv = process.env): number {
  const set = env.ORCH_SOAK_KILLS;
  if (set !== undefined && set !== '') {
    const n = Number(set);
    if (!Number.isInteger(n) || n < 1) throw new Error(`ORCH_SOAK_KILLS must be a whole number of at least 1, not "${set}"`);
    return n;
  }
  return env.ORCH_SOAK === '1' ? long : short;
}

/**
 * Audit appends killed with SIGKILL: every row the appender reported committed (`acked`, seq to hash) must be
 * in the database (`rows`) with that hash. Returns one line per problem; none when the rows are all there.
 */
export function acknowledgedRowProblems(rows: ReadonlyMap<number, string>, acked: ReadonlyMap<number, string>): string[] {
  const problems: string[] = [];
  for (const [seq, hash] of acked) {
    const held = rows.get(seq);
    if (held === undefined) problems.push(`acknowledged row ${seq} is missing`);
    else if (held !== hash) problems.push(`acknowledged row ${seq} changed: ${hash.slice(0, 12)}… became ${held.slice(0, 12)}…`);
  }
  return problems;
}

/** One audit row event as the SIEM stored it: its seq and its exact bytes (RFC 8785 text of the record). */
export interface ReceivedRow {
  seq: number;
  text: string;
}

export interface ShippedCopyReport {
  /** Distinct rows held. */
  rows: number;
  /** Seqs in 1..head that no event holds (a gap). */
  missing: number[];
  /** Seqs held by two events that differ (a duplicate that is not a re-send). */
  conflicting: number[];
  /**
   * Seqs held more often than 1 + the number of times the SIEM acknowledged them while the shipper's cursor
   * stayed behind them (the only re-send the design allows: the shipper died between the 2xx and its cursor save).
   */
  unexplained: number[];
  /** Seqs after the head (rows the chain does not have). */
  beyondHead: number[];
  /** Byte-identical re-sends, every one of them explained by a kill in that window. */
  resent: number;
}

/**
 * What a SIEM holds after shipments of a chain with head `head`, some killed: every row 1..head exactly once,
 * once duplicates are dropped by their bytes, and no duplicate beyond the batches that were acknowledged but not
 * yet recorded by the shipper (`unsaved`: seq to how many times that happened to it).
 */
export function checkShippedCopy(received: readonly ReceivedRow[], head: number, unsaved: ReadonlyMap<number, number>): ShippedCopyReport {
  const bySeq = new Map<number, string[]>();
  for (const r of received) {
    const list = bySeq.get(r.seq) ?? [];
    list.push(r.text);
    bySeq.set(r.seq, list);
  }
  const report: ShippedCopyReport = { rows: 0, missing: [], conflicting: [], unexplained: [], beyondHead: [], resent: 0 };
  for (let seq = 1; seq <= head; seq++) if (!bySeq.has(seq)) report.missing.push(seq);
  for (const [seq, texts] of [...bySeq].sort((a, b) => a[0] - b[0])) {
    report.rows++;
    if (seq < 1 || seq > head) report.beyondHead.push(seq);
    if (texts.some((t) => t !== texts[0])) report.conflicting.push(seq);
    if (texts.length > 1 + (unsaved.get(seq) ?? 0)) report.unexplained.push(seq);
    else report.resent += texts.length - 1;
  }
  return report;
}

/** The report as lines, none when the copy is whole: no gap, no conflicting or unexplained duplicate. */
export function shippedCopyProblems(report: ShippedCopyReport): string[] {
  const problems: string[] = [];
  const list = (seqs: number[]) => (seqs.length > 10 ? `${seqs.slice(0, 10).join(', ')}, … (${seqs.length})` : seqs.join(', '));
  if (report.missing.length) problems.push(`gap: no event holds row ${list(report.missing)}`);
  if (report.conflicting.length) problems.push(`different events hold row ${list(report.conflicting)}`);
  if (report.unexplained.length) problems.push(`duplicate not explained by a kill after the acknowledgement: row ${list(report.unexplained)}`);
  if (report.beyondHead.length) problems.push(`rows after the chain's head: ${list(report.beyondHead)}`);
  return problems;
}
