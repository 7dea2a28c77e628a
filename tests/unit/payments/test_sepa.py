"""SEPA files: valid against the schemas sepaxml ships, deterministic, refused when wrong."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import pytest

from rempart.identifiers import make_french_iban
from rempart.payments import sepa
from rempart.payments.rules import is_sepa_text

HEADER = sepa.Header("RMP000001-T", "RMP000001-T", datetime(2026, 3, 10, 9, tzinfo=UTC))
PAYER = sepa.Account(
    "Rempart OTP", make_french_iban("30003", "00001", "00012345678"), "SOGEFRPPXXX"
)
IBAN = make_french_iban("30004", "00001", "12345678901")


def _transfers(n: int) -> list[sepa.Transfer]:
    return [
        sepa.Transfer(
            f"RMP000001-T-75100000{i}",
            sepa.Account(f"Pharmacie de l'Église n°{i} & Cie", IBAN, "BNPAFRPPXXX"),
            1000 + i,
            f"RMP000001 remittance 75100000{i}: {i} invoices",
        )
        for i in range(n)
    ]


def test_a_transfers_file_validates_and_holds_what_was_meant() -> None:
    data = sepa.transfers_file(HEADER, PAYER, date(2026, 3, 10), _transfers(3))
    assert sepa.totals(data, sepa.PAIN_001) == sepa.Totals(3, 3003)
    assert not list(sepa.schema(sepa.PAIN_001).iter_errors(data.decode()))
    texts = [node.text for node in ET.fromstring(data).iter() if node.text]  # noqa: S314
    assert all(is_sepa_text(text) for text in texts)
    assert b"Pharmacie de l'Eglise n" in data


def test_the_same_transfers_give_the_same_bytes() -> None:
    first = sepa.transfers_file(HEADER, PAYER, date(2026, 3, 10), _transfers(2))
    again = sepa.transfers_file(HEADER, PAYER, date(2026, 3, 10), _transfers(2))
    assert first == again


def test_a_debits_file_validates() -> None:
    debit = sepa.Debit(
        "RMP000001-D-99000001",
        sepa.Account("Mutuelle Générale", IBAN, "BNPAFRPPXXX"),
        123456,
        "MDT-99000001",
        date(2025, 1, 2),
        "RMP000001 settlement",
    )
    data = sepa.debits_file(HEADER, PAYER, "FR42ZZZRMP001", date(2026, 3, 11), [debit])
    assert sepa.totals(data, sepa.PAIN_008) == sepa.Totals(1, 123456)
    assert not list(sepa.schema(sepa.PAIN_008).iter_errors(data.decode()))
    assert b"<SeqTp>RCUR</SeqTp>" in data


def test_a_file_that_does_not_validate_is_refused_without_quoting_values() -> None:
    wrong = sepa.Transfer("RMP1", sepa.Account("X", IBAN.lower(), "BNPAFRPPXXX"), 100, "x")
    with pytest.raises(sepa.SepaInvalid) as caught:
        sepa.transfers_file(HEADER, PAYER, date(2026, 3, 10), [wrong])
    assert IBAN.lower() not in caught.value.detail


def test_a_file_whose_totals_differ_from_what_was_meant_is_refused() -> None:
    data = sepa.transfers_file(HEADER, PAYER, date(2026, 3, 10), _transfers(2))
    with pytest.raises(sepa.SepaInvalid, match="expected 2 for 2000"):
        sepa.check(data, sepa.PAIN_001, 2, 2000)
