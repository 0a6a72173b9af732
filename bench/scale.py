"""Every page and route the scale report covers, timed and query-counted on a site built by `seed_demo`.

Requests go through Django's test client in this process (the whole view, middleware and template stack, no
HTTP server and no network): the time is chatsite's and the database's. With --uvicorn, each read is timed instead
through one uvicorn worker started here (HTTP on 127.0.0.1, the session cookie of a login made here), and its
queries are counted by one more run through the test client. Reads are run REPEATS times (median and worst); the
export once, through its generator (its peak memory is the growth of the process's peak resident set, read from
/proc); with --delete, last, the longest chat and then the account "demo" deleted, each request once and then its
background task (run here, as the worker would, with its longest transaction). The export and the deletions are
timed in this process in both modes.

    DATABASE_URL=... python manage.py seed_demo --turns 100000
    DATABASE_URL=... STATIC_ROOT=... python -m bench.scale --out bench/out/scale-pg-100k.json [--delete] [--uvicorn]
"""

import argparse
import json
import os
import statistics
import time

REPEATS = 5
RARE_WORD = "quetzal"
COMMON_WORD = "garden"


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Worker:
    """One uvicorn worker serving chatsite on a free port, with this process's environment (its database), stopped
    by its process group."""

    def __init__(self):
        import socket

        from bench.processes import UVICORN, Processes, wait_for_http

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.processes = Processes()
        self.processes.start("scale-uvicorn", [
            UVICORN, "chatsite.asgi:application", "--workers", "1", "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "warning", "--no-access-log",
        ], {**os.environ, "ALLOWED_HOSTS": "127.0.0.1"})
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for_http(f"{self.url}/healthz", timeout=120)

    def stop(self):
        self.processes.stop_all()


def measure_http(worker: Worker, client, url, *, data=None, repeats=REPEATS) -> dict:
    """The read through the worker (REPEATS times, as `client`'s session), its queries from one run in process."""
    import httpx

    counted = measure(client, url, data=data, repeats=1)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    times, status, size = [], 0, 0
    with httpx.Client(base_url=worker.url, cookies=cookies, timeout=120) as http:
        for _ in range(repeats):
            started = time.perf_counter()
            response = http.get(url, params=data or {})
            body = response.content
            times.append(time.perf_counter() - started)
            status, size = response.status_code, len(body)
    return {
        **counted, "status": status, "bytes": size, "through": "uvicorn, one worker",
        "median_ms": round(statistics.median(times) * 1000, 1), "max_ms": round(max(times) * 1000, 1),
    }


def measure(client, url, *, method="get", data=None, repeats=REPEATS) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries, status, size = [], 0, 0, 0
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = getattr(client, method)(url, data or {})
            body = b"".join(response) if response.streaming else response.content
            times.append(time.perf_counter() - started)
        queries, status, size = len(captured), response.status_code, len(body)
    return {
        "url": url if not data else f"{url} {data}", "status": status, "queries": queries, "bytes": size,
        "median_ms": round(statistics.median(times) * 1000, 1), "max_ms": round(max(times) * 1000, 1),
    }


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure_export(user) -> dict:
    """The export's generator (what the view streams), read and dropped chunk by chunk as a client would: time,
    queries, bytes, and how far the process's peak resident set rose above where it stood."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conversations.account_data import account_export

    with open("/proc/self/clear_refs", "w") as clear:  # resets VmHWM to the current resident set
        clear.write("5")
    before = rss_bytes()
    size = 0
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        for chunk in account_export(user=user):
            size += len(chunk)
        elapsed = time.perf_counter() - started
    return {
        "url": "/account/export/ (its generator)", "queries": len(captured), "bytes": size,
        "median_ms": round(elapsed * 1000, 1), "peak_rss_growth_mb": round((peak_rss_bytes() - before) / 2**20, 1),
    }


def measure_tasks() -> dict:
    """Run the queued tasks (as the worker would, in this process): time, queries, and the longest transaction (each
    outermost atomic block timed; nothing else holds one)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from chatsite.task_worker import run_queued_tasks

    opened, longest, depth = [0.0], [0.0], [0]
    enter, leave = transaction.Atomic.__enter__, transaction.Atomic.__exit__

    def timed_enter(atomic):
        if depth[0] == 0:
            opened[0] = time.perf_counter()
        depth[0] += 1
        return enter(atomic)

    def timed_exit(atomic, *exc):
        try:
            return leave(atomic, *exc)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                longest[0] = max(longest[0], time.perf_counter() - opened[0])

    transaction.Atomic.__enter__, transaction.Atomic.__exit__ = timed_enter, timed_exit
    try:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            run_queued_tasks()
            elapsed = time.perf_counter() - started
    finally:
        transaction.Atomic.__enter__, transaction.Atomic.__exit__ = enter, leave
    return {
        "url": "queued tasks (db_worker --batch)", "queries": len(captured), "median_ms": round(elapsed * 1000, 1),
        "longest_transaction_ms": round(longest[0] * 1000, 1),
    }


def table(paths: list[str]) -> str:
    """The runs side by side, as the Markdown table of bench/SCALE.md: median ms (queries) per operation."""
    runs = []
    for path in paths:
        with open(path) as source:
            runs.append(json.load(source))
    header = ["operation"] + [f"{run['site']['vendor']}, {run['site']['turns']:,} turns" for run in runs]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    names = list(dict.fromkeys(name for run in runs for name in run["operations"]))
    for name in names:
        cells = []
        for run in runs:
            result = run["operations"].get(name)
            if result is None:
                cells.append("not run")
                continue
            cell = f"{result['median_ms']:,} ms ({result['queries']} q)"
            if "peak_rss_growth_mb" in result:
                cell += f", +{result['peak_rss_growth_mb']} MB"
            if "longest_transaction_ms" in result:
                cell += f", longest transaction {result['longest_transaction_ms']:,} ms"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", nargs="+", metavar="RESULT", help="Print these results as a Markdown table.")
    parser.add_argument("--out")
    parser.add_argument("--delete", action="store_true", help='Also time deleting the account "demo" (last).')
    parser.add_argument("--uvicorn", action="store_true", help="Time the reads through one uvicorn worker.")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    if not args.out:
        parser.error("--out is required to run the measurements")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    os.environ.setdefault("SECRET_KEY", "bench-scale")
    import django

    django.setup()
    import warnings

    from django.db import connection
    from django.test import Client

    from accounts.models import User
    from conversations.models import Conversation, Turn

    warnings.filterwarnings("ignore", "StreamingHttpResponse must consume")
    demo = User.objects.get(username="demo")
    admin_user, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client, staff = Client(HTTP_HOST="127.0.0.1"), Client(HTTP_HOST="127.0.0.1")
    client.force_login(demo)
    staff.force_login(admin_user)
    chats = Conversation.objects.filter(owner=demo)
    longest = chats.order_by("-turn_count").first()
    oldest = chats.filter(pinned_at__isnull=True).order_by("updated_at").first()
    site = {
        "vendor": connection.vendor, "turns": Turn.objects.count(), "conversations": Conversation.objects.count(),
        "users": User.objects.count(), "demo_chats": chats.count(),
        "demo_turns": Turn.objects.filter(conversation__owner=demo).count(), "longest_chat_turns": longest.turn_count,
        "load_average": os.getloadavg(),  # the machine is shared: its load when the run started
    }
    print(json.dumps(site))
    admin_list = "/admin/conversations/conversation/"
    reads = {
        "chat page (newest chat)": (f"/c/{chats.order_by('-updated_at').first().pk}/", client, None),
        "chat page (oldest chat)": (f"/c/{oldest.pk}/", client, None),
        "chat page (longest chat)": (f"/c/{longest.pk}/", client, None),
        "history page": ("/c/history/", client, None),
        "history search, rare word": ("/c/history/", client, {"q": RARE_WORD}),
        "history search, common word": ("/c/history/", client, {"q": COMMON_WORD}),
        "REST list": ("/api/v1/conversations/", client, None),
        "REST search, rare word": ("/api/v1/conversations/", client, {"search": RARE_WORD}),
        "REST search, common word": ("/api/v1/conversations/", client, {"search": COMMON_WORD}),
        "REST turns/ page 1 (longest chat)": (f"/api/v1/conversations/{longest.pk}/turns/", client, None),
        "REST turns/ last page (longest chat)": (
            f"/api/v1/conversations/{longest.pk}/turns/", client, {"page": -(-longest.turn_count // 50)}
        ),
        "REST detail (longest chat)": (f"/api/v1/conversations/{longest.pk}/", client, None),
        "admin conversation list": (admin_list, staff, None),
        "admin search, rare word": (admin_list, staff, {"q": RARE_WORD}),
        "admin search, common word": (admin_list, staff, {"q": COMMON_WORD}),
        "admin failed-answer filter": (admin_list, staff, {"failed": "yes"}),
        "admin turn search, rare word": ("/admin/conversations/turn/", staff, {"q": RARE_WORD}),
        "admin change page (longest chat)": (f"{admin_list}{longest.pk}/change/", staff, None),
    }
    results: dict = {"site": site, "operations": {}}
    worker = Worker() if args.uvicorn else None
    try:
        for name, (url, who, data) in reads.items():
            if worker is not None:
                results["operations"][name] = measure_http(worker, who, url, data=data)
            else:
                results["operations"][name] = measure(who, url, data=data)
            print(name, json.dumps(results["operations"][name]))
    finally:
        if worker is not None:
            worker.stop()

    results["operations"]["export all my data (demo)"] = export = measure_export(demo)
    print("export", json.dumps(export))

    if args.delete:
        # A long chat deleted through the API (hidden at once, its turns deleted by a task), then the account (closed
        # at once, its data deleted by a task): each request, then its task with its longest transaction.
        results["operations"]["delete the longest chat: the request"] = measure(
            client, f"/api/v1/conversations/{longest.pk}/", method="delete", repeats=1
        )
        results["operations"]["delete the longest chat: the task"] = measure_tasks()
        password_client = Client(HTTP_HOST="127.0.0.1")
        demo.set_password("bench-delete")
        demo.save(update_fields=["password"])
        password_client.force_login(demo)
        results["operations"]["delete the account (demo): the request"] = measure(
            password_client, "/account/delete/", method="post", data={"password": "bench-delete"}, repeats=1
        )
        results["operations"]["delete the account (demo): the task"] = measure_tasks()
        for name in list(results["operations"])[-4:]:
            print(name, json.dumps(results["operations"][name]))
    results["load_average_at_end"] = os.getloadavg()
    with open(args.out, "w") as out:
        json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
