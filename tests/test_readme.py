"""The README's walkthrough runs as written: the real commands, a real server process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import free_port

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- walkthrough:"


def walkthrough() -> str:
    """The bash block that follows the walkthrough marker."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index(MARKER) :]
    match = re.search(r"```bash\n(.*?)```", after, re.DOTALL)
    assert match is not None, "no bash block after the walkthrough marker"
    return match.group(1)


def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    # The walkthrough runs from a checkout with .venv; here .venv is this interpreter's.
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    port = free_port()
    env = {
        **os.environ,
        # Not the real default port: another server may own it on this machine.
        "OFFICESTATUS_LISTEN": f"127.0.0.1:{port}",
        "OFFICESTATUS_ADDRESS": f"127.0.0.1:{port}",
    }
    # Whatever happens, the server the walkthrough starts in the background goes too.
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    script += walkthrough()
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = tmp_path / "demo" / "server.log"
    server_log = log.read_text() if log.exists() else ""
    assert done.returncode == 0, done.stdout + done.stderr + server_log
    out = done.stdout
    assert "signature: valid (key id kms-demo)" in out
    assert "35 seats" in out
    assert "granted: Welcome, alice." in out
    assert "carol is disabled, as expected" in out
    assert "2 of 35 seats in use" in out
    assert "users.enable" in out
