"""Payments over HTTP: professionals read their remittances and change their bank details,
insurers read their settlement statements, operators read the runs."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from rempart.identity.auth import Principal
from rempart.identity.deps import ClientDep, PlatformDep, allow
from rempart.payments import bank_details, documents, remittance, runs, statements
from rempart.payments.schemas import (
    BankDetailsCancellation,
    BankDetailsChange,
    BankDetailsConfirmation,
    BankDetailsOut,
    ChangeOut,
    HeldOut,
    InsurerTotal,
    RemittanceList,
    RemittanceOut,
    RunList,
    RunOut,
    StatementList,
    StatementOut,
)

router = APIRouter(prefix="/api/v1", tags=["payments"])
Professional = Annotated[Principal, Depends(allow("professional"))]
Insurer = Annotated[Principal, Depends(allow("amc"))]
Operator = Annotated[Principal, Depends(allow("operator"))]
Limit = Annotated[int, Query(ge=1, le=200)]
PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys((401, 403, 404, 422), PROBLEM)
DOCUMENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The document, byte for byte as the run wrote it (docs/payments.md)",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
PDF: dict[int | str, dict[str, Any]] = {
    200: {"description": "The advice as a PDF", "content": {"application/pdf": {}}}
}


# --- professionals ------------------------------------------------------------------------------


@router.get(
    "/payments",
    summary="Roles: professional. Your remittances, newest first.",
    responses=ERRORS,
)
def list_remittances(
    caller: Professional, platform: PlatformDep, limit: Limit = 50
) -> RemittanceList:
    found = remittance.list_remittances(platform, caller, limit)
    return RemittanceList(
        remittances=[
            RemittanceOut(
                id=r.id,
                run=r.run_reference,
                run_date=r.run_date,
                execution_date=r.execution_date,
                end_to_end_id=r.end_to_end_id,
                amount=r.amount,
                invoices=r.invoices,
                lines=r.lines,
            )
            for r in found
        ]
    )


@router.get(
    "/payments/{remittance_id}",
    summary="Roles: professional. One of your remittance advices: each invoice and line, paid "
    "or rejected, and the transfer's end-to-end reference.",
    response_class=Response,
    responses=DOCUMENT | ERRORS,
)
def get_remittance(
    remittance_id: uuid.UUID, caller: Professional, platform: PlatformDep
) -> Response:
    doc = remittance.get_remittance(platform, caller, remittance_id)
    return Response(documents.encode(doc), media_type="application/json")


@router.get(
    "/payments/{remittance_id}/pdf",
    summary="Roles: professional. One of your remittance advices as a PDF.",
    response_class=Response,
    responses=PDF | ERRORS,
)
def get_remittance_pdf(
    remittance_id: uuid.UUID, caller: Professional, platform: PlatformDep
) -> Response:
    doc = remittance.get_remittance(platform, caller, remittance_id)
    name = f"{doc['run']['reference']}-{doc['payee']['am_number']}.pdf"
    return Response(
        remittance.render_pdf(doc),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/bank-details",
    summary="Roles: professional. Where your payments go (the account's hint), and the change "
    "under way.",
    responses=ERRORS,
)
def get_bank_details(caller: Professional, platform: PlatformDep) -> BankDetailsOut:
    view = bank_details.current_details(platform, caller)
    return BankDetailsOut(
        iban_hint=view.iban_hint,
        bic=view.bic,
        since=view.since,
        change=_change(view.change) if view.change else None,
        payments_held=view.payments_held,
    )


@router.post(
    "/bank-details",
    status_code=202,
    summary="Roles: professional (a person, second factor within 10 minutes). Ask to be paid "
    "to another account: a code is sent by letter; nothing changes until it is given back and "
    "the cooling-off period has passed.",
    responses=ERRORS | {409: PROBLEM},
)
def request_change(
    body: BankDetailsChange, caller: Professional, platform: PlatformDep, client: ClientDep
) -> ChangeOut:
    return _change(bank_details.request_change(platform, caller, body.iban, body.bic, client))


@router.post(
    "/bank-details/confirm",
    summary="Roles: professional (a person, second factor within 10 minutes). Confirm the "
    "change with the code of the letter; five wrong codes cancel it.",
    responses=ERRORS,
)
def confirm_change(
    body: BankDetailsConfirmation, caller: Professional, platform: PlatformDep, client: ClientDep
) -> ChangeOut:
    return _change(bank_details.confirm_change(platform, caller, body.code, client))


@router.post(
    "/bank-details/cancel",
    summary="Roles: professional (a person, second factor within 10 minutes). Cancel the "
    "change under way.",
    responses=ERRORS,
)
def cancel_change(
    body: BankDetailsCancellation, caller: Professional, platform: PlatformDep, client: ClientDep
) -> ChangeOut:
    return _change(bank_details.cancel_own_change(platform, caller, body.reason, client))


def _change(view: bank_details.ChangeView) -> ChangeOut:
    return ChangeOut(
        id=view.id,
        status=view.status,
        iban_hint=view.iban_hint,
        bic=view.bic,
        requested_at=view.requested_at,
        code_expires_at=view.code_expires_at,
        usable_from=view.usable_from,
        attempts_left=view.attempts_left,
    )


# --- insurers -----------------------------------------------------------------------------------


@router.get(
    "/settlements",
    summary="Roles: amc. Your settlement statements, newest first.",
    responses=ERRORS,
)
def list_statements(caller: Insurer, platform: PlatformDep, limit: Limit = 50) -> StatementList:
    found = statements.list_statements(platform, caller, limit)
    return StatementList(
        statements=[
            StatementOut(
                id=s.id,
                run=s.run_reference,
                run_date=s.run_date,
                collection_date=s.collection_date,
                method=s.method,
                end_to_end_id=s.end_to_end_id,
                amount=s.amount,
                claims=s.claims,
                lines=s.lines,
            )
            for s in found
        ]
    )


@router.get(
    "/settlements/{settlement_id}",
    summary="Roles: amc. One of your settlement statements: what was advanced for your "
    "members, claim by claim.",
    response_class=Response,
    responses=DOCUMENT | ERRORS,
)
def get_statement(settlement_id: uuid.UUID, caller: Insurer, platform: PlatformDep) -> Response:
    doc = statements.get_statement(platform, caller, settlement_id)
    return Response(documents.encode(doc), media_type="application/json")


# --- operators ----------------------------------------------------------------------------------


@router.get(
    "/payment-runs",
    summary="Roles: operator. The payment runs, newest first.",
    responses=ERRORS,
)
def list_runs(_: Operator, platform: PlatformDep, limit: Limit = 50) -> RunList:
    return RunList(runs=[_run(view) for view in runs.list_runs(platform, limit)])


@router.get(
    "/payment-runs/{run_id}",
    summary="Roles: operator. One payment run: counts, totals per insurer, who was held, the "
    "digests of its files.",
    responses=ERRORS,
)
def get_run(run_id: uuid.UUID, _: Operator, platform: PlatformDep) -> RunOut:
    return _run(runs.get_run(platform, run_id))


def _run(view: runs.RunView) -> RunOut:
    return RunOut(
        id=view.id,
        reference=view.reference,
        run_date=view.run_date,
        cutoff=view.cutoff,
        execution_date=view.execution_date,
        collection_date=view.collection_date,
        status=view.status,
        opened_at=view.opened_at,
        closed_at=view.closed_at,
        invoices=view.invoices,
        lines=view.lines,
        transfers=view.transfers,
        transfer_total=view.transfer_total,
        debits=view.debits,
        debit_total=view.debit_total,
        held=[
            HeldOut(
                am_number=h.am_number,
                reason=h.reason,
                until=h.until,
                invoices=h.invoices,
                amount=h.amount,
            )
            for h in view.held
        ],
        files=dict(view.files),
        by_insurer=[
            InsurerTotal(amc_number=amc, claims=n, amount=amount)
            for amc, n, amount in view.by_insurer
        ],
    )
