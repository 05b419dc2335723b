"""One server per installation, and never a silent new installation over existing data:
real server processes on real data directories."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from officestatus.admin import admin_service_pb2 as apb
from officestatus.admin import admin_service_pb2_grpc as apb_grpc
from tests.process import SERVER_COMMAND, start_server_process


async def _run_to_exit(
    *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> tuple[int, str]:
    """Run officestatus-server (after `prefix`, e.g. a command that drops privileges) to
    its exit; its exit code and everything it printed."""
    process = await asyncio.create_subprocess_exec(
        *prefix,
        SERVER_COMMAND,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, out.decode()


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file in the folder with a hash of its bytes (the lock files aside)."""
    if not folder.exists():
        return {}
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith("officestatus-server.")
    }


async def _add_users(address: str, data: Path, *names: str) -> None:
    import grpc

    token = (data / "admin-token").read_text().strip()
    async with grpc.aio.insecure_channel(address) as channel:
        await apb_grpc.AdminServiceStub(channel).AddUsers(
            apb.AddUsersRequest(user_names=list(names), enable=True),
            metadata=(("authorization", f"Bearer {token}"),),
        )


async def test_a_second_server_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = await start_server_process(data)
    try:
        await _add_users(first.address, data, "alice")
        before = _snapshot(data)
        code, out = await _run_to_exit("--data-dir", str(data), "--listen", "127.0.0.1:0")
        assert code != 0
        assert "Another OfficeStatus License Server is running" in out
        assert str(data) in out
        assert f"pid {first.process.pid}" in out
        assert first.address in out
        assert "Traceback" not in out
        assert "installation id:" not in out  # no banner: it never served
        # It wrote nothing: the first server's files are as they were, and it still serves.
        assert _snapshot(data) == before
        await _add_users(first.address, data, "bob")
    finally:
        code, _ = await first.stop()
    assert code == 0


async def test_a_server_killed_with_sigkill_does_not_block_the_next_start(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = await start_server_process(data)
    await _add_users(first.address, data, "alice")
    await first.kill()
    second = await start_server_process(data)
    try:
        assert "0 users enabled" not in second.banner
        assert "1 users enabled" in second.banner or "1 user enabled" in second.banner
    finally:
        code, _ = await second.stop()
    assert code == 0


async def test_a_clean_stop_leaves_every_change_in_the_main_database_file(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = await start_server_process(data)
    await _add_users(server.address, data, "alice", "bob")
    code, _ = await server.stop()
    assert code == 0
    wal = data / "officestatus.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    # Read with the WAL ignored: the main file alone holds the users.
    db = sqlite3.connect(f"file:{data / 'officestatus.db'}?immutable=1", uri=True)
    try:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (2,)
    finally:
        db.close()


def _empty_database(data: Path) -> None:
    data.mkdir()
    (data / "officestatus.db").write_bytes(b"")


def _data_lost_with_its_wal(data: Path) -> None:
    # What a WAL database looks like when its WAL was deleted before any checkpoint: the
    # main file has a header and no tables.
    data.mkdir()
    db = sqlite3.connect(data / "officestatus.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    (data / "admin-token").write_text("x" * 43 + "\n")


def _token_without_database(data: Path) -> None:
    data.mkdir()
    (data / "admin-token").write_text("x" * 43 + "\n")


def _wal_without_database(data: Path) -> None:
    data.mkdir()
    (data / "officestatus.db-wal").write_bytes(b"\0" * 4096)


def _shm_without_database(data: Path) -> None:
    data.mkdir()
    (data / "officestatus.db-shm").write_bytes(b"\0" * 32768)


def _backup_only(data: Path) -> None:
    data.mkdir()
    (data / "officestatus-backup-2026-12-01.db").write_bytes(b"SQLite format 3\0" + b"\0" * 4080)


def _not_sqlite(data: Path) -> None:
    data.mkdir()
    (data / "officestatus.db").write_bytes(b"OfficeStatus" * 1000)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_empty_database, "is empty (0 bytes)"),
        (_data_lost_with_its_wal, "holds no OfficeStatus installation"),
        (_token_without_database, "admin-token"),
        (_wal_without_database, "officestatus.db-wal"),
        (_shm_without_database, "officestatus.db-shm"),
        (_backup_only, "officestatus-backup-2026-12-01.db"),
        (_not_sqlite, "is not an SQLite database"),
    ],
    ids=[
        "zero-byte database",
        "WAL deleted",
        "token only",
        "WAL only",
        "SHM only",
        "backup only",
        "not SQLite",
    ],
)
async def test_traces_of_an_installation_are_never_silently_made_a_new_one(
    tmp_path: Path, make: object, says: str
) -> None:
    data = tmp_path / "data"
    assert callable(make)
    make(data)
    before = _snapshot(data)
    code, out = await _run_to_exit("--data-dir", str(data), "--listen", "127.0.0.1:0")
    assert code != 0
    assert says in out
    assert "restore a backup" in out
    assert "Traceback" not in out
    assert "installation id:" not in out  # no banner: it never served
    # Nothing it refused was changed or deleted, and no new installation was made.
    assert _snapshot(data) == before


async def test_a_database_missing_a_row_it_needs_is_refused_with_a_clear_message(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = await start_server_process(data)
    await _add_users(server.address, data, "alice")
    assert (await server.stop())[0] == 0
    db = sqlite3.connect(data / "officestatus.db")
    db.execute("DELETE FROM meta WHERE key = 'session_secret'")
    db.commit()
    db.close()
    before = _snapshot(data)
    code, out = await _run_to_exit("--data-dir", str(data), "--listen", "127.0.0.1:0")
    assert code != 0
    assert "is missing the session_secret row" in out
    assert "Traceback" not in out
    assert _snapshot(data) == before


async def test_an_empty_data_directory_becomes_a_new_installation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = await start_server_process(data)
    try:
        assert "licensing: evaluation, 30 days left" in server.banner
    finally:
        assert (await server.stop())[0] == 0
    assert (data / "officestatus.db").stat().st_size > 0
    assert not (data / "officestatus.db.new").exists()


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--listen", "127.0.0.1"], {}, "is not host:port"),
        (["--listen", "127.0.0.1:70000"], {}, "is not host:port"),
        (["--listen", "::1:50051"], {}, "in brackets"),
        (["--admin-listen", "localhost"], {}, "is not host:port"),
        (["--heartbeat-seconds", "3000000000"], {}, "from 5 to 3600"),
        (["--heartbeat-seconds", "-5"], {}, "from 5 to 3600"),
        (["--heartbeat-seconds", "0"], {}, "from 5 to 3600"),
        (["--heartbeat-seconds", "abc"], {}, "from 5 to 3600"),
        ([], {"OFFICESTATUS_HEARTBEAT_SECONDS": "abc"}, "OFFICESTATUS_HEARTBEAT_SECONDS"),
        ([], {"OFFICESTATUS_HEARTBEAT_SECONDS": "0"}, "from 5 to 3600"),
        ([], {"OFFICESTATUS_LISTEN": "localhost"}, "is not host:port"),
    ],
)
async def test_a_bad_setting_is_refused_before_anything_is_written(
    tmp_path: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    data = tmp_path / "data"
    listen = (
        [] if any(a.startswith("--listen") for a in args) or env else ["--listen", "127.0.0.1:0"]
    )
    code, out = await _run_to_exit("--data-dir", str(data), *listen, *args, env=env)
    assert code != 0
    assert says in out
    assert "Traceback" not in out
    assert not data.exists(), "the data directory was created before the settings were checked"


async def test_sigterm_finishes_the_calls_in_flight_and_turns_new_ones_away(
    tmp_path: Path,
) -> None:
    import grpc

    from officestatus.licensing import seat_service_pb2 as spb
    from officestatus.licensing import seat_service_pb2_grpc as spb_grpc

    data = tmp_path / "data"
    server = await start_server_process(data)
    await _add_users(server.address, data, "alice")
    request = spb.LoginRequest(user_name="alice", client_version="6.0.0")
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = spb_grpc.SeatServiceStub(channel)
        await stub.Login(request, timeout=5)  # connected

        async def login() -> str:
            try:
                reply = await stub.Login(request, timeout=10)
            except grpc.aio.AioRpcError as exc:
                return exc.code().name
            return "granted" if reply.granted else "refused"

        calls = [asyncio.ensure_future(login()) for _ in range(64)]
        await asyncio.sleep(0.002)  # sent, not all answered
        server.process.terminate()
        answers = await asyncio.gather(*calls)
        assert answers == ["granted"] * 64
        # Past the moment the stop lets calls already sent arrive (0.5 s at most).
        await asyncio.sleep(0.6)
        later = [await login() for _ in range(3)]
        assert set(later) == {"UNAVAILABLE"}
    code, out = await server.stop()
    assert code == 0
    assert "Traceback" not in out


async def test_sighup_leaves_the_server_serving(tmp_path: Path) -> None:
    import signal

    data = tmp_path / "data"
    server = await start_server_process(data)
    try:
        server.process.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.2)
        assert server.process.returncode is None
        await _add_users(server.address, data, "alice")
    finally:
        code, out = await server.stop()
    assert code == 0
    assert "SIGHUP: nothing to reload, still serving" in out


async def test_files_left_with_the_wrong_owner_or_mode_are_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = await start_server_process(data)
    assert (await server.stop())[0] == 0
    database = data / "officestatus.db"
    if os.geteuid() == 0:
        # As if a server run as another user had left it: root without the capability to
        # override file permissions is refused like any user.
        os.chown(database, 65534, 65534)
        prefix = [
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
        ]
    else:
        database.chmod(0)
        prefix = []
    before = database.stat()
    code, out = await _run_to_exit(
        "--data-dir", str(data), "--listen", "127.0.0.1:0", prefix=tuple(prefix)
    )
    assert code != 0
    assert "This user cannot read and write: officestatus.db (owner uid" in out
    assert "Traceback" not in out
    after = database.stat()
    assert (after.st_uid, after.st_mode, after.st_size) == (
        before.st_uid,
        before.st_mode,
        before.st_size,
    )
