"""What a user tells chatsite about themselves: custom instructions, remembered facts (memory), saved prompts."""

import re

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual

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


class PromptQuerySet(models.QuerySet["Prompt"]):
    def for_user(self, user) -> "PromptQuerySet":
        return self.filter(owner=user)


class Prompt(models.Model):
    """A saved prompt, inserted in the composer by typing `/` and its command; private to its owner."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="prompts",
        help_text="The user who saved it; only they see it.",
    )
    command = models.SlugField(
        max_length=40, help_text="What follows `/` in the composer to pick it, e.g. `summarize`; unique per user."
    )
    title = models.CharField(max_length=100, help_text="Shown in the `/` menu.")
    content = models.TextField(
        max_length=MAX_PROMPT_CHARS, help_text="The text inserted; `{{name}}` marks a blank filled before sending."
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
