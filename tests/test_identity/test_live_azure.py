"""The real pipeline against real Azure, only when BATCHPIPE_LIVE_* settings say where (skipped otherwise).

Every ``BATCHPIPE_LIVE_<NAME>`` variable becomes ``BATCHPIPE_<NAME>`` for these tests, e.g.
``BATCHPIPE_LIVE_BATCH_ENDPOINT``, ``BATCHPIPE_LIVE_STORAGE_ACCOUNT_URL`` (required), and optionally
``BATCHPIPE_LIVE_BATCH_ACCOUNT_NAME``/``_KEY``, ``BATCHPIPE_LIVE_STORAGE_ACCOUNT_KEY``, ``BATCHPIPE_LIVE_VM_SIZE``.
Without keys the tests use Entra ID (``DefaultAzureCredential``; ``AZURE_*`` variables are kept for it).
See docs/azure.md for the roles the principal needs. The run creates a pool and deletes it at the end.
"""

from __future__ import annotations

import os
import string
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from batchpipe.services import PROJECT_ROOT

LIVE_PREFIX = "BATCHPIPE_LIVE_"
REQUIRED = ("BATCHPIPE_LIVE_BATCH_ENDPOINT", "BATCHPIPE_LIVE_STORAGE_ACCOUNT_URL")
# Read at import: the autouse fixture that clears BATCHPIPE_*/AZURE_* runs before each test.
LIVE_SETTINGS = {
    "BATCHPIPE_" + name.removeprefix(LIVE_PREFIX): value
    for name, value in os.environ.items()
    if name.startswith(LIVE_PREFIX) and value
}
AZURE_IDENTITY = {name: value for name, value in os.environ.items() if name.startswith("AZURE_")}
MISSING = [name for name in REQUIRED if not os.environ.get(name)]

pytestmark = [
    pytest.mark.azure,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"live Azure tests need {' and '.join(REQUIRED)} (optional: BATCHPIPE_LIVE_BATCH_ACCOUNT_NAME/_KEY, "
        "BATCHPIPE_LIVE_STORAGE_ACCOUNT_KEY); see docs/azure.md",
    ),
]
SAMPLES = PROJECT_ROOT / "samples"


@pytest.fixture
def live_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The live settings, with containers and a pool of this run's own; returns the run's suffix."""
    suffix = uuid.uuid4().hex[:8]
    for name, value in (AZURE_IDENTITY | LIVE_SETTINGS).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BATCHPIPE_TARGET", "azure")
    for name, value in {
        "BATCHPIPE_APPLICATION_CONTAINER": f"bp-live-app-{suffix}",
        "BATCHPIPE_INPUT_CONTAINER": f"bp-live-in-{suffix}",
        "BATCHPIPE_OUTPUT_CONTAINER": f"bp-live-out-{suffix}",
        "BATCHPIPE_POOL_ID": f"batchpipe-live-{suffix}",
    }.items():
        monkeypatch.setenv(name, LIVE_SETTINGS.get(name, value))
    monkeypatch.chdir(tmp_path)
    return suffix


def test_live_credentials_reach_batch_and_sign_sas(live_env: str) -> None:
    from batchpipe.clients import batch_client, blob_service_client, uses_entra_id_for_storage
    from batchpipe.sas import SasSigner
    from batchpipe.settings import load_settings

    settings = load_settings()
    settings.require_azure()
    images = batch_client(settings).list_supported_images()
    assert next(iter(images)).node_agent_sku_id

    storage = blob_service_client(settings)
    entra = uses_entra_id_for_storage(settings)
    key = None if entra else storage.credential.account_key
    signer = SasSigner.for_client(storage, timedelta(hours=1), key)
    if entra:
        # Storage Blob Data Contributor includes generateUserDelegationKey/action.
        assert signer.delegation_key is not None
        assert signer.delegation_key.signed_oid
        assert "skoid=" in signer.container_write_token(settings.output_container)
    else:
        assert "skoid=" not in signer.container_write_token(settings.output_container)


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.timeout(3600)
def test_live_pipeline_end_to_end(live_env: str, tmp_path: Path) -> None:
    from flows.pipeline import top_words_pipeline

    summary = top_words_pipeline(inputs=[str(SAMPLES)], output_dir=str(tmp_path), num_words=3, approval="yes")

    assert len(summary["outputs"]) == 3
    for item in summary["outputs"]:
        source = SAMPLES / item["file"].replace("_OUTPUT", "")
        words = [token.strip(string.punctuation) for token in source.read_text("utf-8").split()]
        assert [tuple(word) for word in item["top_words"]] == Counter(words).most_common(3)
    assert (summary["job"], summary["pool"], summary["containers"]) == ("deleted", "deleted", "deleted")
