/** The relay's counters, rendered in the Prometheus text format (version 0.0.4) on /metrics. Counts only. */

export const DROP_REASONS = [
  'malformed_frame',
  'unknown_frame_type',
  'oversize',
  'malformed_envelope',
  'forged_from',
  'unknown_recipient',
  'queue_full',
  'relay_full',
  'ttl_expired',
  'recipient_backpressure',
  'join_restricted',
  'not_authenticated',
  'already_authenticated',
  'too_many_connections',
  'too_many_connections_from_ip',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export const ADMIN_REFUSALS = ['not_admin', 'allowlist_full', 'permit_invalid', 'permits_full', 'storage_failed'] as const;
export type AdminRefusal = (typeof ADMIN_REFUSALS)[number];
export const PERMIT_REFUSALS = ['permit_unknown', 'permit_expired', 'permit_reused'] as const;
export type PermitRefusal = (typeof PERMIT_REFUSALS)[number];
export const CLOSE_REASONS = ['idle_timeout', 'join_expired', 'not_reading', 'not_admitted'] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

export interface MetricGauges {
  queued: number;
  queuedBytes: number;
  seenKeys: number;
  bufferedBytes: number;
  allowedKeys: number;
  adminKeys: number;
  permits: number;
  joinSessions: number;
  openMode: boolean;
}

export class RelayMetrics {
  connections = 0;
  authenticated = 0;
  forwarded = 0;
  queuedTotal = 0;
  deliveredFromQueue = 0;
  rateLimited = 0;
  replaced = 0;
  authOk = 0;
  joinLogins = 0;
  readonly dropped = new Map<string, number>(DROP_REASONS.map((r) => [r, 0]));
  readonly authFailures = new Map<string, number>();
  readonly adminOk = new Map<string, number>([['allow', 0], ['deny', 0], ['permit', 0]]);
  readonly adminRefused = new Map<string, number>(ADMIN_REFUSALS.map((r) => [r, 0]));
  readonly permitRefused = new Map<string, number>(PERMIT_REFUSALS.map((r) => [r, 0]));
  readonly closed = new Map<string, number>(CLOSE_REASONS.map((r) => [r, 0]));

  drop(reason: DropReason): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }

  authFailure(reason: string): void {
    this.authFailures.set(reason, (this.authFailures.get(reason) ?? 0) + 1);
  }

  count(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  render(g: MetricGauges): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[string, number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    const labelled = (label: string, m: Map<string, number>): Array<[string, number]> =>
      [...m].sort((a, b) => a[0].localeCompare(b[0])).map(([k, v]) => [`{${label}="${k}"}`, v]);
    metric('orch_relay_connections', 'gauge', 'Open WebSocket connections, authenticated or not.', [['', this.connections]]);
    metric('orch_relay_authenticated', 'gauge', 'Connections bound to a key.', [['', this.authenticated]]);
    metric('orch_relay_join_sessions', 'gauge', 'Connections logged in with a join permit, not (yet) admitted.', [['', g.joinSessions]]);
    metric('orch_relay_auth_ok_total', 'counter', 'Successful logins.', [['', this.authOk]]);
    metric('orch_relay_join_logins_total', 'counter', 'Logins with a join permit (each used one permit).', [['', this.joinLogins]]);
    metric('orch_relay_auth_failures_total', 'counter', 'Refused logins by reason.', labelled('reason', this.authFailures));
    metric('orch_relay_permit_refused_total', 'counter', 'AUTH_JOIN frames whose permit was refused, by reason.', labelled('reason', this.permitRefused));
    metric('orch_relay_admin_ok_total', 'counter', 'ALLOW, DENY and PERMIT requests applied, by operation.', labelled('op', this.adminOk));
    metric('orch_relay_admin_refused_total', 'counter', 'ALLOW, DENY and PERMIT requests refused, by reason.', labelled('reason', this.adminRefused));
    metric('orch_relay_closed_total', 'counter', 'Connections closed by the relay after login, by reason.', labelled('reason', this.closed));
    metric('orch_relay_forwarded_total', 'counter', 'Envelopes handed to a connected recipient.', [['', this.forwarded]]);
    metric('orch_relay_queued_total', 'counter', 'Envelopes put in an offline queue.', [['', this.queuedTotal]]);
    metric('orch_relay_queue_delivered_total', 'counter', 'Queued envelopes delivered when their recipient connected.', [['', this.deliveredFromQueue]]);
    metric('orch_relay_queued', 'gauge', 'Envelopes waiting in offline queues.', [['', g.queued]]);
    metric('orch_relay_queued_bytes', 'gauge', 'Bytes waiting in offline queues.', [['', g.queuedBytes]]);
    metric('orch_relay_buffered_bytes', 'gauge', 'Bytes handed to sockets and not yet written to the network, all connections.', [['', g.bufferedBytes]]);
    metric('orch_relay_dropped_total', 'counter', 'Frames or envelopes refused or dropped, by reason.', labelled('reason', this.dropped));
    metric('orch_relay_rate_limited_total', 'counter', 'Envelopes refused by the per-key token bucket.', [['', this.rateLimited]]);
    metric('orch_relay_replaced_total', 'counter', 'Connections closed because the same key logged in again.', [['', this.replaced]]);
    metric('orch_relay_seen_keys', 'gauge', 'Keys that have logged in at least once (queues are kept for these).', [['', g.seenKeys]]);
    metric('orch_relay_admin_keys', 'gauge', 'Admin keys given at start.', [['', g.adminKeys]]);
    metric('orch_relay_allowed_keys', 'gauge', 'Keys admitted by an admin (ALLOW).', [['', g.allowedKeys]]);
    metric('orch_relay_permits', 'gauge', 'Join permits held (unused, or used or expired within the last hour).', [['', g.permits]]);
    metric('orch_relay_open_mode', 'gauge', '1 when any key may log in (--open), 0 when only admitted keys may.', [['', g.openMode ? 1 : 0]]);
    metric('process_resident_memory_bytes', 'gauge', 'Resident memory of the relay process.', [['', process.memoryUsage.rss()]]);
    return lines.join('\n') + '\n';
  }
}
