"""The wrapper every RPC runs in (rpc/methods.py), on a real grpc.aio server on a free port
with servicers that fail on purpose: what a client sees when a handler breaks, when a
stream fails half-way, and in which order the admin token and a malformed request are
checked."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from officestatus.admin import admin_service_pb2 as admin_pb
from officestatus.admin import admin_service_pb2_grpc as admin_grpc
from officestatus.licensing import seat_service_pb2 as seat_pb
from officestatus.licensing import seat_service_pb2_grpc as seat_grpc
from officestatus_server.errors import NotFound, SeatsExhausted
from officestatus_server.rpc.errors import Context
from officestatus_server.rpc.methods import REQUEST_SECONDS, AdminToken, register
from tests.wire import error_info

TOKEN = "t0ken"
BEARER = (("authorization", f"Bearer {TOKEN}"),)
NOT_PROTOBUF = b"\xff\xff\xff"


class BrokenSeats(seat_grpc.SeatServiceServicer):
    """Login breaks as a bug would; Heartbeat refuses as the domain does."""

    def __init__(self) -> None:
        self.logins = 0

    async def Login(self, request: seat_pb.LoginRequest, context: Context) -> seat_pb.LoginReply:
        self.logins += 1
        if request.user_name == "boom":
            raise ZeroDivisionError("a bug")
        return seat_pb.LoginReply(granted=True, message=f"hello {request.user_name}")

    async def Heartbeat(
        self, request: seat_pb.HeartbeatRequest, context: Context
    ) -> seat_pb.HeartbeatReply:
        raise SeatsExhausted("35 of 35 seats in use.", reason="NO_SEATS")


class HalfBackup(admin_grpc.AdminServiceServicer):
    """Backup sends one chunk, then fails; GetStatus answers."""

    async def GetStatus(
        self, request: admin_pb.GetStatusRequest, context: Context
    ) -> admin_pb.GetStatusResponse:
        return admin_pb.GetStatusResponse()

    async def Backup(
        self, request: admin_pb.BackupRequest, context: Context
    ) -> AsyncIterator[admin_pb.BackupResponse]:
        yield admin_pb.BackupResponse(chunk=b"first")
        raise NotFound("The database went away.", reason="GONE")


@pytest.fixture
async def served() -> AsyncIterator[tuple[grpc.aio.Channel, BrokenSeats]]:
    server = grpc.aio.server()
    seats = BrokenSeats()  # type: ignore[abstract]  # only the methods under test
    assert register(server, seat_grpc.add_SeatServiceServicer_to_server, seats) == (
        "officestatus.licensing.SeatService"
    )
    register(
        server,
        admin_grpc.add_AdminServiceServicer_to_server,
        HalfBackup(),  # type: ignore[abstract]  # only the methods under test
        token=AdminToken(TOKEN),
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel, seats
    finally:
        await server.stop(None)


def _raw(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(method)


async def test_a_bug_in_a_handler_is_internal_with_a_sentence_and_a_logged_traceback(
    served: tuple[grpc.aio.Channel, BrokenSeats], caplog: pytest.LogCaptureFixture
) -> None:
    channel, _ = served
    login = seat_grpc.SeatServiceStub(channel).Login
    with (
        caplog.at_level(logging.ERROR, "officestatus.rpc"),
        pytest.raises(grpc.aio.AioRpcError) as caught,
    ):
        await login(seat_pb.LoginRequest(user_name="boom", client_version="6.0"))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "failed unexpectedly; nothing was changed" in (caught.value.details() or "")
    assert error_info(caught.value).reason == "INTERNAL"
    assert "ZeroDivisionError" not in (caught.value.details() or "")
    [record] = caplog.records
    assert "/officestatus.licensing.SeatService/Login" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError
    # The server goes on serving.
    reply = await login(seat_pb.LoginRequest(user_name="ann", client_version="6.0"))
    assert reply.message == "hello ann"


async def test_a_domain_refusal_keeps_its_code_and_reason(
    served: tuple[grpc.aio.Channel, BrokenSeats],
) -> None:
    channel, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await seat_grpc.SeatServiceStub(channel).Heartbeat(seat_pb.HeartbeatRequest())
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.details() == "35 of 35 seats in use."
    assert error_info(caught.value).reason == "NO_SEATS"


async def test_a_request_that_does_not_parse_never_reaches_the_handler(
    served: tuple[grpc.aio.Channel, BrokenSeats],
) -> None:
    channel, seats = served
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _raw(channel, "/officestatus.licensing.SeatService/Login")(NOT_PROTOBUF)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "REQUEST_MALFORMED"
    assert "/officestatus.licensing.SeatService/Login" in (caught.value.details() or "")
    assert seats.logins == 0


async def test_the_admin_token_is_checked_before_the_request_is_looked_at(
    served: tuple[grpc.aio.Channel, BrokenSeats],
) -> None:
    channel, _ = served
    status = _raw(channel, "/officestatus.admin.AdminService/GetStatus")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await status(NOT_PROTOBUF)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(caught.value).reason == "ADMIN_TOKEN_MISSING"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await status(NOT_PROTOBUF, metadata=BEARER)
    assert error_info(caught.value).reason == "REQUEST_MALFORMED"
    # With the token and a valid request, the servicer answers.
    assert await status(b"", metadata=BEARER) == b""


async def test_two_authorization_headers_are_refused_even_with_the_right_token(
    served: tuple[grpc.aio.Channel, BrokenSeats],
) -> None:
    channel, _ = served
    status = _raw(channel, "/officestatus.admin.AdminService/GetStatus")
    for other in (f"Bearer {TOKEN}", "Bearer wrong"):
        for headers in ((*BEARER, ("authorization", other)), (("authorization", other), *BEARER)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await status(b"", metadata=headers)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error_info(caught.value).reason == "ADMIN_TOKEN_INVALID"
            assert "2 authorization headers" in (caught.value.details() or "")


async def test_a_stream_that_fails_half_way_ends_with_the_refusal(
    served: tuple[grpc.aio.Channel, BrokenSeats],
) -> None:
    channel, _ = served
    backup = admin_grpc.AdminServiceStub(channel).Backup
    chunks: list[bytes] = []

    async def read(metadata: tuple[tuple[str, str], ...] = ()) -> None:
        async for reply in backup(admin_pb.BackupRequest(), metadata=metadata):
            chunks.append(reply.chunk)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read(BEARER)
    assert chunks == [b"first"]
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(caught.value).reason == "GONE"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert chunks == [b"first"]


async def test_registering_something_that_registers_no_method_is_refused() -> None:
    server = grpc.aio.server()

    def add_nothing(servicer: object, target: object) -> None:
        pass

    with pytest.raises(RuntimeError, match="add_nothing registered no methods"):
        register(server, add_nothing, object())
    await server.stop(None)


async def test_a_request_late_but_within_the_limit_is_answered_and_a_silent_call_is_ended(
    served: tuple[grpc.aio.Channel, BrokenSeats],
) -> None:
    """The sweep that ends calls whose request does not come (REQUEST_SECONDS) leaves a
    call alone whose request comes late but in time, and ends one that stays silent."""
    channel, seats = served
    login: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(
        "/officestatus.licensing.SeatService/Login"
    )
    never = asyncio.Event()

    async def late() -> AsyncIterator[bytes]:
        await asyncio.sleep(2.5)
        yield seat_pb.LoginRequest(user_name="ann", client_version="6.0").SerializeToString()

    async def silent() -> AsyncIterator[bytes]:
        await never.wait()
        yield b""  # pragma: no cover (never reached)

    started = time.monotonic()
    answered, ended = await asyncio.gather(login(late()), login(silent()), return_exceptions=True)
    never.set()
    assert isinstance(answered, bytes)
    assert seat_pb.LoginReply.FromString(answered).message == "hello ann"
    assert isinstance(ended, grpc.aio.AioRpcError)
    assert ended.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert ended.details() == (
        "The request to /officestatus.licensing.SeatService/Login did not arrive within 5 s "
        "of the call; the call is ended."
    )
    # Not before the limit (the gather's end shows the sweep ended it).
    assert time.monotonic() - started >= REQUEST_SECONDS
    assert seats.logins == 1
