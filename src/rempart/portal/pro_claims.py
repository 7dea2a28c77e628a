"""The professional portal's prior agreements (/pro/accords) and invoices (/pro/factures).

Each form becomes one call of the service the API calls (``claims.prior_agreements``,
``claims.invoices``); the pages only translate. Addresses hold agreement references (HMACs) and
invoice ids (random), never a card field. An invoice form carries a random key of its own, given
to the service as the API's ``Idempotency-Key``: sending the same form twice bills once.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from rempart.claims import invoices, prior_agreements
from rempart.claims.schemas import IDEMPOTENCY_KEY, InvoiceRequest, PriorAgreementRequest
from rempart.errors import Conflict, Error, InvalidInput
from rempart.identity.auth import Principal
from rempart.identity.deps import ClientDep, PlatformDep
from rempart.portal import claim_forms as forms
from rempart.portal.rendering import Problem, problem_of, render
from rempart.portal.security import FormDep, page, text

router = APIRouter(prefix="/pro", include_in_schema=False)
Pro = Annotated[Principal, Depends(page("professional"))]
Reference = Annotated[str, Path(max_length=prior_agreements.MAX_REFERENCE)]
Cursor = Annotated[str | None, Query(max_length=200)]
PER_PAGE = 20
KEY_FIELD = "cle"  # the invoice form's idempotency key
_KEY = re.compile(IDEMPOTENCY_KEY)
ITEM_TYPES = [
    ("", "Aucun"),
    ("frame", "Monture"),
    ("lens", "Verre"),
    ("hearing_aid", "Aide auditive"),
    ("hearing_aid_left", "Aide auditive gauche"),
    ("hearing_aid_right", "Aide auditive droite"),
]
ITEM_NAMES = dict(ITEM_TYPES[1:])
BASKETS = [("", "Non"), ("100PS", "Oui, 100 % Santé")]
AGREEMENT_STATUSES = {
    "granted": "accordé",
    "consumed": "utilisé par une facture",
    "cancelled": "annulé",
    "expired": "expiré",
    "rejected": "refusé",
}
AGREEMENT_OK = {
    "accord": "Accord préalable accordé : indiquez sa référence sur la facture.",
    "annule": "Accord préalable annulé : ce qu'il réservait est libéré.",
}
INVOICE_OK = {
    "facture": "Facture enregistrée.",
    "deja": "Ce formulaire avait déjà été envoyé : la facture n'est enregistrée qu'une fois.",
    "annulee": "Facture annulée : ce qu'elle avait réservé est rendu, et l'accord préalable "
    "qu'elle utilisait, s'il y en a un, est de nouveau utilisable.",
}

AGREEMENT_REFUSALS = {
    "consumed": "Une facture a utilisé cet accord préalable : annulez d'abord cette facture.",
    "cancelled": "Cet accord préalable est déjà annulé.",
    "expired": "Cet accord préalable a expiré : il ne réserve plus rien.",
}
INVOICE_REFUSALS = {"cancelled": "Cette facture est déjà annulée."}


def _care_dates(exc: InvalidInput, words: str) -> Problem:
    if exc.field == "care_date":
        return Problem(f"Dates des soins refusées : {words}", exc.detail)
    return problem_of(exc)


# Prior agreements ---------------------------------------------------------------------------------


def _agreements_page(
    request: Request, caller: Principal, values: dict[str, str], status: int = 200, **context: Any
) -> Response:
    return render(
        request,
        "pro_agreements.html",
        {
            "values": values,
            "domains": forms.domain_options(caller),
            "item_types": ITEM_TYPES,
            "item_names": ITEM_NAMES,
            "baskets": BASKETS,
            "rows": range(forms.LINES),
            "line_details": True,
            "months": prior_agreements.VALIDITY_MONTHS,
            "statuses": AGREEMENT_STATUSES,
            **context,
        },
        status=status,
    )


@router.get(
    "/accords",
    summary="Roles: professional. The practice's prior agreements, and the form to ask for one.",
)
def agreements_page(
    request: Request,
    caller: Pro,
    platform: PlatformDep,
    client: ClientDep,
    avant: Cursor = None,
) -> Response:
    # Each agreement listed is a read of its patient's data: the service records one each.
    found = prior_agreements.list_prior_agreements(platform, caller, client, PER_PAGE, avant)
    return _agreements_page(request, caller, forms.blank_form(caller), listing=found, older=avant)


@router.post(
    "/accords",
    summary="Roles: professional. Ask for a prior agreement on a quote; granted, it is stored.",
)
def request_agreement(
    request: Request, caller: Pro, form: FormDep, platform: PlatformDep, client: ClientDep
) -> Response:
    values, rows = forms.read_form(form, ())
    try:
        body = PriorAgreementRequest.model_validate(forms.document(values, rows, ()))
    except ValidationError as exc:
        return _agreements_page(request, caller, values, 422, errors=forms.errors(exc, rows))
    try:
        view = prior_agreements.request_prior_agreement(
            platform, request.app.state.quotas, caller, body.card(), body.engine_lines(), client
        )
    except InvalidInput as exc:
        months = prior_agreements.VALIDITY_MONTHS
        problem = _care_dates(exc, f"d'aujourd'hui à dans {months} mois au plus.")
        return _agreements_page(request, caller, values, 422, problem=problem)
    except Error as exc:
        return _agreements_page(request, caller, values, exc.status, problem=problem_of(exc))
    if view.reference is None:  # nothing agreed, nothing stored: the answer says why
        lines = list(zip(body.engine_lines(), view.lines, strict=True))
        return _agreements_page(request, caller, values, refused=view, lines=lines)
    return RedirectResponse(f"/pro/accords/{view.reference}?ok=accord", status_code=303)


def _agreement_page(
    request: Request,
    caller: Principal,
    platform: PlatformDep,
    client: ClientDep,
    reference: str,
    status: int = 200,
    refused: Conflict | None = None,
    **context: Any,
) -> Response:
    record = prior_agreements.read_prior_agreement(platform, caller, reference, client)
    lines = list(zip(record.quoted, record.view.lines, strict=True))
    if refused is not None:
        why = AGREEMENT_REFUSALS.get(record.view.status, "Cet accord ne peut pas être annulé.")
        context["problem"] = Problem(why, refused.detail)
    return render(
        request,
        "pro_agreement.html",
        {
            "record": record,
            "agreement": record.view,
            "lines": lines,
            "statuses": AGREEMENT_STATUSES,
            "item_names": ITEM_NAMES,
            **context,
        },
        status=status,
    )


@router.get(
    "/accords/{reference}",
    summary="Roles: professional. One of the practice's prior agreements, line by line.",
)
def agreement_page(
    request: Request,
    reference: Reference,
    caller: Pro,
    platform: PlatformDep,
    client: ClientDep,
    ok: str | None = None,
) -> Response:
    message = AGREEMENT_OK.get(ok or "")
    return _agreement_page(request, caller, platform, client, reference, message=message)


@router.post(
    "/accords/{reference}/annuler",
    summary="Roles: professional. Cancel one of the practice's prior agreements.",
)
def cancel_agreement(
    request: Request, reference: Reference, caller: Pro, platform: PlatformDep, client: ClientDep
) -> Response:
    try:
        prior_agreements.cancel_prior_agreement(platform, caller, reference, client)
    except Conflict as exc:  # used, cancelled or expired: the page says which
        return _agreement_page(request, caller, platform, client, reference, 409, refused=exc)
    return RedirectResponse(f"/pro/accords/{reference}?ok=annule", status_code=303)


# Invoices ----------------------------------------------------------------------------------------

INVOICE_FIELDS = ("engagement", "prior_agreement", "invoice_number")


def _invoices_page(
    request: Request, caller: Principal, values: dict[str, str], status: int = 200, **context: Any
) -> Response:
    return render(
        request,
        "pro_invoices.html",
        {
            "values": values,
            "domains": forms.domain_options(caller),
            "item_types": ITEM_TYPES,
            "baskets": BASKETS,
            "rows": range(forms.LINES),
            "line_details": True,
            **context,
        },
        status=status,
    )


def _new_key() -> str:
    return secrets.token_urlsafe(18)


@router.get(
    "/factures",
    summary="Roles: professional. The practice's invoices, and the form to bill one.",
)
def invoices_page(
    request: Request, caller: Pro, platform: PlatformDep, avant: Cursor = None
) -> Response:
    found = invoices.list_invoices(platform, caller, PER_PAGE, avant)
    values = forms.blank_form(caller) | {KEY_FIELD: _new_key()}
    return _invoices_page(request, caller, values, listing=found, older=avant)


@router.post(
    "/factures",
    summary="Roles: professional. Bill an invoice (DRE): adjudicated and booked once, even if "
    "the form is sent twice.",
)
def submit_invoice(
    request: Request, caller: Pro, form: FormDep, platform: PlatformDep, client: ClientDep
) -> Response:
    values, rows = forms.read_form(form, INVOICE_FIELDS)
    key = text(form, KEY_FIELD, 100)
    values[KEY_FIELD] = key if _KEY.fullmatch(key) else _new_key()
    try:
        body = InvoiceRequest.model_validate(forms.document(values, rows, INVOICE_FIELDS))
    except ValidationError as exc:
        return _invoices_page(request, caller, values, 422, errors=forms.errors(exc, rows))
    submission = body.submission(values[KEY_FIELD])
    try:
        view = invoices.submit_invoice(
            platform, request.app.state.quotas, caller, submission, client
        )
    except Conflict as exc:  # this form's key already billed another invoice
        problem = Problem(
            "Ce formulaire a déjà servi à enregistrer une autre facture. Vérifiez la liste de "
            "vos factures ; pour une nouvelle facture, envoyez ce formulaire à nouveau.",
            exc.detail,
        )
        values[KEY_FIELD] = _new_key()
        return _invoices_page(request, caller, values, 409, problem=problem)
    except InvalidInput as exc:
        words = "dans les deux dernières années, et au plus demain."
        return _invoices_page(request, caller, values, 422, problem=_care_dates(exc, words))
    except Error as exc:
        return _invoices_page(request, caller, values, exc.status, problem=problem_of(exc))
    ok = "deja" if view.replayed else "facture"
    return RedirectResponse(f"/pro/factures/{view.id}?ok={ok}", status_code=303)


def _invoice_page(
    request: Request,
    caller: Principal,
    platform: PlatformDep,
    client: ClientDep,
    invoice_id: uuid.UUID,
    status: int = 200,
    refused: Conflict | None = None,
    **context: Any,
) -> Response:
    record = invoices.read_invoice(platform, request.app.state.recorder, caller, invoice_id, client)
    lines = list(zip(record.billed, record.view.lines, strict=True))
    if refused is not None:
        why = (
            "Cette facture est payée : elle ne peut plus être annulée."
            if record.paid_at is not None
            else INVOICE_REFUSALS.get(record.view.status, "Cette facture ne peut pas être annulée.")
        )
        context["problem"] = Problem(why, refused.detail)
    return render(
        request,
        "pro_invoice.html",
        {
            "record": record,
            "invoice": record.view,
            "lines": lines,
            "item_names": ITEM_NAMES,
            **context,
        },
        status=status,
    )


@router.get(
    "/factures/{invoice_id}",
    summary="Roles: professional. One of the practice's invoices: its adjudication line by line.",
)
def invoice_page(
    request: Request,
    invoice_id: uuid.UUID,
    caller: Pro,
    platform: PlatformDep,
    client: ClientDep,
    ok: str | None = None,
) -> Response:
    message = INVOICE_OK.get(ok or "")
    return _invoice_page(request, caller, platform, client, invoice_id, message=message)


@router.post(
    "/factures/{invoice_id}/annuler",
    summary="Roles: professional. Cancel one of the practice's unpaid invoices.",
)
def cancel_invoice(
    request: Request, invoice_id: uuid.UUID, caller: Pro, platform: PlatformDep, client: ClientDep
) -> Response:
    try:
        invoices.cancel_invoice(platform, caller, invoice_id, client)
    except Conflict as exc:  # paid, or already cancelled: the page says which
        return _invoice_page(request, caller, platform, client, invoice_id, 409, refused=exc)
    return RedirectResponse(f"/pro/factures/{invoice_id}?ok=annulee", status_code=303)
