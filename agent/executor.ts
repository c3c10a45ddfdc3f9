/**
 * Runs one allowed command: no shell, argv as an array, a scrubbed environment, stdin closed, its own process
 * group, a timeout that ends the whole group, and output capped per stream.
 *
 * Process group: the child is started `detached`, so it leads a new group and everything it forks stays in it
 * (unless it calls setsid itself, which only daemons do). On timeout the group gets SIGTERM, then SIGKILL after
 * `killGraceMs`. When the command itself exits, anything it left running in the group is killed too: a command
 * must not leave processes behind (they would hold its output pipes open and outlive the ledger's record).
 * Use `systemd-run` for work that should outlive the command.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { DEFAULT_MAX_OUTPUT_BYTES } from '../protocol/agent-messages';
import { SAFE_PATH, resolveExecutable } from './policy';

export const DEFAULT_KILL_GRACE_MS = 2000;

export type ExecErrorCode =
  /** The executable does not exist or is not executable (checked again here, right before spawning). */
  | 'executable_not_found'
  /** The working directory does not exist or is not a directory. */
  | 'bad_cwd'
  /** The kernel refused to start the process (EACCES, ENOEXEC, E2BIG, ...). */
  | 'spawn_failed';

export class ExecError extends Error {
  override readonly name = 'ExecError';
  constructor(
    readonly code: ExecErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ExecRequest {
  /** argv[0] is the executable: an absolute path, or a bare name looked up in SAFE_PATH. */
  argv: readonly string[];
  timeoutMs: number;
  cwd?: string;
  /** Cap per stream, over the whole run. Default 1 MiB. */
  maxOutputBytes?: number;
  /** HOME for the command: the agent's state directory. */
  home: string;
  killGraceMs?: number;
  /** Called with the child's pid once it started (its process group id is the same). */
  onStart?: (pid: number) => void;
}

export interface ExecResult {
  /** null when a signal ended the process. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: Buffer;
  stderr: Buffer;
  /** Some output was read and dropped because a stream passed the cap. */
  truncated: boolean;
  durationMs: number;
  pid: number;
}

/** The whole environment a command sees; nothing is inherited from the agent. */
export function scrubbedEnv(home: string): Record<string, string> {
  return { PATH: SAFE_PATH, LANG: 'C.UTF-8', HOME: home };
}

/** The exit status a shell would report: the code, or 128 + the signal number. */
export function shellStatus(r: Pick<ExecResult, 'exitCode' | 'signal'>): number {
  if (r.exitCode !== null) return r.exitCode;
  const n = r.signal ? os.constants.signals[r.signal] : undefined;
  return 128 + (n ?? 0);
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}

class CappedSink {
  private readonly chunks: Buffer[] = [];
  private stored = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  write(chunk: Buffer): void {
    const room = this.cap - this.stored;
    if (room <= 0) {
      if (chunk.length > 0) this.truncated = true;
      return;
    }
    const keep = chunk.length <= room ? chunk : chunk.subarray(0, room);
    if (keep.length < chunk.length) this.truncated = true;
    this.chunks.push(Buffer.from(keep));
    this.stored += keep.length;
  }
  buffer(): Buffer {
    return Buffer.concat(this.chunks, this.stored);
  }
}

/**
 * Run a command and wait for it. Throws ExecError when it cannot be started; everything after a successful
 * start (non-zero exit, signal, timeout) is a result.
 *
 * @example
 * const r = await execute({ argv: ['/usr/bin/uptime'], timeoutMs: 10_000, home: '/var/lib/orch-agent' });
 */
export async function execute(req: ExecRequest): Promise<ExecResult> {
  const name = req.argv[0];
  if (typeof name !== 'string' || name.length === 0) throw new ExecError('executable_not_found', 'argv[0] is empty');
  const executable = resolveExecutable(name);
  if (!executable) throw new ExecError('executable_not_found', `${name.slice(0, 200)} is not an executable file (searched ${name.startsWith('/') ? 'that path' : SAFE_PATH})`);
  const cwd = req.cwd ?? '/';
  try {
    if (!fs.statSync(cwd).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new ExecError('bad_cwd', `working directory ${cwd.slice(0, 200)} does not exist or is not a directory`);
  }
  const cap = req.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const grace = req.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const started = process.hrtime.bigint();

  const child = spawn(executable, req.argv.slice(1), {
    shell: false,
    detached: true,
    cwd,
    env: scrubbedEnv(req.home),
    stdio: ['ignore', 'pipe', 'pipe'],
    argv0: name,
    windowsHide: true,
  });

  const out = new CappedSink(cap);
  const err = new CappedSink(cap);
  // Keep reading past the cap so the child never blocks on a full pipe; only storing stops.
  child.stdout!.on('data', (d: Buffer) => out.write(d));
  child.stderr!.on('data', (d: Buffer) => err.write(d));

  return await new Promise<ExecResult>((resolve, reject) => {
    let timedOut = false;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let termTimer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const clear = () => {
      if (termTimer) clearTimeout(termTimer);
      if (killTimer) clearTimeout(killTimer);
    };

    child.once('error', (e: NodeJS.ErrnoException) => {
      clear();
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      const code: ExecErrorCode = e.code === 'ENOENT' ? 'executable_not_found' : 'spawn_failed';
      reject(new ExecError(code, `cannot start ${name.slice(0, 200)}: ${e.code ?? e.message}`));
    });

    if (child.pid === undefined) return; // 'error' follows
    const pid = child.pid;
    req.onStart?.(pid);

    termTimer = setTimeout(() => {
      timedOut = true;
      killGroup(pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), grace);
    }, req.timeoutMs);

    child.once('exit', (code, signal) => {
      exited = { code, signal };
      // Leftovers in the group would keep our pipes open and outlive the command: end them now.
      killGroup(pid, 'SIGKILL');
    });
    // 'close' comes after 'exit' and after both pipes reached EOF, so all output has been read.
    child.once('close', () => {
      clear();
      const e = exited ?? { code: child.exitCode, signal: child.signalCode };
      resolve({
        exitCode: e.code,
        signal: e.signal,
        timedOut,
        stdout: out.buffer(),
        stderr: err.buffer(),
        truncated: out.truncated || err.truncated,
        durationMs: Number((process.hrtime.bigint() - started) / 1_000_000n),
        pid,
      });
    });
  });
}
