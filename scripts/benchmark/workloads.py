"""The calls the load generator makes: each workload's method, its prepared request bytes
and a check of the server's answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc

from officestatus.licensing import seat_service_pb2 as seat_pb
from officestatus_server.core import b64url
from scripts.bench_load import BASELINE_METHOD, CONSTANT_METHOD, PROTOBUF_METHOD
from scripts.benchmark import BenchError
from scripts.benchmark.database import user_name

SEAT_SERVICE = "/officestatus.licensing.SeatService/"


@dataclass(frozen=True)
class Workload:
    """One kind of call: its method and prepared request bytes, one per caller at most,
    and a check of what the server answers to them."""

    key: str
    label: str
    method: str
    payloads: tuple[bytes, ...]
    # A problem with one reply, or None when it is what the workload expects.
    check: Callable[[bytes], str | None]


def empty_workload(*, protobuf: bool = False) -> Workload:
    """The baseline: empty bytes to the bare server. With `protobuf`, the reference: the
    same call with google.protobuf.Empty parsed and written."""
    key, label, method = (
        ("empty-protobuf", "empty call, protobuf", PROTOBUF_METHOD)
        if protobuf
        else ("empty", "empty call", BASELINE_METHOD)
    )
    return Workload(
        key,
        label,
        method,
        (b"",),
        lambda reply: None if reply == b"" else "the bare server answered something",
    )


def login_requests(release: int, callers: int) -> tuple[bytes, ...]:
    """Login requests of `callers` different users, as a 3.x or 6.x client sends them."""
    version = {3: "3.4.2", 6: "6.0.0"}[release]
    return tuple(
        seat_pb.LoginRequest(
            user_name=user_name(i + 1),
            client_version=version,
            machine_name="" if release < 4 else f"BENCH-PC-{i + 1:03d}",
        ).SerializeToString()
        for i in range(callers)
    )


def constant_login_reply(seats: int) -> bytes:
    """A 6.x login reply as the server grants one (a session id of the same form), for
    the bare server's constant reference method."""
    payload = f"6|{'0' * 16}|{'0' * 16}|{user_name(1).upper()}".encode()
    return seat_pb.LoginReply(
        granted=True,
        message=f"Welcome, {user_name(1)}.",
        session_id=f"s2.{b64url.encode(payload)}.{b64url.encode(bytes(18))}",
        heartbeat_interval_seconds=60,
        license=seat_pb.LicenseInfo(seats_total=seats, seats_used=seats, major_version=6),
    ).SerializeToString()


def constant_login_workload(callers: int, reply: bytes) -> Workload:
    """6.x login requests to the bare server, answered with `reply` as it is: the
    transport's cost of a login, with no protobuf and no logic (a reference row)."""
    return Workload(
        "login-constant",
        "6.x login, constant",
        CONSTANT_METHOD,
        login_requests(6, callers),
        lambda raw: None if raw == reply else "the bare server answered something else",
    )


def login_workload(release: int, callers: int, seats: int) -> Workload:
    """Logins of `callers` different enabled users holding seats, as a 3.x or 6.x client."""
    payloads = login_requests(release, callers)

    def check(raw: bytes) -> str | None:
        reply = seat_pb.LoginReply.FromString(raw)
        if not reply.granted:
            return f"login refused: {reply.message}"
        if release >= 6 and (reply.license.seats_total != seats or not reply.session_id):
            return "a 6.x login reply without the license state or a session"
        if release < 4 and (reply.HasField("license") or reply.session_id or reply.reason):
            return "a 3.x login reply with fields 3.x does not know"
        return None

    return Workload(
        f"login-{release}.x", f"{release}.x login", SEAT_SERVICE + "Login", payloads, check
    )


def heartbeat_workload(session_ids: list[str]) -> Workload:
    """Heartbeats of live 5.x sessions, one per caller."""
    payloads = tuple(
        seat_pb.HeartbeatRequest(session_id=s).SerializeToString() for s in session_ids
    )

    def check(raw: bytes) -> str | None:
        reply = seat_pb.HeartbeatReply.FromString(raw)
        return None if reply.granted else f"heartbeat refused: {reply.message}"

    return Workload("heartbeat-5.x", "5.x heartbeat", SEAT_SERVICE + "Heartbeat", payloads, check)


def status_workload(seats: int) -> Workload:
    """GetLicenseStatus as a 6.x client asks it."""
    payload = seat_pb.LicenseStatusRequest(client_version="6.0.0").SerializeToString()

    def check(raw: bytes) -> str | None:
        reply = seat_pb.LicenseStatusReply.FromString(raw)
        if reply.seats_total != seats or reply.major_version != 6:
            return f"license status with {reply.seats_total} seats, not {seats}"
        return None

    return Workload(
        "license-status-6.x",
        "GetLicenseStatus 6.x",
        SEAT_SERVICE + "GetLicenseStatus",
        (payload,),
        check,
    )


async def call_raw(address: str, method: str, payloads: tuple[bytes, ...]) -> list[bytes]:
    """Each payload once, as bytes, on a channel of its own."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        return [await stub(p, timeout=30) for p in payloads]


async def open_sessions(address: str, callers: int) -> list[str]:
    """Live 5.x sessions of `callers` different users, for heartbeats."""
    logins = tuple(
        seat_pb.LoginRequest(
            user_name=user_name(i + 1), client_version="5.2.0", machine_name="BENCH-PC"
        ).SerializeToString()
        for i in range(callers)
    )
    replies = [
        seat_pb.LoginReply.FromString(r)
        for r in await call_raw(address, SEAT_SERVICE + "Login", logins)
    ]
    if not all(r.granted and r.session_id for r in replies):
        raise BenchError("a 5.x login for a heartbeat session was refused")
    return [r.session_id for r in replies]
