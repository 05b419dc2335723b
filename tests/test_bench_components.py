"""scripts/bench_components.py, the parts of a login counted in instructions: its smoke
mode, run as a real process under valgrind's callgrind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_parts_of_a_login_are_counted_in_the_smoke_mode(tmp_path: Path) -> None:
    out = tmp_path / "parts.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_components.py"),
            "--smoke",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["calls"] == 1_000
    parts = figures["parts"]
    assert set(parts) == {"parse-write", "decide-kept"}
    # A protobuf parse and write, and a kept decision, each cost some instructions, and
    # less than a whole login's some 100,000.
    for part, value in parts.items():
        assert 500 < value < 100_000, (part, value)
        assert f"{value:,.0f}" in done.stdout
    assert "a login request parsed, a reply written" in done.stdout
