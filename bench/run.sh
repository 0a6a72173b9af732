#!/usr/bin/env bash
# `make bench`: chatsite against the upstream itself and the prototype design; writes bench/RESULTS.md.
# Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and Redis (BENCH_REDIS_URL,
# default redis://127.0.0.1:6379/3). `bench/run.sh --quick` is a short smoke run (levels 1 and 20)
# that writes bench/out/RESULTS-quick.md instead. See bench/runner.py for the other settings.
set -euo pipefail
cd "$(dirname "$0")/.."
# 1,000 chats hold ~3,000 sockets across the load generator, chatsite and the upstream.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != "unlimited" ] && [ "$(ulimit -n)" -lt 8192 ]; then
    echo "bench: open-file limit is $(ulimit -n); raise it (ulimit -n 8192) for 1,000 concurrent chats" >&2
fi
exec .venv/bin/python -m bench.runner "$@"
