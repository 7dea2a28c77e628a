"""Prior agreements (PEC) in FHIR: a Claim with ``use = preauthorization`` in, a ClaimResponse
out, through the same service as ``POST /api/v1/prior-agreements``.

The agreement's reference is the ClaimResponse's ``preAuthRef`` and its validity
``preAuthPeriod`` (FHIR: "the time frame during which this authorization is effective"); quote
the reference in a later Claim's ``insurance[0].preAuthRef``. Nothing agreed: neither is given.
"""

from __future__ import annotations

from fhir.resources.R4B.claimresponse import ClaimResponse

from rempart.claims import prior_agreements
from rempart.claims.schemas import PriorAgreementRequest
from rempart.fhir import profile
from rempart.fhir.claim import ClaimInput, claim_response
from rempart.guard.quotas import Quotas
from rempart.identity.auth import Client, Principal
from rempart.platform import Platform

REFUSED = "prior agreement refused: nothing is agreed"


def request(
    platform: Platform, quotas: Quotas, caller: Principal, claim: ClaimInput, client: Client
) -> ClaimResponse:
    """Validate with the JSON API's schema (a preauthorization quotes no reference), ask for the
    agreement, answer line by line."""
    body = profile.validated(PriorAgreementRequest, claim.fields, claim.paths)
    lines = body.engine_lines()
    view = prior_agreements.request_prior_agreement(
        platform, quotas, caller, body.card(), lines, client
    )
    if view.reference is None or view.valid_from is None or view.valid_until is None:
        return claim_response(claim, lines, view, REFUSED)
    disposition = f"prior agreement granted until {view.valid_until.isoformat()}"
    period = {"start": view.valid_from.isoformat(), "end": view.valid_until.isoformat()}
    return claim_response(
        claim, lines, view, disposition, preAuthRef=view.reference, preAuthPeriod=period
    )
