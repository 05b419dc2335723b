"""Client sessions: signed ids, heartbeats, expiry on the monotonic clock, bounds, and
resuming after a restart."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from officestatus_server.core.sessions import (
    MISSED_HEARTBEATS,
    EarlierRuns,
    Ended,
    Session,
    SessionFlush,
    SessionTable,
)

SECRET = b"0123456789abcdef0123456789abcdef"
INTERVAL = 30.0
# Monotonic seconds: a run starts at START, the next at RESTART.
START = 1000.0
RESTART = START + 7200.0


class Disk:
    """What storage keeps of the sessions, written as the SQLite store writes it."""

    def __init__(self) -> None:
        self.live: dict[str, str] = {}
        self.runs: dict[str, int] = {}

    def save(self, flush: SessionFlush) -> None:
        for sid in flush.ended:
            self.live.pop(sid, None)
        for sid in flush.opened:
            self.live[sid] = flush.run
        if flush.forget_earlier:
            self.live = {s: r for s, r in self.live.items() if r == flush.run}
            self.runs = {r: e for r, e in self.runs.items() if r == flush.run}
        self.runs[flush.run] = flush.epoch

    def earlier(self) -> EarlierRuns:
        return EarlierRuns(frozenset(self.live), dict(self.runs), unrecorded=not self.runs)


def table(
    secret: bytes = SECRET,
    *,
    started: float = START,
    disk: Disk | None = None,
    shared: bool = False,
    **bounds: int,
) -> SessionTable:
    """A new server run's session table; on record on `disk` (if any), as a start does."""
    sessions = SessionTable(
        secret,
        INTERVAL,
        started=started,
        earlier=disk.earlier() if disk is not None else None,
        shared=shared,
        **bounds,
    )
    if disk is not None:
        disk.save(sessions.take_flush())
    return sessions


def restarted(
    disk: Disk, before: SessionTable | None = None, started: float = RESTART
) -> SessionTable:
    """The next run: after a clean stop of `before` (its last batch written), or a crash."""
    if before is not None:
        disk.save(before.take_flush())
    return table(started=started, disk=disk)


def later(seconds: float = 0, base: float = START) -> float:
    return base + seconds


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
    ids = {sessions.open(f"user{i}", later(1), 6) for i in range(50)}
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
    assert INTERVAL * MISSED_HEARTBEATS == 90
    sessions = table()
    now = later(1)
    sid = sessions.open("alice", now, 6)
    result: Session | None = None

    for gap in gaps:
        now += gap
        result = sessions.touch(sid, now)

    assert (result is not None) is alive
    assert (len(sessions) == 1) is alive
    # Once gone, gone: even an immediate heartbeat is refused.
    assert (sessions.touch(sid, now + 1) is not None) is alive


def _logout(sessions: SessionTable, sid: str, now: float) -> None:
    assert sessions.close(sid)


def _timeout_on_heartbeat(sessions: SessionTable, sid: str, now: float) -> None:
    assert sessions.touch(sid, now + 91) is None


def _timeout_on_sweep(sessions: SessionTable, sid: str, now: float) -> None:
    assert sessions.expire(now + 91) == 1


ENDINGS = [
    pytest.param(_logout, id="logged-out"),
    pytest.param(_timeout_on_heartbeat, id="timed-out-at-heartbeat"),
    pytest.param(_timeout_on_sweep, id="timed-out-by-sweep"),
]


@pytest.mark.parametrize("end", ENDINGS)
def test_an_ended_session_stays_gone_in_this_run(
    end: Callable[[SessionTable, str, float], None],
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


@pytest.mark.parametrize("crash", [False, True], ids=["clean-stop", "crash"])
@pytest.mark.parametrize("release", [5, 6], ids=["5.x", "6.x"])
def test_session_from_an_earlier_run_is_resumed(release: int, crash: bool) -> None:
    disk = Disk()
    first_run = table(disk=disk)
    sid = first_run.open("alice", later(10), release)
    # A crash: the batch with this login was never written; the id names a later batch.
    second_run = restarted(disk, None if crash else first_run)

    resumed = second_run.touch(sid, later(5, RESTART))

    assert resumed == Session("alice", later(5, RESTART), release, first_run.run)
    assert len(second_run) == 1
    assert second_run.touch(sid, later(35, RESTART)) is not None
    assert second_run.release_of(sid) == release


def test_session_from_an_earlier_run_times_out_like_any_other() -> None:
    disk = Disk()
    first_run = table(disk=disk)
    sid = first_run.open("alice", later(10), 6)
    second_run = restarted(disk, first_run)
    assert second_run.touch(sid, later(5, RESTART)) is not None

    assert second_run.touch(sid, later(200, RESTART)) is None


@pytest.mark.parametrize("end", ENDINGS)
def test_a_resumed_session_that_ended_stays_gone(
    end: Callable[[SessionTable, str, float], None],
) -> None:
    disk = Disk()
    first_run = table(disk=disk)
    sid = first_run.open("alice", later(10), 6)
    second_run = restarted(disk, first_run)
    assert second_run.touch(sid, later(5, RESTART)) is not None

    end(second_run, sid, later(5, RESTART))

    assert second_run.touch(sid, later(100, RESTART)) is None
    assert second_run.touch(sid, later(101, RESTART)) is None
    # Nor in the run after that.
    third_run = restarted(disk, second_run, started=later(200, RESTART))
    assert third_run.touch(sid, later(201, RESTART)) is None


@pytest.mark.parametrize("crash", [False, True], ids=["clean-stop", "crash-a-batch-later"])
@pytest.mark.parametrize("end", ENDINGS)
def test_a_session_that_ended_stays_ended_after_a_restart(
    end: Callable[[SessionTable, str, float], None], crash: bool
) -> None:
    """Logged out or timed out, then the server restarts (cleanly, or crashes once the
    batch with the ending was written): the old id is refused, a live one resumed."""
    disk = Disk()
    first_run = table(disk=disk)
    ended = first_run.open("alice", later(1), 6)
    live = first_run.open("bob", later(1), 6)
    disk.save(first_run.take_flush())
    first_run.touch(live, later(60))
    end(first_run, ended, later(2))
    disk.save(first_run.take_flush())

    second_run = restarted(disk, None if crash else first_run)

    assert second_run.touch(ended, later(5, RESTART)) is None
    assert second_run.touch(live, later(5, RESTART)) is not None
    assert len(second_run) == 1


def test_what_a_crash_loses_is_a_logout_after_the_last_batch() -> None:
    """The documented loss: a logout after the last batch was written, before a crash,
    is not known to the next run."""
    disk = Disk()
    first_run = table(disk=disk)
    sid = first_run.open("alice", later(1), 6)
    disk.save(first_run.take_flush())
    assert first_run.close(sid)

    second_run = restarted(disk)  # crashed: the logout's batch was never written

    assert second_run.touch(sid, later(5, RESTART)) is not None


def test_earlier_runs_are_forgotten_once_their_sessions_had_to_heartbeat() -> None:
    """After MISSED_HEARTBEATS intervals a new run resumes nothing of earlier runs, and
    what is stored of them goes: the record stays bounded."""
    disk = Disk()
    first_run = table(disk=disk)
    kept = first_run.open("alice", later(1), 6)
    late = first_run.open("bob", later(1), 6)
    second_run = restarted(disk, first_run)
    assert second_run.touch(kept, later(60, RESTART)) is not None

    second_run.live(later(91, RESTART))  # the window has closed
    disk.save(second_run.take_flush())

    assert second_run.touch(late, later(92, RESTART)) is None
    assert set(disk.live) == {kept}
    assert set(disk.runs) == {second_run.run}


def test_a_run_never_recorded_resumes_only_before_the_record_began() -> None:
    """A server upgraded to one that keeps the record resumes its predecessor's sessions
    once (nothing was on record); an id of a run not on record later is refused."""
    old = table()  # issued without any record
    sid = old.open("alice", later(1), 6)
    other = old.open("bob", later(1), 6)
    disk = Disk()
    first_recorded = table(started=RESTART, disk=disk)
    assert first_recorded.touch(sid, later(5, RESTART)) is not None

    next_run = restarted(disk, first_recorded)

    assert next_run.touch(sid, later(6, RESTART)) is not None
    assert next_run.touch(other, later(6, RESTART)) is None


def test_a_failed_batch_goes_into_the_next() -> None:
    disk = Disk()
    first_run = table(disk=disk)
    sid = first_run.open("alice", later(1), 6)
    ended = first_run.open("bob", later(1), 6)
    disk.save(first_run.take_flush())
    first_run.close(ended)
    kept = first_run.open("carol", later(2), 6)
    first_run.flush_failed(first_run.take_flush())  # the disk refused it

    second_run = restarted(disk, first_run)

    assert second_run.touch(sid, later(5, RESTART)) is not None
    assert second_run.touch(kept, later(5, RESTART)) is not None
    assert second_run.touch(ended, later(5, RESTART)) is None


def test_logins_do_not_pile_up_in_the_batch() -> None:
    """A session opened and ended between two batches is never written at all."""
    sessions = table(disk=Disk())
    for _ in range(100):
        assert sessions.close(sessions.open("alice", later(1), 6))
    flush = sessions.take_flush()
    assert (flush.opened, flush.ended) == ((), ())


def test_session_opened_at_the_start_of_a_run_belongs_to_that_run() -> None:
    sessions = table()
    sid = sessions.open("alice", START, 6)
    assert sessions.close(sid)
    assert sessions.touch(sid, later(1)) is None


@pytest.mark.parametrize("microseconds", [1, 500, 999], ids=["1us", "500us", "999us"])
def test_session_opened_in_the_first_millisecond_belongs_to_that_run(microseconds: int) -> None:
    # Runs are told apart by an id, not by time: no clock edge can mix them up.
    started = START + microseconds / 1e6
    sessions = table()
    sid = sessions.open("alice", started, 6)
    assert sessions.close(sid)

    assert sessions.touch(sid, later(1)) is None


def test_a_different_secret_does_not_resume() -> None:
    sid = table().open("alice", later(10), 6)
    other = table(secret=b"another secret, another server!!", started=RESTART)

    assert other.touch(sid, later(5, RESTART)) is None
    assert other.release_of(sid) is None
    assert len(other) == 0


# --- bounds -------------------------------------------------------------------------------


def test_a_users_further_login_ends_that_users_oldest_session() -> None:
    sessions = table(max_per_user=3)
    first, second, third = (sessions.open("alice", later(i), 6) for i in range(3))
    bob = sessions.open("bob", later(3), 6)
    sessions.touch(first, later(4))  # seen most recently, still the oldest login

    fourth = sessions.open("alice", later(5), 6)

    assert sessions.touch(first, later(6)) is None
    notice = sessions.ended_because(first)
    assert notice is not None
    assert (notice.why, notice.user_key) == (Ended.USER_LIMIT, "alice")
    assert all(sessions.touch(s, later(6)) is not None for s in (second, third, fourth, bob))
    assert len(sessions) == 4


def test_the_total_bound_ends_the_least_recently_seen_session() -> None:
    sessions = table(max_total=3)
    a, b, c = (sessions.open(f"user{i}", later(i), 6) for i in range(3))
    sessions.touch(a, later(10))

    d = sessions.open("user3", later(11), 6)

    assert sessions.touch(b, later(12)) is None
    notice = sessions.ended_because(b)
    assert notice is not None
    assert notice.why is Ended.TOTAL_LIMIT
    assert all(sessions.touch(s, later(12)) is not None for s in (a, c, d))
    assert sessions.ended_because(a) is None


def test_endless_logins_stay_within_the_bounds() -> None:
    sessions = table(max_per_user=10, max_total=100)
    alice_ids = []
    for i in range(5_000):
        alice_ids.append(sessions.open("alice", later(i / 100), 6))
        sessions.open(f"user{i}", later(i / 100), 6)
    assert len(sessions) == 100
    alice = [sessions.touch(s, later(51)) for s in alice_ids[-10:]]
    assert all(alice)
    assert sessions.touch(alice_ids[-11], later(51)) is None


def test_the_notice_is_forgotten_once_the_session_would_have_expired() -> None:
    sessions = table(max_per_user=1)
    first = sessions.open("alice", later(0), 6)
    sessions.open("alice", later(1), 6)
    assert sessions.ended_because(first) is not None

    sessions.expire(later(200))

    assert sessions.ended_because(first) is None
    assert sessions.touch(first, later(201)) is None


def test_a_resumed_session_counts_against_the_bounds() -> None:
    disk = Disk()
    first_run = table(disk=disk)
    old = first_run.open("alice", later(1), 6)
    disk.save(first_run.take_flush())
    second_run = SessionTable(
        SECRET, INTERVAL, started=RESTART, earlier=disk.earlier(), max_per_user=1
    )
    new = second_run.open("alice", later(1, RESTART), 6)

    assert second_run.touch(old, later(2, RESTART)) is not None
    assert second_run.touch(new, later(3, RESTART)) is None
    assert len(second_run) == 1


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
    second_run = table(started=RESTART)

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
    second_run = table(started=RESTART)
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
    an earlier run are resumed at their first heartbeat within MISSED_HEARTBEATS intervals
    of the start, unless they ended in this run."""

    def __init__(self, earlier: Iterable[str] = ()) -> None:
        self.seen: dict[str, float] = {}
        self.sweep_due = float("-inf")
        self.earlier = set(earlier)
        self.ended: set[str] = set()

    def _stale_before(self, now: float) -> float:
        return now - INTERVAL * MISSED_HEARTBEATS

    def _end(self, sid: str) -> bool:
        if sid in self.earlier:
            self.ended.add(sid)
        return self.seen.pop(sid, None) is not None

    def expire(self, now: float) -> int:
        stale = [sid for sid, seen in self.seen.items() if seen < self._stale_before(now)]
        for sid in stale:
            self._end(sid)
        return len(stale)

    def sweep(self, now: float) -> None:
        if now >= self.sweep_due:
            self.sweep_due = now + INTERVAL
            self.expire(now)

    def touch(self, sid: str, now: float) -> bool:
        self.sweep(now)
        seen = self.seen.get(sid)
        if seen is None:
            if sid not in self.earlier or sid in self.ended:
                return False
            if now > START + INTERVAL * MISSED_HEARTBEATS:
                return False
        elif seen < self._stale_before(now):
            self._end(sid)
            return False
        self.seen[sid] = now
        return True

    def close(self, sid: str) -> bool:
        return self._end(sid)


# (what, which session, seconds the monotonic clock moves first)
_steps = st.lists(
    st.tuples(
        st.sampled_from(["open", "touch", "touch", "close", "live", "expire"]),
        st.integers(0, 5),
        st.sampled_from([0, 5, 10, 20, 30, 45, 60, 100]),
    ),
    max_size=80,
)


@given(steps=_steps)
# A heartbeat, then a session opened before it goes stale behind it.
@example(steps=[("open", 0, 0), ("open", 1, 10), ("touch", 0, 50), ("live", 0, 45)])
@example(steps=[("open", 0, 0), ("open", 1, 60), ("touch", 0, 20), ("live", 0, 100)])
# A session of the earlier run resumed behind a newer one.
@example(steps=[("open", 0, 0), ("touch", 3, 20), ("touch", 0, 0), ("live", 0, 200)])
# An earlier run's session heartbeating first just before, then just after, the window.
@example(steps=[("touch", 0, 90), ("touch", 1, 1)])
@settings(max_examples=300, deadline=None)
def test_sessions_end_as_a_full_scan_says(
    steps: list[tuple[str, int, int]],
) -> None:
    # Three sessions an earlier run of the same server handed out, an hour before.
    before = table()
    ids = [before.open(f"earlier{i}", START - 3600, 5) for i in range(3)]
    sessions, scan = table(), _Scan(ids)
    now = START
    for what, which, seconds in steps:
        now += seconds
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


def test_live_sessions_are_counted_by_release_as_they_open_and_end() -> None:
    sessions = table(max_per_user=1)
    five = sessions.open("alice", later(1), 5)
    sessions.open("bob", later(2), 6)
    sessions.open("carol", later(3), 6)
    assert sessions.live_by_release(later(4)) == {5: 1, 6: 2}
    sessions.close(five)
    # carol's second login ends her first session: one 6.x session still.
    sessions.open("carol", later(5), 6)
    assert sessions.live_by_release(later(6)) == {6: 2}
    # Every session missed its heartbeats: none left, and no release listed.
    assert sessions.live_by_release(later(INTERVAL * MISSED_HEARTBEATS + 10)) == {}


# --- several servers over one database (shared) ------------------------------------------


def test_a_shared_server_honours_another_servers_session_long_after_its_start() -> None:
    a, b = table(shared=True), table(shared=True)
    sid = a.open("alice", later(1), 5)
    # Server A dies an hour later: its client moves to B, long past any resume window.
    moved = b.touch(sid, later(3600))
    assert moved is not None
    assert moved.user_key == "alice"
    assert b.touch(sid, later(3630)) is not None


def test_a_server_that_is_not_shared_does_not() -> None:
    a, b = table(), table()
    sid = a.open("alice", later(1), 5)
    assert b.touch(sid, later(3600)) is None


def test_a_logout_at_another_server_ends_the_session_here() -> None:
    a, b = table(shared=True), table(shared=True)
    sid = a.open("alice", later(1), 5)
    assert b.touch(sid, later(10)) is not None
    assert a.close(sid) is True
    assert b.ended_elsewhere([sid]) == 1
    assert b.touch(sid, later(20)) is None
    # Heard before the client ever came here: never resumed either.
    other = a.open("bob", later(21), 5)
    assert b.ended_elsewhere([other]) == 0
    assert b.touch(other, later(22)) is None


def test_a_session_ended_here_is_not_resumed_by_its_next_heartbeat() -> None:
    a, b = table(shared=True), table(shared=True)
    sid = a.open("alice", later(1), 5)
    assert b.touch(sid, later(10)) is not None
    assert b.close(sid) is True
    assert b.touch(sid, later(11)) is None
    expiring = a.open("bob", later(12), 5)
    assert b.touch(expiring, later(13)) is not None
    assert b.live(later(13 + INTERVAL * MISSED_HEARTBEATS + 1)) == 0
    assert b.touch(expiring, later(14 + INTERVAL * MISSED_HEARTBEATS)) is None


def test_a_forged_or_own_ended_id_is_refused_when_shared() -> None:
    a, b = table(shared=True), table(b"another secret, another install", shared=True)
    sid = a.open("alice", later(1), 5)
    assert b.touch(sid, later(2)) is None  # not signed with this installation's secret
    assert a.close(sid) is True
    assert a.touch(sid, later(3)) is None


def test_a_shared_server_remembers_at_most_max_total_ended_ids() -> None:
    a, b = table(shared=True), table(shared=True, max_total=3)
    ids = [a.open(f"user{i}", later(1), 5) for i in range(5)]
    b.ended_elsewhere(ids)
    # The oldest two are forgotten (and so honoured again); the newest three are not.
    assert [b.touch(sid, later(2)) is not None for sid in ids] == [True, True] + [False] * 3


def test_shared_servers_never_forget_the_other_servers_stored_sessions() -> None:
    disk = Disk()
    a = table(shared=True, disk=disk)
    sid = a.open("alice", later(1), 5)
    disk.save(a.take_flush())
    b = table(shared=True, disk=disk)
    b.live(later(INTERVAL * MISSED_HEARTBEATS * 10))
    disk.save(b.take_flush())
    assert sid in disk.live
