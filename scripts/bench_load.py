#!/usr/bin/env python3
"""The benchmark's helper processes: a bare grpc.aio server and the load generator.

    python scripts/bench_load.py serve-empty [--listen 127.0.0.1:0] [--reply-hex HEX]
    python scripts/bench_load.py serve-minimal --users N --seats N [--listen 127.0.0.1:0]
    python scripts/bench_load.py drive < spec.json

`serve-empty` answers /bench.Baseline/Empty with empty bytes: no protobuf, no
interceptors, nothing but grpc.aio. It also answers /bench.Baseline/EmptyProtobuf, the
same call with google.protobuf.Empty parsed and written (a reference row), and
/bench.Baseline/Constant, which answers any request with the bytes given as --reply-hex
(a reference row: what moving a login-sized request and reply costs, with no protobuf
and no logic). It prints "listening on HOST:PORT" and serves until SIGTERM or SIGINT.

`serve-minimal` is the minimal reference: a bare grpc.aio server with the generated
SeatService, whose Login does a login's work in the plainest way: the request parsed with
the generated class, the user looked up in a dict, a session id MACed with keyed BLAKE2b
and kept in a dict, the reply built (the fields the caller's release knows) and written.
Its Heartbeat looks the session up in that dict. Its users are user000001 to userN, all
enabled, as in the benchmark's prepared databases; it prints "listening on HOST:PORT".

`drive` reads a LoadSpec as JSON on stdin, calls one unary method with prepared request
bytes from N concurrent callers for a warm-up and then a measured duration, and prints
"measuring" when the measured window opens, "measured" when it closes, and then the
LoadResult as one line of JSON. Requests and replies stay bytes (no serializer on either
side), so every call costs the client the same whatever the method.

They run in processes of their own so that none slows the server it measures; they
import grpc, protobuf, the generated protocol package and the standard library only.
scripts/bench.py starts them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
from google.protobuf import empty_pb2

from officestatus.licensing import seat_service_pb2 as seat_pb
from officestatus.licensing import seat_service_pb2_grpc as seat_grpc

BASELINE_METHOD = "/bench.Baseline/Empty"
# The same empty call with protobuf messages (google.protobuf.Empty) parsed and written,
# as any protobuf service pays: a reference row, not the baseline.
PROTOBUF_METHOD = "/bench.Baseline/EmptyProtobuf"
# Answers every request with the same prepared bytes: a reference row.
CONSTANT_METHOD = "/bench.Baseline/Constant"
MEASURING = "measuring"
MEASURED = "measured"
# One TCP connection per channel: without it, channels with the same target share one.
_OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


@dataclass(frozen=True)
class LoadSpec:
    """One measurement: which method, with which requests, how hard, how long."""

    address: str
    method: str
    # Caller i sends payloads[i % len(payloads)], hex-encoded here for JSON.
    payloads_hex: tuple[str, ...]
    callers: int
    warmup_seconds: float
    duration_seconds: float
    # "per-caller": each caller its own channel (and connection); "shared": one for all.
    channels: str = "per-caller"
    call_timeout_seconds: float = 10.0

    def to_json(self) -> str:
        """The spec as `drive` reads it."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        """Read a spec written by `to_json`."""
        raw = json.loads(text)
        raw["payloads_hex"] = tuple(raw["payloads_hex"])
        return cls(**raw)


@dataclass(frozen=True)
class LoadResult:
    """What the callers saw in the measured window."""

    # Calls that completed in the window, and the window's length.
    calls: int
    seconds: float
    # Each of those calls' latency, in microseconds, in the order they completed.
    latencies_us: list[int]
    # Failed calls (whole run, warm-up included), by status code name.
    errors: dict[str, int] = field(default_factory=dict)
    # CPU time the load generator itself used in the window.
    client_cpu_seconds: float = 0.0


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


async def drive(spec: LoadSpec) -> LoadResult:
    """Run one measurement and summarise it."""
    payloads = [bytes.fromhex(p) for p in spec.payloads_hex]
    count = spec.callers if spec.channels == "per-caller" else 1
    channels = [
        grpc.aio.insecure_channel(spec.address, options=_OWN_CONNECTION) for _ in range(count)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in channels)), 30)
        # No serializers: bytes go out as given and come back as received.
        methods: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
            c.unary_unary(spec.method) for c in channels
        ]
        latencies: list[int] = []
        errors: collections.Counter[str] = collections.Counter()
        begin = time.perf_counter_ns()
        window_start = begin + int(spec.warmup_seconds * 1e9)
        window_end = window_start + int(spec.duration_seconds * 1e9)

        async def caller(index: int) -> None:
            method = methods[index % len(methods)]
            payload = payloads[index % len(payloads)]
            timeout = spec.call_timeout_seconds
            while (started := time.perf_counter_ns()) < window_end:
                try:
                    await method(payload, timeout=timeout)
                except grpc.aio.AioRpcError as exc:
                    errors[exc.code().name] += 1
                    await asyncio.sleep(0.01)  # a failing server must not be spun on
                    continue
                finished = time.perf_counter_ns()
                if window_start <= finished <= window_end:
                    latencies.append(finished - started)

        async def window() -> float:
            await asyncio.sleep(max(0.0, (window_start - time.perf_counter_ns()) / 1e9))
            print(MEASURING, flush=True)
            cpu = time.process_time()
            await asyncio.sleep(max(0.0, (window_end - time.perf_counter_ns()) / 1e9))
            print(MEASURED, flush=True)
            return time.process_time() - cpu

        window_task = asyncio.create_task(window())
        await asyncio.gather(*(caller(i) for i in range(spec.callers)))
        client_cpu = await window_task
    finally:
        await asyncio.gather(*(c.close() for c in channels))
    return LoadResult(
        calls=len(latencies),
        seconds=spec.duration_seconds,
        latencies_us=[ns // 1000 for ns in latencies],
        errors=dict(errors),
        client_cpu_seconds=client_cpu,
    )


async def serve_empty(listen: str, reply: bytes) -> None:
    """A bare grpc.aio server answering BASELINE_METHOD with empty bytes (and the
    reference methods)."""

    async def empty(request: bytes, context: Any) -> bytes:
        return b""

    async def constant(request: bytes, context: Any) -> bytes:
        return reply

    async def empty_protobuf(request: empty_pb2.Empty, context: Any) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    service, method = BASELINE_METHOD.strip("/").split("/")
    handler = grpc.method_handlers_generic_handler(
        service,
        {
            method: grpc.unary_unary_rpc_method_handler(empty),
            CONSTANT_METHOD.rsplit("/", 1)[1]: grpc.unary_unary_rpc_method_handler(constant),
            PROTOBUF_METHOD.rsplit("/", 1)[1]: grpc.unary_unary_rpc_method_handler(
                empty_protobuf,
                request_deserializer=empty_pb2.Empty.FromString,
                response_serializer=empty_pb2.Empty.SerializeToString,
            ),
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    await _serve(server, listen, "bare grpc.aio server")


class MinimalSeatService(seat_grpc.SeatServiceServicer):
    """The minimal reference: a login's work done in the plainest way (see the top)."""

    def __init__(self, users: int, seats: int) -> None:
        self.users = {f"user{i:06d}": True for i in range(1, users + 1)}
        self.seats = seats
        self.sessions: dict[str, str] = {}
        self.keyed = hashlib.blake2b(key=os.urandom(32), digest_size=18)

    async def Login(self, request: seat_pb.LoginRequest, context: Any) -> seat_pb.LoginReply:
        name = request.user_name
        release = int(request.client_version.split(".", 1)[0] or 0)
        if not self.users.get(name.lower(), False):
            return seat_pb.LoginReply(granted=False, message=f"{name} may not sign in.")
        reply = seat_pb.LoginReply(granted=True, message=f"Welcome, {name}.")
        if release >= 5:
            mac = self.keyed.copy()
            body = f"{release}|{os.urandom(8).hex()}|{name}"
            mac.update(body.encode())
            session_id = f"{body}.{mac.hexdigest()}"
            self.sessions[session_id] = name
            reply.session_id = session_id
            reply.heartbeat_interval_seconds = 60
        if release >= 6:
            reply.license.seats_total = self.seats
            reply.license.seats_used = self.seats
            reply.license.major_version = 6
        return reply

    async def Heartbeat(
        self, request: seat_pb.HeartbeatRequest, context: Any
    ) -> seat_pb.HeartbeatReply:
        granted = request.session_id in self.sessions
        return seat_pb.HeartbeatReply(granted=granted)

    async def GetLicenseStatus(
        self, request: seat_pb.LicenseStatusRequest, context: Any
    ) -> seat_pb.LicenseStatusReply:
        return seat_pb.LicenseStatusReply(
            seats_total=self.seats, seats_used=self.seats, major_version=6
        )

    async def Logout(self, request: seat_pb.LogoutRequest, context: Any) -> seat_pb.LogoutReply:
        self.sessions.pop(request.session_id, None)
        return seat_pb.LogoutReply()

    async def Handshake(
        self, request: seat_pb.HandshakeRequest, context: Any
    ) -> seat_pb.HandshakeReply:
        return seat_pb.HandshakeReply(server_version="6.0.0", major_version=6)


async def _serve(server: grpc.aio.Server, listen: str, label: str) -> None:
    """Listen, say where, serve until SIGTERM or SIGINT."""
    port = server.add_insecure_port(listen)
    if port == 0:
        raise SystemExit(f"error: cannot listen on {listen}")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await server.start()
    host = listen.rsplit(":", 1)[0]
    print(f"{label} listening on {host}:{port}", flush=True)
    try:
        await stopping.wait()
    finally:
        await server.stop(None)
    print("stopped", flush=True)


async def serve_minimal(listen: str, users: int, seats: int) -> None:
    """The minimal reference server."""
    server = grpc.aio.server()
    seat_grpc.add_SeatServiceServicer_to_server(MinimalSeatService(users, seats), server)
    await _serve(server, listen, "minimal reference server")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve-empty", help="a bare grpc.aio server")
    serve.add_argument("--listen", default="127.0.0.1:0")
    serve.add_argument("--reply-hex", default="", help=f"what {CONSTANT_METHOD} answers")
    minimal = commands.add_parser("serve-minimal", help="the minimal reference server")
    minimal.add_argument("--listen", default="127.0.0.1:0")
    minimal.add_argument("--users", type=int, required=True, help="user000001 to userN")
    minimal.add_argument("--seats", type=int, required=True, help="what 6.x logins are told")
    commands.add_parser("drive", help="run one measurement; the LoadSpec JSON on stdin")
    args = parser.parse_args()
    if args.command == "serve-empty":
        asyncio.run(serve_empty(args.listen, bytes.fromhex(args.reply_hex)))
        return 0
    if args.command == "serve-minimal":
        asyncio.run(serve_minimal(args.listen, args.users, args.seats))
        return 0
    spec = LoadSpec.from_json(sys.stdin.read())
    result = asyncio.run(drive(spec))
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
