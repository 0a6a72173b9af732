"""The benchmark runner (`make bench`): the upstream, chatsite and the prototype design side by side in one run.

It starts the fake upstream, chatsite under uvicorn (PostgreSQL + Redis) and the prototype design under
uvicorn, pins the server under test and the load (generator and upstream) to different cores, then for
each concurrency level runs the load generator against each target in turn while it polls the server's
memory and chatsite's PostgreSQL connections every 100 ms. After each chatsite run it checks that every
chat's turns are stored. Then (not with --quick) it splits chatsite's CPU per chat into a fixed part and
a part per streamed token (1-token and 101-token answers at 30 concurrent), measures the DB cost of one
append and of the conversation list, prints the table and writes bench/RESULTS.md
(bench/out/RESULTS-quick.md with --quick). `--report-only` writes the last run's report again, from
bench/out/run.json (after editing bench/ANALYSIS.md).

Environment: BENCH_LEVELS (e.g. "1,100,500,1000"), BENCH_DURATION and BENCH_RAMP (seconds),
BENCH_PG (the PostgreSQL server, default postgres://postgres@127.0.0.1:5432), BENCH_DB (the database made
there, default chatsite_bench), BENCH_REDIS_URL,
BENCH_POOL_SIZE (chatsite's DB pool), BENCH_PROFILE=LEVEL to record chatsite with py-spy at that level
(`--gil`: where the CPU goes; bench/out/profile-chatsite-LEVEL.txt, collapsed stacks).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import OUT, ROOT, report
from bench.processes import (
    PYTHON,
    UVICORN,
    Cores,
    Processes,
    chatsite_env,
    reset_database,
    run_checked,
    wait_for_http,
)
from bench.results import Row, RunResults, summarize
from bench.sampling import Monitor
from bench.workload import (
    CHAT_SECONDS,
    SPLIT_LEVEL,
    SPLIT_TOKENS,
    TARGET_NAMES,
    TARGETS,
    UPSTREAM_TOKEN_DELAY,
    UPSTREAM_TOKENS,
    UPSTREAM_TTFT,
)
from tests.servers import free_port

BENCH_DB = os.environ.get("BENCH_DB", "chatsite_bench")


def log(message: str):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise SystemExit(f"{name} must be a number, not {value!r}") from None


class Bench:
    """One run: its settings (from the environment), the servers it starts and the results it collects."""

    def __init__(self, *, quick: bool):
        self.quick = quick
        default_levels = "1,20" if quick else "1,100,400,1000"
        self.levels = [int(x) for x in os.environ.get("BENCH_LEVELS", default_levels).split(",") if x.strip()]
        self.duration = env_float("BENCH_DURATION", 2.0 if quick else 5.0)
        self.ramp = env_float("BENCH_RAMP", 0.5 if quick else 1.0)
        self.profile_level = int(env_float("BENCH_PROFILE", 0))
        self.pg_server = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
        self.cores = Cores.split()
        self.processes = Processes()
        self.results = RunResults(quick=quick, pool_size=int(env_float("BENCH_POOL_SIZE", 20)))
        self.ports = {name: free_port() for name in ("upstream", "chatsite", "prototype")}
        self.upstream_url = f"http://127.0.0.1:{self.ports['upstream']}"
        self.urls = {
            "direct": self.upstream_url,
            "chatsite": f"http://127.0.0.1:{self.ports['chatsite']}",
            "prototype": f"http://127.0.0.1:{self.ports['prototype']}",
        }
        # shared by chatsite's server and its setup scripts
        self.chatsite_env = chatsite_env(
            database_url=f"{self.pg_server}/{BENCH_DB}", upstream_url=self.upstream_url,
            redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"), cache_prefix="chatsite-bench",
            pool_size=self.results.pool_size,
        )

    def start_upstream(self, tokens: int):
        command = [
            PYTHON, "-m", "conversations.tests.fake_upstream", "--port", str(self.ports["upstream"]),
            "--ttft", str(UPSTREAM_TTFT), "--token-delay", str(UPSTREAM_TOKEN_DELAY), "--tokens", str(tokens),
        ]
        self.upstream = self.processes.start("upstream", self.cores.prefix("load") + command, dict(os.environ))
        wait_for_http(f"{self.upstream_url}/v1/models")

    def start_servers(self):
        self.start_upstream(UPSTREAM_TOKENS)

        uvicorn_options = ["--host", "127.0.0.1", "--workers", "1", "--no-access-log", "--log-level", "warning"]
        self.chatsite = self.processes.start(
            "chatsite",
            self.cores.prefix("server")
            + [UVICORN, "chatsite.asgi:application", "--port", str(self.ports["chatsite"]), *uvicorn_options],
            self.chatsite_env,
        )
        prototype_env = {**os.environ, "OPENAI_BASE_URL": f"{self.upstream_url}/v1", "OPENAI_API_KEY": "bench"}
        self.prototype = self.processes.start(
            "prototype",
            self.cores.prefix("server")
            + [UVICORN, "bench.prototype_app:app", "--port", str(self.ports["prototype"]), *uvicorn_options],
            prototype_env,
        )
        wait_for_http(f"{self.urls['chatsite']}/healthz")
        wait_for_http(f"{self.urls['prototype']}/chat", method="POST", body=b'{"content": "warm up"}')

    def server_pid(self, target: str) -> int:
        return {"direct": self.upstream, "chatsite": self.chatsite, "prototype": self.prototype}[target].pid

    def run_target(self, level: int, target: str, *, plan: str | None = None, record: bool = True) -> Row | None:
        out = OUT / f"result-{target}-{plan or level}.json"
        command = self.cores.prefix("load") + [
            PYTHON, "-m", "bench.loadgen", "--target", target, "--url", self.urls[target], "--users", str(level),
            "--ramp", str(self.ramp if record else 0), "--duration", str(self.duration if record else 0.5),
            "--out", str(out),
        ]
        if target == "chatsite":
            command += ["--plan", str(OUT / f"plan-{plan or level}.json")]
            monitor = Monitor(self.server_pid(target), f"{self.pg_server}/postgres", BENCH_DB)
        else:
            monitor = Monitor(self.server_pid(target))
        profiler = None
        py_spy = shutil.which("py-spy", path=f"{Path(PYTHON).parent}:{os.environ.get('PATH', '')}")
        if record and target == "chatsite" and level == self.profile_level and py_spy:
            profiler = subprocess.Popen(
                [py_spy, "record", "--pid", str(self.chatsite.pid), "--rate", "250", "--format", "raw", "--gil",
                 "--output", str(OUT / f"profile-chatsite-{level}.txt"), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
        monitor.start()
        try:
            run_checked(command, dict(os.environ), f"load generator ({target}, {level})")
        finally:
            monitor.stop()
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(30)
        if not record:
            return None
        row = summarize(level, target, json.loads(out.read_text()), monitor)
        if target == "chatsite":
            stored = run_checked(
                [PYTHON, "-m", "bench.chatsite_data", "verify", "--plan", str(OUT / f"plan-{plan or level}.json"),
                 "--chats", str(out)],
                self.chatsite_env, "verify",
            )
            row.stored = json.loads(stored.strip().splitlines()[-1])
        return row

    def cost_split(self):
        """chatsite at SPLIT_LEVEL with 1-token and 101-token answers (the upstream restarted for each)."""
        for tokens in SPLIT_TOKENS:
            log(f"cost split: chatsite, {SPLIT_LEVEL} concurrent, {tokens}-token answers")
            self.processes.stop(self.upstream)
            self.start_upstream(tokens)
            row = self.run_target(SPLIT_LEVEL, "chatsite", plan=f"split-{tokens}")
            row.target = f"chatsite, {tokens}-token answers"
            self.results.split_rows.append(row)
            log(f"  {row.chats} chats, {row.errors} errors, {row.cpu_ms_per_chat or 0:.1f} ms CPU per chat")

    def run(self):
        OUT.mkdir(parents=True, exist_ok=True)
        started_at = datetime.datetime.now(datetime.UTC)
        began = time.monotonic()
        log(f"levels {self.levels}, {self.ramp}s ramp + {self.duration}s per run; "
                 f"server cores {self.cores.server}, load cores {self.cores.load}")
        reset_database(self.pg_server, BENCH_DB, self.chatsite_env)
        # Enough conversations for every chat a user can finish before the deadline (one per chat).
        per_user = math.ceil((self.ramp + self.duration) / CHAT_SECONDS) + 2
        plans = [f"{level}={level}" for level in self.levels] + ["warmup=8"]
        run_checked([PYTHON, "-m", "bench.chatsite_data", "create", "--per-user", str(per_user),
                     "--out-dir", str(OUT), "--plans", *plans], self.chatsite_env, "bench data")
        if not self.quick:  # a 1-token chat takes UPSTREAM_TTFT: more of them per user
            split_per_user = math.ceil((self.ramp + self.duration) / UPSTREAM_TTFT) + 2
            run_checked([PYTHON, "-m", "bench.chatsite_data", "create", "--per-user", str(split_per_user),
                         "--out-dir", str(OUT), "--plans", *(f"split-{t}={SPLIT_LEVEL}" for t in SPLIT_TOKENS)],
                        self.chatsite_env, "bench data (cost split)")
        try:
            self.start_servers()
            log("warming up chatsite and the prototype design")
            self.run_target(8, "chatsite", plan="warmup", record=False)
            self.run_target(8, "prototype", record=False)
            for level in self.levels:
                for target in TARGETS:
                    log(f"{level} concurrent: {TARGET_NAMES[target]}")
                    row = self.run_target(level, target)
                    self.results.rows.append(row)
                    log(f"  {row.chats} chats, {row.errors} errors, TTFT p50 {report.ms(row.ttft_p50)} ms, "
                             f"total p50 {report.ms(row.total_p50)} ms, {row.chats_per_second:.1f} chats/s")
            if not self.quick:
                self.cost_split()
        finally:
            self.processes.stop_all()
        log("DB cost of one append and of the conversation list")
        costs_out = OUT / "db_costs.json"
        run_checked(self.cores.prefix("server") + [PYTHON, "-m", "bench.db_costs", "--out", str(costs_out)],
                    self.chatsite_env, "db costs")
        self.results.db_costs = json.loads(costs_out.read_text())
        self.results.machine = report.describe_run(
            started_at=started_at, elapsed=time.monotonic() - began, cores=self.cores, ramp=self.ramp,
            duration=self.duration, pool_size=self.results.pool_size,
        )
        self.results.save(OUT / "run.json")
        log(f"written {report.write(self.results).relative_to(ROOT)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="levels 1 and 20, short runs (CI smoke)")
    parser.add_argument("--report-only", action="store_true", help="write the last run's report again")
    args = parser.parse_args()
    if args.report_only:
        log(f"written {report.write(RunResults.load(OUT / 'run.json')).relative_to(ROOT)}")
        return
    # Stopped from outside: still stop the servers (the `finally` in Bench.run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    Bench(quick=args.quick).run()


if __name__ == "__main__":
    main()
