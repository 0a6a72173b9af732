"""The chat page's time in a fresh worker whose site has an MCP server (conversations/tests/mcp_server.py over stdio,
about 4 s to start and list its tools): the worker's first page, its second, and when its Settings panel lists the
server's tools.

Each round is a new process (a new worker: no MCP session yet) rendering the page with Django's test client against
a SQLite database migrated once per checkout. `--root` names the checkouts to compare (default: this one), run in
turn, so the machine's load falls on both alike:
`python -m bench.mcp_page --rounds 5 --root /path/to/main --root .`
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# One worker's pages, printed as JSON: run in the measured checkout (its code, its settings).
WORKER = r"""
import json, os, sys, time
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from conversations.answering import mcp

user, _ = get_user_model().objects.get_or_create(username="bench")
client = Client()
client.force_login(user)
started = time.perf_counter()
first = client.get("/")
first_ms = (time.perf_counter() - started) * 1000
listed_in_first = 'value="notes__add"' in first.content.decode()
started = time.perf_counter()
client.get("/")
second_ms = (time.perf_counter() - started) * 1000
# When the panel lists the tools: at once where the page waited; else when the page's own request would see them.
listed_ms = first_ms
if mcp.servers() and not listed_in_first:
    deadline = started + 60
    while 'value="notes__add"' not in client.get("/c/mcp-servers/").content.decode():
        assert time.perf_counter() < deadline, "the server was never listed"
        time.sleep(0.05)
    listed_ms = first_ms + (time.perf_counter() - started) * 1000
mcp.close_all_sync()
print(json.dumps({"first_ms": first_ms, "second_ms": second_ms, "listed_ms": listed_ms,
                  "listed_in_first": listed_in_first}))
"""


def environment(root: Path, database: Path, *, with_server: bool = True) -> dict[str, str]:
    server = {"name": "notes", "command": sys.executable, "args": [str(root / "conversations/tests/mcp_server.py")]}
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings_test",
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "",
        "LOG_LEVEL": "ERROR",
        "CHAT_MODELS": "fake-model",
        "CHAT_TOOL_MODELS": "fake-model",
        "CHAT_MCP_SERVERS": json.dumps([server] if with_server else []),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--root", action="append", type=Path, help="a checkout to measure (repeatable)")
    parser.add_argument("--without-server", action="store_true",
                        help="the same with no MCP server configured: what a fresh worker's first page costs anyway")
    args = parser.parse_args()
    roots = [root.resolve() for root in (args.root or [Path(__file__).resolve().parent.parent])]
    tmp = Path(tempfile.mkdtemp(prefix="bench-mcp-page-"))
    try:
        databases = {}
        for number, root in enumerate(roots):
            databases[root] = tmp / f"site-{number}.sqlite3"
            subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=root,
                           env=environment(root, databases[root]), check=True)
        results: dict[Path, list[dict]] = {root: [] for root in roots}
        for _ in range(args.rounds):
            for root in roots:
                env = environment(root, databases[root], with_server=not args.without_server)
                done = subprocess.run([sys.executable, "-c", WORKER], cwd=root, env=env, check=True,
                                      capture_output=True, text=True)
                results[root].append(json.loads(done.stdout.strip().splitlines()[-1]))
        for root, rounds in results.items():
            print(f"{root}: {len(rounds)} fresh workers")
            for key in ("first_ms", "second_ms", "listed_ms"):
                values = [r[key] for r in rounds]
                listed = ", ".join(f"{v:.0f}" for v in values)
                print(f"  {key:10} median {statistics.median(values):7.0f}  all {listed}")
            if not args.without_server:
                print(f"  tools listed in the first page: {sum(r['listed_in_first'] for r in rounds)}/{len(rounds)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
