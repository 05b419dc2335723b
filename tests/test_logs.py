"""The server's log as an admin reads it: a real server process's stderr, one line per
event, JSON lines with --log-format json, refused logins at info, granted ones only at
--log-level debug."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
from pathlib import Path

from officestatus_client import AdminClient, SeatClient
from officestatus_server.logs import JsonFormatter
from scripts.processes import server_command, start_listening, terminate
from tests.process import SERVER_COMMAND


async def _run_logins(data: Path, *options: str) -> tuple[str, str]:
    """Start the server with `options`, let alice in and refuse carol (disabled) and zed
    (unknown), stop it with SIGTERM; its stdout and stderr."""
    process, listening = await start_listening(
        *server_command(data, "--no-upgrade", *options),
        timeout=30,
        whole_banner=True,
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("OFFICESTATUS_")},
    )
    try:
        token = (data / "admin-token").read_text(encoding="utf-8").strip()
        async with AdminClient(listening.address, token) as admin:
            await admin.add_users(["alice"], enable=True)
            await admin.add_users(["carol"], enable=False)
        async with SeatClient(listening.address) as seat:
            assert (await seat.login("alice", machine_name="PC-1")).granted
            assert not (await seat.login("carol", machine_name="PC-2")).granted
            # A forged line in a name stays in its own line, clipped.
            assert not (await seat.login("zed\nINFO login granted" + "z" * 200)).granted
    finally:
        assert await terminate(process)
    assert process.returncode == 0
    assert process.stdout is not None
    assert process.stderr is not None
    out = listening.banner + (await process.stdout.read()).decode()
    return out, (await process.stderr.read()).decode()


def _json_lines(stderr: str) -> list[dict[str, object]]:
    """Every line of stderr, each of which must be one JSON object."""
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def _logins(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    return [line for line in lines if line["logger"] == "officestatus.logins"]


async def test_json_lines_log_refused_logins_at_info_with_who_where_and_why(
    tmp_path: Path,
) -> None:
    out, err = await _run_logins(tmp_path / "data", "--log-format", "json")

    lines = _json_lines(err)
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert all(str(line["time"]).endswith("+00:00") for line in lines)
    assert any(line["message"] == "stopping: finishing calls in progress" for line in lines)
    refused = _logins(lines)
    assert [(line["user"], line["reason"], line["machine"]) for line in refused] == [
        ("carol", "USER_DISABLED", "PC-2"),
        ("zed?INFO login granted" + "z" * 105 + "…", "USER_UNKNOWN", ""),
    ]
    assert all(line["level"] == "info" and line["release"] == "6.x" for line in refused)
    assert "login refused (USER_DISABLED): user 'carol'" in str(refused[0]["message"])
    # The banner stays on stdout, as plain text.
    assert "licensing: evaluation" in out
    assert "stopped" in out


async def test_granted_logins_are_logged_only_at_debug_and_warning_logs_no_login(
    tmp_path: Path,
) -> None:
    _, debug = await _run_logins(tmp_path / "a", "--log-format", "json", "--log-level", "debug")
    granted = [line for line in _logins(_json_lines(debug)) if line["level"] == "debug"]
    assert [(line["user"], line["machine"], line["reason"]) for line in granted] == [
        ("alice", "PC-1", "")
    ]
    assert str(granted[0]["message"]).startswith("login granted: user 'alice', 6.x client")

    _, warning = await _run_logins(tmp_path / "b", "--log-format", "json", "--log-level", "warning")
    assert _logins(_json_lines(warning)) == []
    assert all(line["level"] in ("warning", "error") for line in _json_lines(warning))


async def test_the_default_text_log_is_one_plain_line_per_event(tmp_path: Path) -> None:
    _, err = await _run_logins(tmp_path / "data")
    refused = [line for line in err.splitlines() if " officestatus.logins: " in line]
    assert len(refused) == 2
    assert " INFO officestatus.logins: login refused (USER_DISABLED): user 'carol'" in refused[0]
    assert "login refused (USER_UNKNOWN): user 'zed?INFO login granted" in refused[1]
    assert not any("officestatus.logins: login granted" in line for line in err.splitlines())


def test_an_exception_is_one_field_of_one_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError as exc:
        record = logging.LogRecord("officestatus.rpc", logging.ERROR, "", 0, "oops", None, None)
        record.exc_info = (type(exc), exc, exc.__traceback__)
        record.user = "ann"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["user"] == "ann"
    assert parsed["message"] == "oops"
    assert parsed["exception"].startswith("Traceback")
    assert "ValueError: bad\nthing" in parsed["exception"]


def _printed(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OFFICESTATUS_")}
    return subprocess.run(
        [SERVER_COMMAND, *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_log_settings_come_from_option_environment_or_file_and_bad_ones_are_refused(
    tmp_path: Path,
) -> None:
    config = tmp_path / "server.toml"
    config.write_text('log_format = "json"\nlog_level = "error"\n', encoding="utf-8")
    env = {"OFFICESTATUS_LOG_LEVEL": "DEBUG", "OFFICESTATUS_DATA_DIR": str(tmp_path / "d")}

    shown = _printed("--config", str(config), "--print-config", env=env)
    assert shown.returncode == 0, shown.stderr
    lines = {line.split(" = ")[0]: line.split() for line in shown.stdout.splitlines()}
    assert lines["log_format"][2:] == ['"json"', "#", "file", str(config)]
    assert lines["log_level"][2:] == ['"debug"', "#", "environment", "OFFICESTATUS_LOG_LEVEL"]

    refused = _printed("--log-format", "xml", "--print-config", env=env)
    assert refused.returncode == 1
    assert "error: --log-format 'xml' is not one of text, json" in refused.stderr
    help_text = _printed("--help", env={}).stdout
    assert "--log-level debug|info|warning|error" in help_text
