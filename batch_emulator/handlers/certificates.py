"""Certificate operations: retired from Azure Batch in February 2024, each answers ``400 CertificateRetired``.

The real service still routes them and refuses every one with that error (Microsoft's recording of
azure-batch 15's certificate test, August 2025); clients written before the retirement get the same answer here.
"""

from __future__ import annotations

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import CertificateRetired
from batch_emulator.routing import Route

_ONE = "/certificates(thumbprintAlgorithm={thumbprintAlgorithm},thumbprint={thumbprint})"


def certificate_retired(ctx: RequestContext) -> Response:
    """Any certificate operation (add, list, get, delete, cancel delete).

    Raises:
        CertificateRetired: always (400).
    """
    raise CertificateRetired()


ROUTES = [
    Route("POST", "/certificates", certificate_retired),
    Route("GET", "/certificates", certificate_retired),
    Route("GET", _ONE, certificate_retired),
    Route("DELETE", _ONE, certificate_retired),
    Route("POST", _ONE + "/canceldelete", certificate_retired),
]
