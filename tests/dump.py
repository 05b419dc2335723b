"""A full dump of a server's SQLite database, to prove that a refused call changed nothing.

Read with the standard sqlite3 module over a separate read-only connection (the server
keeps its own connection open; in WAL mode a reader sees every committed transaction
and never blocks or checkpoints the writer).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

Row = tuple[object, ...]
Dump = dict[str, list[Row]]

# The one stored value the server changes without being asked to: the latest time it has
# seen (meta 'clock_high_water'), written on start, every minute, and with every change,
# so a clock set back while the server is stopped shows at the next start. Nothing else
# is left out.
VOLATILE_META = frozenset({"clock_high_water"})


def dump_database(path: Path) -> Dump:
    """Every table's rows, sorted, plus the schema and PRAGMA user_version."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        schema = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        tables = sorted(name for kind, name, _, _ in schema if kind == "table")
        result: Dump = {
            "[schema]": sorted(schema, key=repr),
            "[user_version]": [tuple(conn.execute("PRAGMA user_version").fetchone())],
        }
        for table in tables:
            # Table names come from sqlite_master itself; quoted all the same.
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            if table == "meta":
                rows = [row for row in rows if row[0] not in VOLATILE_META]
            result[table] = sorted(rows, key=repr)
    return result


def describe_difference(before: Dump, after: Dump) -> str:
    """Which tables changed, and how: rows gone and rows new (a few of each)."""
    lines: list[str] = []
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, []), after.get(table, [])
        if old == new:
            continue
        gone = [r for r in old if r not in new]
        added = [r for r in new if r not in old]
        lines.append(f"{table}: {len(gone)} rows gone {gone[:3]!r}, {len(added)} new {added[:3]!r}")
    return "; ".join(lines) or "no difference"
