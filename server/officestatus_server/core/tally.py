"""Logins counted as they are decided: one list increment on the login path.

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


# Every (reason, release) has a slot of its own in one list: a login's count is then one
# list increment, where a Counter keyed by LoginKey built a tuple and hashed two enums.
_RELEASES = max(Release) + 1
_KEYS = tuple(LoginKey(reason, release) for reason in DenyReason for release in Release)


def _slot(reason: DenyReason, release: Release) -> int:
    return reason * _RELEASES + release


class LoginTally:
    """Logins since the server started, by `LoginKey`; totals only ever grow."""

    def __init__(self) -> None:
        self._counts = [0] * ((max(DenyReason) + 1) * _RELEASES)
        self._taken: Counter[LoginKey] = Counter()

    def count(self, reason: DenyReason, release: Release) -> None:
        """One login decided (granted when `reason` is UNSPECIFIED)."""
        self._counts[reason * _RELEASES + release] += 1

    def totals(self) -> dict[LoginKey, int]:
        """Every login since start, by key, keys with none left out (a copy)."""
        counts = self._counts
        found = ((key, counts[_slot(*key)]) for key in _KEYS)
        return {key: n for key, n in found if n}

    def take_since_last(self) -> dict[LoginKey, int]:
        """The logins counted since the last call (the first call: since start), for a
        consumer that writes them down in batches; keys with none are left out."""
        now = Counter(self.totals())
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
