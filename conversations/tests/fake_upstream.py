"""A fake OpenAI-compatible server over real HTTP on 127.0.0.1, for tests and the benchmark.

`/v1/chat/completions` (streaming and not, with usage), `/v1/embeddings` (deterministic vectors: fake_embedding, or
the topic vectors a test sets), `/v1/models`, llama.cpp's `/extras/tokenize/count`.
It records every request and every client disconnect, and takes faults per test: delays, an HTTP status (with
Retry-After) for the next N requests, a connection dropped mid-stream, a malformed chunk, a stream with no usage.

Run standalone for the benchmark: `python -m conversations.tests.fake_upstream --port 9100 --ttft 0.5`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

EMBEDDING_DIMENSIONS = 8


def fake_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The fake upstream's vector for `text`: the same text always gives the same vector, in [-1, 1]."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(digest[i % len(digest)] / 127.5 - 1, 6) for i in range(dimensions)]


@dataclass
class Behaviour:
    reply: str = "Hello from the fake upstream. This answer streams word by word."
    ttft: float = 0.0  # seconds before the first token
    token_delay: float = 0.0  # seconds between tokens
    tokens: int | None = None  # answer length in tokens (repeats the reply's words); None = the reply
    fail_status: int | None = None  # answer every request with this status...
    fail_count: int = 0  # ...this many times (0 = always while fail_status is set)
    fail_code: str | None = None  # ...with this `code` in its error body (OpenAI's "context_length_exceeded"...)
    retry_after: str | None = None
    drop_after: int | None = None  # close the connection after this many tokens
    malformed_after: int | None = None  # send a broken chunk after this many tokens
    include_usage: bool = True
    hang: bool = False  # accept and never answer (for timeouts)
    # With tools in the request (and no tool result last), call the first tool (or the one tool_choice
    # names) with these arguments, streamed in three pieces.
    tool_arguments: str = '{"city": "Paris", "unit": "celsius"}'
    # Rounds of tool calls before the text answer: the model calls a tool while the history holds fewer tool
    # results after the last user message than this. `tool_script` names (tool, arguments) for each round
    # (else the first tool, or tool_choice's, with tool_arguments).
    tool_rounds: int = 1
    tool_script: list[tuple[str, str]] = field(default_factory=list)
    # Words standing for a topic (an axis of the vector): a text holding any of them embeds as its topics, so words
    # that share no letters are near (a synonym-only match); a text with none, its fake_embedding.
    embedding_topics: dict[str, int] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    path: str
    body: dict
    headers: dict
    disconnected: bool = False  # the client closed the connection mid-stream
    peer: tuple | None = None  # the client's address and port: which pooled connection carried the request

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])


@dataclass
class FakeUpstream:
    host: str = "127.0.0.1"
    port: int = 0
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[RecordedRequest] = field(default_factory=list)
    disconnects: int = 0
    completed: int = 0
    on_request: object = None  # callable(RecordedRequest), run in the server thread

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def reset(self) -> None:
        self.behaviour = Behaviour()
        self.requests = []
        self.disconnects = 0
        self.completed = 0
        self.on_request = None

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    # --- the HTTP side --------------------------------------------------------------------------

    def _tokens(self) -> list[str]:
        words = self.behaviour.reply.split(" ")
        count = self.behaviour.tokens if self.behaviour.tokens is not None else len(words)
        return [(words[i % len(words)] + (" " if i < count - 1 else "")) for i in range(count)]

    async def models(self, request):
        self.requests.append(RecordedRequest(request.path, {}, dict(request.headers)))
        return web.json_response({"object": "list", "data": [
            {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"},
        ]})

    async def chat(self, request):
        body = await request.json()
        recorded = RecordedRequest(request.path, body, dict(request.headers), peer=_peer(request))
        self.requests.append(recorded)
        if callable(self.on_request):
            await asyncio.to_thread(self.on_request, recorded)
        b = self.behaviour
        if b.hang:
            await asyncio.sleep(3600)
        if b.fail_status is not None:
            if b.fail_count:
                b.fail_count -= 1
                status, b_retry = b.fail_status, b.retry_after
                if b.fail_count == 0:
                    b.fail_status = None
            else:
                status, b_retry = b.fail_status, b.retry_after
            headers = {"Retry-After": b_retry} if b_retry else {}
            return web.json_response(
                {"error": {"message": f"fake failure {status}", "type": "fake", "code": b.fail_code}},
                status=status, headers=headers,
            )
        model = body.get("model", "fake-model")
        tokens = self._tokens()
        finish_reason = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None and len(tokens) > limit:  # cut at the limit, as OpenAI does
            tokens, finish_reason = tokens[:limit], "length"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        created = int(time.time())
        if b.ttft:
            await asyncio.sleep(b.ttft)
        messages = body.get("messages") or []
        if body.get("tools") and body.get("tool_choice") != "none" and self._tool_rounds_done(messages) < b.tool_rounds:
            return await self._tool_call(request, body, recorded, model, created)
        if not body.get("stream"):
            if b.token_delay:
                await asyncio.sleep(b.token_delay * len(tokens))
            self.completed += 1
            return web.json_response({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": finish_reason,
                             "message": {"role": "assistant", "content": "".join(tokens)}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                          "total_tokens": prompt_tokens + len(tokens)},
            })

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        def chunk(delta, finish=None, usage=None, choices=True):
            data = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []}
            if usage is not None:
                data["usage"] = usage
            return f"data: {json.dumps(data)}\n\n".encode()

        try:
            await response.write(chunk({"role": "assistant", "content": ""}))
            for i, token in enumerate(tokens):
                if b.drop_after is not None and i == b.drop_after:
                    request.transport.close()
                    return response
                if b.malformed_after is not None and i == b.malformed_after:
                    await response.write(b"data: {this is not json\n\n")
                    await response.write_eof()
                    return response
                if i and b.token_delay:
                    await asyncio.sleep(b.token_delay)
                await response.write(chunk({"content": token}))
            await response.write(chunk({}, finish=finish_reason))
            if b.include_usage and (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                         "total_tokens": prompt_tokens + len(tokens)}
                await response.write(chunk({}, usage=usage, choices=False))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            self.completed += 1
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            recorded.disconnected = True
            raise
        return response

    @staticmethod
    def _tool_rounds_done(messages: list[dict]) -> int:
        done = 0
        for message in reversed(messages):
            if message.get("role") == "user":
                break
            done += message.get("role") == "tool"
        return done

    async def embeddings(self, request):
        """OpenAI's /embeddings: a fake_embedding per input string (token arrays are not read), one token a word."""
        body = await request.json()
        self.requests.append(RecordedRequest(request.path, body, dict(request.headers), peer=_peer(request)))
        b = self.behaviour
        if b.fail_status is not None:
            if b.fail_count:
                b.fail_count -= 1
                if b.fail_count == 0:
                    b.fail_status, status = None, b.fail_status
                else:
                    status = b.fail_status
            else:
                status = b.fail_status
            return web.json_response({"error": {"message": f"fake failure {status}", "type": "fake"}}, status=status)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
        tokens = sum(len(text.split()) for text in texts)
        return web.json_response({
            "object": "list", "model": body.get("model"),
            "data": [{"object": "embedding", "index": index, "embedding": self._embedding(text, dimensions)}
                     for index, text in enumerate(texts)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    def _embedding(self, text: str, dimensions: int) -> list[float]:
        topics = self.behaviour.embedding_topics
        vector = [0.0] * dimensions
        for word in re.findall(r"\w+", text.lower()):
            if word in topics:
                vector[topics[word] % dimensions] += 1.0
        return vector if any(vector) else fake_embedding(text, dimensions)

    async def tokenize_count(self, request):
        """llama.cpp server's token count (the embedded model's tokenizer): one token per word here."""
        body = await request.json()
        self.requests.append(RecordedRequest(request.path, body, dict(request.headers), peer=_peer(request)))
        if self.behaviour.ttft:
            await asyncio.sleep(self.behaviour.ttft)
        return web.json_response({"count": len(body["input"].split())})

    async def _tool_call(self, request, body, recorded, model, created):
        """Answer with one tool call, as OpenAI does: no content, finish_reason "tool_calls"."""
        choice = body.get("tool_choice")
        name = choice["function"]["name"] if isinstance(choice, dict) else body["tools"][0]["function"]["name"]
        arguments = self.behaviour.tool_arguments
        script = self.behaviour.tool_script
        done = self._tool_rounds_done(body.get("messages") or [])
        if done < len(script):
            name, arguments = script[done]
        call_id = f"call_fake_{len(self.requests)}"
        usage = {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}
        if not body.get("stream"):
            self.completed += 1
            return web.json_response({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": None,
                    "tool_calls": [{"id": call_id, "type": "function",
                                    "function": {"name": name, "arguments": arguments}}],
                }}],
                "usage": usage,
            })
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        def chunk(delta, finish=None):
            return ("data: " + json.dumps({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }) + "\n\n").encode()

        third = max(1, len(arguments) // 3)
        pieces = [arguments[:third], arguments[third:2 * third], arguments[2 * third:]]
        await response.write(chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}},
        ]}))
        for piece in pieces:
            await response.write(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        await response.write(chunk({}, finish="tool_calls"))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(("data: " + json.dumps({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [], "usage": usage,
            }) + "\n\n").encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        self.completed += 1
        return response

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/extras/tokenize/count", self.tokenize_count)
        return app

    # --- running it -----------------------------------------------------------------------------

    def start_in_thread(self) -> FakeUpstream:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve():
            self._runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.1)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            self.port = self._runner.addresses[0][1]
            ready.set()

        def run():
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self

    def stop(self) -> None:
        async def shutdown():
            await self._runner.cleanup()
            # Handlers still sleeping (hang, slow streams) end here, not as "Task was destroyed" noise.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to the first token")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--tokens", type=int, default=None, help="tokens per answer")
    args = parser.parse_args()
    fake = FakeUpstream(host=args.host, port=args.port)
    fake.behaviour = Behaviour(ttft=args.ttft, token_delay=args.token_delay, tokens=args.tokens)
    fake.requests = _NotRecorded()
    web.run_app(fake.app(), host=args.host, port=args.port, print=None, access_log=None)


def _peer(request) -> tuple | None:
    return request.transport.get_extra_info("peername") if request.transport else None


class _NotRecorded(list):
    """Standalone (benchmark) runs keep no request log: it would only grow."""

    def append(self, item):
        pass


if __name__ == "__main__":
    main()
