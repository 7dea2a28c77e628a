"""The calculation (CLC), prior agreement (PEC) and invoice (DRE) endpoints."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from rempart.claims import batch, invoices, prior_agreements, services
from rempart.claims.engine import Line, LineResult
from rempart.claims.schemas import (
    IDEMPOTENCY_KEY,
    BatchProblem,
    BatchReport,
    BatchResult,
    CalculationRequest,
    CalculationResponse,
    InvoiceBatchRequest,
    InvoiceRequest,
    InvoiceResponse,
    LineOut,
    PriorAgreementPage,
    PriorAgreementRequest,
    PriorAgreementResponse,
)
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
    return CalculationResponse(lines=_lines(result.lines), total_amc=result.total_amc)


@router.post(
    "/prior-agreements",
    status_code=201,
    summary="Roles: professional. Ask for a prior agreement (PEC) on a quote: 201 with its "
    "reference when a line is agreed, 200 without one when none is.",
    responses={
        200: {"description": "Nothing agreed: no reference, nothing stored"},
        **dict.fromkeys((401, 403, 422, 429, 503), PROBLEM),
    },
)
def request_prior_agreement(
    body: PriorAgreementRequest,
    caller: Professional,
    platform: PlatformDep,
    client: ClientDep,
    request: Request,
    response: Response,
) -> PriorAgreementResponse:
    view = prior_agreements.request_prior_agreement(
        platform, request.app.state.quotas, caller, body.card(), body.engine_lines(), client
    )
    if view.reference is None:
        response.status_code = 200
    return _agreement(view)


@router.get(
    "/prior-agreements",
    summary="Roles: professional. Your prior agreements, newest first, a page at a time.",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM},
)
def list_prior_agreements(
    caller: Professional,
    platform: PlatformDep,
    client: ClientDep,
    limit: Annotated[int, Query(ge=1, le=prior_agreements.MAX_PAGE)] = 20,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> PriorAgreementPage:
    page = prior_agreements.list_prior_agreements(platform, caller, client, limit, before)
    return PriorAgreementPage(
        agreements=[_agreement(view) for view in page.agreements], next=page.next
    )


@router.get(
    "/prior-agreements/{reference}",
    summary="Roles: professional. One of your prior agreements, as it stands.",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
)
def get_prior_agreement(
    reference: str, caller: Professional, platform: PlatformDep, client: ClientDep
) -> PriorAgreementResponse:
    return _agreement(prior_agreements.get_prior_agreement(platform, caller, reference, client))


@router.post(
    "/prior-agreements/{reference}/cancel",
    summary="Roles: professional. Cancel one of your prior agreements; its renewal "
    "reservations are released.",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM},
)
def cancel_prior_agreement(
    reference: str, caller: Professional, platform: PlatformDep, client: ClientDep
) -> PriorAgreementResponse:
    view = prior_agreements.cancel_prior_agreement(platform, caller, reference, client)
    return _agreement(view)


@router.post(
    "/invoices",
    status_code=201,
    summary="Roles: professional. Adjudicate and book an invoice (DRE); retries are safe "
    "under an Idempotency-Key.",
    responses={401: PROBLEM, 403: PROBLEM, 409: PROBLEM, 422: PROBLEM, 429: PROBLEM, 503: PROBLEM},
)
def submit_invoice(
    body: InvoiceRequest,
    caller: Professional,
    platform: PlatformDep,
    client: ClientDep,
    request: Request,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY)
    ] = None,
) -> InvoiceResponse:
    view = invoices.submit_invoice(
        platform,
        request.app.state.quotas,
        caller,
        body.submission(idempotency_key),
        client,
    )
    return _invoice(view)


@router.post(
    "/invoices/batch",
    summary=f"Roles: professional. Up to {invoices.MAX_BATCH} invoices in one call, each "
    "adjudicated and booked in order; the report counts them and answers each.",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM},
)
def submit_batch(
    body: InvoiceBatchRequest,
    caller: Professional,
    platform: PlatformDep,
    client: ClientDep,
    request: Request,
) -> BatchReport:
    submissions = [item.submission(item.idempotency_key) for item in body.invoices]
    outcomes = invoices.submit_batch(
        platform, request.app.state.quotas, caller, submissions, client
    )
    summary = batch.Summary()
    results = []
    for index, outcome in enumerate(outcomes):
        summary.add(outcome)
        if isinstance(outcome, batch.Refusal):
            error = outcome.error
            problem = BatchProblem(status=error.status, title=error.title, detail=error.detail)
            results.append(BatchResult(index=index, error=problem))
        else:
            results.append(BatchResult(index=index, invoice=_invoice(outcome)))
    return BatchReport(
        accepted=summary.accepted,
        partial=summary.partial,
        rejected=summary.rejected,
        replayed=summary.replayed,
        refused=summary.refused,
        total_amc=summary.total_amc,
        reject_codes=summary.reject_codes,
        results=results,
    )


@router.get(
    "/invoices/{invoice_id}",
    summary="Roles: professional. One of your invoices, as it stands.",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
)
def get_invoice(
    invoice_id: uuid.UUID,
    caller: Professional,
    platform: PlatformDep,
    client: ClientDep,
    request: Request,
) -> InvoiceResponse:
    view = invoices.get_invoice(platform, request.app.state.recorder, caller, invoice_id, client)
    return _invoice(view)


@router.post(
    "/invoices/{invoice_id}/cancel",
    summary="Roles: professional. Cancel one of your unpaid invoices; what it booked is given "
    "back.",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM},
)
def cancel_invoice(
    invoice_id: uuid.UUID, caller: Professional, platform: PlatformDep, client: ClientDep
) -> InvoiceResponse:
    return _invoice(invoices.cancel_invoice(platform, caller, invoice_id, client))


def _invoice(view: batch.InvoiceView) -> InvoiceResponse:
    return InvoiceResponse(
        id=view.id,
        status=view.status,
        lines=_lines(view.lines),
        total_amc=view.total_amc,
    )


def _agreement(view: prior_agreements.AgreementView) -> PriorAgreementResponse:
    return PriorAgreementResponse(
        reference=view.reference,
        status=view.status,
        valid_from=view.valid_from,
        valid_until=view.valid_until,
        lines=_lines(view.lines),
        total_amc=view.total_amc,
    )


def _lines(results: Sequence[LineResult]) -> list[LineOut]:
    return [
        LineOut(
            amc_amount=r.amc_amount,
            amo_amount=r.amo_amount,
            reject_codes=list(r.reject_codes),
            explanation=r.explanation,
        )
        for r in results
    ]
