"""Conversation exports: one conversation as Markdown or JSON (REST API, web pages), many for the admin."""

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.exceptions import ObjectDoesNotExist
from django.utils.text import slugify

from conversations.models import Conversation, Turn
from conversations.selectors import conversation_tree, turn_path
from knowledge.models import Citation
from knowledge.retrieval import answer_citations, citations_by_turn, cited_numbers

FORMATS = {"md": "text/markdown; charset=utf-8", "json": "application/json"}
ROLE_HEADINGS: dict[str, str] = {
    Turn.Role.USER: "You", Turn.Role.ASSISTANT: "Assistant", Turn.Role.SYSTEM: "System", Turn.Role.TOOL: "Tool result",
}


def export_filename(conversation: Conversation, export_format: str) -> str:
    name = slugify(conversation.title)[:60] or f"conversation-{str(conversation.pk)[:8]}"
    return f"{name}.{export_format}"


def conversation_markdown(
    conversation: Conversation, turns: list[Turn], citations: dict[int, list[Citation]] | None = None
) -> str:
    """`citations`: citations_by_turn of these turns (or of a batch holding them); read here when not given."""
    lines = [f"# {conversation.title or 'Conversation'}", ""]
    lines.append(f"- Started: {conversation.created_at:%Y-%m-%d %H:%M %Z}")
    if conversation.model:
        lines.append(f"- Model: {conversation.model}")
    if conversation.system_prompt:
        lines.append(f"- System prompt: {' '.join(conversation.system_prompt.split())}")
    lines.append("")
    cited = answer_citations(turns, citations)
    for turn in turns:
        heading = ROLE_HEADINGS.get(turn.role, turn.role)
        if turn.status != Turn.Status.COMPLETE:
            heading += f" ({turn.get_status_display().lower()})"
        if turn.role == Turn.Role.TOOL:
            heading += f" ({turn.tool_call_id}" + (f", {turn.latency_ms} ms)" if turn.latency_ms is not None else ")")
        calls = turn.tool_calls or []
        body = turn.content or ("" if calls else "_(no text)_")
        if turn.role == Turn.Role.TOOL:
            body = "```\n" + turn.content.replace("```", "` ` `") + "\n```"
        lines += [f"## {heading}", "", body, ""] if body else [f"## {heading}", ""]
        for call in calls:
            function = call.get("function", {})
            lines += [f"Called the tool `{function.get('name', '')}` ({call.get('id', '')}) with:", "",
                      "```json", str(function.get("arguments", "")).replace("```", "` ` `"), "```", ""]
        shown = cited.get(turn.pk, [])
        if shown and shown[0].cited:  # the passages the text cites, as [n]: ...
            lines += [f"[{c.number}]: {c.document_name}, page {c.page}" for c in shown]
        elif shown:  # it cites none: the passages it was given, as the page folds them
            lines.append("Searched: " + "; ".join(f"{c.document_name}, page {c.page}" for c in shown))
        if shown:
            lines.append("")
        if turn.error:
            lines += [f"> Error: {turn.error}", ""]
    return "\n".join(lines)


def _feedback(turn: Turn) -> dict | None:
    try:
        feedback = turn.feedback
    except ObjectDoesNotExist:
        return None
    return {"rating": feedback.rating, "comment": feedback.comment}


def conversation_document(
    conversation: Conversation, turns: list[Turn], citations: dict[int, list[Citation]] | None = None
) -> dict:
    """Everything the owner can see, in one document: every version of every turn (the whole tree: follow
    `parent_id`; `current_turn_id` ends the branch shown), feedback included when `turns` select it; an answer's
    `citations` are the knowledge passages it was given (`cited`: its text cites them; `citations`: those of a batch
    holding these turns, read here when not given)."""
    if citations is None:
        citations = citations_by_turn([turn.pk for turn in turns])
    return {
        "id": str(conversation.pk),
        "title": conversation.title,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "archived": conversation.archived,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "current_turn_id": conversation.current_turn_id,
        "turns": [
            {
                "id": turn.pk,
                "parent_id": turn.parent_id,
                "position": turn.position,
                "role": turn.role,
                "content": turn.content,
                "status": turn.status,
                "model": turn.model,
                "prompt_tokens": turn.prompt_tokens,
                "completion_tokens": turn.completion_tokens,
                "finish_reason": turn.finish_reason,
                "tool_calls": turn.tool_calls or None,
                "tool_call_id": turn.tool_call_id or None,
                "latency_ms": turn.latency_ms,
                "error": turn.error,
                "created_at": turn.created_at.isoformat(),
                "feedback": _feedback(turn) if turn.role == Turn.Role.ASSISTANT else None,
                "citations": [
                    {"number": c.number, "document": c.document_name, "page": c.page, "passage_id": c.passage_id,
                     "text": c.text, "cited": c.number in cited_numbers(turn.content)}
                    for c in citations.get(turn.pk, [])
                ],
            }
            for turn in turns
        ],
    }


def export_conversation(conversation: Conversation, export_format: str) -> tuple[str, str]:
    """(body, content type) for `export_format` in FORMATS: JSON holds the whole tree, Markdown the branch shown."""
    if export_format == "json":
        document = conversation_document(conversation, conversation_tree(conversation))
        body = json.dumps(document, ensure_ascii=False, indent=2)
    else:
        body = conversation_markdown(conversation, turn_path(conversation))
    return body, FORMATS[export_format]


# --- Bulk exports for the admin (streamed: any number of conversations in bounded memory) -----------

EXPORT_BATCH = 100


def conversation_trees(ids: list) -> Iterator[tuple[Conversation, list[Turn]]]:
    """Each conversation of `ids` (in that order; missing ones skipped) with its whole tree of turns, feedback
    selected: two queries for the lot, so callers pass a batch."""
    conversations = Conversation.objects.filter(pk__in=ids).select_related("owner").in_bulk()
    turns_by_conversation: dict = {pk: [] for pk in ids}
    for turn in Turn.objects.filter(conversation_id__in=ids).select_related("feedback").order_by(
        "conversation_id", "id"
    ):
        turns_by_conversation[turn.conversation_id].append(turn)
    for pk in ids:
        if pk in conversations:
            yield conversations[pk], turns_by_conversation[pk]


def _conversations_with_turns(ids: list) -> Iterator[tuple[Conversation, list[Turn]]]:
    for start in range(0, len(ids), EXPORT_BATCH):
        yield from conversation_trees(ids[start : start + EXPORT_BATCH])


def streamed(chunks: Iterator) -> AsyncIterator:
    """Hand a sync export to uvicorn piece by piece: Django's ASGI handler would collect a sync iterator whole.

    Each next() (with the batch query it may run) is a short step on the request's DB thread.
    """
    step = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)

    async def stream():
        while (chunk := await step()) is not None:
            yield chunk

    return stream()


def export_json(ids: list) -> Iterator[str]:
    """A JSON array of conversation documents (with the owner's username), in the order of `ids`."""
    yield "["
    for index, (conversation, turns) in enumerate(_conversations_with_turns(ids)):
        document = {"owner": conversation.owner.get_username(), **conversation_document(conversation, turns)}
        yield ("," if index else "") + json.dumps(document, ensure_ascii=False)
    yield "]"


CSV_COLUMNS = [
    "conversation_id", "owner", "title", "turn_id", "parent_id", "position", "role", "status", "model", "prompt_tokens",
    "completion_tokens", "created_at", "content", "feedback_rating", "feedback_comment",
]


def _csv_cell(value):
    # Spreadsheets run cells starting with these as formulas: a chat message must stay text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_csv(ids: list) -> Iterator[str]:
    """One CSV row per turn, conversations in the order of `ids`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for conversation, turns in _conversations_with_turns(ids):
        for turn in turns:
            feedback = _feedback(turn) or {"rating": "", "comment": ""}  # the owner's rating of an answer
            writer.writerow([_csv_cell(value) for value in [
                conversation.pk, conversation.owner.get_username(), conversation.title, turn.pk, turn.parent_id,
                turn.position, turn.role,
                turn.status, turn.model, turn.prompt_tokens, turn.completion_tokens, turn.created_at.isoformat(),
                turn.content, feedback["rating"], feedback["comment"],
            ]])
        yield flush()
