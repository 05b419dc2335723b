"""The deployed OfficeStatus clients, each with its OWN released schema.

Python cannot import two versions of one proto package in one process, so each release is
compiled from its frozen .proto (proto/frozen/vN; the living proto/ for 6.x) with today's
grpcio-tools into a FileDescriptorSet and loaded into a fresh DescriptorPool of its own.
Message classes come from that pool; `LegacyClient(release, channel)` has a method for
exactly the RPCs that release's service defines, sends requests encoded by that schema and
reads replies with it, keeping the raw reply bytes to show what was actually on the wire:

    async with grpc.aio.insecure_channel(address) as channel:
        v4 = LegacyClient("v4", channel)
        reply = await v4.Login(user_name="alice", client_version="4.2.0")
        reply.msg.reason        # as 4.x parses it
        reply.unknown           # field numbers 4.x does not define (must be empty)
        v4.Heartbeat            # AttributeError: 4.x has no Heartbeat

Compiled schemas are cached for the whole test session (`schema()`).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message

# Replies read tag by tag (also imported from here by the tests of the deployed clients).
from tests.wire import field_numbers as field_numbers
from tests.wire import wire_fields as wire_fields

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
SEAT_PROTO = "officestatus/licensing/seat_service.proto"
PACKAGE = "officestatus.licensing"
SERVICE = f"{PACKAGE}.SeatService"
TIMEOUT = 10.0

# The releases, oldest first: where each one's schema lives, its major version and the
# client_version string its clients send (the examples of /work/shared/legacy-clients.md).
RELEASES = ("v3", "v4", "v5", "current")
LEGACY_RELEASES = RELEASES[:3]
_ROOTS = {
    "v3": PROTO / "frozen" / "v3",
    "v4": PROTO / "frozen" / "v4",
    "v5": PROTO / "frozen" / "v5",
    "current": PROTO,
}
MAJOR = {"v3": 3, "v4": 4, "v5": 5, "current": 6}
CLIENT_VERSION = {"v3": "3.4.2", "v4": "4.2.0", "v5": "5.1.3", "current": "6.0.0"}

# GetLicenseStatus requests of 4.x and 5.x are the same bytes (an empty message), so no
# server can tell them apart: both are answered with the 5.x reply, whose field 5
# (major_version) 4.x skips as an unknown field. The only place a release may be sent a
# field it does not define; it changes nothing that 4.x does.
SHARED_REPLIES: dict[tuple[str, str], str] = {("v4", "GetLicenseStatus"): "v5"}


# --- the schemas ----------------------------------------------------------------------


def compile_descriptor_set(proto_root: Path, source: str = SEAT_PROTO) -> bytes:
    """`source` under `proto_root`, compiled by grpcio-tools' protoc: a FileDescriptorSet."""
    with tempfile.TemporaryDirectory(prefix="officestatus-legacy-") as tmp:
        out = Path(tmp) / "descriptors.pb"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"--proto_path={proto_root}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                source,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"protoc failed on {proto_root / source}:\n{done.stderr}")
        return out.read_bytes()


@dataclass(frozen=True, eq=False)
class Schema:
    """One release's client protocol, in a descriptor pool of its own."""

    release: str
    pool: descriptor_pool.DescriptorPool

    @property
    def major(self) -> int:
        return MAJOR[self.release]

    @property
    def client_version(self) -> str:
        """The version string this release's clients send."""
        return CLIENT_VERSION[self.release]

    @property
    def service(self) -> ServiceDescriptor:
        return self.pool.FindServiceByName(SERVICE)

    @property
    def rpcs(self) -> dict[str, MethodDescriptor]:
        """The RPCs this release's service defines, by name, in declaration order."""
        return {m.name: m for m in self.service.methods}

    def descriptor(self, name: str) -> Descriptor:
        return self.pool.FindMessageTypeByName(f"{PACKAGE}.{name}")

    def message_class(self, name: str) -> Any:
        """The class of message `name` (typed Any: its fields exist only at run time)."""
        return message_factory.GetMessageClass(self.descriptor(name))

    def message(self, name: str, **fields: Any) -> Any:
        """A `name` message of this release (ValueError for a field it does not define)."""
        return self.message_class(name)(**fields)

    def field_numbers(self, name: str) -> set[int]:
        """The field numbers message `name` defines in this release."""
        return {f.number for f in self.descriptor(name).fields}

    def enum(self, name: str) -> EnumDescriptor:
        return self.pool.FindEnumTypeByName(f"{PACKAGE}.{name}")

    def has_enum(self, name: str) -> bool:
        try:
            self.enum(name)
        except KeyError:
            return False
        return True

    def enum_numbers(self, name: str) -> set[int]:
        """The values enum `name` defines in this release."""
        return {v.number for v in self.enum(name).values}

    def enum_value(self, enum: str, value: str) -> int | None:
        """The number of `value` in this release's `enum`; None when it does not define it."""
        found = self.enum(enum).values_by_name.get(value)
        return None if found is None else found.number


@functools.cache
def schema(release: str) -> Schema:
    """`release`'s schema, compiled once per test session into a fresh pool."""
    files = descriptor_pb2.FileDescriptorSet.FromString(compile_descriptor_set(_ROOTS[release]))
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return Schema(release, pool)


# --- the wire -------------------------------------------------------------------------

_WIRE_TYPES = {
    FieldDescriptor.TYPE_MESSAGE: 2,
    FieldDescriptor.TYPE_STRING: 2,
    FieldDescriptor.TYPE_BYTES: 2,
    FieldDescriptor.TYPE_BOOL: 0,
    FieldDescriptor.TYPE_ENUM: 0,
    FieldDescriptor.TYPE_INT32: 0,
    FieldDescriptor.TYPE_INT64: 0,
    FieldDescriptor.TYPE_UINT32: 0,
    FieldDescriptor.TYPE_UINT64: 0,
    FieldDescriptor.TYPE_SINT32: 0,
    FieldDescriptor.TYPE_SINT64: 0,
    FieldDescriptor.TYPE_FIXED64: 1,
    FieldDescriptor.TYPE_SFIXED64: 1,
    FieldDescriptor.TYPE_DOUBLE: 1,
    FieldDescriptor.TYPE_FIXED32: 5,
    FieldDescriptor.TYPE_SFIXED32: 5,
    FieldDescriptor.TYPE_FLOAT: 5,
}


def undefined_fields(descriptor: Descriptor, data: bytes, prefix: str = "") -> list[str]:
    """Fields in `data` that `descriptor` (one release's message) does not define, or sends
    with another wire type, nested messages included: ["5", "6.2"] (paths of numbers)."""
    found: list[str] = []
    for number, wire_type, payload in wire_fields(data):
        field = descriptor.fields_by_number.get(number)
        path = f"{prefix}{number}"
        expected = None if field is None else _WIRE_TYPES.get(field.type)
        if field is None or expected is None:
            found.append(path)
        elif wire_type != expected and not (field.is_repeated and wire_type == 2):
            # (a packed repeated scalar is length-delimited)
            found.append(f"{path}:wire-type-{wire_type}")
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            assert field.message_type is not None
            found.extend(undefined_fields(field.message_type, payload, f"{path}."))
    return found


@dataclass(frozen=True)
class Reply:
    """A reply as one release reads it: parsed by its schema, and the bytes on the wire."""

    release: str
    rpc: str
    # A message class made from the release's own pool: no static type to check against.
    msg: Any
    raw: bytes

    @property
    def fields(self) -> set[int]:
        """The top-level field numbers that were on the wire."""
        return set(field_numbers(self.raw))

    @property
    def unknown(self) -> list[str]:
        """Fields on the wire that this release's schema does not define (see
        `undefined_fields`); empty when the reply is all the release understands."""
        return undefined_fields(self.msg.DESCRIPTOR, self.raw)

    @property
    def known_bytes(self) -> bytes:
        """The reply as the release keeps it, its unknown fields dropped."""
        copy = type(self.msg)()
        copy.CopyFrom(self.msg)
        copy.DiscardUnknownFields()
        data: bytes = copy.SerializeToString(deterministic=True)
        return data

    def check(self) -> None:
        """The reply parses cleanly and the two ways of seeing unknown fields agree: the
        tag walker, and the length of the reply with what the parser did not know dropped.
        Re-serializing what was parsed gives back exactly the bytes that were sent."""
        assert self.msg.SerializeToString(deterministic=True) == self.raw, (self.rpc, self.raw)
        singular = [
            n
            for n in field_numbers(self.raw)
            if (f := self.msg.DESCRIPTOR.fields_by_number.get(n)) is None or not f.is_repeated
        ]
        assert len(singular) == len(set(singular)), f"a field sent twice: {self.raw!r}"
        carries_unknown = len(self.known_bytes) != len(self.raw)
        assert carries_unknown == bool(self.unknown), (self.unknown, self.raw)


class LegacyClient:
    """A client of one release: a method for each RPC its service defines, and only those.

    Each method takes a request message of the release or the request's fields as
    keywords, and returns a `Reply` parsed with the release's own schema.
    """

    def __init__(self, release: str, channel: grpc.aio.Channel) -> None:
        self.release = release
        self.schema = schema(release)
        self.channel = channel
        for name, method in self.schema.rpcs.items():
            setattr(self, name, self._bind(name, method))

    @property
    def rpcs(self) -> tuple[str, ...]:
        return tuple(self.schema.rpcs)

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set in __init__: RPCs of other releases.
        raise AttributeError(f"the {self.release} client protocol has no RPC {name!r}")

    def _bind(self, name: str, method: MethodDescriptor) -> Callable[..., Awaitable[Reply]]:
        request_class = message_factory.GetMessageClass(method.input_type)
        reply_class = message_factory.GetMessageClass(method.output_type)
        release = self.release

        def parse(raw: bytes) -> Reply:
            return Reply(release, name, reply_class.FromString(raw), raw)

        callable_: grpc.aio.UnaryUnaryMultiCallable[Message, Reply] = self.channel.unary_unary(
            f"/{SERVICE}/{name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=parse,
        )

        async def call(
            request: Message | None = None, *, timeout: float = TIMEOUT, **fields: Any
        ) -> Reply:
            if request is None:
                request = request_class(**fields)
            elif fields:
                raise TypeError("pass a request or its fields, not both")
            if request.DESCRIPTOR is not method.input_type:
                raise TypeError(f"{name} of {release} takes {method.input_type.full_name}")
            reply = await callable_(request, timeout=timeout)
            assert isinstance(reply, Reply)
            reply.check()
            return reply

        call.__name__ = name
        return call


async def raw_call(channel: grpc.aio.Channel, rpc: str, request: bytes) -> bytes:
    """`rpc` with no (de)serializers: exactly these request bytes in, the reply's bytes out."""
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/{SERVICE}/{rpc}")
    reply = await call(request, timeout=TIMEOUT)
    assert isinstance(reply, bytes)
    return reply
