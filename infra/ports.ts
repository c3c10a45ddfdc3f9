/**
 * Picking a free TCP port for a server Orch starts as another process (the Temporal dev server's gRPC, UI and HTTP
 * ports when asked for port 0; the tests' relays and fakes).
 *
 * The port is picked below the kernel's ephemeral range (ip_local_port_range on Linux; 32768 elsewhere, below
 * macOS's and Windows' 49152), where the kernel never hands out a port by itself. A port from bind(0) goes back to
 * that pool as soon as it is closed, so a process binding port 0 before the server starts could take it first; the
 * Temporal dev server itself binds several port-0 sockets at start, so an HTTP port picked that way could be taken by
 * the very server it was picked for.
 */
import fs from 'node:fs';
import net from 'node:net';

/** Lowest port picked: below it are the well-known and registered ports other software expects to own. */
const LOW = 10_000;
const ATTEMPTS = 50;

/**
 * A TCP port free on `ip` right now, below the ephemeral range (bind(0) only if 50 random picks there were taken).
 *
 * @example const port = await freeLocalPort(); // e.g. 23817 on Linux
 */
export async function freeLocalPort(ip = '127.0.0.1'): Promise<number> {
  const high = ephemeralLow();
  for (let attempt = 0; attempt < ATTEMPTS && high > LOW + 1; attempt++) {
    const port = LOW + Math.floor(Math.random() * (high - LOW));
    if (await canListen(ip, port)) return port;
  }
  return listenOn(ip, 0);
}

/** The first port of the kernel's ephemeral range. */
export function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(ip: string, port: number): Promise<boolean> {
  return listenOn(ip, port).then(
    () => true,
    () => false,
  );
}

function listenOn(ip: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: ip, port, exclusive: true }, () => {
      const bound = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(bound));
    });
  });
}
