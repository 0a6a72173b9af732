"""Shapes of the personalization API: custom instructions, the memory switch, memories, prompts, assistants."""

from django.core.validators import validate_slug
from rest_framework import serializers

from chatsite.api.fields import StrictBooleanField, TextField
from conversations.api.serializers import OfferedModelField
from personal.models import (
    ASSISTANT_TOOLS,
    MAX_ASSISTANT_INSTRUCTIONS_CHARS,
    MAX_INSTRUCTIONS_CHARS,
    MAX_MEMORY_CHARS,
    MAX_PROMPT_CHARS,
    MAX_STARTER_CHARS,
    MAX_STARTERS,
    Assistant,
    Memory,
    Personalization,
    Prompt,
)


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


class IdListField(serializers.ListField):
    """Ids of related rows (a many-to-many), in and out: out, the ids of the rows; in, a list of integers that the
    service checks (a group the owner is in, a base of theirs)."""

    def __init__(self, **kwargs):
        # Ids the database can hold (a bigint); 100 at most, more than any user has groups or bases.
        super().__init__(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), max_length=100, **kwargs)

    def to_representation(self, data):
        return sorted(related.pk for related in data.all())


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
    groups = IdListField(
        required=False,
        help_text="Ids of your groups whose members see it in their `/` menu (read-only for them); [] = private. "
        "A group you are not a member of is a 400.",
    )
    mine = serializers.SerializerMethodField(help_text="You saved it (and may change it); false: shared with you.")

    class Meta:
        model = Prompt
        fields = ("id", "command", "title", "content", "variables", "groups", "mine", "created_at", "updated_at")
        read_only_fields = ("id", "variables", "mine", "created_at", "updated_at")

    def get_mine(self, prompt: Prompt) -> bool:
        return prompt.owner_id == self.context["request"].user.pk


class AssistantSerializer(serializers.ModelSerializer):
    """An assistant as its owner sees and changes it."""

    name = TextField(max_length=80, help_text="Shown in the sidebar and the chat's header.")
    emoji = TextField(max_length=16, allow_blank=True, required=False, help_text="Shown before its name.")
    instructions = TextField(
        max_length=MAX_ASSISTANT_INSTRUCTIONS_CHARS, trim_whitespace=False,
        help_text="Added to the system prompt of its chats, after the chat's own and before your custom instructions.",
    )
    model = OfferedModelField(
        allow_blank=True, required=False,
        help_text="The model of its chats (one of GET /v1/models); empty = the site default.",
    )
    starters = serializers.ListField(
        child=TextField(max_length=MAX_STARTER_CHARS, allow_blank=True), max_length=MAX_STARTERS, required=False,
        help_text=f"Up to {MAX_STARTERS} starter prompts shown in a new chat with it.",
    )
    tools = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(ASSISTANT_TOOLS)), required=False,
        help_text="Server tools it turns on in its chats.",
    )
    shared = StrictBooleanField(
        required=False, help_text="Any signed-in user with its link (`url`) may chat with it; only you may change it.",
    )
    groups = IdListField(
        required=False,
        help_text="Ids of your groups whose members may chat with it (it is listed for them; they never change it). "
        "A group you are not a member of is a 400.",
    )
    knowledge_bases = IdListField(
        required=False,
        help_text="Ids of your knowledge bases its chats search, whoever chats with it (a member of its groups, or "
        "anyone with its link when `shared`, gets passages of them). A base that is not yours is a 400.",
    )
    model_id = serializers.CharField(read_only=True, help_text="Its model id on /v1: `assistant:<slug>`.")
    url = serializers.CharField(
        source="get_absolute_url", read_only=True, help_text="Its link: a new chat with it on the site."
    )
    featured = serializers.BooleanField(read_only=True, help_text="Offered to every user (set by staff).")

    class Meta:
        model = Assistant
        fields = ("id", "slug", "name", "emoji", "instructions", "model", "starters", "tools", "shared", "groups",
                  "knowledge_bases", "featured", "model_id", "url", "created_at", "updated_at")
        read_only_fields = ("id", "slug", "featured", "model_id", "url", "created_at", "updated_at")


class UsableAssistantSerializer(serializers.ModelSerializer):
    """An assistant as anyone who may use it sees it: never its instructions (they are its owner's)."""

    model_id = serializers.CharField(read_only=True, help_text="Its model id on /v1: `assistant:<slug>`.")
    url = serializers.CharField(source="get_absolute_url", read_only=True, help_text="A new chat with it.")
    mine = serializers.SerializerMethodField(help_text="You made it (and may change it).")

    class Meta:
        model = Assistant
        fields = ("slug", "name", "emoji", "model", "starters", "tools", "featured", "model_id", "url", "mine")
        read_only_fields = fields

    def get_mine(self, assistant: Assistant) -> bool:
        return assistant.owner_id == self.context["request"].user.pk


class AssistantChatSerializer(serializers.Serializer):
    """A chat just started with an assistant (its messages then go to /api/v1/conversations/{id}/turns/)."""

    id = serializers.UUIDField(read_only=True)
    url = serializers.CharField(source="get_absolute_url", read_only=True)
    model = serializers.CharField(read_only=True, help_text="Its model; empty = the site default.")
    assistant = serializers.CharField(source="assistant.slug", read_only=True, help_text="The assistant's slug.")
    web_search = serializers.BooleanField(read_only=True)
