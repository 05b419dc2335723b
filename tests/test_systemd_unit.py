"""packaging/systemd/officestatus-server.service as systemd reads it: its settings,
`systemd-analyze verify` (where the machine has it), and its ExecStart command line run
as a real server that starts and stops cleanly on SIGTERM."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.processes import SERVER_COMMAND, start_listening, terminate

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "packaging" / "systemd" / "officestatus-server.service"
INSTALLED_COMMAND = "/opt/officestatus/venv/bin/officestatus-server"
DATA_DIR = "/var/lib/officestatus-server"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def _substituted(text: str, data_dir: Path) -> str:
    """The unit as it would run from this checkout, its data in `data_dir`."""
    return text.replace(INSTALLED_COMMAND, SERVER_COMMAND).replace(DATA_DIR, str(data_dir))


def test_the_unit_runs_as_its_own_user_restarts_on_failure_and_stops_with_sigterm() -> None:
    unit = _unit()
    service = unit["Service"]
    assert service["User"] == service["Group"] == "officestatus"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    # The data directory is the one systemd makes for the user, and the only one written.
    assert "/var/lib/" + service["StateDirectory"] == DATA_DIR
    assert service["ReadWritePaths"] == DATA_DIR
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    command = shlex.split(service["ExecStart"])
    assert command == [INSTALLED_COMMAND, "--data-dir", DATA_DIR]
    # The 3.x-5.x servers' data directory is another one, which the takeover only reads
    # (no --listen either: a takeover keeps the old server's address).
    assert DATA_DIR != "/var/lib/officestatus"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_accepts_every_line(tmp_path: Path) -> None:
    copy = tmp_path / "officestatus-server.service"
    copy.write_text(_substituted(UNIT.read_text(encoding="utf-8"), tmp_path / "data"))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 on an unknown key or a bad value too, and says so: it must say nothing.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


async def test_the_exec_start_command_line_serves_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    service = _unit()["Service"]
    data = tmp_path / "data"
    command = shlex.split(_substituted(service["ExecStart"], data))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICESTATUS_")}
    # A free port of this machine, and no 3.x-5.x installation of the machine's own.
    env["OFFICESTATUS_LISTEN"] = "127.0.0.1:0"
    env["OFFICESTATUS_LEGACY_DATA_DIR"] = str(tmp_path / "legacy")
    umask = int(service["UMask"], 8)
    process, listening = await start_listening(
        *command,
        timeout=30,
        whole_banner=True,
        env=env,
        preexec_fn=lambda: os.umask(umask),
    )
    try:
        assert f"data directory: {data}" in listening.banner
    finally:
        # SIGTERM, as the unit's KillSignal: it exits in time, or terminate kills it.
        assert await terminate(process)
    assert process.stdout is not None
    rest = (await process.stdout.read()).decode()
    assert process.returncode == 0, rest
    assert rest.splitlines()[-1] == "stopped"
    assert "Traceback" not in rest
    assert oct((data / "officestatus.db").stat().st_mode & 0o777) == oct(0o600)
