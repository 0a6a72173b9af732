"""Where one chat turn's server CPU goes: the turn path in one process, against the fake upstream, under cProfile.

Each chat is the bench's: a new conversation of an API user, one message, its answer (50 tokens, sent at once, so
the time is chatsite's own). It runs `answering.answer`, the path the API's turn endpoint and the page's send share,
without the HTTP server around it (bench/run.sh measures that too). Reports the process CPU (every thread: the
calling one, the answer engine's loop and the DB threads) per chat, the queries per chat in the calling thread, and,
with --profile FILE, the calling thread's cProfile stats (the begin: policy, the transaction, the prompt).

Run with chatsite's environment (DATABASE_URL for PostgreSQL, REDIS_URL for the relay, as bench/run.sh sets them):
`python -m bench.turn_profile --chats 300 --profile bench/out/turn.prof`.
"""

import argparse
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import time

from bench.processes import wait_for_http
from tests.servers import free_port

TOKENS = 50


class QueryCounter:
    """Counts the queries the calling thread's connection runs (an execute wrapper: no query log, no DEBUG)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds of --chats chats each (a range)")
    parser.add_argument("--profile", help="write the calling thread's cProfile stats here (one more round)")
    args = parser.parse_args()

    # The upstream in a process of its own: its CPU is not chatsite's.
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "conversations.tests.fake_upstream", "--port", str(port), "--tokens", str(TOKENS)]
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/v1/models")
        os.environ.update({
            "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "LLM_BACKEND": "openai", "OPENAI_MODEL": "fake-model",
            "OPENAI_API_KEY": "bench", "CHAT_MODEL_TITLES": "0",
        })
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
        import django

        django.setup()
        from django.contrib.auth.hashers import make_password
        from django.db import connection

        from accounts.models import User
        from conversations import answering
        from conversations.models import Conversation

        user, _ = User.objects.get_or_create(username="turn-profile", defaults={"password": make_password(None)})

        def chats(count: int, profiler: cProfile.Profile | None = None) -> tuple[float, list[int]]:
            conversations = Conversation.objects.bulk_create(
                Conversation(owner=user, source=Conversation.Source.API) for _ in range(count)
            )
            queries = []
            started = time.process_time()
            for conversation in conversations:
                # The request's own reads, as the API's authentication and ownership check give them.
                caller = User.objects.get(pk=user.pk)
                mine = Conversation.objects.get(pk=conversation.pk)
                counter = QueryCounter()
                with connection.execute_wrapper(counter):
                    if profiler is not None:
                        profiler.enable()
                    answering.answer(conversation=mine, user=caller, content="Hi")
                    if profiler is not None:
                        profiler.disable()
                queries.append(counter.count)
            return (time.process_time() - started) / count * 1000, queries

        chats(20)  # warm up: imports, the connection, the upstream client
        results = [chats(args.chats) for _ in range(args.rounds)]
        cpu = [ms for ms, _ in results]
        queries = sorted({n for _, counts in results for n in counts})
        print(f"{connection.vendor}: {args.chats} chats x {args.rounds} rounds; process CPU ms per chat: "
              f"{' / '.join(f'{ms:.2f}' for ms in cpu)} (median {statistics.median(cpu):.2f}); "
              f"queries per chat in the calling thread: {queries}")
        if args.profile:
            profiler = cProfile.Profile(time.thread_time)  # CPU, not wall: the waits on the DB are not the cost
            chats(args.chats, profiler)
            profiler.dump_stats(args.profile)
            pstats.Stats(args.profile).sort_stats("cumulative").print_stats(40)
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    main()
