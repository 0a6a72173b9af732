"""Conversation edits: create, rename and the like, delete, feedback, which branch is shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from conversations import errors, notifications
from conversations.models import Conversation, Feedback, Project, Turn, review_totals
from conversations.selectors import latest_leaf_id
from conversations.tasks import conversation_remove
from teams.policy import Feature, policy_for

if TYPE_CHECKING:
    from accounts.models import ApiKey, User
    from personal.models import Assistant

TITLE_MAX_CHARS = 60
WEB_SEARCH_REFUSED = "Your account may not use web search in its chats."
MCP_TOOLS_REFUSED = "Your account may not use MCP tools in its chats."


def conversation_create(
    *, owner: User, title: str = "", model: str = "", system_prompt: str = "",
    source: str = Conversation.Source.WEB, api_key: ApiKey | None = None, web_search: bool = False,
    personal: bool = True, mcp_tools: list[str] | None = None, assistant: Assistant | None = None,
    project: Project | None = None,
) -> Conversation:
    """A new chat. `assistant`: a chat with it (its instructions in the system prompt); the caller checked the owner
    may use it, and passes its model and tools as `model` and `web_search` (Assistant.chat_fields). In a `project`
    (one of the owner's: the caller checks), it starts with the project's model unless given one."""
    if project is not None and project.owner_id != owner.pk:
        raise ValueError("a chat goes only in its owner's projects")
    if project is not None and not model.strip():
        model = project.model
    _require_chat_tools(owner, web_search=web_search, mcp_tools=mcp_tools)
    conversation = Conversation.objects.create(
        owner=owner, title=title.strip()[:200], model=model.strip(), system_prompt=system_prompt, source=source,
        api_key=api_key, web_search=web_search, personal=personal, mcp_tools=mcp_tools or [], assistant=assistant,
        project=project,
    )
    notifications.conversation_created(conversation)
    return conversation


def _require_chat_tools(owner: User, *, web_search: bool | None, mcp_tools: list[str] | None) -> None:
    """Turning on web search or MCP tools in a chat needs the owner's groups to allow that kind of server tool
    (teams.policy): refused clearly, never stored and silently not offered. Turning them off is always allowed."""
    if not web_search and not mcp_tools:
        return
    policy = policy_for(owner)
    if web_search and not policy.allows(Feature.WEB_SEARCH):
        raise errors.FeatureDisabled(WEB_SEARCH_REFUSED)
    if mcp_tools and not policy.allows(Feature.MCP_TOOLS):
        raise errors.FeatureDisabled(MCP_TOOLS_REFUSED)


# `assistant` is set by the /v1 endpoints (a model id `assistant:<slug>`), not by the conversation API's PATCH.
EDITABLE_CONVERSATION_FIELDS = (
    "title", "model", "system_prompt", "archived", "web_search", "personal", "mcp_tools", "metadata", "assistant",
)


def conversation_update(*, conversation: Conversation, **changes: Any) -> Conversation:
    """Change the user-editable fields; anything else passed in is a programming error."""
    unknown = set(changes) - set(EDITABLE_CONVERSATION_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    _require_chat_tools(conversation.owner, web_search=changes.get("web_search"), mcp_tools=changes.get("mcp_tools"))
    for name, value in changes.items():
        setattr(conversation, name, value.strip() if isinstance(value, str) and name != "system_prompt" else value)
    conversation.updated_at = timezone.now()
    conversation.save(update_fields=[*changes, "updated_at"])
    notifications.conversation_changed(conversation)
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    """Gone from every route at once; a long chat's turns are deleted in batches off the request path."""
    owner_id, conversation_id = conversation.owner_id, conversation.pk
    conversation_remove(conversation=conversation)
    notifications.conversation_deleted(owner_id=owner_id, conversation_id=conversation_id)


def feedback_set(*, turn: Turn, rating: int, comment: str = "") -> Feedback:
    if turn.role != Turn.Role.ASSISTANT:
        raise ValueError("feedback is only for answers")
    now = timezone.now()
    with transaction.atomic():
        feedback, _ = Feedback.objects.update_or_create(
            turn=turn, defaults={"rating": rating, "comment": comment, "updated_at": now}
        )
        Conversation.objects.filter(pk=turn.conversation_id).update(**review_totals())
    return feedback


def title_from_text(text: str) -> str:
    words = " ".join(text.split())
    if len(words) <= TITLE_MAX_CHARS:
        return words
    cut = words[: TITLE_MAX_CHARS - 1].rsplit(" ", 1)[0] or words[: TITLE_MAX_CHARS - 1]
    return cut + "…"


def conversation_switch(*, conversation: Conversation, turn_id: int) -> int:
    """Show the branch through `turn_id` (any turn of the conversation), down to its newest leaf.

    The choice is stored on the conversation, so it holds across reloads and devices. Returns the new
    current turn's id; Turn.DoesNotExist if `turn_id` is not a turn of this conversation.
    """
    leaf_id = latest_leaf_id(conversation, turn_id)
    if leaf_id is None:
        raise Turn.DoesNotExist
    Conversation.objects.filter(pk=conversation.pk).update(current_turn_id=leaf_id)
    conversation.current_turn_id = leaf_id
    return leaf_id
