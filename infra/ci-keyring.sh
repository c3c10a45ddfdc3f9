#!/usr/bin/env bash
# Run a command with a real, unlocked OS keychain (a Secret Service) on a Linux machine with no desktop session:
# CI containers, servers, `ssh` sessions. Orch keeps the desktop's private keys in the OS keychain, and its tests
# use the real one, never a stand-in.
#
#   bash infra/ci-keyring.sh npm test
#   bash infra/ci-keyring.sh node --import tsx --test test/integration/keychain.test.ts
#
# What it does:
#   1. installs Debian's gnome-keyring and dbus when they are missing (apt-get, non-interactive; root, or sudo
#      without a password);
#   2. starts a private session bus with `dbus-run-session`, and inside it gnome-keyring-daemon with only its
#      Secret Service component, unlocked with a random password;
#   3. runs the command there and exits with the command's exit code; the bus, the daemon and the temporary
#      keyring folder go away with it.
#
# Why a fresh folder: gnome-keyring keeps its keyrings in $XDG_DATA_HOME/keyrings. A keyring left by an earlier run
# was created with another password; `--unlock` cannot open it, the daemon would ask for the password through a
# prompt, and with no display the prompt fails, so every keychain call would fail. A fresh XDG_DATA_HOME (and
# XDG_RUNTIME_DIR for the daemon's control socket) per run means the keyring is created on the spot with the
# password we just piped in. HOME and XDG_CACHE_HOME are left alone so npm's cache and Orch's cached Temporal CLI
# are still found. Note: with ORCH_HOME unset, Orch's data directory follows XDG_DATA_HOME, so it is fresh too.
#
# Inside, ORCH_CI_KEYRING=1 is set; running this script again from inside just runs the command.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: bash infra/ci-keyring.sh COMMAND [ARG...]   (runs COMMAND with an unlocked Secret Service)" >&2
  exit 2
fi

if [ "${ORCH_CI_KEYRING:-}" = "1" ]; then
  exec "$@"
fi

if [ "$(uname -s)" != "Linux" ]; then
  # macOS Keychain and Windows Credential Manager need no daemon of ours.
  exec "$@"
fi

bash "$(dirname "$0")/install-keyring-packages.sh"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/orch-keyring.XXXXXXXX")"
cleanup() { rm -rf "$scratch"; }
trap cleanup EXIT
mkdir -p "$scratch/data" "$scratch/run"
chmod 700 "$scratch" "$scratch/run"

# The inner script runs inside the private bus. Arguments arrive as "$@", so nothing is re-quoted.
inner='
set -eu
# A random password made here and only piped in: the keyring is new and thrown away after the run, and a password
# passed through the environment would stay readable in /proc/PID/environ of the daemon.
keyring_env="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d " \n" | gnome-keyring-daemon --unlock --components=secrets)" || {
  echo "[ci-keyring] gnome-keyring-daemon --unlock failed" >&2; exit 1; }
# Lines of NAME=VALUE (GNOME_KEYRING_CONTROL, ...): export them for the command.
for line in $keyring_env; do export "$line"; done
# The daemon forks; wait until it owns the Secret Service name so the first keychain call cannot race it.
i=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q "boolean true"; do
  i=$((i + 1))
  if [ "$i" -ge 50 ]; then echo "[ci-keyring] no Secret Service on the session bus after 5 s" >&2; exit 1; fi
  sleep 0.1
done
"$@"
'

set +e
# (As root in a container dbus-daemon warns that it cannot raise its fd limit: harmless.)
ORCH_CI_KEYRING=1 \
XDG_DATA_HOME="$scratch/data" \
XDG_RUNTIME_DIR="$scratch/run" \
  dbus-run-session -- sh -c "$inner" ci-keyring "$@"
rc=$?
set -e
exit "$rc"
