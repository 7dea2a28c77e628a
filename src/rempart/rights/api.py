"""The rights check endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from rempart.identity.auth import Principal
from rempart.identity.deps import ClientDep, PlatformDep, allow
from rempart.ledger.recorder import Recorder
from rempart.rights import services
from rempart.rights.schemas import EligibilityRequest, EligibilityResponse, Engagement

router = APIRouter(prefix="/api/v1", tags=["rights"])
Professional = Annotated[Principal, Depends(allow("professional"))]
PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}


async def _recorder(request: Request) -> Recorder:
    recorder: Recorder = request.app.state.recorder
    return recorder


@router.post(
    "/eligibility",
    summary="Roles: professional. Rights check (IDB): open or closed, the rate, an engagement.",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 429: PROBLEM},
)
def eligibility(
    body: EligibilityRequest,
    caller: Professional,
    platform: PlatformDep,
    client: ClientDep,
    recorder: Annotated[Recorder, Depends(_recorder)],
    request: Request,
) -> EligibilityResponse:
    """Give what is on the card and the patient's birth date and rank. The answer never holds a
    name, a NIR, a birth date or a list; an unknown card is answered as closed rights."""
    result = services.check_rights(
        platform,
        recorder,
        request.app.state.quotas,
        caller,
        services.CardQuery(**body.model_dump()),
        client,
    )
    engagement = (
        Engagement(number=result.engagement, valid_until=result.valid_until)
        if result.engagement and result.valid_until
        else None
    )
    return EligibilityResponse(
        status="open" if result.answer.open else "closed",
        domain=body.domain,
        rate=result.answer.rate,
        prior_agreement_required=result.answer.prior_agreement_required,
        engagement=engagement,
    )
