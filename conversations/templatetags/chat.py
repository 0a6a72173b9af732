"""Template helpers for the chat pages: sanitized markdown for answers, translated strings for scripts."""

from django import template
from django.utils.html import json_script
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from conversations.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> str:
    """Answer text -> sanitized HTML (markdown-it-py, then the nh3 allow-list)."""
    return mark_safe(render_markdown(text))  # noqa: S308 (sanitized by nh3 just above)


# Strings the page scripts show, translated on the server and handed over as JSON (no inline script).
JS_STRINGS = {
    "new_chat": _("New chat"),
    "send_failed": _("The message could not be sent."),
    "network_lost": _("The connection was lost. The partial answer is shown."),
    "answer_failed": _("The answer failed."),
    "retry": _("Retry"),
    "stopped": _("Stopped"),
    "copied": _("Copied"),
    "copy": _("Copy"),
    "copy_code": _("Copy code"),
    "rename_prompt": _("Rename chat"),
    "delete_confirm": _("Delete this chat? This cannot be undone."),
    "delete": _("Delete"),
    "save": _("Save"),
    "cancel": _("Cancel"),
    "saved": _("Saved"),
    "save_and_send": _("Save and send"),
    "no_results": _("No chats found."),
    "thinking": _("Thinking…"),
    "load_failed": _("Could not load. Check your connection and try again."),
}


@register.simple_tag
def js_strings():
    return json_script({key: str(value) for key, value in JS_STRINGS.items()}, "js-strings")
