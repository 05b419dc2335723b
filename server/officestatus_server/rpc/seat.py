"""SeatService: the client protocol, answered for each client release as it was released.

A reply carries only the fields and enum values the calling release defines: 3.x gets
granted and message; 4.x adds the reason; 5.x the session; 6.x the license info and
the 6.x-only reasons. The release comes from the version the client sends.
"""

from __future__ import annotations

import weakref
from datetime import datetime

from officestatus.licensing import seat_service_pb2 as pb
from officestatus.licensing import seat_service_pb2_grpc as pb_grpc
from officestatus_server.core.compat import CAPABILITIES, reason_for
from officestatus_server.core.evaluation import Evaluation
from officestatus_server.core.login import Decision
from officestatus_server.core.registry import Registry
from officestatus_server.core.versions import (
    MINIMUM_CLIENT_VERSION,
    SERVER_VERSION,
    Release,
    client_release,
)
from officestatus_server.rpc.errors import Context
from officestatus_server.service import LicenseService


class SeatServicer(pb_grpc.SeatServiceServicer):
    """The client RPCs; no credential needed."""

    def __init__(self, service: LicenseService) -> None:
        self._service = service
        self._heartbeat_seconds = int(service.heartbeat_interval.total_seconds())
        # The license info last built, with the registry (weakly: a replaced registry
        # and its 100,000 users are not kept alive for it) and the evaluation it was
        # built from: every 6.x login sends it, and it changes only when they do.
        self._info: tuple[weakref.ref[Registry], Evaluation, pb.LicenseInfo] | None = None

    def _license_info(self, now: datetime) -> pb.LicenseInfo:
        """The license state at `now` (shared: copy it, never change it)."""
        registry = self._service.registry
        evaluation = registry.evaluation(now)
        held = self._info
        if held is not None and held[0]() is registry and held[1] is evaluation:
            return held[2]
        info = pb.LicenseInfo(
            seats_total=registry.seats,
            seats_used=registry.seats_used(now),
            evaluation=evaluation.active,
            evaluation_days_left=evaluation.days_left,
            major_version=registry.major,
            unlimited=evaluation.active,
        )
        self._info = (weakref.ref(registry), evaluation, info)
        return info

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.LoginReply:
        """May this user use OfficeStatus now?"""
        release = client_release(request.client_version)
        outcome = self._service.login(
            request.user_name, release, request.machine_name, request.client_version
        )
        decision = outcome.decision
        # One constructor call. A field left at its default is not sent (proto3), nor a
        # message field given None, so each release gets its own fields only: 3.x has no
        # reason (UNSPECIFIED, 0 here) and no session; only a granted login to a release
        # with sessions has a session id; only 6.x the license info.
        session_id = outcome.session_id
        return pb.LoginReply(
            granted=decision.granted,
            message=decision.message,
            reason=int(reason_for(release, decision.reason)),  # type: ignore[arg-type]
            session_id=session_id,
            heartbeat_interval_seconds=self._heartbeat_seconds if session_id else 0,
            license=self._license_info(outcome.at) if release.has_license_info else None,
        )

    async def GetLicenseStatus(
        self, request: pb.LicenseStatusRequest, context: Context
    ) -> pb.LicenseStatusReply:
        """The license state for the About box."""
        # 4.x and 5.x send no version here; both read the 5.x reply (4.x skips field 5).
        version = request.client_version if request.HasField("client_version") else "5"
        release = max(client_release(version), Release.V4)
        info = self._license_info(self._service.now())
        reply = pb.LicenseStatusReply(
            seats_total=info.seats_total,
            seats_used=info.seats_used,
            evaluation=info.evaluation,
            evaluation_days_left=info.evaluation_days_left,
        )
        if release.has_major_version:
            reply.major_version = info.major_version
        if release.has_license_info:
            reply.unlimited = info.unlimited
        return reply

    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Context) -> pb.HeartbeatReply:
        """Keep a session alive; granted = false once the user no longer holds a seat."""
        decision, release = self._service.heartbeat(request.session_id)
        return _heartbeat_reply(decision, release)

    async def Logout(self, request: pb.LogoutRequest, context: Context) -> pb.LogoutReply:
        """End a session. Ending one that is already gone is not an error."""
        self._service.logout(request.session_id)
        return pb.LogoutReply()

    async def Handshake(self, request: pb.HandshakeRequest, context: Context) -> pb.HandshakeReply:
        """Server version, oldest supported client, and the capabilities on."""
        release = client_release(request.client_version)
        offered = CAPABILITIES if release.has_license_info else ()
        wanted = set(request.capabilities)
        enabled = [c for c in offered if not wanted or c in wanted]
        return pb.HandshakeReply(
            server_version=str(SERVER_VERSION),
            minimum_client_version=str(MINIMUM_CLIENT_VERSION),
            capabilities=enabled,
            major_version=SERVER_VERSION.major,
        )


def _heartbeat_reply(decision: Decision, release: Release) -> pb.HeartbeatReply:
    reply = pb.HeartbeatReply(granted=decision.granted)
    if not decision.granted:
        reply.message = decision.message
    reply.reason = int(reason_for(release, decision.reason))  # type: ignore[assignment]
    return reply
