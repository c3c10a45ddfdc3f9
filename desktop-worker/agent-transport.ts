/**
 * The engine's CommandTransport over the sealed relay: a command node's request is sealed to the enrolled agent,
 * sent through the relay, and the agent's sealed result comes back the same way.
 *
 * Sending: look the agent up in the registry (its pinned keys), take the next counter for (us, agent) from
 * relay-state.sqlite (committed before anything leaves), seal a CommandMessage, hand it to the relay client.
 * Receiving: every envelope the relay delivers goes through {@link RelayCommandTransport.handleEnvelope}: the
 * sender must be an enrolled agent, and openEnvelope must pass with that agent's pinned key and the persisted
 * replay window; the moved window is committed before the result is looked at. Only then does a result settle
 * the waiting command, and only if it comes from the agent the command went to.
 *
 * Failures the workflow sees (types, see workflows/session.ts commandNode):
 * - `agent_unavailable` (non-retryable): no agent of that name is enrolled;
 * - `command_not_allowed` (non-retryable): the agent refused it (allowlist, tier, dangerous pattern); the reason
 *   is the agent's;
 * - `indeterminate` (non-retryable): the agent had started it and died; an operator decides;
 * - `relay_unavailable`, `agent_no_answer` (retryable): nothing known came back. The retried activity sends the
 *   same command id again, and the agent answers from its ledger instead of running it twice.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { CommandTransport } from '../activities';
import type { CommandRequest, CommandResult } from '../activities/types';
import {
  decodeMessage,
  encodeMessage,
  type AgentMessage,
  type ApproversResultMessage,
  type CommandMessage,
  type PongMessage,
  type ResultMessage,
} from '../protocol/agent-messages';
import { keyToHex, newMsgId, openEnvelope, parseHeaderUnverified, sealEnvelope, type OpenResult } from '../protocol/envelope';
import { decodeJoinRequest, encodeJoinMessage, joinSecretHash, pinBytes, verifyJoinProof, type JoinResultMessage } from '../protocol/join';
import { randomBytes, zeroize } from '../protocol/primitives';
import { RejectCounters, ReplayWindow, type RejectReason } from '../protocol/replay-window';
import { diagnosticLogger, eventSink } from '../infra/log';
import { ErrorType, OrchError, type ErrorCode } from '../protocol/errors';
import { AgentRegistry, RelayState, servesTenant, type AgentRecord } from './agent-registry';
import { approverSource } from './approvers';
import { fingerprintOf } from './identity';
import type { DesktopIdentity } from './identity';

/** What the transport needs from a relay connection; protocol/relay-client.ts's RelayClient has it. */
export interface RelayLink {
  /** Rejects (e.g. RelayClientError('relay_unavailable')) when the envelope could not be handed to the relay. */
  send(wire: Buffer): Promise<void>;
  readonly connected: boolean;
}

/**
 * Which relay connection reaches an agent: each agent is enrolled through one named relay (relay-registry.ts).
 * relay-pool.ts's RelayPool is the real one; a transport without a router sends everything through its one attached link.
 */
export interface RelayRouter {
  /** The link to the named relay (connecting it on first use), or undefined when no relay of that name is configured. */
  linkFor(relay: string): Promise<RelayLink | undefined>;
  /** Why the named relay cannot be logged in to for good (pin_mismatch, auth_failed, ...), if that is known. */
  failureOf?(relay: string): { code: string; message: string } | undefined;
}

export const TransportFailure = {
  /** The relay connection is down: nothing was sent. Retryable. */
  relayUnavailable: ErrorType.relayUnavailable,
  /** The envelope went out but no accepted result came back in time. Retryable (the agent dedups by command id). */
  agentNoAnswer: ErrorType.agentNoAnswer,
  /** The agent refused the command. Non-retryable. */
  commandNotAllowed: ErrorType.commandNotAllowed,
  /** The agent started the command earlier and died; it will not run it again. Non-retryable. */
  indeterminate: ErrorType.indeterminate,
} as const satisfies Record<string, ErrorCode>;

/** Counted envelopes that authenticated but carried nothing we act on (per kind of problem). */
export interface TransportStats {
  accepted: number;
  /** Authenticated, but the body is not a valid message or its kind differs from the header's type. */
  badMessage: number;
  /** A valid message of a kind agents do not send to the desktop (command, ping). */
  unexpectedKind: number;
  /** A result or pong nobody is waiting for (late, or for an attempt that already gave up). */
  unmatched: number;
}

export interface RelayCommandTransportOptions {
  identity: Pick<DesktopIdentity, 'sign' | 'box'>;
  registry: AgentRegistry;
  state: RelayState;
  /** Can be attached later with {@link RelayCommandTransport.attach} (the relay client needs our onEnvelope first). */
  relay?: RelayLink;
  /** Routes each agent's envelopes to its own relay; set later with {@link RelayCommandTransport.route}. */
  router?: RelayRouter;
  /** Structured events, metadata only (no bodies, no argv, no output). */
  log?: (event: Record<string, unknown>) => void;
  /**
   * Called after a join request was accepted and the agent pinned (protocol/JOIN.md), before the join_result is
   * sent: records `enroll_agent` in the invite's tenants' audit chains. A failure is logged; the join stands.
   */
  onJoined?: (agent: string, details: Record<string, unknown>, tenants: string[]) => Promise<void>;
  now?: () => number;
  /** Added to the command's own timeout while waiting for its result (the agent's kill and the trip back). */
  resultGraceMs?: number;
  maxSkewMs?: number;
  /**
   * The desktop's approver keys per tenant (desktop-worker/approvers.ts). With it, the transport makes sure each
   * agent holds its tenants' current list (protocol/APPROVAL.md): before a command is sent for a tenant whose list
   * the agent has not acknowledged at its current version, and on every heartbeat.
   */
  approvers?: ApproverSource;
}

/** Where the transport reads the approver keys it sends to agents. */
export interface ApproverSource {
  /** Every tenant of the desktop (for agents that serve every tenant). */
  tenants(): string[];
  /** The tenant's approver keys and their version (0 before any `orch approver add`). */
  keySet(tenant: string): { version: number; keys: string[] };
}

/** How long a command waits for the agent to acknowledge a newer approver list before it is sent anyway. */
export const APPROVERS_ACK_MS = 10_000;

interface ResultWaiter {
  agentKey: string;
  resolve: (m: ResultMessage) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

interface PongWaiter {
  agentKey: string;
  resolve: (m: PongMessage | undefined) => void;
  timer: NodeJS.Timeout;
}

export const DEFAULT_RESULT_GRACE_MS = 30_000;
/** How often a connected desktop pings its agents (see startHeartbeat). */
export const DEFAULT_HEARTBEAT_MS = 30_000;
/** `orch agent list` calls an agent online when it was heard from within this long (three missed heartbeats). */
export const ONLINE_WINDOW_MS = 3 * DEFAULT_HEARTBEAT_MS;

const JOIN_HINTS: Record<string, string> = {
  bad_request: 'not a valid join_request, or its signKey is not the sender: a buggy or hostile client',
  unknown_invite: 'no invite has that secret: forged, or the invite was made by another desktop',
  bad_proof: 'the proof does not match the keys, this desktop or the relay: forged or tampered',
  replay: 'the same join request again (a replay by the relay or network); harmless',
  reused: 'the invite was already used; the operator must make a new one (orch agent invite)',
  expired: 'the invite expired; the operator must make a new one (orch agent invite)',
  key_in_use: 'that key is already enrolled',
  name_taken: 'an agent of the invite\'s name was enrolled meanwhile',
  stale: 'the request is more than 5 minutes old or ahead: a delayed replay, or the server clock is off',
};

function short(keyHex: string): string {
  return keyHex.slice(0, 16);
}

/**
 * @example
 * const transport = new RelayCommandTransport({ identity, registry, state });
 * const relay = new RelayClient({ url, pin, identity: identity.sign, onEnvelope: (w) => transport.handleEnvelope(w) });
 * transport.attach(relay);
 * await relay.start();
 * const result = await transport.run({ tenant, agent: 'web-1', argv: ['uptime'], timeoutSeconds: 30, commandId });
 */
export class RelayCommandTransport implements CommandTransport {
  readonly rejects: RejectCounters;
  readonly stats: TransportStats = { accepted: 0, badMessage: 0, unexpectedKind: 0, unmatched: 0 };
  private relay: RelayLink | undefined;
  private router: RelayRouter | undefined;
  private readonly localKey: string;
  private readonly results = new Map<string, ResultWaiter[]>();
  private readonly pongs = new Map<string, PongWaiter>();
  private readonly log: (event: Record<string, unknown>) => void;
  private readonly now: () => number;
  private closed = false;
  private heartbeat: NodeJS.Timeout | undefined;
  /** `agentKey/tenant` -> the approver list version the agent acknowledged (or refused as stale: it holds newer). */
  private readonly approversAcked = new Map<string, number>();
  /** `agentKey/tenant/version` -> callers waiting for that approvers_result. */
  private readonly approversWaiters = new Map<string, Array<(m: ApproversResultMessage | undefined) => void>>();
  /** `from/msgId` of join requests already handled (JOIN.md step 5), bounded. */
  private readonly joinSeen = new Set<string>();

  constructor(private readonly options: RelayCommandTransportOptions) {
    this.relay = options.relay;
    this.router = options.router;
    this.localKey = keyToHex(options.identity.sign.publicKey);
    // Without a log of its own (an `orch` command, a test), refusals still go somewhere: the CLI's diagnostics on stderr.
    this.log = options.log ?? eventSink(diagnosticLogger('relay-transport'));
    this.now = options.now ?? Date.now;
    this.rejects = new RejectCounters();
  }

  attach(relay: RelayLink): void {
    this.relay = relay;
  }

  /** Send each agent's envelopes through the relay it is enrolled through, instead of one attached link. */
  route(router: RelayRouter): void {
    this.router = router;
  }

  async run(request: CommandRequest): Promise<CommandResult> {
    const agent = this.agentOrFail(request.agent);
    // The DAG was checked at validate and register time; the agent may have left the tenant since.
    if (!servesTenant(agent, request.tenant)) {
      throw new OrchError(
        ErrorType.agentNotInTenant,
        `agent "${agent.name}" does not serve tenant "${request.tenant}" (it serves ${agent.tenants.join(', ')}), so the command was not sent; add the tenant with \`orch agent tenants ${agent.name} --tenant ...\` or use one of the tenant's agents`,
        { agent: agent.name, tenant: request.tenant },
      );
    }
    const agentKey = keyToHex(agent.signPublicKey);
    const message: CommandMessage = { kind: 'command', commandId: request.commandId, argv: request.argv, timeoutSeconds: request.timeoutSeconds, tenant: request.tenant };
    if (request.cwd !== undefined) message.cwd = request.cwd;
    // The gate's signed approvals travel sealed with the command; the agent checks them itself (APPROVAL.md).
    // A gate without signed approvals (no `approvers:`, decided by a plain signal) has nothing for the agent to check:
    // the command goes without an attestation, and a standard or infrastructure agent that requires one refuses it.
    if (request.approval !== undefined && request.approval.approvals.length > 0) message.approval = request.approval;
    await this.ensureApprovers(agent, request.tenant);
    const waitMs = request.timeoutSeconds * 1000 + (this.options.resultGraceMs ?? DEFAULT_RESULT_GRACE_MS);
    const answer = this.waitForResult(request.commandId, agentKey, waitMs, agent.name);
    try {
      await this.send(agent, message);
    } catch (err) {
      this.dropResultWaiter(request.commandId, answer.waiter);
      throw err;
    }
    const result = await answer.promise;
    switch (result.status) {
      case 'finished':
        return {
          exitCode: result.exitCode ?? -1,
          stdout: result.stdout ?? '',
          stderr: result.stderr ?? '',
          truncated: result.truncated ?? false,
          durationMs: result.durationMs ?? 0,
        };
      case 'refused':
        throw new OrchError(TransportFailure.commandNotAllowed, `agent "${agent.name}" refused the command: ${result.reason ?? 'no reason given'}`, {
          agent: agent.name,
          reason: result.reason,
        });
      case 'indeterminate':
        throw new OrchError(
          TransportFailure.indeterminate,
          `agent "${agent.name}" had started this command before and cannot tell how it ended (${result.reason ?? 'no reason given'}); it will not run it again: check the server and decide`,
          { agent: agent.name, reason: result.reason },
        );
    }
  }

  /** Ask an agent to answer; undefined when no authenticated pong arrives within `timeoutMs` (or the relay is down). */
  async ping(agentName: string, timeoutMs: number): Promise<PongMessage | undefined> {
    const agent = this.agentOrFail(agentName);
    const agentKey = keyToHex(agent.signPublicKey);
    const nonce = randomBytes(16).toString('hex');
    const pong = new Promise<PongMessage | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.pongs.delete(nonce);
        resolve(undefined);
      }, timeoutMs);
      this.pongs.set(nonce, { agentKey, resolve, timer });
    });
    try {
      await this.send(agent, { kind: 'ping', nonce });
    } catch {
      const waiter = this.pongs.get(nonce);
      if (waiter) {
        clearTimeout(waiter.timer);
        this.pongs.delete(nonce);
      }
      return undefined;
    }
    return pong;
  }

  /**
   * Ping every enrolled agent now and then every `intervalMs`, so `last_seen` in agents.sqlite stays fresh and
   * `orch agent list` (another process, which must not open a second relay session with our key: the relay
   * keeps one connection per key and closes the older) can tell who is online from it.
   */
  startHeartbeat(intervalMs: number = DEFAULT_HEARTBEAT_MS): void {
    clearInterval(this.heartbeat);
    const beat = () => {
      // With one attached link, nothing to do while it is down; with a router, each ping goes to its own relay.
      if (!this.router && !this.relay?.connected) return;
      for (const agent of this.options.registry.list()) void this.ping(agent.name, Math.min(intervalMs, 10_000)).catch(() => undefined);
    };
    const all = () => {
      beat();
      void this.syncApprovers().catch(() => undefined);
    };
    all();
    this.heartbeat = setInterval(all, intervalMs);
    this.heartbeat.unref();
  }

  /**
   * Every envelope the relay delivers. Never throws: anything not accepted is counted (rejects / stats) and
   * logged with metadata only.
   */
  handleEnvelope(wire: Buffer): void {
    const header = parseHeaderUnverified(wire);
    if (!header.ok) {
      this.reject(header.reason, wire.length);
      return;
    }
    const agent = this.options.registry.getBySignKey(header.header.from);
    if (!agent) {
      // The one kind of envelope a key we do not know may send (protocol/JOIN.md).
      if (header.header.type === 'join_request') {
        void this.handleJoin(wire, header.header.from).catch((err: unknown) => this.log({ event: 'join_failed', error: (err as Error).message }));
        return;
      }
      this.reject('unknown_sender', wire.length, header.header);
      return;
    }
    const agentKey = header.header.from;
    let opened: OpenResult;
    try {
      opened = this.options.state.withWindow(this.localKey, agentKey, (window) => {
        const r = openEnvelope(wire, {
          recipientSignPublicKey: this.options.identity.sign.publicKey,
          recipientBox: this.options.identity.box,
          senderSignPublicKey: agent.signPublicKey,
          now: this.now(),
          maxSkewMs: this.options.maxSkewMs,
          window,
        });
        return { accept: r.ok, value: r };
      });
    } catch (err) {
      // The state database failed: the window could not be persisted, so the message must not be acted on.
      this.log({ level: 'error', event: 'relay_state_error', agent: agent.name, error: (err as Error).message });
      return;
    }
    if (!opened.ok) {
      this.reject(opened.reason, wire.length, header.header, agent.name);
      if (header.header.type === 'join_request') this.refuseJoin(opened.reason === 'replay' ? 'replay' : opened.reason, agentKey);
      return;
    }
    if (opened.header.type === 'join_request') {
      // An enrolled key asking to join again (a second request of a join session, or a client run twice).
      this.refuseJoin('key_in_use', agentKey);
      return;
    }
    this.stats.accepted++;
    try {
      this.options.registry.touch(agentKey);
    } catch {
      // last_seen is informational; a busy database must not drop an authenticated result.
    }
    const message = decodeMessage(opened.body);
    if (!message || message.kind !== opened.header.type) {
      this.stats.badMessage++;
      this.log({ level: 'warn', event: 'bad_message', agent: agent.name, type: opened.header.type });
      return;
    }
    if (message.kind === 'result') return this.settleResult(agentKey, message);
    if (message.kind === 'approvers_result') return this.settleApprovers(agentKey, message);
    if (message.kind === 'pong') {
      try {
        this.options.registry.recordPong(agentKey, message);
      } catch {
        // Informational, like last_seen.
      }
      return this.settlePong(agentKey, message);
    }
    this.stats.unexpectedKind++;
    this.log({ level: 'warn', event: 'unexpected_message', agent: agent.name, kind: message.kind });
  }

  /**
   * An envelope not accepted: counted, and logged with metadata only (the reason, the sender's key fingerprint as the
   * unverified header claims it, the type, the size); never its body, which was not opened or is not trusted.
   */
  private reject(reason: RejectReason, bytes: number, header?: { from: string; type: string; msgId: string }, agent?: string): void {
    const count = this.rejects.record(reason);
    this.log({ level: 'warn', event: 'envelope_rejected', reason, count, bytes, ...(header ? { from: short(header.from), type: header.type, msgId: header.msgId } : {}), ...(agent ? { agent } : {}) });
  }

  private refuseJoin(reason: string, fromHex: string): void {
    try {
      this.options.registry.recordJoinRefusal(reason);
    } catch {
      // Counting must not stop the worker.
    }
    this.log({ level: 'warn', event: 'join_refused', reason, from: short(fromHex), hint: JOIN_HINTS[reason] ?? 'a join request that did not pass; see protocol/JOIN.md' });
  }

  /**
   * A join request from a key we do not know (protocol/JOIN.md "The desktop's checks", in that order). Refusals
   * before the proof are counted and get no answer; later ones are told why.
   */
  private async handleJoin(wire: Buffer, fromHex: string): Promise<void> {
    const from = Buffer.from(fromHex, 'hex');
    const opened = openEnvelope(wire, {
      recipientSignPublicKey: this.options.identity.sign.publicKey,
      recipientBox: this.options.identity.box,
      senderSignPublicKey: from,
      now: this.now(),
      maxSkewMs: this.options.maxSkewMs,
      window: new ReplayWindow(),
    });
    if (!opened.ok) return this.refuseJoin(opened.reason, fromHex);
    const m = decodeJoinRequest(opened.body);
    if (!m || m.signKey !== fromHex) return this.refuseJoin('bad_request', fromHex);
    const secret = Buffer.from(m.joinSecret, 'hex');
    let proofOk = false;
    const invite = this.options.registry.inviteBySecretHash(joinSecretHash(secret));
    try {
      if (invite) {
        proofOk = verifyJoinProof(
          {
            joinSecret: secret,
            agentSign: from,
            agentBox: Buffer.from(m.boxKey, 'hex'),
            desktopSign: this.options.identity.sign.publicKey,
            desktopBox: this.options.identity.box.publicKey,
            relayPin: pinBytes(invite.relayPin),
            expiresAt: invite.expiresAt,
          },
          Buffer.from(m.proof, 'hex'),
        );
      }
    } finally {
      zeroize(secret);
    }
    if (!invite) return this.refuseJoin('unknown_invite', fromHex);
    if (!proofOk) return this.refuseJoin('bad_proof', fromHex);
    const seen = `${fromHex}/${opened.header.msgId}`;
    if (this.joinSeen.has(seen)) return this.refuseJoin('replay', fromHex);
    if (this.joinSeen.size >= 10_000) this.joinSeen.clear();
    this.joinSeen.add(seen);
    const target = { name: invite.name, relay: invite.relay, signPublicKey: from, boxPublicKey: Buffer.from(m.boxKey, 'hex') };
    let agent: AgentRecord;
    try {
      agent = this.options.registry.acceptJoin(invite.id, { signKeyHex: fromHex, boxKeyHex: m.boxKey, hostname: m.hostname }, new Date(this.now()));
    } catch (err) {
      const code = err instanceof OrchError ? err.code : 'error';
      if (code !== 'reused' && code !== 'expired' && code !== 'key_in_use' && code !== 'name_taken') {
        this.log({ event: 'join_failed', invite: invite.id, error: (err as Error).message });
        return;
      }
      this.refuseJoin(code, fromHex);
      await this.sendJoinResult(target, { kind: 'join_result', status: 'refused', reason: `${code}: ${(err as Error).message}`.slice(0, 512) }).catch(() => undefined);
      return;
    }
    // The request's counter is this agent's first: the window that accepted it is kept, so its replay is refused.
    try {
      this.options.state.withWindow(this.localKey, fromHex, (w) => {
        const fresh = w.check(opened.header.counter) === 'ok';
        if (fresh) w.accept(opened.header.counter);
        return { accept: fresh, value: undefined };
      });
    } catch (err) {
      this.log({ event: 'relay_state_error', agent: agent.name, error: (err as Error).message });
    }
    const fingerprint = fingerprintOf(agent.signPublicKey, agent.boxPublicKey);
    this.log({ event: 'join_accepted', agent: agent.name, invite: invite.id, fingerprint, relay: agent.relay, tenants: agent.tenants });
    try {
      await this.options.onJoined?.(agent.name, { via: 'join', invite: invite.id, tier: agent.tier, fingerprint, signKey: fromHex, relay: agent.relay, tenants: agent.tenants, hostname: m.hostname, agentVersion: m.agentVersion }, agent.tenants);
    } catch (err) {
      this.log({ event: 'join_audit_failed', agent: agent.name, error: (err as Error).message });
    }
    const result: JoinResultMessage = { kind: 'join_result', status: 'ok', name: agent.name, tier: agent.tier, tenants: agent.tenants };
    const approvers = this.joinApprovers(agent.tenants);
    if (approvers) result.approvers = approvers;
    if (agent.allowlist !== null) result.allowlist = agent.allowlist;
    // Sending goes through the agent's relay link, which first has the relay ALLOW the newly pinned key.
    try {
      await this.sendJoinResult(agent, result);
    } catch (err) {
      this.log({ event: 'join_result_not_sent', agent: agent.name, error: (err as Error).message, hint: 'the agent is pinned; if its join timed out, start it with orch-agent enroll using the same keys' });
    }
  }

  private async sendJoinResult(target: Pick<AgentRecord, 'name' | 'relay' | 'signPublicKey' | 'boxPublicKey'>, result: JoinResultMessage): Promise<void> {
    await this.sendBody(target, 'join_result', encodeJoinMessage(result));
  }

  /**
   * Sends `tenant`'s approver list to `agentName` and waits (up to `timeoutMs`) for its answer: `ok`, or `refused`
   * (`stale_version` when it holds this version or a newer one). Undefined without an answer or approver source.
   */
  async sendApprovers(agentName: string, tenant: string, timeoutMs: number = APPROVERS_ACK_MS): Promise<ApproversResultMessage | undefined> {
    const source = this.options.approvers;
    if (!source) return undefined;
    const agent = this.agentOrFail(agentName);
    const agentKey = keyToHex(agent.signPublicKey);
    const { version, keys } = source.keySet(tenant);
    const slot = `${agentKey}/${tenant}/${version}`;
    const answer = new Promise<ApproversResultMessage | undefined>((resolve) => {
      const timer = setTimeout(() => done(undefined), timeoutMs);
      timer.unref();
      const done = (m: ApproversResultMessage | undefined) => {
        clearTimeout(timer);
        resolve(m);
      };
      const list = this.approversWaiters.get(slot) ?? [];
      list.push(done);
      this.approversWaiters.set(slot, list);
    });
    try {
      await this.send(agent, { kind: 'approvers', tenant, version, keys, signedAt: this.now() });
    } catch (err) {
      this.log({ event: 'approvers_not_sent', agent: agent.name, tenant, error: (err as Error).message?.split('\n')[0] });
      this.settleApproversSlot(slot, undefined);
    }
    return answer;
  }

  /**
   * Before a command of `tenant` goes to `agent`: if the tenant has approvers at a version the agent has not
   * acknowledged, send the list and wait for the answer (the agent applies messages concurrently, so the command
   * must not overtake it). Never throws: an agent that does not answer gets the command anyway and decides.
   */
  private async ensureApprovers(agent: AgentRecord, tenant: string): Promise<void> {
    const source = this.options.approvers;
    if (!source) return;
    let version: number;
    try {
      version = source.keySet(tenant).version;
    } catch (err) {
      this.log({ event: 'approvers_unreadable', tenant, error: (err as Error).message?.split('\n')[0] });
      return;
    }
    if (version === 0 || (this.approversAcked.get(`${keyToHex(agent.signPublicKey)}/${tenant}`) ?? -1) >= version) return;
    await this.sendApprovers(agent.name, tenant).catch(() => undefined);
  }

  /** The approver lists of `tenants` that have any (version >= 1), for a join_result; undefined for none. */
  private joinApprovers(tenants: string[]): Record<string, { version: number; keys: string[] }> | undefined {
    const source = this.options.approvers;
    if (!source) return undefined;
    const out: Record<string, { version: number; keys: string[] }> = {};
    for (const t of tenants) {
      try {
        const ks = source.keySet(t);
        if (ks.version > 0) out[t] = ks;
      } catch (err) {
        this.log({ event: 'approvers_unreadable', tenant: t, error: (err as Error).message?.split('\n')[0] });
      }
    }
    return Object.keys(out).length ? out : undefined;
  }

  /** Sends every agent each of its tenants' approver lists it has not acknowledged at the current version. */
  async syncApprovers(): Promise<void> {
    const source = this.options.approvers;
    if (!source || this.closed) return;
    let all: string[] | undefined;
    for (const agent of this.options.registry.list()) {
      const tenants = agent.tenants.length ? agent.tenants : (all ??= source.tenants());
      for (const tenant of tenants) {
        try {
          await this.ensureApprovers(agent, tenant);
        } catch {
          // one agent or tenant must not stop the others
        }
      }
    }
  }

  private settleApprovers(agentKey: string, m: ApproversResultMessage): void {
    // ok, or stale (the agent holds this version or a newer one): either way it needs no resend of this version.
    if (m.status === 'ok' || m.reason?.startsWith('stale_version')) {
      const key = `${agentKey}/${m.tenant}`;
      this.approversAcked.set(key, Math.max(this.approversAcked.get(key) ?? -1, m.version));
    }
    this.log({ event: 'approvers_result', from: short(agentKey), tenant: m.tenant, version: m.version, status: m.status, ...(m.reason ? { reason: m.reason } : {}) });
    if (!this.settleApproversSlot(`${agentKey}/${m.tenant}/${m.version}`, m)) this.stats.unmatched++;
  }

  private settleApproversSlot(slot: string, m: ApproversResultMessage | undefined): boolean {
    const list = this.approversWaiters.get(slot);
    if (!list) return false;
    this.approversWaiters.delete(slot);
    for (const done of list) done(m);
    return true;
  }

  /** Fails every waiting command with a retryable error; the transport refuses new work afterwards. */
  close(): void {
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const [id, waiters] of this.results) {
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(ApplicationFailure.retryable(`the relay transport closed while command ${id} was waiting for its result`, TransportFailure.agentNoAnswer));
      }
    }
    this.results.clear();
    for (const w of this.pongs.values()) {
      clearTimeout(w.timer);
      w.resolve(undefined);
    }
    this.pongs.clear();
    for (const slot of [...this.approversWaiters.keys()]) this.settleApproversSlot(slot, undefined);
  }

  private agentOrFail(name: string): AgentRecord {
    const agent = this.options.registry.get(name);
    if (!agent) {
      throw new OrchError(
        ErrorType.agentUnavailable,
        `no agent "${name}" is enrolled with this Orch desktop, so the command was not sent (enroll it with \`orch agent add ${name} --key ... --box-key ... --tier ... --relay RELAY\`)`,
        { agent: name },
      );
    }
    return agent;
  }

  private async send(agent: AgentRecord, message: AgentMessage): Promise<void> {
    await this.sendBody(agent, message.kind, encodeMessage(message));
  }

  private async sendBody(agent: Pick<AgentRecord, 'name' | 'relay' | 'signPublicKey' | 'boxPublicKey'>, type: string, body: Buffer): Promise<void> {
    if (this.closed) throw ApplicationFailure.retryable('the relay transport is closed', TransportFailure.relayUnavailable);
    const relay = await this.linkOf(agent);
    const agentKey = keyToHex(agent.signPublicKey);
    // Committed before sealing: a crash after this skips a counter, never reuses one.
    const counter = this.options.state.nextCounter(this.localKey, agentKey);
    const wire = sealEnvelope({
      header: { from: this.localKey, to: agentKey, msgId: newMsgId(), counter, ts: this.now(), type },
      body,
      senderSign: this.options.identity.sign,
      recipientBoxPublicKey: agent.boxPublicKey,
    });
    try {
      await relay.send(wire);
    } catch (err) {
      throw ApplicationFailure.retryable(
        `relay "${agent.relay}" did not take the envelope for agent "${agent.name}": ${(err as Error).message?.split('\n')[0] ?? String(err)}`,
        TransportFailure.relayUnavailable,
        { agent: agent.name, relay: agent.relay },
      );
    }
    this.log({ level: 'debug', event: 'envelope_sent', agent: agent.name, type, counter: counter.toString() });
  }

  /** The connected link that reaches this agent, or a retryable `relay_unavailable` naming its relay. */
  private async linkOf(agent: Pick<AgentRecord, 'name' | 'relay'>): Promise<RelayLink> {
    const details = { agent: agent.name, relay: agent.relay };
    if (!this.router) {
      if (!this.relay || !this.relay.connected) {
        throw ApplicationFailure.retryable(`not connected to the relay, so nothing was sent to agent "${agent.name}"`, TransportFailure.relayUnavailable, details);
      }
      return this.relay;
    }
    let link: RelayLink | undefined;
    try {
      link = await this.router.linkFor(agent.relay);
    } catch (err) {
      throw ApplicationFailure.retryable(
        `relay "${agent.relay}" (agent "${agent.name}"): ${(err as Error).message?.split('\n')[0] ?? String(err)}`,
        TransportFailure.relayUnavailable,
        details,
      );
    }
    const unused = link ? undefined : this.router.failureOf?.(agent.relay);
    if (unused) {
      throw ApplicationFailure.retryable(`agent "${agent.name}" is enrolled through relay "${agent.relay}": ${unused.message}`, TransportFailure.relayUnavailable, details);
    }
    if (!link) {
      throw ApplicationFailure.retryable(
        `agent "${agent.name}" is enrolled through relay "${agent.relay}", which is not configured on this desktop (\`orch relay list\`; add it with \`orch relay add ${agent.relay} --url ... --pin ...\`)`,
        TransportFailure.relayUnavailable,
        details,
      );
    }
    if (!link.connected) {
      const failure = this.router.failureOf?.(agent.relay);
      throw ApplicationFailure.retryable(
        `not connected to relay "${agent.relay}"${failure ? ` (${failure.code}: ${failure.message})` : ''}, so nothing was sent to agent "${agent.name}"`,
        TransportFailure.relayUnavailable,
        details,
      );
    }
    return link;
  }

  private waitForResult(commandId: string, agentKey: string, waitMs: number, agentName: string): { promise: Promise<ResultMessage>; waiter: ResultWaiter } {
    let waiter!: ResultWaiter;
    const promise = new Promise<ResultMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.dropResultWaiter(commandId, waiter);
        reject(
          ApplicationFailure.retryable(
            `no result from agent "${agentName}" within ${Math.round(waitMs / 1000)} s (it may be offline; the relay keeps the command for it, and a retry is answered from the agent's record, not run again)`,
            TransportFailure.agentNoAnswer,
            { agent: agentName },
          ),
        );
      }, waitMs);
      waiter = { agentKey, resolve, reject, timer };
    });
    const list = this.results.get(commandId) ?? [];
    list.push(waiter);
    this.results.set(commandId, list);
    return { promise, waiter };
  }

  private dropResultWaiter(commandId: string, waiter: ResultWaiter): void {
    clearTimeout(waiter.timer);
    const list = this.results.get(commandId);
    if (!list) return;
    const rest = list.filter((w) => w !== waiter);
    if (rest.length) this.results.set(commandId, rest);
    else this.results.delete(commandId);
  }

  private settleResult(agentKey: string, message: ResultMessage): void {
    const list = this.results.get(message.commandId);
    // Only the agent the command was sealed to can answer it: a result for the same id from another enrolled
    // agent (a compromised one guessing ids) settles nothing.
    const mine = list?.filter((w) => w.agentKey === agentKey) ?? [];
    if (!mine.length) {
      this.stats.unmatched++;
      this.log({ level: 'warn', event: 'unmatched_result', from: short(agentKey) });
      return;
    }
    for (const w of mine) {
      this.dropResultWaiter(message.commandId, w);
      w.resolve(message);
    }
  }

  private settlePong(agentKey: string, message: PongMessage): void {
    const waiter = this.pongs.get(message.nonce);
    if (!waiter || waiter.agentKey !== agentKey) {
      this.stats.unmatched++;
      return;
    }
    clearTimeout(waiter.timer);
    this.pongs.delete(message.nonce);
    waiter.resolve(message);
  }
}

export interface RelayEndpoint {
  /** wss://host:port/v1/relay */
  url: string;
  /** 'sha256/<base64 SPKI digest>' */
  pin: string;
}

export interface ConnectedTransport {
  transport: RelayCommandTransport;
  /** True while logged in to the relay. */
  readonly connected: boolean;
  /** Why the first login failed for good (pin_mismatch, auth_failed, ...), if it did. */
  readonly startError: { code: string; message: string } | undefined;
  close(): Promise<void>;
}

/**
 * Open the registry and relay state of an ORCH_HOME, connect to the relay as the desktop identity and return a
 * transport for the Worker's activities. Resolves once the first login succeeded, or after `waitMs` (default 5 s)
 * with `connected` false, the client still retrying in the background (commands fail `relay_unavailable` and are
 * retried by the activity until it is up).
 */
export async function connectRelayTransport(opts: {
  home: string;
  identity: Pick<DesktopIdentity, 'sign' | 'box'>;
  relay: RelayEndpoint;
  log?: (event: Record<string, unknown>) => void;
  waitMs?: number;
  resultGraceMs?: number;
  /** Ping the agents this often to keep last_seen fresh (see startHeartbeat); 0 for never. Default 30 s. */
  heartbeatMs?: number;
}): Promise<ConnectedTransport> {
  const { RelayClient, RelayClientError } = await import('../protocol/relay-client');
  const registry = AgentRegistry.open(opts.home);
  const state = RelayState.open(opts.home);
  const transport = new RelayCommandTransport({ identity: opts.identity, registry, state, log: opts.log, resultGraceMs: opts.resultGraceMs, approvers: approverSource(opts.home) });
  let client: InstanceType<typeof RelayClient>;
  try {
    client = new RelayClient({
      url: opts.relay.url,
      pin: opts.relay.pin,
      identity: { publicKey: opts.identity.sign.publicKey, secretKey: opts.identity.sign.secretKey },
      onEnvelope: (wire: Buffer) => transport.handleEnvelope(wire),
      log: opts.log,
    });
  } catch (err) {
    registry.close();
    state.close();
    if (err instanceof RelayClientError) throw new OrchError('bad_config', `relay settings: ${err.message}`);
    throw err;
  }
  transport.attach(client);
  let startError: { code: string; message: string } | undefined;
  const started = client.start().then(
    () => {
      if (opts.heartbeatMs !== 0) transport.startHeartbeat(opts.heartbeatMs);
    },
    (err: unknown) => {
      startError = { code: (err as { code?: string }).code ?? 'relay_unavailable', message: (err as Error).message?.split('\n')[0] ?? String(err) };
      opts.log?.({ event: 'relay_start_failed', ...startError });
    },
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([started, new Promise<void>((resolve) => (timer = setTimeout(resolve, opts.waitMs ?? 5000)))]);
  clearTimeout(timer);
  return {
    transport,
    get connected() {
      return client.connected;
    },
    get startError() {
      return startError;
    },
    async close() {
      transport.close();
      await client.close();
      registry.close();
      state.close();
    },
  };
}
