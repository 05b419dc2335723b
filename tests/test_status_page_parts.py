"""The status page's pure parts: the seats gauge, the wrong-token slowdown and the session
store, on a clock the test moves."""

from __future__ import annotations

from officestatus_server.http.gauge import gauge_state, gauge_svg
from officestatus_server.http.signin import (
    FORGET_SECONDS,
    MAX_ADDRESSES,
    MAX_WAIT,
    WrongTokens,
    delay_after,
)
from officestatus_server.http.web import MAX_SESSIONS, SESSION_SECONDS, Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_gauge_says_its_numbers_in_words_and_marks_near_full_and_over() -> None:
    cases = [
        ((0, 10, False), "ok", "0 of 10 seats used"),
        ((5, 10, False), "ok", "5 of 10 seats used"),
        ((9, 10, False), "near-full", "9 of 10 seats used"),
        ((10, 10, False), "full", "10 of 10 seats used"),
        ((12, 10, False), "over", "12 users enabled for 10 seats, 2 over capacity"),
        ((1, 0, False), "over", "1 user enabled for 0 seats, 1 over capacity"),
        ((0, 0, False), "ok", "0 of 0 seats used"),
        ((7, 0, True), "unlimited", "7 users enabled, no seat limit"),
    ]
    for (used, total, unlimited), level, title in cases:
        state = gauge_state(used, total, unlimited)
        assert (state.level, state.title) == (level, title)
        svg = gauge_svg(state)
        assert svg.startswith("<svg")
        assert svg.endswith("</svg>")
        assert f'<title id="gauge-title">{title}</title>' in svg
        assert "style=" not in svg
        # The filled arc only when something is used (and never past the half ring).
        assert ('class="gauge-used"' in svg) == (state.share > 0)
        assert 0.0 <= state.share <= 1.0


def test_wrong_tokens_space_out_the_tries_of_one_address() -> None:
    clock = Clock()
    tokens = WrongTokens(clock)
    assert tokens.wait("10.0.0.1") == 0.0
    tokens.wrong("10.0.0.1")
    # Two tries at once after one wrong token: the first waits 0.5 s, the next 1 s.
    assert tokens.wait("10.0.0.1") == delay_after(1) == 0.5
    assert tokens.wait("10.0.0.1") == 1.0
    # Another address is not slowed.
    assert tokens.wait("10.0.0.2") == 0.0
    for _ in range(10):
        tokens.wrong("10.0.0.1")
    assert delay_after(11) == 4.0
    # Tries sent at once queue up until one would wait beyond MAX_WAIT: refused unread.
    waits = []
    while (wait := tokens.wait("10.0.0.1")) is not None:
        waits.append(wait)
    assert max(waits) <= MAX_WAIT
    # Forgotten after a quiet while; a right token forgets at once.
    clock.now += FORGET_SECONDS + 1
    assert tokens.wait("10.0.0.1") == 0.0
    tokens.wrong("10.0.0.3")
    tokens.right("10.0.0.3")
    assert tokens.wait("10.0.0.3") == 0.0


def test_wrong_tokens_remember_a_bounded_number_of_addresses() -> None:
    tokens = WrongTokens(Clock())
    for i in range(MAX_ADDRESSES + 500):
        tokens.wrong(f"addr-{i}")
    assert len(tokens) == MAX_ADDRESSES


def test_sessions_expire_and_are_bounded() -> None:
    clock = Clock()
    sessions = Sessions(clock)
    first = sessions.create()
    assert sessions.get(first.session_id) is first
    assert first.session_id != first.csrf
    clock.now += SESSION_SECONDS - 1
    assert sessions.get(first.session_id) is first
    clock.now += 1
    assert sessions.get(first.session_id) is None
    made = [sessions.create() for _ in range(MAX_SESSIONS + 10)]
    assert len(sessions) == MAX_SESSIONS
    assert sessions.get(made[0].session_id) is None
    assert sessions.get(made[-1].session_id) is made[-1]
    sessions.drop(made[-1].session_id)
    assert sessions.get(made[-1].session_id) is None
    assert sessions.get("") is None
