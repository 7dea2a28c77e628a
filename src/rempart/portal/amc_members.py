"""The insurer portal's beneficiaries and invoices (/amc/beneficiaires, /amc/factures).

A member is looked up by a POSTed form: the member number is personal data and never goes in
an address. Each file shown is on the record (the service records one event per beneficiary
before answering); the invoice list names no patient. The insurer is the session's, never the
address's or the form's: another insurer's member is "not found" like a number nobody has.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from rempart.claims import insurer_invoices
from rempart.errors import Error, InvalidInput
from rempart.identity.auth import Principal
from rempart.identity.deps import ClientDep, PlatformDep
from rempart.portal.rendering import FIELD_MESSAGES, problem_of, render
from rempart.portal.security import FormDep, page, text
from rempart.registry import member_files

router = APIRouter(prefix="/amc", include_in_schema=False)
Insurer = Annotated[Principal, Depends(page("amc"))]
INVOICES_PER_PAGE = insurer_invoices.PAGE


@router.get(
    "/beneficiaires", summary="Roles: amc. Look a member up by member number (a posted form)."
)
def search_page(request: Request, caller: Insurer) -> Response:
    return render(request, "amc_beneficiary.html")


@router.post(
    "/beneficiaires",
    summary="Roles: amc. A member's file: beneficiaries, rights, invoices, access events (each "
    "view recorded).",
)
def member_file(
    request: Request, caller: Insurer, form: FormDep, platform: PlatformDep, client: ClientDep
) -> Response:
    values = {"member_number": text(form, "member_number", 40).strip()}
    context: dict[str, Any] = {"values": values}
    try:
        found = member_files.open_member_file(
            platform,
            request.app.state.recorder,
            request.app.state.member_file_quotas,
            caller,
            values["member_number"],
            client,
        )
    except InvalidInput:
        context["errors"] = {"member_number": FIELD_MESSAGES["member_number"]}
        return render(request, "amc_beneficiary.html", context, status=422)
    except Error as exc:
        context["not_found"] = exc.status == 404
        context["problem"] = None if exc.status == 404 else problem_of(exc)
        return render(request, "amc_beneficiary.html", context, status=exc.status)
    return render(request, "amc_beneficiary.html", context | {"file": found})


@router.get(
    "/factures",
    summary="Roles: amc. The invoices billed for your members, newest first, without the "
    "patients' identity.",
)
def invoices_page(
    request: Request,
    caller: Insurer,
    platform: PlatformDep,
    avant: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    found = insurer_invoices.list_invoices(platform, caller, avant, INVOICES_PER_PAGE)
    return render(
        request,
        "amc_invoices.html",
        {"page": found, "first": avant is None, "per_page": INVOICES_PER_PAGE},
    )
