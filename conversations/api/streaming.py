"""Server-sent events for answers: the stream format of the REST API and the page, and its responses.

A turn-creating view starts its answer (`conversations.answering`) and answers with a stream that follows
the answer's event log; `GET .../stream/` follows a running answer the same way, from
the start or after the last event a client saw. No DB connection is held while streaming.
"""

import json
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from redis.exceptions import RedisError

from conversations import answering, errors, services
from conversations.models import Turn
from conversations.turn_json import turn_data

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

SSE_DESCRIPTION = """\
**Streaming.** Send `"stream": true` (or `Accept: text/event-stream`) to get `text/event-stream` instead of
JSON. Errors found before the answer starts (validation, 401, 404, 409 busy, 429) are still JSON. Events:

```
event: turn
data: {"user_turn": {...turn...} | null, "assistant_turn": {...turn, status "pending"...}}

event: delta
data: {"text": "next piece of the answer"}

event: tool_call
data: {"tool_calls": [...OpenAI's delta.tool_calls pieces...]}

event: tool_result
data: {"tool_call": {"id", "type", "function": {"name", "arguments"}}, "result": "...", "is_error": false,
       "seconds": 0.002, "assistant_turn_id": 41, "tool_turn_id": 42}

event: tool_approval
data: {"tool_call": {"id", "type", "function": {"name", "arguments"}}, "assistant_turn_id": 43,
       "timeout_seconds": 300, "approval_url": "/api/v1/conversations/{id}/turns/43/tool-calls/{call_id}/approval/"}

event: done
data: {"assistant_turn": {...turn, status "complete" or "cancelled", usage...}}

event: error
data: {"error": {"code": "upstream_unavailable", "message": "..."}, "assistant_turn": {...status "failed"...}}

event: title
data: {"title": "A short title"}
```

`turn` comes first, then any number of `delta` (and `tool_call`, when the model calls a tool you sent: the
pieces as the model streamed them; `tool_result` when the model called a server tool, which the server ran:
the step is stored as turns before the answer, and the model continues; `tool_approval` first when the site
marks that tool as needing your approval: the answer waits until you POST `{"allow": true}` or `{"allow": false}`
to its `approval_url`, and a call refused, or not answered within `timeout_seconds`, is told to the model as
not made), then exactly one of `done` or
`error`, then
optionally `title` (a new conversation's title). Each event has an `id:` (1, 2, 3...).

The answer runs on the server to its end: closing the connection does not stop it (Stop does:
`POST .../stop/`). Reconnect with `GET /api/v1/conversations/{id}/stream/` to follow it again, from the
start or, with a `Last-Event-ID` header, after the last event you saw.
"""


def sse(event: str | None, data: Mapping[str, object], seq: int | None = None) -> bytes:
    """One server-sent event: `id:` when numbered, `event:` when named (OpenAI's chunks are unnamed), `data:`.

    Bytes, not str: Django's response would look up the charset in the Content-Type for every event."""
    return answering.sse_frame(event, json.dumps(data, ensure_ascii=False), seq)


async def frames(entries: AsyncGenerator[answering.Entry, None]) -> AsyncGenerator[bytes, None]:
    async with aclosing(entries) as events:  # leaving stops this follower only, never the answer
        async for entry in events:
            yield entry.frame  # encoded once, when the answer made it


class EventStreamResponse(StreamingHttpResponse):
    """A stream whose events are closed, with the run behind them, as soon as Django stops sending.

    Django's ASGI handler closes only the response's own iterator when a client leaves mid-send (a slow
    reader: the send was waiting for the socket). The generators under it would be closed later by
    garbage collection, outside the request, where the run could no longer store its cancelled answer.
    """

    def __init__(self, events: AsyncGenerator[bytes, None], **kwargs: Any) -> None:
        super().__init__(events, **kwargs)
        self._events = events

    async def __aiter__(self) -> AsyncGenerator[bytes, None]:
        async with aclosing(self._events) as events:
            async for part in events:
                yield part


def event_stream_response(
    events: AsyncGenerator[bytes, None], *, headers: dict[str, str] | None = None
) -> StreamingHttpResponse:
    response = EventStreamResponse(events, content_type="text/event-stream; charset=utf-8")
    for name, value in {**SSE_HEADERS, **(headers or {})}.items():
        response[name] = value
    return response


def answer_stream(answer: answering.Answer) -> StreamingHttpResponse:
    """Follow a just-started answer from its first event."""
    return event_stream_response(frames(answer.follow()))


def follow_stream(turn_id: int, *, after: int = 0) -> StreamingHttpResponse | None:
    """Follow a running answer produced in this process or (with Redis) in another; None if neither has it."""
    entries = answering.follow(turn_id, after)
    if entries is None:
        return None
    return event_stream_response(guarded_frames(turn_id, entries))


async def guarded_frames(turn_id: int, entries: AsyncGenerator[answering.Entry, None]) -> AsyncGenerator[bytes, None]:
    """An answer's frames; if its worker dies meanwhile (another worker's), the answer is failed and said so."""
    try:
        async for frame in frames(entries):
            yield frame
    except RedisError:
        return  # the stream ends without `done`: the client reconnects (Last-Event-ID) when Redis is back
    except answering.AnswerLapsed:
        turn = await sync_to_async(_fail_abandoned, thread_sensitive=False)(turn_id)
        if turn is not None:
            yield interrupted_event(turn)


def _fail_abandoned(turn_id: int) -> Turn | None:
    turn = Turn.objects.filter(pk=turn_id).first()
    try:
        if turn is not None and (answering.fail_if_abandoned(turn) or turn.status == Turn.Status.FAILED):
            return turn
        return None
    finally:
        services.release_connection()


def interrupted_event(turn: Turn) -> bytes:
    """The `error` event of an answer failed because nobody writes it any more (its worker died)."""
    data: answering.ErrorData = {
        "error": {"code": errors.AnswerInterrupted.code, "message": turn.error}, "assistant_turn": turn_data(turn)
    }
    return sse("error", data)


def interrupted_stream(turn: Turn) -> StreamingHttpResponse:
    async def one() -> AsyncGenerator[bytes, None]:
        yield interrupted_event(turn)

    return event_stream_response(one())
