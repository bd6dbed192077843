"""Keep SAS signatures out of messages and logs."""

from __future__ import annotations

import re

_SIGNATURE = re.compile(r"(?i)(\bsig=)[^&#\s\"'<>]*")
REDACTED = "REDACTED"


def redact_url(text: str) -> str:
    """Replace every SAS ``sig=`` value in ``text`` (a URL or a message quoting URLs).

    Args:
        text: A URL, or any text that may contain URLs with a shared access signature.

    Returns:
        The text with each ``sig=<value>`` turned into ``sig=REDACTED``; the rest is unchanged.
    """
    return _SIGNATURE.sub(rf"\g<1>{REDACTED}", text)
