"""`officestatus-admin user import` of a 2.x users.csv, `user remove`, and `--from-file`.

Against a real in-process server (tests/support.py) on real SQLite, through the CLI's
`run` as an admin runs it, and through the typed client.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from officestatus_client import (
    AdminClient,
    AlreadyExistsError,
    DenyReason,
    NotFoundError,
    SeatClient,
    SeatsExhaustedError,
)
from officestatus_client._user_import import UsersFileError, names_in, read_users_csv
from officestatus_server.core.names import name_key
from officestatus_server.core.user_plans import ImportedUser, plan_import_users, plan_remove_users
from officestatus_server.errors import LicenseServerError, NotFound, PreconditionFailed
from tests.core_support import add, at, licensed
from tests.support import RunningServer, Vendor, admin_cli

# As osexport.exe writes it: Windows-1252, CRLF, no byte order mark, CSV quoting.
EXPORT_2X = (
    "UserName,Enabled\r\n"
    "alice,Y\r\n"
    '"Smith, John",Y\r\n'
    '"Bob ""the builder""",N\r\n'
    "José,Y\r\n"
    "dora,n\r\n"
)
EXPORTED = [
    ("alice", True),
    ("Smith, John", True),
    ('Bob "the builder"', False),
    ("José", True),
    ("dora", False),
]


def csv_file(tmp_path: Path, data: bytes, name: str = "users.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def users_of(admin: AdminClient) -> list[tuple[str, bool]]:
    return sorted((u.name, u.enabled) for u in await admin.list_users())


async def actions(admin: AdminClient) -> list[str]:
    return [r.action for r in await admin.audit(100)]


async def install(server: RunningServer, admin: AdminClient, seats: int) -> None:
    await admin.install_license(server.vendor.issue(seats))


# --- user import --------------------------------------------------------------------


async def test_a_windows_1252_export_is_imported_in_one_change(
    server: RunningServer, admin: AdminClient, tmp_path: Path
) -> None:
    data = EXPORT_2X.encode("cp1252")
    assert b"Jos\xe9" in data  # é as Windows-1252 writes it: not UTF-8
    await install(server, admin, 3)
    before = await actions(admin)

    code, out, err = await admin_cli(server, "user", "import", str(csv_file(tmp_path, data)))

    assert (code, err) == (0, "")
    assert "as Windows-1252: 5 users, 3 marked enabled" in out
    assert "Imported 5 users (3 enabled)" in out
    assert "3 of 3 seats in use" in out
    assert await users_of(admin) == sorted(EXPORTED)
    after = await actions(admin)
    # One change, one record.
    assert after[0] == "users.import"
    assert after[1:] == before
    [record] = [r for r in await admin.audit(1)]
    assert record.result.startswith("imported 5 users, 3 enabled; 3 of 3 seats in use")
    # The enabled ones hold seats: they sign in.
    async with SeatClient(server.address) as seat:
        assert (await seat.login("josé")).granted
        assert (await seat.login("Smith, John")).granted
        refused = await seat.login('Bob "the builder"')
        assert refused.reason is DenyReason.USER_DISABLED


@pytest.mark.parametrize(
    ("bom", "said"), [(b"", "as UTF-8:"), (codecs.BOM_UTF8, "as UTF-8 with a byte order mark:")]
)
async def test_utf8_with_or_without_a_byte_order_mark(
    server: RunningServer, admin: AdminClient, tmp_path: Path, bom: bytes, said: str
) -> None:
    text = 'UserName,Enabled\nZoë,Y\n"Łukasz, Ø",N\nalice,Y\n'
    code, out, err = await admin_cli(
        server, "user", "import", str(csv_file(tmp_path, bom + text.encode()))
    )
    assert (code, err) == (0, "")
    assert said in out
    # The byte order mark is not part of the header, nor of any name.
    assert await users_of(admin) == [("Zoë", True), ("alice", True), ("Łukasz, Ø", False)]


async def test_json_says_the_encoding(
    server: RunningServer, admin: AdminClient, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, EXPORT_2X.encode("cp1252"))
    code, out, _ = await admin_cli(server, "--json", "user", "import", str(path))
    assert code == 0
    reply = json.loads(out)
    assert reply["encoding"] == "Windows-1252"
    assert [(u["name"], u["enabled"]) for u in reply["users"]] == EXPORTED


async def test_lines_it_cannot_read_are_named_and_nothing_is_imported(
    server: RunningServer, admin: AdminClient, tmp_path: Path
) -> None:
    data = (
        "UserName,Enabled\r\n"
        "alice,Y\r\n"
        "bob,yes\r\n"  # line 3
        "Smith, John,Y\r\n"  # line 4: a comma outside quotes
        ",N\r\n"  # line 5: no name
        "ALICE,N\r\n"  # line 6: alice again
    ).encode("cp1252")
    before = await actions(admin)

    code, out, err = await admin_cli(server, "user", "import", str(csv_file(tmp_path, data)))

    assert (code, out) == (2, "")
    assert "nothing was imported" in err
    assert "line 3: Enabled must be Y or N, found 'yes'" in err
    assert "line 4: expected a name and Y or N, found 3 fields" in err
    assert "double quotes" in err
    assert "line 5: the user name is empty" in err
    assert "line 6: 'ALICE' is on line 2 already" in err
    assert await users_of(admin) == []
    assert await actions(admin) == before


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            b"Name,Active\r\nalice,Y\r\n",
            "line 1: the first line must be the header UserName,Enabled",
        ),
        (b'UserName,Enabled\r\nalice,Y\r\n"bob,N\r\ncarol,Y\r\n', "line 3: a double quote"),
        (b'UserName,Enabled\r\n"bob"x,N\r\n', "line 2: a quoted name goes on after"),
        (b"UserName,Enabled\r\nal\x81ce,Y\r\n", "line 2: byte 0x81 is neither UTF-8 nor"),
        (codecs.BOM_UTF16_LE + "UserName".encode("utf-16-le"), "the file is UTF-16"),
        (b"", "the file is empty"),
        (b"UserName,Enabled\r\n", "only the header"),
        (b"UserName,Enabled\r\nal\x07ce,Y\r\n", "line 2: the name 'al\\x07ce' holds"),
    ],
)
def test_files_that_are_not_a_users_csv(tmp_path: Path, data: bytes, problem: str) -> None:
    with pytest.raises(UsersFileError) as refused:
        read_users_csv(csv_file(tmp_path, data))
    assert problem in str(refused.value)


def test_a_file_with_blank_lines_and_a_dos_end_mark(tmp_path: Path) -> None:
    read = read_users_csv(csv_file(tmp_path, b"UserName,Enabled\r\n\r\nann , y\r\n\r\n\x1a"))
    assert [(r.line, r.name, r.enabled) for r in read.rows] == [(3, "ann", True)]
    assert read.encoding == "UTF-8"  # plain ASCII is UTF-8 as well


async def test_too_many_enabled_for_the_seats_is_refused_whole(
    server: RunningServer, admin: AdminClient, tmp_path: Path
) -> None:
    await install(server, admin, 2)
    await admin.add_users(["erin"], enable=True)
    before = await actions(admin)
    path = csv_file(tmp_path, EXPORT_2X.encode("cp1252"))

    code, out, err = await admin_cli(server, "user", "import", str(path))

    assert (code, out) == (1, "")
    assert "Nothing was imported: the import enables 3 users." in err
    assert "1 of 2 seats are in use (1 free)" in err
    assert "SEATS_EXHAUSTED" in err
    assert await users_of(admin) == [("erin", True)]
    assert await actions(admin) == before
    with pytest.raises(SeatsExhaustedError):
        await admin.import_users(EXPORTED)


async def test_an_import_naming_an_existing_user_is_refused_whole(
    server: RunningServer, admin: AdminClient
) -> None:
    await admin.add_users(["JOSÉ"])
    with pytest.raises(AlreadyExistsError) as refused:
        await admin.import_users(EXPORTED)
    assert "Nothing was imported: already a user: José" in refused.value.message
    assert await users_of(admin) == [("JOSÉ", False)]


async def test_imported_users_take_seats_in_file_order(
    server: RunningServer, admin: AdminClient
) -> None:
    await admin.import_users([("b", True), ("a", False), ("c", True), ("d", True)])
    # Two seats for three enabled: the last one in the file is over capacity.
    await install(server, admin, 2)
    status = await admin.status()
    assert list(status.over_capacity) == ["d"]


# --- user remove ----------------------------------------------------------------------


async def test_remove_refuses_an_enabled_user_unless_forced(
    server: RunningServer, admin: AdminClient
) -> None:
    await install(server, admin, 5)
    await admin.add_users(["ann", "bob"], enable=True)
    await admin.add_users(["cy"])
    before = await actions(admin)

    code, out, err = await admin_cli(server, "user", "remove", "cy", "ANN")
    assert (code, out) == (1, "")
    assert "Still enabled: ann. Disable it first, or force the removal" in err
    assert "USER_ENABLED" in err
    assert await users_of(admin) == [("ann", True), ("bob", True), ("cy", False)]
    assert await actions(admin) == before

    code, out, err = await admin_cli(server, "user", "remove", "cy", "ANN", "--force")
    assert (code, err) == (0, "")
    assert "Removed 2 users: cy, ann." in out
    assert "1 of 5 seats in use" in out
    assert await users_of(admin) == [("bob", True)]
    [record] = await admin.audit(1)
    assert (record.action, record.subject) == ("users.remove", "cy, ann")
    assert "removed 2 users (1 enabled: forced, disabled first); 1 of 5 seats" in record.result
    assert (await admin.verify_audit()).intact
    async with SeatClient(server.address) as seat:
        assert (await seat.login("ann")).reason is DenyReason.USER_UNKNOWN

    # Gone for good, and the seat is free: a restart reads the same.
    await server.restart()
    async with AdminClient(server.address, server.token) as again:
        assert await users_of(again) == [("bob", True)]
        assert (await again.status()).seats_used == 1
        # The name can be used again.
        await again.add_users(["Ann"], enable=True)


async def test_removing_a_disabled_user_and_an_unknown_one(
    server: RunningServer, admin: AdminClient
) -> None:
    await admin.add_users(["ann", "bob"])
    with pytest.raises(NotFoundError) as refused:
        await admin.remove_users(["ann", "nobody"])
    assert "nobody" in refused.value.message
    assert await users_of(admin) == [("ann", False), ("bob", False)]

    removed, status = await admin.remove_users("ann")
    assert [(u.name, u.enabled) for u in removed] == [("ann", False)]
    assert await users_of(admin) == [("bob", False)]
    assert status.users_enabled == 0


async def test_a_removed_users_session_ends_at_its_next_heartbeat(
    server: RunningServer, admin: AdminClient
) -> None:
    await admin.add_users(["ann"], enable=True)
    async with SeatClient(server.address) as seat:
        login = await seat.login("ann")
        assert login.granted
        assert login.session_id
        await admin.remove_users(["ann"], force=True)
        beat = await seat.heartbeat(login.session_id)
        assert not beat.granted
        assert beat.reason is DenyReason.USER_UNKNOWN


async def test_user_remove_with_no_names_is_a_usage_error(server: RunningServer) -> None:
    code, _, err = await admin_cli(server, "user", "remove")
    assert code == 2
    assert "name at least one user" in err


# --- user add --from-file --------------------------------------------------------------


async def test_from_file_skips_comments_blank_lines_and_a_header(
    server: RunningServer, admin: AdminClient, tmp_path: Path
) -> None:
    names = tmp_path / "names.txt"
    names.write_bytes(
        codecs.BOM_UTF8
        + "UserName\r\n# the office\r\nann\r\n\r\n  # old\r\nbob \r\nZoë\r\n".encode()
    )
    code, out, err = await admin_cli(server, "user", "add", "--from-file", str(names))
    assert (code, err) == (0, "")
    assert "Added 3 users: ann, bob, Zoë." in out
    assert await users_of(admin) == [("Zoë", False), ("ann", False), ("bob", False)]


async def test_from_file_refuses_a_users_csv_and_points_to_import(
    server: RunningServer, admin: AdminClient, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, EXPORT_2X.encode("cp1252"))
    code, out, err = await admin_cli(server, "user", "add", "--from-file", str(path))
    assert (code, out) == (2, "")
    assert "nothing was changed" in err
    assert f"officestatus-admin user import {path}" in err
    assert await users_of(admin) == []


def test_names_in_a_windows_1252_list(tmp_path: Path) -> None:
    path = tmp_path / "names.txt"
    assert names_in(path, "Name\r\nJosé\r\n#x\r\n".encode("cp1252")) == ["José"]
    # Only the first line can be a header: a user called "name" later on is a user.
    assert names_in(path, b"ann\nname\n") == ["ann", "name"]


# --- the core rules (pure: a registry and `now` in, a change or a refusal out) ----------


IMPORT_CASES = [
    # (seats installed, users there already and enabled, the import, refusal reason or None)
    pytest.param((), [], [("a", True), ("b", True)], None, id="evaluation-no-limit"),
    pytest.param((3,), ["x"], [("a", True), ("b", True), ("c", False)], None, id="fits"),
    pytest.param(
        (3,), ["x"], [("a", True), ("b", True), ("c", True)], "SEATS_EXHAUSTED", id="one-over"
    ),
    pytest.param((3,), [], [("a", False), ("b", False)], None, id="all-disabled"),
    pytest.param((1,), ["x"], [("a", False), ("b", False)], None, id="disabled-need-no-seats"),
    pytest.param((3,), ["x"], [("X", False)], "USER_EXISTS", id="exists"),
    pytest.param((3,), [], [("a", True), ("A ", False)], "USER_NAME_DUPLICATE", id="duplicate"),
    pytest.param((3,), [], [], "USER_NAMES_EMPTY", id="empty"),
    pytest.param((3,), [], [("a\x00", True)], "USER_NAME_INVALID_CHARACTER", id="bad-name"),
]


@pytest.mark.parametrize(("seats", "there", "imported", "refusal"), IMPORT_CASES)
def test_plan_import_users(
    vendor: Vendor,
    seats: tuple[int, ...],
    there: list[str],
    imported: list[tuple[str, bool]],
    refusal: str | None,
) -> None:
    registry = add(licensed(vendor, *seats), there, at(2)) if there else licensed(vendor, *seats)
    rows = [ImportedUser(n, e) for n, e in imported]
    if refusal is not None:
        with pytest.raises(LicenseServerError) as caught:
            plan_import_users(registry, rows, at(3))
        assert caught.value.reason == refusal
        return
    change = plan_import_users(registry, rows, at(3))
    after = registry.apply(change)
    assert change.audit is not None
    assert change.audit.action == "users.import"
    assert len(after.users) == len(registry.users) + len(imported)
    assert after.enabled_count() == registry.enabled_count() + sum(e for _, e in imported)
    # The enabled ones follow those enabled before, in the order of the import.
    new_enabled = [name_key(n) for n, e in imported if e]
    assert list(after.enabled_order[registry.enabled_count() :]) == new_enabled


def test_plan_remove_users_frees_the_seats_of_forced_removals(vendor: Vendor) -> None:
    registry = add(licensed(vendor, 2), ["a", "b"], at(2))
    registry = add(registry, ["c"], at(2), enable=False)
    with pytest.raises(PreconditionFailed) as caught:
        plan_remove_users(registry, ["c", "a"], False, at(3))
    assert caught.value.reason == "USER_ENABLED"
    with pytest.raises(NotFound):
        plan_remove_users(registry, ["c", "zed"], True, at(3))

    change = plan_remove_users(registry, ["A", "c"], True, at(3))
    after = registry.apply(change)
    assert change.remove_users == ("a", "c")
    assert change.audit is not None
    assert change.audit.result == (
        "removed 2 users (1 enabled: forced, disabled first); 1 of 2 seats in use"
    )
    assert sorted(after.users) == ["B"]
    assert (after.enabled_count(), after.enabled_order) == (1, ("B",))
    # A seat is free again.
    assert add(after, ["d"], at(4)).enabled_count() == 2
