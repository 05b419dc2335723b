"""The lists of user names an admin call names: how many, each a valid name, none twice,
all known; and how an audit entry names them.
"""

from __future__ import annotations

from collections.abc import Iterable

from officestatus_server.core.model import User
from officestatus_server.core.names import clean_name, name_key
from officestatus_server.core.registry import Registry
from officestatus_server.core.texts import short
from officestatus_server.errors import AlreadyExists, InvalidInput, NotFound

MAX_USERS_PER_CALL = 10_000


def clean_names(raw_names: Iterable[str]) -> list[str]:
    """The names, cleaned; refused when none, too many, one invalid or one named twice."""
    raw = list(raw_names)
    if not raw:
        raise InvalidInput("Name at least one user.", reason="USER_NAMES_EMPTY")
    # Counted before anything else: a huge list is refused without cleaning each name.
    if len(raw) > MAX_USERS_PER_CALL:
        raise InvalidInput(
            f"At most {MAX_USERS_PER_CALL} users in one call; split the list.",
            reason="TOO_MANY_USERS",
        )
    names = [clean_name(n) for n in raw]
    seen: set[str] = set()
    for name in names:
        if name_key(name) in seen:
            raise InvalidInput(
                f"The user {short(name)!r} is named twice (names compare regardless of case).",
                reason="USER_NAME_DUPLICATE",
            )
        seen.add(name_key(name))
    return names


def known_users(registry: Registry, names: list[str]) -> list[User]:
    """The users with these names; refused, naming the first ten missing, if any is not."""
    missing = [n for n in names if registry.user(n) is None]
    if missing:
        raise NotFound(
            f"No such user: {', '.join(short(n) for n in missing[:10])}"
            + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            + ". Add them first.",
            reason="USER_NOT_FOUND",
        )
    return [u for n in names if (u := registry.user(n)) is not None]


def new_names(registry: Registry, names: list[str]) -> None:
    """Refuse names that are users already, naming the first ten."""
    existing = [n for n in names if registry.user(n) is not None]
    if existing:
        raise AlreadyExists(
            f"Already a user: {', '.join(short(n) for n in existing[:10])}. Names compare "
            "regardless of case.",
            reason="USER_EXISTS",
        )


def subject(names: list[str]) -> str:
    """The names as an audit entry's subject: the first twenty, then how many more."""
    shown = ", ".join(names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")
