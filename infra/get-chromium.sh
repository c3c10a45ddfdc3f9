#!/usr/bin/env bash
# Prints the path of a Chromium for the end-to-end test of the Temporal UI (test/e2e), installing Debian's
# `chromium` package first when it is missing.
#
#   bash infra/get-chromium.sh            # prints e.g. /usr/bin/chromium
#   ORCH_CHROMIUM=/opt/chrome/chrome bash infra/get-chromium.sh   # an existing browser: checked and printed
#
# Why Debian's package and not a test tool's own download (`npx playwright install`): the browser then comes from
# the same signed archive as the rest of the machine, and the download servers of test tools are not reachable
# from every CI or build host. playwright-core drives it through `executablePath`, so it never downloads one.
#
# Idempotent and fast when the browser is there (no apt-get at all). Installing needs root or `sudo` without a
# password; otherwise it says what to run and exits 1. Progress goes to stderr; only the path goes to stdout.
set -euo pipefail

say() { echo "[get-chromium] $*" >&2; }

check() {
  # The version line proves the binary starts (shared libraries present), not only that the file exists.
  local version
  if ! version="$("$1" --version 2>/dev/null)"; then
    say "$1 is there but does not start: run '$1 --version' to see why"
    exit 1
  fi
  say "$version"
  echo "$1"
  exit 0
}

if [ -n "${ORCH_CHROMIUM:-}" ]; then
  if [ ! -x "$ORCH_CHROMIUM" ]; then
    say "ORCH_CHROMIUM=$ORCH_CHROMIUM is not an executable file: unset it, or point it at a Chromium or Chrome binary"
    exit 1
  fi
  check "$ORCH_CHROMIUM"
fi

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  check "$CHROMIUM"
fi

if [ "$(uname -s)" != "Linux" ]; then
  say "no $CHROMIUM here: install Chromium or Chrome and set ORCH_CHROMIUM to its binary"
  exit 1
fi
# With its recommended packages: fonts-liberation among them, without which screenshots show boxes for text.
bash "$(dirname "$0")/apt-install.sh" "the browser of the end-to-end UI test, about 100 MB" chromium

if [ ! -x "$CHROMIUM" ]; then
  say "apt-get installed chromium but $CHROMIUM is not there: check 'dpkg -L chromium'"
  exit 1
fi
check "$CHROMIUM"
