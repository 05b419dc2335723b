"""User names: what counts as one, and when two names are the same user."""

from __future__ import annotations

import pytest

from officestatus_server.core.names import MAX_NAME_LENGTH, clean_name, name_key
from officestatus_server.errors import InvalidInput

CLEAN = [
    pytest.param("alice", "alice", id="plain"),
    pytest.param("  Alice  ", "Alice", id="blanks-trimmed"),
    pytest.param("\tBob Smith\r\n", "Bob Smith", id="tabs-and-newlines-trimmed"),
    pytest.param("\u00a0carol\u3000", "carol", id="unicode-blanks-trimmed"),
    pytest.param("Ann  Lee", "Ann  Lee", id="inner-blanks-kept"),
    pytest.param("CORP\\jdoe", "CORP\\jdoe", id="domain-backslash"),
    pytest.param("jdoe@corp.example", "jdoe@corp.example", id="upn"),
    pytest.param("Zoe\u0308", "Zoë", id="nfc-composed"),
    pytest.param("Łukasz Żółć", "Łukasz Żółć", id="non-ascii-letters"),
    pytest.param("x" * MAX_NAME_LENGTH, "x" * MAX_NAME_LENGTH, id="max-length"),
    pytest.param(" " + "x" * MAX_NAME_LENGTH + " ", "x" * MAX_NAME_LENGTH, id="max-after-trim"),
]


@pytest.mark.parametrize(("raw", "stored"), CLEAN)
def test_clean_name_gives_the_stored_name(raw: str, stored: str) -> None:
    assert clean_name(raw) == stored


REFUSED = [
    pytest.param("", "USER_NAME_EMPTY", id="empty"),
    pytest.param("   ", "USER_NAME_EMPTY", id="only-blanks"),
    pytest.param("\n\t", "USER_NAME_EMPTY", id="only-line-breaks"),
    pytest.param("x" * (MAX_NAME_LENGTH + 1), "USER_NAME_TOO_LONG", id="too-long"),
    pytest.param("nul\x00byte", "USER_NAME_INVALID_CHARACTER", id="nul"),
    pytest.param("tab\tinside", "USER_NAME_INVALID_CHARACTER", id="tab-inside"),
    pytest.param("line\nbreak", "USER_NAME_INVALID_CHARACTER", id="newline-inside"),
    pytest.param("esc\x1b[0m", "USER_NAME_INVALID_CHARACTER", id="escape"),
    pytest.param("del\x7f", "USER_NAME_INVALID_CHARACTER", id="delete"),
    pytest.param("c1\x85x", "USER_NAME_INVALID_CHARACTER", id="c1-control"),
    pytest.param("zero\u200bwidth", "USER_NAME_INVALID_CHARACTER", id="zero-width-space"),
    pytest.param("rtl\u202eevil", "USER_NAME_INVALID_CHARACTER", id="bidi-override"),
    pytest.param("bom\ufeffx", "USER_NAME_INVALID_CHARACTER", id="byte-order-mark"),
    pytest.param("sep\u2028x", "USER_NAME_INVALID_CHARACTER", id="line-separator"),
    pytest.param("lone\ud800x", "USER_NAME_INVALID_CHARACTER", id="lone-surrogate"),
    pytest.param("private\ue000", "USER_NAME_INVALID_CHARACTER", id="private-use"),
]


@pytest.mark.parametrize(("raw", "reason"), REFUSED)
def test_clean_name_refuses_what_is_no_name(raw: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_name(raw)

    assert caught.value.reason == reason
    assert caught.value.message.endswith(".")


def test_too_long_message_gives_both_lengths() -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_name("y" * 300)
    assert "at most 256" in caught.value.message
    assert "has 300" in caught.value.message


def test_invalid_character_message_names_the_code_point() -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_name("ab\x07c")
    assert "U+0007" in caught.value.message


SAME = [
    pytest.param("alice", "ALICE", id="upper"),
    pytest.param("Alice", "aLiCe", id="mixed"),
    pytest.param("ÉLODIE", "élodie", id="accented"),
    pytest.param("ΣΟΦΙΑ", "σοφια", id="greek"),
    pytest.param("CORP\\JDoe", "corp\\jdoe", id="domain"),
    # ᾳ (alpha with iota below, one character) has the one-character capital ᾼ.
    pytest.param("\u1fb3", "\u1fbc", id="alpha-with-iota-below"),
    pytest.param("\u03b1\u0345", "\u1fbc", id="alpha-and-iota-below-composed"),
]


@pytest.mark.parametrize(("one", "other"), SAME)
def test_names_differing_only_in_case_are_the_same(one: str, other: str) -> None:
    assert name_key(clean_name(one)) == name_key(clean_name(other))


DIFFERENT = [
    pytest.param("alice", "alice2", id="suffix"),
    pytest.param("Ann Lee", "AnnLee", id="inner-blank"),
    pytest.param("elodie", "élodie", id="accent-matters"),
    # Windows upper-cases one character at a time: ß has no one-character capital.
    pytest.param("Straße", "STRASSE", id="sharp-s-is-not-ss"),
    # Nor has ᾳ a two-letter capital on Windows: "ΑΙ" is another account.
    pytest.param("\u1fb3", "ΑΙ", id="alpha-with-iota-below-is-not-alpha-iota"),
    # Accents have no case here: a lone iota below stays an accent.
    pytest.param("ma\u0345ria", "MAΙRIA", id="lone-iota-below-stays-an-accent"),
]


@pytest.mark.parametrize(("one", "other"), DIFFERENT)
def test_different_names_stay_different(one: str, other: str) -> None:
    assert name_key(clean_name(one)) != name_key(clean_name(other))
