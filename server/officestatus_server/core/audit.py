"""The audit log's hash chain: each record's hash covers its content and the hash of the
record before it, so an edited, inserted, reordered or deleted record shows.

This makes tampering with a database tool evident; it does not stop someone who can
rewrite the whole file and recompute every hash (with the head hash noted down outside,
from `officestatus-admin audit verify`, even that shows).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from officestatus_server.core.model import AuditEntry

GENESIS = "0" * 64


def record_hash(entry: AuditEntry, record_id: int, previous: str) -> str:
    """The SHA-256 (hex) of a record: its id, content and the previous record's hash."""
    canonical = json.dumps(
        [record_id, entry.at.isoformat(), entry.action, entry.subject, entry.result, previous],
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class ChainedRecord:
    """A stored audit record with its chain fields."""

    id: int
    entry: AuditEntry
    previous_hash: str
    hash: str


@dataclass(frozen=True)
class ChainReport:
    """What a check of the chain found."""

    records_checked: int
    problems: tuple[str, ...]
    head_hash: str

    @property
    def intact(self) -> bool:
        """No problem found."""
        return not self.problems


def verify_chain(
    records: Iterable[ChainedRecord], head_hash: str | None, count: int | None
) -> ChainReport:
    """Check records (oldest first) against each other and the recorded head and count."""
    problems: list[str] = []
    previous = GENESIS
    checked = 0
    for record in records:
        checked += 1
        if record.hash != record_hash(record.entry, record.id, record.previous_hash):
            problems.append(f"record {record.id} was edited after it was written")
        if record.previous_hash != previous:
            problems.append(
                f"record {record.id} does not follow the record before it: a record was "
                "deleted or inserted there"
            )
        previous = record.hash
    if head_hash is not None and previous != head_hash:
        problems.append(
            "the newest record is not the one the log last wrote: records were deleted or "
            "added at the end"
        )
    if count is not None and checked != count:
        problems.append(f"the log wrote {count} records, but {checked} are there")
    return ChainReport(checked, tuple(problems), previous)
