"""Digests of message histories: how a /v1 client that resends a conversation's history continues it.

Clients of OpenAI's Chat Completions API send the whole history on every call. Each stored turn carries
the digest of the history up to and including it, chained from its parent:
`digest(turn) = sha256(digest(parent), role, content)`, and a first turn chains from the digest of the
conversation's system prompt. A request whose messages before its last one have the digest of a turn in a
conversation the same API key created continues that conversation after that turn. An edited earlier
message changes every digest after it, so it can never continue the wrong branch: an edited last question
becomes a new branch beside the old one, any other edit starts a new conversation.
"""

import hashlib


def root_digest(system_prompt: str) -> str:
    return hashlib.sha256(b"system-prompt\0" + system_prompt.encode("utf-8", "surrogatepass")).hexdigest()


def next_digest(previous: str, role: str, content: str) -> str:
    data = f"{previous}\0{role}\0{content}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def history_digest(system_prompt: str, messages: list[dict]) -> str:
    """The digest a stored turn would have after `messages` ({"role", "content"}, roles as stored)."""
    digest = root_digest(system_prompt)
    for message in messages:
        digest = next_digest(digest, message["role"], message["content"])
    return digest
