"""Attacks by unauthenticated clients on a real server process, while a legitimate client
logs in: the legitimate client must keep being answered, within a second each time, and
the server's memory must stay on a plateau.

    python scripts/attack.py            # the long run: more connections, more rounds
    python scripts/attack.py --smoke    # seconds; the test suite runs this

Each attack runs against a server of its own, started with its open-file soft limit at
1,024 (the server raises it to the hard limit). Traffic goes to 127.0.0.1 only, every
loop is bounded, and the script stops by itself. The report is JSON on stdout (or in
`--json FILE`); the exit code is 1 when the legitimate client missed a login.

- connections: TCP connections held open and never speaking HTTP/2 (closed by the
  server after its handshake time), then gRPC connections held open without calls.
- padded: logins whose user name or client version is padded to megabytes, and just
  under the clients' request bound, from several attackers at once.
- silent calls: calls begun that never send their request, 100 on each of many
  connections (the server ends each after 5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc

from officestatus.admin import admin_service_pb2 as apb
from officestatus.admin import admin_service_pb2_grpc as apb_grpc
from officestatus.licensing import seat_service_pb2 as spb
from officestatus.licensing import seat_service_pb2_grpc as spb_grpc

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.processes import (  # noqa: E402
    NotListening,
    server_command,
    start_listening,
    terminate,
)

SOFT_FILES = 1024


@dataclass
class Report:
    """One attack's outcome."""

    attack: str
    legit_logins: int = 0
    legit_failures: list[str] = field(default_factory=list)
    legit_slowest_ms: float = 0.0
    attacker_calls: int = 0
    attacker_refusals: dict[str, int] = field(default_factory=dict)
    rss_mb_before: float = 0.0
    rss_mb_peak: float = 0.0
    rss_mb_after: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.legit_failures and self.legit_logins > 0


def _limit_files() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT_FILES, hard))


def rss_mb(pid: int) -> float:
    """The process's resident memory (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    """A real server process on a free port, with a user to log in as."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.extra = extra
        self.process: asyncio.subprocess.Process | None = None
        self.address = ""

    async def __aenter__(self) -> Server:
        try:
            self.process, listening = await start_listening(
                *server_command(self.data_dir, *self.extra), timeout=30, preexec_fn=_limit_files
            )
        except NotListening:
            raise RuntimeError("the server exited before listening") from None
        self.address = listening.address
        token = (self.data_dir / "admin-token").read_text().strip()
        async with grpc.aio.insecure_channel(self.address) as channel:
            await apb_grpc.AdminServiceStub(channel).AddUsers(
                apb.AddUsersRequest(user_names=["alice"], enable=True),
                metadata=(("authorization", f"Bearer {token}"),),
            )
        # Drain the log so the pipe never fills and stalls the server.
        asyncio.get_running_loop().create_task(self._drain())
        return self

    async def _drain(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        while await self.process.stdout.read(65536):
            pass

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None:
            await terminate(self.process, 20)


async def legit_client(address: str, report: Report, stop: asyncio.Event) -> None:
    """A 6.x client on a connection of its own logging in every 100 ms, each login on a
    one-second deadline; a new connection for every tenth login, as a new PC would."""
    request = spb.LoginRequest(user_name="alice", client_version="6.0.0")
    n = 0
    while not stop.is_set():
        async with grpc.aio.insecure_channel(address) as channel:
            stub = spb_grpc.SeatServiceStub(channel)
            for _ in range(10):
                started = time.perf_counter()
                try:
                    reply = await stub.Login(request, timeout=1.0)
                    if not reply.granted:
                        report.legit_failures.append(f"login {n}: refused: {reply.message}")
                except grpc.aio.AioRpcError as exc:
                    report.legit_failures.append(f"login {n}: {exc.code().name}")
                took = (time.perf_counter() - started) * 1000
                report.legit_slowest_ms = max(report.legit_slowest_ms, round(took, 1))
                report.legit_logins += 1
                n += 1
                if stop.is_set():
                    break
                await asyncio.sleep(0.1)


async def _with_legit(server: Server, report: Report, attack: asyncio.Future[None]) -> None:
    stop = asyncio.Event()
    report.rss_mb_before = rss_mb(server.pid)
    legit = asyncio.ensure_future(legit_client(server.address, report, stop))

    async def watch() -> None:
        while not stop.is_set():
            report.rss_mb_peak = max(report.rss_mb_peak, rss_mb(server.pid))
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch())
    try:
        await attack
    finally:
        # A last round of logins after the attack.
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(legit, watcher)
    report.rss_mb_after = rss_mb(server.pid)


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether the other end closed the connection (what it sent before is skipped)."""
    try:
        while True:
            if sock.recv(65536) == b"":
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


async def attack_connections(data_dir: Path, count: int, hold: float) -> Report:
    """`count` TCP connections held open that never speak HTTP/2, then `count // 4` gRPC
    connections held open with no call."""
    report = Report("connections")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    async with Server(data_dir) as server:
        host, port = server.address.rsplit(":", 1)

        async def attack() -> None:
            socks = []
            for _ in range(count):
                try:
                    sock = socket.socket()
                    sock.setblocking(False)
                    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
                    socks.append(sock)
                    report.attacker_calls += 1
                except OSError as exc:
                    key = type(exc).__name__
                    report.attacker_refusals[key] = report.attacker_refusals.get(key, 0) + 1
            await asyncio.sleep(hold)
            closed = 0
            for sock in socks:
                closed += _closed_by_peer(sock)
                sock.close()
            report.notes.append(
                f"{closed} of {len(socks)} silent TCP connections closed by the server"
            )
            channels = [grpc.aio.insecure_channel(server.address) for _ in range(count // 4)]
            for ch in channels:
                try:
                    await asyncio.wait_for(ch.channel_ready(), 5)
                except TimeoutError:
                    report.attacker_refusals["not ready"] = (
                        report.attacker_refusals.get("not ready", 0) + 1
                    )
            await asyncio.sleep(min(hold, 2))
            await asyncio.gather(*(ch.close() for ch in channels))

        await _with_legit(server, report, asyncio.ensure_future(attack()))
    return report


async def attack_padded(data_dir: Path, rounds: int, size: int) -> Report:
    """Logins padded to `size` bytes (user name, then version, with blanks and with
    letters), and ones just under the clients' 16 KiB bound, from 4 attackers."""
    report = Report("padded")
    async with Server(data_dir) as server:

        async def attacker(k: int) -> None:
            async with grpc.aio.insecure_channel(
                server.address, options=[("grpc.max_send_message_length", 2 * size + 4096)]
            ) as channel:
                stub = spb_grpc.SeatServiceStub(channel)
                for i in range(rounds):
                    tag = f"{k}-{i}"
                    big = size if i % 2 == 0 else 16 * 1024 - 64
                    requests = [
                        # Blanks of another length each time: no two requests alike.
                        spb.LoginRequest(user_name="alice" + " " * (big - k - 4 * i)),
                        spb.LoginRequest(user_name=tag + "x" * big, client_version="6.0.0"),
                        spb.LoginRequest(
                            user_name="alice", client_version="6.0.0" + " " * (big - k - 4 * i)
                        ),
                        spb.LoginRequest(user_name=" " * big + tag, client_version="6.0.0"),
                    ]
                    for request in requests:
                        report.attacker_calls += 1
                        try:
                            await stub.Login(request, timeout=10)
                            code = "OK"
                        except grpc.aio.AioRpcError as exc:
                            code = exc.code().name
                        report.attacker_refusals[code] = report.attacker_refusals.get(code, 0) + 1

        async def attack() -> None:
            await asyncio.gather(*(attacker(k) for k in range(4)))

        await _with_legit(server, report, asyncio.ensure_future(attack()))
    return report


async def attack_silent_calls(data_dir: Path, connections: int, per_connection: int) -> Report:
    """Calls begun and never sent their request: `per_connection` on each of
    `connections` connections, held until the server ends them."""
    report = Report("silent calls")
    async with Server(data_dir) as server:

        async def attack() -> None:
            never = asyncio.Event()

            async def nothing() -> AsyncIterator[bytes]:
                await never.wait()
                yield b""  # pragma: no cover (never reached)

            channels = [
                grpc.aio.insecure_channel(
                    server.address, options=[("grpc.use_local_subchannel_pool", 1)]
                )
                for _ in range(connections)
            ]
            calls = []
            for channel in channels:
                login: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(
                    "/officestatus.licensing.SeatService/Login"
                )
                calls += [login(nothing()) for _ in range(per_connection)]
            report.attacker_calls = len(calls)
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            for outcome in outcomes:
                code = outcome.code().name if isinstance(outcome, grpc.aio.AioRpcError) else "OK"
                report.attacker_refusals[code] = report.attacker_refusals.get(code, 0) + 1
            never.set()
            await asyncio.gather(*(ch.close() for ch in channels))

        await _with_legit(server, report, asyncio.ensure_future(attack()))
    return report


async def run(smoke: bool) -> list[Report]:
    work = Path(tempfile.mkdtemp(prefix="officestatus-attack-"))
    try:
        return [
            await attack_connections(work / "c", 2000 if smoke else 8000, 6 if smoke else 12),
            await attack_padded(work / "p", 25 if smoke else 200, 1024 * 1024),
            await attack_silent_calls(work / "s", 5 if smoke else 50, 100),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a run of seconds, for the tests")
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        print("the attacks read /proc and set open-file limits: Linux only", file=sys.stderr)
        return 2
    reports = asyncio.run(run(args.smoke))
    text = json.dumps([{**asdict(r), "ok": r.ok} for r in reports], indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    sys.stdout.flush()
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
