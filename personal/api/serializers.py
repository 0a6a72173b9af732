"""Shapes of the personalization API: custom instructions, the memory switch, memories."""

from django.core.validators import validate_slug
from rest_framework import serializers

from chatsite.api.fields import StrictBooleanField, TextField
from personal.models import MAX_INSTRUCTIONS_CHARS, MAX_MEMORY_CHARS, MAX_PROMPT_CHARS, Memory, Personalization, Prompt


class PersonalizationSerializer(serializers.ModelSerializer):
    about_me = TextField(
        max_length=MAX_INSTRUCTIONS_CHARS, allow_blank=True, required=False,
        help_text="What chatsite should know about you (added to the system prompt of your chats).",
    )
    answer_style = TextField(
        max_length=MAX_INSTRUCTIONS_CHARS, allow_blank=True, required=False,
        help_text="How chatsite should answer (added to the system prompt of your chats).",
    )
    memory_enabled = StrictBooleanField(
        required=False, help_text="Your memories are given to the model, which may save new ones (the remember tool)."
    )
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="Null until first saved.")

    class Meta:
        model = Personalization
        fields = ("about_me", "answer_style", "memory_enabled", "updated_at")
        read_only_fields = ("updated_at",)


class MemorySerializer(serializers.ModelSerializer):
    content = TextField(max_length=MAX_MEMORY_CHARS, help_text="The fact, in one or two sentences.")
    conversation_id = serializers.UUIDField(
        read_only=True, allow_null=True, help_text="The chat whose answer saved it; null when you wrote it."
    )

    class Meta:
        model = Memory
        fields = ("id", "content", "conversation_id", "created_at", "updated_at")
        read_only_fields = ("id", "conversation_id", "created_at", "updated_at")


class PromptSerializer(serializers.ModelSerializer):
    command = TextField(
        max_length=40, validators=[validate_slug], help_text="Typed after `/` in the composer, e.g. `summarize`."
    )
    title = TextField(max_length=100, help_text="Shown in the `/` menu.")
    content = TextField(
        max_length=MAX_PROMPT_CHARS, trim_whitespace=False,
        help_text="The text inserted; `{{name}}` marks a blank the composer asks for before sending.",
    )
    variables = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The `{{blanks}}` of the content, in order."
    )

    class Meta:
        model = Prompt
        fields = ("id", "command", "title", "content", "variables", "created_at", "updated_at")
        read_only_fields = ("id", "variables", "created_at", "updated_at")
