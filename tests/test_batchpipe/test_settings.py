"""Settings: defaults need nothing, every variable is validated, errors are one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchpipe.errors import ConfigurationError
from batchpipe.settings import load_settings


def test_defaults_need_no_configuration() -> None:
    settings = load_settings()
    assert settings.target == "local"
    assert (settings.application_container, settings.input_container, settings.output_container) == (
        "application",
        "input",
        "output",
    )
    assert settings.num_words == 3


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHPIPE_NODE_COUNT", "4")
    monkeypatch.setenv("BATCHPIPE_POOL_ID", "my_pool-1")
    monkeypatch.setenv("BATCHPIPE_BATCH_ACCOUNT_KEY", "c2VjcmV0")
    settings = load_settings()
    assert settings.node_count == 4
    assert settings.pool_id == "my_pool-1"
    assert settings.batch_account_key is not None
    assert settings.batch_account_key.get_secret_value() == "c2VjcmV0"
    assert "c2VjcmV0" not in repr(settings)


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHPIPE_NUM_WORDS", "7")
    assert load_settings(num_words=2).num_words == 2
    assert load_settings(num_words=None).num_words == 7


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BATCHPIPE_VM_SIZE=standard_a1_v2\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().vm_size == "standard_a1_v2"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("BATCHPIPE_TARGET", "cloud", "BATCHPIPE_TARGET: Input should be 'local' or 'azure'"),
        ("BATCHPIPE_NODE_COUNT", "0", "BATCHPIPE_NODE_COUNT: Input should be greater than or equal to 1"),
        ("BATCHPIPE_NODE_COUNT", "two", "BATCHPIPE_NODE_COUNT: Input should be a valid integer"),
        ("BATCHPIPE_NUM_WORDS", "-1", "BATCHPIPE_NUM_WORDS: Input should be greater than or equal to 1"),
        (
            "BATCHPIPE_POOL_ID",
            "has space",
            "BATCHPIPE_POOL_ID: use 1-64 letters, digits, hyphens or underscores",
        ),
        ("BATCHPIPE_JOB_ID", "x" * 65, "BATCHPIPE_JOB_ID: use 1-64 letters"),
        ("BATCHPIPE_OUTPUT_CONTAINER", "Output", "BATCHPIPE_OUTPUT_CONTAINER: use 3-63 lowercase"),
        ("BATCHPIPE_IMAGE", "ubuntu", "BATCHPIPE_IMAGE: use `<distro>:<version>`"),
        ("BATCHPIPE_BATCH_ENDPOINT", "batch.example", "BATCHPIPE_BATCH_ENDPOINT: use an http(s) URL"),
        ("BATCHPIPE_POLL_INTERVAL", "0", "BATCHPIPE_POLL_INTERVAL: Input should be greater than 0"),
        ("BATCHPIPE_MAX_POLL_INTERVAL", "0.5", "BATCHPIPE_MAX_POLL_INTERVAL must be at least BATCHPIPE_POLL"),
    ],
)
def test_invalid_values_name_the_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_invalid_secret_values_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHPIPE_STORAGE_ACCOUNT_KEY", "")
    monkeypatch.setenv("BATCHPIPE_NODE_COUNT", "-3")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(storage_account_key="s3cr3t-value")
    assert "s3cr3t" not in str(caught.value)


def test_azure_target_requires_endpoints() -> None:
    settings = load_settings(target="azure")
    with pytest.raises(ConfigurationError, match="BATCHPIPE_BATCH_ENDPOINT is required"):
        settings.require_azure()
    settings = load_settings(target="azure", batch_endpoint="https://a.westeurope.batch.azure.com")
    with pytest.raises(ConfigurationError, match="BATCHPIPE_STORAGE_ACCOUNT_URL"):
        settings.require_azure()
    load_settings(
        target="azure",
        batch_endpoint="https://a.westeurope.batch.azure.com/",
        storage_account_url="https://a.blob.core.windows.net",
    ).require_azure()
