"""The wire gate catches what would break a deployed client, and frozen files stay frozen."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.wire_gate import check_manifest, frozen_releases, run_gate

ROOT = Path(__file__).resolve().parent.parent
LIVING = Path("proto/officestatus/licensing/seat_service.proto")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what the gate reads: proto/ and buf.yaml."""
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    return tmp_path


def _edit(tree: Path, path: Path, old: str, new: str) -> None:
    file = tree / path
    text = file.read_text()
    assert old in text, f"{old!r} not in {path}"
    file.write_text(text.replace(old, new, 1))


def test_the_gate_passes_on_the_tree_as_it_is(tree: Path) -> None:
    assert run_gate(tree) == 0


BREAKING: dict[str, Callable[[Path], None]] = {
    "retype a field": lambda t: _edit(
        t, LIVING, "int32 heartbeat_interval_seconds = 5;", "int64 heartbeat_interval_seconds = 5;"
    ),
    "renumber a field": lambda t: _edit(
        t, LIVING, "string machine_name = 3;", "string machine_name = 7;"
    ),
    "delete a field": lambda t: _edit(t, LIVING, "  string session_id = 4;\n", ""),
    "rename a field (JSON)": lambda t: _edit(t, LIVING, "string message = 2;", "string text = 2;"),
    "delete an enum value": lambda t: _edit(t, LIVING, "  DENY_REASON_USER_DISABLED = 2;\n", ""),
    "delete an RPC": lambda t: _edit(
        t, LIVING, "  rpc Logout(LogoutRequest) returns (LogoutReply);\n", ""
    ),
    "change an RPC's reply": lambda t: _edit(
        t,
        LIVING,
        "rpc GetLicenseStatus(LicenseStatusRequest) returns (LicenseStatusReply);",
        "rpc GetLicenseStatus(LicenseStatusRequest) returns (LicenseInfo);",
    ),
    "rename the service": lambda t: _edit(t, LIVING, "service SeatService {", "service Seats {"),
}


@pytest.mark.parametrize("change", BREAKING.values(), ids=BREAKING.keys())
def test_the_gate_fails_on_a_breaking_change(
    tree: Path, change: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    change(tree)
    assert run_gate(tree) == 1
    assert "FAILED" in capsys.readouterr().out


def test_an_addition_passes_the_gate(tree: Path) -> None:
    _edit(tree, LIVING, "  bool unlimited = 6;\n}", "  bool unlimited = 6;\n  string note = 7;\n}")
    assert run_gate(tree) == 0


def test_an_edited_frozen_release_fails_the_gate(tree: Path) -> None:
    frozen = Path("proto/frozen/v4/officestatus/licensing/seat_service.proto")
    _edit(tree, frozen, "string machine_name = 3;", "string machine_name = 3; // harmless?")
    (problem,) = check_manifest(tree)
    assert problem.startswith(
        "v4/officestatus/licensing/seat_service.proto: edited after it was released"
    )
    assert run_gate(tree) == 1


def test_a_new_frozen_release_must_be_recorded(tree: Path) -> None:
    shutil.copytree(tree / "proto/frozen/v5", tree / "proto/frozen/v6")
    problems = check_manifest(tree)
    assert problems == [
        "v6/officestatus/licensing/seat_service.proto: not in proto/frozen/SHA256SUMS; "
        "record its hash when a release is frozen"
    ]


def test_every_release_the_legacy_contract_names_is_frozen() -> None:
    assert [p.name for p in frozen_releases(ROOT)] == ["v3", "v4", "v5"]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_frozen_files_were_never_changed_after_they_were_committed() -> None:
    try:
        _git("rev-parse", "--git-dir")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    if _git("rev-parse", "--is-shallow-repository").strip() == "true":
        pytest.skip("shallow clone: the history is not all here")
    for path in sorted((ROOT / "proto/frozen").rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(ROOT))
        commits = _git("log", "--format=%H", "--", name).split()
        assert len(commits) <= 1, f"{name} was changed after it was frozen: {commits}"
        # Nor changed since, in the working tree or the index.
        assert _git("status", "--porcelain", "--", name) == "", f"{name} is being edited"
        if commits:
            committed = _git("show", f"{commits[0]}:{name}")
            assert committed == path.read_text(), name


def test_the_manifest_lists_exactly_the_frozen_files() -> None:
    listed = re.findall(
        r"^[0-9a-f]{64}  (\S+)$", (ROOT / "proto/frozen/SHA256SUMS").read_text(), re.M
    )
    on_disk = sorted(
        str(p.relative_to(ROOT / "proto/frozen")) for p in (ROOT / "proto/frozen").rglob("*.proto")
    )
    assert sorted(listed) == on_disk
    assert check_manifest(ROOT) == []
