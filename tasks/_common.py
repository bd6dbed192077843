"""What every step shares: retry policy for transient Azure errors and the error translation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from azure.core.exceptions import ServiceRequestError

from batchpipe.azure_errors import explain, is_transient, retry_transient
from batchpipe.services import check_services

# Transient failures (throttling, 5xx, broken connections) get these waits; permanent ones fail at once.
RETRY_DELAYS = [2, 5, 15]

#: Keyword arguments for ``@task`` on steps that talk to Azure.
AZURE_RETRIES: dict[str, Any] = {
    "retries": len(RETRY_DELAYS),
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_condition_fn": retry_transient,
}


#: Per-call SDK option for a run's first request to a service: do not retry a connection that cannot be made.
FIRST_CONTACT: dict[str, Any] = {"retry_connect": 0}


@contextmanager
def azure_call(service: str, action: str, *, first_contact: bool = False) -> Iterator[None]:
    """Re-raise permanent SDK errors as one-line :class:`~batchpipe.errors.CloudError`; let transient ones through.

    Transient errors keep their type so that Prefect's ``retry_condition_fn`` recognises and retries them.
    With ``first_contact`` (the run's first request to the service, made with :data:`FIRST_CONTACT`), an endpoint
    that refuses connections or does not resolve is a setting to fix: it fails at once instead of after a minute
    of retries. Later in the run the same error is a blip (a restarting service) and is retried, unless a local
    service this process started has died: that fails at once, naming it (:func:`~batchpipe.services.check_services`).
    """
    check_services()
    try:
        yield
    except Exception as error:
        check_services()
        if is_transient(error) and not (first_contact and isinstance(error, ServiceRequestError)):
            raise
        raise explain(error, service, action) from None


def first(items: Any, predicate: Callable[[Any], bool]) -> Any | None:
    """The first item matching ``predicate``, or None."""
    return next((item for item in items if predicate(item)), None)


def run_logger() -> Any:
    """The run's logger inside a flow or task run; the ``batchpipe`` logger outside one (``plan --check``).

    ``get_run_logger()`` raises ``MissingContextError`` outside a run, which made ``find_image.fn`` crash.
    """
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_logger, get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger("batchpipe")
