"""The benchmark runner (`make bench`): the upstream, chatsite and the seed design side by side in one run.

It starts the fake upstream, chatsite under uvicorn (PostgreSQL + Redis) and the seed design under
uvicorn, pins the server under test and the load (generator and upstream) to different cores, then for
each concurrency level runs the load generator against each target in turn while it polls the server's
memory and chatsite's PostgreSQL connections every 100 ms. After each chatsite run it checks that every
chat's turns are stored. Then (not with --quick) it splits chatsite's CPU per chat into a fixed part and
a part per streamed token (1-token and 101-token answers at 30 concurrent), measures the DB cost of one
append and of the conversation list, prints the table and writes bench/RESULTS.md
(bench/out/RESULTS-quick.md with --quick).

Environment: BENCH_LEVELS (e.g. "1,100,500,1000"), BENCH_DURATION and BENCH_RAMP (seconds),
BENCH_PG (the PostgreSQL server, default postgres://postgres@127.0.0.1:5432), BENCH_REDIS_URL,
BENCH_POOL_SIZE (chatsite's DB pool), BENCH_PROFILE=LEVEL to record chatsite with py-spy at that level
(`--gil`: where the CPU goes; bench/out/profile-chatsite-LEVEL.txt, collapsed stacks).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import psycopg

from bench.loadgen import percentile

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PYTHON = str(Path(sys.executable))
UVICORN = str(Path(sys.executable).parent / "uvicorn")

# The upstream of the targets: 500 ms to the first token, then 50 tokens 20 ms apart.
UPSTREAM_TTFT = 0.5
UPSTREAM_TOKEN_DELAY = 0.02
UPSTREAM_TOKENS = 50
CHAT_SECONDS = UPSTREAM_TTFT + (UPSTREAM_TOKENS - 1) * UPSTREAM_TOKEN_DELAY
# The cost split: chatsite's CPU per chat with answers of 1 and of 101 tokens, at a level that leaves
# its core idle part of the time, gives its fixed cost per chat and its cost per streamed token.
SPLIT_LEVEL = 30
SPLIT_TOKENS = (1, 101)

TARGETS = ("direct", "chatsite", "seed")
TARGET_NAMES = {
    "direct": "upstream direct",
    "chatsite": "chatsite (SSE, uvicorn)",
    "seed": "seed design (FastAPI def, sync openai)",
}
BENCH_DB = "chatsite_bench"


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise SystemExit(f"{name} must be a number, not {value!r}") from None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- processes -----------------------------------------------------------------------------------


@dataclass
class Cores:
    server: list[int]
    load: list[int]

    @classmethod
    def split(cls) -> Cores:
        """The server under test gets the first core; the load generator and the upstream the rest."""
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2 or not shutil.which("taskset"):
            return cls(available, available)
        return cls(available[:1], available[1:])

    @property
    def pinned(self) -> bool:
        return self.server != self.load

    def prefix(self, role: str) -> list[str]:
        if not self.pinned:
            return []
        cpus = self.server if role == "server" else self.load
        return ["taskset", "-c", ",".join(map(str, cpus))]


class Processes:
    """Every process the runner starts, stopped (by pid, whole session) when it ends."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        log = open(OUT / f"{name}.log", "w")  # noqa: SIM115 (kept open for the process's life)
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(process)
        return process

    def stop_all(self):
        for process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def wait_for_http(url: str, method: str = "GET", body: bytes | None = None, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(url, data=body, method=method,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up; see bench/out/*.log") from None
            time.sleep(0.2)


def run_checked(command: list[str], env: dict, what: str) -> str:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout


# --- measuring while a target runs ---------------------------------------------------------------


class Monitor(threading.Thread):
    """Polls the server's memory and chatsite's DB connections every 100 ms."""

    INTERVAL = 0.1

    def __init__(self, pid: int, pg_dsn: str | None):
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.pg_dsn = pg_dsn
        self.halt = threading.Event()
        self.peak_rss = 0
        self.max_connections = self.max_active = self.max_idle_in_transaction = 0
        self.samples = 0
        self.cpu_seconds = 0.0
        self.load_average = os.getloadavg()[0]

    def cpu_time(self) -> float:
        try:
            times = self.process.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return times.user + times.system

    def run(self):
        pg = psycopg.connect(self.pg_dsn, autocommit=True) if self.pg_dsn else None
        cpu_at_start = self.cpu_time()
        try:
            while not self.halt.is_set():
                self.sample(pg)
                self.halt.wait(self.INTERVAL)
            self.sample(pg)
            self.cpu_seconds = self.cpu_time() - cpu_at_start
        finally:
            if pg is not None:
                pg.close()

    def sample(self, pg):
        try:
            processes = [self.process, *self.process.children(recursive=True)]
            self.peak_rss = max(self.peak_rss, sum(p.memory_info().rss for p in processes))
        except psutil.NoSuchProcess:
            pass
        if pg is not None:
            total, active, idle_in_transaction = pg.execute(
                "SELECT count(*), count(*) FILTER (WHERE state = 'active'),"
                " count(*) FILTER (WHERE state LIKE 'idle in transaction%%')"
                " FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [BENCH_DB],
            ).fetchone()
            self.max_connections = max(self.max_connections, total)
            self.max_active = max(self.max_active, active)
            self.max_idle_in_transaction = max(self.max_idle_in_transaction, idle_in_transaction)
        self.samples += 1

    def stop(self):
        self.halt.set()
        self.join()


@dataclass
class Row:
    level: int
    target: str
    chats: int = 0
    errors: int = 0
    error_kinds: dict = field(default_factory=dict)
    ttft_p50: float | None = None
    ttft_p99: float | None = None
    total_p50: float | None = None
    total_p99: float | None = None
    gap_p50: float | None = None
    gap_p99: float | None = None
    chats_per_second: float = 0.0
    peak_rss_mb: float = 0.0
    db_connections: int | None = None
    db_active: int | None = None
    db_idle_in_transaction: int | None = None
    stored: dict | None = None
    elapsed: float = 0.0
    cpu_ms_per_chat: float | None = None
    load_average: float = 0.0


def summarize(level: int, target: str, result: dict, monitor: Monitor) -> Row:
    chats = result["chats"]
    ok = [c for c in chats if not c["error"]]
    row = Row(level=level, target=target, chats=len(chats), errors=len(chats) - len(ok), elapsed=result["elapsed"])
    for chat in chats:
        if chat["error"]:
            kind = chat["error"].split(":")[0][:60]
            row.error_kinds[kind] = row.error_kinds.get(kind, 0) + 1
    if ok:
        ttfts = sorted(c["ttft"] for c in ok)
        totals = sorted(c["total"] for c in ok)
        row.ttft_p50, row.ttft_p99 = percentile(ttfts, 50), percentile(ttfts, 99)
        row.total_p50, row.total_p99 = percentile(totals, 50), percentile(totals, 99)
    if result["gaps"].get("count"):
        row.gap_p50, row.gap_p99 = result["gaps"]["p50"], result["gaps"]["p99"]
    # Throughput in the steady part of the run: answers completed between the end of the ramp and the
    # deadline (users keep chatting back to back until then).
    window_start, window_end = result["ramp"], result["ramp"] + result["duration"]
    done_in_window = sum(1 for c in ok if window_start <= c["start"] + c["total"] <= window_end)
    row.chats_per_second = done_in_window / result["duration"]
    row.peak_rss_mb = monitor.peak_rss / 2**20
    row.cpu_ms_per_chat = monitor.cpu_seconds / len(ok) * 1000 if ok else None
    row.load_average = monitor.load_average
    if monitor.pg_dsn:
        row.db_connections = monitor.max_connections
        row.db_active = monitor.max_active
        row.db_idle_in_transaction = monitor.max_idle_in_transaction
    return row


# --- the run -------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.quick = args.quick
        default_levels = "1,20" if self.quick else "1,100,400,1000"
        self.levels = [int(x) for x in os.environ.get("BENCH_LEVELS", default_levels).split(",") if x.strip()]
        self.duration = env_float("BENCH_DURATION", 2.0 if self.quick else 5.0)
        self.ramp = env_float("BENCH_RAMP", 0.5 if self.quick else 1.0)
        self.pool_size = int(env_float("BENCH_POOL_SIZE", 20))
        self.profile_level = int(env_float("BENCH_PROFILE", 0))
        self.pg_server = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
        self.redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
        self.cores = Cores.split()
        self.processes = Processes()
        self.rows: list[Row] = []
        self.split_rows: list[Row] = []
        self.notes: list[str] = []
        self.db_costs: dict = {}
        self.ports = {name: free_port() for name in ("upstream", "chatsite", "seed")}
        self.upstream_url = f"http://127.0.0.1:{self.ports['upstream']}"
        self.urls = {
            "direct": self.upstream_url,
            "chatsite": f"http://127.0.0.1:{self.ports['chatsite']}",
            "seed": f"http://127.0.0.1:{self.ports['seed']}",
        }

    # environment shared by chatsite's server and its setup scripts
    def chatsite_env(self) -> dict:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "CHATSITE_ENV_FILE": "/nonexistent",
            "DATABASE_URL": f"{self.pg_server}/{BENCH_DB}",
            "REDIS_URL": self.redis_url,
            "CACHE_KEY_PREFIX": "chatsite-bench",
            "LLM_BACKEND": "openai",
            "OPENAI_BASE_URL": f"{self.upstream_url}/v1",
            "OPENAI_API_KEY": "bench",
            "OPENAI_MODEL": "fake-model",
            "OPENAI_MAX_RETRIES": "0",  # like the direct and seed clients: a failure shows as an error
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "ALLOWED_HOSTS": "127.0.0.1",
            "CHAT_THROTTLE_RATE": "1000000/min",
            "CHAT_MODEL_TITLES": "0",  # a title is a second model call per new chat: not what is timed here
            "DB_POOL_MAX_SIZE": str(self.pool_size),
            "LOG_LEVEL": "WARNING",
        }

    def log(self, message: str):
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def reset_database(self):
        with psycopg.connect(f"{self.pg_server}/postgres", autocommit=True) as pg:
            pg.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            pg.execute(f"CREATE DATABASE {BENCH_DB}")
        run_checked([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], self.chatsite_env(), "migrate")

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
            self.chatsite_env(),
        )
        seed_env = {**os.environ, "OPENAI_BASE_URL": f"{self.upstream_url}/v1", "OPENAI_API_KEY": "bench"}
        self.seed = self.processes.start(
            "seed",
            self.cores.prefix("server")
            + [UVICORN, "bench.seed_app:app", "--port", str(self.ports["seed"]), *uvicorn_options],
            seed_env,
        )
        wait_for_http(f"{self.urls['chatsite']}/healthz")
        wait_for_http(f"{self.urls['seed']}/chat", method="POST", body=b'{"content": "warm up"}')

    def server_pid(self, target: str) -> int:
        return {"direct": self.upstream, "chatsite": self.chatsite, "seed": self.seed}[target].pid

    def run_target(self, level: int, target: str, *, plan: str | None = None, record: bool = True) -> Row | None:
        out = OUT / f"result-{target}-{plan or level}.json"
        command = self.cores.prefix("load") + [
            PYTHON, "-m", "bench.loadgen", "--target", target, "--url", self.urls[target], "--users", str(level),
            "--ramp", str(self.ramp if record else 0), "--duration", str(self.duration if record else 0.5),
            "--out", str(out),
        ]
        if target == "chatsite":
            command += ["--plan", str(OUT / f"plan-{plan or level}.json")]
        monitor = Monitor(self.server_pid(target), self.pg_dsn() if target == "chatsite" else None)
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
                self.chatsite_env(), "verify",
            )
            row.stored = json.loads(stored.strip().splitlines()[-1])
        return row

    def cost_split(self):
        """chatsite at SPLIT_LEVEL with 1-token and 101-token answers (the upstream restarted for each)."""
        for tokens in SPLIT_TOKENS:
            self.log(f"cost split: chatsite, {SPLIT_LEVEL} concurrent, {tokens}-token answers")
            os.killpg(self.upstream.pid, signal.SIGTERM)
            try:
                self.upstream.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.upstream.pid, signal.SIGKILL)
                self.upstream.wait(10)
            self.start_upstream(tokens)
            row = self.run_target(SPLIT_LEVEL, "chatsite", plan=f"split-{tokens}")
            row.target = f"chatsite, {tokens}-token answers"
            self.split_rows.append(row)
            self.log(f"  {row.chats} chats, {row.errors} errors, {row.cpu_ms_per_chat or 0:.1f} ms CPU per chat")

    def pg_dsn(self) -> str:
        return f"{self.pg_server}/postgres"

    def run(self):
        OUT.mkdir(parents=True, exist_ok=True)
        self.started_at = datetime.datetime.now(datetime.UTC)
        began = time.monotonic()
        self.log(f"levels {self.levels}, {self.ramp}s ramp + {self.duration}s per run; "
                 f"server cores {self.cores.server}, load cores {self.cores.load}")
        self.reset_database()
        # Enough conversations for every chat a user can finish before the deadline (one per chat).
        per_user = math.ceil((self.ramp + self.duration) / CHAT_SECONDS) + 2
        plans = [f"{level}={level}" for level in self.levels] + ["warmup=8"]
        run_checked([PYTHON, "-m", "bench.chatsite_data", "create", "--per-user", str(per_user),
                     "--out-dir", str(OUT), "--plans", *plans], self.chatsite_env(), "bench data")
        if not self.quick:  # a 1-token chat takes UPSTREAM_TTFT: more of them per user
            split_per_user = math.ceil((self.ramp + self.duration) / UPSTREAM_TTFT) + 2
            run_checked([PYTHON, "-m", "bench.chatsite_data", "create", "--per-user", str(split_per_user),
                         "--out-dir", str(OUT), "--plans", *(f"split-{t}={SPLIT_LEVEL}" for t in SPLIT_TOKENS)],
                        self.chatsite_env(), "bench data (cost split)")
        try:
            self.start_servers()
            self.log("warming up chatsite and the seed design")
            self.run_target(8, "chatsite", plan="warmup", record=False)
            self.run_target(8, "seed", record=False)
            for level in self.levels:
                for target in TARGETS:
                    self.log(f"{level} concurrent: {TARGET_NAMES[target]}")
                    row = self.run_target(level, target)
                    self.rows.append(row)
                    self.log(f"  {row.chats} chats, {row.errors} errors, TTFT p50 {ms(row.ttft_p50)} ms, "
                             f"total p50 {ms(row.total_p50)} ms, {row.chats_per_second:.1f} chats/s")
            if not self.quick:
                self.cost_split()
        finally:
            self.processes.stop_all()
        self.log("DB cost of one append and of the conversation list")
        costs_out = OUT / "db_costs.json"
        run_checked(self.cores.prefix("server") + [PYTHON, "-m", "bench.db_costs", "--out", str(costs_out)],
                    self.chatsite_env(), "db costs")
        self.db_costs = json.loads(costs_out.read_text())
        self.elapsed = time.monotonic() - began
        self.machine_text = self.machine()
        self.save()
        self.write_report()

    def save(self):
        (OUT / "run.json").write_text(json.dumps({
            "quick": self.quick, "rows": [asdict(row) for row in self.rows], "db_costs": self.db_costs,
            "split_rows": [asdict(row) for row in self.split_rows],
            "machine": self.machine_text, "pool_size": self.pool_size,
        }))

    @classmethod
    def load(cls) -> Bench:
        """The last run, to write its report again (after editing bench/ANALYSIS.md)."""
        data = json.loads((OUT / "run.json").read_text())
        bench = cls(argparse.Namespace(quick=data["quick"]))
        bench.rows = [Row(**row) for row in data["rows"]]
        bench.split_rows = [Row(**row) for row in data.get("split_rows", [])]
        bench.db_costs, bench.machine_text, bench.pool_size = data["db_costs"], data["machine"], data["pool_size"]
        return bench

    def write_report(self):
        report = self.report()
        print(report)
        path = OUT / "RESULTS-quick.md" if self.quick else ROOT / "bench" / "RESULTS.md"
        path.write_text(report)
        self.log(f"written {path.relative_to(ROOT)}")

    # --- the report ------------------------------------------------------------------------------

    def row(self, level: int, target: str) -> Row | None:
        return next((r for r in self.rows if r.level == level and r.target == target), None)

    def table(self) -> str:
        head = ("| level | target | chats | errors | TTFT p50 / p99 ms | +TTFT p50 / p99 ms "
                "| total p50 / p99 ms | +total p50 / p99 ms | gap p50 / p99 ms | chats/s | server CPU ms/chat "
                "| peak RSS MB | DB conns max (active, idle in tx) | load avg |")
        lines = [head, "|" + "---|" * (head.count("|") - 1)]
        for row in self.rows:
            direct = self.row(row.level, "direct")
            if row.target == "direct" or direct is None:
                plus_ttft = plus_total = "–"
            else:
                plus_ttft = f"{diff(row.ttft_p50, direct.ttft_p50)} / {diff(row.ttft_p99, direct.ttft_p99)}"
                plus_total = f"{diff(row.total_p50, direct.total_p50)} / {diff(row.total_p99, direct.total_p99)}"
            db = "–" if row.db_connections is None else (
                f"{row.db_connections} ({row.db_active}, {row.db_idle_in_transaction})")
            errors = str(row.errors) + (
                " (" + ", ".join(f"{k}: {v}" for k, v in row.error_kinds.items()) + ")" if row.error_kinds else "")
            lines.append(
                f"| {row.level} | {row.target} | {row.chats} | {errors} | {ms(row.ttft_p50)} / {ms(row.ttft_p99)} "
                f"| {plus_ttft} | {ms(row.total_p50)} / {ms(row.total_p99)} | {plus_total} "
                f"| {ms(row.gap_p50)} / {ms(row.gap_p99)} | {row.chats_per_second:.1f} "
                f"| {'–' if row.cpu_ms_per_chat is None else f'{row.cpu_ms_per_chat:.1f}'} | {row.peak_rss_mb:.0f} "
                f"| {db} | {row.load_average:.1f} |"
            )
        return "\n".join(lines)

    def stored_lines(self) -> list[str]:
        lines = []
        for row in self.rows:
            if row.target == "chatsite" and row.stored:
                s = row.stored
                lines.append(
                    f"- {row.level} concurrent: {s['chats_sent']} chats sent, {s['user_turns']} user turns and "
                    f"{s['complete_answers']} complete answers stored ({s['other_answers']} answers not complete); "
                    f"{s['chats_stored_complete']}/{s['chats_sent']} chats stored whole; "
                    f"{s['client_ok_and_stored']}/{s['client_ok']} chats the client saw finish are stored; "
                    f"{s['unused_conversations_touched']} unused conversations touched."
                )
        return lines

    def verdicts(self) -> list[str]:
        """The figures the targets ask for (reported, not pass/fail tests), each with the gap to its target."""
        lines = []
        at100, direct100 = self.row(100, "chatsite"), self.row(100, "direct")
        if at100 and at100.cpu_ms_per_chat:
            cpu = at100.cpu_ms_per_chat
            lines.append(f"- **Server CPU per stored 50-token chat at 100 concurrent ≤ 5 ms**: "
                         f"{'met' if cpu <= 5 else 'MISSED'} — {cpu:.1f} ms ({cpu - 5:+.1f} ms vs target).")
        at400, direct400 = self.row(400, "chatsite"), self.row(400, "direct")
        if at400 and direct400 and direct400.chats_per_second:
            share = at400.chats_per_second / direct400.chats_per_second
            lines.append(
                f"- **400 concurrent: ≥ 70 % of the upstream alone's chats/s**: {'met' if share >= 0.7 else 'MISSED'}"
                f" — {at400.chats_per_second:.1f} vs {direct400.chats_per_second:.1f} chats/s = {share:.0%}."
            )
        if at100 and direct100 and at100.ttft_p50 is not None:
            p50 = (at100.ttft_p50 - direct100.ttft_p50) * 1000
            p99 = (at100.ttft_p99 - direct100.ttft_p99) * 1000
            met = p50 <= 5 and p99 <= 25
            lines.append(
                f"- **Added time to the first token at 100 concurrent ≤ 5 ms p50, ≤ 25 ms p99**: "
                f"{'met' if met else 'MISSED'} — +{p50:.1f} ms p50 ({p50 - 5:+.1f} ms vs target), "
                f"+{p99:.1f} ms p99 ({p99 - 25:+.1f} ms vs target)."
            )
        at1000 = self.row(1000, "chatsite")
        if at1000:
            s = at1000.stored or {}
            all_stored = s and s["chats_stored_complete"] == s["chats_sent"] == at1000.chats
            met = at1000.errors == 0 and all_stored
            lines.append(
                f"- **1,000 concurrent: 0 errors, every turn stored**: "
                f"{'met' if met else 'MISSED'} — {at1000.errors} errors in {at1000.chats} chats; "
                f"{s.get('chats_stored_complete', 0)}/{s.get('chats_sent', 0)} chats stored whole; "
                f"max {at1000.db_connections} connections open to the DB (pool {self.pool_size}; "
                f"{at1000.db_active} active, {at1000.db_idle_in_transaction} idle in transaction)."
            )
        followers = OUT / "followers.md"
        lines.append(
            "- **The CPU cost of one more follower of a running answer**: reported below (`python -m bench.followers`)."
            if followers.is_file() else
            "- **The CPU cost of one more follower**: not measured in this run (`python -m bench.followers`)."
        )
        append = self.db_costs.get("append", [])
        if append:
            counts = {tuple(a["queries"]) for a in append}
            flat = len(counts) == 1 and len(next(iter(counts))) == 1
            lines.append(
                f"- Append cost flat from 1 to 1,000 turns (same query count): {'yes' if flat else 'NO'} — "
                + ", ".join(f"{a['history_turns']} turns: {'/'.join(map(str, a['queries']))} queries, "
                            f"{a['db_ms_median']:.1f} ms in the DB" for a in append)
                + " (test: conversations/tests/test_append_cost.py)."
            )
        return lines

    def followers_section(self) -> list[str]:
        path = OUT / "followers.md"
        if not path.is_file():
            return []
        return ["## One more follower of a running answer", "", path.read_text().strip(), ""]

    def split_section(self) -> list[str]:
        if len(self.split_rows) != 2 or not all(r.cpu_ms_per_chat for r in self.split_rows):
            return []
        short, long = self.split_rows
        (t1, t2), (c1, c2) = SPLIT_TOKENS, (short.cpu_ms_per_chat, long.cpu_ms_per_chat)
        per_token = (c2 - c1) / (t2 - t1)
        fixed = c1 - per_token * t1
        lines = [
            "## chatsite's CPU per chat: fixed part and per streamed token",
            "",
            f"chatsite alone at {SPLIT_LEVEL} concurrent (its core not saturated), the upstream answering "
            f"{t1} and then {t2} tokens ({UPSTREAM_TOKEN_DELAY * 1000:.0f} ms apart), server CPU per chat as above:",
            "",
            "| answer | chats | errors | chats stored whole | server CPU ms/chat |",
            "|---|---|---|---|---|",
        ]
        for tokens, row in zip(SPLIT_TOKENS, self.split_rows, strict=True):
            stored = row.stored or {}
            lines.append(f"| {tokens} token{'s' if tokens > 1 else ''} | {row.chats} | {row.errors} "
                         f"| {stored.get('chats_stored_complete', 0)}/{stored.get('chats_sent', 0)} "
                         f"| {row.cpu_ms_per_chat:.1f} |")
        lines += [
            "",
            f"So a chat costs about **{fixed:.1f} ms fixed** (request, auth, throttle, the DB steps, the upstream "
            f"request) **plus {per_token * 1000:.0f} µs per streamed token** (read from the upstream, sent on to "
            f"the client): {fixed + per_token * UPSTREAM_TOKENS:.1f} ms for the {UPSTREAM_TOKENS}-token answers "
            f"above, so one core serves at most about {1000 / (fixed + per_token * UPSTREAM_TOKENS):.0f} chats/s.",
            "",
        ]
        return lines

    def costs_section(self) -> str:
        lines = ["| history turns | queries | DB time (median) ms | whole append (median) ms | turns trimmed |",
                 "|---|---|---|---|---|"]
        for a in self.db_costs.get("append", []):
            lines.append(f"| {a['history_turns']} | {'/'.join(map(str, a['queries']))} | {a['db_ms_median']:.2f} "
                         f"| {a['append_ms_median']:.1f} | {a['dropped_turns']} |")
        listing = self.db_costs.get("list")
        if listing:
            lines += [
                "",
                f"Conversation list (`selectors.conversation_list`) for a user with {listing['conversations']:,} "
                f"conversations: first page of {listing['page_rows']} in {'/'.join(map(str, listing['page_queries']))} "
                f"query, {listing['page_ms_median']:.2f} ms median ({listing['page_ms_max']:.2f} ms max); the "
                f"paginator's count in {'/'.join(map(str, listing['count_queries']))} query, "
                f"{listing['count_ms_median']:.2f} ms median. Plan of the page query:",
                "",
                "```",
                listing["plan"],
                "```",
            ]
        return "\n".join(lines)

    def machine(self) -> str:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        cpu = platform.processor() or ""
        with contextlib.suppress(OSError, StopIteration):
            cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                       if line.startswith("model name"))
        return (
            f"- Date: {self.started_at:%Y-%m-%d %H:%M} UTC; git commit {commit}"
            f"{' (with uncommitted changes)' if dirty else ''}; whole run {self.elapsed:.0f} s\n"
            f"- Machine: {psutil.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}\n"
            f"- Cores: server under test on {self.cores.server}, load generator + fake upstream on "
            f"{self.cores.load}{'' if self.cores.pinned else ' (not pinned: fewer than 2 cores or no taskset)'}; "
            f"PostgreSQL and Redis unpinned\n"
            f"- Upstream: fake OpenAI-compatible server, {UPSTREAM_TTFT * 1000:.0f} ms to first token, "
            f"{UPSTREAM_TOKENS} tokens {UPSTREAM_TOKEN_DELAY * 1000:.0f} ms apart (a chat takes "
            f"{CHAT_SECONDS * 1000:.0f} ms at best)\n"
            f"- Load: per level N users, started evenly over {self.ramp:g} s, each chatting back to back (a new "
            f"request, and for chatsite a new conversation, per chat) for {self.duration:g} s more; chats/s counts "
            f"answers completed in those {self.duration:g} s\n"
            f"- chatsite: uvicorn 1 worker, PostgreSQL pool max {self.pool_size}, Redis cache, titles by the model "
            f"off; seed design: uvicorn 1 worker, FastAPI `def` endpoint (Starlette's 40-thread pool)"
        )

    def report(self) -> str:
        return "\n".join([
            "# Benchmark results" + (" (quick run)" if self.quick else ""),
            "",
            "Written by `make bench` (bench/run.sh → bench/runner.py).",
            "",
            self.machine_text,
            "",
            "## Targets",
            "",
            *self.verdicts(),
            "",
            "## Streaming under load",
            "",
            "TTFT = time to the first text (for the seed design, which answers at once, the whole answer). "
            "+ columns: that percentile minus the direct upstream's at the same level. gap = time between "
            "two text events of one chat. chats/s = answers completed per second in the steady part of the run. "
            "Server CPU ms/chat: CPU time (user + system) of the server process under test during the run, per "
            "completed chat. Peak RSS of that process (for `direct`, the upstream). DB conns: most connections "
            "open to chatsite's database in any 100 ms sample of pg_stat_activity. load avg: the machine's "
            "1-minute load average when the run started (above the core count, other work shared the machine "
            "and the latencies are inflated; CPU ms/chat is the figure least affected).",
            "",
            self.table(),
            "",
            "Every chat's turns in chatsite's database after its run:",
            "",
            *self.stored_lines(),
            "",
            *self.split_section(),
            *self.followers_section(),
            "## DB cost of one append and of the conversation list",
            "",
            "One append = the whole `services.chat_turn` against the fake upstream answering at once; queries "
            "counted and timed around the DB driver.",
            "",
            self.costs_section(),
            "",
            *self.analysis(),
        ])

    def analysis(self) -> list[str]:
        """The hand-written reading of the committed run (profiles, causes, fixes), kept in bench/ANALYSIS.md."""
        path = ROOT / "bench" / "ANALYSIS.md"
        return [path.read_text()] if path.is_file() else []


def ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.0f}"


def diff(value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return "–"
    return f"{(value - base) * 1000:+.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="levels 1 and 20, short runs (CI smoke)")
    parser.add_argument("--report-only", action="store_true", help="write the last run's report again")
    args = parser.parse_args()
    if args.report_only:
        Bench.load().write_report()
        return
    # Stopped from outside: still stop the servers (the `finally` in Bench.run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    Bench(args).run()


if __name__ == "__main__":
    main()
