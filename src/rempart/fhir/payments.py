"""Remittance advices as FHIR R4 PaymentReconciliation resources, for professionals.

Read-only: ``GET /fhir/r4/PaymentReconciliation`` (the caller's remittances, a searchset Bundle)
and ``GET /fhir/r4/PaymentReconciliation/{id}``. Each is the remittance of one payment run: the
transfer (its end-to-end reference is ``paymentIdentifier``) and one ``detail`` per invoice with
what it paid. A FHIR ``detail`` is per claim, not per line: the lines, paid or rejected with their
codes, are in the JSON remittance (``GET /api/v1/payments/{id}``), which ``detail.request``
names. Errors are OperationOutcomes (``outcome.FhirRoute``).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.paymentreconciliation import PaymentReconciliation

from rempart.errors import NotFound
from rempart.fhir import profile
from rempart.fhir.outcome import FHIR_JSON, FhirRoute, fhir_response
from rempart.identity.auth import Principal
from rempart.identity.deps import PlatformDep, allow
from rempart.payments import remittance

router = APIRouter(prefix="/fhir/r4", tags=["fhir"], route_class=FhirRoute)
Professional = Annotated[Principal, Depends(allow("professional"))]
KIND = "PaymentReconciliation"
REMITTANCE_SYSTEM = f"{profile.BASE}/NamingSystem/remittance"
END_TO_END_SYSTEM = f"{profile.BASE}/NamingSystem/end-to-end-id"
INVOICE_SYSTEM = f"{profile.BASE}/NamingSystem/invoice"
INVOICE_NUMBER_SYSTEM = f"{profile.BASE}/NamingSystem/invoice-number"
AM_SYSTEM = f"{profile.BASE}/NamingSystem/am-number"
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/payment-type"
OUTCOME = {"description": "OperationOutcome", "content": {FHIR_JSON: {}}}
ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys((401, 403, 404), OUTCOME)


class FhirResponse(Response):
    media_type = FHIR_JSON


@router.get(
    f"/{KIND}",
    summary="Roles: professional. Your remittances as PaymentReconciliation resources (a "
    "searchset Bundle, newest first).",
    response_class=FhirResponse,
    responses=ERRORS,
)
def search(caller: Professional, platform: PlatformDep) -> Response:
    found = remittance.list_remittances(platform, caller, limit=50)
    resources = [reconciliation(remittance.get_remittance(platform, caller, r.id)) for r in found]
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(resources),
            "entry": [
                {
                    "fullUrl": f"{platform.settings.public_url}/fhir/r4/{KIND}/{r.id}",
                    "resource": r.model_dump(mode="json", exclude_none=True),
                    "search": {"mode": "match"},
                }
                for r in resources
            ],
        }
    )
    return fhir_response(bundle)


@router.get(
    f"/{KIND}/{{remittance_id}}",
    summary="Roles: professional. One of your remittances as a PaymentReconciliation.",
    response_class=FhirResponse,
    responses=ERRORS,
)
def read(remittance_id: str, caller: Professional, platform: PlatformDep) -> Response:
    # A string, parsed here: a malformed id is "not found", like another's (no oracle).
    try:
        wanted = uuid.UUID(remittance_id)
    except ValueError:
        raise NotFound(f"no such {KIND}") from None
    try:
        doc = remittance.get_remittance(platform, caller, wanted)
    except NotFound:
        raise NotFound(f"no such {KIND}") from None
    return fhir_response(reconciliation(doc))


def reconciliation(doc: dict[str, Any]) -> PaymentReconciliation:
    """A remittance document (``payments.documents.remittance``) as a PaymentReconciliation."""
    run, transfer = doc["run"], doc["transfer"]
    resource: dict[str, Any] = {
        "resourceType": KIND,
        "id": doc["id"],
        "identifier": [{"system": REMITTANCE_SYSTEM, "value": doc["id"]}],
        "status": "active",
        "period": {"end": run["cutoff"]},
        "created": run["date"],
        "paymentIssuer": {"display": "Rempart"},
        "requestor": {
            "type": "Organization",
            "identifier": {"system": AM_SYSTEM, "value": doc["payee"]["am_number"]},
        },
        "outcome": "complete",
        "disposition": f"payment run {run['reference']}",
        "paymentDate": run["execution_date"],
        "paymentAmount": _money(doc["totals"]["amount"]),
        "detail": [_detail(invoice) for invoice in doc["invoices"]],
    }
    if transfer is not None:
        resource["paymentIdentifier"] = {
            "system": END_TO_END_SYSTEM,
            "value": transfer["end_to_end_id"],
        }
    return PaymentReconciliation.model_validate(resource)


def _detail(invoice: dict[str, Any]) -> dict[str, Any]:
    return {
        "extension": [
            {"url": profile.extension_url("invoice-status"), "valueCode": invoice["status"]}
        ],
        "identifier": {"system": INVOICE_SYSTEM, "value": invoice["invoice_id"]},
        "type": {"coding": [{"system": PAYMENT_TYPE, "code": "payment"}]},
        "request": {
            "type": "Claim",
            "identifier": {"system": INVOICE_NUMBER_SYSTEM, "value": invoice["invoice_number"]},
        },
        "date": invoice["submitted_at"][:10],
        "amount": _money(invoice["paid"]),
    }


def _money(euros: str) -> dict[str, Any]:
    return {"value": Decimal(euros), "currency": profile.CURRENCY}
