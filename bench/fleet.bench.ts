/**
 * Orch against ssh on a fleet of hosts on one machine (issue 7), both measured in one run, in the same network
 * namespaces, over the same cables:
 *
 *   npm run bench:fleet    (tsx bench/fleet.bench.ts [--delay-ms 10] [--groups 10] [--fleet 10,50,100]
 *                           [--round-trips 200] [--ssh-round-trips 60] [--repeats 3])
 *
 *   desktop ─┐            ┌─ fleet-0: agents 0, 10, 20, ... and an sshd
 *            ├─ bridge ───┼─ fleet-1: agents 1, 11, 21, ... and an sshd
 *   relay  ──┘            └─ ... fleet-9
 *
 * Every agent is a real `orch-agent run` (its own state directory, its own key, enrolled with `orch-agent enroll`,
 * admitted by the desktop over its relay connection), the relay is `orch-relay start --admin-key`, and each fleet
 * host also runs Debian's sshd (its own config, throwaway host and client keys in a temp dir, a port on the
 * host's own address, and an empty home for root in its own mount namespace: see startSshd). 100 namespaces would mean 100 user-space cables on a 2-core machine, so the agents share
 * `--groups` namespaces (agent k lives in fleet-(k mod groups)); each agent is still its own process with its own
 * relay connection, and N parallel ssh calls go to the sshd of the same hosts (call k to fleet-(k mod groups)).
 * Every frame a fleet host sends is delayed by `--delay-ms` (netem, or the user-space TAP cable where the kernel
 * has no netem), so any round trip with a fleet host costs at least that much.
 *
 * What is measured, from a driver process inside the desktop's namespace (this file again, with --driver):
 * - round trip: Orch's command transport as the worker uses it (connectRelayTransports: sealed command →
 *   relay → agent, which checks its policy, records the command in its ledger, runs `echo ok` without a shell and
 *   seals the result → relay → desktop, opened and checked), one at a time, against `ssh HOST echo ok` with a fresh
 *   connection each time and through a reused ControlMaster connection. The transport, not `orch run`: ssh has no
 *   workflow engine around it, and a one-node DAG adds Temporal's scheduling (tens of ms on loopback) to one side
 *   only. The three alternate in blocks, so drift on a shared machine hits all alike.
 * - fan-out: `echo ok` on each of N agents at once (N transport calls in parallel, timed to the last result) against
 *   N parallel fresh `ssh` calls; the median of --repeats. With it, the relay's and the agents' resident memory.
 *
 * Needs root (namespaces) and /usr/sbin/sshd (`apt-get install openssh-server`). sshd needs its privilege
 * separation directory /run/sshd, which Debian's service makes at start; the bench makes it (empty, 0755) if missing.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectRelayTransports } from '../desktop-worker/relay-pool';
import { ORCH_AGENT_BIN_ENV, resolveAgentBinary } from '../infra/agent-binary';
import { keyToHex } from '../protocol/envelope';
import { ed25519KeyPair, x25519KeyPair } from '../protocol/primitives';
import { RelayClient } from '../protocol/relay-client';
import { createTestNetwork, type NetHost, type TestNetwork } from '../test/support/netns';
import { agentReady, enrollAgentIn, orchAt, processMemory, startAgentIn, startRelayIn, RELAY_PORT, type RunningAgent } from '../test/support/multihost';
import { benchArgs } from './args';
import { benchRow } from './report';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const SSHD = '/usr/sbin/sshd';
const SSH_PORT = 2222;

interface DriverConfig {
  home: string;
  identity: { signPublic: string; signSecret: string; boxPublic: string; boxSecret: string };
  relayPid: number;
  agents: Array<{ name: string; group: number; pid: number }>;
  ssh: { key: string; knownHosts: string; controlDir: string; hosts: string[] };
  roundTrips: number;
  sshRoundTrips: number;
  fleet: number[];
  repeats: number;
}

interface DriverResult {
  roundTrip: Record<'orch' | 'sshFresh' | 'sshReused', number[]>;
  fanOut: Array<{ n: number; orchMs: number; sshMs: number; relayRss: number; relayPeak: number; agentRssMean: number; agentRssMax: number }>;
}

// ---------------------------------------------------------------------------------------------- helpers

function run(command: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/** Runs `fn` over `items`, at most `limit` at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

// ------------------------------------------------------------------------------------------------ driver

/** Runs inside the desktop's namespace: both sides, measured from the same process. */
async function driver(configFile: string): Promise<void> {
  const cfg = JSON.parse(fs.readFileSync(configFile, 'utf8')) as DriverConfig;
  const h = (s: string) => Buffer.from(s, 'hex');
  const identity = { sign: { publicKey: h(cfg.identity.signPublic), secretKey: h(cfg.identity.signSecret) }, box: { publicKey: h(cfg.identity.boxPublic), secretKey: h(cfg.identity.boxSecret) } };
  const links = await connectRelayTransports({ home: cfg.home, identity, waitMs: 15_000, heartbeatMs: 0, resultGraceMs: 15_000 });
  const sshBase = (host: string) => ['-F', '/dev/null', '-i', cfg.ssh.key, '-o', `UserKnownHostsFile=${cfg.ssh.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', '-p', String(SSH_PORT), `root@${host}`];
  const mux = ['-o', 'ControlMaster=auto', '-o', `ControlPath=${cfg.ssh.controlDir}/cm-%C`, '-o', 'ControlPersist=300'];
  const rtHost = cfg.ssh.hosts[cfg.agents[0]!.group]!;
  let seq = 0;
  const orch = async (agent: string) => {
    const r = await links.transport.run({ tenant: 't', agent, argv: ['echo', 'ok'], timeoutSeconds: 20, commandId: `bench-${process.pid}/run/n${++seq}` });
    if (r.stdout !== 'ok\n') throw new Error(`orch ${agent}: ${JSON.stringify(r)}`);
  };
  const ssh = async (host: string, reuse: boolean) => {
    const r = await run('ssh', [...(reuse ? mux : []), ...sshBase(host), 'echo', 'ok']);
    if (r.code !== 0 || r.stdout !== 'ok\n') throw new Error(`ssh ${host}: exit ${r.code}: ${r.stderr.trim()}`);
  };
  try {
    const relays = links.relays();
    if (!relays.every((r) => r.connected)) throw new Error(`the desktop did not log in to the relay: ${JSON.stringify(relays)}`);
    // Warm-up: first connections, first ledger writes, the master connection.
    for (let i = 0; i < 10; i++) await orch(cfg.agents[0]!.name);
    for (let i = 0; i < 3; i++) await ssh(rtHost, false);
    for (let i = 0; i < 5; i++) await ssh(rtHost, true);

    const roundTrip: DriverResult['roundTrip'] = { orch: [], sshFresh: [], sshReused: [] };
    const blocks = 5;
    for (let b = 0; b < blocks; b++) {
      process.stderr.write(`round trips: block ${b + 1}/${blocks}\n`);
      for (let i = 0; i < cfg.roundTrips / blocks; i++) {
        const t0 = process.hrtime.bigint();
        await orch(cfg.agents[0]!.name);
        roundTrip.orch.push(ms(t0));
      }
      for (let i = 0; i < cfg.sshRoundTrips / blocks; i++) {
        const t0 = process.hrtime.bigint();
        await ssh(rtHost, false);
        roundTrip.sshFresh.push(ms(t0));
      }
      for (let i = 0; i < cfg.roundTrips / blocks; i++) {
        const t0 = process.hrtime.bigint();
        await ssh(rtHost, true);
        roundTrip.sshReused.push(ms(t0));
      }
    }

    const fanOut: DriverResult['fanOut'] = [];
    for (const n of cfg.fleet) {
      const agents = cfg.agents.slice(0, n);
      const orchTimes: number[] = [];
      const sshTimes: number[] = [];
      for (let r = 0; r < cfg.repeats; r++) {
        process.stderr.write(`fan-out to ${n}: ${r + 1}/${cfg.repeats}\n`);
        let t0 = process.hrtime.bigint();
        await Promise.all(agents.map((a) => orch(a.name)));
        orchTimes.push(ms(t0));
        t0 = process.hrtime.bigint();
        await Promise.all(agents.map((a) => ssh(cfg.ssh.hosts[a.group]!, false)));
        sshTimes.push(ms(t0));
      }
      const relay = processMemory(cfg.relayPid);
      const agentRss = agents.map((a) => processMemory(a.pid).rss);
      fanOut.push({
        n,
        orchMs: median(orchTimes),
        sshMs: median(sshTimes),
        relayRss: relay.rss,
        relayPeak: relay.peak,
        agentRssMean: agentRss.reduce((x, y) => x + y, 0) / agentRss.length,
        agentRssMax: Math.max(...agentRss),
      });
    }
    const result: DriverResult = { roundTrip, fanOut };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await run('ssh', [...mux, '-O', 'exit', ...sshBase(rtHost)]);
    await links.close();
  }
}

// -------------------------------------------------------------------------------------------------- main

async function startSshd(network: TestNetwork, host: NetHost, dir: string): Promise<void> {
  const config = path.join(dir, `sshd-${host.name}.conf`);
  fs.writeFileSync(
    config,
    [
      `Port ${SSH_PORT}`,
      `ListenAddress ${host.ip}`,
      `HostKey ${path.join(dir, 'host_ed25519')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PidFile none',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      // The keys live in a temp dir, not a home directory sshd would check.
      'StrictModes no',
      // N parallel fresh connections to one sshd: the default (10:30:100) would drop some at random.
      'MaxStartups 200',
      'MaxSessions 200',
      '',
    ].join('\n'),
  );
  // `ip netns exec` gives sshd a mount namespace of its own (slave to ours, so nothing propagates back): there,
  // root's home is an empty directory. Debian's bash reads ~/.bashrc even for `ssh HOST CMD`, and this machine's
  // runs `pyenv init` (about a second of CPU); a fresh server's does nothing for a non-interactive shell.
  const child = network.spawn(host, 'sh', ['-c', 'mount --bind "$0" /root && exec "$1" -D -e -f "$2"', path.join(dir, 'home'), SSHD, config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 15_000;
  while (!log.includes('Server listening')) {
    if (child.exitCode !== null) throw new Error(`sshd in ${host.name} exited ${child.exitCode}: ${log}`);
    if (Date.now() > deadline) throw new Error(`sshd in ${host.name} did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  const { values, count } = benchArgs(
    `
npm run bench:fleet [-- OPTIONS]   Orch vs ssh on a fleet of hosts in network namespaces (root; asserts nothing)

  --delay-ms MS           delay of every frame a fleet host sends (default 10)
  --groups N              network namespaces the agents share (default 10)
  --fleet LIST            fan-out sizes, agents at once (default 10,50,100)
  --round-trips N         Orch command round trips, one at a time (default 200)
  --ssh-round-trips N     ssh round trips of each kind (default 60)
  --repeats N             fan-out figures are the median of N (default 3)
`,
    {
      driver: { type: 'string' },
      'delay-ms': { type: 'string', default: '10' },
      groups: { type: 'string', default: '10' },
      fleet: { type: 'string', default: '10,50,100' },
      'round-trips': { type: 'string', default: '200' },
      'ssh-round-trips': { type: 'string', default: '60' },
      repeats: { type: 'string', default: '3' },
    },
  );
  if (values.driver !== undefined) return driver(values.driver);
  const delayMs = count(values['delay-ms'], '--delay-ms', { zero: true });
  const groups = count(values.groups, '--groups');
  const fleet = values.fleet.split(',').map((f) => count(f, '--fleet'));
  count(values['round-trips'], '--round-trips');
  count(values['ssh-round-trips'], '--ssh-round-trips');
  count(values.repeats, '--repeats');
  const total = Math.max(...fleet);
  if (!fs.existsSync(SSHD)) {
    // A missing prerequisite, not a failure of the bench: one line, no stack.
    process.stderr.write(`bench:fleet: ${SSHD} not found: install Debian's openssh-server (apt-get update && apt-get install openssh-server)\n`);
    process.exit(1);
  }
  if (!fs.existsSync('/run/sshd')) fs.mkdirSync('/run/sshd', { mode: 0o755 });
  // The agent as `orch up` runs it (built from agent/ with the release flags, cached), unless ORCH_AGENT_BIN names one.
  process.env[ORCH_AGENT_BIN_ENV] = await resolveAgentBinary();

  // The load average too: on a shared machine, other work competes with both sides alike.
  const machine = `${os.availableParallelism()} CPUs (${os.cpus()[0]?.model.trim() ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, Linux ${os.release()}, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)} at start`;
  process.stderr.write(`fleet bench on ${machine}\n`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-fleet-bench-'));
  fs.chmodSync(work, 0o755);
  const network = await createTestNetwork();
  const began = Date.now();
  try {
    const desktopHost = await network.addHost('desktop');
    const relayHost = await network.addHost('relay');
    const hosts: NetHost[] = [];
    for (let g = 0; g < groups; g++) hosts.push(await network.addHost(`fleet-${g}`));
    const desktop = { sign: ed25519KeyPair(), box: x25519KeyPair() };
    // The desktop sends a command per round trip and N at once: the per-key default (60/s, burst 120) would
    // measure the rate limit, not the path.
    const relay = await startRelayIn(network, relayHost, { dataDir: path.join(work, 'relay'), adminKey: keyToHex(desktop.sign.publicKey), args: ['--rate-per-second', '2000', '--rate-burst', '4000'] });
    const home = path.join(work, 'desktop');
    fs.mkdirSync(home, { mode: 0o700 });
    const allow = path.join(work, 'allow.yaml');
    fs.writeFileSync(allow, 'version: 1\ncommands:\n  - executable: echo\n    rest: any\n');
    const added = await orchAt(home, ['relay', 'add', 'fleet', '--url', relay.url, '--pin', relay.pin]);
    if (added.code !== 0) throw new Error(added.stderr);

    process.stderr.write(`enrolling ${total} agents in ${groups} namespaces\n`);
    const names = Array.from({ length: total }, (_, k) => `a-${k}`);
    const keys: string[] = new Array<string>(total);
    await pool(names, 8, async (name, k) => {
      const host = hosts[k % groups]!;
      const enrolled = await enrollAgentIn(network, host, { stateDir: path.join(work, 'agents', name), relay, desktop, allow, tier: 'standard' });
      keys[k] = enrolled.signKey;
      const r = await orchAt(home, ['agent', 'add', name, '--key', enrolled.signKey, '--box-key', enrolled.boxKey, '--tier', 'standard', '--allow', allow, '--relay', 'fleet']);
      if (r.code !== 0) throw new Error(r.stderr);
    });
    // Admit them now (the worker would on connecting), so they log in at once instead of backing off.
    const port = await network.forwardToLoopback(desktopHost, relayHost.ip, RELAY_PORT);
    const admin = new RelayClient({ url: `wss://127.0.0.1:${port}/v1/relay`, pin: relay.pin, identity: desktop.sign, onEnvelope: () => {} });
    await admin.start();
    await admin.allow(keys.map((k) => Buffer.from(k, 'hex')));
    await admin.close();

    const agents: RunningAgent[] = [];
    for (const [k, name] of names.entries()) agents.push(await startAgentIn(network, hosts[k % groups]!, path.join(work, 'agents', name), { wait: false }));
    for (const a of agents) await agentReady(a);
    process.stderr.write(`${total} agents connected\n`);

    // ssh: throwaway host and client keys, one sshd per fleet host, a known_hosts that names exactly them.
    const sshDir = path.join(work, 'ssh');
    fs.mkdirSync(sshDir, { mode: 0o700 });
    for (const [file, comment] of [['host_ed25519', 'bench-host'], ['client_ed25519', 'bench-client']] as const) {
      const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path.join(sshDir, file)]);
      if (r.code !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
    }
    fs.copyFileSync(path.join(sshDir, 'client_ed25519.pub'), path.join(sshDir, 'authorized_keys'));
    fs.mkdirSync(path.join(sshDir, 'home'), { mode: 0o700 });
    fs.writeFileSync(path.join(sshDir, 'home', '.bashrc'), '');
    const hostKey = fs.readFileSync(path.join(sshDir, 'host_ed25519.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    fs.writeFileSync(path.join(sshDir, 'known_hosts'), hosts.map((h) => `[${h.ip}]:${SSH_PORT} ${hostKey}\n`).join(''));
    for (const h of hosts) await startSshd(network, h, sshDir);
    const controlDir = path.join(sshDir, 'control');
    fs.mkdirSync(controlDir, { mode: 0o700 });

    for (const h of hosts) await network.setDelay(h, delayMs);

    const cfg: DriverConfig = {
      home,
      identity: { signPublic: desktop.sign.publicKey.toString('hex'), signSecret: desktop.sign.secretKey.toString('hex'), boxPublic: desktop.box.publicKey.toString('hex'), boxSecret: desktop.box.secretKey.toString('hex') },
      relayPid: relay.child.pid!,
      agents: agents.map((a, k) => ({ name: names[k]!, group: k % groups, pid: a.child.pid! })),
      ssh: { key: path.join(sshDir, 'client_ed25519'), knownHosts: path.join(sshDir, 'known_hosts'), controlDir, hosts: hosts.map((h) => h.ip) },
      roundTrips: Number(values['round-trips']),
      sshRoundTrips: Number(values['ssh-round-trips']),
      fleet,
      repeats: Number(values.repeats),
    };
    const cfgFile = path.join(work, 'driver.json');
    fs.writeFileSync(cfgFile, JSON.stringify(cfg), { mode: 0o600 });
    const child = network.spawn(desktopHost, process.execPath, ['--import', 'tsx', SELF, '--driver', cfgFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
    if (code !== 0) throw new Error(`the driver exited ${code}`);
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as DriverResult;
    report(result, { machine, delayMs, groups, cable: network.cable, total, seconds: (Date.now() - began) / 1000 });
  } finally {
    await network.teardown();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function report(r: DriverResult, ctx: { machine: string; delayMs: number; groups: number; cable: string; total: number; seconds: number }): void {
  const line = (cells: string[], widths: number[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const rt = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { p50: percentile(s, 50), p99: percentile(s, 99), n: s.length };
  };
  const orch = rt(r.roundTrip.orch);
  const fresh = rt(r.roundTrip.sshFresh);
  const reused = rt(r.roundTrip.sshReused);
  const f = (x: number) => x.toFixed(1);
  benchRow({ bench: 'fleet', figure: `echo ok round trip p50, ${ctx.delayMs} ms link`, value: orch.p50, unit: 'ms', baseline: 'ssh, reused ControlMaster', baselineValue: reused.p50, ratio: orch.p50 / reused.p50 });
  benchRow({ bench: 'fleet', figure: `echo ok round trip p50, ${ctx.delayMs} ms link`, value: orch.p50, unit: 'ms', baseline: 'ssh, fresh connection', baselineValue: fresh.p50, ratio: orch.p50 / fresh.p50 });
  for (const x of r.fanOut) {
    benchRow({ bench: 'fleet', figure: `fan-out to ${x.n} agents, last result`, value: x.orchMs, unit: 'ms', baseline: `${x.n} parallel fresh ssh`, baselineValue: x.sshMs, ratio: x.orchMs / x.sshMs });
  }
  const w = [44, 9, 9, 6, 22];
  console.log(`\nFleet benchmark: Orch (desktop → relay → agent → back) against ssh, in network namespaces`);
  console.log(`machine: ${ctx.machine}`);
  console.log(`link: ${ctx.delayMs} ms added to every frame a fleet host sends (${ctx.cable} cable); ${ctx.total} agents in ${ctx.groups} namespaces\n`);
  console.log(line(['round trip of `echo ok`', 'p50 ms', 'p99 ms', 'n', 'p50 ratio Orch / it'], w));
  console.log(line(['Orch: sealed command via relay, agent runs it', f(orch.p50), f(orch.p99), String(orch.n), ''], w));
  console.log(line(['ssh HOST echo ok, fresh connection', f(fresh.p50), f(fresh.p99), String(fresh.n), `${(orch.p50 / fresh.p50).toFixed(2)}x`], w));
  console.log(line(['ssh HOST echo ok, reused ControlMaster', f(reused.p50), f(reused.p99), String(reused.n), `${(orch.p50 / reused.p50).toFixed(2)}x`], w));
  const w2 = [6, 12, 12, 14, 24, 24];
  console.log('');
  console.log(line(['N', 'Orch ms', 'ssh ms', 'Orch / ssh', 'relay RSS (peak)', 'agent RSS mean (max)'], w2));
  for (const x of r.fanOut) {
    console.log(line([String(x.n), f(x.orchMs), f(x.sshMs), `${(x.orchMs / x.sshMs).toFixed(2)}x`, `${mib(x.relayRss)} (${mib(x.relayPeak)})`, `${(x.agentRssMean / 2 ** 20).toFixed(1)} MiB (${(x.agentRssMax / 2 ** 20).toFixed(1)})`], w2));
  }
  console.log(`\nfan-out: time to the last of N results (median of the repeats); ssh: N parallel fresh connections. bench took ${ctx.seconds.toFixed(0)} s`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
