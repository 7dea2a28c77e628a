"""The professional portal (/pro/): rights check, calculation, billing software.

Each page turns its form into one call of the service the API calls; the answer says what the
API's says, no more: never a name, a NIR or a birth date from the registry.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from rempart.claims import services as claims
from rempart.claims.engine import Line
from rempart.claims.schemas import CalculationRequest
from rempart.errors import Error, InvalidInput
from rempart.identity import clients
from rempart.identity.auth import Principal
from rempart.identity.deps import ClientDep, PlatformDep
from rempart.portal import claim_forms as forms
from rempart.portal.account import fresh
from rempart.portal.rendering import field_errors, problem_of, render
from rempart.portal.security import FormDep, page, text
from rempart.rights import services as rights
from rempart.rights.schemas import EligibilityRequest

router = APIRouter(prefix="/pro", include_in_schema=False)
Pro = Annotated[Principal, Depends(page("professional"))]
OK = {
    "ajout": "Logiciel enregistré.",
    "revocation": "Logiciel révoqué : ses jetons ne valent plus.",
}


# Rights check (IDB) ------------------------------------------------------------------------------


def _rights_page(
    request: Request, caller: Principal, values: dict[str, str], status: int = 200, **context: Any
) -> Response:
    return render(
        request,
        "pro_rights.html",
        {"values": values, "domains": forms.domain_options(caller), **context},
        status=status,
    )


@router.get("/", summary="Roles: professional. The rights check (IDB) form.")
def rights_page(request: Request, caller: Pro) -> Response:
    defaults = {"birth_rank": "1", "care_date": forms.today().isoformat()}
    return _rights_page(request, caller, defaults)


@router.post(
    "/droits",
    summary="Roles: professional. Check a patient's rights: open or closed, rate, engagement.",
)
def check_rights(
    request: Request, caller: Pro, form: FormDep, platform: PlatformDep, client: ClientDep
) -> Response:
    values = {name: text(form, name, 40).strip() for name in (*forms.CARD, "domain", "care_date")}
    try:
        body = EligibilityRequest.model_validate(values)
    except ValidationError as exc:
        return _rights_page(request, caller, values, 422, errors=field_errors(exc))
    try:
        result = rights.check_rights(
            platform,
            request.app.state.recorder,
            request.app.state.quotas,
            caller,
            rights.CardQuery(**body.model_dump()),
            client,
        )
    except InvalidInput as exc:  # the care date, two years back at most
        errors = (
            {
                "care_date": "La date des soins est dans les deux dernières années, et au plus "
                "demain."
            }
            if exc.field == "care_date"
            else {}
        )
        return _rights_page(request, caller, values, 422, errors=errors, problem=problem_of(exc))
    except Error as exc:
        return _rights_page(request, caller, values, exc.status, problem=problem_of(exc))
    return _rights_page(request, caller, values, result=result, domain=body.domain)


# Calculation (CLC) -------------------------------------------------------------------------------


def _calculation_page(
    request: Request, caller: Principal, values: dict[str, str], status: int = 200, **context: Any
) -> Response:
    return render(
        request,
        "pro_calculation.html",
        {
            "values": values,
            "domains": forms.domain_options(caller),
            "rows": range(forms.LINES),
            **context,
        },
        status=status,
    )


@router.get("/calcul", summary="Roles: professional. The calculation (CLC) form.")
def calculation_page(request: Request, caller: Pro) -> Response:
    return _calculation_page(request, caller, forms.blank_form(caller))


@router.post(
    "/calcul",
    summary="Roles: professional. What the insurer would pay, line by line; nothing is booked.",
)
def calculate(
    request: Request, caller: Pro, form: FormDep, platform: PlatformDep, client: ClientDep
) -> Response:
    values, rows = forms.read_form(form, ("engagement",))
    try:
        body = CalculationRequest.model_validate(forms.document(values, rows, ("engagement",)))
    except ValidationError as exc:
        return _calculation_page(request, caller, values, 422, errors=forms.errors(exc, rows))
    card = rights.Card(body.amc_number, body.member_number, body.birth_date, body.birth_rank)
    try:
        result = claims.calculate(
            platform,
            request.app.state.recorder,
            request.app.state.quotas,
            caller,
            card,
            [Line(**line.model_dump()) for line in body.lines],
            body.engagement,
            None,
            client,
        )
    except Error as exc:
        return _calculation_page(request, caller, values, exc.status, problem=problem_of(exc))
    computed = list(zip(rows, body.lines, result.lines, strict=True))
    return _calculation_page(request, caller, values, result=result, computed=computed)


# Billing software (API clients) ------------------------------------------------------------------


def _clients_page(
    request: Request, caller: Principal, platform: PlatformDep, status: int = 200, **context: Any
) -> Response:
    assert caller.professional_id is not None
    found = clients.list_clients(platform, caller.professional_id)
    return render(
        request,
        "pro_clients.html",
        {"clients": found, "fresh": fresh(caller), **context},
        status=status,
    )


@router.get("/logiciels", summary="Roles: professional. The practice's billing software.")
def clients_page(
    request: Request, caller: Pro, platform: PlatformDep, ok: str | None = None
) -> Response:
    return _clients_page(request, caller, platform, message=OK.get(ok or ""))


@router.post(
    "/logiciels",
    summary="Roles: professional (second factor within 10 minutes). Register software's key.",
)
def register_client(
    request: Request, caller: Pro, form: FormDep, platform: PlatformDep
) -> Response:
    values = {"name": text(form, "name", 100), "public_key": text(form, "public_key", 2000)}
    assert caller.professional_id is not None
    if not fresh(caller):
        return _clients_page(request, caller, platform, 403, values=values)
    try:
        clients.register_client(
            platform, caller.professional_id, values["name"], values["public_key"], caller.actor
        )
    except InvalidInput as exc:
        errors = {
            "name": "Donnez un nom de 1 à 100 caractères.",
            "public_key": "Collez une clé publique Ed25519 (PEM, ou ses 32 octets en base64).",
        }
        field = exc.field if exc.field in errors else "public_key"
        return _clients_page(
            request, caller, platform, 422, values=values, errors={field: errors[field]}
        )
    return RedirectResponse("/pro/logiciels?ok=ajout", status_code=303)


@router.post(
    "/logiciels/{client_id}/revoquer",
    summary="Roles: professional (second factor within 10 minutes). Revoke billing software.",
)
def revoke_client(
    request: Request, client_id: uuid.UUID, caller: Pro, platform: PlatformDep
) -> Response:
    assert caller.professional_id is not None
    if not fresh(caller):
        return _clients_page(request, caller, platform, 403)
    clients.revoke_client(platform, caller.professional_id, client_id)  # another's: 404
    return RedirectResponse("/pro/logiciels?ok=revocation", status_code=303)
