"""Calculations (CLC) in FHIR: a Claim with ``use = predetermination`` in, a ClaimResponse out,
through the same service as ``POST /api/v1/calculations``; nothing is booked."""

from __future__ import annotations

from fhir.resources.R4B.claimresponse import ClaimResponse

from rempart.claims import services
from rempart.claims.engine import Line
from rempart.claims.schemas import CalculationRequest
from rempart.fhir import profile
from rempart.fhir.claim import ClaimInput, claim_response
from rempart.guard.quotas import Quotas
from rempart.identity.auth import Client, Principal
from rempart.ledger.recorder import Recorder
from rempart.platform import Platform
from rempart.rights.services import Card

DISPOSITION = "calculated: nothing is booked"


def calculate(
    platform: Platform,
    recorder: Recorder,
    quotas: Quotas,
    caller: Principal,
    claim: ClaimInput,
    client: Client,
) -> ClaimResponse:
    """Validate with the JSON API's schema, calculate, answer line by line."""
    body = profile.validated(CalculationRequest, claim.fields, claim.paths)
    card = Card(body.amc_number, body.member_number, body.birth_date, body.birth_rank)
    lines = [Line(**line.model_dump()) for line in body.lines]
    result = services.calculate(
        platform,
        recorder,
        quotas,
        caller,
        card,
        lines,
        body.engagement,
        body.prior_agreement,
        client,
    )
    return claim_response(claim, lines, result, DISPOSITION)
