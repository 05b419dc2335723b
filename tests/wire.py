"""The wire harness: both services of a running server over one channel, as raw bytes.

Requests go out as bytes over generic calls (no serializer), with the admin token for
admin RPCs; replies come back as the bytes that were on the wire. Protobuf is read and
written here by hand, too, where a test needs what the library will not do: see which
field numbers a reply carried, or write a string that is not UTF-8.

    async with grpc.aio.insecure_channel(server.address) as channel:
        wire = Wire(server, channel)
        outcome = await wire.call(LOGIN, string_field(1, b"al\\x80ice"))  # never raises
        reply = await wire.login("alice", "4.2.0")  # decoded, its field numbers checked
        reply.fields                                # {1, 2, 3}

The RPCs come from the generated descriptors (`RPCS`, `rpc("SeatService.Login")`), so a
new RPC is here as soon as it is in the .proto files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf import descriptor, message_factory
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

from officestatus.admin import admin_service_pb2 as admin_pb
from officestatus.licensing import seat_service_pb2 as seat_pb
from officestatus.licensing import seat_service_pb2_grpc as seat_grpc
from officestatus_server.rpc.errors import ERROR_DOMAIN
from tests.dump import Dump, describe_difference, dump_database
from tests.support import RunningServer

TIMEOUT = 10.0  # per call: a hang shows as DEADLINE_EXCEEDED, which is not a clear code
Code = grpc.StatusCode
M = TypeVar("M", bound=Message)


# --- protobuf by hand -----------------------------------------------------------------------


def varint(value: int) -> bytes:
    """`value` as a protobuf varint; a negative value as its 64-bit two's complement."""
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` in `data`, and the position after it."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError(f"truncated varint in {data!r}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def string_field(number: int, data: bytes) -> bytes:
    """A length-delimited field (a string, bytes or message) of any bytes at all."""
    return varint(number << 3 | 2) + varint(len(data)) + data


def varint_field(number: int, value: int) -> bytes:
    """A varint field (an integer, bool or enum)."""
    return varint(number << 3) + varint(value)


def wire_fields(data: bytes) -> list[tuple[int, int, bytes]]:
    """The top-level fields of a serialized message, in wire order: (number, wire type,
    payload; the bytes inside a length-delimited field, else the value's bytes)."""
    fields: list[tuple[int, int, bytes]] = []
    pos = 0
    while pos < len(data):
        tag, pos = read_varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        start = pos
        if wire_type == 0:
            _, pos = read_varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 2:
            length, start = read_varint(data, pos)
            pos = start + length
        elif wire_type == 5:
            pos += 4
        else:  # groups (3, 4) never appear in proto3
            raise ValueError(f"wire type {wire_type} in {data!r}")
        if number == 0 or pos > len(data):
            raise ValueError(f"malformed message {data!r}")
        fields.append((number, wire_type, data[start:pos]))
    return fields


def field_numbers(data: bytes) -> list[int]:
    """The top-level field numbers of a serialized message, in wire order."""
    return [number for number, _, _ in wire_fields(data)]


def set_fields(msg: Message) -> set[int]:
    """The field numbers a decoded message has set."""
    return {fd.number for fd, _ in msg.ListFields()}


# --- RPCs, from the descriptors -------------------------------------------------------------

SERVICES = (
    seat_pb.DESCRIPTOR.services_by_name["SeatService"],
    admin_pb.DESCRIPTOR.services_by_name["AdminService"],
)
SEAT_SERVICE = seat_pb.DESCRIPTOR.services_by_name["SeatService"].full_name
ADMIN_SERVICE = admin_pb.DESCRIPTOR.services_by_name["AdminService"].full_name


@dataclass(frozen=True)
class Rpc:
    """One method of one of our services."""

    method: descriptor.MethodDescriptor

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def admin(self) -> bool:
        return self.method.containing_service.full_name == ADMIN_SERVICE

    @property
    def streaming(self) -> bool:
        return self.method.server_streaming

    @property
    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.input_type)

    @property
    def reply_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.output_type)

    def parses(self, payload: bytes) -> bool:
        """Whether the server's own deserializer reads `payload` (same library, same
        process): if not, the only right answer is INVALID_ARGUMENT, REQUEST_MALFORMED."""
        try:
            self.request_class.FromString(payload)
        except DecodeError:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.method.containing_service.name}.{self.name}"


RPCS = [Rpc(m) for service in SERVICES for m in service.methods]
ADMIN_RPCS = [r for r in RPCS if r.admin]
_BY_NAME = {str(r): r for r in RPCS}


def rpc(name: str) -> Rpc:
    """An RPC by "Service.Method"."""
    return _BY_NAME[name]


LOGIN = rpc("SeatService.Login")
HEARTBEAT = rpc("SeatService.Heartbeat")
LOGOUT = rpc("SeatService.Logout")
HANDSHAKE = rpc("SeatService.Handshake")
LICENSE_STATUS = rpc("SeatService.GetLicenseStatus")
INSTALL = rpc("AdminService.InstallLicense")
REMOVE = rpc("AdminService.RemoveLicense")
ADD = rpc("AdminService.AddUsers")
ENABLE = rpc("AdminService.EnableUsers")
DISABLE = rpc("AdminService.DisableUsers")
GET_STATUS = rpc("AdminService.GetStatus")
LIST_AUDIT = rpc("AdminService.ListAudit")
VERIFY_AUDIT = rpc("AdminService.VerifyAudit")
USER_LIST_RPCS = [ADD, ENABLE, DISABLE]


# --- calls ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How a call ended: OK with its replies' bytes, or a status with its ErrorInfo."""

    code: grpc.StatusCode
    details: str = ""
    reason: str | None = None
    domain: str | None = None
    replies: tuple[bytes, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code is Code.OK

    def __str__(self) -> str:
        if self.ok:
            return f"OK ({len(self.replies)} replies)"
        return f"{self.code.name} [{self.reason}] {self.details[:160]!r}"


def outcome_of(err: grpc.aio.AioRpcError) -> Outcome:
    """A failed call's code, message and ErrorInfo (None when the status carries none)."""
    reason = domain = None
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    reason, domain = info.reason, info.domain
    return Outcome(err.code(), err.details() or "", reason, domain)


def error_info(err: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo in a failed call's rich status, which must agree with the call's own
    code and message."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            assert isinstance(value, bytes)
            status = status_pb2.Status.FromString(value)
            assert status.code == err.code().value[0]
            assert status.message == err.details()
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    raise AssertionError(f"no ErrorInfo in {err!r}")


@dataclass
class Reply(Generic[M]):
    """A reply as it came off the wire: decoded, and the field numbers that were sent."""

    msg: M
    fields: set[int]


Metadata = Sequence[tuple[str, str | bytes]]
_TOKEN = object()  # "the admin token, for admin RPCs"


class Wire:
    """Both services of `server` over one channel, as raw bytes, and the server's
    database."""

    def __init__(self, server: RunningServer, channel: grpc.aio.Channel) -> None:
        self.server = server
        self.channel = channel
        self.stub = seat_grpc.SeatServiceStub(channel)

    @property
    def token_metadata(self) -> Metadata:
        return (("authorization", f"Bearer {self.server.token}"),)

    def raw(self, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
        """SeatService `method` with no (de)serializers: bytes in, the reply's bytes out."""
        return self.channel.unary_unary(f"/{SEAT_SERVICE}/{method}")

    async def call(self, target: Rpc, payload: bytes, metadata: Any = _TOKEN) -> Outcome:
        """Send `payload` as the request; the admin token goes with admin RPCs unless
        `metadata` says otherwise."""
        if metadata is _TOKEN:
            metadata = self.token_metadata if target.admin else ()
        try:
            if target.streaming:
                stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes]
                stream = self.channel.unary_stream(target.path)
                replies = tuple(
                    [r async for r in stream(payload, metadata=metadata, timeout=TIMEOUT)]
                )
            else:
                unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
                unary = self.channel.unary_unary(target.path)
                replies = (await unary(payload, metadata=metadata, timeout=TIMEOUT),)
        except grpc.aio.AioRpcError as err:
            return outcome_of(err)
        return Outcome(Code.OK, replies=replies)

    async def send(self, target: Rpc, request: Message, metadata: Any = _TOKEN) -> Outcome:
        return await self.call(target, request.SerializeToString(), metadata)

    async def ok(self, target: Rpc, request: Message) -> Any:
        """Call, expect OK, and return the (first) reply decoded."""
        outcome = await self.send(target, request)
        assert outcome.ok, f"{target}: {outcome}"
        return target.reply_class.FromString(outcome.replies[0])

    def dump(self) -> Dump:
        return dump_database(self.server.config.database_path)

    async def refused(
        self,
        target: Rpc,
        request: Message | bytes,
        code: grpc.StatusCode,
        reasons: str | set[str] | None,
        metadata: Any = _TOKEN,
    ) -> Outcome:
        """Expect a refusal with `code` and one of `reasons` (ErrorInfo), and the database
        unchanged by it. `reasons` None: no reason required (gRPC's own refusals)."""
        before = self.dump()
        payload = request if isinstance(request, bytes) else request.SerializeToString()
        outcome = await self.call(target, payload, metadata)
        assert outcome.code == code, f"{target}: {outcome}"
        if reasons is not None:
            wanted = {reasons} if isinstance(reasons, str) else reasons
            assert outcome.domain == ERROR_DOMAIN, f"{target}: no ErrorInfo in {outcome}"
            assert outcome.reason in wanted, f"{target}: {outcome}"
        assert_same(before, self.dump(), f"{target} refused")
        return outcome

    async def active_sessions(self) -> int:
        reply = await self.ok(GET_STATUS, admin_pb.GetStatusRequest())
        return int(reply.status.active_sessions)

    # --- the client protocol, each reply checked tag by tag ---------------------------------

    async def decoded(self, method: str, request: Message, reply_type: type[M]) -> Reply[M]:
        """Call SeatService `method` with `request`; the reply's exact bytes, decoded and
        checked. A refusal raises grpc.aio.AioRpcError."""
        data = await self.raw(method)(request.SerializeToString(), timeout=TIMEOUT)
        assert isinstance(data, bytes)
        msg = reply_type.FromString(data)
        numbers = field_numbers(data)
        # Nothing on the wire the 6.x stubs do not know, nothing sent twice, and the
        # stubs' own encoding of what they read is the same bytes.
        assert len(numbers) == len(set(numbers)) or reply_type is seat_pb.HandshakeReply
        assert set(numbers) == set_fields(msg)
        assert msg.SerializeToString(deterministic=True) == data
        return Reply(msg, set(numbers))

    async def login(self, user: str, version: str, machine: str = "") -> Reply[seat_pb.LoginReply]:
        request = seat_pb.LoginRequest(user_name=user, client_version=version, machine_name=machine)
        return await self.decoded("Login", request, seat_pb.LoginReply)

    async def heartbeat(self, session_id: str) -> Reply[seat_pb.HeartbeatReply]:
        request = seat_pb.HeartbeatRequest(session_id=session_id)
        return await self.decoded("Heartbeat", request, seat_pb.HeartbeatReply)

    async def logout(self, session_id: str) -> Reply[seat_pb.LogoutReply]:
        request = seat_pb.LogoutRequest(session_id=session_id)
        return await self.decoded("Logout", request, seat_pb.LogoutReply)

    async def license_status(self, version: str | None = None) -> Reply[seat_pb.LicenseStatusReply]:
        """As 4.x and 5.x send it (no fields) when `version` is None."""
        request = (
            seat_pb.LicenseStatusRequest()
            if version is None
            else seat_pb.LicenseStatusRequest(client_version=version)
        )
        return await self.decoded("GetLicenseStatus", request, seat_pb.LicenseStatusReply)

    async def handshake(
        self, version: str, capabilities: tuple[str, ...] = ()
    ) -> Reply[seat_pb.HandshakeReply]:
        request = seat_pb.HandshakeRequest(client_version=version, capabilities=list(capabilities))
        return await self.decoded("Handshake", request, seat_pb.HandshakeReply)


def assert_same(before: Dump, after: Dump, what: str) -> None:
    assert after == before, (
        f"{what}, yet the database changed: {describe_difference(before, after)}"
    )
