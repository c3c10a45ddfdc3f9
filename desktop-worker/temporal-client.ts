/**
 * How the `orch` commands reach Temporal: the local dev server `orch up` runs, or the cluster the TEMPORAL_*
 * settings (@temporalio/envconfig) name. One place, so every command fails the same clear way when it cannot.
 *
 * Once `orch up` has made this ORCH_HOME's payload keys (payload-keys.json), every client carries the payload
 * codec (desktop-worker/payload-codec.ts): what a command sends (run input, signals) is encrypted like what the
 * worker sends, and what it reads back is decrypted.
 */
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { OrchError } from '../protocol/errors';
import type { OrchConfig, TemporalTarget } from './config';
import { PayloadKeyring, encryptedDataConverter, loadPayloadCodec } from './payload-codec';

/** Connection options for a target (also what `orch up` uses to register search attributes on a cluster). */
export function connectionOptionsOf(target: TemporalTarget): ConnectionOptions {
  if (target.kind === 'dev-server') return { address: `${target.ip}:${target.port}`, connectTimeout: 3000 };
  const o = target.connect.connectionOptions;
  return { address: o.address, tls: o.tls, apiKey: o.apiKey as string | undefined, metadata: o.metadata, connectTimeout: 5000 };
}

/**
 * A client for the configured Temporal. `payloadKeys: false` is for commands that only read what is never encrypted
 * (search attributes: `orch runs`): they skip the keychain, and must not send or decode payloads.
 */
export async function connectClient(config: OrchConfig, options: { payloadKeys?: boolean } = {}): Promise<{ client: Client; where: string; close: () => Promise<void> }> {
  const target = config.temporal;
  const where = target.kind === 'dev-server' ? `${target.ip}:${target.port}` : target.description;
  // Keys first: a keychain problem is reported before anything reaches Temporal, and nothing is sent in the clear.
  const codec = options.payloadKeys !== false && PayloadKeyring.exists(config.home) ? await loadPayloadCodec(config.home) : undefined;
  let connection: Connection;
  try {
    connection = await Connection.connect(connectionOptionsOf(target));
  } catch (err) {
    throw new OrchError(
      'temporal_unreachable',
      `cannot reach Temporal at ${where} (${(err as Error).message.split('\n')[0]}): start Orch with \`orch up\`, or set TEMPORAL_ADDRESS`,
    );
  }
  const client = new Client({ connection, namespace: target.namespace, ...(codec ? { dataConverter: encryptedDataConverter(codec) } : {}) });
  return { client, where, close: () => connection.close() };
}
