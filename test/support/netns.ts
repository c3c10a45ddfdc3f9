/**
 * A small test network out of Linux network namespaces, for tests with several hosts on one machine (real
 * processes, the real network stack). Everything lives in namespaces this module creates and deletes: one
 * "switch" namespace holding a bridge, and one namespace per host, each cabled to the bridge and given an
 * address in 10.231.X.0/24 (X drawn per network). Nothing is added to the root namespace, no route leads out,
 * and no other address is touched. Names carry the creating process's pid and a random id, so parallel runs do
 * not meet, and namespaces left by a run that was SIGKILLed are removed by the next one.
 *
 * The desktop side of a test (the test process, and the Temporal dev server on loopback) reaches a service in
 * the network through {@link TestNetwork.forwardToLoopback}: a port on 127.0.0.1 whose connections leave from a
 * host of the network (its own namespace and link), so cutting or slowing that host's link affects them.
 *
 * Cables are veth pairs, and `setDelay` is `tc qdisc ... netem delay` on the host's interface. A kernel without
 * netem (CONFIG_NET_SCH_NETEM) gets a user-space cable between two TAP devices instead (test/support/netwire,
 * built with the Go toolchain), which delays the host's outgoing frames the same way.
 *
 * Needs root (CI runs as root). Without it, or where namespaces cannot be created, {@link createTestNetwork}
 * throws {@link NetnsUnavailableError} saying so: multi-host tests fail, never skip silently.
 *
 * @example
 * const net = await createTestNetwork();
 * try {
 *   const relay = await net.addHost('relay');
 *   const proc = net.spawn(relay, process.execPath, ['bin/orch-relay.mjs', 'start', '--host', relay.ip]);
 *   await net.setDelay(relay, 50);
 * } finally {
 *   await net.teardown();
 * }
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const NS_PREFIX = 'orchnet-';
const NETWIRE_SOURCE = fileURLToPath(new URL('./netwire/main.go', import.meta.url));

/** The machine cannot build the test network (not root, no `ip`, namespaces refused). */
export class NetnsUnavailableError extends Error {
  override readonly name = 'NetnsUnavailableError';
}

export interface NetHost {
  /** The test's name for it ("relay", "agent-1"). */
  name: string;
  /** Its network namespace (`ip netns exec NS ...`). */
  ns: string;
  /** Its address on the test network. */
  ip: string;
  /** Its interface on the test network, inside its namespace. */
  iface: 'eth0';
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestNetwork {
  /** Short random id in every name this network uses. */
  readonly id: string;
  /** The /24 this network uses, as 10.231.X. */
  readonly subnet: string;
  /** How hosts are cabled: veth pairs (netem for delays) or user-space TAP cables (netwire). */
  readonly cable: 'veth' | 'netwire';
  /** A new host: its own namespace, cabled to the switch, with the next address of the subnet. */
  addHost(name: string): Promise<NetHost>;
  host(name: string): NetHost;
  /** Starts `command args` inside the host's namespace (`ip netns exec`); killed at teardown if still running. */
  spawn(host: NetHost, command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** Runs to completion inside the host's namespace. */
  run(host: NetHost, command: string, args: string[], options?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<RunResult>;
  /** Cuts the host's cable at the switch: its frames are lost both ways, silently, as with a pulled cable. */
  linkDown(host: NetHost): Promise<void>;
  linkUp(host: NetHost): Promise<void>;
  /** Delays every frame the host sends by `ms` (0 removes the delay). */
  setDelay(host: NetHost, ms: number): Promise<void>;
  /**
   * A port on 127.0.0.1 in the test process's namespace whose connections are made from `from` (its namespace,
   * its cable) to `to`:`port`. The bytes are passed through untouched (TLS stays end to end).
   */
  forwardToLoopback(from: NetHost, to: string, port: number): Promise<number>;
  /** Kills what it started and deletes every namespace (with its cables). Safe to call twice; never throws. */
  teardown(): Promise<void>;
}

function sh(command: string, args: string[], timeoutMs = 15_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? ((err as unknown as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && !stderr ? err.message : '') });
    });
  });
}

async function ip(args: string[]): Promise<void> {
  const r = await sh('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces of earlier runs whose process is gone (a SIGKILLed test never ran its teardown). */
async function removeStaleNamespaces(): Promise<void> {
  const listed = await sh('ip', ['netns', 'list']);
  for (const line of listed.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${NS_PREFIX}(\\d+)-`).exec(name);
    if (m && !pidAlive(Number(m[1]))) await sh('ip', ['netns', 'del', name]);
  }
}

async function netemAvailable(ns: string): Promise<boolean> {
  // A throwaway veth pair inside the switch namespace: can it take a netem qdisc?
  if ((await sh('ip', ['-n', ns, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1'])).code !== 0) return false;
  const r = await sh('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'probe0', 'root', 'netem', 'delay', '1ms']);
  await sh('ip', ['-n', ns, 'link', 'del', 'probe0']);
  return r.code === 0;
}

async function buildNetwire(dir: string): Promise<string> {
  const out = path.join(dir, 'netwire');
  // `go` on PATH, else where the official tarball puts it (a non-login shell may not have it on PATH).
  const go = (await sh('go', ['version'])).code === 0 ? 'go' : '/usr/local/go/bin/go';
  const r = await sh(go, ['build', '-buildvcs=false', '-o', out, NETWIRE_SOURCE], 180_000);
  if (r.code !== 0) {
    throw new NetnsUnavailableError(
      `this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM), so the test network cables hosts with test/support/netwire, which needs the Go toolchain: go build failed: ${r.stderr.trim().split('\n')[0]}`,
    );
  }
  return out;
}

interface Cable {
  /** The switch-side port, inside the switch namespace. */
  port: string;
  /** For netwire cables: the process and a way to send it commands. */
  wire?: { child: ChildProcess; command(line: string): Promise<void> };
}

/** Starts `netwire` in the switch namespace and waits for its "ready". */
function startWire(binary: string, switchNs: string, hostTap: string, switchTap: string): Promise<Cable['wire'] & object> {
  const child = spawn('ip', ['netns', 'exec', switchNs, binary, hostTap, switchTap], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      const w = waiters.shift();
      if (!w) continue;
      if (line === 'ready' || line === 'ok') w.resolve();
      else w.reject(new Error(`netwire: ${line}`));
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.once('exit', (code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`netwire exited with ${code}: ${err.trim()}`));
  });
  const next = () => new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }));
  const command = (line: string) => {
    const done = next();
    child.stdin!.write(`${line}\n`);
    return done;
  };
  return next().then(() => ({ child, command }));
}

/**
 * Builds an empty test network (the switch); add hosts with {@link TestNetwork.addHost}. A process-exit hook
 * tears it down too, so a failing test leaves nothing behind.
 */
export async function createTestNetwork(opts: { cable?: 'auto' | 'veth' | 'netwire' } = {}): Promise<TestNetwork> {
  if (process.platform !== 'linux') throw new NetnsUnavailableError(`multi-host tests need Linux network namespaces; this is ${process.platform}`);
  if (process.getuid?.() !== 0) {
    throw new NetnsUnavailableError('multi-host tests need root to create network namespaces (ip netns add); CI runs them as root: run this test as root (sudo)');
  }
  await removeStaleNamespaces();
  const id = randomBytes(3).toString('hex');
  const subnet = `10.231.${randomInt(0, 256)}`;
  const nsName = (host: string) => `${NS_PREFIX}${process.pid}-${id}-${host}`;
  const switchNs = nsName('sw');
  const created = await sh('ip', ['netns', 'add', switchNs]);
  if (created.code !== 0) {
    throw new NetnsUnavailableError(`cannot create a network namespace (ip netns add ${switchNs}: ${created.stderr.trim() || `exit ${created.code}`}); multi-host tests need root and a kernel with network namespaces`);
  }
  const namespaces: string[] = [switchNs];
  const children = new Set<ChildProcess>();
  const servers = new Set<net.Server>();
  const sockets = new Set<net.Socket>();
  const hosts = new Map<string, NetHost>();
  const cables = new Map<string, Cable>();
  const reserved = new Set<string>();
  let nextIndex = 1;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `orchnet-${id}-`));
  let tornDown = false;

  // Synchronous, for the exit hook: nothing asynchronous runs once the process is exiting.
  const teardownSync = () => {
    if (tornDown) return;
    tornDown = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const ns of namespaces.reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // Already gone.
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', teardownSync);

  let cable: 'veth' | 'netwire';
  let netwire: string | undefined;
  try {
    await ip(['-n', switchNs, 'link', 'set', 'lo', 'up']);
    await ip(['-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', switchNs, 'link', 'set', 'br0', 'up']);
    const wanted = opts.cable ?? 'auto';
    cable = wanted === 'auto' ? ((await netemAvailable(switchNs)) ? 'veth' : 'netwire') : wanted;
    if (cable === 'netwire') netwire = await buildNetwire(dir);
  } catch (err) {
    teardownSync();
    process.removeListener('exit', teardownSync);
    throw err;
  }

  const track = (child: ChildProcess) => {
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };

  const network: TestNetwork = {
    id,
    subnet,
    cable,

    async addHost(name) {
      if (!/^[a-z0-9-]{1,20}$/.test(name)) throw new Error(`host name "${name}": use 1-20 of a-z, 0-9, -`);
      if (hosts.has(name) || reserved.has(name)) throw new Error(`host "${name}" exists`);
      // Taken before the first await, so hosts added concurrently get distinct ports and addresses.
      const index = nextIndex++;
      reserved.add(name);
      if (index > 250) throw new Error('at most 250 hosts per test network');
      const ns = nsName(name);
      await ip(['netns', 'add', ns]);
      namespaces.push(ns);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      const port = `p${index}`;
      const entry: Cable = { port };
      if (cable === 'veth') {
        await ip(['-n', switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      } else {
        const hostTap = `h${index}`;
        entry.wire = await startWire(netwire!, switchNs, hostTap, port);
        track(entry.wire.child);
        await ip(['-n', switchNs, 'link', 'set', hostTap, 'netns', ns]);
        await ip(['-n', ns, 'link', 'set', hostTap, 'name', 'eth0']);
      }
      await ip(['-n', switchNs, 'link', 'set', port, 'master', 'br0']);
      await ip(['-n', switchNs, 'link', 'set', port, 'up']);
      const host: NetHost = { name, ns, ip: `${subnet}.${index + 1}`, iface: 'eth0' };
      await ip(['-n', ns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      hosts.set(name, host);
      cables.set(name, entry);
      return host;
    },

    host(name) {
      const h = hosts.get(name);
      if (!h) throw new Error(`no host "${name}" in test network ${id}`);
      return h;
    },

    spawn(host, command, args, options = {}) {
      return track(spawn('ip', ['netns', 'exec', host.ns, command, ...args], options));
    },

    run(host, command, args, options = {}) {
      return new Promise((resolve) => {
        const child = track(spawn('ip', ['netns', 'exec', host.ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env }));
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
        // 'close', not 'exit': the process can exit before its stdout has been read to the end.
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
        });
      });
    },

    async linkDown(host) {
      await ip(['-n', switchNs, 'link', 'set', cables.get(host.name)!.port, 'down']);
    },

    async linkUp(host) {
      await ip(['-n', switchNs, 'link', 'set', cables.get(host.name)!.port, 'up']);
    },

    async setDelay(host, ms) {
      if (!Number.isInteger(ms) || ms < 0 || ms > 60_000) throw new Error(`delay ${ms} ms: use an integer 0-60000`);
      const entry = cables.get(host.name)!;
      if (entry.wire) return entry.wire.command(`delay ${ms}`);
      const args = ms === 0 ? ['qdisc', 'del', 'dev', 'eth0', 'root'] : ['qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', `${ms}ms`];
      const r = await sh('ip', ['netns', 'exec', host.ns, 'tc', ...args]);
      if (r.code !== 0 && ms !== 0) throw new Error(`tc ${args.join(' ')} in ${host.name} failed: ${r.stderr.trim()}`);
    },

    async forwardToLoopback(from, to, port) {
      const sock = path.join(dir, `fwd-${from.name}-${to}-${port}.sock`);
      // The far end, inside `from`: a Unix socket (file paths cross namespaces) to TCP `to`:`port`.
      const script = `const net=require('net');const [p,h,port]=process.argv.slice(1);
net.createServer((c)=>{const t=net.connect(Number(port),h);c.pipe(t);t.pipe(c);
const end=()=>{c.destroy();t.destroy();};c.on('error',end);t.on('error',end);c.on('close',end);t.on('close',end);})
.listen(p,()=>process.stdout.write('ready\\n'));process.stdin.on('end',()=>process.exit(0));process.stdin.resume();`;
      const child = network.spawn(from, process.execPath, ['-e', script, sock, to, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve();
        });
        child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
        child.once('exit', (code) => reject(new Error(`forwarder in ${from.name} exited ${code}: ${out}`)));
      });
      const server = net.createServer((c) => {
        sockets.add(c);
        const u = net.connect(sock);
        sockets.add(u);
        c.pipe(u);
        u.pipe(c);
        const end = () => {
          c.destroy();
          u.destroy();
          sockets.delete(c);
          sockets.delete(u);
        };
        c.on('error', end);
        u.on('error', end);
        c.on('close', end);
        u.on('close', end);
      });
      servers.add(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return (server.address() as net.AddressInfo).port;
    },

    async teardown() {
      if (tornDown) return;
      for (const s of servers) s.close();
      for (const s of sockets) s.destroy();
      const exits = [...children].map((c) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve()))));
      for (const c of children) c.kill('SIGKILL');
      await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
      teardownSync();
      process.removeListener('exit', teardownSync);
    },
  };
  return network;
}
