"""The text extracted from attached files, searched through an index as the turns' is (migration 0017): a trigram GIN
index on UPPER(text) on PostgreSQL, an external-content FTS5 table with the trigram tokenizer on SQLite, kept in step
by triggers (the attachment table has its implicit rowid: its primary key is a UUID)."""

from django.db import migrations

from chatsite import search_index

POSTGRESQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX attachment_text_trgm_idx ON conversations_attachment USING gin (UPPER(text) gin_trgm_ops)",
]
POSTGRESQL_REVERSE = ["DROP INDEX IF EXISTS attachment_text_trgm_idx"]

SQLITE = search_index.sqlite_fts5(
    table="conversations_attachment", column="text", rowid="rowid", tokenize="trigram", trigger_prefix="attachment"
)


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0022_conversation_assistant"),
    ]

    operations = [
        search_index.run_per_database(postgresql=(POSTGRESQL, POSTGRESQL_REVERSE), sqlite=SQLITE),
    ]
