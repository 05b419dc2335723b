"""What each client release may be sent: the deny code it defines, and the capabilities.

A deployed client shows a dialog chosen by the code; a value its release does not define
would show the wrong one, so 6.x-only codes are sent to 4.x and 5.x as the stand-in the
table of answers (`login.ANSWERS`) names. 3.x clients read no code at all.
"""

from __future__ import annotations

from officestatus_server.core.login import CODES_BEFORE_6
from officestatus_server.core.model import Deny
from officestatus_server.core.versions import Release

# The codes each release defines: 3.x none but "no reason", 4.x and 5.x the stand-ins'
# codes, 6.x every one.
KNOWN_REASONS: dict[Release, frozenset[Deny]] = {
    Release.V3: frozenset({Deny.NONE}),
    Release.V4: frozenset(CODES_BEFORE_6.values()),
    Release.V5: frozenset(CODES_BEFORE_6.values()),
    Release.V6: frozenset(Deny),
}


def reason_for(release: Release, reason: Deny) -> Deny:
    """The code to send to `release`: itself if the release defines it, else its stand-in."""
    if not release.has_deny_reason:
        return Deny.NONE
    if release.has_license_info:
        return reason
    return CODES_BEFORE_6[reason]


# Capabilities a 6.x client may ask for in the handshake.
CAPABILITIES: tuple[str, ...] = ("license-info", "sessions", "over-capacity-reason")
