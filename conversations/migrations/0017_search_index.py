"""Turn text search served by an index: pg_trgm on PostgreSQL, FTS5 on SQLite; the failed-answer partial index and
the recent-activity index of the review panel's list.

PostgreSQL: a trigram GIN index on UPPER(content), the expression Django's `icontains` compares, so the same
filter reads the index. SQLite: an external-content FTS5 table with the trigram tokenizer (substring matching,
case-insensitive, like `icontains`), kept in step with conversations_turn by triggers. Django rebuilds a SQLite table
for some schema changes and drops its triggers then: a test asserts they hold after every migration.
"""

from django.db import migrations, models

from chatsite import search_index

POSTGRESQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX turn_content_trgm_idx ON conversations_turn USING gin (UPPER(content) gin_trgm_ops)",
]
POSTGRESQL_REVERSE = ["DROP INDEX IF EXISTS turn_content_trgm_idx"]

TURN_FTS = {"table": "conversations_turn", "column": "content", "rowid": "id", "tokenize": "trigram",
            "trigger_prefix": "turn"}
SQLITE = search_index.sqlite_fts5(**TURN_FTS)


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0016_conversation_web_search"),
    ]

    operations = [
        search_index.run_per_database(postgresql=(POSTGRESQL, POSTGRESQL_REVERSE), sqlite=SQLITE),
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
