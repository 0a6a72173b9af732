"""Writes: the one path that appends a turn, calls the model and stores the answer; and chat edits.

One module per concern:
- `turns`: the turn engine. Every surface (HTML page, REST API, SSE stream, /api/chat, /v1) calls
  `chat_turn_begin()` (or `chat_turn_start()` from async code) and hands the run to the answer engine
  (`conversations.answers`), which iterates `ChatRun.events()` to the end whoever is connected;
  `ChatRun.run()` does that from sync code and waits;
- `events`: what a running answer produces, in order;
- `liveness`: stop signals, the heartbeat that vouches for a running answer, failing a dead worker's answers;
- `quota`: the daily token quota (tokens held by running answers, the usage ledger);
- `conversations`: creating, editing and deleting conversations, feedback, the branch shown.
"""

from conversations.services.conversations import (
    EDITABLE_CONVERSATION_FIELDS,
    conversation_create,
    conversation_delete,
    conversation_switch,
    conversation_update,
    feedback_set,
    title_from_text,
)
from conversations.services.events import (
    AnswerDelta,
    AnswerDone,
    AnswerFailed,
    AnswerToolCall,
    ChatEvent,
    TitleSet,
    TurnStored,
    merge_tool_call_deltas,
)
from conversations.services.liveness import (
    INTERRUPTED,
    answer_fail_if_abandoned,
    answer_is_vouched,
    answer_stop,
    answer_vouch,
    turn_stop,
    turns_fail_stale,
)
from conversations.services.turns import ChatRun, chat_turn, chat_turn_begin, chat_turn_start, release_connection

__all__ = [
    "EDITABLE_CONVERSATION_FIELDS", "INTERRUPTED", "AnswerDelta", "AnswerDone", "AnswerFailed", "AnswerToolCall",
    "ChatEvent", "ChatRun", "TitleSet", "TurnStored", "answer_fail_if_abandoned", "answer_is_vouched", "answer_stop",
    "answer_vouch", "chat_turn", "chat_turn_begin", "chat_turn_start", "conversation_create", "conversation_delete",
    "conversation_switch", "conversation_update", "feedback_set", "merge_tool_call_deltas", "release_connection",
    "title_from_text", "turn_stop", "turns_fail_stale",
]
