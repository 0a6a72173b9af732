"""What a user tells chatsite about themselves: custom instructions, remembered facts (memory), saved prompts, and
the assistants they make (instructions, a model and starter prompts under a name, shareable by link)."""

import re
import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.urls import reverse
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from conversations.models import Conversation

MAX_INSTRUCTIONS_CHARS = 1_500
MAX_MEMORY_CHARS = 500
# How the `remember` tool's result starts (conversations/answering/tools.py): only such a step can show "Memory saved".
REMEMBERED = "Saved to the user's memory: "


class Personalization(models.Model):
    """One row per user, made on first save: their custom instructions and whether memory is on."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="personalization",
        help_text="The account these settings belong to.",
    )
    about_me = models.TextField(
        blank=True, max_length=MAX_INSTRUCTIONS_CHARS,
        help_text="What chatsite should know about the user; added to the system prompt of their chats.",
    )
    answer_style = models.TextField(
        blank=True, max_length=MAX_INSTRUCTIONS_CHARS,
        help_text="How the user wants answers; added to the system prompt of their chats.",
    )
    memory_enabled = models.BooleanField(
        default=True, help_text="Memories are given to the model, and the model may save new ones."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"personalization of {self.user}"


class MemoryQuerySet(models.QuerySet["Memory"]):
    def for_user(self, user) -> "MemoryQuerySet":
        return self.filter(owner=user)


class Memory(models.Model):
    """A fact the user keeps for the model: written by them, or saved by the model through the `remember` tool."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memories",
        help_text="The user the fact is about; only they see it.",
    )
    content = models.TextField(max_length=MAX_MEMORY_CHARS, help_text="The fact, in one or two sentences.")
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The chat whose answer saved it (the `remember` tool); empty when the user wrote it.",
    )
    tool_call_id = models.CharField(
        max_length=100, blank=True, help_text="The tool call that saved it, to show 'Memory saved' on that step."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MemoryQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(content=""), name="personal_memory_content_not_empty"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("content"), MAX_MEMORY_CHARS),
                name="personal_memory_content_max_length",
            ),
        ]
        indexes = [models.Index(fields=["owner", "-updated_at"], name="personal_memory_owner_recent")]

    def __str__(self) -> str:
        return self.content[:60]


MAX_PROMPT_CHARS = 10_000
# `{{name}}` in a prompt: a blank the user fills in before sending (letters, digits, _ and spaces, 40 at most).
VARIABLE = re.compile(r"\{\{\s*([^\W\d][\w ]{0,39}?)\s*\}\}")


def _shared_with(through, object_field: str, user) -> models.Q:
    """Rows shared with a group `user` belongs to (through the `groups` table `through`); a subquery, so no row
    comes twice for a user in several of its groups."""
    return models.Q(pk__in=through.objects.filter(group__user=user).values(object_field))


class PromptQuerySet(models.QuerySet["Prompt"]):
    def for_user(self, user) -> "PromptQuerySet":
        """The user's own prompts: the only ones they may change."""
        return self.filter(owner=user)

    def visible_to(self, user) -> "PromptQuerySet":
        """Those in the user's `/` menu and prompt list: their own, and those shared with a group they belong to."""
        return self.filter(models.Q(owner=user) | _shared_with(Prompt.groups.through, "prompt_id", user))


class Prompt(models.Model):
    """A saved prompt, inserted in the composer by typing `/` and its command; private to its owner unless shared
    with some of their groups (whose members may use it, never change it)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="prompts",
        help_text="The user who saved it; only they may change it.",
    )
    command = models.SlugField(
        max_length=40, help_text="What follows `/` in the composer to pick it, e.g. `summarize`; unique per user."
    )
    title = models.CharField(max_length=100, help_text="Shown in the `/` menu.")
    content = models.TextField(
        max_length=MAX_PROMPT_CHARS, help_text="The text inserted; `{{name}}` marks a blank filled before sending."
    )
    groups = models.ManyToManyField(
        Group, blank=True, related_name="shared_prompts",
        help_text="Groups of the owner whose members see it in their `/` menu (read-only); none: private.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PromptQuerySet.as_manager()

    class Meta:
        ordering = ["command", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "command"], name="personal_prompt_owner_command_unique"),
            models.CheckConstraint(
                condition=~models.Q(command="") & ~models.Q(content=""), name="personal_prompt_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.command}"

    @property
    def variables(self) -> list[str]:
        """The blanks of the prompt, each once, in order of first use."""
        return list(dict.fromkeys(match.strip() for match in VARIABLE.findall(self.content)))


MAX_ASSISTANT_INSTRUCTIONS_CHARS = 8_000
MAX_STARTERS = 4
MAX_STARTER_CHARS = 300
# The per-chat server tools (conversations/answering/tools.py, `per_chat`) an assistant may turn on in its chats.
ASSISTANT_TOOLS = {"web_search": _("Web search")}
MODEL_ID_PREFIX = "assistant:"  # an assistant's model id on the OpenAI-compatible /v1 endpoints


def assistant_slug(name: str) -> str:
    """Its name, then a random part: the slug is in the share link, which must not be guessable."""
    return f"{slugify(name)[:40].strip('-') or 'assistant'}-{secrets.token_hex(5)}"


class AssistantQuerySet(models.QuerySet["Assistant"]):
    def for_user(self, user) -> "AssistantQuerySet":
        """The user's own assistants: the only ones they may change."""
        return self.filter(owner=user)

    def usable_by(self, user) -> "AssistantQuerySet":
        """Those the user may chat with when they know the slug: their own, featured ones, shared ones (the
        share link holds the slug), and those shared with a group they belong to."""
        return self.filter(
            models.Q(owner=user) | models.Q(featured=True) | models.Q(shared=True) | self._in_groups_of(user)
        )

    def listed_for(self, user) -> "AssistantQuerySet":
        """Those offered to the user (sidebar, /v1/models): their own, featured ones, those shared with a group
        they belong to, and shared ones they have started a chat with (having opened the link). Never a shared one
        they were not given."""
        used = models.Exists(Conversation.objects.filter(owner=user, assistant=models.OuterRef("pk")))
        return self.filter(
            models.Q(owner=user) | models.Q(featured=True) | self._in_groups_of(user)
            | (models.Q(shared=True) & used)
        )

    @staticmethod
    def _in_groups_of(user) -> models.Q:
        return _shared_with(Assistant.groups.through, "assistant_id", user)


class Assistant(models.Model):
    """Instructions, a model, tools and starter prompts under a name: a chat started with it uses them."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assistants",
        help_text="The user who made it; only they may change it.",
    )
    slug = models.SlugField(
        max_length=60, unique=True,
        help_text="Its id in links and the API (`assistant:<slug>`): its name and a random part.",
    )
    name = models.CharField(max_length=80, help_text="Shown in the sidebar and the chat's header.")
    emoji = models.CharField(max_length=16, blank=True, help_text="Shown before its name.")
    instructions = models.TextField(
        max_length=MAX_ASSISTANT_INSTRUCTIONS_CHARS,
        help_text="Added to the system prompt of its chats, after the chat's own.",
    )
    model = models.CharField(max_length=100, blank=True, help_text="The model of its chats; empty = the site default.")
    starters = models.JSONField(
        default=list, blank=True, help_text=f"Up to {MAX_STARTERS} starter prompts shown in a new chat with it.",
    )
    tools = models.JSONField(
        default=list, blank=True, help_text="Per-chat server tools it turns on in its chats (`web_search`).",
    )
    shared = models.BooleanField(
        default=False, help_text="Any signed-in user with its link may chat with it (never change it).",
    )
    groups = models.ManyToManyField(
        Group, blank=True, related_name="shared_assistants",
        help_text="Groups of the owner whose members may chat with it (listed for them; never changed by them).",
    )
    knowledge_bases = models.ManyToManyField(
        "knowledge.KnowledgeBase", blank=True, related_name="assistants",
        help_text="The owner's knowledge bases its chats search, whoever chats with it.",
    )
    featured = models.BooleanField(
        default=False, help_text="Set by staff: offered to every user (sidebar and /v1/models).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AssistantQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(name="") & ~models.Q(slug=""), name="personal_assistant_named"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.emoji} {self.name}".strip()

    def get_absolute_url(self) -> str:
        """Its link: a new chat with it (conversations:home with `?assistant=`)."""
        return f"{reverse('conversations:home')}?assistant={self.slug}"

    @property
    def model_id(self) -> str:
        return MODEL_ID_PREFIX + self.slug

    def chat_fields(self) -> dict:
        """What a chat started with it takes from it (conversations.services.conversation_create): the one place
        where what an assistant brings to its chats is decided. Its knowledge bases are not copied: the chat searches
        them through its `assistant` (knowledge.search.knowledge_bases_for_conversation), so a change reaches every
        chat."""
        return {"assistant": self, "model": self.model, "web_search": "web_search" in self.tools}
