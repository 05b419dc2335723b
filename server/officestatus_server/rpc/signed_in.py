"""Who is signed in, and the vendor keys trusted, as admin-protocol messages."""

from __future__ import annotations

from officestatus.admin import admin_service_pb2 as pb
from officestatus_server.core.signed_in import SignedIn


def signed_in_message(line: SignedIn) -> pb.SignedIn:
    """One line of the sessions listing."""
    return pb.SignedIn(
        user_name=line.user_name,
        machine_name=line.machine,
        client_version=line.version,
        client_release=line.release,
        session=line.session,
        signed_in_at=line.since.isoformat() if line.since is not None else "",
        last_heartbeat_at=line.last_heard.isoformat() if line.last_heard is not None else "",
    )


def sessions_message(lines: list[SignedIn], total: int, offset: int) -> pb.ListSessionsResponse:
    """A page of the sessions listing."""
    return pb.ListSessionsResponse(
        sessions=[signed_in_message(line) for line in lines], total=total, offset=offset
    )
