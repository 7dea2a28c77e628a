"""The documents a run writes: their totals tie to the cent, their encoding is unique."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import pytest

from rempart.payments import documents
from rempart.payments.documents import ClaimRow, InvoiceRow, LineRow

RUN = documents.RunInfo(
    uuid.UUID(int=1),
    12,
    "RMP000012",
    date(2026, 3, 10),
    datetime(2026, 3, 10, 9, tzinfo=UTC),
    date(2026, 3, 10),
    date(2026, 3, 11),
)
AT = "2026-03-09T15:00:00+00:00"


def _line(position: int, paid: int, accepted: bool = True, codes: str = "") -> LineRow:
    return LineRow(position, "C", "MED", "2026-03-09", 1, 3000, paid, accepted, codes)


def _payee(amount: int) -> documents.RemittanceInfo:
    ref = "RMP000012-T-751000001" if amount else None
    return documents.RemittanceInfo(
        uuid.UUID(int=2), "751000001", "Dr Eloise", ref, amount, "FR76…1234", "BNPAFRPPXXX"
    )


def test_a_remittance_lists_each_line_paid_partial_or_rejected_with_its_codes() -> None:
    invoice = InvoiceRow(
        str(uuid.UUID(int=3)),
        "F-1",
        "partial",
        AT,
        1400,
        [_line(0, 900), _line(1, 500, codes="CEILING_REACHED"), _line(2, 0, False, "NOT_COVERED")],
    )
    doc = documents.remittance(RUN, _payee(1400), [invoice])
    assert doc["transfer"]["end_to_end_id"] == "RMP000012-T-751000001"
    assert doc["transfer"]["amount"] == "14.00"
    assert doc["totals"] == {
        "invoices": 1,
        "lines": 3,
        "paid_lines": 2,
        "rejected_lines": 1,
        "amount": "14.00",
    }
    lines = doc["invoices"][0]["lines"]
    assert [line["status"] for line in lines] == ["paid", "partial", "rejected"]
    assert lines[2]["reject_codes"] == ["NOT_COVERED"]
    assert lines[1]["paid"] == "5.00"


def test_a_remittance_whose_invoices_do_not_add_up_is_refused() -> None:
    invoice = InvoiceRow(str(uuid.UUID(int=3)), "F-1", "accepted", AT, 900, [_line(0, 900)])
    with pytest.raises(ValueError, match="add up"):
        documents.remittance(RUN, _payee(901), [invoice])


def test_a_remittance_with_nothing_due_has_no_transfer() -> None:
    invoice = InvoiceRow(str(uuid.UUID(int=3)), "F-1", "rejected", AT, 0, [_line(0, 0, False, "X")])
    assert documents.remittance(RUN, _payee(0), [invoice])["transfer"] is None


def test_a_statement_totals_each_professional_and_names_beneficiaries_by_pseudonym() -> None:
    claims = [
        ClaimRow(str(uuid.UUID(int=n)), f"75100000{n % 2}", f"F-{n}", AT, "ab" * 16, 2, 100 * n)
        for n in range(1, 5)
    ]
    insurer = documents.SettlementInfo(uuid.UUID(int=9), "99000001", "Mutuelle", 1000, None, None)
    doc = documents.statement(RUN, insurer, claims)
    assert doc["recovery"] == {"method": "invoice", "amount": "10.00", "currency": "EUR"}
    assert doc["by_professional"] == [
        {"am_number": "751000000", "claims": 2, "lines": 4, "amount": "6.00"},
        {"am_number": "751000001", "claims": 2, "lines": 4, "amount": "4.00"},
    ]
    assert {c["beneficiary"] for c in doc["claims"]} == {"ab" * 16}
    with pytest.raises(ValueError, match="add up"):
        documents.statement(RUN, insurer, claims[:-1])


def test_one_document_has_one_encoding() -> None:
    invoice = InvoiceRow(str(uuid.UUID(int=3)), "Fé-1", "accepted", AT, 900, [_line(0, 900)])
    doc = documents.remittance(RUN, _payee(900), [invoice])
    encoded = documents.encode(doc)
    assert encoded == documents.encode(json.loads(encoded))
    assert encoded.endswith(b"}\n")
    assert "Fé-1".encode() in encoded
