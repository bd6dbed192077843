"""All of batchpipe's settings in one pydantic model, read from ``BATCHPIPE_*`` variables and ``.env``.

The ``local`` target needs no settings at all: the CLI starts Azurite and the local Batch service and fills in
their endpoints. The ``azure`` target needs the Batch endpoint and a Storage account (keys or Entra ID).
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from batchpipe.durations import parse_seconds
from batchpipe.errors import ConfigurationError

#: A duration setting, in seconds: ``90``, ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m`` or ISO 8601 ``PT30M``.
Seconds = Annotated[float, BeforeValidator(parse_seconds)]

ENV_PREFIX = "BATCHPIPE_"

# Batch ids: letters, digits, hyphens and underscores, at most 64 characters.
BATCH_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Blob container names: 3-63 lowercase letters, digits and single hyphens, starting with a letter or digit.
CONTAINER_NAME_PATTERN = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


class Settings(BaseSettings):
    """batchpipe's configuration.

    Every field can be set as ``BATCHPIPE_<FIELD NAME IN CAPITALS>`` (e.g. ``BATCHPIPE_NODE_COUNT=2``) or in ``.env``.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    target: Literal["local", "azure"] = Field(
        "local", description="`local`: Azurite + the local Batch service; `azure`: real Azure."
    )
    local_auth: Literal["key", "entra"] = Field(
        "key",
        description="local target only: `key` (shared keys) or `entra` (HTTPS, Bearer tokens from a local "
        "development credential, user-delegation SAS; see docs/azure.md).",
    )

    # Azure Batch
    batch_endpoint: str | None = Field(None, description="e.g. https://myaccount.westeurope.batch.azure.com")
    batch_account_name: str | None = Field(None, description="Batch account name (shared-key auth).")
    batch_account_key: SecretStr | None = Field(None, description="Batch account key; unset means Entra ID.")

    # Batch management plane (Azure Resource Manager): the pre-flight reads quotas and VM sizes there
    arm_subscription_id: str | None = Field(
        None, description="Subscription of the Batch account; with the resource group it enables the quota pre-flight."
    )
    arm_resource_group: str | None = Field(None, description="Resource group of the Batch account.")
    arm_account_name: str | None = Field(
        None, description="Batch account name on the management plane (default: from the Batch endpoint)."
    )
    arm_endpoint: str | None = Field(
        None,
        description="Resource Manager URL (default https://management.azure.com; local target: the local service).",
    )

    # Azure Storage
    storage_connection_string: SecretStr | None = Field(None, description="A Storage connection string.")
    storage_account_url: str | None = Field(None, description="e.g. https://myaccount.blob.core.windows.net")
    storage_account_name: str | None = Field(None, description="Storage account name (with the key).")
    storage_account_key: SecretStr | None = Field(None, description="Storage account key; unset means Entra ID.")

    # Containers
    application_container: str = "application"
    input_container: str = "input"
    output_container: str = "output"

    # Pool
    pool_id: str = "batchpipe-pool"
    vm_size: str = "standard_d2s_v3"
    node_count: int = Field(1, ge=1, le=1000)
    task_slots_per_node: int = Field(1, ge=1, le=256)
    image: str = Field("ubuntu:22.04", description="`<distro>:<version>` looked up in the supported images.")
    use_spot_nodes: bool = False
    spot_fallback_to_dedicated: bool = Field(
        True, description="With Spot nodes: ask for dedicated nodes when no Spot capacity can be allocated."
    )

    # Job and tasks
    job_id: str | None = Field(None, description="Job id; unset means derived from the run's inputs.")
    num_words: int = Field(3, ge=1, le=100_000)
    max_task_retries: int = Field(1, ge=0, le=100)

    # Timing: seconds, or durations such as 90s, 30m, 2h, PT30M (see batchpipe.durations)
    poll_interval: Seconds = Field(1.0, gt=0, le=300)
    max_poll_interval: Seconds = Field(10.0, gt=0, le=600)
    monitor_timeout: Seconds = Field(1200.0, gt=0, le=7 * 24 * 3600)
    pool_ready_timeout: Seconds = Field(900.0, gt=0, le=24 * 3600)
    approval_timeout: Seconds = Field(3600.0, gt=0, le=7 * 24 * 3600)
    delete_pool_on_approval_timeout: bool = True
    delete_job_on_approval_timeout: bool = True

    @field_validator("pool_id", "job_id")
    @classmethod
    def _batch_id(cls, value: str | None) -> str | None:
        if value is not None and not BATCH_ID_PATTERN.match(value):
            raise ValueError("use 1-64 letters, digits, hyphens or underscores")
        return value

    @field_validator("application_container", "input_container", "output_container")
    @classmethod
    def _container_name(cls, value: str) -> str:
        if not CONTAINER_NAME_PATTERN.match(value):
            raise ValueError("use 3-63 lowercase letters, digits and single hyphens")
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        distro, sep, version = value.partition(":")
        if not sep or not distro.strip() or not version.strip():
            raise ValueError("use `<distro>:<version>`, e.g. ubuntu:22.04")
        return value

    @field_validator("batch_endpoint", "storage_account_url", "arm_endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("use an http(s) URL, e.g. https://name.region.batch.azure.com")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _poll_bounds(self) -> Settings:
        if self.max_poll_interval < self.poll_interval:
            raise ValueError("BATCHPIPE_MAX_POLL_INTERVAL must be at least BATCHPIPE_POLL_INTERVAL")
        return self

    def require_azure(self) -> None:
        """Check that the azure target has what it needs.

        Raises:
            ConfigurationError: a required setting is missing.
        """
        if not self.batch_endpoint:
            raise ConfigurationError(
                f"{ENV_PREFIX}BATCH_ENDPOINT is required for the azure target "
                "(e.g. https://myaccount.westeurope.batch.azure.com)"
            )
        if self.batch_account_key and not self.batch_account_name:
            raise ConfigurationError(f"{ENV_PREFIX}BATCH_ACCOUNT_NAME is required with BATCH_ACCOUNT_KEY")
        if not (self.storage_connection_string or self.storage_account_url):
            raise ConfigurationError(
                f"set {ENV_PREFIX}STORAGE_ACCOUNT_URL (Entra ID or with STORAGE_ACCOUNT_KEY) "
                f"or {ENV_PREFIX}STORAGE_CONNECTION_STRING for the azure target"
            )


def describe_validation_error(error: ValidationError) -> str:
    """Turn pydantic's report into one line naming the variable and what is allowed."""
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) if item["loc"] else ""
        variable = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        shown = "" if "key" in field or "connection" in field or isinstance(value, dict) else f" (got {value!r})"
        parts.append(f"{variable}: {message}{shown}")
    return "invalid setting: " + "; ".join(parts)


#: ``BATCHPIPE_*`` variables that are not settings but are read elsewhere (tests, the node application).
OTHER_VARIABLES = frozenset({"BATCHPIPE_WRITE_RELIABILITY_DOC", "BATCHPIPE_OUTPUT_SAS"})
OTHER_PREFIXES = ("BATCHPIPE_LIVE",)
_warned: set[str] = set()


def unknown_variables(names: list[str], where: str = "") -> list[str]:
    """One line per ``BATCHPIPE_*`` name that no setting reads, with the closest setting's name when there is one.

    Args:
        names: environment variable names (any; only ``BATCHPIPE_*`` ones are looked at).
        where: where the names were found, shown after each name (e.g. ``.env``); empty for the environment.

    Returns:
        The warnings, e.g. ``BATCHPIPE_NODE_COUNTS is not a setting (did you mean BATCHPIPE_NODE_COUNT?)``.
    """
    known = [name.upper() for name in Settings.model_fields]
    shown_where = f" in {where}" if where else ""
    warnings = []
    for name in sorted(names):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.removeprefix(ENV_PREFIX) in known or upper in OTHER_VARIABLES:
            continue
        if upper.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), known, n=1, cutoff=0.7)
        hint = f"did you mean {ENV_PREFIX}{close[0]}?" if close else "see the settings table in README.md"
        warnings.append(f"{name}{shown_where} is not a batchpipe setting and is ignored ({hint})")
    return warnings


def env_file_names() -> list[str]:
    """The variable names set in the ``.env`` file that :class:`Settings` reads (none when there is no such file)."""
    from dotenv import dotenv_values

    path = Path(str(Settings.model_config.get("env_file") or ".env"))
    if not path.is_file():
        return []
    return list(dotenv_values(path, encoding=Settings.model_config.get("env_file_encoding")))


def _warn_unknown_variables() -> None:
    """Print each unknown ``BATCHPIPE_*`` variable's warning once per process, on stderr: those of the environment,
    then those of ``.env`` (a name set in both is named once, as the environment's)."""
    environment = list(os.environ)
    in_file = [name for name in env_file_names() if name not in os.environ]
    for line in [*unknown_variables(environment), *unknown_variables(in_file, ".env")]:
        if line not in _warned:
            _warned.add(line)
            print(f"warning: {line}", file=sys.stderr)


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment and ``.env``, with explicit overrides on top.

    Args:
        **overrides: field values that win over the environment (e.g. from command-line flags).

    Returns:
        The validated settings.

    Raises:
        ConfigurationError: a value is invalid; the message names the variable and what is allowed.
    """
    _warn_unknown_variables()
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigurationError(describe_validation_error(error)) from None
