"""DRF serializers of the REST API: the shapes of conversations and turns, and the inputs they accept."""

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chatsite.api.fields import StrictBooleanField, TextField
from conversations import selectors
from conversations.answering import mcp
from conversations.models import Attachment, Conversation, Feedback, Project, Turn
from conversations.reviews import review_notice_for
from conversations.selectors import turn_path
from conversations.turn_json import TURN_FIELDS, VERSION_FIELDS, attachment_list_data

CONVERSATION_FIELDS: tuple[str, ...] = (
    "id", "title", "model", "system_prompt", "archived", "web_search", "personal", "mcp_tools", "created_at",
    "updated_at", "turn_count", "current_turn_id", "project",
)


class MessageContentField(TextField):
    """A chat message: kept as typed (no trimming), but never blank (unless `allow_blank`: the serializer then
    decides), and at most CHAT_MAX_MESSAGE_CHARS."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.strip() and not self.allow_blank:
            raise serializers.ValidationError("The message is empty.", code="blank")
        limit = settings.CHAT_MAX_MESSAGE_CHARS  # read per request: it is a runtime setting
        if len(value) > limit:
            raise serializers.ValidationError(
                f"The message is too long ({len(value)} characters; the limit is {limit}).", code="max_length"
            )
        return value


class VersionField(serializers.IntegerField):
    """A versions column of a turn; null where the turn was read without them (the whole-tree listing)."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def get_attribute(self, instance):
        # A bound field (the only kind that reads) has its name; the stubs allow for an unbound one's None.
        return getattr(instance, self.field_name, None)  # type: ignore[arg-type]


class TurnSerializer(serializers.ModelSerializer):
    """A stored turn. Reads only the row's own columns: serializing needs no query (safe while streaming)."""

    parent_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The turn this one follows; null for a first message."
    )
    sibling_count = VersionField(help_text="How many versions of this turn there are (turns with its parent).")
    sibling_index = VersionField(help_text="This version's place among them, from 1 (oldest).")
    previous_sibling_id = VersionField(help_text="The older version next to this one; null if none.")
    next_sibling_id = VersionField(help_text="The newer version next to this one; null if none.")
    attachments = serializers.SerializerMethodField(help_text="Files sent with this message.")

    class Meta:
        model = Turn
        fields = (*TURN_FIELDS, *VERSION_FIELDS, "attachments")
        read_only_fields = fields

    @extend_schema_field({"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
        "kind": {"type": "string", "enum": ["document", "image"]}, "content_type": {"type": "string"},
        "size": {"type": "integer"}, "url": {"type": "string"},
    }}})
    def get_attachments(self, turn) -> list[dict]:
        return attachment_list_data(turn)


class ConversationSerializer(serializers.ModelSerializer):
    current_turn_id = serializers.IntegerField(
        read_only=True, allow_null=True,
        help_text="The last turn of the branch shown; `turns` is the path from the first message down to it.",
    )

    class Meta:
        model = Conversation
        fields = CONVERSATION_FIELDS
        read_only_fields = CONVERSATION_FIELDS


class SnippetSerializer(serializers.Serializer):
    # A declared field named like Field.source: the API's key (this serializer only describes the schema).
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["message", "file"],
        help_text="Where the hit is: a message of the chat or the text of a file sent in it.",
    )
    text = serializers.CharField(help_text="The plain text around the hit, with … where it was cut.")
    html = serializers.CharField(
        help_text="The same text, HTML-escaped, with each occurrence of the search in <mark>: safe to insert as HTML."
    )


class ConversationListSerializer(ConversationSerializer):
    snippet = serializers.SerializerMethodField(
        help_text="In a search: the text around a hit in the chat's messages or files (null when only the title "
        "matches, and outside a search)."
    )

    class Meta(ConversationSerializer.Meta):
        fields = (*CONVERSATION_FIELDS, "snippet")
        read_only_fields = fields

    @extend_schema_field(SnippetSerializer(allow_null=True))
    def get_snippet(self, conversation) -> dict | None:
        found = getattr(conversation, "search_snippet", None)
        return found.as_dict() if found is not None else None


class ReviewSerializer(serializers.Serializer):
    reviewed_at = serializers.DateTimeField()
    reviewer = serializers.CharField(source="reviewer_name", allow_null=True, help_text="Only if the site shows it.")


# The detail lists the newest turns of the branch shown; `turns/` pages the whole of it.
DETAIL_TURN_LIMIT = 100


class ConversationDetailSerializer(ConversationSerializer):
    turns = serializers.SerializerMethodField(
        help_text=f"The branch shown, oldest first: its newest {DETAIL_TURN_LIMIT} turns, down to the current turn "
        "(`turns/` pages all of it)."
    )
    earlier_turns = serializers.SerializerMethodField(
        help_text=f"True when the branch is longer than the {DETAIL_TURN_LIMIT} turns listed."
    )
    review = serializers.SerializerMethodField(help_text="The latest staff review of this chat, or null.")

    class Meta(ConversationSerializer.Meta):
        fields = (*CONVERSATION_FIELDS, "review", "earlier_turns", "turns")
        read_only_fields = fields

    def _branch_end(self, conversation) -> list:
        if not hasattr(self, "_newest_turns"):
            self._newest_turns = turn_path(conversation, limit=DETAIL_TURN_LIMIT + 1)
        return self._newest_turns

    @extend_schema_field(TurnSerializer(many=True))
    def get_turns(self, conversation):
        return TurnSerializer(self._branch_end(conversation)[-DETAIL_TURN_LIMIT:], many=True).data

    @extend_schema_field(serializers.BooleanField())
    def get_earlier_turns(self, conversation) -> bool:
        return len(self._branch_end(conversation)) > DETAIL_TURN_LIMIT

    @extend_schema_field(ReviewSerializer(allow_null=True))
    def get_review(self, conversation):
        notice = review_notice_for(conversation)
        return None if notice is None else ReviewSerializer(notice).data


class OfferedModelField(TextField):
    """A model id the writing user may use (the serializer's context names the `user`): a model their groups do not
    allow is refused exactly as an unknown one, and never named to them."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 100)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        offered = selectors.models_offered(self.context["user"])
        if value and value not in offered:
            raise serializers.ValidationError(f"Unknown model. Available: {', '.join(offered)}.", code="invalid_choice")
        return value


class ConversationWriteSerializer(serializers.Serializer):
    """What a client may set on a conversation. Anything else in the body (owner, role, id...) is ignored. The
    context names the `user` writing (the models offered are theirs)."""

    title = TextField(max_length=200, allow_blank=True, required=False)
    model = OfferedModelField(allow_blank=True, required=False)
    system_prompt = TextField(allow_blank=True, required=False, trim_whitespace=False)
    archived = StrictBooleanField(required=False)
    web_search = StrictBooleanField(
        required=False, help_text="Let the model search the web in this chat (when the site has a search service)."
    )
    personal = StrictBooleanField(
        required=False, help_text="Add your custom instructions and memories to the system prompt (personal app)."
    )
    mcp_tools = serializers.ListField(
        child=TextField(max_length=100), required=False, max_length=200,
        help_text="The MCP tools to offer the model in this chat, as \"<server>__<tool>\" (the chat page lists "
                  "the site's). Replaces the list.",
    )

    def validate_mcp_tools(self, value: list[str]) -> list[str]:
        configured = mcp.servers()
        unknown = [name for name in value
                   if name.split(mcp.SEPARATOR, 1)[0] not in configured or mcp.SEPARATOR not in name]
        if unknown:
            raise serializers.ValidationError(f"Not a tool of this site's MCP servers: {', '.join(unknown[:5])}.")
        return list(dict.fromkeys(value))
    project = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
        help_text="The id of one of your projects to move the chat into (its instructions join the system prompt; "
        "a new chat starts with its model), or null to take it out.",
    )

    def validate_system_prompt(self, value: str) -> str:
        if len(value) > settings.CHAT_MAX_MESSAGE_CHARS:
            raise serializers.ValidationError(
                f"The system prompt is too long (the limit is {settings.CHAT_MAX_MESSAGE_CHARS} characters)."
            )
        return value


class TurnCreateSerializer(serializers.Serializer):
    content = MessageContentField(
        required=False, allow_blank=True, help_text="The message; may be empty (or left out) when files are sent."
    )
    stream = StrictBooleanField(default=False, help_text="Answer as text/event-stream (see the description).")

    def get_fields(self):
        # The limit is the site's setting as it is now (the published schema states it too).
        fields = super().get_fields()
        fields["attachments"] = serializers.ListField(
            child=serializers.UUIDField(), required=False, max_length=settings.CHAT_ATTACHMENTS_PER_MESSAGE,
            error_messages={"max_length": "At most {max_length} files per message."},
            help_text="Ids of your uploaded, unsent files (POST /api/v1/attachments/) to send with this message.",
        )
        return fields

    def validate(self, attrs):
        attrs.setdefault("content", "")
        if not attrs["content"].strip() and not attrs.get("attachments"):
            raise serializers.ValidationError({"content": ["The message is empty: write something or attach a file."]})
        return attrs


class AttachmentSerializer(serializers.ModelSerializer):
    text_chars = serializers.SerializerMethodField(help_text="Characters of text the model reads (documents).")
    url = serializers.SerializerMethodField(help_text="The file itself (yours only).")

    class Meta:
        model = Attachment
        fields = ("id", "name", "kind", "content_type", "size", "text_chars", "text_truncated", "turn_id",
                  "created_at", "url")
        read_only_fields = fields

    def get_text_chars(self, attachment) -> int:
        return len(attachment.text)

    def get_url(self, attachment) -> str:
        return reverse("api:attachment-content", args=[attachment.pk])


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, max_length=255)


class RegenerateSerializer(serializers.Serializer):
    turn_id = serializers.IntegerField(
        min_value=1, required=False, help_text="The answer to write again; default: the current turn."
    )
    content = MessageContentField(
        required=False, help_text="Write a new version of the message that answer answers first (edit and resend)."
    )
    model = OfferedModelField(
        required=False,
        help_text="Write the new version with this model (the chat's model stays); default: the chat's.",
    )
    stream = StrictBooleanField(default=False)


class ContinueSerializer(serializers.Serializer):
    turn_id = serializers.IntegerField(
        min_value=1, help_text="The answer to continue: stopped (`cancelled`) or cut at its length (`length`)."
    )
    stream = StrictBooleanField(default=False)


class SwitchSerializer(serializers.Serializer):
    turn_id = serializers.IntegerField(
        min_value=1, help_text="Any turn of the conversation: the branch through it is shown, down to its newest turn."
    )


class BranchSerializer(serializers.Serializer):
    current_turn_id = serializers.IntegerField(allow_null=True)
    turns = TurnSerializer(many=True, help_text="The branch shown, from the first message to the current turn.")


class TreeSerializer(serializers.Serializer):
    current_turn_id = serializers.IntegerField(allow_null=True)
    turns = TurnSerializer(many=True, help_text="Every turn of every branch, oldest first; follow parent_id.")


class TurnPairSerializer(serializers.Serializer):
    """Response of a new message or a regenerate: the stored user turn (null when not changed) and the answer."""

    user_turn = TurnSerializer(allow_null=True)
    assistant_turn = TurnSerializer()


class ToolApprovalSerializer(serializers.Serializer):
    allow = StrictBooleanField(help_text="true: the tool runs; false: it does not, and the model is told.")


class ToolApprovalResultSerializer(serializers.Serializer):
    tool_call_id = serializers.CharField()
    allow = serializers.BooleanField()


class StopResultSerializer(serializers.Serializer):
    assistant_turn = TurnSerializer(allow_null=True, help_text="The answer asked to stop; null if none was running.")


class FeedbackSerializer(serializers.ModelSerializer):
    rating = serializers.ChoiceField(choices=[1, -1])
    comment = TextField(max_length=2000, allow_blank=True, required=False, default="")

    class Meta:
        model = Feedback
        fields = ("turn", "rating", "comment", "created_at", "updated_at")
        read_only_fields = ("turn", "created_at", "updated_at")


class McpToolSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The name to list in a conversation's `mcp_tools`: \"<server>__<tool>\".")
    tool = serializers.CharField(help_text="The server's own name for the tool.")
    description = serializers.CharField(allow_blank=True)
    input_schema = serializers.DictField(help_text="The JSON schema of its arguments, as the server gave it.")
    approval = serializers.BooleanField(help_text="Each call waits until the user allows it.")


class McpServerSerializer(serializers.Serializer):
    name = serializers.CharField()
    state = serializers.ChoiceField(
        choices=[state.value for state in mcp.State],
        help_text="`starting`: its tools are not listed yet (ask again in a moment); `ready`: its tools are "
        "listed; `unavailable`: it could not be started or reached, and is tried again after a pause.",
    )
    reason = serializers.ChoiceField(
        choices=[reason.value for reason in mcp.Reason], allow_null=True,
        help_text="Why it is unavailable (null otherwise).",
    )
    detail = serializers.CharField(allow_blank=True, help_text="Why it is unavailable, in words (empty otherwise).")
    retry_in_seconds = serializers.FloatField(
        allow_null=True, help_text="When an unavailable server is tried again (null: being tried now, or not down).",
    )
    tools = McpToolSerializer(many=True, help_text="Its tools as last listed (none before it was first listed).")


class McpServerListSerializer(serializers.Serializer):
    servers = McpServerSerializer(many=True)


class UsageDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    answers = serializers.IntegerField()


class UsageSerializer(serializers.Serializer):
    days = UsageDaySerializer(many=True)
    tokens_today = serializers.IntegerField()
    quota = serializers.IntegerField(allow_null=True, help_text="Daily token quota; null = unlimited.")
    quota_left = serializers.IntegerField(allow_null=True)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    # DRF's metaclass takes declared fields out of the class, so this does not hide Serializer.fields; the
    # stubs see a class attribute.
    fields = serializers.DictField(  # type: ignore[assignment]
        required=False, help_text="Validation errors by field name."
    )


class ErrorSerializer(serializers.Serializer):
    """The one error shape of every API error."""

    error = ErrorDetailSerializer()


class ProjectSerializer(serializers.ModelSerializer):
    name = TextField(max_length=80)
    instructions = TextField(
        max_length=20000, allow_blank=True, required=False,
        help_text="Added to the system prompt of every chat in the project, after the chat's own and before your "
        "custom instructions and memories.",
    )
    model = OfferedModelField(
        allow_blank=True, required=False,
        help_text="The model a new chat in the project starts with; empty = as usual.",
    )
    conversation_count = serializers.IntegerField(read_only=True, help_text="How many chats live in it.")

    class Meta:
        model = Project
        fields = ("id", "name", "instructions", "model", "created_at", "conversation_count")
        read_only_fields = ("id", "created_at", "conversation_count")
