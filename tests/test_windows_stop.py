"""The clean stop where the event loop has no signal handling of its own, as on Windows:
a real server process whose event loops refuse `add_signal_handler` (what Windows'
loops do) stops on SIGINT and SIGTERM as it does on Linux, with everything kept."""

from __future__ import annotations

import asyncio
import io
import signal
import sys
from pathlib import Path

import pytest

from officestatus_client.admin_cli import run as admin_run
from scripts.processes import NotListening, start_listening
from tests.process import start_server_process

# The server's own entry point, under an event loop policy whose loops raise
# NotImplementedError from add_signal_handler, as asyncio's loops on Windows do.
_WINDOWS_LIKE = """
import asyncio, sys
from officestatus_server.cli import server_main

class Loop(asyncio.SelectorEventLoop):
    def add_signal_handler(self, sig, callback, *args):
        raise NotImplementedError

class Policy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self):
        return Loop()

asyncio.set_event_loop_policy(Policy())
sys.exit(server_main.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_server_without_loop_signal_handling_stops_cleanly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    data = tmp_path / "data"
    command = [sys.executable, "-c", _WINDOWS_LIKE, "--data-dir", str(data)]
    try:
        process, listening = await start_listening(
            *command, "--listen", "127.0.0.1:0", timeout=30, whole_banner=True
        )
    except NotListening as exc:
        raise AssertionError("the server did not start:\n" + exc.output) from None
    try:
        assert await _admin(listening.address, data, "user", "add", "alice") == 0
        process.send_signal(sig)
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    assert "stopped" in out.decode()
    assert "Traceback" not in out.decode()
    # Stopped cleanly, not killed: the instance lock is free and alice is kept.
    again = await start_server_process(data)
    try:
        out_text = io.StringIO()
        code = await admin_run(
            ["user", "list", "--address", again.address, "--data-dir", str(data)],
            out_text,
            io.StringIO(),
        )
        assert code == 0
        assert "alice" in out_text.getvalue()
    finally:
        await again.stop()


async def _admin(address: str, data: Path, *argv: str) -> int:
    return await admin_run(
        [*argv, "--address", address, "--data-dir", str(data)], io.StringIO(), io.StringIO()
    )
