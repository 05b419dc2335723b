"""Rows and the model, for both SQL stores: SQLite and PostgreSQL keep the same tables and
columns (times as ISO text, hours as epoch seconds), so a row read from either becomes the
same value here, and a value is written as the same row. No I/O: the stores run the SQL."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from officestatus_server.core.audit import ChainedRecord
from officestatus_server.core.model import AuditEntry, Change, ClockSetBack, Installation, User
from officestatus_server.core.names import name_key
from officestatus_server.core.sessions import EarlierRuns, Seen
from officestatus_server.core.signed_in import LastLogin, LastLoginFlush
from officestatus_server.core.takeover import Takeover, TookOver
from officestatus_server.core.usage import UsageHour
from officestatus_server.storage.base import (
    DELTA_MAX_USERS,
    Delta,
    Stored,
    StoredLicense,
    touched,
)

# A live session's machine, client version and start when nothing of it is known.
NOT_KNOWN = ("", "", 0.0)

Row = Sequence[Any]


def ts(value: datetime | None) -> str | None:
    """A time as stored."""
    return value.isoformat() if value is not None else None


def dt(value: str | None) -> datetime | None:
    """A stored time."""
    return datetime.fromisoformat(value) if value is not None else None


def sort_key(row: tuple[object, ...]) -> tuple[tuple[int, str], ...]:
    """Rows in one order whatever the database: by each value, None first."""
    return tuple(
        (0, "") if v is None else (1, f"{v:020d}" if isinstance(v, int) else str(v)) for v in row
    )


def entry(at: object, action: object, subject: object, result: object) -> AuditEntry:
    """An audit entry from its columns."""
    return AuditEntry(datetime.fromisoformat(str(at)), str(action), str(subject), str(result))


def chained_record(row: Row) -> ChainedRecord:
    """An audit row: id, at, action, subject, result, previous_hash, hash."""
    i, at, action, subject, result, previous, digest = row
    return ChainedRecord(int(i), entry(at, action, subject, result), str(previous), str(digest))


def user_row(u: User) -> tuple[object, ...]:
    """name_key, name, enabled, created_at, enabled_at, enable_seq."""
    return (
        name_key(u.name),
        u.name,
        int(u.enabled),
        ts(u.created_at),
        ts(u.enabled_at),
        u.enable_seq,
    )


def user_rows(users: Iterable[User]) -> list[tuple[object, ...]]:
    """The rows of `users`."""
    return [user_row(u) for u in users]


def installation(meta: dict[str, str]) -> Installation:
    """The installation from its meta rows."""
    set_back = None
    if "clock_set_back_found" in meta:
        set_back = ClockSetBack(
            seen=datetime.fromisoformat(meta["clock_set_back_seen"]),
            found=datetime.fromisoformat(meta["clock_set_back_found"]),
        )
    return Installation(
        installation_id=meta["installation_id"],
        first_started_at=datetime.fromisoformat(meta["first_started_at"]),
        evaluation_ended_at=dt(meta.get("evaluation_ended_at")),
        clock_set_back=set_back,
    )


def licenses(rows: Iterable[Row]) -> tuple[StoredLicense, ...]:
    """Rows of license_id, key_text, installed_at (in the order installed)."""
    return tuple(StoredLicense(str(a), str(b), datetime.fromisoformat(str(c))) for a, b, c in rows)


def users(rows: Iterable[Row]) -> tuple[User, ...]:
    """Rows of name, enabled, created_at, enabled_at, enable_seq."""
    return tuple(
        User(str(n), bool(e), datetime.fromisoformat(str(c)), dt(ea), seq)
        for n, e, c, ea, seq in rows
    )


def high_water(meta: dict[str, str], made: Installation) -> datetime:
    """The clock's high-water mark as written down (the first start before any)."""
    return dt(meta.get("clock_high_water")) or made.first_started_at


def stored(
    meta: dict[str, str], license_rows: Iterable[Row], user_rows: Iterable[Row], created: bool
) -> Stored:
    """The installation from its meta rows, its licenses and its users."""
    made = installation(meta)
    return Stored(
        made,
        bytes.fromhex(meta["session_secret"]),
        licenses(license_rows),
        users(user_rows),
        created,
        clock_high_water=high_water(meta, made),
        took_over=took_over_from_meta(meta),
        change_number=int(meta.get("change_number", "0")),
    )


# --- the record of changes (for a delta) ---------------------------------------------


def change_record(change: Change) -> tuple[str, int]:
    """The record of a numbered change: the name keys of the users it wrote or deleted
    (a JSON list), and 1 when it installed or removed a license."""
    keys, licensed = touched(change)
    return json.dumps(keys), int(licensed)


def recorded(since: int, number: int, rows: Sequence[Row]) -> tuple[list[str], bool] | None:
    """From the records (number, user_keys, licenses) of the changes after `since` up to
    `number`: the users they touched and whether a license changed; None when a record is
    missing (the record does not reach back), they touched too many users, or `since` is
    ahead of `number` (the database was put back to an earlier state)."""
    if since > number or [int(r[0]) for r in rows] != list(range(since + 1, number + 1)):
        return None
    keys: set[str] = set()
    licensed = False
    for _, user_keys, changed in rows:
        keys.update(json.loads(str(user_keys)))
        licensed = licensed or bool(changed)
        if len(keys) > DELTA_MAX_USERS:
            return None
    return sorted(keys), licensed


def delta(
    number: int,
    meta: dict[str, str],
    keys: Sequence[str],
    user_rows: Iterable[tuple[str, Row]],
    license_rows: Iterable[Row] | None,
) -> Delta:
    """A delta from the meta rows, the touched users' rows now (each with its name key:
    a key without a row was deleted) and, when a license changed, every license row."""
    made = installation(meta)
    found = {key: row for key, row in user_rows}
    return Delta(
        number=number,
        installation=made,
        clock_high_water=high_water(meta, made),
        took_over=took_over_from_meta(meta),
        users=users(found[k] for k in keys if k in found),
        removed_user_keys=tuple(k for k in keys if k not in found),
        licenses=None if license_rows is None else licenses(license_rows),
    )


def earlier_runs(live: Iterable[Row], runs: Iterable[Row], carried: Iterable[Row]) -> EarlierRuns:
    """What earlier runs wrote down: live sessions (session_id, machine, client_version,
    since), runs (run, flushed_epoch) and carried sessions (session_id, user_key)."""
    live = list(live)
    flushed = {str(r): int(e) for r, e in runs}
    return EarlierRuns(
        frozenset(str(r[0]) for r in live),
        flushed,
        unrecorded=not flushed,
        carried={str(i): str(k) for i, k in carried},
        seen={str(i): Seen(str(m), str(v), float(t)) for i, m, v, t in live if t or m},
    )


def last_logins(rows: Iterable[Row]) -> tuple[LastLogin, ...]:
    """Rows of user_key, user_name, machine, client_version, release, at."""
    return tuple(
        LastLogin(str(k), str(n), str(m), str(v), int(r), datetime.fromisoformat(str(at)))
        for k, n, m, v, r, at in rows
    )


def last_login_rows(flush: LastLoginFlush) -> list[tuple[object, ...]]:
    """user_key, machine, user_name, client_version, release, at, of those recorded."""
    return [
        (e.user_key, e.machine, e.user_name, e.version, e.release, ts(e.at)) for e in flush.recorded
    ]


def usage_rows(hours: Iterable[UsageHour]) -> list[tuple[object, ...]]:
    """hour, peak_enabled, peak_sessions, seats, granted."""
    return [
        (int(h.hour.timestamp()), h.peak_enabled, h.peak_sessions, h.seats, h.granted)
        for h in hours
    ]


def denial_rows(hours: Iterable[UsageHour]) -> list[tuple[object, ...]]:
    """hour, reason, release, count."""
    return [
        (int(h.hour.timestamp()), reason, release, n)
        for h in hours
        for (reason, release), n in h.denials.items()
    ]


def usage_hours(hours: Iterable[Row], denials: Iterable[Row]) -> list[UsageHour]:
    """The hours from their rows and their denials' rows (as `usage_rows`, `denial_rows`)."""
    by_hour: dict[int, dict[tuple[str, int], int]] = {}
    for hour, reason, release, n in denials:
        by_hour.setdefault(int(hour), {})[str(reason), int(release)] = int(n)
    return [
        UsageHour(
            datetime.fromtimestamp(int(hour), UTC),
            int(enabled),
            int(sessions),
            None if seats is None else int(seats),
            int(granted),
            by_hour.get(int(hour), {}),
        )
        for hour, enabled, sessions, seats, granted in hours
    ]


def takeover_meta(seed: Takeover) -> dict[str, str]:
    """The meta rows that keep what a takeover leaves for later starts."""
    record = TookOver.of(seed)
    return {"took_over": json.dumps(dataclasses.asdict(record), sort_keys=True)}


def took_over_from_meta(meta: dict[str, str]) -> TookOver | None:
    """What a takeover left, if this installation was made by one."""
    text = meta.get("took_over")
    if text is None:
        return None
    raw = json.loads(text)
    return TookOver(
        release=int(raw["release"]),
        summary=str(raw["summary"]),
        listen=str(raw["listen"]),
        heartbeat_seconds=None
        if raw["heartbeat_seconds"] is None
        else int(raw["heartbeat_seconds"]),
        report=tuple(str(line) for line in raw["report"]),
        seen=bool(raw.get("seen", False)),
        attention=tuple(int(i) for i in raw.get("attention", ())),
    )
