"""scripts/bench.py --smoke runs end to end: every row and every scale figure, with
positive numbers, and every process it started stopped. It asserts no target: on a shared
machine the numbers are noise at smoke sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# What --smoke measures: each workload on its server, with 4 and with 16 callers.
WORKLOADS = (
    "empty/bare",
    "empty-protobuf/bare",
    "login-constant/bare",
    "login-6.x/minimal",
    "login-3.x/minimal",
    "heartbeat-5.x/minimal",
    "login-6.x/small",
    "login-3.x/large",
    "login-6.x/large",
    "heartbeat-5.x/large",
    "license-status-6.x/large",
)
CALLERS = (4, 16)
# The real server's rows with a matching row of the minimal reference.
AGAINST_MINIMAL = ("login-6.x/small", "login-3.x/large", "login-6.x/large", "heartbeat-5.x/large")
USERS, ENABLED_AT_START = 200, 100


def _ours(pid: int) -> bool:
    """Whether a process of this run is still there (a reused pid is someone else's)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"bench_load.py" in command or b"officestatus-server" in command


def _smoke(tmp_path: Path, *options: str, timeout: float = 180) -> tuple[str, dict[str, Any]]:
    """Run scripts/bench.py --smoke with `options`: its output and its JSON report."""
    report = tmp_path / "bench.json"
    command = [sys.executable, str(ROOT / "scripts" / "bench.py"), *options, "--smoke"]
    try:
        done = subprocess.run(
            [*command, "--json", str(report)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        # What it printed says where it was: the step that hung.
        output = b"".join(
            part if isinstance(part, bytes) else part.encode()
            for part in (exc.stdout, exc.stderr)
            if part
        )
        raise AssertionError(
            f"{' '.join(command[1:])} did not finish in {timeout:g} s:\n"
            + output.decode(errors="replace")
        ) from None
    assert done.returncode == 0, done.stdout + done.stderr
    results: dict[str, Any] = json.loads(report.read_text())
    assert results["error"] is None
    return done.stdout, results


def test_the_benchmark_runs_its_smoke_mode(tmp_path: Path) -> None:
    stdout, results = _smoke(tmp_path)

    assert "machine: " in stdout
    for key in ("cpu", "cores", "python", "grpcio", "protobuf_backend"):
        assert results["machine"][key], key

    rows = {row["id"]: row for row in results["rows"]}
    assert set(rows) == {f"{w}/{c}" for w in WORKLOADS for c in CALLERS}
    for row in rows.values():
        assert row["calls"] > 0, row["id"]
        for key in (
            "throughput",
            "p50_ms",
            "p99_ms",
            "server_cpu_us_per_call",
            "throughput_ratio",
            "p99_ratio",
        ):
            assert row[key] > 0, (row["id"], key)
        assert row["workload"] in stdout
        against_minimal = row["id"].rsplit("/", 1)[0] in AGAINST_MINIMAL
        for key in ("minimal_throughput_ratio", "minimal_p99_ratio", "minimal_cpu_per_call_ratio"):
            assert (row[key] > 0) == against_minimal, (row["id"], key)
    assert stdout.count("x the minimal; p99 ") == len(AGAINST_MINIMAL) * len(CALLERS)

    assert "for reference, not a target: 6.x login throughput against" in stdout
    assert "a constant login reply from the bare server, 16 callers:" in stdout

    scale = results["scale"]
    assert scale["startup_seconds"]["large_median"] > 0
    assert scale["startup_seconds"]["bare"] > 0
    assert scale["rss_mb"]["at_startup"] > 0
    admin = scale["admin"]
    assert admin["bulk_enable"]["seconds"] > 0
    single = admin["single_enable"]
    assert single["users"] > 0
    assert single["seconds"] > 0
    assert single["projected_seconds"] > 0
    assert admin["status_before_enable"]["users_enabled"] == ENABLED_AT_START
    enabled = ENABLED_AT_START + admin["bulk_enable"]["users"] + single["users"]
    assert admin["status_after_enable"]["users_enabled"] == enabled <= USERS
    assert admin["status_after_enable"]["p50_ms"] > 0

    # Every target is reported with its number; whether it is met is not asserted: four
    # for each of three workloads and caller count, the 100,000-vs-100 ratio per caller
    # count, start-up, memory and the bulk enable.
    assert len(results["targets"]) == 4 * 3 * len(CALLERS) + len(CALLERS) + 3
    for target in results["targets"]:
        assert isinstance(target["met"], bool)
        assert target["value"] > 0, target["name"]
        assert target["name"] in stdout

    assert results["pids"]
    assert [pid for pid in results["pids"] if _ours(pid)] == []


def test_the_quick_benchmark_runs_its_smoke_mode(tmp_path: Path) -> None:
    stdout, results = _smoke(tmp_path, "--quick")

    # The empty call, the minimal reference's and the real server's 6.x login only, each
    # measured in 3 interleaved rounds.
    rows = {row["id"]: row for row in results["rows"]}
    quick = ("empty/bare", "login-6.x/minimal", "login-6.x/large")
    assert set(rows) == {f"{w}/{c}" for w in quick for c in CALLERS}
    for row in rows.values():
        assert len(row["round_throughputs"]) == row["rounds"] == 3, row["id"]
        assert row["throughput_ratio"] > 0, row["id"]
        assert row["workload"] in stdout
    for callers in CALLERS:
        login = rows[f"login-6.x/large/{callers}"]
        for key in ("minimal_throughput_ratio", "minimal_p99_ratio", "minimal_cpu_per_call_ratio"):
            assert login[key] > 0, (callers, key)
        assert (
            f"6.x login, {USERS} users, {callers} callers: throughput "
            f"{login['throughput_ratio']:.2f}x the empty call, "
            f"{login['minimal_throughput_ratio']:.2f}x the minimal;"
        ) in stdout

    # No admin calls, no small database; the 6.x login's four targets per caller count.
    assert "admin" not in results["scale"]
    assert "small" not in results["scale"]["startup_seconds"]
    assert len(results["targets"]) == 4 * len(CALLERS)
    for target in results["targets"]:
        assert target["name"].startswith("6.x login at ")
        assert target["name"] in stdout
    assert results["pids"]
    assert [pid for pid in results["pids"] if _ours(pid)] == []


def test_the_overhead_benchmark_runs_its_smoke_mode(tmp_path: Path) -> None:
    stdout, results = _smoke(tmp_path, "--overhead")
    # The "on" server listens for HTTP and was scraped while it was measured; "off" not.
    assert "--http-listen" in results["settings"]["on"]
    assert "--http-listen" not in results["settings"]["off"]
    assert results["scrapes"] > 0
    assert results["scrape_ms"]["median"] > 0
    (row,) = results["rows"]
    assert row["id"] == "login-6.x/4"
    for side in ("on", "off"):
        assert row[side]["calls"] > 0
        assert len(row[side]["round_throughputs"]) == 2
    assert row["throughput_ratio"] > 0
    assert len(row["round_throughput_ratios"]) == 2
    assert "metrics and history on cost" in stdout
    assert results["pids"]
    assert [pid for pid in results["pids"] if _ours(pid)] == []


def test_the_instruction_count_benchmark_runs_its_smoke_mode(tmp_path: Path) -> None:
    stdout, results = _smoke(tmp_path, "--overhead", "--instructions", timeout=300)
    # The same option sets as --overhead's sides.
    assert "--http-listen" in results["settings"]["on"]
    assert "--http-listen" not in results["settings"]["off"]
    (row,) = results["rows"]
    assert row["id"] == "login-6.x"
    assert row["calls"] == 60
    # "off" ran twice, each on a server of its own: the counts repeat closely.
    assert len(row["off_runs"]) == 2
    assert len(row["on_runs"]) == 1
    low, high = sorted(row["off_runs"])
    assert low > 0
    assert high / low < 1.10, row["off_runs"]
    # The "on" server was scraped once every 20 counted logins.
    assert row["on_scrapes"] == [3]
    assert row["ratio"] == row["on"] / row["off"] > 0
    assert isinstance(results["met"], bool)
    assert "instructions per login" in stdout
    assert "a Prometheus scraping every 15 s" in stdout
    assert results["verdict"] in stdout
    assert results["pids"]
    assert [pid for pid in results["pids"] if _ours(pid)] == []


def test_the_reference_instruction_count_benchmark_runs_its_smoke_mode(tmp_path: Path) -> None:
    stdout, results = _smoke(tmp_path, "--instructions", timeout=300)

    # The empty call on the bare server; the logins and the heartbeat on the minimal
    # reference and on the real server; each server run twice, each run on its own.
    rows = {row["id"]: row for row in results["rows"]}
    against = ("login-6.x", "login-3.x", "heartbeat-5.x")
    assert set(rows) == {"empty/bare"} | {f"{w}/{s}" for w in against for s in ("minimal", "real")}
    empty = rows["empty/bare"]
    for row in rows.values():
        assert row["calls"] == 60
        assert len(row["runs"]) == 2, row["id"]
        low, high = sorted(row["runs"])
        assert low > 0
        assert high / low < 1.10, (row["id"], row["runs"])
        assert row["empty_ratio"] == row["per_call"] / empty["per_call"] > 0
        if row["id"].endswith("/real"):
            minimal = rows[row["id"].replace("/real", "/minimal")]
            assert row["minimal_ratio"] == row["per_call"] / minimal["per_call"] > 0
        else:
            assert row["minimal_ratio"] == 0
        assert f"{row['per_call']:,.0f}" in stdout
    assert isinstance(results["met"], bool)
    assert results["met"] == (rows["login-6.x/real"]["empty_ratio"] <= 1.15)
    assert "instructions per 6.x login on the real server" in results["verdict"]
    assert results["verdict"] in stdout
    assert results["pids"]
    assert [pid for pid in results["pids"] if _ours(pid)] == []


def test_the_propagation_benchmark_runs_its_smoke_mode(tmp_path: Path) -> None:
    out, results = _smoke(tmp_path, "--propagation")
    rows = {r["id"]: r["ms"] for r in results["rows"]}
    assert set(rows) == {"sqlite/ack", "sqlite/a", "pg/ack", "pg/a", "pg/b"}
    for row_id, ms in rows.items():
        assert len(ms) == 10, row_id  # every change, timed
        assert all(0 < t < 10_000 for t in ms), (row_id, ms)
    assert set(results["ratios"]) == {
        "pg/b over pg/a",
        "pg/ack over sqlite/ack",
        "pg/a over sqlite/a",
    }
    assert all(r > 0 for r in results["quarter_ratios"])
    assert "a change reached server B in " in out
    assert "PostgreSQL: seen at B, after the ack" in out
    assert [pid for pid in results["pids"] if _ours(pid)] == []
