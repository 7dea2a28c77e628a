"""Invoices (DRE) in FHIR: a Claim with ``use = claim`` in, a ClaimResponse out, through the same
service as ``POST /api/v1/invoices``: adjudicated, booked, recorded.

The professional's invoice number is the Claim's ``identifier`` of the ``invoice-number`` system;
the invoice's id comes back as the ClaimResponse's ``identifier`` (``…/NamingSystem/invoice``,
the id ``GET /api/v1/invoices/{id}`` and the remittances name). The ``Idempotency-Key`` header
works as in the JSON API: the same key with the same Claim answers the first answer again and
books nothing; with another Claim, ``409``.
"""

from __future__ import annotations

import re

from fhir.resources.R4B.claimresponse import ClaimResponse

from rempart.claims import invoices
from rempart.claims.schemas import IDEMPOTENCY_KEY, InvoiceRequest
from rempart.errors import InvalidInput
from rempart.fhir import profile
from rempart.fhir.claim import ClaimInput, claim_response
from rempart.guard.quotas import Quotas
from rempart.identity.auth import Client, Principal
from rempart.platform import Platform

INVOICE_SYSTEM = f"{profile.BASE}/NamingSystem/invoice"
_KEY = re.compile(IDEMPOTENCY_KEY)


def submit(
    platform: Platform,
    quotas: Quotas,
    caller: Principal,
    claim: ClaimInput,
    client: Client,
    idempotency_key: str | None,
) -> ClaimResponse:
    """Validate with the JSON API's schema, adjudicate and book (or answer a retry)."""
    if idempotency_key is not None and not _KEY.fullmatch(idempotency_key):
        # A header, not an element: no FHIRPath to name.
        raise InvalidInput("the Idempotency-Key header holds 1 to 100 printable ASCII characters")
    body = profile.validated(InvoiceRequest, claim.fields, claim.paths)
    submission = body.submission(idempotency_key)
    view = invoices.submit_invoice(platform, quotas, caller, submission, client)
    identifier = [{"system": INVOICE_SYSTEM, "value": str(view.id)}]
    return claim_response(
        claim, submission.lines, view, f"invoice {view.status}", identifier=identifier
    )
