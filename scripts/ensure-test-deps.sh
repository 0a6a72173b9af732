#!/usr/bin/env bash
# What the test suite needs besides Python packages: Chromium and a CJK font (browser tests), gettext
# (translations), binutils (the embedded model's portable-build check) and a Redis server on 127.0.0.1:6379 (cache
# and cross-worker throttle tests). Installed with apt-get and started when missing and we are root (as on CI);
# otherwise say what is missing. PostgreSQL is optional:
# `DATABASE_URL=postgres://... make test` runs the suite on it.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v msgfmt >/dev/null 2>&1 || missing+=(gettext)
command -v objdump >/dev/null 2>&1 || missing+=(binutils)  # the portable-build check disassembles llama.cpp
# Korean text in browser screenshots needs a CJK font (without one, 한국어 renders as empty boxes).
(command -v fc-list >/dev/null 2>&1 && fc-list | grep -qi "CJK") || missing+=(fonts-noto-cjk)
redis_up() { command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }
if ! redis_up && ! command -v redis-server >/dev/null 2>&1; then missing+=(redis-server); fi

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing ${missing[*]} (Debian packages)..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "Missing system packages: ${missing[*]}. Install them (e.g. sudo apt-get install ${missing[*]})." >&2
        exit 1
    fi
fi

if ! redis_up; then
    echo "Starting a throwaway Redis on 127.0.0.1:6379 (no persistence) for the tests..."
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in $(seq 20); do redis_up && break; sleep 0.5; done
    redis_up || { echo "Redis did not start on 127.0.0.1:6379." >&2; exit 1; }
fi
