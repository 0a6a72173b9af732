"""The benchmark's report in Markdown: bench/RESULTS.md (bench/out/RESULTS-quick.md for a quick run).

Written from a run's results; bench/ANALYSIS.md, the hand-written reading of the committed run, follows
the measured sections.
"""

from __future__ import annotations

import contextlib
import datetime
import platform
import subprocess
from pathlib import Path

import psutil

from bench import OUT, ROOT
from bench.processes import Cores
from bench.results import Row, RunResults
from bench.workload import (
    CHAT_SECONDS,
    SPLIT_LEVEL,
    SPLIT_TOKENS,
    UPSTREAM_TOKEN_DELAY,
    UPSTREAM_TOKENS,
    UPSTREAM_TTFT,
)


def write(results: RunResults) -> Path:
    report = render(results)
    print(report)
    path = OUT / "RESULTS-quick.md" if results.quick else ROOT / "bench" / "RESULTS.md"
    path.write_text(report)
    return path


def render(results: RunResults) -> str:
    return "\n".join([
        "# Benchmark results" + (" (quick run)" if results.quick else ""),
        "",
        "Written by `make bench` (bench/run.sh → bench/runner.py).",
        "",
        results.machine,
        "",
        "## Targets",
        "",
        *verdicts(results),
        "",
        "## Streaming under load",
        "",
        "TTFT = time to the first text (for the prototype design, which answers at once, the whole answer). "
        "+ columns: that percentile minus the direct upstream's at the same level. gap = time between "
        "two text events of one chat. chats/s = answers completed per second in the steady part of the run. "
        "Server CPU ms/chat: CPU time (user + system) of the server process under test during the run, per "
        "completed chat. Peak RSS of that process (for `direct`, the upstream). DB conns: most connections "
        "open to chatsite's database in any 100 ms sample of pg_stat_activity. load avg: the machine's "
        "1-minute load average when the run started (above the core count, other work shared the machine "
        "and the latencies are inflated; CPU ms/chat is the figure least affected).",
        "",
        table(results),
        "",
        "Every chat's turns in chatsite's database after its run:",
        "",
        *stored_lines(results.rows),
        "",
        *split_section(results.split_rows),
        *followers_section(),
        "## DB cost of one append and of the conversation list",
        "",
        "One append = the whole `answering.answer` against the fake upstream answering at once; queries "
        "counted and timed around the DB driver.",
        "",
        costs_section(results.db_costs),
        "",
        *analysis(),
    ])


def describe_run(*, started_at: datetime.datetime, elapsed: float, cores: Cores, ramp: float, duration: float,
                 pool_size: int) -> str:
    """The report's opening lines: when, which commit, on what machine, under which load."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    return (
        f"- Date: {started_at:%Y-%m-%d %H:%M} UTC; git commit {commit}"
        f"{' (with uncommitted changes)' if dirty else ''}; whole run {elapsed:.0f} s\n"
        f"- Machine: {psutil.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}\n"
        f"- Cores: server under test on {cores.server}, load generator + fake upstream on "
        f"{cores.load}{'' if cores.pinned else ' (not pinned: fewer than 2 cores or no taskset)'}; "
        f"PostgreSQL and Redis unpinned\n"
        f"- Upstream: fake OpenAI-compatible server, {UPSTREAM_TTFT * 1000:.0f} ms to first token, "
        f"{UPSTREAM_TOKENS} tokens {UPSTREAM_TOKEN_DELAY * 1000:.0f} ms apart (a chat takes "
        f"{CHAT_SECONDS * 1000:.0f} ms at best)\n"
        f"- Load: per level N users, started evenly over {ramp:g} s, each chatting back to back (a new "
        f"request, and for chatsite a new conversation, per chat) for {duration:g} s more; chats/s counts "
        f"answers completed in those {duration:g} s\n"
        f"- chatsite: uvicorn 1 worker, PostgreSQL pool max {pool_size}, Redis cache, titles by the model "
        f"off; prototype design: uvicorn 1 worker, FastAPI `def` endpoint (Starlette's 40-thread pool)"
    )


def verdicts(results: RunResults) -> list[str]:
    """The figures the targets ask for (reported, not pass/fail tests), each with the gap to its target."""
    lines = []
    at100, direct100 = results.row(100, "chatsite"), results.row(100, "direct")
    if at100 and at100.cpu_ms_per_chat:
        cpu = at100.cpu_ms_per_chat
        lines.append(f"- **Server CPU per stored 50-token chat at 100 concurrent ≤ 5 ms**: "
                     f"{'met' if cpu <= 5 else 'MISSED'} — {cpu:.1f} ms ({cpu - 5:+.1f} ms vs target).")
    at400, direct400 = results.row(400, "chatsite"), results.row(400, "direct")
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
    at1000 = results.row(1000, "chatsite")
    if at1000:
        s = at1000.stored or {}
        all_stored = s and s["chats_stored_complete"] == s["chats_sent"] == at1000.chats
        met = at1000.errors == 0 and all_stored
        lines.append(
            f"- **1,000 concurrent: 0 errors, every turn stored**: "
            f"{'met' if met else 'MISSED'} — {at1000.errors} errors in {at1000.chats} chats; "
            f"{s.get('chats_stored_complete', 0)}/{s.get('chats_sent', 0)} chats stored whole; "
            f"max {at1000.db_connections} connections open to the DB (pool {results.pool_size}; "
            f"{at1000.db_active} active, {at1000.db_idle_in_transaction} idle in transaction)."
        )
    lines.append(
        "- **The CPU cost of one more follower of a running answer**: reported below (`python -m bench.followers`)."
        if (OUT / "followers.md").is_file() else
        "- **The CPU cost of one more follower**: not measured in this run (`python -m bench.followers`)."
    )
    append = results.db_costs.get("append", [])
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


def table(results: RunResults) -> str:
    head = ("| level | target | chats | errors | TTFT p50 / p99 ms | +TTFT p50 / p99 ms "
            "| total p50 / p99 ms | +total p50 / p99 ms | gap p50 / p99 ms | chats/s | server CPU ms/chat "
            "| peak RSS MB | DB conns max (active, idle in tx) | load avg |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in results.rows:
        direct = results.row(row.level, "direct")
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


def stored_lines(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
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


def split_section(split_rows: list[Row]) -> list[str]:
    if len(split_rows) != 2 or not all(r.cpu_ms_per_chat for r in split_rows):
        return []
    short, long = split_rows
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
    for tokens, row in zip(SPLIT_TOKENS, split_rows, strict=True):
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


def followers_section() -> list[str]:
    """bench.followers's table, when it has been run (it writes bench/out/followers.md)."""
    path = OUT / "followers.md"
    if not path.is_file():
        return []
    return ["## One more follower of a running answer", "", path.read_text().strip(), ""]


def costs_section(db_costs: dict) -> str:
    lines = ["| history turns | queries | DB time (median) ms | whole append (median) ms | turns trimmed |",
             "|---|---|---|---|---|"]
    for a in db_costs.get("append", []):
        lines.append(f"| {a['history_turns']} | {'/'.join(map(str, a['queries']))} | {a['db_ms_median']:.2f} "
                     f"| {a['append_ms_median']:.1f} | {a['dropped_turns']} |")
    listing = db_costs.get("list")
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


def analysis() -> list[str]:
    """The hand-written reading of the committed run (profiles, causes, fixes), kept in bench/ANALYSIS.md."""
    path = ROOT / "bench" / "ANALYSIS.md"
    return [path.read_text()] if path.is_file() else []


def ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.0f}"


def diff(value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return "–"
    return f"{(value - base) * 1000:+.1f}"
