"""Pure pieces of the pipeline: image choice, retries, polling backoff, output parsing, redaction."""

from __future__ import annotations

import shlex

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from batchpipe.azure_errors import explain, is_transient
from batchpipe.errors import CloudError, ConfigurationError
from batchpipe.redact import redact
from flows.pipeline import parse_top_words
from tasks.monitoring import PollSchedule
from tasks.pool import choose_image, start_task_command


def _image(offer: str, sku: str, agent: str, os_type: str = "linux", verified: bool = True) -> dict[str, object]:
    return {
        "imageReference": {"publisher": "canonical", "offer": offer, "sku": sku, "version": "latest"},
        "nodeAgentSKUId": agent,
        "osType": os_type,
        "verificationType": "verified" if verified else "unverified",
    }


IMAGES = [
    _image("0001-com-ubuntu-server-jammy", "22_04-lts", "batch.node.ubuntu 22.04"),
    _image("0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "batch.node.ubuntu 22.04", verified=False),
    _image("ubuntu-24_04-lts", "server", "batch.node.ubuntu 24.04"),
    _image("windowsserver", "2022-datacenter", "batch.node.windows amd64", os_type="windows"),
]


def test_image_lookup_matches_distro_and_version_preferring_verified() -> None:
    choice = choose_image(IMAGES, "ubuntu:22.04")
    assert (choice.offer, choice.sku, choice.node_agent_sku_id) == (
        "0001-com-ubuntu-server-jammy",
        "22_04-lts",
        "batch.node.ubuntu 22.04",
    )
    assert choose_image(IMAGES, "Ubuntu:24.04").offer == "ubuntu-24_04-lts"


def test_unknown_image_lists_what_exists() -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"matches BATCHPIPE_IMAGE='centos:7'; the service offers: ubuntu:22\.04, ubuntu:24\.04$",
    ):
        choose_image(IMAGES, "centos:7")


def test_image_lookup_prefers_x86_and_generation_1_skus_that_run_on_every_vm_size() -> None:
    images = [
        _image("0001-com-ubuntu-server-jammy", sku, "batch.node.ubuntu 22.04")
        for sku in ("22_04-lts-arm64", "22_04-lts-gen2", "22_04-lts")
    ]
    assert choose_image(images, "ubuntu:22.04").sku == "22_04-lts"
    assert choose_image(images[:2], "ubuntu:22.04").sku == "22_04-lts-gen2"


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (HttpResponseError(message="busy", response=None), False),
        (ServiceRequestError("connection refused"), True),
        (ConnectionResetError(), True),
        (ClientAuthenticationError("bad key"), False),
        (ResourceNotFoundError("gone"), False),
        (ValueError("bug"), False),
    ],
)
def test_transient_classification(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_throttling_and_server_errors_are_transient(status: int) -> None:
    error = HttpResponseError(message="x")
    error.status_code = status
    assert is_transient(error)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413])
def test_client_errors_are_permanent(status: int) -> None:
    error = HttpResponseError(message="x")
    error.status_code = status
    assert not is_transient(error)


def test_permanent_errors_become_one_line_with_a_hint() -> None:
    message = str(explain(ClientAuthenticationError("Server failed to authenticate\nRequestId:1"), "Batch", "x"))
    assert "\n" not in message
    assert "BATCHPIPE_BATCH_ACCOUNT_KEY" in message
    unreachable = explain(ServiceRequestError("refused"), "Storage", "creating container")
    assert isinstance(unreachable, CloudError)
    assert "BATCHPIPE_STORAGE_ACCOUNT_URL" in str(unreachable)


def test_poll_interval_backs_off_while_nothing_changes_and_resets_on_change() -> None:
    schedule = PollSchedule(initial=1.0, maximum=4.0)
    waits = [schedule.next_wait(changed=False) for _ in range(5)]
    assert waits == [1.5, 2.25, 3.375, 4.0, 4.0]
    assert schedule.next_wait(changed=True) == 1.0


def test_parse_top_words_reads_the_node_app_output() -> None:
    text = (
        "Word\tCount\n------------------------------\nthe:\t12\nharbour:\t5\n"
        "------------------------------\nNode: n1\nTask: t\nJob:  j\nPool: p\n"
    )
    assert parse_top_words(text) == [("the", 12), ("harbour", 5)]


def test_secrets_are_redacted() -> None:
    text = (
        "GET http://h/c/b?sv=2026&sig=abc%2Bdef%3D&sp=r failed; "
        "AccountKey=Zm9vYmFy==;BlobEndpoint=x Authorization: SharedKey acct:c2lnbmF0dXJl Bearer eyJ0eXAi.x.y"
    )
    cleaned = redact(text)
    for secret in ("abc%2Bdef%3D", "Zm9vYmFy", "c2lnbmF0dXJl", "eyJ0eXAi"):
        assert secret not in cleaned
    assert "sp=r" in cleaned


def test_the_start_task_stages_the_quoted_application_and_checks_it_runs() -> None:
    command = start_task_command("it's app.pyz")
    assert command.startswith("/bin/sh -c ")
    script = shlex.split(command)[2]
    assert script.split(" && ") == [
        'cp "$AZ_BATCH_TASK_WORKING_DIR"/\'it\'"\'"\'s app.pyz\' "$AZ_BATCH_NODE_SHARED_DIR"/',
        "python3 \"$AZ_BATCH_NODE_SHARED_DIR\"/'it'\"'\"'s app.pyz' --version",
    ]
