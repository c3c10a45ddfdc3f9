/**
 * The agent's message handler, independent of any transport: sealed bytes in, sealed reply (or nothing) out.
 * The relay client, the stdio transport and the tests all drive this one function.
 *
 * For every envelope, in order:
 *   1. openEnvelope with the PINNED desktop key (size, addressing, signature, AEAD, freshness, replay window) on a
 *      copy of the window. A rejection is counted, logged with its reason, and gets no reply: answering an
 *      unauthenticated sender would only help it.
 *   2. The window that accepted the counter is persisted (ledger) BEFORE the body is acted on, so after a crash
 *      the same envelope is a replay.
 *   3. The body must decode as a message whose kind equals the header type.
 *   4. ping → pong; command → ledger claim → policy → started → run → finished → result.
 * Every reply takes the next outgoing counter, persisted before sealing.
 */
import { RejectCounters, keyToHex, newMsgId, openEnvelope, sealEnvelope, type RejectReason } from '../protocol/envelope';
import { ReplayWindow } from '../protocol/replay-window';
import {
  decodeMessage,
  encodeMessage,
  fitResult,
  type AgentMessage,
  type CommandMessage,
  type ResultMessage,
} from '../protocol/agent-messages';
import { ExecError, execute, shellStatus } from './executor';
import type { AgentIdentity } from './identity';
import { argvDigest, type Ledger } from './ledger';
import { effectiveTier, evaluateCommand, type Policy } from './policy';

export const AGENT_VERSION = '0.1.0';

export type AgentLog = (event: Record<string, unknown>) => void;

export interface AgentHandlerOptions {
  identity: AgentIdentity;
  /** The pinned desktop: only envelopes signed by this key are opened; replies are sealed to its box key. */
  desktop: { signPublicKey: Buffer; boxPublicKey: Buffer };
  policy: Policy;
  ledger: Ledger;
  /** HOME for commands (the state directory). */
  home: string;
  log?: AgentLog;
  now?: () => number;
  killGraceMs?: number;
}

export class AgentHandler {
  readonly rejects: RejectCounters;
  private window: ReplayWindow;
  private readonly peer: string;
  private readonly me: string;
  private readonly log: AgentLog;
  private readonly now: () => number;
  /** Commands running in this process, so a duplicate that arrives meanwhile waits for the same result. */
  private readonly inFlight = new Map<string, Promise<ResultMessage>>();

  constructor(private readonly opts: AgentHandlerOptions) {
    this.peer = keyToHex(opts.desktop.signPublicKey);
    this.me = keyToHex(opts.identity.sign.publicKey);
    this.log = opts.log ?? (() => {});
    this.now = opts.now ?? Date.now;
    this.window = opts.ledger.loadWindow(this.peer);
    this.rejects = new RejectCounters((reason, count) => {
      opts.ledger.bump(`reject.${reason}`);
      this.log({ level: 'warn', event: 'envelope_rejected', reason, count, hint: REJECT_HINTS[reason] });
    });
  }

  /** Commands currently running. */
  get running(): number {
    return this.inFlight.size;
  }

  /** Wait for every running command to finish (for a clean shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
  }

  /**
   * Handle one wire envelope; resolves to the sealed reply, or undefined when there is none (rejected or
   * malformed input). Never rejects on hostile input.
   */
  async handleEnvelope(wire: Buffer): Promise<Buffer | undefined> {
    const trial = ReplayWindow.fromJSON(this.window.toJSON());
    const opened = openEnvelope(wire, {
      recipientSignPublicKey: this.opts.identity.sign.publicKey,
      recipientBox: this.opts.identity.box,
      senderSignPublicKey: this.opts.desktop.signPublicKey,
      now: this.now(),
      window: trial,
    });
    if (!opened.ok) {
      this.rejects.record(opened.reason);
      return undefined;
    }
    // Persist first: if this throws (disk full), nothing below runs and the envelope can be retried.
    this.opts.ledger.saveWindow(this.peer, trial);
    this.window = trial;
    this.opts.ledger.bump('accepted');

    const message = decodeMessage(opened.body);
    if (!message || message.kind !== opened.header.type) {
      this.opts.ledger.bump('bad_message');
      this.log({ level: 'warn', event: 'bad_message', type: opened.header.type, msgId: opened.header.msgId });
      return undefined;
    }
    const reply = await this.dispatch(message);
    return reply ? this.seal(reply) : undefined;
  }

  private async dispatch(m: AgentMessage): Promise<AgentMessage | undefined> {
    switch (m.kind) {
      case 'ping':
        this.opts.ledger.bump('ping');
        return { kind: 'pong', nonce: m.nonce, agentVersion: AGENT_VERSION, tier: effectiveTier(this.opts.policy) };
      case 'command':
        return this.command(m);
      default:
        // result and pong travel the other way; a desktop never sends them to an agent.
        this.opts.ledger.bump('bad_message');
        this.log({ level: 'warn', event: 'unexpected_message', kind: m.kind });
        return undefined;
    }
  }

  private seal(m: AgentMessage): Buffer {
    const counter = this.opts.ledger.nextOutgoingCounter(this.peer);
    return sealEnvelope({
      header: { from: this.me, to: this.peer, msgId: newMsgId(), counter, ts: this.now(), type: m.kind },
      body: encodeMessage(m),
      senderSign: this.opts.identity.sign,
      recipientBoxPublicKey: this.opts.desktop.boxPublicKey,
    });
  }

  /** Run (at most once) or answer from the ledger. */
  async command(m: CommandMessage): Promise<ResultMessage> {
    const running = this.inFlight.get(m.commandId);
    if (running) {
      this.opts.ledger.bump('commands.duplicate');
      this.log({ level: 'info', event: 'command_duplicate', commandId: m.commandId, state: 'running' });
      return running;
    }
    const p = this.commandOnce(m).finally(() => this.inFlight.delete(m.commandId));
    this.inFlight.set(m.commandId, p);
    return p;
  }

  private async commandOnce(m: CommandMessage): Promise<ResultMessage> {
    const { ledger } = this.opts;
    const claim = ledger.claim(this.peer, m.commandId, argvDigest(m.argv, m.cwd), this.now());
    switch (claim.kind) {
      case 'finished':
        ledger.bump('commands.duplicate');
        this.log({ level: 'info', event: 'command_duplicate', commandId: m.commandId, state: 'finished' });
        return claim.result;
      case 'indeterminate':
        ledger.bump('commands.indeterminate');
        this.log({ level: 'warn', event: 'command_indeterminate', commandId: m.commandId, startedAt: claim.startedAt });
        return {
          kind: 'result',
          commandId: m.commandId,
          status: 'indeterminate',
          reason: `indeterminate: the agent stopped while this command was running (started ${new Date(claim.startedAt).toISOString()}); it may or may not have taken effect, and it will not be run again: check the server and decide`,
        };
      case 'conflict':
        ledger.bump('commands.conflict');
        this.log({ level: 'warn', event: 'command_id_conflict', commandId: m.commandId });
        return { kind: 'result', commandId: m.commandId, status: 'refused', reason: 'command_not_allowed: command-id-reused: this command id was already used for a different command' };
      case 'run':
        break;
    }

    const decision = evaluateCommand({ argv: m.argv, ...(m.cwd !== undefined ? { cwd: m.cwd } : {}) }, this.opts.policy);
    if (!decision.allowed) {
      const refused: ResultMessage = { kind: 'result', commandId: m.commandId, status: 'refused', reason: decision.reason };
      ledger.markFinished(this.peer, m.commandId, refused, this.now());
      ledger.bump('commands.refused');
      this.log({ level: 'warn', event: 'command_refused', commandId: m.commandId, rule: decision.rule });
      return refused;
    }

    // `started` is on disk before the process exists: a crash from here on answers duplicates `indeterminate`.
    ledger.markStarted(this.peer, m.commandId, this.now());
    this.log({ level: 'info', event: 'command_started', commandId: m.commandId, executable: decision.executable, entry: decision.entryIndex });
    let result: ResultMessage;
    try {
      const r = await execute({
        argv: decision.argv,
        cwd: decision.cwd,
        timeoutMs: m.timeoutSeconds * 1000,
        home: this.opts.home,
        ...(m.maxOutputBytes !== undefined ? { maxOutputBytes: m.maxOutputBytes } : {}),
        ...(this.opts.killGraceMs !== undefined ? { killGraceMs: this.opts.killGraceMs } : {}),
      });
      result = fitResult({
        kind: 'result',
        commandId: m.commandId,
        status: 'finished',
        exitCode: shellStatus(r),
        ...(r.signal ? { signal: r.signal } : {}),
        ...(r.timedOut ? { timedOut: true } : {}),
        stdout: r.stdout.toString('utf8'),
        stderr: r.stderr.toString('utf8'),
        truncated: r.truncated,
        durationMs: r.durationMs,
      });
      ledger.bump('commands.run');
      this.log({ level: 'info', event: 'command_finished', commandId: m.commandId, exitCode: result.exitCode, signal: r.signal, timedOut: r.timedOut, durationMs: r.durationMs, truncated: result.truncated });
    } catch (err) {
      if (!(err instanceof ExecError)) throw err;
      // Nothing was spawned; the answer is final like a policy refusal.
      const rule = err.code === 'bad_cwd' ? 'cwd' : err.code === 'executable_not_found' ? 'executable-not-found' : 'spawn-failed';
      result = { kind: 'result', commandId: m.commandId, status: 'refused', reason: `command_not_allowed: ${rule}: ${err.message}` };
      ledger.bump('commands.refused');
      this.log({ level: 'warn', event: 'command_not_started', commandId: m.commandId, code: err.code });
    }
    ledger.markFinished(this.peer, m.commandId, result, this.now());
    return result;
  }
}

/** What an operator can do about each rejection (ENVELOPE.md, "Rejection reasons"). */
const REJECT_HINTS: Record<RejectReason, string> = {
  oversize: 'a buggy or hostile peer sent more than 1 MiB; nothing was parsed',
  malformed: 'not a v1 envelope: a buggy or hostile peer or relay',
  bad_version: 'the desktop runs an incompatible version: upgrade one side',
  wrong_recipient: 'addressed to another agent: relay misrouting or a replay at the wrong agent',
  unknown_sender: 'not from the enrolled desktop; if the desktop key changed, run orch-agent enroll again',
  bad_signature: 'tampered in transit',
  low_order_key: 'signed but hostile: the desktop signing key may be compromised',
  decrypt_failed: 'signed but undecryptable: check the pinned keys (re-enroll)',
  stale: 'timestamp more than 5 minutes off: check both clocks (NTP)',
  replay: 'already accepted: a replay by the relay or network; harmless',
  too_old_for_window: 'too far behind the newest counter: heavy reordering or a late replay',
};
