"""The load generator: N concurrent users chatting with one target, timing every chat.

Closed loop: user i starts after i/N of the ramp, then chats back to back (each chat a new request)
until the run's deadline; chats in flight at the deadline are waited for. Per chat it records the time
to the first text, the gaps between texts, the total time and the error if any.

Targets:
- `direct`: the upstream's OpenAI-style streaming `/v1/chat/completions` (the limit);
- `chatsite`: `POST /api/v1/conversations/{id}/turns/` with `stream: true` (SSE `delta` events, then
  `done` or `error`), one conversation per chat, from a plan written by `bench.chatsite_data`;
- `prototype`: the prototype design's `POST /chat`, whole answer at once (time to first text = total time).

Run: `python -m bench.loadgen --target direct --url http://127.0.0.1:9100 --users 100 --out out.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass, field

import aiohttp

CHAT_TIMEOUT_SECONDS = 180


@dataclass
class Chat:
    user: int
    start: float  # seconds since the run began
    ttft: float | None = None  # seconds to the first text
    total: float | None = None
    texts: int = 0  # text events received
    chars: int = 0
    error: str = ""
    conversation: str = ""
    gaps: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        data = asdict(self)
        del data["gaps"]
        return data


class Target:
    """How to send one chat to a kind of server and read its answer."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    async def chat(self, session: aiohttp.ClientSession, chat: Chat, content: str, started: float) -> None:
        raise NotImplementedError

    @staticmethod
    def text_arrived(chat: Chat, text: str, started: float, last: float | None) -> float:
        now = time.monotonic()
        if chat.ttft is None:
            chat.ttft = now - started
        elif last is not None:
            chat.gaps.append(now - last)
        chat.texts += 1
        chat.chars += len(text)
        return now


class DirectTarget(Target):
    async def chat(self, session, chat, content, started):
        body = {
            "model": "fake-model", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": content}],
        }
        async with session.post(f"{self.url}/v1/chat/completions", json=body) as response:
            if response.status != 200:
                chat.error = f"http {response.status}"
                return
            last = None
            finished = False
            async for raw in response.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    finished = True
                    break
                for choice in json.loads(data).get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        last = self.text_arrived(chat, text, started, last)
            if not finished:
                chat.error = "stream ended without [DONE]"


class ChatsiteTarget(Target):
    def __init__(self, url: str, plan: dict):
        super().__init__(url)
        self.users = plan["users"]

    def conversation_for(self, user: int, number: int) -> str | None:
        conversations = self.users[user]["conversations"]
        return conversations[number] if number < len(conversations) else None

    async def chat(self, session, chat, content, started):
        headers = {"Authorization": f"Bearer {self.users[chat.user]['key']}", "Accept": "text/event-stream"}
        url = f"{self.url}/api/v1/conversations/{chat.conversation}/turns/"
        async with session.post(url, json={"content": content, "stream": True}, headers=headers) as response:
            if response.status != 200:
                chat.error = f"http {response.status}: {(await response.text())[:120]}"
                return
            event, data_lines, last, outcome = "message", [], None, None
            async for raw in response.content:
                line = raw.rstrip(b"\r\n")
                if line:
                    if line.startswith(b"event:"):
                        event = line[6:].strip().decode()
                    elif line.startswith(b"data:"):
                        data_lines.append(line[5:].strip())
                    continue
                # A blank line ends the event.
                if event == "delta":
                    text = json.loads(b"\n".join(data_lines)).get("text", "")
                    if text:
                        last = self.text_arrived(chat, text, started, last)
                elif event == "error":
                    outcome = "error"
                    chat.error = f"event error: {b' '.join(data_lines).decode()[:120]}"
                elif event == "done":
                    outcome = "done"
                event, data_lines = "message", []
            if outcome is None:
                chat.error = "stream ended without done or error"


class PrototypeTarget(Target):
    async def chat(self, session, chat, content, started):
        async with session.post(f"{self.url}/chat", json={"content": content}) as response:
            if response.status != 200:
                chat.error = f"http {response.status}"
                return
            answer = (await response.json())["answer"]
            self.text_arrived(chat, answer, started, None)


async def run(target: Target, *, users: int, ramp: float, duration: float) -> dict:
    chats: list[Chat] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=CHAT_TIMEOUT_SECONDS)
    began = time.monotonic()
    deadline = began + ramp + duration

    async def user_loop(session: aiohttp.ClientSession, user: int):
        await asyncio.sleep(ramp * user / users)
        number = 0
        while time.monotonic() < deadline:
            conversation = ""
            if isinstance(target, ChatsiteTarget):
                conversation = target.conversation_for(user, number)
                if conversation is None:
                    break  # the plan has no conversation left for this user
            started = time.monotonic()
            chat = Chat(user=user, start=started - began, conversation=conversation)
            chats.append(chat)
            try:
                await target.chat(session, chat, f"Benchmark question {user}-{number}: tell me a story.", started)
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, KeyError) as exc:
                chat.error = f"{type(exc).__name__}: {exc}"[:160]
            chat.total = time.monotonic() - started
            if not chat.error and chat.texts == 0:
                chat.error = "no text"
            number += 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(user_loop(session, user) for user in range(users)))
    finished = time.monotonic()
    gaps = [gap for chat in chats for gap in chat.gaps]
    return {
        "users": users,
        "ramp": ramp,
        "duration": duration,
        "elapsed": finished - began,
        "chats": [chat.summary() for chat in chats],
        "gaps": summarize(gaps),
    }


def summarize(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, round(pct / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["direct", "chatsite", "prototype"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--ramp", type=float, default=1.0, help="seconds over which users start")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of chatting after the ramp")
    parser.add_argument("--plan", help="chatsite: users, keys and conversations (JSON)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    if args.target == "chatsite":
        with open(args.plan) as plan:
            target = ChatsiteTarget(args.url, json.load(plan))
    else:
        target = {"direct": DirectTarget, "prototype": PrototypeTarget}[args.target](args.url)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(target, users=args.users, ramp=args.ramp, duration=args.duration))
    else:
        result = uvloop.run(run(target, users=args.users, ramp=args.ramp, duration=args.duration))
    result["target"] = args.target
    with open(args.out, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
