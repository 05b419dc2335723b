"""How messages phrase numbers and repeat what they were given.

Every refusal and audit text the rules write goes through these, so that "1 user" and
"2 users" read the same everywhere, and a message never grows with its input.
"""

from __future__ import annotations


def count(n: int, noun: str) -> str:
    """ "1 user", "2 users"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def short(text: str, limit: int = 60) -> str:
    """Input as a message repeats it, cut short: a refusal must not grow with its input."""
    return text if len(text) <= limit else text[:limit] + "…"
