/**
 * A desktop identity that talks to a real agent in sealed envelopes (protocol/ENVELOPE.md): it seals messages to
 * one agent with its own counter, and opens that agent's replies through its own replay window. Used by
 * test/integration/agent.test.ts and bench/agent.bench.ts.
 */
import { decodeMessage, encodeMessage, type AgentMessage } from '../../protocol/agent-messages';
import { keyToHex, newMsgId, openEnvelope, sealEnvelope } from '../../protocol/envelope';
import type { BoxKeyPair, SignKeyPair } from '../../protocol/primitives';
import { ReplayWindow } from '../../protocol/replay-window';

export interface Peer {
  sign: SignKeyPair;
  box: BoxKeyPair;
}

export class EnvelopeDesktop {
  counter = 0n;
  readonly window = new ReplayWindow();
  constructor(
    readonly me: Peer,
    readonly agentSign: Buffer,
    readonly agentBox: Buffer,
  ) {}

  /** Seals `m` to the agent; `over` forges a field (a hostile envelope). */
  seal(m: AgentMessage, over: { counter?: bigint; ts?: number; to?: string; toBox?: Buffer; signer?: SignKeyPair } = {}): Buffer {
    const signer = over.signer ?? this.me.sign;
    return sealEnvelope({
      header: { from: keyToHex(signer.publicKey), to: over.to ?? keyToHex(this.agentSign), msgId: newMsgId(), counter: over.counter ?? ++this.counter, ts: over.ts ?? Date.now(), type: m.kind },
      body: encodeMessage(m),
      senderSign: signer,
      recipientBoxPublicKey: over.toBox ?? this.agentBox,
    });
  }

  /** Opens a reply from the agent; throws if it does not verify, decode, or match its header's type. */
  open(wire: Buffer): AgentMessage {
    const r = openEnvelope(wire, { recipientSignPublicKey: this.me.sign.publicKey, recipientBox: this.me.box, senderSignPublicKey: this.agentSign, now: Date.now(), window: this.window });
    if (!r.ok) throw new Error(`reply rejected: ${r.reason}`);
    const m = decodeMessage(r.body);
    if (!m || m.kind !== r.header.type) throw new Error(`reply does not decode as its header's type ${r.header.type}`);
    return m;
  }
}
