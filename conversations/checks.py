"""System checks for chatsite's own deployment needs (run by `manage.py check --deploy`)."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.caches, deploy=True)
def shared_cache_check(app_configs, **kwargs):
    """More than one worker (`make serve` runs 2 by default) must share one cache: Redis."""
    if "locmem" not in settings.CACHES["default"]["BACKEND"].lower():
        return []
    return [checks.Warning(
        "The cache is each process's own memory: with more than one worker, the chat throttle, daily "
        "quotas, stop requests and the record of which answers are still being written are not shared.",
        hint="Set REDIS_URL (see README, Production).",
        id="chatsite.W001",
    )]


@checks.register()
def mcp_servers_check(app_configs, **kwargs):
    """CHAT_MCP_SERVERS is read when a chat first needs it: a mistake in it is reported at startup instead."""
    from django.core.exceptions import ImproperlyConfigured

    from conversations.answering import mcp

    try:
        mcp.servers()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="See README, CHAT_MCP_SERVERS.", id="chatsite.E001")]
    return []
