"""The benchmark: chatsite's streaming API against the upstream itself and the prototype's design."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Logs, plans, per-target results, run.json and profiles of the last run (not committed).
OUT = ROOT / "bench" / "out"
