"""User names: what counts as one, and when two are the same.

Names compare as Windows account names do: case-insensitively, character by
character. Leading and trailing blanks are not part of a name. Control and format
characters, unpaired surrogates and names longer than a Windows principal name can be
are refused.
"""

from __future__ import annotations

import functools
import unicodedata

from officestatus_server.errors import InvalidInput

MAX_NAME_LENGTH = 256
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


# Every login cleans and compares a name: remember the recent ones (pure functions).
_CACHE = 65536


def clean_name(raw: str) -> str:
    """The name as it will be stored and shown; raises InvalidInput when it is no name."""
    if len(raw) <= MAX_NAME_LENGTH:
        return _clean_name(raw)
    # Longer input is never a cache key (padding would make each one a large entry): what
    # is left after the blanks are stripped is, when it can be a name at all.
    stripped = raw.strip()
    if len(stripped) <= MAX_NAME_LENGTH:
        return _clean_name(stripped)
    return _clean_name.__wrapped__(stripped)


@functools.lru_cache(maxsize=_CACHE)
def _clean_name(raw: str) -> str:
    name = unicodedata.normalize("NFC", raw.strip())
    if not name:
        raise InvalidInput("A user name cannot be empty.", reason="USER_NAME_EMPTY")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"A user name can have at most {MAX_NAME_LENGTH} characters; this one has {len(name)}.",
            reason="USER_NAME_TOO_LONG",
        )
    ch = first_control_character(name)
    if ch is not None:
        raise InvalidInput(
            f"The user name {name[:60]!r} contains the character U+{ord(ch):04X}, "
            "which cannot be part of a user name.",
            reason="USER_NAME_INVALID_CHARACTER",
        )
    return name


def first_control_character(text: str) -> str | None:
    """The first character that has no place in a name shown on a screen: control and
    format characters, line and paragraph separators, surrogates, private or unassigned
    code points."""
    return next((c for c in text if unicodedata.category(c) in _REFUSED_CATEGORIES), None)


def name_key(name: str) -> str:
    """The form two names are compared in: each character upper-cased on its own.

    Windows compares account names through a one-to-one upper-case table, so "Straße" and
    "STRASSE" are two accounts there; full case folding would make them one. Accents are
    taken apart first and put together after, so "İ" and "i̇" (i with a dot above) meet.
    Accents have no case here: the Greek iota below (U+0345) stays an accent, so "ᾳ" meets
    "ᾼ" and not "ΑΙ". (Windows would upper-case a lone U+0345 to "Ι"; after accents are
    put together again that cannot be done consistently, so a key would not be its own key.)
    """
    if name.isascii():
        return name.upper()  # the same, for the names most offices have, and much faster
    if len(name) > MAX_NAME_LENGTH:
        return _unicode_key.__wrapped__(name)  # never a cache key
    return _unicode_key(name)


@functools.lru_cache(maxsize=_CACHE)
def _unicode_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFD", name)
    return unicodedata.normalize("NFC", "".join(_upper(c) for c in decomposed))


def _upper(ch: str) -> str:
    if unicodedata.combining(ch):
        # A mark stays a mark: the Greek iota below (U+0345) would become a letter.
        return ch
    upper = ch.upper()
    return upper if len(upper) == 1 else ch
