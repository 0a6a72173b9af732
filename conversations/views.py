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

from chatsite.api.errors import error_response
from conversations import account_data, attachments, exports, organizing, selectors, services, sharing
from conversations.answering.search import answer_sources
from conversations.api.serializers import ConversationWriteSerializer
from conversations.models import Conversation, Folder, ShareLink, Turn
from conversations.selectors import conversation_list
from personal import selectors as personal_selectors

HISTORY_PAGE_SIZE = 50
# The chat page's sidebar reaches down to the open chat only this far: past it, it lists its first page (the open
# chat is then reached by scrolling), so no chat page renders more than this many rows.
HISTORY_REACH = 3 * HISTORY_PAGE_SIZE
TURN_PAGE_SIZE = 100

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
    folder: Folder | None = None,
) -> dict:
    """One page of the user's history, grouped by age: a single query whatever the history size.

    Keyset paging on (updated_at, id) keeps page N as cheap as page 1. `through`: the chat open on the page; when
    it is further down than the first page but within HISTORY_REACH rows, the page reaches down to it (two more
    queries, only then), so it is listed and marked; further down, one more query finds it out of reach.
    Temporary chats are never listed. The plain list (no search, no folder) starts with the pinned chats, in a
    group of their own (one more query, on the first page only).
    """
    conversations = conversation_list(user=request.user, archived=archived, search=search).order_by(
        "-updated_at", "-pk"
    ).only("id", "title", "archived", "updated_at", "pinned_at", "folder_id")
    pinned = []
    if folder is not None:
        conversations = conversations.filter(folder=folder)
    elif not search and not archived:
        if not cursor:
            pinned = list(conversations.filter(pinned_at__isnull=False).order_by("-pinned_at", "-pk"))
        conversations = conversations.filter(pinned_at__isnull=True)
    if through is not None and (through.pinned_at or through.delete_after):
        through = None  # listed with the pinned ones, or never
    if cursor:
        conversations = conversations.filter(_older_than(*_parse_cursor(cursor)))
    rows = list(conversations[: HISTORY_PAGE_SIZE + 1])
    has_more = len(rows) > HISTORY_PAGE_SIZE
    rows = rows[:HISTORY_PAGE_SIZE]
    if has_more and through is not None and through.archived == archived and through not in rows:
        # Down to the open chat, if it is within HISTORY_REACH rows; further down, the first page only.
        room = HISTORY_REACH - len(rows)
        rest = conversations.filter(_older_than(rows[-1].updated_at, rows[-1].pk))
        down_to = list(rest.exclude(_older_than(through.updated_at, through.pk))[: room + 1])
        if len(down_to) <= room and down_to and down_to[-1].pk == through.pk:
            rows += down_to
            has_more = rest.filter(_older_than(through.updated_at, through.pk)).exists()
    today = timezone.localdate()
    groups = [{"key": "pinned", "label": HISTORY_GROUPS["pinned"], "conversations": pinned}] if pinned else []
    groups += [
        {"key": key, "label": HISTORY_GROUPS[key], "conversations": list(items)}
        for key, items in groupby(rows, key=lambda c: _history_group(c.updated_at, today))
    ]
    return {
        "history_groups": groups,
        "history_next": _cursor(rows[-1]) if has_more else "",
        "history_archived": archived,
        "history_search": search,
        "history_folder": folder,
    }


def _chat_context(request, conversation: Conversation | None) -> dict:
    models = selectors.models_offered()
    if conversation and conversation.model and conversation.model not in models:
        models = [*models, conversation.model]
    return {
        "conversation": conversation,
        "model_choices": models,
        "default_model": selectors.default_model(),
        # A new chat starts with the model last used (personal app); a chat shows its own.
        "last_model": "" if conversation else personal_selectors.last_used_model(user=request.user, offered=models),
        "default_system_prompt": settings.CHAT_DEFAULT_SYSTEM_PROMPT,
        "max_message_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        "max_files_per_message": settings.CHAT_ATTACHMENTS_PER_MESSAGE,
        "max_file_bytes": settings.CHAT_ATTACHMENT_MAX_BYTES,
        "suggestions": SUGGESTIONS,
        "folders": Folder.objects.for_user(request.user),
        "shortcuts": SHORTCUTS,
        "temporary_hours": settings.CHAT_TEMPORARY_HOURS,
        "web_search_available": bool(settings.CHAT_SEARCH_URL),
        **_history_page(request, archived=False, through=conversation),
    }


@login_required
@require_GET
def home(request):
    """A new, empty chat: the conversation is created when the first message is sent."""
    return render(request, "conversations/chat.html", {**_chat_context(request, None), "turns": []})


def _turn_page(conversation: Conversation, *, before: int | None = None) -> dict:
    """The newest TURN_PAGE_SIZE turns of the branch shown (before a position, for "show earlier"), oldest
    first, with their versions: two queries (the path, the feedback)."""
    rows = selectors.turn_path(conversation, before_position=before, limit=TURN_PAGE_SIZE + 1)
    has_earlier = len(rows) > TURN_PAGE_SIZE
    rows = rows[-TURN_PAGE_SIZE:]
    for index, turn in enumerate(rows):
        if _is_final_answer(turn):
            turn.web_sources = answer_sources(rows[: index + 1])
    return {"turns": rows, "turns_before": rows[0].position if has_earlier else None}


def _is_final_answer(turn: Turn) -> bool:
    return turn.role == Turn.Role.ASSISTANT and turn.finish_reason != "tool_calls" and turn.parent_id is not None


@login_required
@require_GET
def conversation_detail(request, conversation_id):
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    return render(
        request, "conversations/chat.html", {**_chat_context(request, conversation), **_turn_page(conversation)}
    )


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
    folder = None
    if request.GET.get("folder"):
        raw = request.GET["folder"]
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**63:
            return HttpResponseBadRequest("`folder` must be a folder id (a whole number).")
        folder = get_object_or_404(Folder.objects.for_user(request.user), pk=int(raw))
    context = _history_page(
        request,
        archived=request.GET.get("archived") == "1",
        search=search,
        cursor=request.GET.get("cursor", ""),
        folder=folder,
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
    reviewers see where it came from. Takes the chat settings the page had before the first message."""
    try:
        body = _json_body(request)
    except BadJsonBody:
        return _json_error("Send a JSON object.")
    serializer = ConversationWriteSerializer(
        data={k: v for k, v in body.items() if k in ("model", "system_prompt", "web_search", "personal")}
    )
    temporary = body.get("temporary", False)
    if not serializer.is_valid() or not isinstance(temporary, bool):
        return _json_error("Some fields are invalid.", fields=serializer.errors if serializer.errors else None)
    with transaction.atomic():
        conversation = services.conversation_create(
            owner=request.user, source=Conversation.Source.WEB, **serializer.validated_data
        )
        if temporary:
            organizing.conversation_make_temporary(conversation=conversation)
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


# --- Pins and folders ---------------------------------------------------------------------------------------------


@login_required
@require_POST
def conversation_organize(request, conversation_id):
    """Pin or unpin a chat (`pinned`), and file it in a folder or take it out (`folder`: an id or null)."""
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    try:
        body = _json_body(request)
    except BadJsonBody:
        return _json_error("Send a JSON object.")
    pinned, folder_id = body.get("pinned"), body.get("folder", ...)
    if pinned is not None and not isinstance(pinned, bool):
        return _json_error("`pinned` is true or false.")
    if folder_id not in (..., None) and (isinstance(folder_id, bool) or not isinstance(folder_id, int)):
        return _json_error("`folder` is a folder id or null.")
    folder = None
    if isinstance(folder_id, int):
        folder = get_object_or_404(Folder.objects.for_user(request.user), pk=folder_id)
    if pinned is not None:
        organizing.conversation_pin(conversation=conversation, pinned=pinned)
    if folder_id is not ...:
        organizing.conversation_file(conversation=conversation, folder=folder)
    return JsonResponse({"pinned": conversation.pinned_at is not None, "folder": conversation.folder_id})


@login_required
@require_POST
def folder_create(request):
    try:
        body = _json_body(request)
    except BadJsonBody:
        return _json_error("Send a JSON object.")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 80:
        return _json_error("A folder needs a name of at most 80 characters.")
    try:
        folder = organizing.folder_create(owner=request.user, name=name)
    except organizing.FolderNameTaken:
        return _json_error("You already have a folder with that name.", 409)
    return JsonResponse({"id": folder.pk, "name": folder.name}, status=201)


@login_required
@require_POST
def folder_delete(request, folder_id: int):
    organizing.folder_delete(folder=get_object_or_404(Folder.objects.for_user(request.user), pk=folder_id))
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
    """Delete the account and all its data, once the password is given again."""
    if not request.user.check_password(request.POST.get("password", "")):
        messages.error(request, _("That password is not right: the account was not deleted."))
        return redirect("profile")
    account_data.account_delete(request=request)
    messages.success(request, _("Your account and all its data are deleted."))
    return redirect("signup")  # not the login page's "Welcome back": there is no account to come back to
