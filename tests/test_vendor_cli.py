"""The vendor's key tool, `officestatus-vendor`: run in-process through main(argv)."""

from __future__ import annotations

import base64
import io
import json
import re
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from officestatus_server.cli.vendor_main import main
from officestatus_server.core.keys import (
    ARMOUR_BEGIN,
    ARMOUR_END,
    LicenseKey,
    LicenseKind,
    SigningKey,
    TrustStore,
    read_key,
)

KEY_ID = "kms-test"
# The kinds `issue` makes: not the extension (it has `extend`), nor the 3.x-5.x "free".
SEAT_KINDS = [
    k for k in LicenseKind if k not in (LicenseKind.EVALUATION_EXTENSION, LicenseKind.FREE)
]


@pytest.fixture
def key_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A directory holding the KEY_ID key pair, made by the tool itself."""
    out = tmp_path / "keys"
    assert main(["keygen", "--key-id", KEY_ID, "--out-dir", str(out)]) == 0
    capsys.readouterr()
    return out


def private_file(key_dir: Path, key_id: str = KEY_ID) -> str:
    return str(key_dir / f"{key_id}.private")


def public_file(key_dir: Path, key_id: str = KEY_ID) -> str:
    return str(key_dir / f"{key_id}.pub")


def read_back(text: str, key_dir: Path) -> LicenseKey:
    """Verify a key as a server would, trusting only the .pub file keygen wrote."""
    trust = TrustStore.from_public_key_texts([Path(public_file(key_dir)).read_text()])
    key, _ = read_key(text, trust)
    return key


def issue(capsys: pytest.CaptureFixture[str], key_dir: Path, *extra: str) -> str:
    """Issue a key to standard output and return it."""
    argv = ["issue", "--signing-key", private_file(key_dir), "--seats", "5", "--customer", "ACME"]
    assert main([*argv, *extra]) == 0
    return capsys.readouterr().out


# --- keygen -----------------------------------------------------------------------------


def test_keygen_writes_an_owner_only_private_key_and_its_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "dir"
    assert main(["keygen", "--key-id", KEY_ID, "--out-dir", str(out)]) == 0
    private, public = out / f"{KEY_ID}.private", out / f"{KEY_ID}.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.is_file()
    signing = SigningKey.from_private_text(private.read_text())
    assert signing.key_id == KEY_ID
    assert public.read_text() == signing.public_text()
    printed = capsys.readouterr().out
    assert str(private) in printed
    assert str(public) in printed


def test_keygen_refuses_to_overwrite_a_private_key(
    key_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = Path(private_file(key_dir)).read_text()
    assert main(["keygen", "--key-id", KEY_ID, "--out-dir", str(key_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "(FILE_EXISTS)" in err
    assert "Traceback" not in err
    assert Path(private_file(key_dir)).read_text() == before


def test_keygen_refuses_when_only_the_public_key_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / f"{KEY_ID}.pub").write_text("someone else's key\n")
    assert main(["keygen", "--key-id", KEY_ID, "--out-dir", str(tmp_path)]) == 1
    assert "(FILE_EXISTS)" in capsys.readouterr().err
    assert not (tmp_path / f"{KEY_ID}.private").exists()


def test_keygen_rejects_a_bad_key_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--key-id", "../evil", "--out-dir", str(tmp_path)]) == 1
    assert "(KEY_ID_INVALID)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --- issue ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SEAT_KINDS, ids=lambda k: k.value)
def test_issue_each_kind_reads_back_with_the_public_key(
    kind: LicenseKind, key_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = date.today()
    text = issue(capsys, key_dir, "--kind", kind.value)
    after = date.today()
    assert text.startswith(ARMOUR_BEGIN + "\n")
    assert text.endswith(ARMOUR_END + "\n")
    key = read_back(text, key_dir)
    assert key.kind is kind
    assert key.seats == 5
    assert key.customer == "ACME"
    assert key.major_version == 6
    assert key.signing_key_id == KEY_ID
    assert re.fullmatch(r"L-[0-9A-F]{12}", key.license_id)
    assert before <= key.purchase_date <= after
    assert before <= key.issue_date <= after
    assert key.upgrades_license_id is None
    assert key.installation_id is None


def test_issue_with_every_option_writes_the_key_to_a_file(
    key_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "acme.key"
    argv = [
        "issue",
        "--signing-key",
        private_file(key_dir),
        "--seats",
        "250",
        "--customer",
        "Müller & Söhne KG",
        "--kind",
        "free-upgrade",
        "--major",
        "7",
        "--license-id",
        "L-ACME-0001",
        "--purchase-date",
        "2026-01-15",
        "--issue-date",
        "2026-02-01",
        "--upgrades",
        "L-ACME-OLD",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert str(out) in capsys.readouterr().out
    key = read_back(out.read_text(), key_dir)
    assert key == LicenseKey(
        signing_key_id=KEY_ID,
        license_id="L-ACME-0001",
        major_version=7,
        seats=250,
        kind=LicenseKind.FREE_UPGRADE,
        customer="Müller & Söhne KG",
        purchase_date=date(2026, 1, 15),
        issue_date=date(2026, 2, 1),
        upgrades_license_id="L-ACME-OLD",
    )


def test_two_issued_keys_get_different_license_ids(
    key_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = read_back(issue(capsys, key_dir), key_dir)
    second = read_back(issue(capsys, key_dir), key_dir)
    assert first.license_id != second.license_id


def test_issue_refuses_zero_seats(key_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["issue", "--signing-key", private_file(key_dir), "--seats", "0", "--customer", "X"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "at least one seat" in captured.err
    assert "(KEY_MALFORMED)" in captured.err


@pytest.mark.parametrize("bad", ["2026-13-01", "2026-02-30", "1.2.2026", "20260115", "today"])
def test_a_bad_date_is_a_usage_error_with_a_clear_message(
    bad: str, key_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["issue", "--signing-key", private_file(key_dir), "--seats", "1", "--customer", "X"]
    assert main([*argv, "--purchase-date", bad]) == 2
    err = capsys.readouterr().err
    assert f"argument --purchase-date: {bad!r} is not a date; write it as YYYY-MM-DD" in err
    assert "Traceback" not in err


def test_a_missing_signing_key_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.private"
    argv = ["issue", "--signing-key", str(missing), "--seats", "1", "--customer", "X"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == f"error: The signing key file {missing} does not exist. (FILE_NOT_FOUND)\n"


def test_a_public_key_is_not_accepted_as_the_signing_key(
    key_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["issue", "--signing-key", public_file(key_dir), "--seats", "1", "--customer", "X"]
    assert main(argv) == 1
    assert "(VENDOR_KEY_FILE_INVALID)" in capsys.readouterr().err


# --- extend -----------------------------------------------------------------------------


def test_extend_issues_an_evaluation_extension(
    key_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "extend",
        "--signing-key",
        private_file(key_dir),
        "--installation-id",
        "7f1c2e4a-0000-4000-8000-000000000001",
        "--until",
        "2026-12-31",
        "--customer",
        "ACME",
    ]
    assert main(argv) == 0
    key = read_back(capsys.readouterr().out, key_dir)
    assert key.kind is LicenseKind.EVALUATION_EXTENSION
    assert key.seats == 0
    assert key.installation_id == "7f1c2e4a-0000-4000-8000-000000000001"
    assert key.evaluation_until == date(2026, 12, 31)
    assert key.customer == "ACME"
    assert key.major_version == 6


# --- inspect ----------------------------------------------------------------------------


@pytest.fixture
def key_file(key_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """An issued purchased key for 'ACME', 5 seats, license id L-INSPECT-1."""
    path = tmp_path / "issued.key"
    path.write_text(issue(capsys, key_dir, "--license-id", "L-INSPECT-1"))
    return path


def test_inspect_verifies_against_the_trusted_key(
    key_file: Path, key_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(key_file), "--trust", public_file(key_dir)]) == 0
    out = capsys.readouterr().out
    assert f"signature: valid (key id {KEY_ID})" in out
    assert re.search(r"^license id:\s+L-INSPECT-1$", out, re.MULTILINE)
    assert re.search(r"^customer:\s+ACME$", out, re.MULTILINE)
    assert re.search(r"^seats:\s+5$", out, re.MULTILINE)
    assert re.search(r"^kind:\s+purchased$", out, re.MULTILINE)
    assert "UNVERIFIED" not in out


def test_inspect_json(key_file: Path, key_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(key_file), "--trust", public_file(key_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["signature"] == {
        "status": "valid",
        "key_id": KEY_ID,
        "reason": None,
        "message": None,
    }
    assert report["fields"]["lid"] == "L-INSPECT-1"
    assert report["fields"]["seats"] == 5
    assert report["key"].startswith("OSLK1.")


def test_inspect_with_a_key_of_another_id_reports_an_unknown_signer(
    key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    assert main(["keygen", "--key-id", "other", "--out-dir", str(other)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(key_file), "--trust", public_file(other, "other")]) == 1
    captured = capsys.readouterr()
    assert "signature: REJECTED (KEY_UNKNOWN_SIGNER)" in captured.out
    assert captured.err.startswith("error: ")
    assert captured.err.endswith("(KEY_UNKNOWN_SIGNER)\n")


def test_inspect_with_another_key_of_the_same_id_reports_a_bad_signature(
    key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    impostor = tmp_path / "impostor"
    assert main(["keygen", "--key-id", KEY_ID, "--out-dir", str(impostor)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(key_file), "--trust", public_file(impostor), "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["signature"]["status"] == "rejected"
    assert report["signature"]["reason"] == "KEY_BAD_SIGNATURE"
    assert "signature does not match" in captured.err


def test_inspect_without_trust_decodes_but_says_it_is_unverified(
    key_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(key_file.read_text()))
    assert main(["inspect"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("UNVERIFIED")
    assert "signature: not checked" in out
    assert re.search(r"^license id:\s+L-INSPECT-1$", out, re.MULTILINE)
    assert "signature: valid" not in out


def test_inspect_without_trust_json_says_unchecked(
    key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(key_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["signature"]["status"] == "unchecked"
    assert report["fields"]["customer"] == "ACME"


def test_inspect_of_a_tampered_key_is_rejected(
    key_file: Path, key_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A genuine signature, but from another key: moved onto this key's payload.
    other = issue(capsys, key_dir, "--license-id", "L-OTHER")
    payload = "".join(key_file.read_text().splitlines()[1:-1]).split(".")[1]
    signature = "".join(other.splitlines()[1:-1]).split(".")[2]
    key_file.write_text(f"OSLK1.{payload}.{signature}\n")
    assert main(["inspect", str(key_file), "--trust", public_file(key_dir)]) == 1
    captured = capsys.readouterr()
    assert "signature: REJECTED (KEY_BAD_SIGNATURE)" in captured.out
    assert re.search(r"^license id:\s+L-INSPECT-1$", captured.out, re.MULTILINE)
    assert "(KEY_BAD_SIGNATURE)" in captured.err


def test_inspect_of_something_that_is_not_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mail.txt"
    path.write_text("Dear customer, please find your key attached.\n")
    assert main(["inspect", str(path)]) == 1
    err = capsys.readouterr().err
    assert "not an OfficeStatus license key" in err
    assert "(KEY_MALFORMED)" in err


def test_inspect_escapes_control_characters_of_an_unverified_key(
    key_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Neither the tool nor LicenseKey accepts such a name, so a forger with their own
    # key writes the payload by hand.
    good = LicenseKey(
        signing_key_id="forger",
        license_id="L-1",
        major_version=6,
        seats=1,
        kind=LicenseKind.PURCHASED,
        customer="ACME",
        purchase_date=date(2026, 1, 1),
        issue_date=date(2026, 1, 1),
    )
    payload = json.dumps({**good.payload(), "customer": "ACME\x1b[2J"}).encode()
    body = "OSLK1." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    signature = SigningKey.generate("forger").private_key.sign(body.encode())
    path = tmp_path / "forged.key"
    path.write_text(body + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode())
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "'ACME\\x1b[2J'" in out


def test_issue_refuses_control_characters_in_the_customer_name(
    key_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["issue", "--signing-key", private_file(key_dir), "--seats", "1"]
    for bad in ("ACME\nInc", "ACME\u202eInc"):
        assert main([*argv, "--customer", bad]) == 1
        assert "(CUSTOMER_INVALID)" in capsys.readouterr().err
    # A no-break space is odd but harmless, and pasted names carry them.
    assert main([*argv, "--customer", "ACME\xa0Inc"]) == 0


# --- the installed command --------------------------------------------------------------


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: officestatus-vendor" in capsys.readouterr().err


def test_the_installed_console_script_runs() -> None:
    script = Path(sys.executable).parent / "officestatus-vendor"
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    for command in ("keygen", "issue", "extend", "inspect"):
        assert command in done.stdout


def test_the_installed_console_script_fails_without_a_traceback(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "officestatus-vendor"
    argv = ["issue", "--signing-key", str(tmp_path / "missing"), "--seats", "1", "--customer", "X"]
    done = subprocess.run(
        [str(script), *argv], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr
