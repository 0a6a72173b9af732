"""Passage full-text search served by an index: a tsvector GIN index on PostgreSQL, FTS5 (bm25 ranking) on SQLite.

PostgreSQL: a stored generated column, search_vector = to_tsvector('english', text), with a GIN index: the match
reads the index and the ranking reads the column (computing each match's tsvector again made a search of 100,000
passages take seconds: bench/KNOWLEDGE.md). The model does not declare the column; the database fills it. SQLite: an external-content FTS5 table (porter stemming over unicode61, as the English configuration
stems on PostgreSQL), kept in step with knowledge_passage by triggers (passages are only inserted and deleted).
"""

from django.db import migrations

from chatsite import search_index

POSTGRESQL = [
    """ALTER TABLE knowledge_passage ADD COLUMN search_vector tsvector
           GENERATED ALWAYS AS (to_tsvector('english', text)) STORED""",
    "CREATE INDEX knowledge_passage_tsv_idx ON knowledge_passage USING gin (search_vector)",
]
POSTGRESQL_REVERSE = [
    "DROP INDEX IF EXISTS knowledge_passage_tsv_idx",
    "ALTER TABLE knowledge_passage DROP COLUMN IF EXISTS search_vector",
]

SQLITE = search_index.sqlite_fts5(
    table="knowledge_passage", column="text", rowid="id", tokenize="porter unicode61 remove_diacritics 2",
    trigger_prefix="knowledge_passage",
)


class Migration(migrations.Migration):

    dependencies = [
        ("knowledge", "0001_initial"),
    ]

    operations = [
        search_index.run_per_database(postgresql=(POSTGRESQL, POSTGRESQL_REVERSE), sqlite=SQLITE),
    ]
