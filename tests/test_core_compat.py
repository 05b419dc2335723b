"""What each client release is sent: only deny reasons it defines."""

from __future__ import annotations

import pytest

from officestatus.wire import DenyReason
from officestatus_server.core.compat import CAPABILITIES, KNOWN_REASONS, reason_for
from officestatus_server.core.versions import Release

ALL_PAIRS = [
    pytest.param(release, reason, id=f"{release.name}-{reason.name}")
    for release in Release
    for reason in DenyReason
]


@pytest.mark.parametrize(("release", "reason"), ALL_PAIRS)
def test_every_release_only_gets_reasons_it_defines(release: Release, reason: DenyReason) -> None:
    sent = reason_for(release, reason)

    assert sent in KNOWN_REASONS[release]
    if release is Release.V3:
        assert sent is DenyReason.UNSPECIFIED
    if release in (Release.V4, Release.V5):
        assert sent <= 4
    if release is Release.V6:
        assert sent is reason


def test_known_reasons_cover_every_release() -> None:
    assert set(KNOWN_REASONS) == set(Release)
    assert KNOWN_REASONS[Release.V6] == frozenset(DenyReason)


SHAPED = [
    pytest.param(
        Release.V3, DenyReason.USER_DISABLED, DenyReason.UNSPECIFIED, id="3.x-reads-no-reason"
    ),
    pytest.param(
        Release.V3, DenyReason.OVER_CAPACITY, DenyReason.UNSPECIFIED, id="3.x-over-capacity"
    ),
    pytest.param(
        Release.V4, DenyReason.USER_UNKNOWN, DenyReason.USER_UNKNOWN, id="4.x-unknown-as-is"
    ),
    pytest.param(
        Release.V4, DenyReason.USER_DISABLED, DenyReason.USER_DISABLED, id="4.x-disabled-as-is"
    ),
    pytest.param(
        Release.V4, DenyReason.NOT_LICENSED, DenyReason.NOT_LICENSED, id="4.x-unlicensed-as-is"
    ),
    pytest.param(
        Release.V4,
        DenyReason.EVALUATION_EXPIRED,
        DenyReason.EVALUATION_EXPIRED,
        id="4.x-expired-as-is",
    ),
    pytest.param(
        Release.V4, DenyReason.OVER_CAPACITY, DenyReason.NOT_LICENSED, id="4.x-over-capacity"
    ),
    pytest.param(
        Release.V5, DenyReason.OVER_CAPACITY, DenyReason.NOT_LICENSED, id="5.x-over-capacity"
    ),
    pytest.param(
        Release.V4, DenyReason.SESSION_ENDED, DenyReason.UNSPECIFIED, id="4.x-session-ended"
    ),
    pytest.param(
        Release.V5, DenyReason.SESSION_ENDED, DenyReason.UNSPECIFIED, id="5.x-session-ended"
    ),
    pytest.param(
        Release.V6, DenyReason.OVER_CAPACITY, DenyReason.OVER_CAPACITY, id="6.x-over-capacity"
    ),
    pytest.param(
        Release.V6, DenyReason.SESSION_ENDED, DenyReason.SESSION_ENDED, id="6.x-session-ended"
    ),
]


@pytest.mark.parametrize(("release", "reason", "sent"), SHAPED)
def test_reason_for(release: Release, reason: DenyReason, sent: DenyReason) -> None:
    assert reason_for(release, reason) is sent


def test_deny_numbers_are_the_wire_values() -> None:
    assert [(d.name, int(d)) for d in DenyReason] == [
        ("UNSPECIFIED", 0),
        ("USER_UNKNOWN", 1),
        ("USER_DISABLED", 2),
        ("NOT_LICENSED", 3),
        ("EVALUATION_EXPIRED", 4),
        ("OVER_CAPACITY", 5),
        ("SESSION_ENDED", 6),
    ]


def test_capabilities_offered() -> None:
    assert CAPABILITIES == ("license-info", "sessions", "over-capacity-reason")
