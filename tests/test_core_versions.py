"""Version numbers, and which client release a client's version string is served as."""

from __future__ import annotations

import pytest

from officestatus_server.core.versions import (
    MINIMUM_CLIENT_VERSION,
    NEWEST_RELEASE,
    OLDEST_RELEASE,
    SERVER_MAJOR,
    SERVER_VERSION,
    Release,
    Version,
    client_release,
)
from officestatus_server.errors import PreconditionFailed

RELEASES = [
    pytest.param("", Release.V3, id="no-version"),
    pytest.param("   ", Release.V3, id="blank-version"),
    pytest.param("3", Release.V3, id="3"),
    pytest.param("3.0", Release.V3, id="3.0"),
    pytest.param("3.4.2", Release.V3, id="3.4.2"),
    pytest.param("4.0", Release.V4, id="4.0"),
    pytest.param("4.9", Release.V4, id="4.9"),
    pytest.param("5.0.1", Release.V5, id="5.0.1"),
    pytest.param("5.12.0-rc1", Release.V5, id="5.12.0-rc1"),
    pytest.param("6.0.0", Release.V6, id="6.0.0"),
    pytest.param(" 6.0.0 ", Release.V6, id="6.0.0-with-blanks"),
    pytest.param("6.1.0+build.7", Release.V6, id="6.1.0+build"),
    pytest.param("6.0.0.1234", Release.V6, id="6.0.0.1234-windows-file-version"),
    pytest.param("7.1", Release.V6, id="7.1-newer-than-server"),
    pytest.param("12.0", Release.V6, id="12.0"),
]


@pytest.mark.parametrize(("text", "release"), RELEASES)
def test_client_release(text: str, release: Release) -> None:
    assert client_release(text) is release


REFUSED = [
    pytest.param("2.9", "CLIENT_TOO_OLD", id="2.9"),
    pytest.param("2.99.99", "CLIENT_TOO_OLD", id="2.99.99"),
    pytest.param("0.1", "CLIENT_TOO_OLD", id="0.1"),
    pytest.param("0", "CLIENT_TOO_OLD", id="0"),
    pytest.param("abc", "CLIENT_VERSION_INVALID", id="abc"),
    pytest.param("v6.0", "CLIENT_VERSION_INVALID", id="v-prefix"),
    pytest.param("6,0", "CLIENT_VERSION_INVALID", id="comma"),
    pytest.param("-6", "CLIENT_VERSION_INVALID", id="negative"),
    pytest.param("12345.0", "CLIENT_VERSION_INVALID", id="five-digit-major"),
    pytest.param("6." + "x" * 60, "CLIENT_VERSION_INVALID", id="overlong-suffix"),
]


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_client_release_refuses(text: str, reason: str) -> None:
    with pytest.raises(PreconditionFailed) as caught:
        client_release(text)

    assert caught.value.reason == reason
    assert "3.0 or later" in caught.value.message


UNREADABLE = [
    pytest.param("3.x", id="3.x"),
    pytest.param("3.0.x", id="3.0.x"),
    pytest.param("6..", id="6-dot-dot"),
    pytest.param("3.0-", id="dangling-dash"),
    pytest.param("\u0666.\u0660", id="arabic-indic-digits"),
]


@pytest.mark.parametrize("text", UNREADABLE)
def test_client_release_refuses_unreadable_versions(text: str) -> None:
    with pytest.raises(PreconditionFailed) as caught:
        client_release(text)
    assert caught.value.reason in {"CLIENT_VERSION_INVALID", "CLIENT_TOO_OLD"}


def test_too_old_message_names_both_versions() -> None:
    with pytest.raises(PreconditionFailed) as caught:
        client_release("2.9")
    assert "client 2.9.0 is too old" in caught.value.message
    assert f"license server {SERVER_VERSION}" in caught.value.message


PARSED = [
    pytest.param("6", Version(6), id="major"),
    pytest.param("6.1", Version(6, 1), id="major-minor"),
    pytest.param("6.1.2", Version(6, 1, 2), id="full"),
    pytest.param("6.1.2-beta", Version(6, 1, 2), id="suffix"),
    pytest.param("0006.0010.0002", Version(6, 10, 2), id="leading-zeros"),
]


@pytest.mark.parametrize(("text", "version"), PARSED)
def test_version_parse(text: str, version: Version) -> None:
    assert Version.parse(text) == version


@pytest.mark.parametrize("text", ["", "six", "6.1.2.3.4.5" + "!" * 3, "1.2.3 4"])
def test_version_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a version number"):
        Version.parse(text)


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        (Version(2, 9, 9), Version(3)),
        (Version(3, 0, 1), Version(3, 1)),
        (Version(5, 10), Version(6)),
        (Version(6, 0, 9), Version(6, 0, 10)),
    ],
    ids=["2.9.9<3", "3.0.1<3.1", "5.10<6", "6.0.9<6.0.10"],
)
def test_versions_order_numerically(lower: Version, higher: Version) -> None:
    assert lower < higher


def test_server_and_client_limits() -> None:
    assert (str(SERVER_VERSION), SERVER_MAJOR) == ("6.0.0", 6)
    assert str(MINIMUM_CLIENT_VERSION) == "3.0.0"
    assert (OLDEST_RELEASE, NEWEST_RELEASE) == (Release.V3, Release.V6)


CAPABILITIES = [
    pytest.param(Release.V3, (False, False, False, False), id="3.x"),
    pytest.param(Release.V4, (True, False, False, False), id="4.x"),
    pytest.param(Release.V5, (True, True, True, False), id="5.x"),
    pytest.param(Release.V6, (True, True, True, True), id="6.x"),
]


@pytest.mark.parametrize(("release", "has"), CAPABILITIES)
def test_release_capabilities(release: Release, has: tuple[bool, bool, bool, bool]) -> None:
    assert (
        release.has_deny_reason,
        release.has_sessions,
        release.has_major_version,
        release.has_license_info,
    ) == has
