"""Turn text search served by an index: pg_trgm on PostgreSQL, FTS5 on SQLite; the failed-answer partial index and
the recent-activity index of the review panel's list.

PostgreSQL: a trigram GIN index on UPPER(content), the expression Django's `icontains` compares, so the same
filter reads the index. SQLite: an external-content FTS5 table with the trigram tokenizer (substring matching,
case-insensitive, like `icontains`), kept in step with conversations_turn by triggers. Django rebuilds a SQLite table
for some schema changes and drops its triggers then: a test asserts they hold after every migration.
"""

from django.db import migrations, models

POSTGRESQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX turn_content_trgm_idx ON conversations_turn USING gin (UPPER(content) gin_trgm_ops)",
]
POSTGRESQL_REVERSE = ["DROP INDEX IF EXISTS turn_content_trgm_idx"]

SQLITE = [
    """CREATE VIRTUAL TABLE conversations_turn_fts USING fts5(
           content, content='conversations_turn', content_rowid='id', tokenize='trigram')""",
    """CREATE TRIGGER turn_fts_insert AFTER INSERT ON conversations_turn BEGIN
           INSERT INTO conversations_turn_fts (rowid, content) VALUES (new.id, new.content);
       END""",
    """CREATE TRIGGER turn_fts_delete AFTER DELETE ON conversations_turn BEGIN
           INSERT INTO conversations_turn_fts (conversations_turn_fts, rowid, content)
           VALUES ('delete', old.id, old.content);
       END""",
    """CREATE TRIGGER turn_fts_update AFTER UPDATE OF content ON conversations_turn BEGIN
           INSERT INTO conversations_turn_fts (conversations_turn_fts, rowid, content)
           VALUES ('delete', old.id, old.content);
           INSERT INTO conversations_turn_fts (rowid, content) VALUES (new.id, new.content);
       END""",
    "INSERT INTO conversations_turn_fts (conversations_turn_fts) VALUES ('rebuild')",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS turn_fts_insert",
    "DROP TRIGGER IF EXISTS turn_fts_delete",
    "DROP TRIGGER IF EXISTS turn_fts_update",
    "DROP TABLE IF EXISTS conversations_turn_fts",
]


def _run(schema_editor, statements):
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def create_search_index(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, POSTGRESQL)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE)


def drop_search_index(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, POSTGRESQL_REVERSE)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_REVERSE)


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0016_conversation_web_search"),
    ]

    operations = [
        migrations.RunPython(create_search_index, drop_search_index),
        migrations.AddIndex(
            model_name="conversation",
            index=models.Index(fields=["-updated_at"], name="conversation_recent_idx"),
        ),
        migrations.AddIndex(
            model_name="turn",
            index=models.Index(
                condition=models.Q(("role", "assistant"), ("status", "failed")),
                fields=["conversation"],
                name="turn_failed_answer_idx",
            ),
        ),
    ]
