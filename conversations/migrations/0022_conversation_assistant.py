"""A chat's assistant (personal app): its instructions go into the chat's system prompt.

On SQLite, adding a column with a foreign key rebuilds the conversation table, which drops the triggers of
migration 0004: they are dropped first and made again after, both ways (0007's keeping_sqlite_triggers).
"""

import importlib

import django.db.models.deletion
from django.db import migrations, models

tool_calls = importlib.import_module("conversations.migrations.0007_tool_calls")


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0021_conversation_metadata'),
        ('personal', '0002_assistants'),
    ]

    operations = [
        *tool_calls.keeping_sqlite_triggers(
            migrations.AddField(
                model_name='conversation',
                name='assistant',
                field=models.ForeignKey(blank=True, help_text='The assistant the chat was started with: its instructions are added to the system prompt.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='conversations', to='personal.assistant'),
            ),
        ),
    ]
