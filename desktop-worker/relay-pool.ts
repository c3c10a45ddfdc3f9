/**
 * The desktop's connections to its named relays (relay-registry.ts) and the command transport the worker of
 * `orch up` uses over all of them: each agent's envelopes go through the relay it is enrolled through
 * (agent-transport.ts's RelayCommandTransport, routed by a {@link RelayPool}), the pin is checked on every
 * connection, and a relay that is down fails only its own agents' commands with `relay_unavailable` (retried).
 * As each relay's admin key, the desktop has the relay admit the agents enrolled through it.
 */
import { auditAgentChange } from './agent-audit';
import { AgentRegistry, RelayState } from './agent-registry';
import { RelayCommandTransport, type RelayLink, type RelayRouter } from './agent-transport';
import { approverSource } from './approvers';
import type { DesktopIdentity } from './identity';
import { RelayRegistry, type RelayRecord } from './relay-registry';

/** One named relay's connection, as {@link RelayPool} reports it. */
export interface RelayConnectionStatus {
  name: string;
  url: string;
  connected: boolean;
  /** Why the first login failed for good (pin_mismatch, auth_failed, ...), if it did. */
  startError?: { code: string; message: string };
}

interface PooledLink {
  record: RelayRecord;
  client: RelayLink & { start(): Promise<void>; close(): Promise<void>; allow(keys: Buffer[]): Promise<number>; deny(keys: Buffer[]): Promise<number>; registerPermit(hash: Buffer, expiresAt: number): Promise<void> };
  /** Agent keys (hex) this relay has confirmed it admits, as allowed by us; the relay keeps them on disk. */
  admitted: Set<string>;
  /** Join permits (hash hex) this relay has confirmed; it keeps them on disk (protocol/RELAY.md "Join permits"). */
  permits: Set<string>;
  /** The relay refused our admin requests (not_admin: an --open relay, or we are not its admin): stop asking. */
  notAdmin?: boolean;
  /** Settles (never rejects) once the first login succeeded or failed for good. */
  started: Promise<void>;
  startError?: { code: string; message: string };
  failedAt?: number;
}

/** After a relay refused us for good (pin_mismatch, ...), try it again no sooner than this. */
const RETRY_FAILED_RELAY_MS = 30_000;

/**
 * The desktop's connections to its named relays: one RelayClient per relay (pin checked on every connection),
 * opened on first use or up front with {@link RelayPool.connect}, and reopened when `orch relay add` changed the
 * relay's URL or pin. A relay that is down only fails the commands of the agents enrolled through it.
 */
export class RelayPool implements RelayRouter {
  private readonly links = new Map<string, PooledLink>();
  private closed = false;

  constructor(
    private readonly opts: {
      relays: RelayRegistry;
      identity: Pick<DesktopIdentity, 'sign'>;
      onEnvelope: (wire: Buffer) => void;
      log?: (event: Record<string, unknown>) => void;
      /** How long the first use of a relay waits for its login before the command fails relay_unavailable (retried). */
      firstLoginWaitMs?: number;
      /**
       * The Ed25519 keys of the agents enrolled through a relay. As the relay's admin key, the desktop has the relay
       * admit them (ALLOW, protocol/RELAY.md) when it connects and before it sends to a newly enrolled agent, so an
       * agent enrolled while its relay was unreachable is admitted as soon as the relay is back.
       */
      agentKeys?: (relay: string) => Buffer[];
      /**
       * The join permits of the unused, unexpired invites through a relay (protocol/JOIN.md): registered with the relay
       * (PERMIT) when the desktop connects and whenever {@link RelayPool.sync} finds new ones.
       */
      invitePermits?: (relay: string) => Array<{ permitHash: Buffer; expiresAt: number }>;
      /**
       * The keys of agents removed (`orch agent remove`) that this relay has not confirmed denying: kept on disk, so a
       * removal made while no worker ran is denied when one connects. `deniesDone` records the relay's confirmation.
       */
      removedKeys?: (relay: string) => Buffer[];
      deniesDone?: (relay: string, keysHex: string[]) => void;
    },
  ) {}

  private syncTimer: NodeJS.Timeout | undefined;

  /**
   * Every `intervalMs`: connects to relays that have pending invites, registers new invites' permits and allows newly
   * enrolled agents (an invite made by \`orch agent invite\` in another process reaches the relay within one interval).
   */
  startSync(relaysWithInvites: () => string[], intervalMs: number = 3000): void {
    clearInterval(this.syncTimer);
    this.syncTimer = setInterval(() => {
      if (this.closed) return;
      void this.connect(relaysWithInvites(), 0).catch(() => undefined);
      for (const link of this.links.values()) void this.admit(link);
    }, intervalMs);
    this.syncTimer.unref();
  }

  async linkFor(name: string): Promise<RelayLink | undefined> {
    if (this.closed) return undefined;
    const record = this.opts.relays.get(name);
    if (!record) return undefined;
    let link = this.links.get(name);
    const stale = link && (link.record.url !== record.url || link.record.pin !== record.pin);
    const failedLongAgo = link?.failedAt !== undefined && Date.now() - link.failedAt > RETRY_FAILED_RELAY_MS;
    if (link && (stale || failedLongAgo)) {
      this.links.delete(name);
      void link.client.close().catch(() => undefined);
      link = undefined;
    }
    if (!link) {
      link = await this.open(record);
      await waitAtMost(link.started, this.opts.firstLoginWaitMs ?? 5000);
    }
    await this.admit(link);
    return link.client;
  }

  /** Registers the permits of this relay's pending invites that it has not confirmed yet. Never throws. */
  private async registerPermits(link: PooledLink): Promise<void> {
    if (!this.opts.invitePermits || link.notAdmin || !link.client.connected) return;
    for (const p of this.opts.invitePermits(link.record.name)) {
      const id = p.permitHash.toString('hex');
      if (link.permits.has(id)) continue;
      try {
        await link.client.registerPermit(p.permitHash, p.expiresAt);
        link.permits.add(id);
        this.opts.log?.({ event: 'relay_permit_registered', relay: link.record.name, permit: id.slice(0, 16) });
      } catch (err) {
        const relayCode = (err as { relayCode?: string }).relayCode;
        // permit_invalid for a hash we registered before (this relay keeps permits across restarts): nothing to do.
        if (relayCode === 'permit_invalid') link.permits.add(id);
        if (relayCode === 'not_admin') link.notAdmin = true;
        this.opts.log?.({ event: 'relay_permit_failed', relay: link.record.name, relayCode, message: (err as Error).message });
      }
    }
  }

  /**
   * Has the relay admit the agents enrolled through it that it has not confirmed yet, and register new permits; an
   * agent this worker had admitted and that is no longer enrolled (`orch agent remove`) is denied again. Never throws.
   */
  private async admit(link: PooledLink): Promise<void> {
    await this.registerPermits(link);
    if (!this.opts.agentKeys || link.notAdmin || !link.client.connected) return;
    const enrolled = this.opts.agentKeys(link.record.name);
    await this.denyRemoved(link, new Set(enrolled.map((k) => k.toString('hex'))));
    await this.denyRecorded(link);
    const pending = enrolled.filter((k) => !link.admitted.has(k.toString('hex')));
    if (!pending.length) return;
    try {
      await link.client.allow(pending);
      for (const k of pending) link.admitted.add(k.toString('hex'));
      this.opts.log?.({ event: 'relay_agents_admitted', relay: link.record.name, count: pending.length });
    } catch (err) {
      const relayCode = (err as { relayCode?: string }).relayCode;
      if (relayCode === 'not_admin') link.notAdmin = true;
      this.opts.log?.({ event: 'relay_admit_failed', relay: link.record.name, code: (err as { code?: string }).code, relayCode, message: (err as Error).message });
    }
  }

  private async denyRemoved(link: PooledLink, enrolled: Set<string>): Promise<void> {
    const removed = [...link.admitted].filter((k) => !enrolled.has(k));
    if (!removed.length) return;
    try {
      await link.client.deny(removed.map((k) => Buffer.from(k, 'hex')));
      for (const k of removed) link.admitted.delete(k);
      this.opts.log?.({ event: 'relay_agents_denied', relay: link.record.name, count: removed.length });
    } catch (err) {
      this.opts.log?.({ event: 'relay_deny_failed', relay: link.record.name, relayCode: (err as { relayCode?: string }).relayCode, message: (err as Error).message });
    }
  }

  /** Denies the removals recorded on disk (made by `orch agent remove`, perhaps while no worker ran). Never throws. */
  private async denyRecorded(link: PooledLink): Promise<void> {
    const keys = this.opts.removedKeys?.(link.record.name) ?? [];
    if (!keys.length) return;
    try {
      await link.client.deny(keys);
      const hex = keys.map((k) => k.toString('hex'));
      for (const k of hex) link.admitted.delete(k);
      this.opts.deniesDone?.(link.record.name, hex);
      this.opts.log?.({ event: 'relay_agents_denied', relay: link.record.name, count: keys.length, recorded: true });
    } catch (err) {
      this.opts.log?.({ event: 'relay_deny_failed', relay: link.record.name, relayCode: (err as { relayCode?: string }).relayCode, message: (err as Error).message });
    }
  }

  failureOf(name: string): { code: string; message: string } | undefined {
    return this.links.get(name)?.startError;
  }

  /** Connect to these relays now (those not configured are skipped) and wait up to `waitMs` for their logins. */
  async connect(names: string[], waitMs: number): Promise<void> {
    const opened: Promise<void>[] = [];
    for (const name of new Set(names)) {
      const record = this.opts.relays.get(name);
      if (!record || this.links.has(name)) continue;
      opened.push(this.open(record).then((l) => l.started));
    }
    await waitAtMost(Promise.all(opened).then(() => undefined), waitMs);
  }

  status(): RelayConnectionStatus[] {
    return [...this.links.values()].map((l) => ({ name: l.record.name, url: l.record.url, connected: l.client.connected, ...(l.startError ? { startError: l.startError } : {}) }));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.syncTimer);
    const links = [...this.links.values()];
    this.links.clear();
    await Promise.all(links.map((l) => l.client.close().catch(() => undefined)));
  }

  private async open(record: RelayRecord): Promise<PooledLink> {
    const { RelayClient } = await import('../protocol/relay-client');
    const existing = this.links.get(record.name);
    if (existing) return existing;
    const log = this.opts.log;
    const client = new RelayClient({
      url: record.url,
      pin: record.pin,
      identity: { publicKey: this.opts.identity.sign.publicKey, secretKey: this.opts.identity.sign.secretKey },
      onEnvelope: this.opts.onEnvelope,
      log: log ? (event) => log({ relay: record.name, ...event }) : undefined,
    });
    const link: PooledLink = { record, client, started: Promise.resolve(), admitted: new Set(), permits: new Set() };
    link.started = client.start().then(
      async () => {
        log?.({ event: 'relay_connected', relay: record.name, url: record.url });
        await this.admit(link);
      },
      (err: unknown) => {
        link.startError = { code: (err as { code?: string }).code ?? 'relay_unavailable', message: (err as Error).message?.split('\n')[0] ?? String(err) };
        link.failedAt = Date.now();
        log?.({ event: 'relay_start_failed', relay: record.name, ...link.startError });
      },
    );
    this.links.set(record.name, link);
    return link;
  }
}

function waitAtMost(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

export interface ConnectedRelays {
  transport: RelayCommandTransport;
  /** The relays connected so far (more are connected on first use), with their state. */
  relays(): RelayConnectionStatus[];
  close(): Promise<void>;
}

/**
 * The worker's command transport over every named relay: opens the registry, relay state and relay list of an
 * ORCH_HOME, connects to every configured relay that has agents (pin checked) and waits up to `waitMs` for their
 * logins; each command goes to its agent's relay. A relay that is down fails only its agents' commands, with
 * `relay_unavailable` (retried by the activity); relays added later are connected on first use.
 *
 * @example
 * const links = await connectRelayTransports({ home, identity });
 * await startOrchWorker(config, connectionOptions, namespace, store, links.transport);
 */
export async function connectRelayTransports(opts: {
  home: string;
  identity: Pick<DesktopIdentity, 'sign' | 'box'>;
  log?: (event: Record<string, unknown>) => void;
  waitMs?: number;
  resultGraceMs?: number;
  /** Ping the agents this often to keep last_seen and their pong fresh (see startHeartbeat); 0 for never. Default 30 s. */
  heartbeatMs?: number;
  /** Only these relays' agents are reached (default: every relay). */
  only?: string[];
  /** These relays are not connected to; their agents' commands fail relay_unavailable (`orch up --no-local-agent`). */
  skip?: string[];
  /** How often new invites are registered with their relays and new agents allowed (default 3 s). */
  inviteSyncMs?: number;
  /** Records the `enroll_agent` of a join in the invite's tenants' audit chains (default: auditAgentChange). */
  auditJoin?: (agent: string, details: Record<string, unknown>, tenants: string[]) => Promise<void>;
}): Promise<ConnectedRelays> {
  const registry = AgentRegistry.open(opts.home);
  const state = RelayState.open(opts.home);
  const relays = RelayRegistry.open(opts.home);
  const auditJoin =
    opts.auditJoin ??
    (async (agent: string, details: Record<string, unknown>, tenants: string[]) => {
      await auditAgentChange(opts.home, 'enroll_agent', agent, details, 'orch-worker (join)', tenants);
    });
  const transport = new RelayCommandTransport({
    identity: opts.identity,
    registry,
    state,
    log: opts.log,
    resultGraceMs: opts.resultGraceMs,
    onJoined: auditJoin,
    approvers: approverSource(opts.home),
  });
  const pool = new RelayPool({
    relays,
    identity: opts.identity,
    onEnvelope: (wire) => transport.handleEnvelope(wire),
    log: opts.log,
    agentKeys: (relay) => registry.listByRelay(relay).map((a) => a.signPublicKey),
    invitePermits: (relay) => registry.pendingInvites(relay).map((i) => ({ permitHash: i.permitHash, expiresAt: i.expiresAt })),
    removedKeys: (relay) => registry.pendingDenies(relay),
    deniesDone: (relay, keys) => registry.deniesDone(relay, keys),
  });
  const only = opts.only ? new Set(opts.only) : undefined;
  const skip = new Set(opts.skip ?? []);
  const reached = (name: string) => (!only || only.has(name)) && !skip.has(name);
  transport.route({
    linkFor: (name) => (reached(name) ? pool.linkFor(name) : Promise.resolve(undefined)),
    failureOf: (name) => (reached(name) ? pool.failureOf(name) : { code: 'relay_not_used', message: 'this worker does not connect to that relay (orch up --no-local-agent skips "local")' }),
  });
  // Relays with pending invites or with removed agents still to deny are connected to even when no agent uses them.
  const withWork = () =>
    [...new Set([...registry.listInvites().filter((i) => !i.usedAt && i.expiresAt > Date.now()).map((i) => i.relay), ...registry.relaysWithPendingDenies()])].filter(reached);
  const used = [...registry.list().map((a) => a.relay), ...withWork()].filter(reached);
  await pool.connect(used, opts.waitMs ?? 5000);
  pool.startSync(withWork, opts.inviteSyncMs);
  if (opts.heartbeatMs !== 0) transport.startHeartbeat(opts.heartbeatMs);
  return {
    transport,
    relays: () => pool.status(),
    async close() {
      transport.close();
      await pool.close();
      registry.close();
      state.close();
      relays.close();
    },
  };
}
