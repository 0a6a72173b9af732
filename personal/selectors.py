"""Reads: a user's personalization and memories, and the text they add to the system prompt of a chat."""

from django.conf import settings

from conversations.models import Conversation
from personal.models import Memory, MemoryQuerySet, Personalization, Prompt, PromptQuerySet


def personalization_get(*, user_id: int) -> Personalization:
    """The user's settings; defaults (unsaved) when they never saved any."""
    return Personalization.objects.filter(user_id=user_id).first() or Personalization(user_id=user_id)


def memory_list(*, user) -> MemoryQuerySet:
    return Memory.objects.for_user(user)


def memory_get(*, user, memory_id: int) -> Memory:
    """The user's memory; another user's id raises Memory.DoesNotExist (a 404 to the caller)."""
    return Memory.objects.for_user(user).get(pk=memory_id)


def memory_saved_by_tool_call(*, conversation_id, tool_call_id: str) -> Memory | None:
    """The memory a `remember` call in this chat saved, if it is still kept (the step shows 'Memory saved')."""
    if not tool_call_id:
        return None
    return Memory.objects.filter(conversation_id=conversation_id, tool_call_id=tool_call_id).first()


def _memory_lines(user_id: int) -> list[str]:
    """The most recent memories that fit CHAT_MEMORY_PROMPT_CHARS, then a line saying how many were left out."""
    budget = settings.CHAT_MEMORY_PROMPT_CHARS
    contents = list(Memory.objects.filter(owner_id=user_id).values_list("content", flat=True))
    lines: list[str] = []
    used = 0
    for content in contents:
        line = "- " + " ".join(content.split())
        if used + len(line) + 1 > budget:
            break
        lines.append(line)
        used += len(line) + 1
    if len(lines) < len(contents):
        lines.append(f"({len(contents) - len(lines)} older memories left out to fit the prompt.)")
    return lines


def personal_system_text(*, user_id: int, conversation) -> str:
    """What the user's personalization adds to a chat's system prompt, in this order: what they said about
    themselves, how they want answers, then their memories (most recent first, within CHAT_MEMORY_PROMPT_CHARS).
    Empty when the chat has personalization turned off."""
    if not conversation.personal:
        return ""
    personalization = personalization_get(user_id=user_id)
    sections = []
    if personalization.about_me.strip():
        sections.append("What the user says about themselves:\n" + personalization.about_me.strip())
    if personalization.answer_style.strip():
        sections.append("How the user wants you to answer:\n" + personalization.answer_style.strip())
    if personalization.memory_enabled:
        lines = _memory_lines(user_id)
        if lines:
            sections.append("Facts the user asked you to remember (most recent first):\n" + "\n".join(lines))
    return "\n\n".join(sections)


def personal_export(*, user) -> dict:
    """The user's personalization and memories, for "export all my data" (conversations.account_data)."""
    personalization = personalization_get(user_id=user.pk)
    return {
        "custom_instructions": {"about_me": personalization.about_me, "answer_style": personalization.answer_style},
        "memory_enabled": personalization.memory_enabled,
        "memories": [
            {"id": memory.pk, "content": memory.content, "created_at": memory.created_at.isoformat(),
             "updated_at": memory.updated_at.isoformat(),
             "conversation_id": str(memory.conversation_id) if memory.conversation_id else None}
            for memory in memory_list(user=user)
        ],
    }


def prompt_list(*, user) -> PromptQuerySet:
    return Prompt.objects.for_user(user)


def prompt_get(*, user, prompt_id: int) -> Prompt:
    """The user's prompt; another user's id raises Prompt.DoesNotExist (a 404 to the caller)."""
    return Prompt.objects.for_user(user).get(pk=prompt_id)


def last_used_model(*, user, offered: list[str]) -> str:
    """The model of the user's most recently active chat, for a new chat to start with; "" (the site default) when
    that chat follows the default, or its model is no longer offered."""
    model = Conversation.objects.for_user(user).order_by("-updated_at").values_list("model", flat=True).first()
    return model if model in offered else ""
