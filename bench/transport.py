"""The upstream transport alone: client CPU per streamed chat through each way of reaching a model server.

`python -m bench.transport` starts the fake upstream in a process of its own (its CPU is not counted) and
streams the same chats through:

- `sdk-httpx`: the openai SDK's client on its default HTTP stack (httpx2), the request sent with its `post()`
  and the SSE lines read raw, as `conversations.llm` did before (eight clients per loop, as it had);
- `sdk-aiohttp`: the same, on the SDK's aiohttp transport (`openai.DefaultAioHttpClient`);
- `aiohttp`: `conversations.llm.OpenAIBackend.stream` itself (aiohttp, one session per loop).

Each variant runs short and long answers; the difference splits the CPU per chat into a fixed part and a
part per streamed token. Rounds alternate the variants, and the median round is reported, because this
shared machine's speed drifts within minutes. Environment: TRANSPORT_CHATS (per variant, size and round),
TRANSPORT_CONCURRENCY, TRANSPORT_ROUNDS.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import django

CHATS = int(os.environ.get("TRANSPORT_CHATS", "200"))
CONCURRENCY = int(os.environ.get("TRANSPORT_CONCURRENCY", "50"))
ROUNDS = int(os.environ.get("TRANSPORT_ROUNDS", "3"))
SHORT, LONG = 10, 110  # tokens per answer
TOKEN_DELAY = 0.01  # seconds between tokens: each token its own network read, as from a real model
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say something long."}]

Streamer = Callable[[int], Awaitable[int]]  # answer length in tokens -> deltas received
Closer = Callable[[], Awaitable[None]]


def sdk_streamer(http_client_factory: Callable[[], object], base_url: str) -> tuple[Streamer, Closer]:
    import openai

    clients = [openai.AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0,
                                  http_client=http_client_factory()) for _ in range(8)]
    turn = 0

    async def stream(tokens: int) -> int:
        nonlocal turn
        turn = (turn + 1) % len(clients)
        body = {"model": "fake-model", "messages": MESSAGES, "max_tokens": tokens, "stream": True,
                "stream_options": {"include_usage": True}}
        response = await clients[turn].post(
            "/chat/completions", body=body, cast_to=object, stream=True, stream_cls=openai.AsyncStream[object],
            options={"security": {"bearer_auth": True}},
        )
        deltas = 0
        async with response:
            pending = b""
            async for data in response.response.aiter_bytes():
                pending += data
                *lines, pending = pending.split(b"\n")
                texts = []
                for line in lines:
                    if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
                        chunk = json.loads(line[5:].strip())
                        for choice in chunk.get("choices") or ():
                            if (choice.get("delta") or {}).get("content"):
                                texts.append(choice["delta"]["content"])
                if texts:
                    deltas += 1
        return deltas

    async def close() -> None:
        for client in clients:
            await client.close()

    return stream, close


def backend_streamer(base_url: str) -> tuple[Streamer, Closer]:
    from conversations import llm

    backend = llm.OpenAIBackend(api_key="bench", base_url=base_url, default_model="fake-model", timeout=30,
                                max_retries=0)

    async def stream(tokens: int) -> int:
        deltas = 0
        async for item in backend.stream(MESSAGES, model="fake-model", max_tokens=tokens):
            deltas += isinstance(item, llm.TextDelta)
        return deltas

    return stream, backend.aclose


async def run(stream: Streamer, tokens: int) -> tuple[float, float]:
    """(CPU ms per chat, deltas per chat) for CHATS chats, CONCURRENCY at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)
    deltas: list[int] = []

    async def one() -> None:
        async with gate:
            deltas.append(await stream(tokens))

    await stream(tokens)  # connections and imports warmed
    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(CHATS)))
    return (time.process_time() - started) * 1000 / CHATS, sum(deltas) / len(deltas)


async def measure(base_url: str) -> dict[str, list[tuple[float, float, float, float]]]:
    import openai

    variants: dict[str, tuple[Streamer, Closer]] = {
        "sdk-httpx": sdk_streamer(openai.DefaultAsyncHttpxClient, base_url),
        "sdk-aiohttp": sdk_streamer(openai.DefaultAioHttpClient, base_url),
        "aiohttp": backend_streamer(base_url),
    }
    rounds: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in variants}
    for number in range(ROUNDS):
        for name, (stream, _) in variants.items():
            short, short_deltas = await run(stream, SHORT)
            long, long_deltas = await run(stream, LONG)
            rounds[name].append((short, long, short_deltas, long_deltas))
            print(f"round {number + 1} {name}: {short:.2f} ms ({short_deltas:.0f} deltas), "
                  f"{long:.2f} ms ({long_deltas:.0f} deltas)", file=sys.stderr)
    for _, close in variants.values():
        await close()
    return rounds


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings_test")
    django.setup()
    from bench import OUT
    from bench.processes import PYTHON, Processes, wait_for_http
    from tests.servers import free_port

    OUT.mkdir(exist_ok=True)
    port = free_port()
    processes = Processes()
    try:
        processes.start("transport-upstream", [
            PYTHON, "-m", "conversations.tests.fake_upstream", "--port", str(port), "--token-delay", str(TOKEN_DELAY),
            "--tokens", str(LONG),  # shorter answers: cut by max_tokens
        ], dict(os.environ))
        wait_for_http(f"http://127.0.0.1:{port}/v1/models")
        rounds = asyncio.run(measure(f"http://127.0.0.1:{port}/v1"))
    finally:
        processes.stop_all()

    print(f"\n{CHATS} chats per variant, size and round, {CONCURRENCY} concurrent, tokens {TOKEN_DELAY * 1000:.0f} ms "
          f"apart; median of {ROUNDS} rounds\n")
    print(f"| transport | CPU ms per {SHORT}-token chat | per {LONG}-token chat | fixed ms | µs per token "
          f"| deltas per {LONG}-token chat |")
    print("|---|---|---|---|---|---|")
    for name, results in rounds.items():
        short = statistics.median(r[0] for r in results)
        long = statistics.median(r[1] for r in results)
        per_token = (long - short) / (LONG - SHORT)
        print(f"| {name} | {short:.2f} | {long:.2f} | {short - SHORT * per_token:.2f} | {per_token * 1000:.0f} "
              f"| {statistics.median(r[3] for r in results):.0f} |")


if __name__ == "__main__":
    main()
