"""The trusted vendor keys: vendor-keys/ made at the first start, `trust list`, a key file
dropped into vendor-keys/ while the server runs, and backups that include the key files
of the data directory. Against a real server."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from officestatus_client import AdminClient, InvalidArgumentError
from officestatus_server.app import ServerApp
from officestatus_server.core.keys import SigningKey
from officestatus_server.errors import PreconditionFailed
from tests.support import RunningServer, Vendor, admin_cli


async def test_the_first_start_makes_vendor_keys_not_writable_by_others(
    server: RunningServer,
) -> None:
    folder = server.data_dir / "vendor-keys"
    assert folder.is_dir()
    assert not stat.S_IMODE(folder.stat().st_mode) & 0o022


async def test_trust_list_shows_each_key_with_its_file_and_licenses(
    server: RunningServer,
) -> None:
    async with AdminClient(server.address, server.token) as admin:
        await admin.install_license(server.vendor.issue(5, license_id="L-TRUST-1"))
        [key] = await admin.trusted_keys()
    assert (key.key_id, key.license_ids, key.data_dir_name) == ("kms-test", ("L-TRUST-1",), None)
    assert key.source == str(server.config.vendor_key_files[0])
    assert len(key.fingerprint) == 64

    code, out, _ = await admin_cli(server, "trust", "list")
    assert code == 0
    row = out.splitlines()[1].split()
    assert row[:2] == ["kms-test", f"sha256:{key.fingerprint[:16]}"]
    assert "(outside the data directory)" in out
    assert out.rstrip().endswith("L-TRUST-1")
    code, out, _ = await admin_cli(server, "trust", "list", "--json")
    data = json.loads(out)
    assert [k["key_id"] for k in data["keys"]] == ["kms-test"]
    assert data["keys"][0]["license_ids"] == ["L-TRUST-1"]


async def test_a_key_dropped_into_vendor_keys_lets_its_license_install_without_a_restart(
    server: RunningServer,
) -> None:
    other = Vendor(signing=SigningKey.generate("kms-2027"))
    key_text = other.issue(3, license_id="L-NEW-SIGNER")
    async with AdminClient(server.address, server.token) as admin:
        with pytest.raises(InvalidArgumentError) as refused:
            await admin.install_license(key_text)
        assert refused.value.reason == "KEY_UNKNOWN_SIGNER"
        assert "vendor-keys/" in refused.value.message

        other.write_public_key(server.data_dir / "vendor-keys")
        lic, status = await admin.install_license(key_text)
        keys = {k.key_id: k for k in await admin.trusted_keys()}
    assert (lic.license_id, lic.counts, status.seats_total) == ("L-NEW-SIGNER", True, 3)
    assert keys["kms-2027"].data_dir_name == "vendor-keys/kms-2027.pub"
    assert keys["kms-2027"].license_ids == ("L-NEW-SIGNER",)


async def test_a_stored_license_whose_signer_was_untrusted_counts_once_its_key_appears(
    server: RunningServer,
) -> None:
    other = Vendor(signing=SigningKey.generate("kms-late"))
    folder = server.data_dir / "vendor-keys"
    path = other.write_public_key(folder)
    async with AdminClient(server.address, server.token) as admin:
        await admin.install_license(other.issue(4, license_id="L-LATE-1"))
    path.unlink()  # the key file lost: after a restart the license does not verify
    await server.restart()
    async with AdminClient(server.address, server.token) as admin:
        assert (await admin.status()).seats_total == 0
        other.write_public_key(folder)
        # An install that meets an unknown signer reads vendor-keys/ again.
        await admin.install_license(other.issue(2, license_id="L-LATE-2"))
        status = await admin.status()
    assert status.seats_total == 6


async def test_a_world_writable_vendor_keys_is_refused_at_start(server: RunningServer) -> None:
    await server.stop()
    folder = server.data_dir / "vendor-keys"
    os.chmod(folder, 0o777)
    with pytest.raises(PreconditionFailed) as refused:
        ServerApp(server.config)
    assert refused.value.reason == "VENDOR_KEYS_DIR_UNSAFE"
    assert "chmod o-w" in refused.value.message


async def test_a_backup_holds_the_key_files_of_the_data_directory(
    server: RunningServer, tmp_path: Path
) -> None:
    other = Vendor(signing=SigningKey.generate("kms-inside"))
    path = other.write_public_key(server.data_dir / "vendor-keys")
    async with AdminClient(server.address, server.token) as admin:
        await admin.install_license(other.issue(1, license_id="L-IN-1"))  # reads it
    target = tmp_path / "copy.db"
    code, out, _ = await admin_cli(server, "backup", str(target))
    assert code == 0
    saved = tmp_path / "copy.db.vendor-keys" / "kms-inside.pub"
    assert saved.read_text() == path.read_text()
    # The key given with --vendor-key is outside the data directory: named, not copied.
    assert str(server.config.vendor_key_files[0]) in out
    assert "put the files of" in out
    assert sorted(p.name for p in saved.parent.iterdir()) == ["kms-inside.pub"]

    code, out, _ = await admin_cli(server, "backup", str(tmp_path / "again.db"), "--json")
    data = json.loads(out)
    assert data["vendor_key_files"] == [str(tmp_path / "again.db.vendor-keys" / "kms-inside.pub")]
    assert data["vendor_keys_outside_data_dir"] == [str(server.config.vendor_key_files[0])]
