"""What the chat's API views share: the chat throttle, ownership lookups, stream-or-JSON (the rest of the base
view, shared with the accounts API, is chatsite.api.views.ApiView).

The async streaming views (streaming.py) run these same DRF views for authentication, CSRF,
throttling, ownership and validation, so the streamed and the plain JSON answers can't disagree.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from chatsite.api.views import ApiView
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
