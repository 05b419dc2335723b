"""The rules for importing users in one go and for removing users.

Pure, like the rest of the core: a `Registry` and `now` in, a `Change` or a refusal out.

- An import adds every user it names and enables those marked enabled, in one change:
  all or none. Names are checked as `user add` checks them (cleaned, no duplicates, none
  there already); the enabled ones need free seats (outside an evaluation), and when they
  do not fit nothing is imported. They take seats in the order the import lists them.
- A removal deletes users, all or none. An enabled user is refused unless the removal is
  forced; forced, it is disabled and removed in the same change, and its seat is free.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from officestatus_server.core.model import AuditEntry, Change, User
from officestatus_server.core.namelists import clean_names, known_users, subject
from officestatus_server.core.plans import check_seats
from officestatus_server.core.registry import Registry
from officestatus_server.core.texts import count, short
from officestatus_server.errors import AlreadyExists, PreconditionFailed, SeatsExhausted


class ImportedUser(NamedTuple):
    """One user an import names, and whether it is to be enabled."""

    name: str
    enabled: bool


def plan_import_users(
    registry: Registry, imported: Iterable[ImportedUser], now: datetime
) -> Change:
    """Add every user, enabling those marked enabled, in one change (all or none)."""
    rows = list(imported)
    names = clean_names(row.name for row in rows)
    existing = [n for n in names if registry.user(n) is not None]
    if existing:
        raise AlreadyExists(
            f"Nothing was imported: already a user: "
            f"{', '.join(short(n) for n in existing[:10])}"
            + (f" and {len(existing) - 10} more" if len(existing) > 10 else "")
            + ". Names compare regardless of case; remove them from the file, or remove "
            "the users first.",
            reason="USER_EXISTS",
        )
    enabled = sum(1 for row in rows if row.enabled)
    try:
        check_seats(registry, enabled, now)
    except SeatsExhausted as exc:
        raise SeatsExhausted(
            f"Nothing was imported: the import enables {count(enabled, 'user')}. {exc.message}",
            reason=exc.reason,
        ) from None
    seq = registry.next_seq
    users: list[User] = []
    for name, row in zip(names, rows, strict=True):
        if row.enabled:
            users.append(User(name, True, now, now, seq))
            seq += 1
        else:
            users.append(User(name, False, now))
    result = f"imported {count(len(users), 'user')}, {enabled} enabled; " + registry.seats_phrase(
        now, registry.enabled_count() + enabled
    )
    return Change(
        audit=AuditEntry(now, "users.import", subject(names), result),
        put_users=tuple(users),
        touched=tuple(names),
    )


def plan_remove_users(
    registry: Registry, raw_names: Iterable[str], force: bool, now: datetime
) -> Change:
    """Remove users (all or none); an enabled one only when forced (disabled, then removed)."""
    users = known_users(registry, clean_names(raw_names))
    enabled = [u.name for u in users if u.enabled]
    if enabled and not force:
        raise PreconditionFailed(
            f"Still enabled: {_names(enabled)}. Disable "
            f"{'it' if len(enabled) == 1 else 'them'} first, or force the removal; "
            "nothing was removed.",
            reason="USER_ENABLED",
        )
    result = f"removed {count(len(users), 'user')}"
    if enabled:
        result += f" ({len(enabled)} enabled: forced, disabled first)"
    result += "; " + registry.seats_phrase(now, registry.enabled_count() - len(enabled))
    names = [u.name for u in users]
    return Change(
        audit=AuditEntry(now, "users.remove", subject(names), result),
        remove_users=tuple(names),
    )


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(short(n) for n in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")
