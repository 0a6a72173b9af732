"""Tool calls: an answer may carry the model's tool calls, and a "tool" turn holds a tool's result.

On SQLite, changing turn_role_valid rebuilds the turn table: the triggers of migration 0004 are dropped first
and made again after, both ways (PostgreSQL's guards are foreign keys and survive).
"""

import importlib

from django.db import migrations, models

versions = importlib.import_module("conversations.migrations.0004_turn_versions")
CONVERSATION_TRIGGERS = [
    "conversation_current_turn_same_conversation_insert", "conversation_current_turn_same_conversation_update",
]


def drop_sqlite_triggers(apps, schema_editor):
    """SQLite cannot rebuild the turn table under a trigger of another table that reads it: drop those first."""
    if schema_editor.connection.vendor == "sqlite":
        for name in CONVERSATION_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


def restore_sqlite_triggers(apps, schema_editor):
    """The rebuilt turn table lost its own triggers: make all of them again."""
    if schema_editor.connection.vendor == "sqlite":
        for statement in versions.SQLITE_GUARDS:
            schema_editor.execute(statement.replace("CREATE TRIGGER ", "CREATE TRIGGER IF NOT EXISTS ", 1))


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0006_history_digests'),
    ]

    operations = [
        migrations.RunPython(drop_sqlite_triggers, restore_sqlite_triggers),
        migrations.RemoveConstraint(
            model_name='turn',
            name='turn_role_valid',
        ),
        migrations.AddField(
            model_name='turn',
            name='tool_call_id',
            field=models.CharField(blank=True, help_text='For a tool result: the id of the call it answers.', max_length=200, null=True),
        ),
        migrations.AddField(
            model_name='turn',
            name='tool_calls',
            field=models.JSONField(blank=True, help_text="An answer's tool calls, as the model sent them ([{id, type, function: {name, arguments}}]).", null=True),
        ),
        migrations.AlterField(
            model_name='turn',
            name='role',
            field=models.CharField(choices=[('user', 'User'), ('assistant', 'Assistant'), ('system', 'System'), ('tool', 'Tool result')], max_length=10),
        ),
        migrations.AddConstraint(
            model_name='turn',
            constraint=models.CheckConstraint(condition=models.Q(('role__in', ['user', 'assistant', 'system', 'tool'])), name='turn_role_valid'),
        ),
        migrations.RunPython(restore_sqlite_triggers, drop_sqlite_triggers),
    ]
