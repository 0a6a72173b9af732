"""Recompute stored history digests over normalized texts (conversations.digests: LF line endings, no surrounding
whitespace), so a history stored before texts were normalized is matched as one stored after.

A text already in normal form digests as before, so only the chains holding another text change. The two
formulas are frozen here: the migration means what it meant when written, whatever digests.py becomes. A turn
whose stored digest the old formula does not reproduce (its conversation's system prompt was edited since) keeps
its digest, and its descendants chain from it.
"""

import hashlib
import json

from django.db import migrations


def _normal_text(text):
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _canonical_json(text):
    if not isinstance(text, str):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical_tool_calls(tool_calls):
    if not tool_calls:
        return ""
    calls = []
    for call in tool_calls:
        function = call.get("function") or {}
        calls.append({"id": call.get("id"), "type": call.get("type") or "function",
                      "function": {"name": function.get("name"), "arguments": _canonical_json(function.get("arguments"))}})
    return json.dumps(calls, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _root(system_prompt, normalize):
    text = _normal_text(system_prompt) if normalize else system_prompt
    return hashlib.sha256(b"system-prompt\0" + text.encode("utf-8", "surrogatepass")).hexdigest()


def _next(previous, turn, attachments, normalize):
    content = turn.content or ""
    text = "\0".join([
        previous, turn.role, _normal_text(content) if normalize else content, _canonical_tool_calls(turn.tool_calls),
        turn.tool_call_id or "", ",".join(attachments),
    ])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def normalize_digests(apps, schema_editor):
    Turn = apps.get_model("conversations", "Turn")
    Attachment = apps.get_model("conversations", "Attachment")
    attachments = {}
    for turn_id, sha256 in (Attachment.objects.filter(turn__digest__isnull=False).order_by("id")
                            .values_list("turn_id", "sha256")):
        attachments.setdefault(turn_id, []).append(sha256)
    old, new = {}, {}  # turn id -> its digest before and after
    turns = Turn.objects.filter(digest__isnull=False).select_related("conversation").order_by("id")
    for turn in turns.iterator(chunk_size=2000):
        files = attachments.get(turn.pk, [])
        if turn.parent_id is None:
            prompt = turn.conversation.system_prompt
            old_base, new_base = _root(prompt, False), _root(prompt, True)
        elif turn.parent_id in old:
            old_base, new_base = old[turn.parent_id], new[turn.parent_id]
        else:  # a parent without a digest has no chain to continue
            continue
        if _next(old_base, turn, files, False) == turn.digest:
            digest = _next(new_base, turn, files, True)
        else:
            digest = turn.digest
        old[turn.pk], new[turn.pk] = turn.digest, digest
        if digest != turn.digest:
            Turn.objects.filter(pk=turn.pk).update(digest=digest)


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0017_search_index"),
    ]

    operations = [
        migrations.RunPython(normalize_digests, migrations.RunPython.noop),
    ]
