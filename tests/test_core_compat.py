"""What each client release is sent: only deny reasons it defines."""

from __future__ import annotations

import pytest

from officestatus_server.core.compat import CAPABILITIES, KNOWN_REASONS, reason_for
from officestatus_server.core.model import Deny
from officestatus_server.core.versions import Release

ALL_PAIRS = [
    pytest.param(release, reason, id=f"{release.name}-{reason.name}")
    for release in Release
    for reason in Deny
]


@pytest.mark.parametrize(("release", "reason"), ALL_PAIRS)
def test_every_release_only_gets_reasons_it_defines(release: Release, reason: Deny) -> None:
    sent = reason_for(release, reason)

    assert sent in KNOWN_REASONS[release]
    if release is Release.V3:
        assert sent is Deny.NONE
    if release in (Release.V4, Release.V5):
        assert sent <= 4
    if release is Release.V6:
        assert sent is reason


def test_known_reasons_cover_every_release() -> None:
    assert set(KNOWN_REASONS) == set(Release)
    assert KNOWN_REASONS[Release.V6] == frozenset(Deny)


SHAPED = [
    pytest.param(Release.V3, Deny.USER_DISABLED, Deny.NONE, id="3.x-reads-no-reason"),
    pytest.param(Release.V3, Deny.OVER_CAPACITY, Deny.NONE, id="3.x-over-capacity"),
    pytest.param(Release.V4, Deny.USER_UNKNOWN, Deny.USER_UNKNOWN, id="4.x-unknown-as-is"),
    pytest.param(Release.V4, Deny.USER_DISABLED, Deny.USER_DISABLED, id="4.x-disabled-as-is"),
    pytest.param(Release.V4, Deny.NOT_LICENSED, Deny.NOT_LICENSED, id="4.x-unlicensed-as-is"),
    pytest.param(
        Release.V4, Deny.EVALUATION_EXPIRED, Deny.EVALUATION_EXPIRED, id="4.x-expired-as-is"
    ),
    pytest.param(Release.V4, Deny.OVER_CAPACITY, Deny.NOT_LICENSED, id="4.x-over-capacity"),
    pytest.param(Release.V5, Deny.OVER_CAPACITY, Deny.NOT_LICENSED, id="5.x-over-capacity"),
    pytest.param(Release.V4, Deny.SESSION_ENDED, Deny.NONE, id="4.x-session-ended"),
    pytest.param(Release.V5, Deny.SESSION_ENDED, Deny.NONE, id="5.x-session-ended"),
    pytest.param(Release.V6, Deny.OVER_CAPACITY, Deny.OVER_CAPACITY, id="6.x-over-capacity"),
    pytest.param(Release.V6, Deny.SESSION_ENDED, Deny.SESSION_ENDED, id="6.x-session-ended"),
]


@pytest.mark.parametrize(("release", "reason", "sent"), SHAPED)
def test_reason_for(release: Release, reason: Deny, sent: Deny) -> None:
    assert reason_for(release, reason) is sent


def test_deny_numbers_are_the_wire_values() -> None:
    assert [(d.name, int(d)) for d in Deny] == [
        ("NONE", 0),
        ("USER_UNKNOWN", 1),
        ("USER_DISABLED", 2),
        ("NOT_LICENSED", 3),
        ("EVALUATION_EXPIRED", 4),
        ("OVER_CAPACITY", 5),
        ("SESSION_ENDED", 6),
    ]


def test_capabilities_offered() -> None:
    assert CAPABILITIES == ("license-info", "sessions", "over-capacity-reason")
