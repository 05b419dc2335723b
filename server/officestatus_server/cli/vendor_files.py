"""Reading and writing the vendor tool's files, every failure a refusal that says why.

A file that cannot be read or written raises `InvalidInput` with a reason code
(FILE_NOT_FOUND, FILE_NOT_TEXT, FILE_UNREADABLE, FILE_EXISTS, FILE_UNWRITABLE) and a
sentence naming the file; the tool prints it and exits 1, with no traceback. This module
knows no document format and imports nothing of the other vendor modules.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from officestatus_server.errors import InvalidInput


def read_text(path: str, what: str) -> str:
    """A file's text ('-' for standard input), or InvalidInput saying why not."""
    if path == "-":
        if sys.stdin.isatty():
            print(f"Paste the {what}, then press Ctrl-D.", file=sys.stderr)
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(
            f"The {what} file {path} does not exist.", reason="FILE_NOT_FOUND"
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput(
            f"The {what} file {path} is not a text file.", reason="FILE_NOT_TEXT"
        ) from None
    except OSError as exc:
        raise InvalidInput(
            f"Cannot read the {what} file {path}: {exc.strerror or exc}.",
            reason="FILE_UNREADABLE",
        ) from None


def write_text(path: str, text: str, what: str) -> None:
    """Write ASCII `text` to `path`, replacing what is there, or InvalidInput saying why not."""
    try:
        Path(path).write_text(text, encoding="ascii")
    except OSError as exc:
        raise InvalidInput(
            f"Cannot write the {what} to {path}: {exc.strerror or exc}.",
            reason="FILE_UNWRITABLE",
        ) from None


def create_new_file(path: Path, text: str, mode: int, *, exact_mode: bool) -> None:
    """Create `path` with `mode` from the start; refuse if it exists (even as a symlink).

    O_CREAT|O_EXCL makes the existence check and the creation one step, so a private key
    is never written over an existing file and is never readable by others, not even
    for a moment.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise InvalidInput(
            f"{path} exists already; it was not overwritten.", reason="FILE_EXISTS"
        ) from None
    except OSError as exc:
        raise InvalidInput(
            f"Cannot create {path}: {exc.strerror or exc}.", reason="FILE_UNWRITABLE"
        ) from None
    try:
        if exact_mode:
            # The umask can only remove bits; set the mode exactly so the private key is
            # 0600 whatever the umask, as the documentation promises.
            os.fchmod(fd, mode)
        data = memoryview(text.encode("ascii"))
        while data:
            data = data[os.write(fd, data) :]
        # The key is announced as written; make sure it is on disk before that.
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise InvalidInput(
            f"Cannot write {path}: {exc.strerror or exc}.", reason="FILE_UNWRITABLE"
        ) from None
    os.close(fd)


__all__ = ["create_new_file", "read_text", "write_text"]
