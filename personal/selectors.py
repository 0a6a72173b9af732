"""Reads: a user's personalization, memories, prompts and assistants, and what they add to a chat's system prompt."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db.models import BooleanField, Exists, OuterRef, Prefetch, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Coalesce

from conversations.models import Conversation
from knowledge.models import KnowledgeBase
from personal.models import (
    MODEL_ID_PREFIX,
    Assistant,
    AssistantQuerySet,
    Memory,
    MemoryQuerySet,
    Personalization,
    Prompt,
    PromptQuerySet,
)


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


def with_personal_prompt(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """`conversations` with what personal_system_sections needs of each chat's assistant and owner, as columns of the
    same query: the assistant's instructions, the owner's custom instructions, whether their memory is on and whether
    they keep any memory. The turn reads them with the chat (services.turns, in the query that locks it), so a prompt
    costs no query of its own for them, and one for the memories only when there are memories to give."""
    owner_settings = Personalization.objects.filter(user_id=OuterRef("owner_id")).order_by()
    assistant = Assistant.objects.filter(pk=OuterRef("assistant_id")).order_by()
    # Conversation declares these attributes (not columns), so they are given as a dict.
    columns: dict[str, Any] = {
        "personal_assistant_instructions": Coalesce(
            Subquery(assistant.values("instructions")[:1]), Value(""), output_field=TextField()
        ),
        "personal_about_me": Coalesce(
            Subquery(owner_settings.values("about_me")[:1]), Value(""), output_field=TextField()
        ),
        "personal_answer_style": Coalesce(
            Subquery(owner_settings.values("answer_style")[:1]), Value(""), output_field=TextField()
        ),
        "personal_memory_enabled": Coalesce(
            Subquery(owner_settings.values("memory_enabled")[:1]),
            Value(Personalization._meta.get_field("memory_enabled").default), output_field=BooleanField(),
        ),
        "personal_has_memories": Exists(Memory.objects.filter(owner_id=OuterRef("owner_id")).order_by()),
    }
    return conversations.annotate(**columns)


# What each section of personal_system_sections is (a prompt too long is refused naming its parts: services.turns).
ASSISTANT_INSTRUCTIONS, CUSTOM_INSTRUCTIONS, MEMORIES = "assistant_instructions", "custom_instructions", "memories"


def personal_system_sections(*, conversation: Conversation) -> list[tuple[str, str]]:
    """What a chat's assistant and its owner's personalization add to its system prompt (after the chat's own), as
    (what it is, text), in this order: the assistant's instructions, what the user said about themselves, how they
    want answers, then their memories (most recent first, within CHAT_MEMORY_PROMPT_CHARS, a line saying how many
    were left out). The chat's `personal` switch leaves out all but the assistant's instructions. `conversation` is
    read `with_personal_prompt`; the memories are the only query, when memory is on and there are some."""
    sections: list[tuple[str, str]] = []
    if conversation.personal_assistant_instructions.strip():
        sections.append((ASSISTANT_INSTRUCTIONS, conversation.personal_assistant_instructions.strip()))
    if not conversation.personal:
        return sections
    if conversation.personal_about_me.strip():
        sections.append(
            (CUSTOM_INSTRUCTIONS, "What the user says about themselves:\n" + conversation.personal_about_me.strip())
        )
    if conversation.personal_answer_style.strip():
        sections.append(
            (CUSTOM_INSTRUCTIONS, "How the user wants you to answer:\n" + conversation.personal_answer_style.strip())
        )
    if conversation.personal_memory_enabled and conversation.personal_has_memories:
        lines = _memory_lines(conversation.owner_id)
        if lines:
            sections.append(
                (MEMORIES, "Facts the user asked you to remember (most recent first):\n" + "\n".join(lines))
            )
    return sections


def personal_export(*, user) -> dict:
    """The user's personalization, memories, prompts and assistants, for "export all my data"
    (conversations.account_data). The groups a prompt or an assistant is shared with are named (a group's name is
    unique), its knowledge bases given by id and name, as chats.json gives a citation's document. Seven queries
    at most, whatever the number of rows: the settings, the memories, the prompts and their groups, the assistants
    with their groups and bases (a prefetch with nothing to fetch runs no query)."""
    personalization = personalization_get(user_id=user.pk)
    group_names = Prefetch("groups", queryset=Group.objects.only("name").order_by("name"))
    bases = Prefetch("knowledge_bases", queryset=KnowledgeBase.objects.only("name").order_by("name", "pk"))
    return {
        "custom_instructions": {"about_me": personalization.about_me, "answer_style": personalization.answer_style},
        "memory_enabled": personalization.memory_enabled,
        "memories": [
            {"id": memory.pk, "content": memory.content, "created_at": memory.created_at.isoformat(),
             "updated_at": memory.updated_at.isoformat(),
             "conversation_id": str(memory.conversation_id) if memory.conversation_id else None}
            for memory in memory_list(user=user)
        ],
        "prompts": [
            {"command": prompt.command, "title": prompt.title, "content": prompt.content,
             "groups": [group.name for group in prompt.groups.all()]}
            for prompt in Prompt.objects.for_user(user).prefetch_related(group_names)
        ],
        "assistants": [
            {"slug": assistant.slug, "name": assistant.name, "emoji": assistant.emoji,
             "instructions": assistant.instructions, "model": assistant.model, "starters": assistant.starters,
             "tools": assistant.tools, "shared": assistant.shared, "featured": assistant.featured,
             "groups": [group.name for group in assistant.groups.all()],
             "knowledge_bases": [{"id": base.pk, "name": base.name} for base in assistant.knowledge_bases.all()]}
            for assistant in Assistant.objects.for_user(user).prefetch_related(group_names, bases)
        ],
    }


def prompt_list(*, user) -> PromptQuerySet:
    """The user's own prompts (the ones they may change)."""
    return Prompt.objects.for_user(user)


def prompts_visible(*, user) -> PromptQuerySet:
    """The prompts of the user's `/` menu: their own and those shared with a group they are in, with their groups'
    ids (one query more for the whole list)."""
    return Prompt.objects.visible_to(user).prefetch_related("groups")


def prompt_get(*, user, prompt_id: int) -> Prompt:
    """The user's own prompt; another user's id (even of one shared with them) raises Prompt.DoesNotExist (a 404 to
    the caller)."""
    return Prompt.objects.for_user(user).get(pk=prompt_id)


def prompt_visible_get(*, user, prompt_id: int) -> Prompt:
    """A prompt the user sees (their own or shared with a group they are in); else Prompt.DoesNotExist."""
    return Prompt.objects.visible_to(user).get(pk=prompt_id)


def last_used_model(*, user, offered: list[str]) -> str:
    """The model of the user's most recently active chat, for a new chat to start with; "" (the site default) when
    that chat follows the default, or its model is no longer offered."""
    model = Conversation.objects.for_user(user).order_by("-updated_at").values_list("model", flat=True).first()
    return model if model in offered else ""


def assistant_list(*, user) -> AssistantQuerySet:
    """The user's own assistants, with their groups and knowledge bases (two queries more for the whole list)."""
    return Assistant.objects.for_user(user).prefetch_related("groups", "knowledge_bases")


def assistant_get(*, user, assistant_id: int) -> Assistant:
    """The user's own assistant; another user's id raises Assistant.DoesNotExist (a 404 to the caller)."""
    return Assistant.objects.for_user(user).get(pk=assistant_id)


def assistant_usable(*, user, slug: str) -> Assistant:
    """An assistant the user may chat with (their own, a featured one, or a shared one whose link they have);
    otherwise Assistant.DoesNotExist (a 404 to the caller)."""
    return Assistant.objects.usable_by(user).get(slug=slug)


def assistants_listed(*, user) -> AssistantQuerySet:
    """The assistants offered to the user: in the sidebar, the `@` menu and /v1/models."""
    return Assistant.objects.listed_for(user)


def assistant_for_model_id(*, user, model_id: str) -> Assistant | None:
    """The assistant a /v1 model id `assistant:<slug>` names, if the user may use it; None for any other id."""
    if not model_id.startswith(MODEL_ID_PREFIX):
        return None
    return Assistant.objects.usable_by(user).filter(slug=model_id.removeprefix(MODEL_ID_PREFIX)).first()
