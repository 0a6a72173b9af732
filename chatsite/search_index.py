"""The full-text indexes that migrations create: the SQL for an external-content FTS5 table kept in step with its
table by triggers (SQLite), and one migration operation that runs each database's statements.

Used by conversations 0017 (turns), conversations 0023 (attached files' text) and knowledge 0002 (passages). Django
rebuilds a SQLite table for some schema changes and drops its triggers then: `conversations` migration 0007's
`keeping_sqlite_triggers` drops and makes them again around such a change.
"""

from __future__ import annotations

import re

from django.db import migrations

IDENTIFIER = re.compile(r"[a-z_]+")


def sqlite_fts5(*, table: str, column: str, rowid: str, tokenize: str, trigger_prefix: str) -> tuple[list, list]:
    """The statements that create (then drop) `<table>_fts`, an FTS5 index of `table.column` that reads its text
    from `table` (external content), filled from what is there and kept in step by insert/delete/update triggers."""
    # Names written by migrations, never by users: still, only plain identifiers go into the SQL.
    if not all(IDENTIFIER.fullmatch(name) for name in (table, column, rowid, trigger_prefix)):
        raise ValueError("table, column, rowid and trigger_prefix must be plain identifiers")
    fts = f"{table}_fts"
    add = f"INSERT INTO {fts} (rowid, {column}) VALUES (new.{rowid}, new.{column});"  # noqa: S608 (identifiers)
    remove = f"INSERT INTO {fts} ({fts}, rowid, {column}) VALUES ('delete', old.{rowid}, old.{column});"  # noqa: S608
    triggers = {
        "insert": f"AFTER INSERT ON {table} BEGIN {add} END",
        "delete": f"AFTER DELETE ON {table} BEGIN {remove} END",
        "update": f"AFTER UPDATE OF {column} ON {table} BEGIN {remove} {add} END",
    }
    forward = [
        f"CREATE VIRTUAL TABLE {fts} USING fts5("
        f"{column}, content='{table}', content_rowid='{rowid}', tokenize='{tokenize}')",
        *(f"CREATE TRIGGER {trigger_prefix}_fts_{event} {body}" for event, body in triggers.items()),
        f"INSERT INTO {fts} ({fts}) VALUES ('rebuild')",  # noqa: S608 (identifiers, checked above)
    ]
    reverse = [*(f"DROP TRIGGER IF EXISTS {trigger_prefix}_fts_{event}" for event in triggers),
               f"DROP TABLE IF EXISTS {fts}"]
    return forward, reverse


def sqlite_fts5_triggers(**spec: str) -> list[str]:
    """Only the CREATE TRIGGER statements of `sqlite_fts5(**spec)`, each IF NOT EXISTS: what a migration that rebuilds
    the indexed table on SQLite (which drops the table's triggers) makes again after the rebuild."""
    forward, _ = sqlite_fts5(**spec)
    return [statement.replace("CREATE TRIGGER ", "CREATE TRIGGER IF NOT EXISTS ", 1)
            for statement in forward if statement.startswith("CREATE TRIGGER ")]


def run_per_database(*, postgresql: tuple[list, list], sqlite: tuple[list, list]) -> migrations.RunPython:
    """A RunPython that runs the (forward, reverse) statements of the database it migrates."""
    statements = {"postgresql": postgresql, "sqlite": sqlite}

    def run(direction: int):
        def operation(apps, schema_editor):
            chosen = statements.get(schema_editor.connection.vendor)
            if chosen is None:
                return
            with schema_editor.connection.cursor() as cursor:
                for statement in chosen[direction]:
                    cursor.execute(statement)
        return operation

    return migrations.RunPython(run(0), run(1))
