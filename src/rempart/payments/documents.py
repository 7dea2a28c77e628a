"""The documents a payment run writes, as plain values: the remittance advice of each
professional, the settlement statement of each insurer, the run's summary.

Pure. The same functions shape the files a run writes and the answers of the API, so what a
professional's software reads from either is the same document. Money is a decimal string in
euros ("9.00"), as everywhere in the API; dates and times are ISO 8601.

Nothing personal about patients: a remittance names invoices by the professional's own invoice
number and our ids; a statement names the beneficiary by the keyed pseudonym the insurer already
sees in its ledger events (docs/ledger.md), never by a name or a member number.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from rempart.registry.plan_format import format_money

REMITTANCE = "rempart.remittance"
STATEMENT = "rempart.settlement-statement"
SUMMARY = "rempart.payment-run"
VERSION = 1
CURRENCY = "EUR"


@dataclass(frozen=True)
class RunInfo:
    id: uuid.UUID
    number: int
    reference: str  # RMP000012
    run_date: date
    cutoff: datetime
    execution_date: date
    collection_date: date

    def doc(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "reference": self.reference,
            "date": self.run_date.isoformat(),
            "cutoff": _instant(self.cutoff),
            "execution_date": self.execution_date.isoformat(),
        }


class LineRow(NamedTuple):
    """A line as read for a document; text where the document has text (a run reads a million:
    tuples, not objects)."""

    position: int
    act_code: str
    domain: str
    care_date: str  # ISO date
    quantity: int
    billed: int
    amc_amount: int
    accepted: bool
    reject_codes: str  # ";"-separated, as stored


class InvoiceRow(NamedTuple):
    invoice_id: str
    invoice_number: str
    status: str  # accepted | partial | rejected, as adjudicated
    submitted_at: str  # ISO instant, to the second
    amount: int
    lines: Sequence[LineRow]


@dataclass(frozen=True)
class RemittanceInfo:
    id: uuid.UUID
    am_number: str
    name: str
    end_to_end_id: str | None
    amount: int
    iban_hint: str
    bic: str


def remittance(
    run: RunInfo, payee: RemittanceInfo, invoices: Sequence[InvoiceRow]
) -> dict[str, Any]:
    """A professional's remittance advice: the transfer and, per invoice, each line paid or
    rejected with its codes. Its invoices' amounts add up to the transfer, to the cent."""
    total = sum(invoice.amount for invoice in invoices)
    if total != payee.amount:
        raise ValueError("a remittance's invoices must add up to its transfer")
    transfer = None
    if payee.end_to_end_id is not None:
        transfer = {
            "end_to_end_id": payee.end_to_end_id,
            "amount": format_money(payee.amount),
            "currency": CURRENCY,
            "execution_date": run.execution_date.isoformat(),
            "iban_hint": payee.iban_hint,
            "bic": payee.bic,
        }
    shaped = [_invoice(invoice) for invoice in invoices]
    lines = sum(len(invoice.lines) for invoice in invoices)
    rejected = sum(1 for invoice in invoices for line in invoice.lines if not line.accepted)
    return {
        "type": REMITTANCE,
        "version": VERSION,
        "id": str(payee.id),
        "run": run.doc(),
        "payee": {"am_number": payee.am_number, "name": payee.name},
        "transfer": transfer,
        "totals": {
            "invoices": len(invoices),
            "lines": lines,
            "paid_lines": lines - rejected,
            "rejected_lines": rejected,
            "amount": format_money(total),
        },
        "invoices": shaped,
    }


def line_status(accepted: bool, codes: Sequence[str]) -> str:
    """paid (in full), partial (paid, less than asked: a ceiling), rejected (nothing)."""
    if not accepted:
        return "rejected"
    return "partial" if codes else "paid"


def _invoice(invoice: InvoiceRow) -> dict[str, Any]:
    lines = []
    for line in invoice.lines:
        codes = [c for c in line.reject_codes.split(";") if c] if line.reject_codes else []
        lines.append(
            {
                "position": line.position,
                "act_code": line.act_code,
                "domain": line.domain,
                "care_date": line.care_date,
                "quantity": line.quantity,
                "billed": format_money(line.billed),
                "paid": format_money(line.amc_amount),
                "status": line_status(line.accepted, codes),
                "reject_codes": codes,
            }
        )
    return {
        "invoice_id": invoice.invoice_id,
        "invoice_number": invoice.invoice_number,
        "submitted_at": invoice.submitted_at,
        "status": invoice.status,
        "paid": format_money(invoice.amount),
        "lines": lines,
    }


class ClaimRow(NamedTuple):
    invoice_id: str
    am_number: str  # the professional who billed it
    invoice_number: str
    submitted_at: str  # ISO instant, to the second
    beneficiary: str | None  # the ledger's keyed pseudonym
    lines: int
    amount: int


@dataclass(frozen=True)
class SettlementInfo:
    id: uuid.UUID
    amc_number: str
    name: str
    amount: int
    end_to_end_id: str | None
    mandate_id: str | None


def statement(run: RunInfo, insurer: SettlementInfo, claims: Sequence[ClaimRow]) -> dict[str, Any]:
    """An insurer's settlement statement: what was advanced for its members, claim by claim,
    with totals per professional; and how it is recovered (direct debit or invoice)."""
    total = sum(claim.amount for claim in claims)
    if total != insurer.amount:
        raise ValueError("a statement's claims must add up to its settlement")
    per_professional: dict[str, list[int]] = {}
    for claim in claims:
        counts = per_professional.setdefault(claim.am_number, [0, 0, 0])
        counts[0] += 1
        counts[1] += claim.lines
        counts[2] += claim.amount
    if insurer.end_to_end_id is not None:
        recovery: dict[str, Any] = {
            "method": "direct_debit",
            "end_to_end_id": insurer.end_to_end_id,
            "mandate_id": insurer.mandate_id,
            "collection_date": run.collection_date.isoformat(),
        }
    else:
        recovery = {"method": "invoice"}
    return {
        "type": STATEMENT,
        "version": VERSION,
        "id": str(insurer.id),
        "run": run.doc(),
        "insurer": {"amc_number": insurer.amc_number, "name": insurer.name},
        "recovery": recovery | {"amount": format_money(total), "currency": CURRENCY},
        "totals": {
            "claims": len(claims),
            "lines": sum(claim.lines for claim in claims),
            "professionals": len(per_professional),
            "amount": format_money(total),
        },
        "by_professional": [
            {"am_number": am, "claims": n, "lines": lines, "amount": format_money(amount)}
            for am, (n, lines, amount) in sorted(per_professional.items())
        ],
        "claims": [
            {
                "invoice_id": claim.invoice_id,
                "professional": claim.am_number,
                "invoice_number": claim.invoice_number,
                "submitted_at": claim.submitted_at,
                "beneficiary": claim.beneficiary,
                "lines": claim.lines,
                "amount": format_money(claim.amount),
            }
            for claim in claims
        ],
    }


@dataclass(frozen=True)
class Held:
    """A professional the run did not pay, why, until when, and what waits."""

    am_number: str
    reason: str
    until: datetime | None
    invoices: int
    amount: int

    def doc(self) -> dict[str, Any]:
        return {
            "am_number": self.am_number,
            "reason": self.reason,
            "until": _instant(self.until) if self.until else None,
            "invoices": self.invoices,
            "amount": format_money(self.amount),
        }


def summary(
    run: RunInfo,
    remittances: Iterable[tuple[RemittanceInfo, int, int]],
    settlements: Iterable[tuple[SettlementInfo, int, int]],
    held: Sequence[Held],
) -> dict[str, Any]:
    """The run's summary: counts, and totals per insurer and per professional (each given with
    its invoice and line counts)."""
    payees = list(remittances)
    insurers = list(settlements)
    transfers = [p for p, _, _ in payees if p.end_to_end_id]
    debits = [s for s, _, _ in insurers if s.end_to_end_id]
    return {
        "type": SUMMARY,
        "version": VERSION,
        "run": run.doc() | {"collection_date": run.collection_date.isoformat()},
        "totals": {
            "invoices": sum(n for _, n, _ in payees),
            "lines": sum(lines for _, _, lines in payees),
            "transfers": len(transfers),
            "transfer_total": format_money(sum(p.amount for p in transfers)),
            "debits": len(debits),
            "debit_total": format_money(sum(s.amount for s in debits)),
            "to_invoice_total": format_money(
                sum(s.amount for s, _, _ in insurers if s.end_to_end_id is None)
            ),
            "held": len(held),
        },
        "by_insurer": [
            {
                "amc_number": s.amc_number,
                "claims": n,
                "lines": lines,
                "amount": format_money(s.amount),
                "recovery": "direct_debit" if s.end_to_end_id else "invoice",
                "end_to_end_id": s.end_to_end_id,
            }
            for s, n, lines in insurers
        ],
        "by_professional": [
            {
                "am_number": p.am_number,
                "invoices": n,
                "lines": lines,
                "amount": format_money(p.amount),
                "end_to_end_id": p.end_to_end_id,
            }
            for p, n, lines in payees
        ],
        "held": [h.doc() for h in held],
    }


def encode(document: dict[str, Any]) -> bytes:
    """A document's bytes: UTF-8 JSON, keys in the order given, compact, one trailing newline.
    One document has one encoding: a file rewritten after a crash is identical."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
