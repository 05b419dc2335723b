"""Client sessions: signed ids, heartbeats, expiry, and resuming after a restart."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from officestatus_server.core.sessions import MISSED_HEARTBEATS, Session, SessionTable
from tests.support import START

SECRET = b"0123456789abcdef0123456789abcdef"
INTERVAL = timedelta(seconds=30)
RESTART = START + timedelta(hours=2)


def table(secret: bytes = SECRET) -> SessionTable:
    """A new server run's session table."""
    return SessionTable(secret, INTERVAL)


def later(seconds: float = 0, base: datetime = START) -> datetime:
    return base + timedelta(seconds=seconds)


def test_open_touch_close() -> None:
    sessions = table()
    sid = sessions.open("alice", later(1), 6)

    assert len(sessions) == 1
    assert sessions.touch(sid, later(31)) == Session("alice", later(31), 6, sessions.run)
    assert sessions.close(sid) is True
    assert len(sessions) == 0
    assert sessions.close(sid) is False
    assert sessions.touch(sid, later(32)) is None


def test_each_session_gets_its_own_id() -> None:
    sessions = table()
    ids = {sessions.open("alice", later(1), 6) for _ in range(50)}
    assert len(ids) == 50
    assert len(sessions) == 50
    assert all(len(sid) < 2048 and sid.isascii() and sid.startswith("s2.") for sid in ids)


def _nonce(sid: str) -> int:
    payload = base64.urlsafe_b64decode(sid.split(".")[1] + "==")
    return int(payload.decode().split("|")[2], 16)


def test_an_id_does_not_tell_how_many_sessions_were_opened() -> None:
    """The nonce that keeps ids apart is random: no count of sessions shows in the ids."""
    sessions = table()
    nonces = [_nonce(sessions.open("alice", later(1), 6)) for _ in range(50)]
    assert nonces != sorted(nonces)
    assert max(nonces) > 2**40


def test_nonces_stay_unique_when_the_drawn_ones_run_out() -> None:
    """Nonces are drawn from the system in batches: ids stay distinct across batches."""
    sessions = table()
    ids = [sessions.open("alice", later(1), 6) for _ in range(3 * 512 + 7)]
    nonces = [_nonce(sid) for sid in ids]
    assert len(set(ids)) == len(ids)
    assert len(set(nonces)) == len(nonces)
    assert max(nonces).bit_length() > 60


HEARTBEATS = [
    pytest.param([30, 30, 30], True, id="every-interval"),
    pytest.param([1, 1, 1], True, id="often"),
    pytest.param([60, 60, 60], True, id="two-missed-each-time"),
    pytest.param([90], True, id="exactly-three-intervals"),
    pytest.param([30, 90], True, id="exactly-three-intervals-later"),
    pytest.param([90.001], False, id="just-over-three-intervals"),
    pytest.param([30, 30, 120], False, id="four-intervals-after-beats"),
    pytest.param([3600], False, id="an-hour"),
]


@pytest.mark.parametrize(("gaps", "alive"), HEARTBEATS)
def test_a_session_missing_too_many_heartbeats_is_gone(gaps: list[float], alive: bool) -> None:
    assert timedelta(seconds=90) == INTERVAL * MISSED_HEARTBEATS
    sessions = table()
    now = later(1)
    sid = sessions.open("alice", now, 6)
    result: Session | None = None

    for gap in gaps:
        now += timedelta(seconds=gap)
        result = sessions.touch(sid, now)

    assert (result is not None) is alive
    assert (len(sessions) == 1) is alive
    # Once gone, gone: even an immediate heartbeat is refused.
    assert (sessions.touch(sid, now + timedelta(seconds=1)) is not None) is alive


def _logout(sessions: SessionTable, sid: str, now: datetime) -> None:
    assert sessions.close(sid)


def _timeout_on_heartbeat(sessions: SessionTable, sid: str, now: datetime) -> None:
    assert sessions.touch(sid, now + timedelta(seconds=91)) is None


def _timeout_on_sweep(sessions: SessionTable, sid: str, now: datetime) -> None:
    assert sessions.expire(now + timedelta(seconds=91)) == 1


ENDINGS = [
    pytest.param(_logout, id="logged-out"),
    pytest.param(_timeout_on_heartbeat, id="timed-out-at-heartbeat"),
    pytest.param(_timeout_on_sweep, id="timed-out-by-sweep"),
]


@pytest.mark.parametrize("end", ENDINGS)
def test_an_ended_session_stays_gone_in_this_run(
    end: Callable[[SessionTable, str, datetime], None],
) -> None:
    sessions = table()
    sid = sessions.open("alice", later(1), 5)
    end(sessions, sid, later(2))

    for seconds in (94, 95, 300, 86_400):
        assert sessions.touch(sid, later(seconds)) is None
    assert sessions.close(sid) is False
    assert len(sessions) == 0


def test_expire_drops_only_stale_sessions() -> None:
    sessions = table()
    fresh = sessions.open("alice", later(0), 6)
    stale = sessions.open("bob", later(0), 6)
    sessions.touch(fresh, later(60))

    assert sessions.expire(later(91)) == 1
    assert sessions.touch(fresh, later(91)) is not None
    assert sessions.touch(stale, later(91)) is None
    assert sessions.expire(later(91)) == 0


@pytest.mark.parametrize("release", [5, 6], ids=["5.x", "6.x"])
def test_session_from_an_earlier_run_is_resumed(release: int) -> None:
    first_run = table()
    sid = first_run.open("alice", later(10), release)
    second_run = table()

    resumed = second_run.touch(sid, later(5, RESTART))

    assert resumed == Session("alice", later(5, RESTART), release, first_run.run)
    assert len(second_run) == 1
    assert second_run.touch(sid, later(35, RESTART)) is not None
    assert second_run.release_of(sid) == release


def test_session_from_an_earlier_run_times_out_like_any_other() -> None:
    sid = table().open("alice", later(10), 6)
    second_run = table()
    assert second_run.touch(sid, later(5, RESTART)) is not None

    assert second_run.touch(sid, later(200, RESTART)) is None


@pytest.mark.parametrize("end", ENDINGS)
def test_a_resumed_session_that_ended_stays_gone(
    end: Callable[[SessionTable, str, datetime], None],
) -> None:
    sid = table().open("alice", later(10), 6)
    second_run = table()
    assert second_run.touch(sid, later(5, RESTART)) is not None

    end(second_run, sid, later(5, RESTART))

    assert second_run.touch(sid, later(100, RESTART)) is None
    assert second_run.touch(sid, later(101, RESTART)) is None


def test_session_opened_at_the_start_of_a_run_belongs_to_that_run() -> None:
    sessions = table()
    sid = sessions.open("alice", START, 6)
    assert sessions.close(sid)
    assert sessions.touch(sid, later(1)) is None


@pytest.mark.parametrize("microseconds", [1, 500, 999], ids=["1us", "500us", "999us"])
def test_session_opened_in_the_first_millisecond_belongs_to_that_run(microseconds: int) -> None:
    # Runs are told apart by an id, not by time: no clock edge can mix them up.
    started = START + timedelta(microseconds=microseconds)
    sessions = table()
    sid = sessions.open("alice", started, 6)
    assert sessions.close(sid)

    assert sessions.touch(sid, later(1)) is None


def test_a_different_secret_does_not_resume() -> None:
    sid = table().open("alice", later(10), 6)
    other = table(secret=b"another secret, another server!!")

    assert other.touch(sid, later(5, RESTART)) is None
    assert other.release_of(sid) is None
    assert len(other) == 0


def _flip(sid: str, index: int) -> str:
    ch = sid[index]
    replacement = "A" if ch != "A" else "B"
    return sid[:index] + replacement + sid[index + 1 :]


def _swap_payload(sid: str, donor: str) -> str:
    prefix, _, mac = sid.split(".")
    return f"{prefix}.{donor.split('.')[1]}.{mac}"


ALTERED = [
    pytest.param(lambda sid, donor: "", id="empty"),
    pytest.param(lambda sid, donor: "not a session", id="garbage"),
    pytest.param(lambda sid, donor: "s2.x.y", id="three-short-parts"),
    pytest.param(lambda sid, donor: "s1" + sid[2:], id="other-prefix"),
    pytest.param(lambda sid, donor: sid + ".x", id="four-parts"),
    pytest.param(lambda sid, donor: sid.rsplit(".", 1)[0], id="no-mac"),
    pytest.param(lambda sid, donor: sid[:-1], id="mac-truncated"),
    pytest.param(lambda sid, donor: _flip(sid, -1), id="mac-last-char"),
    pytest.param(lambda sid, donor: _flip(sid, len(sid) - 24), id="mac-first-char"),
    pytest.param(lambda sid, donor: _flip(sid, 5), id="payload-char"),
    pytest.param(lambda sid, donor: _swap_payload(sid, donor), id="payload-of-another"),
    pytest.param(lambda sid, donor: sid + "A" * 2048, id="oversized"),
    pytest.param(lambda sid, donor: sid.upper(), id="upper-cased"),
]


@pytest.mark.parametrize("alter", ALTERED)
def test_forged_or_altered_ids_are_refused(alter: Callable[[str, str], str]) -> None:
    first_run = table()
    sid = first_run.open("alice", later(10), 6)
    donor = first_run.open("mallory-admin", later(10), 6)
    forged = alter(sid, donor)
    assert forged != sid
    # After a restart a genuine id would be resumed, so only the signature refuses these.
    second_run = table()

    assert second_run.touch(forged, later(5, RESTART)) is None
    assert second_run.release_of(forged) is None
    assert first_run.touch(forged, later(11)) is None
    assert len(second_run) == 0


@pytest.mark.parametrize(
    "mask",
    [
        pytest.param(0x01, id="xor-0x01"),
        pytest.param(0x80, id="xor-0x80"),
        pytest.param(0xFF, id="xor-0xff"),
    ],
)
def test_every_single_byte_change_of_an_id_is_refused(mask: int) -> None:
    sid = table().open("alice", later(10), 6)
    second_run = table()
    accepted: list[int] = []
    crashed: list[tuple[int, str]] = []

    for position in range(len(sid)):
        damaged = bytearray(sid.encode("ascii"))
        damaged[position] ^= mask
        text = bytes(damaged).decode("latin-1")
        try:
            if second_run.touch(text, later(5, RESTART)) is not None:
                accepted.append(position)
        except Exception as exc:  # a heartbeat with a bad id must be refused, not crash
            crashed.append((position, type(exc).__name__))

    assert accepted == []
    assert crashed == []
    assert second_run.touch(sid, later(6, RESTART)) is not None


@pytest.mark.parametrize(
    "text",
    ["s2.\u00e9t\u00e9.x", "s2.e30.\u00e9", "s2.\u2603.\u2603"],
    ids=["payload-non-ascii", "mac-non-ascii", "both-non-ascii"],
)
def test_non_ascii_session_id_is_refused(text: str) -> None:
    sessions = table()
    assert sessions.touch(text, later(1)) is None
    assert sessions.release_of(text) is None


class _Scan:
    """What a session table answers, written the plain way: every expiry looks at every
    session. The table must answer the same, whatever order it keeps them in. Sessions of
    an earlier run are resumed at their first heartbeat, unless they ended in this run."""

    def __init__(self, earlier: Iterable[str] = ()) -> None:
        self.seen: dict[str, datetime] = {}
        self.sweep_due = datetime.min.replace(tzinfo=START.tzinfo)
        self.earlier = set(earlier)
        self.ended: set[str] = set()

    def _stale_before(self, now: datetime) -> datetime:
        return now - INTERVAL * MISSED_HEARTBEATS

    def _end(self, sid: str) -> bool:
        if sid in self.earlier:
            self.ended.add(sid)
        return self.seen.pop(sid, None) is not None

    def expire(self, now: datetime) -> int:
        stale = [sid for sid, seen in self.seen.items() if seen < self._stale_before(now)]
        for sid in stale:
            self._end(sid)
        return len(stale)

    def sweep(self, now: datetime) -> None:
        if now >= self.sweep_due:
            self.sweep_due = now + INTERVAL
            self.expire(now)

    def touch(self, sid: str, now: datetime) -> bool:
        self.sweep(now)
        seen = self.seen.get(sid)
        if seen is None:
            if sid not in self.earlier or sid in self.ended:
                return False
        elif seen < self._stale_before(now):
            self._end(sid)
            return False
        self.seen[sid] = now
        return True

    def close(self, sid: str) -> bool:
        return self._end(sid)


# (what, which session, seconds the clock moves first: mostly forward, sometimes back)
_steps = st.lists(
    st.tuples(
        st.sampled_from(["open", "touch", "touch", "close", "live", "expire"]),
        st.integers(0, 5),
        st.sampled_from([0, 5, 10, 20, 30, 45, 60, 100, -5, -60, -200]),
    ),
    max_size=80,
)


@given(steps=_steps)
# A heartbeat, then a session opened before it goes stale behind it; and the clock back.
@example(steps=[("open", 0, 0), ("open", 1, 10), ("touch", 0, 50), ("live", 0, 45)])
@example(steps=[("open", 0, 0), ("open", 1, 60), ("touch", 0, -60), ("live", 0, 100)])
# A session of the earlier run resumed after the clock went back, behind a newer one.
@example(steps=[("open", 0, 0), ("touch", 3, 20), ("touch", 0, -200), ("live", 0, 200)])
@settings(max_examples=300, deadline=None)
def test_sessions_end_as_a_full_scan_says_whatever_the_clock_does(
    steps: list[tuple[str, int, int]],
) -> None:
    # Three sessions an earlier run of the same server handed out, an hour before.
    before = table()
    ids = [before.open(f"earlier{i}", START - timedelta(hours=1), 5) for i in range(3)]
    sessions, scan = table(), _Scan(ids)
    now = START
    for what, which, seconds in steps:
        now += timedelta(seconds=seconds)
        sid = ids[which % len(ids)]
        if what == "open":
            scan.sweep(now)
            ids.append(sessions.open(f"user{which}", now, 6))
            scan.seen[ids[-1]] = now
        elif what == "touch":
            assert (sessions.touch(sid, now) is not None) is scan.touch(sid, now)
        elif what == "close":
            assert sessions.close(sid) is scan.close(sid)
        elif what == "live":
            scan.expire(now)
            assert sessions.live(now) == len(scan.seen)
        else:
            assert sessions.expire(now) == scan.expire(now)
        assert len(sessions) == len(scan.seen)
