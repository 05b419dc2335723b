"""The gRPC server: both services, health checking, reflection, the admin token check."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from officestatus.admin import admin_service_pb2, admin_service_pb2_grpc
from officestatus.licensing import seat_service_pb2, seat_service_pb2_grpc
from officestatus_server.rpc.admin import AdminAuth, AdminServicer
from officestatus_server.rpc.guard import MalformedRequests
from officestatus_server.rpc.seat import SeatServicer
from officestatus_server.service import LicenseService

SEAT_SERVICE = seat_service_pb2.DESCRIPTOR.services_by_name["SeatService"].full_name
ADMIN_SERVICE = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
SERVICES = (SEAT_SERVICE, ADMIN_SERVICE)
# Requests are small; a larger one is refused before it reaches a handler.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class GrpcServer:
    """The server with its health servicer, not yet listening until `start`."""

    def __init__(self, service: LicenseService, admin_token: str) -> None:
        self.server = grpc.aio.server(
            interceptors=[AdminAuth(admin_token), MalformedRequests()],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ],
        )
        seat_service_pb2_grpc.add_SeatServiceServicer_to_server(SeatServicer(service), self.server)
        admin_service_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminServicer(service), self.server
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )

    def listen(self, address: str) -> int:
        """Listen (plain text) on host:port; returns the port (useful for port 0)."""
        port = self.server.add_insecure_port(address)
        if port == 0:
            raise OSError(f"cannot listen on {address}: the address is in use or not local")
        return port

    async def start(self) -> None:
        """Start serving and report every service SERVING."""
        await self.server.start()
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None) -> None:
        """Turn health NOT_SERVING, let in-flight calls finish within `grace`, stop."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
