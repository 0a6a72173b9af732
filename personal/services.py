"""Writes: a user's custom instructions, memory switch and memories."""

from django.db import IntegrityError, transaction

from personal.models import MAX_MEMORY_CHARS, Memory, Personalization, Prompt


class MemoryRefused(ValueError):
    """The fact cannot be kept (empty, too long, or memory is off)."""


def personalization_update(*, user, **fields) -> Personalization:
    """Set any of about_me, answer_style, memory_enabled (the row is made on first save)."""
    allowed = {"about_me", "answer_style", "memory_enabled"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"unknown fields: {sorted(unknown)}")
    with transaction.atomic():
        personalization, _ = Personalization.objects.select_for_update().get_or_create(user=user)
        for name, value in fields.items():
            setattr(personalization, name, value)
        personalization.save()
    return personalization


def _clean(content: str) -> str:
    content = content.strip()
    if not content:
        raise MemoryRefused("A memory cannot be empty.")
    if len(content) > MAX_MEMORY_CHARS:
        raise MemoryRefused(f"A memory is at most {MAX_MEMORY_CHARS} characters.")
    return content


def memory_create(*, owner, content: str) -> Memory:
    """A fact the user writes themselves."""
    return Memory.objects.create(owner=owner, content=_clean(content))


def memory_remember(*, owner_id: int, conversation_id, tool_call_id: str, content: str) -> Memory:
    """A fact the model saved through the `remember` tool, in the chat's owner's memory (refused when it is off)."""
    enabled = Personalization.objects.filter(user_id=owner_id).values_list("memory_enabled", flat=True).first()
    if enabled is False:
        raise MemoryRefused("The user turned memory off.")
    return Memory.objects.create(
        owner_id=owner_id, conversation_id=conversation_id, tool_call_id=tool_call_id[:100], content=_clean(content)
    )


def memory_update(*, memory: Memory, content: str) -> Memory:
    memory.content = _clean(content)
    memory.save(update_fields=["content", "updated_at"])
    return memory


def memory_delete(*, memory: Memory) -> None:
    memory.delete()


class PromptRefused(ValueError):
    """The prompt cannot be saved (its command is taken by another of the user's prompts)."""


def _prompt_save(prompt: Prompt) -> Prompt:
    try:
        with transaction.atomic():
            prompt.save()
    except IntegrityError:
        raise PromptRefused(f"You already have a prompt /{prompt.command}.") from None
    return prompt


def prompt_create(*, owner, command: str, title: str, content: str) -> Prompt:
    return _prompt_save(Prompt(owner=owner, command=command.strip().lower(), title=title.strip(), content=content))


def prompt_update(*, prompt: Prompt, **fields) -> Prompt:
    unknown = set(fields) - {"command", "title", "content"}
    if unknown:
        raise TypeError(f"unknown fields: {sorted(unknown)}")
    cleaned = {"command": lambda value: value.strip().lower(), "title": str.strip, "content": lambda value: value}
    for name, value in fields.items():
        setattr(prompt, name, cleaned[name](value))
    return _prompt_save(prompt)


def prompt_delete(*, prompt: Prompt) -> None:
    prompt.delete()
