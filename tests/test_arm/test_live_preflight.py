"""The management-plane pre-flight against a real Batch account, only when BATCHPIPE_LIVE_* settings say where.

Needs ``BATCHPIPE_LIVE_BATCH_ENDPOINT``, ``BATCHPIPE_LIVE_ARM_SUBSCRIPTION_ID`` and
``BATCHPIPE_LIVE_ARM_RESOURCE_GROUP`` (optional: ``BATCHPIPE_LIVE_BATCH_ACCOUNT_NAME``/``_KEY``,
``BATCHPIPE_LIVE_ARM_ACCOUNT_NAME``, ``BATCHPIPE_LIVE_VM_SIZE``); Entra ID through ``DefaultAzureCredential``
(``AZURE_*`` variables are passed on). Read-only: nothing is created. See docs/azure.md.
"""

from __future__ import annotations

import os

import pytest
from prefect.logging import disable_run_logger

from batchpipe.errors import ConfigurationError
from batchpipe.settings import load_settings
from tasks.capacity import check_capacity

LIVE_PREFIX = "BATCHPIPE_LIVE_"
REQUIRED = ("BATCHPIPE_LIVE_BATCH_ENDPOINT", "BATCHPIPE_LIVE_ARM_SUBSCRIPTION_ID", "BATCHPIPE_LIVE_ARM_RESOURCE_GROUP")
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
        bool(MISSING), reason=f"the live pre-flight test needs {', '.join(REQUIRED)}; see docs/azure.md"
    ),
]


def test_the_real_location_refuses_a_vm_size_it_does_not_offer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (AZURE_IDENTITY | LIVE_SETTINGS).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BATCHPIPE_TARGET", "azure")
    monkeypatch.setenv("BATCHPIPE_VM_SIZE", "Standard_NoSuchSize_v99")

    with disable_run_logger(), pytest.raises(ConfigurationError) as caught:
        check_capacity.fn(load_settings())

    assert "VM size Standard_NoSuchSize_v99 is not offered in " in caught.value.message
    assert "Standard_" in caught.value.message.split("(e.g. ", 1)[1]  # the real list was read
