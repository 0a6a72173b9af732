#!/usr/bin/env bash
# System packages the test suite needs: Chromium for the browser tests, gettext for translations.
# Installed with apt-get when missing and we are root (as on CI); otherwise say what is missing.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v msgfmt >/dev/null 2>&1 || missing+=(gettext)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing ${missing[*]} (Debian packages)..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "Missing system packages: ${missing[*]}. Install them (e.g. sudo apt-get install ${missing[*]})." >&2
    exit 1
fi
