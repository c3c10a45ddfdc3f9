#!/usr/bin/env bash
# Installs what a Secret Service needs on a Linux machine without a desktop session: Debian's gnome-keyring and
# dbus (dbus-run-session, dbus-send). Does nothing when they are there. Used by infra/ci-keyring.sh (the test
# suite's throwaway keyring) and by `orch up` (Orch's own keyring on a headless machine).
# Needs root or passwordless sudo to install; otherwise it says what to run and exits 1.
set -euo pipefail

say() { echo "[keyring] $*" >&2; }

missing=()
command -v dbus-run-session >/dev/null 2>&1 || missing+=(dbus)
command -v dbus-send >/dev/null 2>&1 || missing+=(dbus-bin)
command -v gnome-keyring-daemon >/dev/null 2>&1 || missing+=(gnome-keyring)
[ "${#missing[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  say "missing ${missing[*]} and no apt-get here: install gnome-keyring and dbus (dbus-run-session) by hand"
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    say "missing ${missing[*]}: run as root, or install them: sudo apt-get install gnome-keyring dbus"
    exit 1
  fi
fi
say "installing ${missing[*]} (apt-get, once)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends gnome-keyring dbus dbus-bin >&2
