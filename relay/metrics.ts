/** The relay's counters, rendered in the Prometheus text format (version 0.0.4) on /metrics. Counts only. */

export const DROP_REASONS = [
  'malformed_frame',
  'unknown_frame_type',
  'oversize',
  'malformed_envelope',
  'forged_from',
  'unknown_recipient',
  'queue_full',
  'ttl_expired',
  'recipient_backpressure',
  'not_authenticated',
  'already_authenticated',
  'too_many_connections',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export class RelayMetrics {
  connections = 0;
  authenticated = 0;
  forwarded = 0;
  queuedTotal = 0;
  deliveredFromQueue = 0;
  rateLimited = 0;
  replaced = 0;
  authOk = 0;
  readonly dropped = new Map<string, number>(DROP_REASONS.map((r) => [r, 0]));
  readonly authFailures = new Map<string, number>();

  drop(reason: DropReason): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }

  authFailure(reason: string): void {
    this.authFailures.set(reason, (this.authFailures.get(reason) ?? 0) + 1);
  }

  render(gauges: { queued: number; queuedBytes: number; seenKeys: number }): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[string, number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    const labelled = (label: string, m: Map<string, number>): Array<[string, number]> =>
      [...m].sort((a, b) => a[0].localeCompare(b[0])).map(([k, v]) => [`{${label}="${k}"}`, v]);
    metric('orch_relay_connections', 'gauge', 'Open WebSocket connections, authenticated or not.', [['', this.connections]]);
    metric('orch_relay_authenticated', 'gauge', 'Connections bound to a key.', [['', this.authenticated]]);
    metric('orch_relay_auth_ok_total', 'counter', 'Successful logins.', [['', this.authOk]]);
    metric('orch_relay_auth_failures_total', 'counter', 'Refused logins by reason.', labelled('reason', this.authFailures));
    metric('orch_relay_forwarded_total', 'counter', 'Envelopes handed to a connected recipient.', [['', this.forwarded]]);
    metric('orch_relay_queued_total', 'counter', 'Envelopes put in an offline queue.', [['', this.queuedTotal]]);
    metric('orch_relay_queue_delivered_total', 'counter', 'Queued envelopes delivered when their recipient connected.', [['', this.deliveredFromQueue]]);
    metric('orch_relay_queued', 'gauge', 'Envelopes waiting in offline queues.', [['', gauges.queued]]);
    metric('orch_relay_queued_bytes', 'gauge', 'Bytes waiting in offline queues.', [['', gauges.queuedBytes]]);
    metric('orch_relay_dropped_total', 'counter', 'Frames or envelopes refused or dropped, by reason.', labelled('reason', this.dropped));
    metric('orch_relay_rate_limited_total', 'counter', 'Envelopes refused by the per-key token bucket.', [['', this.rateLimited]]);
    metric('orch_relay_replaced_total', 'counter', 'Connections closed because the same key logged in again.', [['', this.replaced]]);
    metric('orch_relay_seen_keys', 'gauge', 'Keys that have logged in at least once (queues are kept for these).', [['', gauges.seenKeys]]);
    return lines.join('\n') + '\n';
  }
}
