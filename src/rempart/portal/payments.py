"""Payments in the three portals: a practice's remittances (with their PDF advice) and bank
details, an insurer's settlement statements, the operator's payment runs.

Each page is one call of the service the API calls (``payments.api``), with the same roles and
the same answers: another practice's remittance or another insurer's statement is "not found".
Launching a run from the console is the CLI's use case (``runs.run_payments``), under step-up;
a launch while a run is in progress (another click, the CLI) is refused by its run lock.
A change of bank details needs a second factor given less than ten minutes ago, as in the API;
the IBAN typed is never put in an address, and never shown again once the change is recorded
(only its hint, as the service gives it).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import RedirectResponse, Response

from rempart.errors import ConfigurationError, Conflict, Error, Forbidden, InvalidInput, NotFound
from rempart.identity.auth import Principal
from rempart.identity.deps import ClientDep, PlatformDep
from rempart.payments import bank_details, documents, remittance, runs, statements
from rempart.platform import Platform
from rempart.portal.account import fresh
from rempart.portal.rendering import Problem, problem_of, render
from rempart.portal.security import FormDep, page, text

router = APIRouter(include_in_schema=False)
Pro = Annotated[Principal, Depends(page("professional"))]
Insurer = Annotated[Principal, Depends(page("amc"))]
Operator = Annotated[Principal, Depends(page("operator"))]  # as GET /api/v1/payment-runs
LIMIT = 50
BANK = "/pro/banque"
BANK_OK = {
    "demande": "Demande enregistrée. Un code vous est envoyé par courrier, à l'adresse de votre "
    "convention : saisissez-le ci-dessous pour confirmer le changement.",
    "confirmation": "Nouveau compte confirmé. Il sera utilisé à la fin du délai de sécurité ; "
    "d'ici là, vos paiements sont suspendus.",
    "annulation": "Changement annulé : vos paiements vont au compte que vous aviez avant.",
}
BANK_ERRORS = {
    "iban": "IBAN refusé : vérifiez-le (27 caractères pour un compte français, dans un pays de "
    "la zone SEPA, différent du compte actuel).",
    "bic": "BIC refusé : 8 ou 11 lettres et chiffres, par exemple BNPAFRPPXXX.",
    "reason": "Dites pourquoi vous annulez, en 1 à 200 caractères.",
}

RUN_OK = {
    "lancee": "Campagne terminée : ses fichiers sont écrits.",
    "reprise": "Une campagne interrompue a été terminée ; rien de nouveau n'était dû.",
    "alteres": "Des factures n'ont pas passé le contrôle d'intégrité : elles ne sont pas payées "
    "et attendent. Lancez la vérification d'intégrité, qui les nomme.",
    "rien": "Rien de nouveau à payer : aucune facture acceptée n'attend.",
    "suspendus": "Rien n'est payé : les factures dues sont celles de professionnels suspendus "
    "(changement de coordonnées bancaires ou gel).",
}

RUN_IN_PROGRESS = Problem(
    "Une campagne de paiement est déjà en cours (lancée ici, en ligne de commande ou par une "
    "tâche planifiée) : rien n'a été lancé. Attendez qu'elle se termine, puis rechargez cette "
    "page pour voir son résultat."
)


def _cents(amount: str) -> int:
    """A document's money ("9.00", euros) in cents, for the ``euros`` filter."""
    return int(Decimal(amount) * 100)


def _day(value: str) -> date:
    """A document's ISO date ("2026-03-10"), for the ``day`` filter."""
    return date.fromisoformat(value[:10])


def _instant(value: str) -> datetime:
    """A document's ISO instant ("2026-03-10T09:00:00+00:00"), for the ``moment`` filter."""
    return datetime.fromisoformat(value)


def _document_page(
    request: Request, template: str, doc: dict[str, Any], **context: Any
) -> Response:
    # The documents hold money and dates as text (the API's JSON): the page shows them French.
    return render(
        request,
        template,
        {"doc": doc, "cents": _cents, "iso_day": _day, "instant": _instant, **context},
    )


def _attachment(data: bytes, media_type: str, name: str) -> Response:
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# Professionals: remittances ----------------------------------------------------------------------


@router.get("/pro/paiements", summary="Roles: professional. Your remittances, newest first.")
def remittances_page(request: Request, caller: Pro, platform: PlatformDep) -> Response:
    found = remittance.list_remittances(platform, caller, LIMIT)
    return render(request, "pro_payments.html", {"remittances": found})


@router.get(
    "/pro/paiements/{remittance_id}",
    summary="Roles: professional. One of your remittances, invoice by invoice, line by line.",
)
def remittance_page(
    request: Request, remittance_id: uuid.UUID, caller: Pro, platform: PlatformDep
) -> Response:
    doc = remittance.get_remittance(platform, caller, remittance_id)  # another's: 404
    return _document_page(request, "pro_payment.html", doc)


@router.get(
    "/pro/paiements/{remittance_id}/avis.pdf",
    summary="Roles: professional. One of your remittance advices as a PDF.",
)
def remittance_pdf(remittance_id: uuid.UUID, caller: Pro, platform: PlatformDep) -> Response:
    doc = remittance.get_remittance(platform, caller, remittance_id)  # another's: 404
    name = f"{doc['run']['reference']}-{doc['payee']['am_number']}.pdf"
    return _attachment(remittance.render_pdf(doc), "application/pdf", name)


# Professionals: bank details ---------------------------------------------------------------------


def _bank_page(
    request: Request, caller: Principal, platform: Platform, status: int = 200, **context: Any
) -> Response:
    details = bank_details.current_details(platform, caller)
    return render(
        request,
        "pro_bank.html",
        {"details": details, "fresh": fresh(caller), **context},
        status=status,
    )


def _bank_refused(
    request: Request, caller: Principal, platform: Platform, exc: Error, **context: Any
) -> Response:
    """The page again with what went wrong: the field's message, or the service's problem."""
    if isinstance(exc, Forbidden):  # the second factor went stale meanwhile: ask for it again
        return _bank_page(request, caller, platform, 403, **context)
    field = exc.field if isinstance(exc, InvalidInput) else None
    if field in BANK_ERRORS:
        context["errors"] = {field: BANK_ERRORS[field]}
    return _bank_page(request, caller, platform, exc.status, problem=problem_of(exc), **context)


@router.get(
    BANK,
    summary="Roles: professional. Where your payments go (the account's hint), the change under "
    "way, and the forms to change, confirm or cancel.",
)
def bank_page(
    request: Request,
    caller: Pro,
    platform: PlatformDep,
    ok: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    return _bank_page(request, caller, platform, message=BANK_OK.get(ok or ""))


@router.post(
    BANK,
    summary="Roles: professional (second factor within 10 minutes). Ask to be paid to another "
    "account: a code is sent by letter.",
)
def request_change(
    request: Request, caller: Pro, form: FormDep, platform: PlatformDep, client: ClientDep
) -> Response:
    # Given back only to correct a refused form (in this answer, never in an address).
    values = {"iban": text(form, "iban", 50).strip(), "bic": text(form, "bic", 20).strip()}
    if not fresh(caller):
        return _bank_page(request, caller, platform, 403)
    try:
        bank_details.request_change(platform, caller, values["iban"], values["bic"], client)
    except (InvalidInput, Conflict, Forbidden) as exc:
        return _bank_refused(request, caller, platform, exc, values=values)
    return RedirectResponse(f"{BANK}?ok=demande", status_code=303)


@router.post(
    f"{BANK}/confirmer",
    summary="Roles: professional (second factor within 10 minutes). Confirm the change with the "
    "code of the letter; five wrong codes cancel it.",
)
def confirm_change(
    request: Request, caller: Pro, form: FormDep, platform: PlatformDep, client: ClientDep
) -> Response:
    if not fresh(caller):
        return _bank_page(request, caller, platform, 403)
    try:
        bank_details.confirm_change(platform, caller, text(form, "code", 40), client)
    except InvalidInput as exc:  # a wrong code: it counted
        change = bank_details.current_details(platform, caller).change
        errors = {"code": _wrong_code(change)}
        return _bank_page(request, caller, platform, 422, errors=errors, problem=problem_of(exc))
    except (NotFound, Forbidden) as exc:
        return _bank_refused(request, caller, platform, exc)
    return RedirectResponse(f"{BANK}?ok=confirmation", status_code=303)


def _wrong_code(change: bank_details.ChangeView | None) -> str:
    if change is None or change.status != "pending":
        return (
            "Code refusé. Après cinq codes faux, le changement est annulé : demandez-le à nouveau."
        )
    left = change.attempts_left
    return f"Code refusé. Il vous reste {left} essai{'s' if left > 1 else ''}."


@router.post(
    f"{BANK}/annuler",
    summary="Roles: professional (second factor within 10 minutes). Cancel the change under way.",
)
def cancel_change(
    request: Request, caller: Pro, form: FormDep, platform: PlatformDep, client: ClientDep
) -> Response:
    values = {"reason": text(form, "reason", 200)}
    if not fresh(caller):
        return _bank_page(request, caller, platform, 403, values=values)
    try:
        bank_details.cancel_own_change(platform, caller, values["reason"], client)
    except (InvalidInput, NotFound, Forbidden) as exc:
        return _bank_refused(request, caller, platform, exc, values=values)
    return RedirectResponse(f"{BANK}?ok=annulation", status_code=303)


# Insurers: settlement statements -----------------------------------------------------------------


@router.get("/amc/releves", summary="Roles: amc. Your settlement statements, newest first.")
def statements_page(request: Request, caller: Insurer, platform: PlatformDep) -> Response:
    found = statements.list_statements(platform, caller, LIMIT)
    return render(request, "amc_statements.html", {"statements": found})


@router.get(
    "/amc/releves/{settlement_id}",
    summary="Roles: amc. One of your settlement statements: what was advanced for your members, "
    "claim by claim, and how it is recovered.",
)
def statement_page(
    request: Request, settlement_id: uuid.UUID, caller: Insurer, platform: PlatformDep
) -> Response:
    doc = statements.get_statement(platform, caller, settlement_id)  # another's: 404
    return _document_page(request, "amc_statement.html", doc)


@router.get(
    "/amc/releves/{settlement_id}/releve.json",
    summary="Roles: amc. One of your settlement statements, the API's JSON document.",
)
def statement_json(settlement_id: uuid.UUID, caller: Insurer, platform: PlatformDep) -> Response:
    doc = statements.get_statement(platform, caller, settlement_id)  # another's: 404
    name = f"{doc['run']['reference']}-{doc['insurer']['amc_number']}.json"
    return _attachment(documents.encode(doc), "application/json", name)


# Operators: payment runs -------------------------------------------------------------------------


def _runs_page(
    request: Request, caller: Principal, platform: Platform, status: int = 200, **context: Any
) -> Response:
    found = runs.list_runs(platform, LIMIT)
    return render(
        request,
        "ops_payments.html",
        {"runs": found, "fresh": fresh(caller), **context},
        status=status,
    )


@router.get(
    "/ops/paiements",
    summary="Roles: operator. The payment runs, newest first, with their totals per insurer.",
)
def runs_page(
    request: Request,
    caller: Operator,
    platform: PlatformDep,
    ok: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    return _runs_page(request, caller, platform, message=RUN_OK.get(ok or ""))


@router.post(
    "/ops/paiements",
    summary="Roles: operator (second factor within 10 minutes). Run the payments now, as "
    "`rempart payments run`: finish an unfinished run, then pay what is due up to today.",
)
def launch_run(request: Request, caller: Operator, platform: PlatformDep) -> Response:
    if not fresh(caller):
        return _runs_page(request, caller, platform, 403)
    try:
        outcome = runs.run_payments(platform, None, None, caller.actor)
    except runs.RunInProgress as exc:  # another launch (a second click, the CLI, a cron)
        return _runs_page(request, caller, platform, exc.status, problem=RUN_IN_PROGRESS)
    except (Conflict, ConfigurationError) as exc:  # settings; an invoice changed meanwhile
        return _runs_page(request, caller, platform, exc.status, problem=problem_of(exc))
    done = outcome.run or (outcome.resumed[-1] if outcome.resumed else None)
    target = f"/ops/paiements/{done.id}" if done else "/ops/paiements"
    return RedirectResponse(f"{target}?ok={_launch_code(outcome)}", status_code=303)


def _launch_code(outcome: runs.RunOutcome) -> str:
    if outcome.problems:
        return "alteres"
    if outcome.run:
        return "lancee"
    if outcome.resumed:
        return "reprise"
    return "suspendus" if outcome.held else "rien"


@router.get(
    "/ops/paiements/{run_id}",
    summary="Roles: operator. One payment run: counts, totals per insurer, who was held, the "
    "digests of its files.",
)
def run_page(
    request: Request,
    run_id: uuid.UUID,
    caller: Operator,
    platform: PlatformDep,
    ok: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    view = runs.get_run(platform, run_id)
    return render(request, "ops_payment.html", {"run": view, "message": RUN_OK.get(ok or "")})
