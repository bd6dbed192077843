"""SharedKey verification agrees with the signature azure-batch 15 computes, and refuses anything else."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from azure.batch._patch import BatchSharedKeyAuthPolicy
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest

from batch_emulator.auth import SharedKeyVerifier, string_to_sign
from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
from batch_emulator.errors import AuthenticationFailed

BASE = "http://127.0.0.1:8001"


def signed(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    key: str = DEFAULT_ACCOUNT_KEY,
    account: str = DEFAULT_ACCOUNT_NAME,
) -> tuple[str, str, dict[str, str]]:
    """Sign a request with the SDK's own policy; return raw path, raw query and lower-cased headers."""
    request = HttpRequest(method, url, headers=headers or {}, content=body)
    if body is not None:
        request.headers["Content-Length"] = str(len(body))
    policy = BatchSharedKeyAuthPolicy(AzureNamedKeyCredential(account, key))
    policy.on_request(PipelineRequest(request, PipelineContext(None)))
    parts = urlsplit(url)
    return parts.path, parts.query, {name.lower(): value for name, value in request.headers.items()}


@pytest.fixture
def verifier() -> SharedKeyVerifier:
    return SharedKeyVerifier(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)


@pytest.mark.parametrize(
    ("method", "url", "body", "headers"),
    [
        ("GET", f"{BASE}/pools?api-version=2025-06-01", None, {}),
        (
            "POST",
            f"{BASE}/pools?api-version=2025-06-01",
            b'{"id":"p"}',
            {"Content-Type": "application/json; odata=minimalmetadata"},
        ),
        ("DELETE", f"{BASE}/jobs/j1?api-version=2025-06-01", None, {}),
        ("POST", f"{BASE}/jobs/j1/terminate?api-version=2025-06-01", None, {}),
        ("HEAD", f"{BASE}/pools/p1?api-version=2025-06-01", None, {}),
        (
            "GET",
            f"{BASE}/jobs/j/tasks?api-version=2025-06-01&$filter=state%20eq%20%27completed%27"
            "&$select=id,state&maxresults=60",
            None,
            {},
        ),
        (
            "GET",
            f"{BASE}/jobs/j/tasks/t/files/wd%2Fsub%20dir%2Fout.txt?api-version=2025-06-01",
            None,
            {"ocp-range": "bytes=0-3"},
        ),
        ("GET", f"{BASE}/jobs/j/tasks?api-version=2025-06-01&$skiptoken=a+b&timeOut=30&empty=", None, {}),
        ("DELETE", f"{BASE}/pools/p1?api-version=2025-06-01", None, {"If-Match": '"0x8DC0"'}),
        ("GET", f"{BASE}/prefix/pools?api-version=2025-06-01", None, {}),
    ],
)
def test_accepts_what_the_sdk_signs(
    verifier: SharedKeyVerifier, method: str, url: str, body: bytes | None, headers: dict[str, str]
) -> None:
    raw_path, raw_query, sent = signed(method, url, body=body, headers=headers)
    principal = verifier.verify(method, raw_path, raw_query, sent)
    assert principal.scheme == "SharedKey"
    assert principal.account_name == DEFAULT_ACCOUNT_NAME


def test_string_to_sign_matches_the_documented_example() -> None:
    text = string_to_sign(
        "POST",
        "/pools",
        "api-version=2025-06-01",
        {
            "content-length": "589",
            "content-type": "application/json; odata=minimalmetadata",
            "ocp-date": "Wed, 25 Nov 2026 13:29:26 GMT",
        },
        "testaccount",
    )
    assert text == (
        "POST\n\n\n589\n\napplication/json; odata=minimalmetadata\n\n\n\n\n\n\n"
        "ocp-date:Wed, 25 Nov 2026 13:29:26 GMT\n/testaccount/pools\napi-version:2025-06-01"
    )


def test_post_without_content_length_signs_zero() -> None:
    text = string_to_sign("DELETE", "/jobs/j", "", {}, "a")
    assert text.split("\n")[3] == "0"
    assert string_to_sign("GET", "/jobs/j", "", {}, "a").split("\n")[3] == ""


def test_wrong_key_is_refused_and_the_string_to_sign_is_logged(
    verifier: SharedKeyVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    other_key = "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMDAwMDAwMDAwMDAwMDAwMA=="
    raw_path, raw_query, headers = signed("GET", f"{BASE}/pools?api-version=2025-06-01", key=other_key)
    with pytest.raises(AuthenticationFailed) as caught:
        verifier.verify("GET", raw_path, raw_query, headers)
    assert caught.value.status == 403
    assert caught.value.code == "AuthenticationFailed"
    assert "'GET\\n" in caplog.text
    assert "/localbatch/pools\\napi-version:2025-06-01" in caplog.text


def test_tampered_path_is_refused(verifier: SharedKeyVerifier) -> None:
    _, raw_query, headers = signed("GET", f"{BASE}/pools/a?api-version=2025-06-01")
    with pytest.raises(AuthenticationFailed):
        verifier.verify("GET", "/pools/b", raw_query, headers)


def test_decoded_path_does_not_verify(verifier: SharedKeyVerifier) -> None:
    _, raw_query, headers = signed("GET", f"{BASE}/jobs/j/tasks/t/files/wd%2Fx.txt?api-version=2025-06-01")
    with pytest.raises(AuthenticationFailed):
        verifier.verify("GET", "/jobs/j/tasks/t/files/wd/x.txt", raw_query, headers)


def test_unknown_account_is_refused(verifier: SharedKeyVerifier) -> None:
    raw_path, raw_query, headers = signed("GET", f"{BASE}/pools?api-version=2025-06-01", account="someoneelse")
    with pytest.raises(AuthenticationFailed) as caught:
        verifier.verify("GET", raw_path, raw_query, headers)
    assert "someoneelse" in caught.value.values[0][1]


@pytest.mark.parametrize("authorization", [None, "", "SharedKey", "SharedKey localbatch", "Basic abc"])
def test_missing_or_malformed_header_is_refused(verifier: SharedKeyVerifier, authorization: str | None) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    with pytest.raises(AuthenticationFailed):
        verifier.verify("GET", "/pools", "api-version=2025-06-01", headers)


def test_bearer_needs_the_development_flag() -> None:
    headers = {"authorization": "Bearer eyJ0eXAiOiJKV1QifQ.e30.sig"}
    with pytest.raises(AuthenticationFailed):
        SharedKeyVerifier(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY).verify("GET", "/pools", "", headers)
    allowed = SharedKeyVerifier(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY, allow_bearer=True)
    assert allowed.verify("GET", "/pools", "", headers).scheme == "Bearer"
    with pytest.raises(AuthenticationFailed):
        allowed.verify("GET", "/pools", "", {"authorization": "Bearer "})


def test_malformed_account_key_is_rejected_at_start() -> None:
    with pytest.raises(ValueError, match="base64"):
        SharedKeyVerifier("a", "not base64!")
