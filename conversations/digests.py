"""Digests of message histories: how a /v1 client that resends a conversation's history continues it.

Clients of OpenAI's Chat Completions API send the whole history on every call. Each stored turn carries
the digest of the history up to and including it, chained from its parent:
`digest(turn) = sha256(digest(parent), the turn as a message)`, and a first turn chains from the digest of
the conversation's system prompt. A request whose messages before its new ones have the digest of a turn in
a conversation the same API key created continues that conversation after that turn. An edited earlier
message changes every digest after it, so it can never continue the wrong branch: an edited last question
becomes a new branch beside the old one, any other edit starts a new conversation.

Texts are digested as clients resend them, not byte for byte: line endings as LF and without surrounding
whitespace (Open WebUI trims an answer's trailing whitespace before resending it), tool arguments as canonical
JSON. Anything else (a word, the whitespace inside a text) is a different history. The normal form of a text
already in it is the text itself, so a digest of such a history is what it was before texts were normalized
(migration 0014 recomputed the stored digests of the others).
"""

import hashlib
import json
from typing import Any

from conversations.messages import StoredMessage, ToolCall


def normal_text(text: str) -> str:
    """A message's text as clients rewrite it without changing it: LF line endings, no surrounding whitespace."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def root_digest(system_prompt: str) -> str:
    return hashlib.sha256(
        b"system-prompt\0" + normal_text(system_prompt).encode("utf-8", "surrogatepass")
    ).hexdigest()


def canonical_tool_calls(tool_calls: list[ToolCall] | None) -> str:
    """Tool calls as a client resends them: id, type, function name and arguments, in a fixed form.

    Clients parse the arguments and write them out again their own way (LangChain with spaces, the Vercel AI
    SDK without): arguments that are JSON are compared as JSON (sorted keys, no spaces), others as sent.
    """
    if not tool_calls:
        return ""
    calls = []
    for call in tool_calls:
        function = call.get("function") or {}
        arguments = _canonical_json(function.get("arguments"))
        calls.append({"id": call.get("id"), "type": call.get("type") or "function",
                      "function": {"name": function.get("name"), "arguments": arguments}})
    return json.dumps(calls, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def next_digest(previous: str, message: StoredMessage) -> str:
    """`message`: {"role" (as stored), "content", "tool_calls"?, "tool_call_id"?, "attachments"? (SHA-256s)}."""
    text = "\0".join([
        previous, message["role"], normal_text(message.get("content") or ""),
        canonical_tool_calls(message.get("tool_calls")), message.get("tool_call_id") or "",
        ",".join(message.get("attachments") or ()),  # the files' SHA-256
    ])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def history_digest(system_prompt: str, messages: list[StoredMessage]) -> str:
    """The digest a stored turn would have after `messages` (roles as stored)."""
    digest = root_digest(system_prompt)
    for message in messages:
        digest = next_digest(digest, message)
    return digest
