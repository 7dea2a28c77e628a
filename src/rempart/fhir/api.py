"""The FHIR R4 facade's router, under /fhir/r4: thin, like every api module — parse the
resource, map it, call one service, write the answer. Every failure is an OperationOutcome
(``outcome.FhirRoute``)."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Request, Response
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.coverageeligibilityrequest import CoverageEligibilityRequest
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from rempart import __version__
from rempart.errors import NotFound, Problem
from rempart.fhir import calculation, claim, eligibility, invoice, preauthorization, profile
from rempart.fhir.outcome import (
    FHIR_JSON,
    FhirRoute,
    Malformed,
    UnsupportedMediaType,
    fhir_response,
    located,
    validation_problems,
)
from rempart.identity.auth import Principal
from rempart.identity.deps import ClientDep, PlatformDep, allow
from rempart.identity.models import ROLES
from rempart.rights.services import check_rights

router = APIRouter(prefix="/fhir/r4", tags=["fhir"], route_class=FhirRoute)
Professional = Annotated[Principal, Depends(allow("professional"))]
# Any signed-in account: the CapabilityStatement says what is served, which is no secret, but
# the facade has no anonymous door (an unknown path answers 401 before it answers 404).
Anyone = Annotated[Principal, Depends(allow(*ROLES))]
MEDIA_TYPES = (FHIR_JSON, "application/json")
CLAIM_SUBMIT = "http://hl7.org/fhir/OperationDefinition/Claim-submit"
ELIGIBILITY_SUBMIT = f"{profile.BASE}/OperationDefinition/CoverageEligibilityRequest-submit"
OUTCOME = {"description": "OperationOutcome", "content": {FHIR_JSON: {}}}
ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys((400, 401, 403, 415, 422, 429), OUTCOME)
CLAIM_ERRORS = ERRORS | dict.fromkeys((409, 503), OUTCOME)
Model = TypeVar("Model", bound=FHIRAbstractModel)


class FhirResponse(Response):
    media_type = FHIR_JSON


async def _body(request: Request) -> bytes:
    return await request.body()


Body = Annotated[bytes, Depends(_body)]


def _takes(kind: str) -> dict[str, Any]:
    schema = {"type": "object", "description": f"A FHIR R4 {kind} (docs/fhir.md)"}
    media = {"schema": schema}
    return {"requestBody": {"required": True, "content": dict.fromkeys(MEDIA_TYPES, media)}}


def parse(model: type[Model], request: Request, body: bytes) -> Model:
    """The body as a ``model`` resource: 415 for another media type, 400 when it does not parse."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise UnsupportedMediaType("send application/fhir+json (or application/json)")
    kind = model.get_resource_type()
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except ValueError:
        raise Malformed("the body is not JSON", [Problem("(body)", "is not JSON")]) from None
    if not isinstance(data, dict) or data.get("resourceType") != kind:
        raise Malformed(f"expected a {kind}", [Problem(f"{kind}.resourceType", f"must be {kind}")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc.errors(), kind)
        raise Malformed("the body is not a valid resource", problems) from None


def _no_constant(_: str) -> None:
    raise ValueError("NaN and Infinity are not JSON numbers")


@router.post(
    "/CoverageEligibilityRequest/$submit",
    summary="Roles: professional. Rights check (IDB) in FHIR: a CoverageEligibilityResponse.",
    response_class=FhirResponse,
    responses=ERRORS,
    openapi_extra=_takes("CoverageEligibilityRequest"),
)
def submit_eligibility(
    caller: Professional, platform: PlatformDep, client: ClientDep, body: Body, request: Request
) -> Response:
    """The card in a contained Patient and Coverage; the answer names no one (docs/fhir.md)."""
    resource = parse(CoverageEligibilityRequest, request, body)
    query, purposes = eligibility.query_of(resource)
    with located({"care_date": f"{eligibility.KIND}.servicedDate"}):
        result = check_rights(
            platform, request.app.state.recorder, request.app.state.quotas, caller, query, client
        )
    return fhir_response(eligibility.response(query, purposes, result))


@router.post(
    "/Claim/$submit",
    summary="Roles: professional. A Claim: use = predetermination is a calculation (CLC), "
    "preauthorization a prior agreement (PEC), claim an invoice (DRE; retries are safe under an "
    "Idempotency-Key).",
    response_class=FhirResponse,
    responses=CLAIM_ERRORS,
    openapi_extra=_takes("Claim"),
)
def submit_claim(
    caller: Professional,
    platform: PlatformDep,
    client: ClientDep,
    body: Body,
    request: Request,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """A ClaimResponse with each line's adjudication: nothing is booked for a predetermination,
    an agreement is granted for a preauthorization, an invoice is booked for a claim."""
    resource = parse(Claim, request, body)
    read = claim.read_claim(resource)
    quotas = request.app.state.quotas
    with located({"care_date": f"{claim.KIND}.item.servicedDate"}):
        if read.use == "preauthorization":
            answer = preauthorization.request(platform, quotas, caller, read, client)
        elif read.use == "claim":
            answer = invoice.submit(platform, quotas, caller, read, client, idempotency_key)
        else:
            recorder = request.app.state.recorder
            answer = calculation.calculate(platform, recorder, quotas, caller, read, client)
    return fhir_response(answer)


@router.get(
    "/metadata",
    summary="Roles: professional, amc, operator, security. The CapabilityStatement.",
    response_class=FhirResponse,
    responses=ERRORS,
)
async def metadata(_: Anyone) -> Response:
    return fhir_response(capabilities())


@router.api_route(
    "/{path:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    summary="Roles: professional, amc, operator, security. Any other interaction: not found.",
    include_in_schema=False,
)
async def not_served(_: Anyone) -> Response:
    # The path is not repeated: it may hold an identifier.
    raise NotFound("no such FHIR interaction: see GET /fhir/r4/metadata")


def capabilities() -> CapabilityStatement:
    """What the facade serves, as of today."""
    submit = {"name": "submit"}
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": profile.today().isoformat(),
        "kind": "instance",
        "software": {"name": "Rempart", "version": __version__},
        "implementation": {"description": "Rempart's FHIR facade (docs/fhir.md)"},
        "fhirVersion": "4.3.0",
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "security": {"description": "A Bearer session token (docs/api.md)."},
                "resource": [
                    {
                        "type": "CoverageEligibilityRequest",
                        "operation": [{**submit, "definition": ELIGIBILITY_SUBMIT}],
                    },
                    {"type": "Claim", "operation": [{**submit, "definition": CLAIM_SUBMIT}]},
                ],
            }
        ],
    }
    return CapabilityStatement.model_validate(statement)
