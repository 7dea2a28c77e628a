"""The operators' containment API: what `rempart guard` does, for a console or a SOAR playbook.

Operators and security analysts only, each change from a session whose second factor is less
than ten minutes old (a stolen operator session must not be able to lift a freeze).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from rempart.db import utcnow
from rempart.guard.containment import FreezeView as Frozen
from rempart.identity.auth import Principal, recent_person
from rempart.identity.deps import PlatformDep, allow
from rempart.incidents import containment

router = APIRouter(prefix="/api/v1/guard", tags=["containment"])
Staff = Annotated[Principal, Depends(allow("operator", "security"))]
PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}
Kind = Literal["account", "professional", "tenant", "portal", "platform"]


class FreezeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    # An account's e-mail address, a professional's billing number, an insurer's AMC number;
    # none for the platform. In the body, never in the URL: an address is personal data.
    name: str | None = Field(default=None, max_length=254)
    reason: str = Field(min_length=1, max_length=500)


class LiftRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    name: str | None = Field(default=None, max_length=254)


class FreezeView(BaseModel):
    kind: str
    label: str
    reason: str
    by: str
    since: datetime


class ReenrolmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[str] = Field(min_length=1, max_length=500)  # e-mail addresses
    reason: str = Field(min_length=1, max_length=500)


class Reenrolled(BaseModel):
    label: str
    enrolment_code: str


def _view(view: Frozen) -> FreezeView:
    return FreezeView(
        kind=view.kind,
        label=view.label,
        reason=view.reason,
        by=view.created_by,
        since=view.created_at,
    )


@router.get("/freezes", summary="Roles: operator, security. The freezes in force.")
def freezes(caller: Staff, platform: PlatformDep) -> list[FreezeView]:
    return [_view(v) for v in containment.in_force(platform)]


@router.post(
    "/freezes",
    status_code=201,
    summary="Roles: operator, security (second factor within 10 min). Freeze at once.",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM},
)
def freeze(body: FreezeRequest, caller: Staff, platform: PlatformDep) -> FreezeView:
    recent_person(caller, utcnow())
    return _view(containment.freeze(platform, body.kind, body.name, body.reason, caller.actor))


@router.post(
    "/freezes/lift",
    summary="Roles: operator, security (second factor within 10 min). Lift a freeze.",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM},
)
def lift(body: LiftRequest, caller: Staff, platform: PlatformDep) -> dict[str, str]:
    recent_person(caller, utcnow())
    return {"lifted": containment.unfreeze(platform, body.kind, body.name, caller.actor)}


@router.post(
    "/reenrolment",
    summary=(
        "Roles: operator, security (second factor within 10 min). Erase accounts' credentials "
        "and give each a new enrolment code (shown once)."
    ),
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM},
)
def reenrolment(body: ReenrolmentRequest, caller: Staff, platform: PlatformDep) -> list[Reenrolled]:
    recent_person(caller, utcnow())
    done = containment.force_reenrolment(platform, body.accounts, body.reason, caller.actor)
    return [Reenrolled(label=r.label, enrolment_code=r.enrolment_code) for r in done]
