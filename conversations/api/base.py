"""What the chat's API views share: the chat throttle, ownership lookups, stream-or-JSON, and the async entry of
the views that start answers (the rest of the base view, shared with the accounts API, is
chatsite.api.views.ApiView).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponseBase
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from chatsite.api.views import ApiView
from conversations import answering, errors
from conversations.models import Conversation, Turn
from conversations.selectors import conversation_get


class ChatRateThrottle(SimpleRateThrottle):
    """Per-user limit on requests that call the model (scope "chat" in REST_FRAMEWORK's rates).

    Counts live in the default cache: Redis when REDIS_URL is set, so all workers share them.
    """

    scope = "chat"
    # Set by SimpleRateThrottle.__init__ from the rate (the stubs leave them out).
    num_requests: int
    duration: int

    def get_rate(self):
        # Read at request time, not import time, so a changed setting applies.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        if not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}

    def allow_request(self, request, view):
        """A window of `duration` seconds from the user's first request, counted with the cache's atomic
        add and incr: DRF's own history (read the list, append, write it back) let parallel requests on
        several workers all through."""
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        started_key, count_key = f"{self.key}:started", f"{self.key}:count"
        self.cache.add(started_key, now, self.duration)
        self.cache.add(count_key, 0, self.duration)
        try:
            count = self.cache.incr(count_key)
        except ValueError:  # the window ended between add and incr: this request opens the next one
            self.cache.add(count_key, 1, self.duration)
            count = 1
        self.window_started = self.cache.get(started_key) or now
        return count <= self.num_requests

    def wait(self):
        return max(1.0, self.window_started + self.duration - self.timer())


class ChatApiView(ApiView):
    """An API view of the chat: the methods in `chat_methods` call the model, and ChatRateThrottle limits them."""

    chat_methods: tuple[str, ...] = ()

    def get_throttles(self):
        if self.request.method in self.chat_methods:
            return [ChatRateThrottle()]
        return []


def own_conversation(request, conversation_id) -> Conversation:
    """The caller's conversation; any other id (someone else's, or none) is a 404."""
    try:
        return conversation_get(user=request.user, conversation_id=conversation_id)
    except (Conversation.DoesNotExist, ValueError, DjangoValidationError):
        raise exceptions.NotFound("Conversation not found.") from None


def own_turn(request, turn_id) -> Turn:
    try:
        return Turn.objects.for_user(request.user).get(pk=turn_id)
    except (Turn.DoesNotExist, ValueError, DjangoValidationError):
        raise exceptions.NotFound("Turn not found.") from None


def wants_event_stream(request, stream: bool) -> bool:
    """`"stream": true` in the body (already validated) or `Accept: text/event-stream`."""
    return stream or "text/event-stream" in request.headers.get("Accept", "")


FIRST_OUTPUT_WAIT_SECONDS = 600.0  # the longest a stream's status waits for the answer's first piece


class PendingResponse(Response):
    """What a handler returns when its response needs an awaited step (an answer, an upstream call): `AnsweringView`
    awaits `outcome()` on the event loop, so no request thread waits. The outcome is a body for this response or
    a response of its own; a ChatError or APIException it raises is answered in the view's own error shape."""

    renderer_context: dict[str, Any]  # set by the view's finalize_response: the view and its request

    async def outcome(self) -> dict | HttpResponseBase:
        raise NotImplementedError

    async def settle(self) -> HttpResponseBase:
        view = self.renderer_context["view"]
        try:
            result = await self.outcome()
        except (errors.ChatError, exceptions.APIException) as exc:
            # The view's own error shape (the API's, or OpenAI's on /v1), as if the handler had raised it.
            return view.finalize_response(view.request, view.handle_exception(exc))
        if isinstance(result, dict):
            self.data = result
            return self
        return result


class AnswerPendingResponse(PendingResponse):
    """What a handler returns when it has started an answer and can only respond once the answer is stored (a
    JSON answer), or has begun (`until_output`: a stream whose early failure is an HTTP error, as OpenAI's).
    `then(answer)` makes the response (a body for this response, or a response of its own) or raises the
    answer's error."""

    def __init__(
        self, answer: answering.Answer, then: Callable[[answering.Answer], dict | HttpResponseBase], *,
        until_output: bool = False, status: int = 200, headers: dict[str, str] | None = None,
    ):
        super().__init__(None, status=status, headers=headers)
        self.answer = answer
        self.then = then
        self.until_output = until_output

    async def outcome(self) -> dict | HttpResponseBase:
        if self.until_output:
            await self.answer.begun(FIRST_OUTPUT_WAIT_SECONDS)
        else:
            await self.answer.stored()
        return self.then(self.answer)


class AnsweringView(ChatApiView):
    """A view whose handlers may start answers: served natively async. Authentication, the throttle, validation,
    quota admission and the begin transaction run in one thread trip (the DRF view); a `PendingResponse` (an
    answer's, or another awaited step's) is then awaited on the event loop."""

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        view = super().as_view(**initkwargs)
        in_thread = sync_to_async(view, thread_sensitive=True)

        @functools.wraps(view)
        async def entry(request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
            response = await in_thread(request, *args, **kwargs)
            if isinstance(response, PendingResponse):
                return await response.settle()
            return response

        return markcoroutinefunction(entry)
