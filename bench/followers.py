"""What one more follower of a running answer costs the server: `python -m bench.followers`.

One uvicorn worker (PostgreSQL, Redis), the fake upstream answering ANSWER_TOKENS tokens 20 ms apart.
ANSWERS answers are started at once (each by its own streaming POST); each then gets F more followers
(`GET .../stream/` from the start). The server's CPU time for the whole round, minus the round with no
extra followers, divided by the number of extra followers, is what one follower of one answer costs.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request

import aiohttp
import psutil

from bench import OUT
from bench.processes import PYTHON, UVICORN, Processes, chatsite_env, reset_database, run_checked, wait_for_http
from tests.servers import free_port

ANSWERS = 20
ANSWER_TOKENS = 100
FOLLOWERS = (0, 5, 20)
DB = "chatsite_bench_followers"
LATE = -1


async def consume(response) -> int:
    deltas = 0
    async for line in response.content:
        deltas += line.startswith(b"event: delta")
    return deltas


async def one_answer(session, base, key, conversation, followers: int) -> list[int]:
    headers = {"Authorization": f"Bearer {key}"}
    async with session.post(f"{base}/api/v1/conversations/{conversation}/turns/", headers=headers,
                            json={"content": "story", "stream": True}) as started:
        await started.content.readline()  # the answer exists: followers can join
        extra = [asyncio.ensure_future(follow(session, base, headers, conversation)) for _ in range(followers)]
        counts = [await consume(started)]
        counts += await asyncio.gather(*extra)
    return counts


async def follow(session, base, headers, conversation) -> int:
    async with session.get(f"{base}/api/v1/conversations/{conversation}/stream/", headers=headers) as response:
        if response.status == 204:
            return LATE  # served after the answer had ended: nothing to follow (the answer is stored)
        return await consume(response)


async def round_(base, key, conversations, followers) -> list[int]:
    connector = aiohttp.TCPConnector(limit=0)  # every stream at once: the default 100 would queue followers
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        results = await asyncio.gather(*(one_answer(session, base, key, c, followers) for c in conversations))
    return [count for counts in results for count in counts]


def create_conversation(base: str, key: str) -> str:
    request = urllib.request.Request(
        f"{base}/api/v1/conversations/", data=b"{}", method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["id"]


def main():
    pg = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
    ports = {"upstream": free_port(), "chatsite": free_port()}
    env = chatsite_env(
        database_url=f"{pg}/{DB}", upstream_url=f"http://127.0.0.1:{ports['upstream']}",
        redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"),
        cache_prefix="chatsite-bench-followers",
    )
    reset_database(pg, DB, env)
    key = run_checked([PYTHON, "manage.py", "shell", "-c", (
        "from accounts.models import ApiKey, User; "
        "u = User.objects.create_user('followers'); print(ApiKey.generate(user=u, name='bench')[1])"
    )], env, "user").strip().splitlines()[-1]
    OUT.mkdir(exist_ok=True)
    processes = Processes()
    try:
        processes.start("upstream", [PYTHON, "-m", "conversations.tests.fake_upstream", "--port",
                                     str(ports["upstream"]), "--ttft", "0.1", "--token-delay", "0.02",
                                     "--tokens", str(ANSWER_TOKENS)], dict(os.environ))
        wait_for_http(f"http://127.0.0.1:{ports['upstream']}/v1/models")
        server = processes.start("chatsite", [UVICORN, "chatsite.asgi:application", "--port", str(ports["chatsite"]),
                                              "--no-access-log", "--log-level", "warning"], env)
        base = f"http://127.0.0.1:{ports['chatsite']}"
        wait_for_http(f"{base}/healthz")
        process = psutil.Process(server.pid)
        lines, baseline = [], None
        for followers in FOLLOWERS:
            conversations = [create_conversation(base, key) for _ in range(ANSWERS)]
            before = sum(process.cpu_times()[:2])
            started = time.monotonic()
            counts = asyncio.run(round_(base, key, conversations, followers))
            cpu_ms = (sum(process.cpu_times()[:2]) - before) * 1000
            complete = sum(count == ANSWER_TOKENS for count in counts)
            late = counts.count(LATE)
            if followers == 0:
                baseline = cpu_ms
            extra = ANSWERS * followers
            per = f"{(cpu_ms - baseline) / extra:.2f}" if extra else "–"
            lines.append(f"| {followers} | {len(counts)} | {complete} | {late} | {time.monotonic() - started:.1f} | "
                         f"{cpu_ms:.0f} | {per} |")
            print(lines[-1], flush=True)
        table = (
            f"{ANSWERS} answers of {ANSWER_TOKENS} tokens at once on one uvicorn worker (PostgreSQL, Redis), "
            "each with F more followers (`GET .../stream/` from the start):\n\n"
            "| extra followers per answer (F) | streams | streams with every delta | followers served after the end "
            "(204) | seconds | server CPU ms | CPU ms per extra follower of one answer |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n"
        )
        print("\n" + table)
        (OUT / "followers.md").write_text(table)  # the next `make bench` report includes it
    finally:
        processes.stop_all()


if __name__ == "__main__":
    main()
