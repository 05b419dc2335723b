#!/usr/bin/env python3
"""The benchmark's helper processes: a bare grpc.aio server and the load generator.

    python scripts/bench_load.py serve-empty [--listen 127.0.0.1:0] [--reply-hex HEX]
    python scripts/bench_load.py drive < spec.json

`serve-empty` answers /bench.Baseline/Empty with empty bytes: no protobuf, no
interceptors, nothing but grpc.aio. It also answers /bench.Baseline/EmptyProtobuf, the
same call with google.protobuf.Empty parsed and written (a reference row), and
/bench.Baseline/Constant, which answers any request with the bytes given as --reply-hex
(a reference row: what moving a login-sized request and reply costs, with no protobuf
and no logic). It prints "listening on HOST:PORT" and serves until SIGTERM or SIGINT.

`drive` reads a LoadSpec as JSON on stdin, calls one unary method with prepared request
bytes from N concurrent callers for a warm-up and then a measured duration, and prints
"measuring" when the measured window opens, "measured" when it closes, and then the
LoadResult as one line of JSON. Requests and replies stay bytes (no serializer on either
side), so every call costs the client the same whatever the method.

Both run in processes of their own so that neither slows the server it measures; they
import grpc, protobuf and the standard library only. scripts/bench.py starts them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
from google.protobuf import empty_pb2

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
    port = server.add_insecure_port(listen)
    if port == 0:
        raise SystemExit(f"error: cannot listen on {listen}")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await server.start()
    host = listen.rsplit(":", 1)[0]
    print(f"bare grpc.aio server listening on {host}:{port}", flush=True)
    try:
        await stopping.wait()
    finally:
        await server.stop(None)
    print("stopped", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve-empty", help="a bare grpc.aio server")
    serve.add_argument("--listen", default="127.0.0.1:0")
    serve.add_argument("--reply-hex", default="", help=f"what {CONSTANT_METHOD} answers")
    commands.add_parser("drive", help="run one measurement; the LoadSpec JSON on stdin")
    args = parser.parse_args()
    if args.command == "serve-empty":
        asyncio.run(serve_empty(args.listen, bytes.fromhex(args.reply_hex)))
        return 0
    spec = LoadSpec.from_json(sys.stdin.read())
    result = asyncio.run(drive(spec))
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
