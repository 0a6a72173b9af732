"""Every page and route the scale report covers, timed and query-counted on a site built by `seed_demo`.

Requests go through Django's test client in this process (the whole view, middleware and template stack, no
HTTP server and no network): the time is chatsite's and the database's. Reads are run REPEATS times (median and
worst); the export once, through its generator (its peak memory is the growth of the process's peak resident set,
read from /proc); the account
deletion once, last, and only with --delete (it deletes the user "demo").

    DATABASE_URL=... python manage.py seed_demo --turns 100000
    DATABASE_URL=... python -m bench.scale --out bench/out/scale-pg-100k.json [--delete]
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
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", nargs="+", metavar="RESULT", help="Print these results as a Markdown table.")
    parser.add_argument("--out")
    parser.add_argument("--delete", action="store_true", help='Also time deleting the account "demo" (last).')
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
    for name, (url, who, data) in reads.items():
        results["operations"][name] = measure(who, url, data=data)
        print(name, json.dumps(results["operations"][name]))

    results["operations"]["export all my data (demo)"] = export = measure_export(demo)
    print("export", json.dumps(export))

    if args.delete:
        password_client = Client(HTTP_HOST="127.0.0.1")
        demo.set_password("bench-delete")
        demo.save(update_fields=["password"])
        password_client.force_login(demo)
        deleted = measure(password_client, "/account/delete/", method="post", data={"password": "bench-delete"},
                          repeats=1)
        results["operations"]["delete the account (demo)"] = deleted
        print("delete", json.dumps(deleted))
    with open(args.out, "w") as out:
        json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
