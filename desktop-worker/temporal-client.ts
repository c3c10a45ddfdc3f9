/**
 * How the `orch` commands reach Temporal: the local dev server `orch up` runs, or the cluster the TEMPORAL_*
 * settings (@temporalio/envconfig) name. One place, so every command fails the same clear way when it cannot.
 */
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { OrchError } from '../workflows/errors';
import type { OrchConfig, TemporalTarget } from './config';

/** Connection options for a target (also what `orch up` uses to register search attributes on a cluster). */
export function connectionOptionsOf(target: TemporalTarget): ConnectionOptions {
  if (target.kind === 'dev-server') return { address: `${target.ip}:${target.port}`, connectTimeout: 3000 };
  const o = target.connect.connectionOptions;
  return { address: o.address, tls: o.tls, apiKey: o.apiKey as string | undefined, metadata: o.metadata, connectTimeout: 5000 };
}

export async function connectClient(config: OrchConfig): Promise<{ client: Client; where: string; close: () => Promise<void> }> {
  const target = config.temporal;
  const where = target.kind === 'dev-server' ? `${target.ip}:${target.port}` : target.description;
  let connection: Connection;
  try {
    connection = await Connection.connect(connectionOptionsOf(target));
  } catch (err) {
    throw new OrchError(
      'temporal_unreachable',
      `cannot reach Temporal at ${where} (${(err as Error).message.split('\n')[0]}): start Orch with \`orch up\`, or set TEMPORAL_ADDRESS`,
    );
  }
  return { client: new Client({ connection, namespace: target.namespace }), where, close: () => connection.close() };
}
