"""Server-sent events for answers: async Django views in front of the (sync) DRF views.

A turn-creating URL points at an async view made by `streaming_endpoint()`. It runs the DRF view in one
sync_to_async call, so authentication (API key or session with CSRF), throttling, ownership and
validation are exactly the DRF view's. A plain request gets the DRF view's JSON answer. A request
that asked for a stream and passed every check starts its turn in that same worker-thread trip
(`services.chat_turn_begin`; errors before the stream are JSON) and comes back as a StreamHandoff:
the async view then streams `run.events()` with no DB connection held.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from conversations import services
from conversations.api.base import StreamHandoff
from conversations.api.serializers import turn_data

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

SSE_DESCRIPTION = """\
**Streaming.** Send `"stream": true` (or `Accept: text/event-stream`) to get `text/event-stream` instead of
JSON. Errors found before the answer starts (validation, 401, 404, 409 busy, 429) are still JSON. Events:

```
event: turn
data: {"user_turn": {...turn...} | null, "assistant_turn": {...turn, status "pending"...}}

event: delta
data: {"text": "next piece of the answer"}

event: done
data: {"assistant_turn": {...turn, status "complete" or "cancelled", usage...}}

event: error
data: {"error": {"code": "upstream_unavailable", "message": "..."}, "assistant_turn": {...status "failed"...}}

event: title
data: {"title": "A short title"}
```

`turn` comes first, then any number of `delta`, then exactly one of `done` or `error`, then
optionally `title` (a new conversation's title). Closing the connection stops the answer: the
partial text is kept with status `cancelled`.
"""


def sse(event: str, data: dict) -> bytes:
    # Bytes, not str: Django's response would look up the charset in the Content-Type for every event.
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _turn(turn) -> dict | None:
    # Reads only the turn's own columns: no query while streaming.
    return turn_data(turn) if turn is not None else None


async def chat_events(run: services.ChatRun) -> AsyncIterator[bytes]:
    """The run's events in the API's SSE format (the web UI's script reads exactly this)."""
    async with aclosing(run.events()) as events:  # closing this stream closes the run (cancels the answer)
        async for event in events:
            if isinstance(event, services.TurnStored):
                yield sse("turn", {"user_turn": _turn(event.user_turn), "assistant_turn": _turn(event.assistant_turn)})
            elif isinstance(event, services.AnswerDelta):
                yield sse("delta", {"text": event.text})
            elif isinstance(event, services.AnswerDone):
                yield sse("done", {"assistant_turn": _turn(event.assistant_turn)})
            elif isinstance(event, services.AnswerFailed):
                error = {"code": event.error.code, "message": event.error.message}
                yield sse("error", {"error": error, "assistant_turn": _turn(event.assistant_turn)})
            elif isinstance(event, services.TitleSet):
                yield sse("title", {"title": event.title})


class EventStreamResponse(StreamingHttpResponse):
    """A stream whose events are closed, with the run behind them, as soon as Django stops sending.

    Django's ASGI handler closes only the response's own iterator when a client leaves mid-send (a slow
    reader: the send was waiting for the socket). The generators under it would be closed later by
    garbage collection, outside the request, where the run could no longer store its cancelled answer.
    """

    def __init__(self, events: AsyncIterator[bytes], **kwargs):
        super().__init__(events, **kwargs)
        self._events = events

    async def __aiter__(self):
        async with aclosing(self._events) as events:
            async for part in events:
                yield part


def event_stream_response(events: AsyncIterator[bytes], *, headers: dict | None = None) -> StreamingHttpResponse:
    response = EventStreamResponse(events, content_type="text/event-stream; charset=utf-8")
    for name, value in {**SSE_HEADERS, **(headers or {})}.items():
        response[name] = value
    return response


def stream_chat_turn(handoff: StreamHandoff) -> StreamingHttpResponse:
    return event_stream_response(chat_events(handoff.run))


async def _abandon_unstreamed(view: asyncio.Future) -> None:
    response = await view
    if isinstance(response, StreamHandoff):
        await response.run.abandon()


def streaming_endpoint(drf_view_class, stream: Callable[[StreamHandoff], StreamingHttpResponse] = stream_chat_turn):
    """An async view for a DRF view's URL: the DRF view decides everything, `stream` streams.

    The DRF class is attached as `cls` so drf-spectacular documents the URL from it.
    """
    drf_view = drf_view_class.as_view()

    def run_drf_view(request, **kwargs):
        response = drf_view(request, **kwargs)
        if hasattr(response, "render") and not isinstance(response, StreamHandoff):
            response.render()  # here, in the same worker thread, not in another hop
        return response

    async def endpoint(request, **kwargs):
        view = asyncio.ensure_future(sync_to_async(run_drf_view)(request, **kwargs))
        try:
            response = await asyncio.shield(view)
        except asyncio.CancelledError:
            # The client left while the view ran. The view runs on in its thread and may still start a
            # turn that nobody will stream: wait for it, and close that answer as cancelled.
            await asyncio.shield(_abandon_unstreamed(view))
            raise
        if isinstance(response, StreamHandoff):
            return stream(response)
        return response

    endpoint.cls = drf_view.cls
    endpoint.initkwargs = drf_view.initkwargs
    endpoint.__name__ = endpoint.__qualname__ = drf_view_class.__name__
    endpoint.__doc__ = drf_view_class.__doc__
    return csrf_exempt(endpoint)  # DRF's SessionAuthentication enforces CSRF for session requests
