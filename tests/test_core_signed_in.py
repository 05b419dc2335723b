"""core/signed_in.py: the last logins of clients without sessions, bounded and written down
in batches, and the listing's order and pages. Pure: no server, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from officestatus_server.core.sessions import Seen, Session
from officestatus_server.core.signed_in import (
    LastLogin,
    LastLogins,
    clip,
    listing_page,
)

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def _login(user: str, machine: str, minutes: int = 0) -> LastLogin:
    return LastLogin(user, user.title(), machine, "4.2.0", 4, NOW + timedelta(minutes=minutes))


def test_one_entry_per_user_and_machine_the_latest_login_kept() -> None:
    kept = LastLogins()
    kept.record(_login("ann", "PC-1"))
    kept.record(_login("ann", "PC-2", 1))
    kept.record(_login("ann", "PC-1", 2))
    kept.record(_login("bob", "PC-1", 3))
    assert len(kept) == 3
    assert [(e.user_key, e.machine, e.at.minute) for e in kept.every()] == [
        ("ann", "PC-2", 1),
        ("ann", "PC-1", 2),
        ("bob", "PC-1", 3),
    ]
    assert [e.machine for e in kept.of_user("ann")] == ["PC-2", "PC-1"]


def test_at_the_bound_the_least_recent_login_is_forgotten_and_written_down_so() -> None:
    kept = LastLogins(bound=2)
    kept.record(_login("ann", "A"))
    kept.record(_login("bob", "B", 1))
    first = kept.take_flush()
    kept.record(_login("cat", "C", 2))
    second = kept.take_flush()
    assert [e.user_key for e in first.recorded] == ["ann", "bob"]
    assert [e.user_key for e in second.recorded] == ["cat"]
    assert second.forgotten == (("ann", "A"),)
    assert [e.user_key for e in kept.every()] == ["bob", "cat"]


def test_stored_entries_beyond_a_lowered_bound_are_forgotten_at_the_first_batch() -> None:
    stored = [_login("ann", "A", 5), _login("bob", "B", 1), _login("cat", "C", 3)]
    kept = LastLogins(stored, bound=2)
    assert [e.user_key for e in kept.every()] == ["cat", "ann"]
    assert kept.take_flush().forgotten == (("bob", "B"),)


def test_a_batch_that_failed_goes_into_the_next() -> None:
    kept = LastLogins(bound=2)
    kept.record(_login("ann", "A"))
    failed = kept.take_flush()
    kept.flush_failed(failed)
    kept.record(_login("bob", "B", 1))
    kept.record(_login("cat", "C", 2))  # ann forgotten before her batch was written
    retry = kept.take_flush()
    assert [e.user_key for e in retry.recorded] == ["bob", "cat"]
    assert retry.forgotten == (("ann", "A"),)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PC-17", "PC-17"),
        ("", ""),
        ("tab\there", "tab?here"),
        ("x" * 10, "x" * 10),
        ("x" * 11, "x" * 9 + "…"),
        ("\x1b[31m", "?[31m"),
    ],
)
def test_clip(text: str, expected: str) -> None:
    assert clip(text, 10) == expected


def test_the_listing_by_user_sessions_first_in_pages_with_times_on_the_wall_clock() -> None:
    session = Session("bob", 100.0, 5, "run", Seen("PC-B", "5.1.3", NOW.timestamp()))
    ann = Session("ann", 130.0, 6, "run", Seen("PC-A", "6.0.0", NOW.timestamp() + 60))
    logins = [_login("bob", "OLD"), _login("gone", "X")]
    names = {"ann": "Ann", "bob": "Bob"}

    def page(offset: int, limit: int) -> tuple[list[str], int]:
        lines, total = listing_page(
            [session, ann], logins, names.get, NOW + timedelta(minutes=5), 160.0, offset, limit
        )
        return [f"{line.user_name}/{line.machine}/{line.session}" for line in lines], total

    # A removed user's last login is not listed; a session before a last login.
    assert page(0, 10) == (["Ann/PC-A/True", "Bob/PC-B/True", "Bob/OLD/False"], 3)
    assert page(1, 1) == (["Bob/PC-B/True"], 3)
    assert page(5, 10) == ([], 3)
    [line], _ = listing_page([session], [], names.get, NOW, 160.0, 0, 1)
    assert line.since == NOW
    assert line.last_heard == NOW - timedelta(seconds=60)  # heard at 100 s, now 160 s
