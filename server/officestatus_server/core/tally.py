"""Logins counted as they are decided: one dictionary increment on the login path.

The service counts every login it decides into one `LoginTally`; the metrics read its
running totals and the usage history takes what was added since its last flush. Neither
adds work to a login beyond this count. Admin changes are counted likewise, by kind and
result, into a `ChangeTally`.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import NamedTuple

from officestatus.wire import DenyReason
from officestatus_server.core.versions import Release


class LoginKey(NamedTuple):
    """What a login is counted by: granted (reason UNSPECIFIED) or why not, and the
    client release that asked."""

    reason: DenyReason
    release: Release

    @property
    def granted(self) -> bool:
        return self.reason is DenyReason.UNSPECIFIED


class LoginTally:
    """Logins since the server started, by `LoginKey`; totals only ever grow."""

    def __init__(self) -> None:
        self._totals: Counter[LoginKey] = Counter()
        self._taken: Counter[LoginKey] = Counter()

    def count(self, reason: DenyReason, release: Release) -> None:
        """One login decided (granted when `reason` is UNSPECIFIED)."""
        self._totals[LoginKey(reason, release)] += 1

    def totals(self) -> dict[LoginKey, int]:
        """Every login since start, by key (a copy)."""
        return dict(self._totals)

    def take_since_last(self) -> dict[LoginKey, int]:
        """The logins counted since the last call (the first call: since start), for a
        consumer that writes them down in batches; keys with none are left out."""
        now = Counter(self._totals)
        added = now - self._taken
        self._taken = now
        return dict(added)

    def put_back(self, taken: dict[LoginKey, int]) -> None:
        """Undo a `take_since_last` whose batch could not be written: the next take
        includes those logins again."""
        self._taken.subtract(taken)


class ChangeResult(StrEnum):
    """How an admin change ended."""

    # Committed.
    DONE = "done"
    # Refused on purpose (bad input, no such user, not enough seats...): nothing changed.
    REFUSED = "refused"
    # The server failed (the database, or a defect): nothing changed.
    FAILED = "failed"


class ChangeTally:
    """Admin changes since the server started, by kind (as the audit names it, e.g.
    `users.enable`) and result; totals only ever grow."""

    def __init__(self) -> None:
        self._totals: Counter[tuple[str, ChangeResult]] = Counter()

    def count(self, kind: str, result: ChangeResult) -> None:
        """One admin change ended so."""
        self._totals[kind, result] += 1

    def totals(self) -> dict[tuple[str, ChangeResult], int]:
        """Every change since start, by (kind, result) (a copy)."""
        return dict(self._totals)
