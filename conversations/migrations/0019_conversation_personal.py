"""A chat's `personal` switch: the owner's custom instructions and memories in its system prompt (personal app).

On SQLite, adding a NOT NULL column rebuilds the conversation table, which drops the triggers of migration 0004:
they are dropped first and made again after, both ways, as migration 0007 does.
"""

import importlib

from django.db import migrations, models

tool_calls = importlib.import_module("conversations.migrations.0007_tool_calls")


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0018_normalized_history_digests'),
    ]

    operations = [
        *tool_calls.keeping_sqlite_triggers(
            migrations.AddField(
                model_name='conversation',
                name='personal',
                field=models.BooleanField(default=True, help_text="The owner's custom instructions and memories are added to the system prompt."),
            ),
        ),
    ]
