"""A run's results: one Row per level and target, and the whole run as bench/out/run.json keeps it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.loadgen import percentile
from bench.sampling import Monitor


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
    """One Row from the load generator's result file and what the monitor saw meanwhile."""
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


@dataclass
class RunResults:
    """Everything the report is written from, saved so that `--report-only` can write it again."""

    quick: bool
    pool_size: int
    machine: str = ""  # the run's setting, as the report's opening lines (bench.report.describe_run)
    rows: list[Row] = field(default_factory=list)
    split_rows: list[Row] = field(default_factory=list)  # the cost split (not in a quick run)
    db_costs: dict = field(default_factory=dict)  # bench.db_costs's output

    def row(self, level: int, target: str) -> Row | None:
        return next((r for r in self.rows if r.level == level and r.target == target), None)

    def save(self, path: Path):
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> RunResults:
        data = json.loads(path.read_text())
        return cls(
            quick=data["quick"], pool_size=data["pool_size"], machine=data["machine"],
            rows=[Row(**row) for row in data["rows"]],
            split_rows=[Row(**row) for row in data.get("split_rows", [])],
            db_costs=data["db_costs"],
        )
