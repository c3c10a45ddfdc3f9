#!/usr/bin/env bash
# Installs Debian packages for Orch's own scripts (the keyring, Chromium for the UI test): as root, or with sudo
# that needs no password; otherwise says what to run and exits 1. Progress goes to stderr.
#
#   bash infra/apt-install.sh "what they are for" PACKAGE... [-- APT-GET-OPTION...]
set -euo pipefail

what="$1"
shift
packages=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do packages+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
say() { echo "[apt-install] $*" >&2; }

if ! command -v apt-get >/dev/null 2>&1; then
  say "no apt-get here: install ${packages[*]} ($what) by hand"
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    say "${packages[*]} ($what) missing: run as root, or install them: sudo apt-get install ${packages[*]}"
    exit 1
  fi
fi
say "installing ${packages[*]} ($what) with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq "$@" "${packages[@]}" >&2
