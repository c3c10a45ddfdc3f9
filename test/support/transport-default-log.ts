/**
 * A RelayCommandTransport given no log (as an `orch` command makes it) is handed an envelope it must refuse: what
 * it logs goes to this process's stderr, where test/integration/logging.test.ts reads it.
 *
 *   node --import tsx test/support/transport-default-log.ts ORCH_HOME
 */
import { AgentRegistry, RelayState } from '../../desktop-worker/agent-registry';
import { RelayCommandTransport } from '../../desktop-worker/agent-transport';
import { encodeMessage } from '../../protocol/agent-messages';
import { keyToHex, newMsgId, sealEnvelope } from '../../protocol/envelope';
import { ed25519KeyPair, x25519KeyPair } from '../../protocol/primitives';

const home = process.argv[2]!;
const desktop = { sign: ed25519KeyPair(), box: x25519KeyPair() };
const stranger = ed25519KeyPair();
const registry = AgentRegistry.open(home);
const state = RelayState.open(home);
const transport = new RelayCommandTransport({ identity: desktop, registry, state });
transport.handleEnvelope(
  sealEnvelope({
    header: { from: keyToHex(stranger.publicKey), to: keyToHex(desktop.sign.publicKey), msgId: newMsgId(), counter: 1n, ts: Date.now(), type: 'result' },
    body: encodeMessage({ kind: 'result', commandId: 'wf/run/n1', status: 'finished', exitCode: 0, stdout: process.argv[3] ?? '' }),
    senderSign: stranger,
    recipientBoxPublicKey: desktop.box.publicKey,
  }),
);
transport.handleEnvelope(Buffer.from('not an envelope'));
transport.close();
registry.close();
state.close();
