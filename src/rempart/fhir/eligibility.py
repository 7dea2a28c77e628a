"""The rights check (IDB) in FHIR: a CoverageEligibilityRequest in, a CoverageEligibilityResponse
out, through the same service as ``POST /api/v1/eligibility`` (same quotas, same access event).

The answer depends only on the outcome, the domain, the care date, the purposes asked and the AMC
number: an unknown card and closed rights give the same bytes.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fhir.resources.R4B.coverageeligibilityrequest import CoverageEligibilityRequest
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse

from rempart.errors import InvalidDocument, Problem
from rempart.fhir import profile
from rempart.fhir.outcome import NotSupported
from rempart.rights.schemas import EligibilityRequest
from rempart.rights.services import CardQuery, Eligibility

KIND = "CoverageEligibilityRequest"
BENEFIT_SYSTEM = f"{profile.BASE}/CodeSystem/benefit"
ENGAGEMENT_VALID_UNTIL = profile.extension_url("engagement-valid-until")
PURPOSES = ("auth-requirements", "benefits", "validation")  # not "discovery": no coverage search

_BR_TOTAL = re.compile(r"(\d+)%")
_BR_EXTRA = re.compile(r"AMO\+(\d+)%")
_ACTUAL_COST = re.compile(r"(\d+)% of cost")
_AMOUNT = re.compile(r"(\d+)\.(\d\d)/([a-z]+)")


def query_of(request: CoverageEligibilityRequest) -> tuple[CardQuery, list[str]]:
    """The service's query and the purposes asked; ``InvalidDocument`` names each problem."""
    purposes = [str(p) for p in dict.fromkeys(request.purpose or ()) if p]
    if any(p not in PURPOSES for p in purposes):
        raise NotSupported(f"purpose must be among {', '.join(PURPOSES)}", field=f"{KIND}.purpose")
    if request.status != "active":
        raise InvalidDocument(profile.INVALID, [Problem(f"{KIND}.status", "must be active")])
    insurance = request.insurance or []
    items = request.item or []
    problems: list[Problem] = []
    if len(insurance) != 1:
        problems.append(Problem(f"{KIND}.insurance", "must hold exactly one coverage"))
    if len(items) != 1:
        problems.append(Problem(f"{KIND}.item", "must hold exactly one item: the care domain"))
    if problems:
        raise InvalidDocument(profile.INVALID, problems)
    fields, paths = profile.read_card(
        request, insurance[0].coverage, f"{KIND}.insurance[0].coverage"
    )
    domain = profile.coding(
        items[0].category, profile.DOMAIN_SYSTEM, f"{KIND}.item[0].category", problems
    )
    if problems:
        raise InvalidDocument(profile.INVALID, problems)
    fields |= {"domain": domain, "care_date": request.servicedDate}
    paths |= {"domain": f"{KIND}.item[0].category", "care_date": f"{KIND}.servicedDate"}
    body = profile.validated(EligibilityRequest, fields, paths)
    return CardQuery(**body.model_dump()), purposes


def response(
    query: CardQuery, purposes: list[str], result: Eligibility
) -> CoverageEligibilityResponse:
    """What the JSON API says, in FHIR; see docs/fhir.md for each element."""
    answer, day = result.answer, query.care_date.isoformat()
    item: dict[str, Any] = {"category": profile.domain_concept(query.domain)}
    resource: dict[str, Any] = {
        "resourceType": "CoverageEligibilityResponse",
        "status": "active",
        "purpose": purposes,
        "patient": profile.masked(),
        "servicedDate": day,
        "created": profile.today().isoformat(),
        "request": profile.masked("not-applicable", KIND),
        "outcome": "complete",
        "insurer": profile.insurer(query.amc_number),
    }
    if answer.open:
        resource["disposition"] = f"rights open for {query.domain} on {day}"
        item |= {"excluded": False, "description": answer.rate}
        item |= {"authorizationRequired": answer.prior_agreement_required}
        figure = benefit(answer.rate or "")
        if figure:
            item["benefit"] = [figure]
        if result.engagement and result.valid_until:
            resource["preAuthRef"] = result.engagement
            resource["_preAuthRef"] = _valid_until(result.valid_until)
    else:
        resource["disposition"] = f"no rights for {query.domain} on {day}"
        item["excluded"] = True
    resource["insurance"] = [
        {
            "coverage": profile.masked(resource_type="Coverage"),
            "inforce": answer.open,
            "item": [item],
        }
    ]
    return CoverageEligibilityResponse.model_validate(resource)


def _valid_until(day: date) -> dict[str, Any]:
    return {"extension": [{"url": ENGAGEMENT_VALID_UNTIL, "valueDate": day.isoformat()}]}


def benefit(rate: str) -> dict[str, Any] | None:
    """The card's rate as a FHIR benefit: a percentage as an unsignedInt, an amount as Money.

    Reads ``rights.rules.rate_label``'s forms; ``PEC`` and ``covered`` have no figure (the card's
    label is always in the item's ``description``).
    """
    if match := _BR_TOTAL.fullmatch(rate):
        return _typed("br-total-pct", allowedUnsignedInt=int(match[1]))
    if match := _BR_EXTRA.fullmatch(rate):
        return _typed("br-extra-pct", allowedUnsignedInt=int(match[1]))
    if match := _ACTUAL_COST.fullmatch(rate):
        return _typed("actual-cost-pct", allowedUnsignedInt=int(match[1]))
    if match := _AMOUNT.fullmatch(rate):
        amount = profile.money(int(match[1]) * 100 + int(match[2]))
        return _typed(f"amount-per-{match[3]}", allowedMoney=amount)
    return None


def _typed(code: str, **allowed: Any) -> dict[str, Any]:
    return {"type": {"coding": [{"system": BENEFIT_SYSTEM, "code": code}]}, **allowed}
