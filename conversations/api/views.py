"""REST API views (DRF): thin — authenticate, look up the caller's object, validate, call a service.

Turn-creating views answer JSON, or, when a stream is asked for, start the answer on the answer engine
and stream its events (streaming.py).
"""

from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from conversations import answering, attachments, errors, exports, organizing, selectors, services
from conversations.answering import mcp
from conversations.api import schema
from conversations.api import serializers as s
from conversations.api.base import (
    AnsweringView,
    AnswerPendingResponse,
    ChatApiView,
    own_conversation,
    own_turn,
    wants_event_stream,
)
from conversations.api.message_lists import ChatReplySerializer, ChatRequestSerializer, conversation_from_messages
from conversations.api.pagination import ConversationPagination
from conversations.api.projects import own_project
from conversations.api.streaming import SSE_DESCRIPTION, answer_stream, follow_stream, interrupted_stream
from conversations.models import Attachment, Conversation, Turn
from conversations.search import attach_snippets, documents_matching
from teams.policy import Feature, policy_for

BOOLEAN_PARAMS = {"true": True, "1": True, "false": False, "0": False}


def _query_text(request, name: str) -> str:
    value = request.query_params.get(name, "")
    if "\x00" in value:
        raise exceptions.ValidationError({name: ["Null characters are not allowed."]})
    return value


def _query_bool(request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return BOOLEAN_PARAMS[raw.lower()]
    except KeyError:
        raise exceptions.ValidationError({name: ["Use true or false."]}) from None


ANSWER_EVENTS = OpenApiResponse(schema.answer_stream_schema(), description="The answer as server-sent events.")


def answer_schema(*, summary: str, description: str, request, json_status: int):
    """The schema of a route that answers a message: the stored pair as JSON, or the answer's event stream."""
    return extend_schema(
        summary=summary,
        description=f"{description}\n\n{SSE_DESCRIPTION}",
        request=request,
        responses={json_status: s.TurnPairSerializer, (200, "text/event-stream"): ANSWER_EVENTS},
    )


def settle_running(turns: Iterable[dict]) -> None:
    """A read that shows a pending answer asks whether it is still being written (as a follower of its stream
    does), so a crashed worker's answer reads failed on every path at the same moment."""
    for data in turns:
        if data["status"] == Turn.Status.PENDING:
            turn = Turn.objects.get(pk=data["id"])
            if answering.fail_if_abandoned(turn):
                data.update(status=turn.status, error=turn.error)


def turn_pair(answer: answering.Answer) -> dict:
    return {
        "user_turn": s.TurnSerializer(answer.user_turn).data if answer.user_turn is not None else None,
        "assistant_turn": s.TurnSerializer(answer.assistant_turn).data,
    }


def answer_response(request, stream: bool, json_status: int, **turn):
    """Start a turn (`answering.begin` arguments) and answer with its event stream when one was asked for, else
    with the stored pair once the answer is stored (awaited on the event loop: AnsweringView). Busy, quota and the
    like are raised before anything is stored, and answered as JSON like any other error."""
    answer = answering.begin(user=request.user, **turn)
    if wants_event_stream(request, stream):
        return answer_stream(answer)
    return AnswerPendingResponse(answer, lambda stored: turn_pair(stored.result()), status=json_status)


class ConversationListView(ChatApiView, generics.GenericAPIView):
    serializer_class = s.ConversationSerializer
    pagination_class = ConversationPagination

    @extend_schema(
        summary="List your conversations",
        operation_id="api_v1_conversations_list",
        responses=s.ConversationListSerializer(many=True),
        parameters=[
            OpenApiParameter(
                "search", str,
                description="Match titles, message text and the text of files sent (case-insensitive); each "
                "result has a `snippet` around the hit. A search page is not counted: `count` is null and `next` "
                "says whether more follow. The first page of a search also lists, in `documents`, your knowledge "
                "documents whose passages hold its words, each with a snippet and the `url` of the passage.",
            ),
            OpenApiParameter("archived", bool, description="true: only archived chats; default false."),
        ],
    )
    def get(self, request):
        search = _query_text(request, "search")
        conversations = selectors.conversation_list(
            user=request.user, archived=_query_bool(request, "archived", False), search=search
        )
        page = self.paginate_queryset(conversations)
        if search and page is not None:
            attach_snippets(page, search)
        response = self.get_paginated_response(s.ConversationListSerializer(page, many=True).data)
        if search:
            first = response.data["previous"] is None
            response.data["documents"] = (
                [hit.as_dict() for hit in documents_matching(request.user, search)] if first else []
            )
        return response

    @extend_schema(
        summary="Start a conversation",
        request=s.ConversationWriteSerializer,
        responses={201: s.ConversationSerializer},
    )
    def post(self, request):
        data = self.validated(request, s.ConversationWriteSerializer)
        fields = {k: v for k, v in data.items() if k not in ("archived", "project")}
        project = own_project(request, data["project"]) if data.get("project") is not None else None
        conversation = services.conversation_create(
            owner=request.user, source=Conversation.Source.API, project=project, **fields
        )
        if data.get("archived"):
            services.conversation_update(conversation=conversation, archived=True)
        return Response(s.ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ConversationDetailView(ChatApiView):
    http_method_names = ["get", "patch", "delete", "options"]

    @extend_schema(summary="A conversation with its turns", responses=s.ConversationDetailSerializer)
    def get(self, request, conversation_id):
        # The conversation (ownership in the query), then the branch shown and its feedback (two queries).
        data = s.ConversationDetailSerializer(own_conversation(request, conversation_id)).data
        settle_running(data["turns"])
        return Response(data)

    @extend_schema(
        summary="Rename, archive, move to a project, or change the model or system prompt",
        description="Only title, model, system_prompt, archived, web_search, personal and project can change; other "
        "fields are ignored.",
        request=s.ConversationWriteSerializer,
        responses=s.ConversationSerializer,
    )
    def patch(self, request, conversation_id):
        conversation = own_conversation(request, conversation_id)
        data = self.validated(request, s.ConversationWriteSerializer, partial=True)
        if "project" in data:
            project_id = data.pop("project")
            project = own_project(request, project_id) if project_id is not None else None
            organizing.conversation_move(conversation=conversation, project=project)
        if data:
            services.conversation_update(conversation=conversation, **data)
        return Response(s.ConversationSerializer(conversation).data)

    @extend_schema(summary="Delete a conversation and its turns", responses={204: None})
    def delete(self, request, conversation_id):
        services.conversation_delete(conversation=own_conversation(request, conversation_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _turn_id_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**63:
        raise exceptions.ValidationError({name: ["Use a turn id (a whole number)."]})
    return int(raw)


class TurnListCreateView(AnsweringView, generics.GenericAPIView):
    serializer_class = s.TurnSerializer
    chat_methods = ("POST",)

    @extend_schema(
        summary="The branch shown: turns from the first message to the current turn, with their versions",
        description=(
            "Each turn carries `sibling_count` and `sibling_index` (its versions: turns with the same parent) "
            "and the ids of the versions next to it. With `leaf`, the branch through that turn (down to its "
            "newest turn) is listed without switching to it. `tree/` lists every branch."
        ),
        operation_id="api_v1_conversations_turns_list",
        parameters=[OpenApiParameter("leaf", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                                     description="List the branch through this turn instead.")],
        responses=s.TurnSerializer(many=True),
    )
    def get(self, request, conversation_id):
        conversation = own_conversation(request, conversation_id)
        through = _turn_id_param(request, "leaf")
        leaf_id = None
        if through is not None:
            leaf_id = selectors.latest_leaf_id(conversation, through)
            if leaf_id is None:
                raise exceptions.NotFound("Turn not found.")
        # Paged in SQL: the leaf's depth is the count, and only the page's turns are read.
        page = self.paginate_queryset(selectors.turn_path_pages(conversation, leaf_id=leaf_id))
        turns = s.TurnSerializer(page, many=True).data
        settle_running(turns)
        return self.get_paginated_response(turns)

    @answer_schema(
        summary="Send a message and get the answer (JSON, or a stream of server-sent events)",
        description=(
            "Stores your message, calls the model with the conversation's history and stores the answer. "
            "The message is stored before the model is called, and kept if the model fails."
        ),
        request=s.TurnCreateSerializer,
        json_status=status.HTTP_201_CREATED,
    )
    def post(self, request, conversation_id):
        conversation = own_conversation(request, conversation_id)
        data = self.validated(request, s.TurnCreateSerializer)
        return answer_response(request, data["stream"], status.HTTP_201_CREATED, conversation=conversation,
                               content=data["content"], attachment_ids=data.get("attachments"))


class RegenerateView(AnsweringView):
    chat_methods = ("POST",)

    @answer_schema(
        summary="Write a new version of an answer (optionally of the message it answers)",
        description=(
            "Adds a new version of the answer `turn_id` (default: the current turn) beside the old ones, "
            "which keep their text, usage, feedback and status, and shows it. With `content`, a new version "
            "of the message that answer answers is written first (as `turns/{id}/edit/`). With `model`, the "
            "new version is written by that model (its `model` says so; the chat's model stays). "
            "409 while an answer is still being written."
        ),
        request=s.RegenerateSerializer,
        json_status=status.HTTP_200_OK,
    )
    def post(self, request, conversation_id):
        conversation = own_conversation(request, conversation_id)
        data = self.validated(request, s.RegenerateSerializer)
        return answer_response(request, data["stream"], status.HTTP_200_OK, conversation=conversation,
                               content=data.get("content"), regenerate=True, turn_id=data.get("turn_id"),
                               model=data.get("model"))


class ContinueView(AnsweringView):
    chat_methods = ("POST",)

    @answer_schema(
        summary="Continue an answer that was stopped or cut at its length",
        description=(
            "The model gets the answer so far and goes on: the same answer grows (its id stays; its text so far "
            "comes first, and the stream's deltas are the new text). Only an answer whose `status` is `cancelled`, "
            "or whose `finish_reason` is `length`, can be continued (409 `nothing_to_continue` otherwise); "
            "409 while an answer is still being written."
        ),
        request=s.ContinueSerializer,
        json_status=status.HTTP_200_OK,
    )
    def post(self, request, conversation_id):
        conversation = own_conversation(request, conversation_id)
        data = self.validated(request, s.ContinueSerializer)
        return answer_response(request, data["stream"], status.HTTP_200_OK, conversation=conversation,
                               continue_turn_id=data["turn_id"])


class EditView(AnsweringView):
    chat_methods = ("POST",)

    @answer_schema(
        summary="Write a new version of one of your messages, and answer it",
        description=(
            "Any user message, not only the last: the new version is added beside the old one, answered, and "
            "shown; everything below the old message stays on its own branch (switch back with `switch/`). "
            "409 while an answer is still being written."
        ),
        request=s.TurnCreateSerializer,
        json_status=status.HTTP_201_CREATED,
    )
    def post(self, request, conversation_id, turn_id):
        conversation = own_conversation(request, conversation_id)
        data = self.validated(request, s.TurnCreateSerializer)
        return answer_response(request, data["stream"], status.HTTP_201_CREATED, conversation=conversation,
                               content=data["content"], turn_id=turn_id)


class SwitchView(ChatApiView):
    @extend_schema(
        summary="Show another version: the branch through a turn, down to its newest turn",
        description="The choice is stored: it holds across reloads and devices. Answers the branch now shown.",
        request=s.SwitchSerializer,
        responses=s.BranchSerializer,
    )
    def post(self, request, conversation_id):
        conversation = own_conversation(request, conversation_id)
        data = self.validated(request, s.SwitchSerializer)
        try:
            services.conversation_switch(conversation=conversation, turn_id=data["turn_id"])
        except Turn.DoesNotExist:
            raise exceptions.NotFound("Turn not found.") from None
        turns = selectors.turn_path(conversation)
        return Response({
            "current_turn_id": conversation.current_turn_id, "turns": s.TurnSerializer(turns, many=True).data,
        })


class TreeView(ChatApiView):
    @extend_schema(
        summary="Every version of every turn: the whole tree",
        description="Turns oldest first, each with its `parent_id`; `current_turn_id` ends the branch shown.",
        responses=s.TreeSerializer,
    )
    def get(self, request, conversation_id):
        conversation = own_conversation(request, conversation_id)
        turns = selectors.conversation_tree(conversation)
        return Response({
            "current_turn_id": conversation.current_turn_id, "turns": s.TurnSerializer(turns, many=True).data,
        })


def _last_event_id(request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.query_params.get("after") or "0"
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 10**9:
        raise exceptions.ValidationError({"Last-Event-ID": ["Use the id of an event of this stream."]})
    return int(raw)


class AnswerStreamView(ChatApiView):
    @extend_schema(
        summary="Follow the answer being written, live (server-sent events)",
        description=(
            "Replays the running answer's events from the start (or after `Last-Event-ID`, or `?after=`) and "
            "follows it live until `done` or `error`, like the stream of the request that started it. "
            "204 when no answer is being written. An answer whose worker died is failed here and reported "
            "as an `error` event. With Redis (REDIS_URL), this works from any worker or host."
        ),
        parameters=[OpenApiParameter("after", {"type": "integer", "minimum": 0, "maximum": 10**9},
                                     description="Resume after this event id (as Last-Event-ID).")],
        responses={
            (200, "text/event-stream"): ANSWER_EVENTS,
            204: None,
        },
    )
    def get(self, request, conversation_id):
        conversation = own_conversation(request, conversation_id)
        after = _last_event_id(request)
        turn = selectors.running_answer(conversation)
        if turn is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        stream = follow_stream(turn.pk, after=after)
        if stream is not None:
            # The request lasts as long as the answer: give the DB connection back now, not at its end.
            services.release_connection()
            return stream
        if answering.fail_if_abandoned(turn):
            return interrupted_stream(turn)
        # Running in another worker that this one cannot follow (no Redis): nothing to stream from here.
        return Response(status=status.HTTP_204_NO_CONTENT)


class StopView(ChatApiView):
    @extend_schema(
        summary="Stop the answer being written",
        description="The partial answer is kept, with status cancelled. Answers null if nothing was running.",
        request=None,
        responses=s.StopResultSerializer,
    )
    def post(self, request, conversation_id):
        turn = answering.stop_conversation(own_conversation(request, conversation_id))
        return Response({"assistant_turn": s.TurnSerializer(turn).data if turn is not None else None})


class ToolApprovalView(ChatApiView):
    @extend_schema(
        summary="Allow or refuse a tool call the answer is waiting on",
        description=(
            "Answers the `tool_approval` event of a running answer: `allow: true` runs the call, `false` does "
            "not (the model is told). 404 when no such call is waiting (decided already, timed out, or never "
            "asked). Works from any worker."
        ),
        request=s.ToolApprovalSerializer,
        responses=s.ToolApprovalResultSerializer,
    )
    def post(self, request, conversation_id, turn_id, call_id):
        conversation = own_conversation(request, conversation_id)
        if not conversation.turns.filter(pk=turn_id, role=Turn.Role.ASSISTANT).exists():
            raise exceptions.NotFound("Turn not found.")
        allow = self.validated(request, s.ToolApprovalSerializer)["allow"]
        if not answering.decide_tool_call(turn_id, call_id, allow):
            raise exceptions.NotFound("No call of this answer is waiting for approval with that id.")
        return Response({"tool_call_id": call_id, "allow": allow})


class McpServerListView(ChatApiView):
    @extend_schema(
        summary="The site's MCP servers, their state and their tools",
        description=(
            "The tools a conversation may enable (its `mcp_tools`), by server, with each server's state as the "
            "worker answering knows it. Never waits for a server: one not started yet is started in the background "
            "and listed as `starting` until its tools are known. 403 `feature_disabled` when your groups do not "
            "allow MCP tools (or no server tools at all)."
        ),
        responses=s.McpServerListSerializer,
    )
    def get(self, request):
        if not policy_for(request.user).allows(Feature.MCP_TOOLS):
            raise errors.FeatureDisabled(services.MCP_TOOLS_REFUSED)
        return Response({"servers": [
            {
                "name": status.name, "state": status.state.value,
                "reason": status.reason.value if status.reason else None, "detail": status.detail,
                "retry_in_seconds": None if status.retry_in is None else round(status.retry_in, 1),
                "tools": [
                    {"name": tool.qualified_name, "tool": tool.name, "description": tool.description,
                     "input_schema": tool.input_schema, "approval": tool.approval}
                    for tool in status.tools
                ],
            }
            for status in mcp.statuses()
        ]})


class FeedbackView(ChatApiView):
    @extend_schema(
        summary="Rate an answer (+1 or -1, with an optional comment)",
        request=s.FeedbackSerializer,
        responses=s.FeedbackSerializer,
    )
    def post(self, request, turn_id):
        turn = own_turn(request, turn_id)
        data = self.validated(request, s.FeedbackSerializer)
        if turn.role != Turn.Role.ASSISTANT:
            raise exceptions.ValidationError("Feedback is only for answers (assistant turns).")
        feedback = services.feedback_set(turn=turn, **data)
        return Response(s.FeedbackSerializer(feedback).data)


class ExportView(ChatApiView):
    @extend_schema(
        summary="Download a conversation as Markdown or JSON",
        parameters=[OpenApiParameter("format", str, enum=["md", "json"], description="Default md.")],
        responses={
            (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT),
        },
    )
    def get(self, request, conversation_id):
        conversation = own_conversation(request, conversation_id)
        export_format = request.query_params.get("format", "md")
        if export_format not in exports.FORMATS:
            raise exceptions.ValidationError({"format": ["Use md or json."]})
        body, content_type = exports.export_conversation(conversation, export_format)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(
            True, exports.export_filename(conversation, export_format)
        )
        return response


class UsageView(ChatApiView):
    @extend_schema(
        summary="Your token usage by day, and today's quota left",
        parameters=[OpenApiParameter(
            "days", {"type": "integer", "minimum": 1, "maximum": 366}, description="How many days back (default 30)."
        )],
        responses=s.UsageSerializer,
    )
    def get(self, request):
        try:
            days = int(request.query_params.get("days", 30))
        except ValueError:
            days = 0
        if not 1 <= days <= 366:
            raise exceptions.ValidationError({"days": ["Use a whole number from 1 to 366."]})
        rows = selectors.usage_by_day(request.user, days=days)
        used = selectors.tokens_used_today(request.user)
        quota = policy_for(request.user).daily_token_budget or None
        return Response({
            "days": [
                {
                    "date": row["day"],
                    "prompt_tokens": row["prompt_tokens"],
                    "completion_tokens": row["completion_tokens"],
                    "total_tokens": row["prompt_tokens"] + row["completion_tokens"],
                    "answers": row["answers"],
                }
                for row in rows
            ],
            "tokens_today": used,
            "quota": quota,
            "quota_left": max(0, quota - used) if quota else None,
        })


def _delete_if_refused(conversation, exc: errors.ChatError) -> None:
    # Busy or over quota: nothing was asked of the model, so the request leaves nothing behind.
    # (An upstream failure keeps the conversation: the message and the failed answer are stored.)
    if not isinstance(exc, errors.UpstreamError):
        services.conversation_delete(conversation=conversation)


class ApiChatView(AnsweringView):
    """The original FastAPI backend's endpoint, kept so its clients work unchanged."""

    chat_methods = ("POST",)

    @extend_schema(
        summary="Chat from a message list: the messages in, the answer out",
        description=(
            "The original backend's contract. Each call is stored as a new conversation of the caller: "
            "system messages become its system prompt, earlier messages its history, and the last message "
            "(which must be the user's) is answered by the model."
        ),
        request=ChatRequestSerializer,
        responses=ChatReplySerializer,
    )
    def post(self, request):
        data = self.validated(request, ChatRequestSerializer)
        messages = data["messages"]
        conversation = conversation_from_messages(
            owner=request.user, source=Conversation.Source.CHAT_ENDPOINT, messages=messages
        )
        try:
            answer = answering.begin(conversation=conversation, user=request.user, content=messages[-1]["content"])
        except errors.ChatError as exc:
            _delete_if_refused(conversation, exc)
            raise
        return AnswerPendingResponse(
            answer, lambda stored: {"role": "assistant", "content": stored.result().assistant_turn.content}
        )


class AttachmentUploadView(ChatApiView):
    """Upload a file (multipart/form-data, field `file`), then send its id with a message."""

    parser_classes = [MultiPartParser]

    def max_body_bytes(self) -> int:
        # A file may be larger than a JSON body: it streams to a temporary file past FILE_UPLOAD_MAX_MEMORY_SIZE.
        # The file's own limit is checked again by attachments.attachment_create.
        return settings.CHAT_ATTACHMENT_MAX_BYTES + 64 * 1024

    def check_body_size(self, request):
        try:
            super().check_body_size(request)
        except RequestDataTooBig:  # say the limit the server knows, not "the request body is too large"
            raise errors.AttachmentTooLarge(
                f"The file is too large: the limit is {settings.CHAT_ATTACHMENT_MAX_BYTES:,} bytes per file."
            ) from None

    @extend_schema(
        summary="Upload a file to send with a message",
        description=(
            "Text (Markdown, code, CSV, JSON, HTML as text), PDF, DOCX, and PNG, JPEG, WebP or GIF images. The type "
            "is detected from the content. A document's text is extracted once, now; beyond "
            "CHAT_ATTACHMENT_MAX_TEXT_CHARS only its first part is used (`text_truncated`). Images need a model "
            "listed in CHAT_VISION_MODELS. Limits: CHAT_ATTACHMENT_MAX_BYTES per file (413), "
            "CHAT_ATTACHMENT_STORAGE_QUOTA_BYTES per user (413)."
        ),
        request={"multipart/form-data": s.AttachmentUploadSerializer},
        responses={201: s.AttachmentSerializer},
    )
    def post(self, request):
        serializer = s.AttachmentUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        attachment = attachments.attachment_create(owner=request.user, upload=serializer.validated_data["file"])
        return Response(s.AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)


def own_attachment(request, attachment_id) -> Attachment:
    """The user's attachment or 404 (someone else's id is 'not found', never 'forbidden')."""
    attachment = Attachment.objects.for_user(request.user).filter(pk=attachment_id).first()
    if attachment is None:
        raise exceptions.NotFound("Attachment not found.")
    return attachment


class AttachmentDetailView(ChatApiView):
    @extend_schema(summary="One of your attachments", responses=s.AttachmentSerializer)
    def get(self, request, attachment_id):
        return Response(s.AttachmentSerializer(own_attachment(request, attachment_id)).data)

    @extend_schema(summary="Delete an attachment not sent yet", responses={204: None})
    def delete(self, request, attachment_id):
        attachment = own_attachment(request, attachment_id)
        if attachment.turn_id is not None:
            raise errors.AttachmentRefused("This file was sent with a message: delete the conversation to remove it.")
        attachment.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class AttachmentContentView(ChatApiView):
    @extend_schema(
        summary="The file itself",
        description="Images are shown inline; anything else downloads (`Content-Disposition: attachment`).",
        responses={(200, content_type): OpenApiResponse(OpenApiTypes.BINARY, description="The file, as its own type "
                                                         "(detected from its content at upload).")
                   for content_type in attachments.SERVED_TYPES},
    )
    def get(self, request, attachment_id):
        return attachments.file_response(own_attachment(request, attachment_id))
