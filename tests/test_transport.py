"""TLS, mutual TLS, and an admin service that listens apart from the client service."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from officestatus.admin import admin_service_pb2, admin_service_pb2_grpc
from officestatus.licensing import seat_service_pb2, seat_service_pb2_grpc
from officestatus_client import AdminClient, SeatClient, TlsConfig, UnavailableError
from officestatus_client.admin_cli import EXIT_OK, run
from officestatus_server.app import ServerApp
from officestatus_server.errors import InvalidInput
from tests.support import FakeClock, RunningServer, Vendor
from tests.tls import ScratchCA


@pytest.fixture
def ca(tmp_path: Path) -> ScratchCA:
    return ScratchCA(tmp_path)


@asynccontextmanager
async def _started(server: RunningServer, **changes: object) -> AsyncIterator[ServerApp]:
    config = dataclasses.replace(server.config, **changes)  # type: ignore[arg-type]
    app = ServerApp(config, clock=server.clock)
    await app.start()
    try:
        yield app
    finally:
        await app.stop(grace=None)


@pytest.fixture
def stopped(tmp_path: Path, vendor: Vendor) -> RunningServer:
    """A server's configuration, not yet started: each test starts its own variant."""
    return RunningServer(tmp_path / "data", vendor, FakeClock())


async def test_tls_serves_clients_that_trust_the_ca_and_no_one_in_plain_text(
    stopped: RunningServer, ca: ScratchCA
) -> None:
    cert = ca.issue("server", server=True)
    async with _started(stopped, tls_cert=cert.cert, tls_key=cert.key) as app:
        address = f"127.0.0.1:{app.port}"
        async with SeatClient(address, tls=TlsConfig(ca=ca.pem)) as seat:
            handshake = await seat.handshake()
            assert handshake.server_version == "6.0.0"
        async with SeatClient(address, timeout=2) as plain:
            with pytest.raises(UnavailableError):
                await plain.handshake()
        other = ScratchCA(ca.folder, "Someone Else")
        async with SeatClient(address, timeout=2, tls=TlsConfig(ca=other.pem)) as wrong:
            with pytest.raises(UnavailableError):
                await wrong.handshake()


async def test_mutual_tls_needs_a_client_certificate_from_the_ca(
    stopped: RunningServer, ca: ScratchCA
) -> None:
    cert = ca.issue("server", server=True)
    client = ca.issue("admin-pc", server=False)
    stranger = ScratchCA(ca.folder, "Rogue CA").issue("intruder", server=False)
    async with _started(stopped, tls_cert=cert.cert, tls_key=cert.key, tls_client_ca=ca.pem) as app:
        address = f"127.0.0.1:{app.port}"
        good = TlsConfig(ca=ca.pem, cert=client.cert, key=client.key)
        async with AdminClient(address, app.token, tls=good) as admin:
            assert (await admin.status()).evaluation
        for bad in (
            TlsConfig(ca=ca.pem),
            TlsConfig(ca=ca.pem, cert=stranger.cert, key=stranger.key),
        ):
            async with AdminClient(address, app.token, timeout=2, tls=bad) as refused:
                with pytest.raises(UnavailableError):
                    await refused.status()
        # The admin CLI speaks mutual TLS too.
        out, err = io.StringIO(), io.StringIO()
        code = await run(
            [
                *("--address", address, "--data-dir", str(stopped.data_dir)),
                *("--tls-ca", str(ca.pem), "--tls-cert", str(client.cert)),
                *("--tls-key", str(client.key), "status"),
            ],
            out,
            err,
        )
        assert code == EXIT_OK, err.getvalue()
        assert "evaluation" in out.getvalue()


async def test_the_admin_service_can_listen_apart_on_localhost(stopped: RunningServer) -> None:
    async with _started(stopped, listen="0.0.0.0:0", admin_listen="127.0.0.1:0") as app:
        assert app.admin_port != app.port
        client_port = f"127.0.0.1:{app.port}"
        admin_port = f"127.0.0.1:{app.admin_port}"
        metadata = (("authorization", f"Bearer {app.token}"),)
        async with grpc.aio.insecure_channel(client_port) as channel:
            seat = seat_service_pb2_grpc.SeatServiceStub(channel)
            assert (await seat.Handshake(seat_service_pb2.HandshakeRequest())).server_version
            admin = admin_service_pb2_grpc.AdminServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as absent:
                await admin.GetStatus(admin_service_pb2.GetStatusRequest(), metadata=metadata)
            assert absent.value.code() == grpc.StatusCode.UNIMPLEMENTED
        async with grpc.aio.insecure_channel(admin_port) as channel:
            admin = admin_service_pb2_grpc.AdminServiceStub(channel)
            reply = await admin.GetStatus(admin_service_pb2.GetStatusRequest(), metadata=metadata)
            assert reply.status.evaluation
            seat = seat_service_pb2_grpc.SeatServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as absent:
                await seat.Handshake(seat_service_pb2.HandshakeRequest())
            assert absent.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_half_a_tls_configuration_is_refused_before_anything_starts(
    stopped: RunningServer, ca: ScratchCA
) -> None:
    cert = ca.issue("server", server=True)
    for changes in ({"tls_cert": cert.cert}, {"tls_client_ca": ca.pem}):
        config = dataclasses.replace(stopped.config, **changes)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput) as refused:
            ServerApp(config)
        assert refused.value.reason == "TLS_INCOMPLETE"
