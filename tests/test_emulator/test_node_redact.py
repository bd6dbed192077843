"""SAS signatures never reach messages or logs."""

from __future__ import annotations

import pytest

from batch_emulator.node.failures import failure_info
from batch_emulator.node.redact import redact_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "http://127.0.0.1:10000/devstoreaccount1/c/b.txt?sv=2026-10-06&sr=b&sp=r&sig=abc%2Bdef%3D",
            "http://127.0.0.1:10000/devstoreaccount1/c/b.txt?sv=2026-10-06&sr=b&sp=r&sig=REDACTED",
        ),
        ("https://a.blob.core.windows.net/c?SIG=xyz&se=2026", "https://a.blob.core.windows.net/c?SIG=REDACTED&se=2026"),
        ("first ?sig=one&x=1 then 'https://h/p?sig=two'", "first ?sig=REDACTED&x=1 then 'https://h/p?sig=REDACTED'"),
        ("no signature here: https://h/p?sv=1&sp=r", "no signature here: https://h/p?sv=1&sp=r"),
        ("signature=keep&design=keep", "signature=keep&design=keep"),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected


def test_failure_info_redacts_message_and_details() -> None:
    info = failure_info(
        "usererror", "BlobAccessDenied", "GET https://h/c/b?sig=s3cret failed", Url="https://h/c?sig=s3cret"
    )

    assert "s3cret" not in repr(info)
    assert info["details"] == [{"name": "Url", "value": "https://h/c?sig=REDACTED"}]
