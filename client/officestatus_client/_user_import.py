"""Reading the users a file names: the 2.x `users.csv`, and the plain lists of names.

The 2.x export tool (osexport.exe) writes `users.csv` in Windows-1252 with CRLF line
ends and no byte order mark: a header `UserName,Enabled`, then one user a line, `Y` or
`N`, a name holding a comma or a double quote in double quotes (inner ones doubled).
A file saved again by an editor may be UTF-8, with or without a byte order mark: the
bytes are read as UTF-8 when they are UTF-8, else as Windows-1252, and the caller is told
which. Every line that cannot be read is reported ("line 7: ..."), and then nothing is
read at all: an import is all or nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

HEADER = ("UserName", "Enabled")
# What the server refuses in a name (core/names.py): checked here too, so the line is named.
MAX_NAME_LENGTH = 256
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# At most this many problems are listed; the rest are counted.
MAX_PROBLEMS = 20
# Plain lists of names (`user add --from-file`): a first line that is one of these is a
# header, not a user.
_NAME_HEADERS = frozenset({"USERNAME", "USER NAME", "USER", "NAME", "USERS", "NAMES"})

UTF8_BOM = "UTF-8 with a byte order mark"
UTF8 = "UTF-8"
CP1252 = "Windows-1252"


class UsersFileError(Exception):
    """A file that cannot be read as a whole; `problems` are sentences, most "line N: ..."."""

    def __init__(self, path: Path, problems: list[str], nothing: str = "imported") -> None:
        self.path = path
        self.problems = problems
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        lines = [f"cannot read {path}; nothing was {nothing}:", *(f"  {p}" for p in shown)]
        if more:
            lines.append(f"  and {more} more")
        super().__init__("\n".join(lines))


class ImportRow(NamedTuple):
    """One user of the file, with the line it is on."""

    line: int
    name: str
    enabled: bool


@dataclass(frozen=True)
class UsersFile:
    """The users of a `users.csv`, in file order, and the encoding it was read in."""

    path: Path
    encoding: str
    rows: tuple[ImportRow, ...]

    @property
    def enabled(self) -> int:
        """How many are marked enabled."""
        return sum(1 for row in self.rows if row.enabled)

    def pairs(self) -> list[tuple[str, bool]]:
        """(name, enabled) for each user, as the admin client takes them."""
        return [(row.name, row.enabled) for row in self.rows]


def read_bytes(path: Path) -> bytes:
    """The file's bytes; an OSError says why not."""
    return path.read_bytes()


def decode(path: Path, data: bytes) -> tuple[str, str]:
    """The text and the encoding it was read in: UTF-8 (a byte order mark is dropped),
    else Windows-1252. Raises UsersFileError when it is neither."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UsersFileError(
            path, ["the file is UTF-16; save it as UTF-8 or Windows-1252 (ANSI) and try again"]
        )
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), UTF8_BOM
        except UnicodeDecodeError as exc:
            line = _line_of(data, exc.start)
            raise UsersFileError(
                path,
                [f"line {line}: the file begins as UTF-8 (byte order mark) but this is not UTF-8"],
            ) from None
    try:
        return data.decode("utf-8"), UTF8
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), CP1252
    except UnicodeDecodeError as exc:
        line = _line_of(data, exc.start)
        raise UsersFileError(
            path,
            [
                f"line {line}: byte 0x{data[exc.start]:02X} is neither UTF-8 nor "
                "Windows-1252; is this the users.csv the 2.x export wrote?"
            ],
        ) from None


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_users_csv(path: Path) -> UsersFile:
    """The users of a 2.x `users.csv` (or one like it), all of them or UsersFileError."""
    try:
        data = read_bytes(path)
    except OSError as err:
        raise UsersFileError(path, [err.strerror or str(err)]) from None
    text, encoding = decode(path, data)
    return UsersFile(path, encoding, parse_users_csv(path, text))


def _records(text: str) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """Each CSV record with the line it begins on; a record that is not CSV as an error
    (after which the rest of the file cannot be trusted, so reading stops)."""
    # A DOS end-of-file mark after the last line is not part of the data.
    reader = csv.reader(io.StringIO(text.rstrip("\x1a"), newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, exc
            return
        yield start, record


def parse_users_csv(path: Path, text: str) -> tuple[ImportRow, ...]:
    """The rows of the CSV text: header `UserName,Enabled`, then a name and Y or N a line."""
    problems: list[str] = []
    rows: list[ImportRow] = []
    seen: dict[str, int] = {}
    header_seen = False
    for line, record in _records(text):
        if isinstance(record, csv.Error):
            problems.append(f"line {line}: {_csv_problem(record)}; nothing after it was read")
            break
        if not record or record == [""]:
            continue  # a blank line
        if not header_seen:
            header_seen = True
            if tuple(f.strip().casefold() for f in record) != tuple(h.casefold() for h in HEADER):
                problems.append(
                    f"line {line}: the first line must be the header {','.join(HEADER)} "
                    f"(as the 2.x export writes it), not {_shown(','.join(record))}"
                )
            continue
        row = _row(line, record, problems)
        if row is None:
            continue
        key = _key(row.name)
        if key in seen:
            problems.append(
                f"line {line}: {_shown(row.name)} is on line {seen[key]} already "
                "(names compare regardless of case)"
            )
            continue
        seen[key] = line
        rows.append(row)
    if not header_seen:
        problems.append(f"the file is empty: it has no header {','.join(HEADER)} and no users")
    elif not rows and not problems:
        problems.append("the file names no users: only the header")
    if problems:
        raise UsersFileError(path, problems)
    return tuple(rows)


def _row(line: int, record: list[str], problems: list[str]) -> ImportRow | None:
    if len(record) != 2:
        hint = " (a name holding a comma must be in double quotes)" if len(record) > 2 else ""
        problems.append(
            f"line {line}: expected a name and Y or N, found {len(record)} "
            f"field{'s' if len(record) != 1 else ''}{hint}"
        )
        return None
    raw, flag = record
    name = unicodedata.normalize("NFC", raw.strip())
    problem = _name_problem(name)
    if problem is not None:
        problems.append(f"line {line}: {problem}")
        return None
    enabled = flag.strip().upper()
    if enabled not in ("Y", "N"):
        problems.append(
            f"line {line}: Enabled must be Y or N, found {_shown(flag)} for {_shown(name)}"
        )
        return None
    return ImportRow(line, name, enabled == "Y")


def _name_problem(name: str) -> str | None:
    if not name:
        return "the user name is empty"
    if "\n" in name or "\r" in name:
        return f"the name {_shown(name)} holds a line break (a double quote not closed?)"
    if len(name) > MAX_NAME_LENGTH:
        return f"the name has {len(name)} characters; at most {MAX_NAME_LENGTH} are allowed"
    bad = next((c for c in name if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        return f"the name {_shown(name)} holds the character U+{ord(bad):04X}"
    return None


def _key(name: str) -> str:
    """Names that are one user (the server compares case-insensitively, letter by letter)."""
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in name)


def _csv_problem(error: csv.Error) -> str:
    text = str(error)
    if "unexpected end of data" in text:
        return "a double quote opened here is not closed"
    if "expected after" in text:
        return 'a quoted name goes on after its closing quote (write an inner " as "")'
    return f"not CSV ({text})"


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def names_in(path: Path, data: bytes) -> list[str]:
    """The names of a plain list, one a line (`user add --from-file`): blank lines, lines
    beginning with # and a header line (`UserName`, `Name`, ...) are not names. A 2.x
    `users.csv` is refused: its lines are not names, `user import` reads it."""
    try:
        text, _ = decode(path, data)
    except UsersFileError as exc:
        raise UsersFileError(path, exc.problems, nothing="changed") from None
    names: list[str] = []
    first = True
    for number, raw in enumerate(text.rstrip("\x1a").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if first:
            first = False
            fields = tuple(f.strip().casefold() for f in line.split(","))
            if fields == tuple(h.casefold() for h in HEADER):
                raise UsersFileError(
                    path,
                    [
                        f"line {number}: this is a users.csv of the 2.x export (header "
                        f"{','.join(HEADER)}), not a list of names; read it with "
                        f"`officestatus-admin user import {path}`"
                    ],
                    nothing="changed",
                )
            if line.upper() in _NAME_HEADERS:
                continue
        names.append(line)
    return names
