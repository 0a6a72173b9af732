"""The page's live updates: one server-sent event stream per signed-in user (conversations.notifications).

An async view: an open window costs a waiting coroutine, not a thread, and no DB connection (the one that read the
session goes back before the first event). The browser's EventSource reconnects by itself, sending the last
event's id; a comment every notifications.HEARTBEAT_SECONDS keeps the connection open through proxies.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from chatsite.api.errors import error_response
from conversations import notifications, services
from conversations.api.streaming import event_stream_response

RETRY_MILLISECONDS = 3000  # how long the browser waits before reconnecting a dropped stream


def _frame(event_id: str, event: notifications.Event) -> bytes:
    return f"id: {event_id}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


async def _frames(user_id: int, after: str) -> AsyncGenerator[bytes, None]:
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    listening = False
    async for item in notifications.subscribe(user_id, after):
        if item is not None:
            yield _frame(*item)
        elif not listening:  # from here on nothing is missed: the page may trust its state
            listening = True
            yield b"event: listening\ndata: {}\n\n"
        else:
            yield b": keep-alive\n\n"


@require_GET
async def user_events(request: HttpRequest) -> HttpResponseBase:
    """What happens to the user's chats in their other windows and devices: new chats, titles, renames, pins,
    folders, archiving, deletions, answers started (see notifications.Event)."""
    user = await request.auser()
    if not user.is_authenticated:
        return error_response("not_authenticated", "Sign in to follow your chats.", 401)
    after = request.headers.get("Last-Event-ID", "")[:64]
    await sync_to_async(services.release_connection)()
    return event_stream_response(_frames(user.pk, after))
