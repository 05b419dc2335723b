"""The server's log: one line per event on stderr, as plain text or as JSON lines, set up
once when the server starts (`configure`).

Logins are logged by "officestatus.logins": refusals at info, grants at debug, each
with the fields user, release, reason and machine."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
# The plain text line, as the server has always written it.
# The parent of every logger of the server ("officestatus.service", "officestatus.logins").
SERVER_LOGGER = "officestatus"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A LogRecord's own attributes: any other one was given with `extra=` and is a field.
_PLAIN_RECORD = logging.LogRecord("", logging.INFO, "", 0, "", None, None)
_RECORD_ATTRIBUTES = frozenset(vars(_PLAIN_RECORD)) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the fields
    given with `extra=` (user, release, reason, machine, ...), and an exception's
    traceback as the field `exception` (its newlines escaped, so still one line)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(log_format: str, log_level: str, stream: TextIO | None = None) -> None:
    """Send every logger's records at `log_level` and above to stderr (or `stream`), one
    line each, as `log_format` says ("text" or "json"); replaces any earlier setup."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.getLevelName(log_level.upper())
    # Debug lines are the server's own: the libraries' (asyncio, aiosqlite, grpc) would
    # bury them, so those stay at info and above.
    root.setLevel(max(level, logging.INFO))
    logging.getLogger(SERVER_LOGGER).setLevel(level)
    # Python's warnings (a library's deprecation, say) become log lines too.
    logging.captureWarnings(True)
