"""The server's settings as an admin gives them: options, environment variables and the
configuration file, in that precedence, shown by `officestatus-server --print-config`,
and refused at start with the file's path and the key."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from officestatus_client import AdminClient, SeatClient
from officestatus_server.config import SETTINGS
from tests.process import SERVER_COMMAND, start_server_process

# Variables of this process that would decide a setting under the test's feet.
_CLEAN = {setting.env for setting in SETTINGS} | {"OFFICESTATUS_CONFIG"}


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """officestatus-server with `args` to its exit, in an environment of only `env`'s
    OFFICESTATUS_* settings."""
    base = {k: v for k, v in os.environ.items() if k not in _CLEAN}
    return subprocess.run(
        [SERVER_COMMAND, *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _printed(*args: str, env: dict[str, str] | None = None) -> dict[str, tuple[object, str]]:
    """--print-config's settings: key: (value, where it came from)."""
    result = _run(*args, "--print-config", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    settings = tomllib.loads(result.stdout)
    sources = {}
    for line in result.stdout.splitlines()[1:]:
        sources[line.partition(" = ")[0]] = line.rsplit("# ", 1)[1]
    assert set(settings) == set(sources) == {s.name for s in SETTINGS}
    return {key: (settings[key], sources[key]) for key in settings}


def test_an_option_beats_the_environment_which_beats_the_file_which_beats_the_default(
    tmp_path: Path,
) -> None:
    config = tmp_path / "server.toml"
    config.write_text(
        'listen = "0.0.0.0:50061"\n'
        "heartbeat_seconds = 45\n"
        "max_sessions = 1000\n"
        "idle_seconds = 120\n"
        'vendor_key = ["/etc/officestatus/a.pub", "/etc/officestatus/b.pub"]\n',
        encoding="utf-8",
    )
    env = {
        "OFFICESTATUS_LISTEN": "localhost:50062",
        "OFFICESTATUS_HEARTBEAT_SECONDS": "50",
        "OFFICESTATUS_DATA_DIR": str(tmp_path / "data"),
    }

    got = _printed("--config", str(config), "--listen", "127.0.0.1:50063", env=env)

    assert got["listen"] == ("127.0.0.1:50063", "option --listen")
    assert got["heartbeat_seconds"] == (50, "environment OFFICESTATUS_HEARTBEAT_SECONDS")
    assert got["max_sessions"] == (1000, f"file {config}")
    assert got["idle_seconds"] == (120, f"file {config}")
    assert got["vendor_key"] == (
        ["/etc/officestatus/a.pub", "/etc/officestatus/b.pub"],
        f"file {config}",
    )
    assert got["max_connections"] == (10_000, "default")
    assert got["data_dir"] == (str(tmp_path / "data"), "environment OFFICESTATUS_DATA_DIR")
    assert got["admin_listen"] == ("", "default")  # not set
    # The same three levels for a repeatable option and a switch.
    again = _printed("--config", str(config), "--vendor-key", "/k/c.pub", "--no-upgrade", env=env)
    assert again["vendor_key"] == (["/k/c.pub"], "option --vendor-key")
    assert again["no_upgrade"] == (True, "option --no-upgrade")
    assert got["seat_alert_percent"] == ([90, 100], "default")


def test_seat_alert_thresholds_from_the_option_the_environment_and_the_file(
    tmp_path: Path,
) -> None:
    config = tmp_path / "server.toml"
    config.write_text("seat_alert_percent = [100, 80]\n", encoding="utf-8")
    env = {"OFFICESTATUS_DATA_DIR": str(tmp_path / "data")}
    assert _printed("--config", str(config), env=env)["seat_alert_percent"] == (
        [80, 100],
        f"file {config}",
    )
    env["OFFICESTATUS_SEAT_ALERT_PERCENT"] = "75, 95"
    assert _printed(env=env)["seat_alert_percent"] == (
        [75, 95],
        "environment OFFICESTATUS_SEAT_ALERT_PERCENT",
    )
    got = _printed("--seat-alert-percent", "120", env=env)
    assert got["seat_alert_percent"] == ([120], "option --seat-alert-percent")
    for bad in ("0", "90,abc", "", "90,,100", "1001"):
        result = _run("--seat-alert-percent", bad, "--print-config", env=env)
        assert result.returncode == 1, bad
        assert result.stderr.startswith(f"error: --seat-alert-percent {bad!r} is not a list"), (
            result.stderr
        )
        assert "e.g. 90,100" in result.stderr


def test_the_data_directorys_officestatus_toml_is_read_without_being_named(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "officestatus.toml").write_text("max_sessions_per_user = 3\n", encoding="utf-8")

    got = _printed("--data-dir", str(data))
    assert got["max_sessions_per_user"] == (3, f"file {data / 'officestatus.toml'}")
    # $OFFICESTATUS_CONFIG names another file: that one is read instead.
    other = tmp_path / "other.toml"
    other.write_text(f"data_dir = {str(data)!r}\nmax_sessions = 9\n", encoding="utf-8")
    named = _printed(env={"OFFICESTATUS_CONFIG": str(other)})
    assert named["data_dir"] == (str(data), f"file {other}")
    assert named["max_sessions"] == (9, f"file {other}")
    assert named["max_sessions_per_user"] == (10, "default")


def test_print_config_says_which_file_it_looked_for_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = _run("--data-dir", str(data), "--print-config")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == (
        f"# configuration file: {data / 'officestatus.toml'} (not there)"
    )
    assert not data.exists()
    # What it prints is a configuration file that gives the same settings.
    copy = tmp_path / "copy.toml"
    copy.write_text(result.stdout, encoding="utf-8")
    again = _run("--config", str(copy), "--print-config")
    assert again.returncode == 0, again.stderr
    assert tomllib.loads(again.stdout) == tomllib.loads(result.stdout)


def test_the_database_from_the_option_the_environment_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text('database = "/srv/officestatus/licenses.db"\n', encoding="utf-8")
    env = {"OFFICESTATUS_DATA_DIR": str(tmp_path / "data")}
    assert _printed(env=env)["database"] == ("", "default")
    assert _printed("--config", str(config), env=env)["database"] == (
        "/srv/officestatus/licenses.db",
        f"file {config}",
    )
    env["OFFICESTATUS_DATABASE"] = "postgresql://officestatus@db.example.com:5432/os"
    assert _printed("--config", str(config), env=env)["database"] == (
        "postgresql://officestatus@db.example.com:5432/os",
        "environment OFFICESTATUS_DATABASE",
    )
    # Its password is never printed: --print-config goes into support tickets.
    got = _printed("--database", "postgresql://os:s3cret@db.example.com/os", env=env)
    assert got["database"] == (
        "postgresql://os@db.example.com/os",
        "option --database, its password not shown",
    )
    result = _run("--database", "mysql://db.example.com/os", "--print-config", env=env)
    assert result.returncode == 1
    assert "mysql:// is no database this server knows" in result.stderr
    assert "(DATABASE_INVALID)" in result.stderr


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("heartbeat_second = 45\n", "'heartbeat_second' is not a setting", id="typo"),
        pytest.param("[server]\nlisten = 'x:1'\n", "'server' is not a setting", id="table"),
        pytest.param(
            "heartbeat_seconds = 4\n", "heartbeat_seconds '4' is not a whole number", id="range"
        ),
        pytest.param(
            "heartbeat_seconds = 45.5\n", "heartbeat_seconds '45.5' is not a whole", id="float"
        ),
        pytest.param("listen = 50051\n", "listen must be a string", id="type"),
        pytest.param("listen = 'localhost'\n", "listen 'localhost' is not host:port", id="addr"),
        pytest.param("max_sessions = 0\n", "max_sessions must be between 1 and", id="bound"),
        pytest.param("no_upgrade = 'maybe'\n", "no_upgrade 'maybe' is not one of", id="switch"),
        pytest.param("vendor_key = [1]\n", "vendor_key must be a list", id="list"),
        pytest.param(
            "seat_alert_percent = [90, 1001]\n",
            "seat_alert_percent [90, 1001] is not a list of whole percentages of the seats "
            "from 1 to 1000",
            id="alert-range",
        ),
        pytest.param(
            "seat_alert_percent = '90;100'\n", "seat_alert_percent '90;100' is not", id="alert"
        ),
        pytest.param("listen = \n", "is not valid TOML", id="syntax"),
    ],
)
def test_a_bad_configuration_file_is_refused_at_start_with_its_path_and_the_key(
    tmp_path: Path, text: str, says: str
) -> None:
    config = tmp_path / "server.toml"
    config.write_text(text, encoding="utf-8")
    data = tmp_path / "data"

    result = _run("--config", str(config), "--data-dir", str(data))

    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {config}"), result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert not data.exists(), "the data directory was created before the file was checked"


def test_an_unknown_key_is_refused_with_the_keys_there_are(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text("heartbeat = 45\n", encoding="utf-8")
    result = _run("--config", str(config), "--print-config")
    assert result.returncode == 1
    assert "heartbeat_seconds, seat_alert_percent, max_sessions_per_user" in result.stderr


def test_a_named_configuration_file_must_exist_the_default_one_need_not(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    for named in (["--config", str(missing)], []):
        env = {} if named else {"OFFICESTATUS_CONFIG": str(missing)}
        result = _run(*named, "--print-config", env=env)
        assert result.returncode == 1
        assert f"The configuration file {missing} does not exist" in result.stderr
    assert _run("--data-dir", str(tmp_path / "data"), "--print-config").returncode == 0


def test_the_data_directory_is_not_set_from_its_own_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "officestatus.toml").write_text(f"data_dir = {str(tmp_path)!r}\n", encoding="utf-8")
    result = _run("--data-dir", str(data), "--print-config")
    assert result.returncode == 1
    assert "data_dir cannot be set in the data directory's own file" in result.stderr


async def test_a_running_server_uses_the_settings_of_its_configuration_file(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "officestatus.toml").write_text("heartbeat_seconds = 45\n", encoding="utf-8")
    server = await start_server_process(data)
    try:
        token = (data / "admin-token").read_text(encoding="utf-8").strip()
        async with AdminClient(server.address, token) as admin:
            await admin.add_users(["alice"], enable=True)
        async with SeatClient(server.address) as seat:
            login = await seat.login("alice", machine_name="PC-1")
        assert login.granted
        assert login.heartbeat_interval_seconds == 45
    finally:
        assert (await server.stop())[0] == 0
