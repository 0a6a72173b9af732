"""Template tags for the chat page: the user's personalization in a chat's settings, "Memory saved" on a step, the
assistants in the sidebar."""

from django import template

from personal import selectors
from personal.models import REMEMBERED, Assistant, Memory, Personalization

register = template.Library()


@register.simple_tag
def personalization_of(user) -> Personalization:
    return selectors.personalization_get(user_id=user.pk)


@register.simple_tag
def saved_memory(turn) -> Memory | None:
    """The memory a tool result saved (the `remember` tool), while it is kept: one query per `remember` result."""
    if not turn.content.startswith(REMEMBERED):
        return None
    return selectors.memory_saved_by_tool_call(conversation_id=turn.conversation_id, tool_call_id=turn.tool_call_id)


@register.simple_tag
def assistants_for(user) -> list[Assistant]:
    """The assistants offered to the user in the sidebar (personal.selectors.assistants_listed): one query."""
    return list(selectors.assistants_listed(user=user))
