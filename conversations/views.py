"""HTML pages of the chat: the chat page, the history list (paged), and one rendered turn.

Writes of the chat itself (send, stop, regenerate, rename, archive, delete) go through the REST API from the
page's JavaScript, so the browser and API clients share one code path. The few writes only the page makes
(start a chat as the page, clear or comment feedback) are small JSON views here, behind the session and CSRF.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from itertools import groupby

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from chatsite.api.errors import chat_error_response, error_response
from conversations import account_data, attachments, errors, exports, organizing, selectors, services, sharing, tasks
from conversations.answering import mcp
from conversations.answering.search import answer_sources
from conversations.api.serializers import ConversationWriteSerializer
from conversations.models import Conversation, Project, ShareLink, Turn
from conversations.search import attach_snippets, documents_matching
from conversations.selectors import conversation_list
from knowledge import services as knowledge_services
from knowledge.errors import KnowledgeRefused
from knowledge.retrieval import answer_citations
from personal import selectors as personal_selectors
from personal.models import Assistant
from teams.policy import Feature, policy_for

HISTORY_PAGE_SIZE = 50
TURN_PAGE_SIZE = 100
# The chat page opens on its newest turns only: a few screenfuls, not a whole page of 100 (rendering a turn costs
# about a millisecond, so a long chat's page spent most of its time on turns nobody had scrolled to). Earlier ones
# come TURN_PAGE_SIZE at a time from "Show earlier messages".
CHAT_PAGE_TURNS = 40

# Shown on an empty chat; a click sends the text as the first message.
SUGGESTIONS = (
    _("Explain a concept in simple words"),
    _("Help me write a polite email"),
    _("Summarize a text I paste"),
    _("Write a Python function that sorts a list"),
)

# The page's keyboard shortcuts (static/js/chat.js), listed in its help dialog. Cmd stands for Ctrl on a Mac.
SHORTCUTS = (
    (("Ctrl", "Shift", "O"), _("New chat")),
    (("Ctrl", "K"), _("Search chats")),
    (("Shift", "Esc"), _("Focus the message box")),
    (("Ctrl", "Shift", "X"), _("Stop the answer being written")),
    (("Ctrl", "Shift", ";"), _("Copy the last answer")),
    (("Ctrl", "/"), _("Show these shortcuts")),
    (("Esc",), _("Close a menu, a dialog, Settings or the sidebar; cancel an edit")),
    (("↑ / ↓",), _("Move between chats in the sidebar")),
    (("→",), _("Open a chat's menu in the sidebar")),
)

HISTORY_GROUPS = {
    "open": _("Open chat"),
    "pinned": _("Pinned"),
    "today": _("Today"),
    "yesterday": _("Yesterday"),
    "week": _("Previous 7 days"),
    "older": _("Older"),
}


def _history_group(updated_at: datetime, today) -> str:
    day = timezone.localdate(updated_at)
    if day >= today:
        return "today"
    if day == today - timedelta(days=1):
        return "yesterday"
    if day >= today - timedelta(days=7):
        return "week"
    return "older"


def _cursor(conversation: Conversation) -> str:
    return f"{conversation.updated_at.isoformat()}|{conversation.pk}"


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    raw_when, _sep, raw_id = cursor.partition("|")
    try:
        when = parse_datetime(raw_when)
        last_id = uuid.UUID(raw_id)
        if when is not None:
            when = when.astimezone(UTC)  # a far-off offset can overflow the year: refuse it here, not in SQL
    except (ValueError, OverflowError):
        raise Http404("bad cursor") from None
    if when is None:
        raise Http404("bad cursor")
    return when, last_id


def _older_than(when: datetime, pk) -> Q:
    return Q(updated_at__lt=when) | Q(updated_at=when, pk__lt=pk)


def _history_page(
    request, *, archived: bool, search: str = "", cursor: str = "", through: Conversation | None = None,
    project: Project | None = None,
) -> dict:
    """One page of the user's history, grouped by age: a single query whatever the history size, never more than
    HISTORY_PAGE_SIZE rows.

    Keyset paging on (updated_at, id) keeps page N as cheap as page 1. `through`: the chat open on the page; when it
    is not on the first page it is shown on its own above it (no query: the page has it already), and is reached in
    its place by "Load more". Temporary chats are never listed. A project's chats are listed in it, not in the plain
    list (no search, no project), which starts with the pinned chats, in a group of their own (one more query, on
    the first page only). A search's rows carry a snippet around the hit (conversations.search: a fixed number of
    queries for the page).
    """
    conversations = conversation_list(user=request.user, archived=archived, search=search).order_by(
        "-updated_at", "-pk"
    ).only("id", "title", "archived", "updated_at", "pinned_at", "project_id")
    pinned = []
    if project is not None:
        conversations = conversations.filter(project=project)
    elif not search and not archived:
        conversations = conversations.filter(project__isnull=True)
        if not cursor:
            pinned = list(conversations.filter(pinned_at__isnull=False).order_by("-pinned_at", "-pk"))
        conversations = conversations.filter(pinned_at__isnull=True)
    if cursor:
        conversations = conversations.filter(_older_than(*_parse_cursor(cursor)))
    rows = list(conversations[: HISTORY_PAGE_SIZE + 1])
    has_more = len(rows) > HISTORY_PAGE_SIZE
    rows = rows[:HISTORY_PAGE_SIZE]
    documents = []
    if search:
        attach_snippets(rows, search)
        if not cursor and project is None:  # the first page of a search lists the documents that hold it too
            documents = documents_matching(request.user, search)
    today = timezone.localdate()
    groups = [{"key": "pinned", "label": HISTORY_GROUPS["pinned"], "conversations": pinned}] if pinned else []
    if (
        through is not None and not through.pinned_at and not through.delete_after and through.archived == archived
        and project is None and not through.project_id and not search and not cursor and has_more
        and through not in rows
    ):
        groups.insert(0, {"key": "open", "label": HISTORY_GROUPS["open"], "conversations": [through]})
    groups += [
        {"key": key, "label": HISTORY_GROUPS[key], "conversations": list(items)}
        for key, items in groupby(rows, key=lambda c: _history_group(c.updated_at, today))
    ]
    return {
        "history_groups": groups,
        "history_next": _cursor(rows[-1]) if has_more else "",
        "history_archived": archived,
        "history_search": search,
        "history_project": project,
        # Knowledge documents with the text (conversations.search.DocumentHit: its snippet, and a link that opens
        # the document at the passage).
        "history_documents": documents,
    }


def _chat_context(request, conversation: Conversation | None, project: Project | None = None) -> dict:
    """`project`: the project a new chat starts in. A chat in a project shows it open in the sidebar, with its chats."""
    if conversation is not None:
        project = selectors.project_for_conversation(conversation)
    models = selectors.models_offered(request.user)
    policy = policy_for(request.user)
    # A chat keeps showing its model when the site stopped offering it, not when the user's groups do not allow it.
    if conversation and conversation.model and conversation.model not in models and policy.allows_model(
        conversation.model
    ):
        models = [*models, conversation.model]
    return {
        "conversation": conversation,
        "model_choices": models,
        "default_model": selectors.default_model(request.user),
        # A new chat starts with the model last used (personal app); a chat shows its own.
        "last_model": "" if conversation else _new_chat_model(request, models, project),
        "default_system_prompt": settings.CHAT_DEFAULT_SYSTEM_PROMPT,
        "max_message_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        "max_files_per_message": settings.CHAT_ATTACHMENTS_PER_MESSAGE,
        "max_file_bytes": settings.CHAT_ATTACHMENT_MAX_BYTES,
        "suggestions": SUGGESTIONS,
        "projects": Project.objects.for_user(request.user),
        "shortcuts": SHORTCUTS,
        "temporary_hours": settings.CHAT_TEMPORARY_HOURS,
        # A user whose groups do not allow web search (or MCP tools, or no server tools at all) does not see its
        # switch (the API refuses it too).
        "web_search_available": bool(settings.CHAT_SEARCH_URL) and policy.allows(Feature.WEB_SEARCH),
        **(_mcp_servers_context(conversation) if policy.allows(Feature.MCP_TOOLS) else {}),
        **_history_page(request, archived=False, through=conversation, project=project),
    }


def _new_chat_model(request, offered: list[str], project: Project | None) -> str:
    """A new chat starts with its project's default model (when the user may still use it), else the one last used."""
    if project is not None and project.model in offered:
        return project.model
    return personal_selectors.last_used_model(user=request.user, offered=offered)


# Why an MCP server is unavailable, in the Settings panel's words (mcp.Reason).
MCP_REASONS = {
    mcp.Reason.CONNECTION_REFUSED: _("connection refused"),
    mcp.Reason.UNREACHABLE: _("not reachable"),
    mcp.Reason.COMMAND_NOT_FOUND: _("its command cannot be run"),
    mcp.Reason.TIMEOUT: _("it did not start in time"),
    mcp.Reason.ADDRESS_REFUSED: _("its address is not allowed"),
    mcp.Reason.STOPPED: _("it stopped"),
    mcp.Reason.ERROR: _("an error"),
}
# How soon the page asks again for a server being started (the test server takes about 4 s).
MCP_STARTING_POLL_SECONDS = 1


def _mcp_servers_context(conversation: Conversation | None) -> dict:
    """The site's MCP servers for the Settings panel, as this worker knows them now (mcp.statuses: nothing waited
    for; a server not started yet is started in the background and the page asks again, mcp_servers)."""
    if not settings.CHAT_MCP_SERVERS:
        return {}
    enabled = list(conversation.mcp_tools) if conversation else []
    return {"mcp_enabled": enabled, **_mcp_servers_list(set(enabled))}


def _mcp_servers_list(enabled: set[str]) -> dict:
    servers: list[dict] = []
    poll: list[float] = []  # how soon the page asks again, for each server not ready
    for status in mcp.statuses():
        if status.state == mcp.State.STARTING:
            poll.append(MCP_STARTING_POLL_SECONDS)
        elif status.state == mcp.State.UNAVAILABLE:
            # Asked again just after this worker's next try (or soon, while it tries).
            poll.append(MCP_STARTING_POLL_SECONDS if status.retry_in is None else status.retry_in + 0.5)
        servers.append({
            "name": status.name, "state": str(status.state),
            "reason": MCP_REASONS.get(status.reason, "") if status.reason else "",
            "tools": [{"name": tool.qualified_name, "server": tool.server, "tool": tool.name,
                       "description": tool.description, "approval": tool.approval,
                       "enabled": tool.qualified_name in enabled} for tool in status.tools],
        })
    return {"mcp_servers": servers, "mcp_poll_seconds": round(min(poll), 1) if poll else None}


@login_required
@require_GET
def mcp_servers(request):
    """The Settings panel's MCP list, for the page to ask again while a server is starting or unavailable (the
    page ticks the chat's tools itself). Never waits for a server."""
    if not settings.CHAT_MCP_SERVERS or not policy_for(request.user).allows(Feature.MCP_TOOLS):
        raise Http404
    return render(request, "conversations/_mcp_servers.html", _mcp_servers_list(set()))


@login_required
@require_GET
def home(request):
    """A new, empty chat: the conversation is created when the first message is sent. `?assistant=<slug>` (an
    assistant's link): a new chat with that assistant, if the user may use it (else a 404). `?project=<id>`: a new
    chat in one of the user's projects (its default model chosen, its chats in the sidebar; another's is a 404)."""
    project = None
    if request.GET.get("project"):
        raw = request.GET["project"]
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**63:
            return HttpResponseBadRequest("`project` must be a project id (a whole number).")
        project = get_object_or_404(Project.objects.for_user(request.user), pk=int(raw))
    context = {**_chat_context(request, None, project), "turns": [], "assistant": None}
    if request.GET.get("assistant"):
        try:
            assistant = personal_selectors.assistant_usable(user=request.user, slug=request.GET["assistant"][:60])
        except Assistant.DoesNotExist:
            raise Http404 from None
        context.update(assistant=assistant, last_model=assistant.model)
    return render(request, "conversations/chat.html", context)


def _turn_page(conversation: Conversation, *, before: int | None = None, size: int = TURN_PAGE_SIZE) -> dict:
    """The newest `size` turns of the branch shown (before a position, for "show earlier"), oldest
    first, with their versions: two queries (the path, the feedback)."""
    rows = selectors.turn_path(conversation, before_position=before, limit=size + 1)
    has_earlier = len(rows) > size
    rows = rows[-size:]
    citations = answer_citations(turn for turn in rows if _is_final_answer(turn))
    for index, turn in enumerate(rows):
        if _is_final_answer(turn):
            turn.web_sources = answer_sources(rows[: index + 1])
            turn.knowledge_citations = citations.get(turn.pk, [])
    return {"turns": rows, "turns_before": rows[0].position if has_earlier else None}


def _is_final_answer(turn: Turn) -> bool:
    return turn.role == Turn.Role.ASSISTANT and turn.finish_reason != "tool_calls" and turn.parent_id is not None


@login_required
@require_GET
def conversation_detail(request, conversation_id):
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    return render(request, "conversations/chat.html", {
        **_chat_context(request, conversation), **_turn_page(conversation, size=CHAT_PAGE_TURNS),
        "assistant": conversation.assistant,
    })


@login_required
@require_GET
def turn_list(request, conversation_id):
    """Turns of the branch shown, as an HTML fragment: earlier ones of a long conversation (`before`, the
    "Show earlier messages" button), or the newest page (no `before`: after switching versions)."""
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    raw = request.GET.get("before")
    before = None
    if raw is not None:
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**31:
            return HttpResponseBadRequest("`before` must be a turn position (a whole number).")
        before = int(raw)
    return render(request, "conversations/_turns.html", _turn_page(conversation, before=before))


@login_required
@require_GET
def history(request):
    """More of the history list (load on scroll), a search, or the archived list, as an HTML fragment."""
    search = request.GET.get("q", "")[:200]
    if "\x00" in search:
        return HttpResponseBadRequest("The search cannot contain a null character.")
    project = None
    if request.GET.get("folder"):  # the page's name for a project
        raw = request.GET["folder"]
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**63:
            return HttpResponseBadRequest("`folder` must be a project id (a whole number).")
        project = get_object_or_404(Project.objects.for_user(request.user), pk=int(raw))
    context = _history_page(
        request,
        archived=request.GET.get("archived") == "1",
        search=search,
        cursor=request.GET.get("cursor", ""),
        project=project,
    )
    return render(request, "conversations/_history.html", context)


@login_required
@require_GET
def turn_detail(request, conversation_id, turn_id: int):
    """One turn rendered as on the page, with its versions (the script swaps it in when an answer finishes)."""
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    try:
        turn = selectors.turn_with_versions(conversation, turn_id)
    except Turn.DoesNotExist:
        raise Http404 from None
    if _is_final_answer(turn):  # its sources: the web searches of its tool steps, since the question
        steps = selectors.turn_path(conversation, leaf_id=turn.pk, limit=TURN_PAGE_SIZE)  # as the page reads them
        turn.web_sources = answer_sources(steps)
        turn.knowledge_citations = answer_citations([turn]).get(turn.pk, [])
    return render(request, "conversations/_turn.html", {"turn": turn})


def _json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise BadJsonBody
    return body


class BadJsonBody(Exception):
    pass


def _json_error(message: str, status: int = 400, **fields) -> JsonResponse:
    return JsonResponse({"error": {"code": "invalid", "message": message, **fields}}, status=status)


@login_required
@require_POST
def conversation_start(request):
    """Start a chat from the page (its first message follows through the API): stored with source "web", so
    reviewers see where it came from. Takes the chat settings the page had before the first message, and the
    project it starts in (`project`: an id, or none)."""
    try:
        body = _json_body(request)
    except BadJsonBody:
        return _json_error("Send a JSON object.")
    serializer = ConversationWriteSerializer(
        data={k: v for k, v in body.items() if k in ("model", "system_prompt", "web_search", "personal", "mcp_tools")},
        context={"user": request.user},
    )
    temporary, project_id = body.get("temporary", False), body.get("project")
    base_ids = body.get("knowledge_bases", [])
    if not serializer.is_valid() or not isinstance(temporary, bool) or not (
        isinstance(base_ids, list) and all(type(pk) is int for pk in base_ids)
    ) or not (project_id is None or (isinstance(project_id, int) and not isinstance(project_id, bool))):
        return _json_error("Some fields are invalid.", fields=serializer.errors if serializer.errors else None)
    if temporary and not policy_for(request.user).allows(Feature.TEMPORARY_CHATS):
        return chat_error_response(errors.FeatureDisabled("Your account may not start temporary chats."))
    project = None
    if project_id is not None:
        project = get_object_or_404(Project.objects.for_user(request.user), pk=project_id)
    fields = serializer.validated_data
    if body.get("assistant"):  # a chat with an assistant (its link, `@name`): its model and tools, then the page's
        try:
            assistant = personal_selectors.assistant_usable(user=request.user, slug=str(body["assistant"])[:60])
        except Assistant.DoesNotExist:
            return _json_error("This assistant is not available to you.", status=404)
        fields = {**assistant.chat_fields(), **fields}
    try:
        with transaction.atomic():
            conversation = services.conversation_create(
                owner=request.user, source=Conversation.Source.WEB, project=project, **fields
            )
            if temporary:
                organizing.conversation_make_temporary(conversation=conversation)
            if base_ids:
                knowledge_services.conversation_knowledge_set(conversation=conversation, base_ids=base_ids)
    except KnowledgeRefused as exc:
        return _json_error(exc.message)
    except errors.FeatureDisabled as exc:
        return chat_error_response(exc)
    return JsonResponse(
        {"id": str(conversation.pk), "url": conversation.get_absolute_url(),
         "delete_after": conversation.delete_after.isoformat() if conversation.delete_after else None},
        status=201,
    )


@login_required
@require_POST
def turn_feedback(request, conversation_id, turn_id: int):
    """The page's feedback on an answer: a rating (1 or -1) with an optional comment, or `rating: 0` to clear it."""
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    turn = get_object_or_404(conversation.turns.filter(role=Turn.Role.ASSISTANT), pk=turn_id)
    try:
        body = _json_body(request)
    except BadJsonBody:
        return _json_error("Send a JSON object.")
    rating, comment = body.get("rating"), body.get("comment", "")
    if rating not in (1, -1, 0) or isinstance(rating, bool) or not isinstance(comment, str) or len(comment) > 2000:
        return _json_error("Send a rating of 1, -1 or 0 (clear) and a comment of at most 2,000 characters.")
    if rating == 0:
        organizing.feedback_clear(turn=turn)
        return JsonResponse({"rating": 0, "comment": ""})
    feedback = services.feedback_set(turn=turn, rating=rating, comment=comment.strip())
    return JsonResponse({"rating": feedback.rating, "comment": feedback.comment})


# --- Share links ------------------------------------------------------------------------------------------------


@login_required
@require_POST
def share_create(request, conversation_id):
    """Make a share link for one of the user's chats: `display_name` (optional), `expires_in_days` (1, 7, 30 or
    null for until revoked), `include_files` (false unless the owner ticks it: the files sent in the chat)."""
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    if not policy_for(request.user).allows(Feature.SHARE_LINKS):
        return chat_error_response(errors.FeatureDisabled("Your account may not make share links."))
    try:
        body = _json_body(request)
    except BadJsonBody:
        return _json_error("Send a JSON object.")
    display_name, days = body.get("display_name", ""), body.get("expires_in_days")
    include_files = body.get("include_files", False)
    if not isinstance(display_name, str) or len(display_name) > 100 or isinstance(days, bool) or (
        days not in sharing.EXPIRY_DAYS
    ) or not isinstance(include_files, bool):
        return _json_error(
            "Send a display name of at most 100 characters, expires_in_days of 1, 7, 30 or null, and include_files "
            "true or false."
        )
    try:
        link = sharing.share_link_create(
            conversation=conversation, display_name=display_name, expires_in_days=days, include_files=include_files
        )
    except sharing.TemporaryChatNotShareable:
        return error_response("temporary_chat", "A temporary chat cannot be shared.", 409)
    return JsonResponse(
        {"url": request.build_absolute_uri(link.get_absolute_url()), "messages": len(link.messages),
         "include_files": link.include_files, "files": link.files.count(),
         "expires_at": link.expires_at.isoformat() if link.expires_at else None},
        status=201,
    )


@login_required
@require_GET
def share_current(request, conversation_id):
    """The newest link of one of the user's chats that still opens ({"link": null} when there is none), for the share
    dialog to show before another link is made."""
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    link = ShareLink.objects.live().filter(conversation=conversation).order_by("-created_at", "-pk").first()
    if link is None:
        return JsonResponse({"link": None})
    return JsonResponse({"link": {
        "url": request.build_absolute_uri(link.get_absolute_url()),
        "created": formats.date_format(timezone.localtime(link.created_at), "SHORT_DATETIME_FORMAT"),
    }})


@login_required
@require_GET
def share_list(request):
    """The user's share links, newest first, with what each shows and whether it still opens."""
    links = ShareLink.objects.for_user(request.user).select_related("conversation").only(
        "id", "token", "title", "display_name", "include_files", "created_at", "expires_at", "revoked_at",
        "conversation__title", "conversation__id",
    ).annotate(file_count=Count("files")).order_by("-created_at", "-pk")  # a GROUP BY drops Meta.ordering
    return render(request, "conversations/shares.html", {"links": links})


@login_required
@require_POST
def share_revoke(request, link_id: int):
    link = get_object_or_404(ShareLink.objects.for_user(request.user), pk=link_id)
    sharing.share_link_revoke(link=link)
    messages.success(request, _("The link is revoked: it no longer opens."))
    return redirect("conversations:shares")


NO_SUCH_SHARE = "No such link, or it was revoked or has expired."


def _not_indexed(response):
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"  # the token stays out of other sites' logs
    return response


@require_GET
def share_page(request, token: str):
    """The public, read-only snapshot behind a share link: no login, never indexed."""
    link = ShareLink.objects.live().filter(token=token).first()
    if link is None:
        raise Http404(NO_SUCH_SHARE)
    context = {"link": link, "shared_messages": sharing.shared_messages(link)}
    return _not_indexed(render(request, "conversations/share.html", context))


@require_GET
def share_file(request, token: str, attachment_id):
    """A file of a share link's snapshot, public like the page: only while the link opens, only if the owner
    included files, only a file of that snapshot; served as inertly as to its owner."""
    attachment = sharing.shared_attachment(token=token, attachment_id=attachment_id)
    if attachment is None:
        raise Http404(NO_SUCH_SHARE)
    # Bytes gone: a 404 (the page says so too). Not cached: a revoked link stops showing the file at once.
    return _not_indexed(attachments.file_response(attachment, cache_control="no-store"))


# --- Pins and projects (the page's JavaScript still calls them folders) -----------------------------------------------


@login_required
@require_POST
def conversation_organize(request, conversation_id):
    """Pin or unpin a chat (`pinned`), and move it into a project or out (`folder`: a project id or null)."""
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    try:
        body = _json_body(request)
    except BadJsonBody:
        return _json_error("Send a JSON object.")
    pinned, folder_id = body.get("pinned"), body.get("folder", ...)
    if pinned is not None and not isinstance(pinned, bool):
        return _json_error("`pinned` is true or false.")
    if folder_id not in (..., None) and (isinstance(folder_id, bool) or not isinstance(folder_id, int)):
        return _json_error("`folder` is a project id or null.")
    project = None
    if isinstance(folder_id, int):
        project = get_object_or_404(Project.objects.for_user(request.user), pk=folder_id)
    if pinned is not None:
        organizing.conversation_pin(conversation=conversation, pinned=pinned)
    if folder_id is not ...:
        organizing.conversation_move(conversation=conversation, project=project)
    return JsonResponse({"pinned": conversation.pinned_at is not None, "folder": conversation.project_id})


@login_required
@require_POST
def folder_create(request):
    try:
        body = _json_body(request)
    except BadJsonBody:
        return _json_error("Send a JSON object.")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 80:
        return _json_error("A project needs a name of at most 80 characters.")
    try:
        project = organizing.project_create(owner=request.user, name=name)
    except organizing.ProjectNameTaken:
        return _json_error("You already have a project with that name.", 409)
    return JsonResponse({"id": project.pk, "name": project.name}, status=201)


@login_required
@require_POST
def folder_delete(request, folder_id: int):
    project = get_object_or_404(Project.objects.for_user(request.user), pk=folder_id)
    body: dict = {}
    if request.content_type == "application/json":  # a bare POST keeps the chats
        try:
            body = _json_body(request)
        except BadJsonBody:
            return _json_error("Send a JSON object.")
    delete_chats = body.get("delete_chats", False)
    if not isinstance(delete_chats, bool):
        return _json_error("`delete_chats` is true or false.")
    organizing.project_delete(project=project, delete_chats=delete_chats)
    return JsonResponse({}, status=200)


# --- The user's own data ------------------------------------------------------------------------------------------


@login_required
@require_GET
def account_export(request):
    """Everything the user has here, as a zip: chats as JSON and Markdown, and their attachments, streamed as it is
    built (batch by batch, in bounded memory)."""
    filename = f"chatsite-{request.user.username}-{timezone.localdate():%Y-%m-%d}.zip"
    response = StreamingHttpResponse(
        exports.streamed(account_data.account_export(user=request.user)), content_type="application/zip"
    )
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@login_required
@require_POST
def account_delete(request):
    """Delete the account and all its data, once the password is given again (an account made by single sign-on
    has none: its username, typed again, confirms instead)."""
    user = request.user
    if user.has_usable_password() and not user.check_password(request.POST.get("password", "")):
        messages.error(request, _("That password is not right: the account was not deleted."))
        return redirect("profile")
    if not user.has_usable_password() and request.POST.get("username", "") != user.get_username():
        messages.error(request, _("That is not your username: the account was not deleted."))
        return redirect("profile")
    tasks.account_close(request=request)
    messages.success(request, _(
        "Your account is closed and no longer signs in. All its data is being deleted in the background: "
        "this takes a few minutes for a long history."
    ))
    return redirect("signup")  # not the login page's "Welcome back": there is no account to come back to
