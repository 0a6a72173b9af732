"""The review list's columns stored on the conversation (total tokens, feedback up and down), so that a page of the
admin's list reads no turns and sorting by tokens reads no turns either (conversations.models.review_totals keeps
them). Existing chats are filled in one statement. On SQLite the NOT NULL columns rebuild the conversation table,
which drops its triggers: wrapped in 0007's keeping_sqlite_triggers."""

import importlib

from django.db import migrations, models

tool_calls = importlib.import_module("conversations.migrations.0007_tool_calls")

FILL = """
UPDATE conversations_conversation SET
    total_tokens = COALESCE((SELECT SUM(t.prompt_tokens + t.completion_tokens) FROM conversations_turn t
                             WHERE t.conversation_id = conversations_conversation.id), 0),
    feedback_up = (SELECT COUNT(*) FROM conversations_feedback f JOIN conversations_turn t ON t.id = f.turn_id
                   WHERE t.conversation_id = conversations_conversation.id AND f.rating = 1),
    feedback_down = (SELECT COUNT(*) FROM conversations_feedback f JOIN conversations_turn t ON t.id = f.turn_id
                     WHERE t.conversation_id = conversations_conversation.id AND f.rating = -1)
"""


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0024_folders_become_projects"),
    ]

    operations = [
        *tool_calls.keeping_sqlite_triggers(
            migrations.AddField(
                model_name="conversation",
                name="total_tokens",
                field=models.PositiveBigIntegerField(
                    default=0, help_text="Prompt and completion tokens of every turn, every version included."
                ),
            ),
            migrations.AddField(
                model_name="conversation",
                name="feedback_up",
                field=models.PositiveIntegerField(default=0, help_text="Answers rated good (+1)."),
            ),
            migrations.AddField(
                model_name="conversation",
                name="feedback_down",
                field=models.PositiveIntegerField(default=0, help_text="Answers rated bad (-1)."),
            ),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
    ]
