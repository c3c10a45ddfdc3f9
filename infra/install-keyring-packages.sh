#!/usr/bin/env bash
# Installs what a Secret Service needs on a Linux machine without a desktop session: Debian's gnome-keyring and
# dbus (dbus-run-session, dbus-send). Does nothing when they are there. Used by infra/ci-keyring.sh (the test
# suite's throwaway keyring) and by `orch up` (Orch's own keyring on a headless machine).
# Needs root or passwordless sudo to install; otherwise it says what to run and exits 1.
set -euo pipefail

missing=()
command -v dbus-run-session >/dev/null 2>&1 || missing+=(dbus)
command -v dbus-send >/dev/null 2>&1 || missing+=(dbus-bin)
command -v gnome-keyring-daemon >/dev/null 2>&1 || missing+=(gnome-keyring)
[ "${#missing[@]}" -eq 0 ] && exit 0

bash "$(dirname "$0")/apt-install.sh" "a Secret Service for the OS keychain" gnome-keyring dbus dbus-bin -- --no-install-recommends
