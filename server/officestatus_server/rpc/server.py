"""The gRPC server: both services, health checking, reflection, the admin token check."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from officestatus.admin import admin_service_pb2_grpc
from officestatus.licensing import seat_service_pb2_grpc
from officestatus_server.core.timings import CallTimes
from officestatus_server.errors import InvalidInput
from officestatus_server.rpc.admin import AdminServicer
from officestatus_server.rpc.methods import AdminToken, GenericOnly, Traffic, register
from officestatus_server.rpc.seat import SeatServicer
from officestatus_server.service import LicenseService

# At a stop: how long the calls already received may keep arriving at the handlers, and
# the quiet that says they all have.
DRAIN_SECONDS = 0.5
QUIET_SECONDS = 0.05
# Requests are small; a larger one is refused before it reaches a handler. The admin
# service's bulk calls (10,000 names in one call) need more than the clients' calls,
# whose requests are well under 1 KiB.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_CLIENT_REQUEST_BYTES = 16 * 1024
# A connection must speak HTTP/2 within this time, or it is closed.
HANDSHAKE_SECONDS = 5
# Calls at once on one connection (a client makes one at a time; an admin tool may
# make hundreds). A call whose request does not come is ended after REQUEST_SECONDS.
MAX_STREAMS_PER_CONNECTION = 1000


@dataclass(frozen=True)
class Limits:
    """What one listener allows: connections at once, and how long one may sit idle."""

    max_connections: int = 10_000
    idle_seconds: float = 300.0


class _Health(health.aio.HealthServicer):  # type: ignore[misc]
    """The reference health service, with `List` (grpcio-health-checking's aio servicer
    leaves it unimplemented, and every call logged a NotImplementedError traceback)."""

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthListResponse:
        """Every service's status, by name ("" is the server as a whole)."""
        statuses = {
            name: health_pb2.HealthCheckResponse(status=status)
            for name, status in self._server_status.items()
        }
        return health_pb2.HealthListResponse(statuses=statuses)


class GrpcServer:
    """One listening gRPC server with the services asked for, health checking and
    reflection. The admin service comes with its token check; with `times`, every call's
    duration is counted by method."""

    def __init__(
        self,
        service: LicenseService,
        admin_token: str,
        *,
        seat: bool = True,
        admin: bool = True,
        limits: Limits | None = None,
        times: CallTimes | None = None,
    ) -> None:
        limits = limits or Limits()
        # No interceptors: each method carries its own checks (rpc/methods.py).
        self.server = grpc.aio.server(
            options=[
                (
                    "grpc.max_receive_message_length",
                    MAX_MESSAGE_BYTES if admin else MAX_CLIENT_REQUEST_BYTES,
                ),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                # A port in use is refused, not shared (grpc turns SO_REUSEPORT on).
                ("grpc.so_reuseport", 0),
                ("grpc.max_allowed_incoming_connections", limits.max_connections),
                ("grpc.max_connection_idle_ms", int(limits.idle_seconds * 1000)),
                ("grpc.server_handshake_timeout_ms", HANDSHAKE_SECONDS * 1000),
                ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
            ],
        )
        self.services: tuple[str, ...] = ()
        self.traffic = Traffic()
        if seat:
            self.services += (
                register(
                    self.server,
                    seat_service_pb2_grpc.add_SeatServiceServicer_to_server,
                    SeatServicer(service),
                    traffic=self.traffic,
                    max_request_bytes=MAX_CLIENT_REQUEST_BYTES,
                    times=times,
                ),
            )
        if admin:
            self.services += (
                register(
                    self.server,
                    admin_service_pb2_grpc.add_AdminServiceServicer_to_server,
                    AdminServicer(service),
                    token=AdminToken(admin_token),
                    traffic=self.traffic,
                    times=times,
                ),
            )
        self.health = _Health()
        generic_only: Any = GenericOnly(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, generic_only)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(
                (*self.services, health.SERVICE_NAME, reflection.SERVICE_NAME)
            ),
            generic_only,
        )

    def listen(self, address: str, credentials: grpc.ServerCredentials | None = None) -> int:
        """Listen on host:port, with TLS when given credentials; returns the port (useful
        for port 0)."""
        cause: RuntimeError | None = None
        try:
            if credentials is None:
                port = self.server.add_insecure_port(address)
            else:
                port = self.server.add_secure_port(address, credentials)
        except RuntimeError as exc:
            port, cause = 0, exc
        if port == 0:
            raise OSError(
                f"cannot listen on {address}: the address is in use or not on this machine"
            ) from cause
        return port

    async def start(self) -> None:
        """Start serving and report every service SERVING."""
        await self.server.start()
        for name in ("", *self.services):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None) -> None:
        """Turn health NOT_SERVING, serve the calls already received (until none has
        arrived for a moment, at most `grace`), answer later ones UNAVAILABLE, then stop,
        letting calls in handlers finish within `grace`."""
        await self.health.enter_graceful_shutdown()
        if grace:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + min(grace, DRAIN_SECONDS)
            seen = -1
            while self.traffic.calls != seen and loop.time() < deadline:
                seen = self.traffic.calls
                await asyncio.sleep(QUIET_SECONDS)
            self.traffic.stopping = True
            await asyncio.sleep(QUIET_SECONDS)
        try:
            await self.server.stop(grace)
        finally:
            await self.traffic.close()


def server_credentials(cert: Path, key: Path, client_ca: Path | None) -> grpc.ServerCredentials:
    """TLS with this certificate and key; with `client_ca`, mutual TLS: every client must
    show a certificate signed by that CA."""
    try:
        pair = (key.read_bytes(), cert.read_bytes())
        roots = client_ca.read_bytes() if client_ca is not None else None
    except OSError as exc:
        raise InvalidInput(
            f"Cannot read the TLS file {exc.filename}: {exc.strerror}.",
            reason="TLS_FILE_UNREADABLE",
        ) from exc
    return grpc.ssl_server_credentials(
        [pair], root_certificates=roots, require_client_auth=client_ca is not None
    )
