"""Writes: a user's custom instructions, memory switch, memories, saved prompts and assistants."""

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from knowledge.models import KnowledgeBase
from personal.models import MAX_MEMORY_CHARS, Assistant, Memory, Personalization, Prompt, assistant_slug


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


class SharingRefused(ValueError):
    """A prompt or assistant names a group its owner is not in, or a knowledge base that is not theirs."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _owner_groups(owner, group_ids: Iterable[int]) -> list[Group]:
    """The groups `group_ids` names, all of which `owner` must belong to: one may share only with one's own groups
    (a group one is not in, or that does not exist, is refused alike)."""
    wanted = list(dict.fromkeys(int(pk) for pk in group_ids))
    groups = list(owner.groups.filter(pk__in=wanted))
    missing = sorted(set(wanted) - {group.pk for group in groups})
    if missing:
        raise SharingRefused("groups", f"You are not a member of group {', '.join(map(str, missing))}.")
    return groups


def _owner_knowledge_bases(owner, base_ids: Iterable[int]) -> list[KnowledgeBase]:
    wanted = list(dict.fromkeys(int(pk) for pk in base_ids))
    bases = list(KnowledgeBase.objects.filter(owner=owner, pk__in=wanted))
    missing = sorted(set(wanted) - {base.pk for base in bases})
    if missing:
        raise SharingRefused("knowledge_bases", f"No such knowledge base of yours: {', '.join(map(str, missing))}.")
    return bases


class PromptRefused(SharingRefused):
    """The prompt cannot be saved (its command is taken by another of the user's prompts, or a group is not
    theirs)."""


def _prompt_save(prompt: Prompt, group_ids: Iterable[int] | None) -> Prompt:
    try:
        groups = None if group_ids is None else _owner_groups(prompt.owner, group_ids)
    except SharingRefused as exc:
        raise PromptRefused(exc.field, str(exc)) from None
    try:
        with transaction.atomic():
            prompt.save()
            if groups is not None:
                prompt.groups.set(groups)
    except IntegrityError:
        raise PromptRefused("command", f"You already have a prompt /{prompt.command}.") from None
    return prompt


def prompt_create(*, owner, command: str, title: str, content: str, groups: Iterable[int] = ()) -> Prompt:
    """A prompt of `owner`, shared with `groups` (ids of groups they belong to; none: private)."""
    prompt = Prompt(owner=owner, command=command.strip().lower(), title=title.strip(), content=content)
    return _prompt_save(prompt, groups)


def prompt_update(*, prompt: Prompt, **fields) -> Prompt:
    """Change any of command, title, content, and `groups` (ids: exactly those it is shared with)."""
    unknown = set(fields) - {"command", "title", "content", "groups"}
    if unknown:
        raise TypeError(f"unknown fields: {sorted(unknown)}")
    group_ids = fields.pop("groups", None)
    cleaned = {"command": lambda value: value.strip().lower(), "title": str.strip, "content": lambda value: value}
    for name, value in fields.items():
        setattr(prompt, name, cleaned[name](value))
    return _prompt_save(prompt, group_ids)


def prompt_delete(*, prompt: Prompt) -> None:
    prompt.delete()


ASSISTANT_FIELDS = {"name", "emoji", "instructions", "model", "starters", "tools", "shared"}
ASSISTANT_RELATIONS = {"groups", "knowledge_bases"}


def _assistant_save(assistant: Assistant, relations: dict[str, Iterable[int]]) -> Assistant:
    """Save it, and set exactly the groups and knowledge bases `relations` names (ids; a missing key: unchanged):
    only the owner's groups and the owner's own bases, else SharingRefused before anything is written."""
    groups = _owner_groups(assistant.owner, relations["groups"]) if "groups" in relations else None
    bases = (
        _owner_knowledge_bases(assistant.owner, relations["knowledge_bases"])
        if "knowledge_bases" in relations else None
    )
    assistant.name = assistant.name.strip()
    assistant.emoji = assistant.emoji.strip()
    assistant.starters = [starter.strip() for starter in assistant.starters if starter.strip()]
    assistant.tools = sorted(set(assistant.tools))
    with transaction.atomic():
        assistant.save()
        if groups is not None:
            assistant.groups.set(groups)
        if bases is not None:
            assistant.knowledge_bases.set(bases)
    return assistant


def _split_fields(fields: dict) -> tuple[dict, dict]:
    unknown = set(fields) - ASSISTANT_FIELDS - ASSISTANT_RELATIONS
    if unknown:
        raise TypeError(f"unknown fields: {sorted(unknown)}")
    relations = {name: fields.pop(name) for name in ASSISTANT_RELATIONS if name in fields}
    return fields, relations


def assistant_create(*, owner, name: str, instructions: str, **fields) -> Assistant:
    """A new assistant of `owner` (its slug made from the name and a random part); validated by the caller (the
    API's serializer, the page's form): `emoji`, `model`, `starters`, `tools`, `shared`, and `groups` and
    `knowledge_bases` (ids, checked here: the owner's groups and bases only)."""
    fields, relations = _split_fields(dict(fields))
    assistant = Assistant(owner=owner, slug=assistant_slug(name), name=name, instructions=instructions, **fields)
    return _assistant_save(assistant, relations)


def assistant_update(*, assistant: Assistant, **fields) -> Assistant:
    """Change the owner's fields; its slug (in links and model ids) stays."""
    fields, relations = _split_fields(dict(fields))
    for name, value in fields.items():
        setattr(assistant, name, value)
    return _assistant_save(assistant, relations)


def assistant_delete(*, assistant: Assistant) -> None:
    """Its chats stay, without it (their system prompt no longer has its instructions)."""
    assistant.delete()
