"""Remove secrets (SAS signatures, account keys, bearer tokens) from text before anyone sees it."""

from __future__ import annotations

import re

_PATTERNS = (
    (re.compile(r"(?i)([?&]sig=)[^&\s'\"]+"), r"\1REDACTED"),
    (re.compile(r"(?i)(AccountKey=)[^;\s'\"]+"), r"\1REDACTED"),
    (re.compile(r"(?i)(SharedKey\s+[^:\s]+:)[^\s'\"]+"), r"\1REDACTED"),
    # A token, not the English word in "The Bearer token is for audience ...": long, or not all lower-case letters.
    (re.compile(r"(?i)(Bearer\s+)(?:[\w.~+/=-]{20,}|[\w.~+/=-]*(?-i:[A-Z0-9._~+/=-])[\w.~+/=-]*)"), r"\1REDACTED"),
)


def redact(text: str) -> str:
    """Return ``text`` with SAS signatures, account keys and tokens replaced by ``REDACTED``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
