"""`officestatus-admin` as admins use it: global options anywhere on the line, JSON documents
that say their format, errors as JSON, the exit-code table, `--version`, Ctrl-C and a
closed pipe without a traceback, and tables aligned for wide characters.

Against a real server; Ctrl-C and the closed pipe in a real `officestatus-admin` process.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import io
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import wcwidth

from officestatus_client._cli_errors import MEANING, Exit
from officestatus_client.admin_cli import build_parser, run
from tests.support import RunningServer, admin_cli, free_port

ROOT = Path(__file__).resolve().parent.parent
FORMAT = ("officestatus-admin", 1)
CLI = [sys.executable, "-m", "officestatus_client.admin_cli"]


async def bare_cli(*argv: str) -> tuple[int, str, str]:
    """officestatus-admin with exactly these arguments, in this process."""
    out, err = io.StringIO(), io.StringIO()
    code = await run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def document(out: str) -> dict[str, Any]:
    """The JSON document printed, after checking that it says its format."""
    data = json.loads(out)
    assert isinstance(data, dict)
    assert (data.pop("format"), data.pop("version")) == FORMAT
    return data


def key_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "license.key"
    path.write_text(text)
    return path


# --- global options anywhere ------------------------------------------------------------


async def test_global_options_before_or_after_the_command(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await admin_cli(server, "user", "add", "ann")
    # The default would not reach this server: an option given before the command must
    # not be overwritten by the sub-command's copy of the default.
    monkeypatch.setenv("OFFICESTATUS_ADDRESS", f"127.0.0.1:{free_port()}")
    where = ["--data-dir", str(server.data_dir)]
    before = await bare_cli("--address", server.address, *where, "--json", "status")
    after = await bare_cli("status", "--json", "--address", server.address, *where)
    mixed = await bare_cli("--json", "status", "--server", server.address, *where)
    assert before[0] == after[0] == mixed[0] == 0
    assert document(before[1]) == document(after[1]) == document(mixed[1])

    code, out, _ = await bare_cli("user", "list", "--server", server.address, *where)
    assert code == 0
    assert out.splitlines()[1].startswith("ann ")
    # Between a command and its action too, and after the action's own arguments.
    code, out, _ = await bare_cli("user", "--json", "list", "--server", server.address, *where)
    assert [u["name"] for u in document(out)["users"]] == ["ann"]
    code, out, _ = await bare_cli(
        "audit", "--limit", "1", "--address", server.address, "--json", *where
    )
    assert code == 0
    assert len(document(out)["records"]) == 1
    # Given twice, the last one counts, as with any option.
    code, _, _ = await bare_cli(
        "--address", f"127.0.0.1:{free_port()}", "status", "--address", server.address, *where
    )
    assert code == 0


def _commands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _every_command(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _every_command(sub, (*path, name))


def test_every_command_takes_the_global_options_and_a_new_one_does_too() -> None:
    parser = build_parser()
    globals_ = {"--address", "--server", "--data-dir", "--token-file", "--timeout", "--wait"}
    globals_ |= {"--tls-ca", "--tls-cert", "--tls-key", "--json"}
    commands = list(_every_command(parser))
    assert len(commands) > 15
    for path, sub in commands:
        assert globals_ <= set(sub._option_string_actions), path
    # A command added as another helper would add it: one line, and the options follow.
    _commands(parser).add_parser("a-new-one", help="a command added later")
    args = parser.parse_args(["a-new-one", "--json", "--server", "host:1", "--timeout", "3"])
    assert (args.command, args.json, args.address, args.timeout) == ("a-new-one", True, "host:1", 3)
    args = parser.parse_args(["--json", "--timeout", "4", "a-new-one"])
    assert (args.json, args.timeout) == (True, 4)


# --- JSON documents and errors ----------------------------------------------------------


async def test_every_json_document_says_its_format(server: RunningServer, tmp_path: Path) -> None:
    key = key_file(tmp_path, server.vendor.issue(2, license_id="L-FMT-1"))
    names = tmp_path / "names.txt"
    names.write_text("cat\n")
    runs = [
        ("license", "install", str(key)),
        ("license", "list"),
        ("user", "add", "ann", "bob"),
        ("user", "enable", "ann"),
        ("login", "ann"),
        ("user", "add", "--from-file", str(names)),
        ("user", "disable", "ann"),
        ("user", "remove", "cat"),
        ("user", "list"),
        ("status",),
        ("audit",),
        ("audit", "verify"),
        ("takeover-report",),
        ("sessions",),
        ("trust", "list"),
        ("upgrade-preview",),
        ("backup", str(tmp_path / "copy.db")),
        ("upgrade-request", "--out", str(tmp_path / "request.json")),
    ]
    for argv in runs:
        code, out, err = await admin_cli(server, *argv, "--json")
        assert (code, err) == (0, ""), argv
        document(out)
    # The upgrade request on standard output is the vendor's document, with its own format.
    code, out, _ = await admin_cli(server, "upgrade-request", "--json")
    request = json.loads(out)
    assert (code, request["format"], request["version"]) == (0, "officestatus-upgrade-request", 1)
    # A refused login is an answer (exit code 1), a document like the others.
    code, out, _ = await admin_cli(server, "login", "bob", "--json")
    assert code == 1
    assert document(out)["granted"] is False
    # The list replies are objects now, their lists under a name.
    _, out, _ = await admin_cli(server, "license", "list", "--json")
    assert [lic["license_id"] for lic in document(out)["licenses"]] == ["L-FMT-1"]


async def test_errors_under_json_are_documents_on_stdout(
    server: RunningServer, tmp_path: Path
) -> None:
    await admin_cli(server, "license", "install", str(key_file(tmp_path, server.vendor.issue(1))))
    code, out, err = await admin_cli(server, "user", "add", "ann", "bob", "--enable", "--json")
    assert (code, err) == (1, "")
    error = document(out)["error"]
    assert isinstance(error, dict)
    assert error["code"] == "RESOURCE_EXHAUSTED"
    assert error["reason"] == "SEATS_EXHAUSTED"
    assert error["exit_code"] == 1
    assert error["exit"] == "REFUSED"
    assert error["message"]

    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token-of-this-server-0123456789\n")
    code, out, err = await bare_cli(
        "status", "--json", "--address", server.address, "--token-file", str(wrong)
    )
    assert (code, err) == (4, "")
    assert document(out)["error"]["exit"] == "NOT_AUTHORISED"

    unreachable = f"127.0.0.1:{free_port()}"
    code, out, err = await bare_cli(
        "--json", "--address", unreachable, "--data-dir", str(server.data_dir), "status"
    )
    assert (code, err) == (3, "")
    assert document(out)["error"]["code"] == "UNAVAILABLE"

    # Usage errors: found by the parser, and found in the input.
    for argv in (
        ("user", "list", "--no-such-option"),
        ("no-such-command",),
        ("user", "enable"),
        ("license", "install", str(tmp_path / "absent.key")),
    ):
        code, out, err = await admin_cli(server, *argv, "--json")
        assert (code, err) == (2, ""), argv
        error = document(out)["error"]
        assert isinstance(error, dict)
        assert (error["code"], error["exit_code"], error["exit"]) == ("USAGE", 2, "USAGE")

    # Without --json, the parser's own usage line and error go to this run's stderr.
    code, out, err = await admin_cli(server, "audit", "--limit", "many")
    assert (code, out) == (2, "")
    assert err.startswith("usage: officestatus-admin audit")
    assert err.endswith("audit: error: argument --limit: invalid int value: 'many'\n")


# --- exit codes, --help, --version ------------------------------------------------------


def _readme_exit_codes() -> dict[int, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.MULTILINE)
    return {int(code): meaning.replace("\\|", "|") for code, meaning in rows}


async def test_the_exit_codes_are_listed_in_help_and_the_readme() -> None:
    code, out, err = await bare_cli("--help")
    assert (code, err) == (0, "")
    listed = out.split("exit codes:\n", 1)[1]
    for exit_code in Exit:
        assert f"  {int(exit_code):<4} {MEANING[exit_code]}\n" in listed
    readme = _readme_exit_codes()
    assert set(readme) == {int(e) for e in Exit}
    for exit_code in Exit:
        assert readme[exit_code].startswith(MEANING[exit_code]), exit_code


async def test_version_names_the_package_and_the_protocol_release() -> None:
    code, out, err = await bare_cli("--version")
    assert (code, err) == (0, "")
    version = importlib.metadata.version("officestatus-license-server")
    assert out.startswith(f"officestatus-admin {version} (protocol release 6")


# --- wide characters --------------------------------------------------------------------


def _cell_columns(line: str) -> list[int]:
    """The terminal column where each cell of a table line starts (cells are apart by two
    or more spaces)."""
    return [wcwidth.wcswidth(line[: m.start()]) for m in re.finditer(r"\S+(?: \S+)*", line)]


async def test_tables_line_up_for_wide_characters(server: RunningServer, tmp_path: Path) -> None:
    await admin_cli(server, "license", "install", str(key_file(tmp_path, server.vendor.issue(5))))
    names = ["ann", "山田太郎", "Zoë", "😀smile", "김민준", "ｆｕｌｌ"]
    code, _, err = await admin_cli(server, "user", "add", *names)
    assert code == 0, err
    await admin_cli(server, "user", "enable", "山田太郎", "😀smile")
    code, out, _ = await admin_cli(server, "user", "list")
    assert code == 0
    lines = out.splitlines()
    header = _cell_columns(lines[0])
    assert len(header) == 5  # USER, ENABLED, ENABLED AT, ADDED AT, NOTE
    for line in lines[1:]:
        # The NOTE is empty: nobody is over capacity. A disabled user's ENABLED AT is "-".
        assert _cell_columns(line) == header[:4], line
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(names)


# --- Ctrl-C and a closed pipe, in a real process ----------------------------------------


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A TCP listener that accepts connections and never answers: a call to it hangs."""
    connected = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        connected.set()

    listener = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}", connected
    for writer in held:
        writer.close()
    listener.close()
    await listener.wait_closed()


@pytest.mark.parametrize("json_mode", [False, True])
async def test_ctrl_c_ends_with_one_line_and_130(
    silent_server: tuple[str, asyncio.Event], tmp_path: Path, json_mode: bool
) -> None:
    address, connected = silent_server
    token = tmp_path / "admin-token"
    token.write_text("a-token-that-nobody-will-read-0123456789\n")
    argv = ["status", "--address", address, "--token-file", str(token), "--timeout", "60"]
    process = await asyncio.create_subprocess_exec(
        *CLI,
        *argv,
        *(["--json"] if json_mode else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # Blocked in the call: the server took the connection and says nothing.
        await asyncio.wait_for(connected.wait(), 60)
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 130
    if json_mode:
        assert err == b""
        error = document(out.decode())["error"]
        assert error == {
            "code": "INTERRUPTED",
            "reason": "",
            "message": "interrupted",
            "exit_code": 130,
            "exit": "INTERRUPTED",
        }
    else:
        assert (out, err) == (b"", b"interrupted\n")


async def test_a_pipe_closed_before_the_output_ends_it_quietly(server: RunningServer) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before anything is written
    try:
        process = await asyncio.create_subprocess_exec(
            *CLI,
            "user",
            "list",
            "--address",
            server.address,
            "--data-dir",
            str(server.data_dir),
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        os.close(write_end)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert (process.returncode, err) == (141, b"")


async def test_user_list_into_head_exits_quietly(server: RunningServer) -> None:
    # More than a pipe holds (64 KiB), so that head leaves while the list is being written.
    names = [f"user-{i:05d}" for i in range(3000)]
    code, _, refusal = await admin_cli(server, "user", "add", *names)
    assert code == 0, refusal
    command = " ".join([*CLI, "user", "list", "--address", server.address, "--data-dir"])
    script = f'{command} "$1" | head -1; echo "exit ${{PIPESTATUS[0]}}"'
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script,
        "-",
        str(server.data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert err == b""
    header, status = out.decode().splitlines()
    assert header.split() == ["USER", "ENABLED", "ENABLED", "AT", "ADDED", "AT", "NOTE"]
    assert status == "exit 141"
