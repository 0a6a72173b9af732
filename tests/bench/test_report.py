"""The benchmark's report: what `--report-only` renders from bench/out/run.json, and the figures it derives."""

import pytest

from bench import report
from bench.results import Row, RunResults


@pytest.fixture(autouse=True)
def bench_dirs(tmp_path, monkeypatch):
    """The report's output and inputs (followers.md, ANALYSIS.md) in a scratch folder, not the checkout's."""
    (tmp_path / "bench").mkdir()
    monkeypatch.setattr(report, "OUT", tmp_path / "out")
    monkeypatch.setattr(report, "ROOT", tmp_path)
    (tmp_path / "out").mkdir()
    return tmp_path


def stored(chats: int) -> dict:
    return {"chats_sent": chats, "user_turns": chats, "complete_answers": chats, "other_answers": 0,
            "chats_stored_complete": chats, "client_ok": chats, "client_ok_and_stored": chats,
            "unused_conversations_touched": 0}


def results(**changes) -> RunResults:
    rows = [
        Row(level=100, target="direct", chats=600, ttft_p50=0.500, ttft_p99=0.510, chats_per_second=60.0),
        Row(level=100, target="chatsite", chats=300, ttft_p50=0.504, ttft_p99=0.540, chats_per_second=30.0,
            cpu_ms_per_chat=4.0, db_connections=12, db_active=2, db_idle_in_transaction=1, stored=stored(300)),
        Row(level=400, target="direct", chats=2400, chats_per_second=240.0),
        Row(level=400, target="chatsite", chats=900, chats_per_second=150.0, stored=stored(900)),
        Row(level=1000, target="chatsite", chats=1100, errors=0, db_connections=20, db_active=5,
            db_idle_in_transaction=0, stored=stored(1100)),
    ]
    split = [Row(level=30, target="chatsite, 1-token answers", chats=90, cpu_ms_per_chat=10.0, stored=stored(90)),
             Row(level=30, target="chatsite, 101-token answers", chats=60, cpu_ms_per_chat=40.0, stored=stored(60))]
    values = {"quick": False, "pool_size": 20, "machine": "- Date: 2026-11-28", "rows": rows, "split_rows": split,
              "db_costs": {"append": [{"history_turns": 1, "queries": [6], "db_ms_median": 4.3,
                                       "append_ms_median": 9.0, "dropped_turns": 0}]}}
    return RunResults(**{**values, **changes})


def test_report_only_renders_what_the_run_wrote(tmp_path):
    run = results()
    run.save(tmp_path / "run.json")
    again = RunResults.load(tmp_path / "run.json")
    assert again == run
    assert report.render(again) == report.render(run)


def test_each_target_met_or_missed_with_its_gap():
    lines = report.verdicts(results())
    assert lines[0] == ("- **Server CPU per stored 50-token chat at 100 concurrent ≤ 5 ms**: met — 4.0 ms "
                        "(-1.0 ms vs target).")
    assert lines[1].endswith("MISSED — 150.0 vs 240.0 chats/s = 62%.")
    assert "MISSED — +4.0 ms p50 (-1.0 ms vs target), +30.0 ms p99 (+5.0 ms vs target)." in lines[2]
    assert "met — 0 errors in 1100 chats; 1100/1100 chats stored whole; max 20 connections" in lines[3]
    assert "not measured in this run" in lines[4]


def test_a_chat_not_stored_misses_the_1000_target():
    run = results()
    run.rows[-1].stored = {**stored(1100), "chats_stored_complete": 1099}
    assert "MISSED — 0 errors in 1100 chats; 1099/1100 chats stored whole" in report.verdicts(run)[3]


def test_cost_split_into_a_fixed_part_and_a_part_per_token():
    text = "\n".join(report.split_section(results().split_rows))
    # 10 ms with 1 token, 40 ms with 101: 0.3 ms a token, 9.7 ms fixed, 24.7 ms for 50 tokens.
    assert "about **9.7 ms fixed**" in text
    assert "**plus 300 µs per streamed token**" in text
    assert "24.7 ms for the 50-token answers above, so one core serves at most about 40 chats/s" in text


def test_a_quick_run_is_written_beside_the_run_and_leaves_results_md_alone(bench_dirs):
    assert report.write(results(quick=True)) == bench_dirs / "out" / "RESULTS-quick.md"
    assert report.write(results()) == bench_dirs / "bench" / "RESULTS.md"
    assert (bench_dirs / "out" / "RESULTS-quick.md").read_text().startswith("# Benchmark results (quick run)\n")


def test_the_followers_table_and_the_analysis_are_included_when_present(bench_dirs):
    (bench_dirs / "out" / "followers.md").write_text("| F | streams |\n")
    (bench_dirs / "bench" / "ANALYSIS.md").write_text("## Reading this run\n")
    text = report.render(results())
    assert "## One more follower of a running answer\n\n| F | streams |\n" in text
    assert text.endswith("\n## Reading this run\n")
