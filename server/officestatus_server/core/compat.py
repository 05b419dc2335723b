"""What each client release may be sent: the deny reasons it defines, and their stand-ins.

A deployed client shows a dialog chosen by the reason; a value its release does not
define would show the wrong one, so 6.x-only reasons are mapped to the nearest reason
the release knows. 3.x clients read no reason at all.
"""

from __future__ import annotations

from officestatus_server.core.model import Deny
from officestatus_server.core.versions import Release

_LEGACY_REASONS = frozenset(
    {
        Deny.NONE,
        Deny.USER_UNKNOWN,
        Deny.USER_DISABLED,
        Deny.NOT_LICENSED,
        Deny.EVALUATION_EXPIRED,
    }
)

KNOWN_REASONS: dict[Release, frozenset[Deny]] = {
    Release.V3: frozenset({Deny.NONE}),
    Release.V4: _LEGACY_REASONS,
    Release.V5: _LEGACY_REASONS,
    Release.V6: frozenset(Deny),
}

# 6.x reasons, as the older releases that read a reason are sent them.
_STAND_INS: dict[Deny, Deny] = {
    Deny.OVER_CAPACITY: Deny.NOT_LICENSED,
    Deny.SESSION_ENDED: Deny.NONE,
}


def reason_for(release: Release, reason: Deny) -> Deny:
    """The reason to send to `release`: itself if the release defines it, else a stand-in."""
    if reason in KNOWN_REASONS[release]:
        return reason
    if not release.has_deny_reason:
        return Deny.NONE
    return _STAND_INS.get(reason, Deny.NOT_LICENSED)


# Capabilities a 6.x client may ask for in the handshake.
CAPABILITIES: tuple[str, ...] = ("license-info", "sessions", "over-capacity-reason")
