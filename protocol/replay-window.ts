/**
 * Anti-replay sliding window over a uint64 counter, after RFC 6479 ("IPsec Anti-Replay Algorithm without Bit
 * Shifting"): the bitmap is a ring of 32-bit blocks, one block more than the window needs, so sliding forward
 * only zeroes whole blocks and never shifts bits.
 *
 * Rules (the same as protocol/ENVELOPE.md, "Replay window"):
 * - `top` is the highest counter accepted so far (0 for a fresh window, with nothing accepted).
 * - A counter above `top` is new.
 * - A counter `c <= top` is inside the window when `top - c < size`; it is new iff its bit is clear.
 * - A counter with `top - c >= size` is `too_old`: we can no longer tell whether it was seen.
 *
 * {@link ReplayWindow.check} never mutates; {@link ReplayWindow.accept} is called only after the envelope has
 * authenticated and decrypted, and the caller persists {@link ReplayWindow.toJSON} before acting on the message.
 * One window per (sender, recipient) pair.
 */

export const UINT64_MAX = (1n << 64n) - 1n;
export const DEFAULT_WINDOW_SIZE = 1024;
const BLOCK_BITS = 32;
const BLOCK_SHIFT = 5n;
const BLOCK_MASK = 31n;
/** Large enough for any realistic reordering, small enough that the persisted state stays a few hundred bytes. */
const MAX_WINDOW_SIZE = 1 << 16;

export type WindowVerdict = 'ok' | 'replay' | 'too_old';

export type ReplayWindowErrorCode =
  /** `accept` was called for a counter `check` does not call `ok`. */
  | 'not_acceptable'
  /** A counter outside 0..2^64-1, or a window size that is not a positive multiple of 32 up to 65536. */
  | 'invalid_argument'
  /** `fromJSON` got something that is not a state written by `toJSON`. */
  | 'invalid_state';

export class ReplayWindowError extends Error {
  override readonly name = 'ReplayWindowError';
  constructor(
    readonly code: ReplayWindowErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The persisted form. `top` is a decimal string because JSON has no uint64. */
export interface ReplayWindowState {
  v: 1;
  size: number;
  top: string;
  /** The ring of blocks, each as 8 lowercase hex digits (big-endian), concatenated. */
  bitmap: string;
}

function requireCounter(counter: bigint): void {
  if (typeof counter !== 'bigint' || counter < 0n || counter > UINT64_MAX) {
    throw new ReplayWindowError('invalid_argument', 'counter must be a bigint in 0..2^64-1');
  }
}

/**
 * @example
 * const w = new ReplayWindow();
 * if (w.check(5n) === 'ok') { w.accept(5n); await persist(w.toJSON()); run(); }
 */
export class ReplayWindow {
  readonly size: number;
  private readonly blocks: Uint32Array;
  private top: bigint;

  constructor(size: number = DEFAULT_WINDOW_SIZE) {
    if (!Number.isInteger(size) || size <= 0 || size % BLOCK_BITS !== 0 || size > MAX_WINDOW_SIZE) {
      throw new ReplayWindowError('invalid_argument', `window size must be a multiple of 32 in 32..${MAX_WINDOW_SIZE}`);
    }
    this.size = size;
    // One spare block: the counters [top-size+1, top] span at most size/32 + 1 blocks, so none of them can share a
    // ring slot with another live counter.
    this.blocks = new Uint32Array(size / BLOCK_BITS + 1);
    this.top = 0n;
  }

  /** The highest counter accepted so far (0n for a fresh window). */
  get highest(): bigint {
    return this.top;
  }

  /** Would `counter` be accepted? Does not change the window. */
  check(counter: bigint): WindowVerdict {
    requireCounter(counter);
    if (counter > this.top) return 'ok';
    if (this.top - counter >= BigInt(this.size)) return 'too_old';
    return this.bit(counter) ? 'replay' : 'ok';
  }

  /** Record `counter` as seen, sliding the window forward if needed. Throws unless `check(counter)` is 'ok'. */
  accept(counter: bigint): void {
    const verdict = this.check(counter);
    if (verdict !== 'ok') {
      throw new ReplayWindowError('not_acceptable', `counter is ${verdict}`);
    }
    if (counter > this.top) {
      const n = BigInt(this.blocks.length);
      const fromBlock = this.top >> BLOCK_SHIFT;
      const toBlock = counter >> BLOCK_SHIFT;
      const steps = toBlock - fromBlock;
      if (steps >= n) {
        this.blocks.fill(0);
      } else {
        for (let b = fromBlock + 1n; b <= toBlock; b++) this.blocks[Number(b % n)] = 0;
      }
      this.top = counter;
    }
    const slot = this.slot(counter);
    this.blocks[slot] = (this.blocks[slot]! | (1 << Number(counter & BLOCK_MASK))) >>> 0;
  }

  toJSON(): ReplayWindowState {
    let bitmap = '';
    for (const block of this.blocks) bitmap += block.toString(16).padStart(8, '0');
    return { v: 1, size: this.size, top: this.top.toString(10), bitmap };
  }

  /** Restore a window persisted with {@link toJSON}. Throws `ReplayWindowError('invalid_state')` on anything else. */
  static fromJSON(state: unknown): ReplayWindow {
    const bad = (why: string): never => {
      throw new ReplayWindowError('invalid_state', `replay window state: ${why}`);
    };
    if (typeof state !== 'object' || state === null) return bad('not an object');
    const s = state as Record<string, unknown>;
    if (s.v !== 1) return bad('unknown version');
    if (typeof s.size !== 'number') return bad('size missing');
    if (typeof s.top !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(s.top)) return bad('top is not a decimal uint64');
    const top = BigInt(s.top);
    if (top > UINT64_MAX) return bad('top out of range');
    let window: ReplayWindow;
    try {
      window = new ReplayWindow(s.size);
    } catch {
      return bad('invalid size');
    }
    const hexLength = window.blocks.length * 8;
    if (typeof s.bitmap !== 'string' || s.bitmap.length !== hexLength || !/^[0-9a-f]*$/.test(s.bitmap)) {
      return bad('bitmap does not match size');
    }
    for (let i = 0; i < window.blocks.length; i++) {
      window.blocks[i] = Number.parseInt(s.bitmap.slice(i * 8, i * 8 + 8), 16);
    }
    window.top = top;
    return window;
  }

  private slot(counter: bigint): number {
    return Number((counter >> BLOCK_SHIFT) % BigInt(this.blocks.length));
  }

  private bit(counter: bigint): boolean {
    return ((this.blocks[this.slot(counter)]! >>> Number(counter & BLOCK_MASK)) & 1) === 1;
  }
}

// ------------------------------------------------------------------------------------------ rejections

/**
 * Why a receiver refused an envelope, in the order the checks run. Stable strings: they appear in logs, metrics
 * and tests; never rename one. Documented in protocol/ENVELOPE.md ("Rejection reasons").
 */
export const REJECT_REASONS = [
  'oversize',
  'malformed',
  'bad_version',
  'wrong_recipient',
  'unknown_sender',
  'bad_signature',
  'low_order_key',
  'decrypt_failed',
  'stale',
  'replay',
  'too_old_for_window',
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

/**
 * Counts rejections by reason, for `/metrics` and logs. An `onReject` hook lets the owner log each one (with
 * metadata only) without this module choosing a logger.
 *
 * @example
 * const rejects = new RejectCounters((reason) => log.warn({ reason }, 'envelope rejected'));
 * const r = openEnvelope(wire, args); if (!r.ok) rejects.record(r.reason);
 */
export class RejectCounters {
  private readonly counts = new Map<RejectReason, number>();

  constructor(private readonly onReject?: (reason: RejectReason, count: number) => void) {}

  /** Count one rejection; returns the new count for that reason. */
  record(reason: RejectReason): number {
    if (!(REJECT_REASONS as readonly string[]).includes(reason)) {
      throw new ReplayWindowError('invalid_argument', 'unknown reject reason');
    }
    const count = (this.counts.get(reason) ?? 0) + 1;
    this.counts.set(reason, count);
    this.onReject?.(reason, count);
    return count;
  }

  get(reason: RejectReason): number {
    return this.counts.get(reason) ?? 0;
  }

  get total(): number {
    let sum = 0;
    for (const n of this.counts.values()) sum += n;
    return sum;
  }

  /** Every reason with its count, zeros included, so a dashboard sees the full set. */
  snapshot(): Record<RejectReason, number> {
    const out = {} as Record<RejectReason, number>;
    for (const reason of REJECT_REASONS) out[reason] = this.get(reason);
    return out;
  }
}
