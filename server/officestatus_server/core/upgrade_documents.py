"""The two documents of an upgrade, as text: the customer's request and the vendor's quote.

    upgrade request  officestatus-upgrade-request   written by the customer's
                     (officestatus.formats)         `officestatus-admin upgrade-request`,
                                                    read by `officestatus-vendor quote`
    upgrade quote    officestatus-upgrade-quote     written by `officestatus-vendor quote
                     (QUOTE_FORMAT, here)           --out`, read by `officestatus-vendor
                                                    upgrade`

Both are JSON objects that say what they are in their "format" field and which revision
of it in "version". Only the signed keys in them are believed: the other fields are there
for people, and `upgrade` prices a quote's keys again and compares (`ReadQuote.matches`).
The request's name is the protocol package's, since the client writes it; the quote's is
here, since only the vendor's tool reads and writes it.

Pure: text in, values out, and the other way; the command line reads and writes the
files. A document that is not what it claims raises `InvalidInput` (REQUEST_INVALID,
QUOTE_INVALID) naming the file it came from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from officestatus.formats import UPGRADE_REQUEST_FORMAT
from officestatus_server.core.upgrade import Quote, QuoteLine, TargetRelease
from officestatus_server.errors import InvalidInput

QUOTE_FORMAT = "officestatus-upgrade-quote"
QUOTE_VERSION = 1


def request_key_texts(text: str, source: str) -> list[str]:
    """The signed key texts an upgrade request carries; `source` names it in a refusal."""
    try:
        request = json.loads(text)
        if request.get("format") != UPGRADE_REQUEST_FORMAT:
            raise ValueError("not an upgrade request")
        return [str(lic["key"]) for lic in request["licenses"] if lic.get("key")]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"{source} is not an OfficeStatus upgrade request ({exc}); ask the "
            "customer for the file `officestatus-admin upgrade-request` writes.",
            reason="REQUEST_INVALID",
        ) from None


def quote_json(result: Quote, key_of: Mapping[str, str]) -> str:
    """The quote document for `result`, with each verified license's key from `key_of`."""
    return json.dumps(_quote_document(result, key_of), indent=2)


def _quote_document(result: Quote, key_of: Mapping[str, str]) -> dict[str, Any]:
    target = result.target
    return {
        "format": QUOTE_FORMAT,
        "version": QUOTE_VERSION,
        "target": {
            "major": target.major,
            "released": target.released.isoformat(),
            "announced": target.announced.isoformat() if target.announced else None,
        },
        "currency": result.currency,
        "total": str(result.total),
        "lines": [_line_document(line, key_of) for line in result.lines],
    }


def _line_document(line: QuoteLine, key_of: Mapping[str, str]) -> dict[str, Any]:
    h = line.holding
    return {
        "license_id": h.license_id,
        "kind": h.kind.value,
        "seats": h.seats,
        "major": h.major,
        "customer": h.customer,
        "purchase_date": h.purchase_date.isoformat() if h.verified else None,
        "verified": h.verified,
        "outcome": line.outcome.value,
        "price": str(line.price),
        "rule": line.rule,
        "key": key_of.get(h.license_id),
    }


@dataclass(frozen=True)
class ReadQuote:
    """What a quote file says: its target release, its keys, and what it quoted for each
    license id (outcome and price, as written: anyone may have edited the file)."""

    target: TargetRelease
    key_texts: tuple[str, ...]
    quoted: Mapping[object, tuple[object, object]]

    def matches(self, priced: Quote) -> bool:
        """Whether the quote says, for every license of `priced`, what `priced` says."""
        now = {
            line.holding.license_id: (line.outcome.value, str(line.price)) for line in priced.lines
        }
        return not any(self.quoted.get(lid) != value for lid, value in now.items())


def read_quote(text: str, source: str) -> ReadQuote:
    """The quote `quote_json` wrote; `source` names the file in a refusal."""
    try:
        document = json.loads(text)
        if document.get("format") != QUOTE_FORMAT:
            raise ValueError("not a quote")
        raw_target = document["target"]
        target = TargetRelease(
            int(raw_target["major"]),
            date.fromisoformat(raw_target["released"]),
            date.fromisoformat(raw_target["announced"]) if raw_target["announced"] else None,
        )
        texts = tuple(str(line["key"]) for line in document["lines"] if line.get("key"))
        quoted = {
            line["license_id"]: (line["outcome"], line["price"]) for line in document["lines"]
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"{source} is not a quote from `officestatus-vendor quote --out` ({exc}).",
            reason="QUOTE_INVALID",
        ) from None
    return ReadQuote(target, texts, quoted)


__all__ = [
    "QUOTE_FORMAT",
    "QUOTE_VERSION",
    "ReadQuote",
    "quote_json",
    "read_quote",
    "request_key_texts",
]
