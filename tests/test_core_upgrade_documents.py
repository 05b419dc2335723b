"""The upgrade documents as text: a quote reads back as it was written, an edited one no
longer matches its prices, and a file that is not what it claims is refused with its
reason code. The vendor tool's commands over these are tested in test_upgrade_e2e.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from officestatus.formats import UPGRADE_REQUEST_FORMAT, UPGRADE_REQUEST_VERSION
from officestatus_server.core.keys import LicenseKind
from officestatus_server.core.upgrade import Holding, Outcome, Quote, QuoteLine, TargetRelease
from officestatus_server.core.upgrade_documents import (
    QUOTE_FORMAT,
    QUOTE_VERSION,
    quote_json,
    read_quote,
    request_key_texts,
)
from officestatus_server.errors import InvalidInput

TARGET = TargetRelease(7, released=date(2027, 4, 15), announced=date(2027, 4, 1))
FREE = QuoteLine(
    Holding("L-NEW", 6, 10, LicenseKind.PURCHASED, "Acme", date(2027, 3, 1)),
    Outcome.FREE,
    Decimal("0.00"),
    "purchased within the window",
)
SITE = QuoteLine(
    Holding("L-SITE", 6, 50, LicenseKind.SITE, "Acme", date(2020, 1, 9)),
    Outcome.DISCOUNTED,
    Decimal("1450.00"),
    "50% of the full fee",
)
FORGED = QuoteLine(
    Holding(
        "L-FAKE", 6, 500, LicenseKind.PURCHASED, "?", date.min, verified=False, problem="forged"
    ),
    Outcome.NOT_ELIGIBLE,
    Decimal("0.00"),
    "the signature does not verify",
)
QUOTE = Quote(TARGET, "EUR", (FREE, SITE, FORGED))
KEY_OF = {"L-NEW": "OSLK1.new.sig", "L-SITE": "OSLK1.site.sig"}


def _refusal(read: Callable[[str, str], object], text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        read(text, "the-file.json")
    return caught.value


def test_a_quote_reads_back_as_it_was_written() -> None:
    written = quote_json(QUOTE, KEY_OF)
    document = json.loads(written)
    assert (document["format"], document["version"]) == (QUOTE_FORMAT, QUOTE_VERSION)
    assert document["total"] == "1450.00"
    assert [line["key"] for line in document["lines"]] == ["OSLK1.new.sig", "OSLK1.site.sig", None]
    # The purchase date of a key that does not verify is nobody's word: not written.
    assert [line["purchase_date"] for line in document["lines"]] == [
        "2027-03-01", "2020-01-09", None
    ]  # fmt: skip
    read = read_quote(written, "quote.json")
    assert read.target == TARGET
    assert read.key_texts == ("OSLK1.new.sig", "OSLK1.site.sig")
    assert read.quoted == {
        "L-NEW": ("free", "0.00"),
        "L-SITE": ("discounted", "1450.00"),
        "L-FAKE": ("not eligible", "0.00"),
    }
    assert read.matches(QUOTE)


def test_a_quote_without_an_announcement_reads_back_without_one() -> None:
    released_only = Quote(TargetRelease(7, released=date(2027, 4, 15)), "EUR", (FREE,))
    assert read_quote(quote_json(released_only, KEY_OF), "q").target.announced is None


def test_an_edited_quote_no_longer_matches_what_the_policy_says() -> None:
    document = json.loads(quote_json(QUOTE, KEY_OF))
    document["lines"][1]["outcome"], document["lines"][1]["price"] = "free", "0.00"
    assert not read_quote(json.dumps(document), "quote.json").matches(QUOTE)
    # A license the quote did not list does not match either.
    del document["lines"][1]
    assert not read_quote(json.dumps(document), "quote.json").matches(QUOTE)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json", "Expecting value"),
        ("[]", "has no attribute 'get'"),
        (json.dumps({"format": "officestatus-upgrade-request", "licenses": []}), "not a quote"),
        (json.dumps({"format": QUOTE_FORMAT, "lines": []}), "'target'"),
        (
            json.dumps(
                {
                    "format": QUOTE_FORMAT,
                    "target": {"major": 7, "released": "15 April", "announced": None},
                    "lines": [],
                }
            ),
            "Invalid isoformat string",
        ),
    ],
)
def test_a_file_that_is_no_quote_is_refused(text: str, why: str) -> None:
    refusal = _refusal(read_quote, text)
    assert refusal.reason == "QUOTE_INVALID"
    assert refusal.message.startswith(
        "the-file.json is not a quote from `officestatus-vendor quote --out` ("
    )
    assert why in refusal.message


def _request(licenses: list[Any], **fields: Any) -> str:
    """A request as `officestatus-admin upgrade-request` writes it (the fields that matter)."""
    document = {"format": UPGRADE_REQUEST_FORMAT, "version": UPGRADE_REQUEST_VERSION}
    return json.dumps({**document, "licenses": licenses, **fields})


def test_a_request_gives_the_keys_it_carries() -> None:
    licenses = [
        {"license_id": "L-A", "key": "OSLK1.a.sig"},
        {"license_id": "L-B", "key": ""},
        {"license_id": "L-C"},
        {"license_id": "L-D", "key": "OSLK1.d.sig"},
    ]
    assert request_key_texts(_request(licenses), "r.json") == ["OSLK1.a.sig", "OSLK1.d.sig"]
    assert request_key_texts(_request([]), "r.json") == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "Expecting property name"),
        ('"a string"', "has no attribute 'get'"),
        (json.dumps({"format": QUOTE_FORMAT, "licenses": []}), "not an upgrade request"),
        (json.dumps({"format": UPGRADE_REQUEST_FORMAT}), "'licenses'"),
        (_request(["OSLK1.a.sig"]), "has no attribute 'get'"),
    ],
)
def test_a_file_that_is_no_request_is_refused(text: str, why: str) -> None:
    refusal = _refusal(request_key_texts, text)
    assert refusal.reason == "REQUEST_INVALID"
    assert refusal.message.startswith("the-file.json is not an OfficeStatus upgrade request (")
    assert refusal.message.endswith(
        "); ask the customer for the file `officestatus-admin upgrade-request` writes."
    )
    assert why in refusal.message
