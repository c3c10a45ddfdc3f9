/**
 * A keychain for Linux machines without a desktop session (a server, an ssh login, a container), where no
 * Secret Service runs and DBUS_SESSION_BUS_ADDRESS is unset. Orch never falls back to writing private keys to a
 * file, so `orch up` starts what a desktop login would: a private D-Bus session with gnome-keyring's Secret
 * Service, whose keyring lives in <ORCH_HOME>/keyring, encrypted with a password the operator types (or gives in
 * ORCH_KEYRING_PASSWORD). It stays unlocked while `orch up` runs; other `orch` commands on this machine find it
 * through <ORCH_HOME>/run/session-bus.
 *
 * With a desktop session (DBUS_SESSION_BUS_ADDRESS set), on macOS and on Windows, nothing here runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { orchHome, ensurePrivateDir } from '../infra/paths';
import { Env, processEnv } from '../infra/settings';
import { missingUpSettings, upRunsInSessionKeyring } from '../bin/up-process.mjs';

export const KEYRING_PASSWORD_ENV = Env.keyringPassword;
const INSIDE_ENV = Env.sessionKeyring;
const INSTALL_SCRIPT = fileURLToPath(new URL('../infra/install-keyring-packages.sh', import.meta.url));

function runDir(home: string): string {
  return path.join(home, 'run');
}

export function sessionBusFile(home: string): string {
  return path.join(runDir(home), 'session-bus');
}

/** True in the `orch up` that runs inside Orch's own keyring session. */
export function insideSessionKeyring(env: NodeJS.ProcessEnv = processEnv()): boolean {
  return env[INSIDE_ENV] === '1';
}

/** For any `orch` command: use the session bus of a running `orch up`, when this shell has none of its own. */
export function adoptSessionBus(env: NodeJS.ProcessEnv = processEnv()): void {
  if (process.platform !== 'linux' || env.DBUS_SESSION_BUS_ADDRESS) return;
  const file = sessionBusFile(orchHome(env));
  if (!fs.existsSync(file)) return;
  const address = fs.readFileSync(file, 'utf8').trim();
  if (address) env.DBUS_SESSION_BUS_ADDRESS = address;
}

/** Inside the session `orch up` made: record its bus address for the other commands. */
export function publishSessionBus(home: string, env: NodeJS.ProcessEnv = processEnv()): void {
  if (env[INSIDE_ENV] !== '1' || !env.DBUS_SESSION_BUS_ADDRESS) return;
  ensurePrivateDir(runDir(home));
  fs.writeFileSync(sessionBusFile(home), `${env.DBUS_SESSION_BUS_ADDRESS}\n`, { mode: 0o600 });
}

export function withdrawSessionBus(home: string, env: NodeJS.ProcessEnv = processEnv()): void {
  if (env[INSIDE_ENV] !== '1') return;
  fs.rmSync(sessionBusFile(home), { force: true });
}

/** Whether `cmd` is an executable file in a directory of PATH (what `command -v` finds, without starting a shell). */
function have(cmd: string, env: NodeJS.ProcessEnv = processEnv()): boolean {
  return (env.PATH ?? '')
    .split(path.delimiter)
    .filter(Boolean)
    .some((dir) => {
      try {
        fs.accessSync(path.join(dir, cmd), fs.constants.X_OK);
        return fs.statSync(path.join(dir, cmd)).isFile();
      } catch {
        return false;
      }
    });
}

async function readHidden(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode?.(true);
  stdin.resume();
  let value = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          stdin.off('data', onData);
          stdin.setRawMode?.(false);
          stdin.pause();
          process.stderr.write('\n');
          return resolve(value);
        }
        if (ch === '\u0003') {
          stdin.setRawMode?.(false);
          return reject(new Error('cancelled'));
        }
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export type SessionKeyringOutcome = { kind: 'not-needed' } | { kind: 'ran'; exitCode: number } | { kind: 'unavailable'; message: string };

/**
 * When `orch up` runs on Linux with no session bus: re-runs it inside a private session with an unlocked
 * keyring under ORCH_HOME, and returns its exit code. Otherwise `not-needed`.
 */
export async function runUpInSessionKeyring(argv: string[], entry: string, env: NodeJS.ProcessEnv = processEnv()): Promise<SessionKeyringOutcome> {
  if (!upRunsInSessionKeyring(env)) return { kind: 'not-needed' };
  const home = orchHome(env);
  const keyringData = ensurePrivateDir(path.join(ensurePrivateDir(home), 'keyring'));
  const exists = fs.existsSync(path.join(keyringData, 'keyrings'));
  if (!have('dbus-run-session') || !have('gnome-keyring-daemon')) {
    // Debian's gnome-keyring and dbus, installed the same way the test suite gets them (root or sudo -n).
    spawnSync('bash', [INSTALL_SCRIPT], { stdio: 'inherit' });
  }
  const missing = ['dbus-run-session', 'gnome-keyring-daemon'].filter((c) => !have(c));
  if (missing.length) {
    return {
      kind: 'unavailable',
      message: `no OS keychain here: this Linux session has no D-Bus session bus, and ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed. Install them (apt-get install gnome-keyring dbus) so Orch can keep its private keys in a keyring, or run Orch inside a desktop session.`,
    };
  }
  let password = env[KEYRING_PASSWORD_ENV];
  if (!password) {
    if (!process.stdin.isTTY) {
      return {
        kind: 'unavailable',
        message: `no desktop session: Orch will start a keyring for its private keys in ${keyringData}, and needs its password. Run \`orch up\` in a terminal to type it, or set ${KEYRING_PASSWORD_ENV}.`,
      };
    }
    process.stderr.write(
      exists
        ? `No desktop session: Orch unlocks its own keyring (${keyringData}).\n`
        : `No desktop session: Orch keeps its private keys in a keyring of its own (${keyringData}), encrypted with a password you choose now.\n`,
    );
    password = await readHidden(exists ? 'Keyring password: ' : 'New keyring password: ');
    if (!exists) {
      const again = await readHidden('Repeat it: ');
      if (again !== password) return { kind: 'unavailable', message: 'the two passwords differ; nothing was created' };
    }
    if (!password) return { kind: 'unavailable', message: 'an empty keyring password is not accepted' };
  }
  // The password arrives on stdin, never in an environment variable or an argument.
  const inner = `
set -eu
IFS= read -r pw || true
keyring_env="$(printf %s "$pw" | gnome-keyring-daemon --unlock --components=secrets)" || { echo "orch: could not unlock the keyring (wrong password?)" >&2; exit 1; }
unset pw
for line in $keyring_env; do export "$line"; done
i=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q "boolean true"; do
  i=$((i + 1)); if [ "$i" -ge 250 ]; then echo "orch: the keyring did not start" >&2; exit 1; fi; sleep 0.02
done
printf %s "$$" > "$ORCH_UP_PIDFILE"
exec "$@" </dev/null
`;
  const pidFile = path.join(ensurePrivateDir(runDir(home)), 'orch-up.pid');
  fs.rmSync(pidFile, { force: true });
  // The inner `orch up` starts with the process settings it runs with (bin/up-process.mjs; bin/orch.mjs left them to
  // this session), so it need not start itself again.
  const upSettings = missingUpSettings(process.execArgv, env);
  const childEnv: NodeJS.ProcessEnv = {
    ...env,
    ...upSettings.env,
    [Env.home]: home,
    [INSIDE_ENV]: '1',
    [Env.upPidfile]: pidFile,
    [Env.upLauncherFd]: '3',
    // Its start-up timeline (`orch up --timings`) counts from this process's start, the keyring's start included.
    [Env.upStartedAt]: String(Math.round(performance.timeOrigin)),
    XDG_DATA_HOME: keyringData,
    XDG_RUNTIME_DIR: ensurePrivateDir(runDir(home)),
  };
  delete childEnv[KEYRING_PASSWORD_ENV];
  const child = spawn('dbus-run-session', ['--', 'sh', '-c', inner, 'orch-keyring', process.execPath, ...process.execArgv, ...upSettings.nodeFlags, entry, ...argv], {
    env: childEnv,
    // Descriptor 3: a pipe whose other end only this process holds. Killed outright (SIGKILL, which it cannot hand
    // on), it closes, and the inner `orch up` ends at once the same way (bin/orch.mjs, ORCH_UP_LAUNCHER_FD): whoever
    // holds the pid users see stops `orch up`, as on the desktop path; then the bus and the keyring end with it.
    stdio: ['pipe', 'inherit', 'inherit', 'pipe'],
    // Its own process group: a terminal's Ctrl-C reaches only this process, which hands it to `orch up` alone, so
    // the bus and the keyring stay up until `orch up` has stopped cleanly.
    detached: true,
  });
  child.stdin!.end(`${password}\n`);
  // Signals go to the inner `orch up` itself (its pid is in the pid file: `exec` kept the shell's), which stops
  // cleanly; then dbus-run-session ends the bus and the keyring daemon.
  const forward = (signal: NodeJS.Signals) => {
    try {
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      if (pid > 0) process.kill(pid, signal);
    } catch {
      child.kill(signal);
    }
  };
  process.on('SIGINT', () => forward('SIGINT'));
  process.on('SIGTERM', () => forward('SIGTERM'));
  const exitCode = await new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
  fs.rmSync(pidFile, { force: true });
  return { kind: 'ran', exitCode };
}
