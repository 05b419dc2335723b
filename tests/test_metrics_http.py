"""The HTTP listener of a real `officestatus-server --http-listen 127.0.0.1:0` process:
the banner names the metrics' address, and hostile HTTP clients (huge headers, a slow
client, unknown paths, a body too large, more connections than the bound) neither crash
the server nor stall the logins of a client beside them."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from officestatus_server.http.listener import MAX_CONNECTIONS, MAX_LINE_BYTES
from tests.legacy import CLIENT_VERSION, LegacyClient
from tests.metrics_support import TIMEOUT, scrape
from tests.process import ServerProcess, start_server_process
from tests.tls import ScratchCA

_METRICS = re.compile(r"^metrics: (https?)://127\.0\.0\.1:(\d+)/metrics$", re.M)


@pytest.fixture
async def process(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    server = await start_server_process(tmp_path / "data", "--http-listen", "127.0.0.1:0")
    yield server
    code, output = await server.stop()
    assert code == 0, output
    assert "Traceback" not in output, output


def http_port(server: ServerProcess) -> int:
    match = _METRICS.search(server.banner)
    assert match is not None, server.banner
    return int(match.group(2))


async def _logins(address: str, count: int) -> list[bool]:
    """`count` 6.x logins of an unknown user, one after another: whether each was answered
    (refused, as the user is unknown)."""
    answered = []
    async with grpc.aio.insecure_channel(address) as channel:
        client = LegacyClient("current", channel)
        for _ in range(count):
            reply = await client.Login(
                user_name="nobody", client_version=CLIENT_VERSION["current"], timeout=10
            )
            answered.append(not reply.msg.granted)
    return answered


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), 30)


async def test_hostile_http_clients_neither_crash_the_server_nor_stall_logins(
    process: ServerProcess,
) -> None:
    port = http_port(process)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.get(base + "/nowhere") as response:
            assert response.status == 404
        async with session.get(base + "/metrics", headers={"X-Big": "x" * 100_000}) as response:
            assert response.status == 400  # a header line beyond MAX_LINE_BYTES
        async with session.get(
            base + "/metrics", headers={"X-Big": "x" * (MAX_LINE_BYTES + 1)}
        ) as r:
            assert r.status == 400
        async with session.post(base + "/metrics", data=b"x" * 100_000) as response:
            assert response.status in (405, 413)

    # A slow client: the request line, then nothing. The server closes it after a while.
    slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", port)
    slow_writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    await slow_writer.drain()
    # Far more connections than the bound, held open: those beyond it are closed at once.
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(MAX_CONNECTIONS + 20)]
    try:
        # The logins beside them are answered, every one.
        assert await _logins(process.address, 20) == [True] * 20
        refused = 0
        for reader, _ in held[-10:]:
            with contextlib.suppress(ConnectionError):
                refused += await _closed_by_server(reader) == b""
        assert refused == 10
    finally:
        for _, writer in held:
            writer.close()
    assert await _closed_by_server(slow_reader) == b""
    slow_writer.close()

    # Once they are gone, a scrape works and counts every login.
    for _ in range(100):
        try:
            found = await scrape(base + "/metrics")
            break
        except aiohttp.ClientError:
            await asyncio.sleep(0.1)  # the held connections are still being closed
    else:
        found = await scrape(base + "/metrics")
    assert (
        found.value("officestatus_logins_denied_total", reason="USER_UNKNOWN", release="6.x") == 20
    )


async def test_with_tls_the_metrics_are_served_over_https(tmp_path: Path) -> None:
    ca = ScratchCA(tmp_path)
    issued = ca.issue("server", server=True)
    server = await start_server_process(
        tmp_path / "data",
        "--http-listen",
        "127.0.0.1:0",
        "--tls-cert",
        str(issued.cert),
        "--tls-key",
        str(issued.key),
    )
    try:
        match = _METRICS.search(server.banner)
        assert match is not None, server.banner
        assert match.group(1) == "https"
        trust = ssl.create_default_context(cafile=str(ca.pem))
        found = await scrape(f"https://127.0.0.1:{match.group(2)}/metrics", trust)
        assert found.value("officestatus_evaluation_active") == 1
    finally:
        code, output = await server.stop()
    assert code == 0, output


async def test_a_bad_http_listen_address_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="--http-listen 'nowhere' is not host:port"):
        await start_server_process(tmp_path / "data", "--http-listen", "nowhere")
