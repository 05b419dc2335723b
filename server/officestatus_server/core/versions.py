"""Version numbers and which client releases this server speaks to."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import IntEnum

from officestatus_server import __version__
from officestatus_server.errors import PreconditionFailed

# major[.minor[.patch[.build]]][-suffix or +suffix]: ASCII digits only; a Windows file
# version ("6.0.0.1234") reads as 6.0.0.
_VERSION = re.compile(
    r"^(\d{1,4})(?:\.(\d{1,4}))?(?:\.(\d{1,4}))?(?:\.\d{1,9})?(?:[-+][0-9A-Za-z.+-]{1,40})?$",
    re.ASCII,
)


@dataclass(frozen=True, order=True)
class Version:
    """A release number, major.minor.patch."""

    major: int
    minor: int = 0
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse "6", "6.1", "6.1.2" or "6.1.2.345" (a "-beta" or "+build" suffix is
        allowed and ignored)."""
        match = _VERSION.match(text.strip())
        if match is None:
            raise ValueError(f"not a version number: {text[:40]!r}")
        major, minor, patch = (int(g) if g else 0 for g in match.groups())
        return cls(major, minor, patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


SERVER_VERSION = Version.parse(__version__)
SERVER_MAJOR = SERVER_VERSION.major
MINIMUM_CLIENT_VERSION = Version(3, 0, 0)


class Release(IntEnum):
    """The client protocol generations; each one only adds to the one before.

    What a release reads is asked on every call: each answer is worked out once per
    release and kept (cached_property)."""

    V3 = 3
    V4 = 4
    V5 = 5
    V6 = 6

    @functools.cached_property
    def has_deny_reason(self) -> bool:
        """4.x and later read LoginReply.reason."""
        return self >= Release.V4

    @functools.cached_property
    def has_sessions(self) -> bool:
        """5.x and later heartbeat and log out."""
        return self >= Release.V5

    @functools.cached_property
    def has_major_version(self) -> bool:
        """5.x and later read LicenseStatusReply.major_version."""
        return self >= Release.V5

    @functools.cached_property
    def has_license_info(self) -> bool:
        """6.x and later read LoginReply.license and the 6.x status fields."""
        return self >= Release.V6


OLDEST_RELEASE = Release.V3
NEWEST_RELEASE = Release.V6


# A version string longer than this is no version (and never a cache key).
MAX_VERSION_LENGTH = 64


def client_release(client_version: str) -> Release:
    """The protocol release a client speaks, from the version it sends (see
    `_client_release`); input longer than a version can be is never a cache key."""
    if len(client_version) <= MAX_VERSION_LENGTH:
        return _client_release(client_version)
    text = client_version.strip()
    if len(text) > MAX_VERSION_LENGTH:
        raise PreconditionFailed(
            f"The client version {text[:40]!r}... ({len(text)} characters) cannot be read. "
            f"Update OfficeStatus: this server needs client {MINIMUM_CLIENT_VERSION.major}.0 "
            "or later.",
            reason="CLIENT_VERSION_INVALID",
        )
    return _client_release(text)


@functools.lru_cache(maxsize=1024)
def _client_release(client_version: str) -> Release:
    """The protocol release a client speaks, from the version it sends.

    No version at all is served as the oldest release (3.x clients sent one, but a
    hand-made tool may not). A version below 3.0 or one that cannot be read is refused:
    such a client never spoke this protocol. A client newer than this server is served
    as the newest release the server knows.
    """
    text = client_version.strip()
    if not text:
        return OLDEST_RELEASE
    try:
        version = Version.parse(text)
    except ValueError:
        raise PreconditionFailed(
            f"The client version {text[:40]!r} cannot be read. Update OfficeStatus: this "
            f"server needs client {MINIMUM_CLIENT_VERSION.major}.0 or later.",
            reason="CLIENT_VERSION_INVALID",
        ) from None
    if version < MINIMUM_CLIENT_VERSION:
        raise PreconditionFailed(
            f"OfficeStatus client {version} is too old for this license server "
            f"{SERVER_VERSION}. Update the client to {MINIMUM_CLIENT_VERSION.major}.0 or later.",
            reason="CLIENT_TOO_OLD",
        )
    return Release(min(version.major, NEWEST_RELEASE))
