"""WSGI entry point, for servers without ASGI (streaming then ties up a worker per answer)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

application = get_wsgi_application()
