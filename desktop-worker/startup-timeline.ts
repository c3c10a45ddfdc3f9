/**
 * The start-up timeline of `orch up --timings` (and of `orch up` under ORCH_DEBUG): when each phase began and ended,
 * in ms from the moment `orch up` started, so a slow start names its slow phase. Phases may overlap (they run in
 * parallel); the table shows each one's own span.
 *
 * @example
 * const timeline = new StartupTimeline();
 * const cli = await timeline.phase('Temporal CLI', () => resolveTemporalCli());
 * timeline.lines(); // ['      0 ->    41 ms  Temporal CLI', ...]
 */
export interface TimelinePhase {
  name: string;
  /** ms from the timeline's origin. */
  start: number;
  end: number;
}

export class StartupTimeline {
  private readonly done: TimelinePhase[] = [];

  /** @param origin epoch ms of the start (the outer `orch up` when it re-ran itself inside a keyring), default now. */
  constructor(readonly origin: number = Date.now()) {}

  /** Times `fn` as the phase `name` (also when it throws). */
  async phase<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const start = Date.now();
    try {
      return await fn();
    } finally {
      this.record(name, start, Date.now());
    }
  }

  /** Records a phase measured elsewhere, from epoch ms `start` to `end`. */
  record(name: string, start: number, end: number): void {
    this.done.push({ name, start: start - this.origin, end: end - this.origin });
  }

  phases(): TimelinePhase[] {
    return [...this.done].sort((a, b) => a.start - b.start || a.end - b.end);
  }

  /** One line per phase, in the order they began, then the total to now. */
  lines(now: number = Date.now()): string[] {
    const ms = (n: number) => String(Math.round(n)).padStart(6);
    const rows = this.phases().map((p) => `  ${ms(p.start)} -> ${ms(p.end)} ms  ${p.name} (${Math.round(p.end - p.start)} ms)`);
    return ['start-up timeline (ms since `orch up` started):', ...rows, `  ${ms(0)} -> ${ms(now - this.origin)} ms  "Orch is up"`];
  }
}

/** Epoch ms to take as the start: a valid `upStartedAt` handed down by the outer `orch up`, else `fallback`. */
export function timelineOrigin(upStartedAt: string | undefined, fallback: number): number {
  const n = Number(upStartedAt);
  // Only a plausible earlier moment: not in the future, and not from before this minute's process tree.
  return Number.isFinite(n) && n > 0 && n <= fallback && fallback - n < 10 * 60_000 ? n : fallback;
}
