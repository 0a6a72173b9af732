"""Turns form a tree: each turn has a parent, and the conversation records the leaf of the branch shown.

Existing linear conversations become single-branch trees: each turn's parent is the turn before it, and the
current turn is the last one. Nothing is deleted or rewritten; answers that were left running twice in one
conversation (possible only after a crash) keep the newest one running and the others failed, as the service would.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

# A parent (and the current turn) belongs to the same conversation. PostgreSQL: composite foreign keys onto
# turn (id, conversation_id), checked at once (not deferred: a bad row is refused by the statement that writes it). SQLite cannot add those to an existing table: triggers with the same names.
# (Django rebuilds a SQLite table for some schema changes, dropping its triggers: a test asserts they hold.)
POSTGRESQL_GUARDS = [
    """ALTER TABLE conversations_turn ADD CONSTRAINT turn_parent_same_conversation
       FOREIGN KEY (parent_id, conversation_id) REFERENCES conversations_turn (id, conversation_id)
       ON DELETE CASCADE""",
    """ALTER TABLE conversations_conversation ADD CONSTRAINT conversation_current_turn_same_conversation
       FOREIGN KEY (current_turn_id, id) REFERENCES conversations_turn (id, conversation_id)""",
]
POSTGRESQL_GUARDS_REVERSE = [
    "ALTER TABLE conversations_turn DROP CONSTRAINT turn_parent_same_conversation",
    "ALTER TABLE conversations_conversation DROP CONSTRAINT conversation_current_turn_same_conversation",
]
_PARENT_CHECK = """FOR EACH ROW WHEN NEW.parent_id IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM conversations_turn p WHERE p.id = NEW.parent_id AND p.conversation_id = NEW.conversation_id)
       BEGIN SELECT RAISE(ABORT, 'turn_parent_same_conversation'); END"""
_CURRENT_CHECK = """FOR EACH ROW WHEN NEW.current_turn_id IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM conversations_turn t WHERE t.id = NEW.current_turn_id AND t.conversation_id = NEW.id)
       BEGIN SELECT RAISE(ABORT, 'conversation_current_turn_same_conversation'); END"""
SQLITE_GUARDS = [
    f"CREATE TRIGGER turn_parent_same_conversation_insert BEFORE INSERT ON conversations_turn {_PARENT_CHECK}",
    "CREATE TRIGGER turn_parent_same_conversation_update BEFORE UPDATE OF parent_id, conversation_id "
    f"ON conversations_turn {_PARENT_CHECK}",
    "CREATE TRIGGER conversation_current_turn_same_conversation_insert BEFORE INSERT "
    f"ON conversations_conversation {_CURRENT_CHECK}",
    "CREATE TRIGGER conversation_current_turn_same_conversation_update BEFORE UPDATE OF current_turn_id, id "
    f"ON conversations_conversation {_CURRENT_CHECK}",
]
SQLITE_GUARDS_REVERSE = [
    "DROP TRIGGER IF EXISTS turn_parent_same_conversation_insert",
    "DROP TRIGGER IF EXISTS turn_parent_same_conversation_update",
    "DROP TRIGGER IF EXISTS conversation_current_turn_same_conversation_insert",
    "DROP TRIGGER IF EXISTS conversation_current_turn_same_conversation_update",
]


def _run(schema_editor, statements, params=None):
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, params or [])


def link_linear_conversations(apps, schema_editor):
    _run(schema_editor, [
        # Each turn follows the one before it.
        """UPDATE conversations_turn SET parent_id = (
               SELECT p.id FROM conversations_turn p
               WHERE p.conversation_id = conversations_turn.conversation_id
                 AND p.position = conversations_turn.position - 1)
           WHERE position > 1""",
        # The branch shown ends at the last turn.
        """UPDATE conversations_conversation SET current_turn_id = (
               SELECT t.id FROM conversations_turn t WHERE t.conversation_id = conversations_conversation.id
               ORDER BY t.position DESC LIMIT 1)""",
    ])
    _run(schema_editor, [
        """UPDATE conversations_turn SET status = 'failed', error = 'The answer was interrupted.', completed_at = %s
           WHERE status IN ('pending', 'streaming') AND id <> (
               SELECT MAX(r.id) FROM conversations_turn r
               WHERE r.conversation_id = conversations_turn.conversation_id AND r.status IN ('pending', 'streaming'))""",
    ], [timezone.now()])
    if schema_editor.connection.vendor == "postgresql":
        # Fire the deferred foreign-key checks of these updates now: PostgreSQL refuses to build the indexes
        # below on a table with pending trigger events.
        _run(schema_editor, ["SET CONSTRAINTS ALL IMMEDIATE"])


def add_same_conversation_guards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, POSTGRESQL_GUARDS)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_GUARDS)


def remove_same_conversation_guards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, POSTGRESQL_GUARDS_REVERSE)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_GUARDS_REVERSE)


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0003_turn_ordering_without_join'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='turn',
            name='turn_unique_position',
        ),
        migrations.AddField(
            model_name='conversation',
            name='current_turn',
            field=models.ForeignKey(blank=True, help_text='The last turn of the branch the user sees: the thread shown (and sent to the model) is the path from the first message down to it.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='conversations.turn'),
        ),
        migrations.AddField(
            model_name='turn',
            name='parent',
            field=models.ForeignKey(blank=True, help_text='The turn this one answers or follows; none for a first message. Turns with the same parent are versions of each other (a regenerated answer, an edited message).', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='children', to='conversations.turn'),
        ),
        migrations.AlterField(
            model_name='conversation',
            name='turn_count',
            field=models.PositiveIntegerField(default=0, help_text='Number of stored turns, every version of every branch included.'),
        ),
        migrations.AlterField(
            model_name='turn',
            name='position',
            field=models.PositiveIntegerField(help_text="Depth in the conversation: 1 for a first message, parent's + 1."),
        ),
        migrations.RunPython(link_linear_conversations, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='turn',
            index=models.Index(fields=['conversation', 'parent', 'id'], name='turn_siblings_idx'),
        ),
        migrations.AddConstraint(
            model_name='turn',
            constraint=models.UniqueConstraint(fields=('id', 'conversation'), name='turn_id_conversation_unique'),
        ),
        migrations.AddConstraint(
            model_name='turn',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['pending', 'streaming'])), fields=('conversation',), name='turn_one_running_per_conversation'),
        ),
        migrations.AddConstraint(
            model_name='turn',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('parent__isnull', True), ('position', 1)), models.Q(('parent__isnull', False), ('position__gt', 1)), _connector='OR'), name='turn_root_at_position_one'),
        ),
        migrations.AddConstraint(
            model_name='turn',
            constraint=models.CheckConstraint(condition=models.Q(('parent', models.F('id')), _negated=True), name='turn_not_own_parent'),
        ),
        migrations.RunPython(add_same_conversation_guards, remove_same_conversation_guards),
    ]
