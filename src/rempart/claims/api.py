"""The calculation endpoint (CLC)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from rempart.claims import services
from rempart.claims.engine import Line
from rempart.claims.schemas import CalculationRequest, CalculationResponse, LineOut
from rempart.identity.auth import Principal
from rempart.identity.deps import ClientDep, PlatformDep, allow
from rempart.rights.services import Card

router = APIRouter(prefix="/api/v1", tags=["claims"])
Professional = Annotated[Principal, Depends(allow("professional"))]
PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}


@router.post(
    "/calculations",
    summary="Roles: professional. What the insurer would pay, line by line; nothing is booked.",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 429: PROBLEM},
)
def calculate(
    body: CalculationRequest,
    caller: Professional,
    platform: PlatformDep,
    client: ClientDep,
    request: Request,
) -> CalculationResponse:
    card = Card(body.amc_number, body.member_number, body.birth_date, body.birth_rank)
    lines = [Line(**line.model_dump()) for line in body.lines]
    result = services.calculate(
        platform,
        request.app.state.recorder,
        request.app.state.quotas,
        caller,
        card,
        lines,
        body.engagement,
        body.prior_agreement,
        client,
    )
    return CalculationResponse(
        lines=[
            LineOut(
                amc_amount=r.amc_amount,
                amo_amount=r.amo_amount,
                reject_codes=list(r.reject_codes),
                explanation=r.explanation,
            )
            for r in result.lines
        ],
        total_amc=result.total_amc,
    )
