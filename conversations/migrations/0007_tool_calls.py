"""Tool calls: an answer may carry the model's tool calls, and a "tool" turn holds a tool's result.

On SQLite, changing turn_role_valid rebuilds the turn table: the triggers of migration 0004 are dropped first
and made again after, both ways (PostgreSQL's guards are foreign keys and survive).
"""

import importlib

from django.db import migrations, models

from chatsite import search_index

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
    """The rebuilt turn (or conversation) table lost its own triggers: make all of them again, the guards of 0004
    and, once migration 0017 has made the turns' full-text index, the triggers that keep that index in step."""
    if schema_editor.connection.vendor == "sqlite":
        for statement in versions.SQLITE_GUARDS:
            schema_editor.execute(statement.replace("CREATE TRIGGER ", "CREATE TRIGGER IF NOT EXISTS ", 1))
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'conversations_turn_fts'")
            indexed = cursor.fetchone() is not None
        if indexed:
            search = importlib.import_module("conversations.migrations.0017_search_index")
            for statement in search_index.sqlite_fts5_triggers(**search.TURN_FTS):
                schema_editor.execute(statement)


def keeping_sqlite_triggers(*operations) -> list:
    """`operations` between a drop and a restore of the SQLite triggers, both ways: what every later migration that
    rebuilds the turn or conversation table on SQLite (a NOT NULL column, a changed constraint) wraps itself in."""
    return [
        migrations.RunPython(drop_sqlite_triggers, restore_sqlite_triggers),
        *operations,
        migrations.RunPython(restore_sqlite_triggers, drop_sqlite_triggers),
    ]


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
