/**
 * Envelopes for recipients that are not connected, held until they connect or their time to live runs out.
 * Bounded four ways: per recipient in count and bytes, and in total count and bytes across all recipients, so a
 * flood of logins with fresh keys cannot make the relay hold unbounded memory.
 */
export interface QueueConfig {
  /** Envelopes held per recipient. */
  maxCount: number;
  /** Bytes held per recipient. */
  maxBytes: number;
  /** How long an envelope waits before it is dropped, in milliseconds. */
  ttlMs: number;
  /** Bytes held across all recipients. */
  maxTotalBytes: number;
  /** Envelopes held across all recipients (default DEFAULT_QUEUE.maxTotalCount). */
  maxTotalCount?: number;
}

export const DEFAULT_QUEUE: Required<QueueConfig> = {
  maxCount: 1000,
  maxBytes: 16 * 1024 * 1024,
  ttlMs: 24 * 60 * 60 * 1000,
  maxTotalBytes: 256 * 1024 * 1024,
  maxTotalCount: 100_000,
};

export interface QueuedFrame {
  /** The whole ENVELOPE frame as received, forwarded unchanged. */
  frame: Buffer;
  msgId: string;
  expiresAt: number;
}

interface RecipientQueue {
  items: QueuedFrame[];
  bytes: number;
}

/** `queue_full`: this recipient's queue is full; `relay_full`: all queues together are. */
export type EnqueueResult = { ok: true } | { ok: false; reason: 'queue_full' | 'relay_full' };

export class OfflineQueue {
  private readonly queues = new Map<string, RecipientQueue>();
  private totalBytes = 0;
  private totalCount = 0;

  constructor(readonly config: QueueConfig) {}

  enqueue(recipient: string, item: QueuedFrame): EnqueueResult {
    const q = this.queues.get(recipient) ?? { items: [], bytes: 0 };
    const size = item.frame.length;
    // The newest is refused, not the oldest evicted: the sender hears about it (an ERROR frame) and can retry,
    // whereas an evicted envelope would vanish without anyone knowing.
    if (this.totalCount + 1 > (this.config.maxTotalCount ?? DEFAULT_QUEUE.maxTotalCount) || this.totalBytes + size > this.config.maxTotalBytes) return { ok: false, reason: 'relay_full' };
    if (q.items.length + 1 > this.config.maxCount || q.bytes + size > this.config.maxBytes) return { ok: false, reason: 'queue_full' };
    q.items.push(item);
    q.bytes += size;
    this.totalBytes += size;
    this.totalCount += 1;
    this.queues.set(recipient, q);
    return { ok: true };
  }

  /** Take everything queued for `recipient`, oldest first, split into still-live and expired. */
  drain(recipient: string, now: number): { live: QueuedFrame[]; expired: QueuedFrame[] } {
    const q = this.queues.get(recipient);
    if (!q) return { live: [], expired: [] };
    this.queues.delete(recipient);
    this.totalBytes -= q.bytes;
    this.totalCount -= q.items.length;
    const live: QueuedFrame[] = [];
    const expired: QueuedFrame[] = [];
    for (const item of q.items) (item.expiresAt <= now ? expired : live).push(item);
    return { live, expired };
  }

  /** Drop expired envelopes everywhere; returns them so the caller can count and log. */
  sweep(now: number): Array<{ recipient: string; item: QueuedFrame }> {
    const dropped: Array<{ recipient: string; item: QueuedFrame }> = [];
    for (const [recipient, q] of this.queues) {
      // Items are in arrival order and share one TTL, so the expired ones are a prefix.
      let n = 0;
      while (n < q.items.length && q.items[n]!.expiresAt <= now) n += 1;
      if (n === 0) continue;
      for (const item of q.items.splice(0, n)) {
        q.bytes -= item.frame.length;
        this.totalBytes -= item.frame.length;
        this.totalCount -= 1;
        dropped.push({ recipient, item });
      }
      if (q.items.length === 0) this.queues.delete(recipient);
    }
    return dropped;
  }

  countFor(recipient: string): number {
    return this.queues.get(recipient)?.items.length ?? 0;
  }

  get count(): number {
    return this.totalCount;
  }

  get bytes(): number {
    return this.totalBytes;
  }
}
