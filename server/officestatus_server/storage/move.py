"""Moving an installation from its SQLite file to PostgreSQL: copy every table in one
transaction into an empty database, then read both back and compare them row for row."""

from __future__ import annotations

from dataclasses import dataclass

from officestatus_server.errors import StorageError
from officestatus_server.storage.postgres import PostgresStore, shown
from officestatus_server.storage.sqlite import SqliteStore


@dataclass(frozen=True)
class Moved:
    """What was copied: rows by table, and the audit records whose chain verified."""

    rows: dict[str, int]
    audit_checked: int


async def move(source: SqliteStore, target: PostgresStore) -> Moved:
    """Copy the opened `source` into `target`'s empty database and verify the copy; the
    source is left as it was. Refused, nothing written, when the target holds an
    installation; StorageError when the copy differs (the target is then emptied by
    the caller's DROP, as said in the message)."""
    tables = await source.dump()
    await target.restore(tables)
    copied = await target.dump()
    for table, (columns, rows) in tables.items():
        if copied.get(table) != (columns, rows):
            raise StorageError(
                f"The copy in {shown(target.url)} differs from the SQLite file in table "
                f"{table}: do not use it; drop that database, and move again.",
                reason="MOVE_VERIFY_FAILED",
            )
    chain = await target.verify_audit()
    if not chain.intact:
        raise StorageError(
            f"The audit chain copied to {shown(target.url)} does not verify: "
            f"{'; '.join(chain.problems)}. Do not use the copy.",
            reason="MOVE_VERIFY_FAILED",
        )
    return Moved({t: len(rows) for t, (_, rows) in tables.items()}, chain.records_checked)
