"""ASGI entry point (uvicorn chatsite.asgi:application): the streaming views run natively here."""

import os

import django
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")


class ChatsiteASGIHandler(ASGIHandler):
    """Django's ASGI handler, loading the inline-hook versions of Django's standard middleware.

    Same classes, same behaviour; their hooks just run on the event loop instead of one worker-thread
    trip each (see chatsite/middleware.py). settings.MIDDLEWARE keeps Django's own dotted paths, which
    `check --deploy` looks for.
    """

    def load_middleware(self, is_async=False):
        from chatsite.middleware import INLINE_REPLACEMENTS

        configured = settings.MIDDLEWARE
        settings.MIDDLEWARE = [INLINE_REPLACEMENTS.get(path, path) for path in configured]
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = configured


django.setup(set_prefix=False)
application = ChatsiteASGIHandler()
