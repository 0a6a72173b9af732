"""Writes: the short transactions of a turn, and chat edits. They never call the answering package
(conversations.answering), which owns an answer's life and calls them.

One module per concern:
- `turns`: begin a turn (append, regenerate, edit), store a tool step, store the answer, fail interrupted ones;
- `quota`: the daily token quota (tokens held by running answers, the usage ledger);
- `conversations`: creating, editing and deleting conversations, feedback, the branch shown.
"""

from conversations.services.conversations import (
    EDITABLE_CONVERSATION_FIELDS,
    MCP_TOOLS_REFUSED,
    WEB_SEARCH_REFUSED,
    conversation_create,
    conversation_delete,
    conversation_switch,
    conversation_update,
    feedback_set,
    title_from_text,
)
from conversations.services.quota import quota_admit, usage_add
from conversations.services.turns import (
    INTERRUPTED,
    Liveness,
    TurnStart,
    answer_fail_interrupted,
    answer_step_store,
    answer_store,
    release_connection,
    title_store,
    turn_begin,
    turns_fail_stale,
)

__all__ = [
    "EDITABLE_CONVERSATION_FIELDS", "INTERRUPTED", "Liveness", "MCP_TOOLS_REFUSED", "TurnStart", "WEB_SEARCH_REFUSED",
    "answer_fail_interrupted", "answer_step_store", "answer_store", "conversation_create", "conversation_delete",
    "conversation_switch", "conversation_update", "feedback_set", "quota_admit", "release_connection",
    "title_from_text", "title_store", "turn_begin", "turns_fail_stale", "usage_add",
]
