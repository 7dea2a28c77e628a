"""Payment runs end to end: what is paid, to whom, in which files, and who may read it back.

The proofs of issue 5: the SEPA files validate against the pain.001.001.09 and pain.008.001.08
schemas; the transfers add up to the accepted lines per professional and the debits per insurer,
to the cent; a second run pays nothing new; a cancelled invoice is never paid.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.paymentreconciliation import PaymentReconciliation
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from rempart.app import create_app
from rempart.claims.models import Invoice, InvoiceLine
from rempart.dates import paris_day
from rempart.errors import Conflict
from rempart.identifiers import make_french_iban
from rempart.integrity.verify import verify_integrity
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.models import LedgerEntry
from rempart.payments import runs, sepa
from rempart.payments.models import PaymentItem, PaymentRun
from rempart.platform import Platform
from tests.support import (
    AMC,
    BILLERS,
    CLAIMANTS,
    MANDATE_IBAN,
    ON_BASE,
    ON_CONFORT,
    OTHER_AMC,
    OTHER_CLAIMANTS,
    add_account,
    add_mandate,
    add_payments_world,
    bill,
    cancel_bill,
    pay_line,
    pdf_text,
    professional_ids,
    sepa_amounts,
    sign_in,
)

RUN1 = "RMP000001"
OTHER_IBAN = make_french_iban("30003", "00002", "99999999999")


@pytest.fixture
def world(platform: Platform) -> Platform:
    """Two insurers (only AMC gave a mandate), invoices of every kind from five professionals."""
    add_payments_world(platform)
    add_mandate(platform, AMC)
    gp, pharmacist = "gp", "pharmacist"
    bill(platform, gp, ON_BASE, [pay_line("MED", 3000, 3000, 70)], "G-1")  # 9.00
    bill(platform, gp, ON_CONFORT, [pay_line("MED", 7000, 3150, 70)], "G-2")  # 40.95
    drugs = [pay_line("PHAR", 1000, 1000, 30), pay_line("PHAR", 500, 500, 15, act="PH2")]
    bill(platform, pharmacist, ON_BASE, drugs, "P-1")  # 7.00, the 15 % drug not covered
    bill(platform, pharmacist, CLAIMANTS[2], [pay_line("PHAR", 200, 200, 0, act="PF")], "P-2")
    bill(platform, "dentist", ON_BASE, [pay_line("DESO", 2930, 2930, 60)], "D-1")  # 11.72
    bill(platform, gp, OTHER_CLAIMANTS[0], [pay_line("MED", 3000, 3000, 70)], "G-3", OTHER_AMC)
    other = [pay_line("PHAR", 1000, 1000, 30)]
    bill(platform, "pharmacist2", OTHER_CLAIMANTS[1], other, "Q-1", OTHER_AMC)  # 7.00
    cancelled = bill(platform, pharmacist, ON_BASE, [pay_line("PHAR", 900, 900, 30, "P9")], "P-3")
    cancel_bill(platform, pharmacist, cancelled.id)
    return platform


def pay(platform: Platform, out: Path) -> runs.RunOutcome:
    return runs.run_payments(platform, None, out, "test:operator")


def due(platform: Platform, by: str) -> dict[str, int]:
    """What the database says is due, per professional (``am``) or per insurer (``amc``):
    the accepted lines of invoices that are not cancelled."""
    ids = {v: k for k, v in professional_ids(platform).items()}
    with platform.sessions() as session:
        rows = session.execute(
            select(Invoice.professional_id, Invoice.amc_number, func.sum(InvoiceLine.amc_amount))
            .join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
            .where(Invoice.status != "cancelled", InvoiceLine.accepted.is_(True))
            .group_by(Invoice.professional_id, Invoice.amc_number)
        ).all()
    found: dict[str, int] = {}
    for pid, amc, cents in rows:
        key = ids[pid] if by == "am" else str(amc)
        found[key] = found.get(key, 0) + cents
    return {k: v for k, v in found.items() if v}


def test_transfers_and_debits_add_up_to_the_accepted_lines_to_the_cent(
    world: Platform, tmp_path: Path
) -> None:
    outcome = pay(world, tmp_path)
    run = outcome.run
    assert run is not None
    assert run.reference == RUN1
    assert run.status == "closed"
    folder = tmp_path / RUN1
    transfers = sepa_amounts(folder / runs.TRANSFERS_FILE)
    assert transfers == {f"{RUN1}-T-{am}": cents for am, cents in due(world, "am").items()}
    assert transfers[f"{RUN1}-T-{BILLERS['gp']}"] == 900 + 4095 + 900
    assert transfers[f"{RUN1}-T-{BILLERS['pharmacist']}"] == 700  # not the cancelled 6.30
    owed = due(world, "amc")
    debits = sepa_amounts(folder / runs.DEBITS_FILE)
    assert debits == {f"{RUN1}-D-{AMC}": owed[AMC]}  # OTHER_AMC gave no mandate: invoiced
    assert sum(transfers.values()) == sum(owed.values()) == run.transfer_total
    assert run.by_insurer == ((AMC, 4, owed[AMC]), (OTHER_AMC, 2, owed[OTHER_AMC]))
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["totals"]["to_invoice_total"] == f"{owed[OTHER_AMC] / 100:.2f}"
    assert summary["totals"]["transfers"] == 4
    assert summary["totals"]["debits"] == 1


def test_both_files_validate_against_the_iso_20022_schemas(world: Platform, tmp_path: Path) -> None:
    pay(world, tmp_path)
    for name, schema in ((runs.TRANSFERS_FILE, sepa.PAIN_001), (runs.DEBITS_FILE, sepa.PAIN_008)):
        data = (tmp_path / RUN1 / name).read_text()
        assert f"urn:iso:std:iso:20022:tech:xsd:{schema}" in data
        assert sepa.schema(schema).is_valid(data), name
    debit = (tmp_path / RUN1 / runs.DEBITS_FILE).read_text()
    assert MANDATE_IBAN in debit
    assert "<MndtId>MDT-99000001</MndtId>" in debit
    assert f"<Id>{world.settings.sepa_creditor_id}</Id>" in debit


def test_a_second_run_on_the_same_day_pays_nothing_new(world: Platform, tmp_path: Path) -> None:
    first = pay(world, tmp_path / "a")
    again = pay(world, tmp_path / "b")
    assert first.run is not None
    assert again.run is None
    late = bill(world, "gp", ON_BASE, [pay_line("MED", 2500, 2500, 70, act="G2")], "G-9")
    third = pay(world, tmp_path / "c")
    assert third.run is not None
    assert third.run.reference == "RMP000002"
    assert third.run.invoices == 1
    assert third.run.transfer_total == late.total_amc
    with world.sessions() as session:
        items = session.execute(
            select(PaymentItem.invoice_id, func.count()).group_by(PaymentItem.invoice_id)
        ).all()
        taken = session.scalar(
            select(func.count()).select_from(Invoice).where(Invoice.status != "cancelled")
        )
    assert all(n == 1 for _, n in items)
    assert len(items) == taken


def test_a_cancelled_invoice_is_never_paid_and_a_paid_one_cannot_be_cancelled(
    world: Platform, tmp_path: Path
) -> None:
    with world.sessions() as session:
        cancelled = session.scalar(select(Invoice.id).where(Invoice.status == "cancelled"))
        assert cancelled is not None
    pay(world, tmp_path)
    with world.sessions() as session:
        assert (
            session.scalar(select(PaymentItem.id).where(PaymentItem.invoice_id == cancelled))
            is None
        )
        paid = session.scalar(select(Invoice.id).where(Invoice.invoice_number == "G-1"))
        assert paid is not None
        assert session.get(Invoice, paid).paid_at is not None  # type: ignore[union-attr]
    assert (
        cancelled.hex
        not in (tmp_path / RUN1 / "remittances" / f"{BILLERS['pharmacist']}.json").read_text()
    )
    with pytest.raises(Conflict, match="paid"):
        cancel_bill(world, "gp", paid)


def test_the_remittance_lists_every_invoice_and_line_paid_or_rejected(
    world: Platform, tmp_path: Path
) -> None:
    pay(world, tmp_path)
    doc = json.loads(
        (tmp_path / RUN1 / "remittances" / f"{BILLERS['pharmacist']}.json").read_text()
    )
    assert doc["transfer"]["end_to_end_id"] == f"{RUN1}-T-{BILLERS['pharmacist']}"
    assert doc["transfer"]["amount"] == "7.00" == doc["totals"]["amount"]
    invoices = {i["invoice_number"]: i for i in doc["invoices"]}
    assert set(invoices) == {"P-1", "P-2"}  # the rejected invoice is reported, the cancelled not
    assert [line["status"] for line in invoices["P-1"]["lines"]] == ["paid", "rejected"]
    assert invoices["P-1"]["lines"][1]["reject_codes"] == ["NOT_COVERED"]
    assert invoices["P-2"]["status"] == "rejected"
    assert invoices["P-2"]["paid"] == "0.00"
    assert doc["totals"]["rejected_lines"] == 2


def test_a_professional_with_nothing_due_gets_an_advice_but_no_transfer(
    world: Platform, tmp_path: Path
) -> None:
    bill(world, "audiologist", ON_BASE, [pay_line("AUDI", 9000, 4000, 60)], "A-1")  # not covered
    pay(world, tmp_path)
    doc = json.loads(
        (tmp_path / RUN1 / "remittances" / f"{BILLERS['audiologist']}.json").read_text()
    )
    assert doc["transfer"] is None
    assert doc["totals"]["amount"] == "0.00"
    assert doc["invoices"][0]["lines"][0]["reject_codes"] == ["DOMAIN_NOT_COVERED"]
    transfers = sepa_amounts(tmp_path / RUN1 / runs.TRANSFERS_FILE)
    assert not any(BILLERS["audiologist"] in ref for ref in transfers)


def test_statements_tie_back_to_each_claim_and_name_no_one(world: Platform, tmp_path: Path) -> None:
    pay(world, tmp_path)
    mine = json.loads((tmp_path / RUN1 / "statements" / f"{AMC}.json").read_text())
    theirs = json.loads((tmp_path / RUN1 / "statements" / f"{OTHER_AMC}.json").read_text())
    with world.sessions() as session:
        expected = {
            str(i): amc
            for i, amc in session.execute(
                select(Invoice.id, Invoice.amc_number).where(
                    Invoice.status.in_(("accepted", "partial"))
                )
            )
        }
    assert {c["invoice_id"] for c in mine["claims"]} == {i for i, a in expected.items() if a == AMC}
    assert {c["invoice_id"] for c in theirs["claims"]} == {
        i for i, a in expected.items() if a == OTHER_AMC
    }
    assert mine["recovery"]["method"] == "direct_debit"
    assert mine["recovery"]["end_to_end_id"] == f"{RUN1}-D-{AMC}"
    assert theirs["recovery"] == {"method": "invoice", "amount": "16.00", "currency": "EUR"}
    assert all(len(c["beneficiary"]) == 32 for c in mine["claims"])  # the ledger's pseudonym


def test_no_file_holds_a_patients_personal_data(world: Platform, tmp_path: Path) -> None:
    pay(world, tmp_path)
    text = "\n".join(p.read_text() for p in (tmp_path / RUN1).rglob("*") if p.is_file())
    for who in [*CLAIMANTS, *OTHER_CLAIMANTS]:
        for value in (who.nir, who.last_name, who.first_name, who.member_number, who.birth_date):
            assert value not in text


def test_a_run_takes_only_what_was_submitted_up_to_its_date(
    world: Platform, tmp_path: Path
) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    early = bill(
        world, "specialist", ON_BASE, [pay_line("MED", 3000, 3000, 70)], "S-1", now=yesterday
    )
    outcome = runs.run_payments(world, paris_day(yesterday), tmp_path, "test")
    assert outcome.run is not None
    assert outcome.run.invoices == 1
    assert outcome.run.transfer_total == early.total_amc
    assert pay(world, tmp_path).run is not None  # the rest, today


def test_an_invoice_moved_to_another_professional_in_the_database_is_refused_and_reported(
    world: Platform, tmp_path: Path
) -> None:
    gp = professional_ids(world)[BILLERS["gp"]]
    with world.engine.begin() as connection:  # the dentist's invoice, paid to the gp instead
        connection.execute(
            update(Invoice).where(Invoice.invoice_number == "D-1").values(professional_id=gp)
        )
    outcome = pay(world, tmp_path)
    assert outcome.run is not None
    assert len(outcome.problems) == 1
    assert "its MAC does not match" in outcome.problems[0]
    transfers = sepa_amounts(tmp_path / RUN1 / runs.TRANSFERS_FILE)
    assert transfers[f"{RUN1}-T-{BILLERS['gp']}"] == 900 + 4095 + 900
    assert not any(BILLERS["dentist"] in ref for ref in transfers)
    assert verify_integrity(world).problems  # the altered row, named


def test_an_invoice_whose_total_was_raised_in_the_database_is_refused(
    world: Platform, tmp_path: Path
) -> None:
    with world.engine.begin() as connection:
        connection.execute(
            update(Invoice).where(Invoice.invoice_number == "D-1").values(total_amc=99_999)
        )
    outcome = pay(world, tmp_path)
    assert [p.split(": ")[1] for p in outcome.problems] == ["its lines do not add up to its total"]
    transfers = sepa_amounts(tmp_path / RUN1 / runs.TRANSFERS_FILE)
    assert not any(BILLERS["dentist"] in ref for ref in transfers)


def test_every_row_a_run_writes_is_under_the_integrity_journal(
    world: Platform, tmp_path: Path
) -> None:
    pay(world, tmp_path)
    report = verify_integrity(world)
    assert report.intact, report.problems
    names = {t.name for t in report.tables}
    assert {"payment_runs", "payment_items", "remittances", "settlements"} <= names
    with world.sessions() as session:
        tags = [AccessEvent.decode(e.event).tag for e in session.scalars(select(LedgerEntry))]
    assert Tag.PAYMENT_RUN_OPENED in tags
    assert Tag.PAYMENT_RUN_CLOSED in tags


def test_a_frozen_professional_is_held_and_paid_once_released(
    world: Platform, tmp_path: Path
) -> None:
    from rempart.incidents.containment import freeze, unfreeze

    freeze(world, "professional", BILLERS["dentist"], "phished account", "test:security")
    held = pay(world, tmp_path / "a")
    assert [(h.am_number, h.reason, h.amount) for h in held.held] == [
        (BILLERS["dentist"], "the professional is frozen", 1172)
    ]
    unfreeze(world, "professional", BILLERS["dentist"], "test:security")
    released = pay(world, tmp_path / "b")
    assert released.run is not None
    assert released.run.transfer_total == 1172
    assert released.held == ()


def test_a_finished_runs_files_are_written_again_identical(world: Platform, tmp_path: Path) -> None:
    run = pay(world, tmp_path).run
    assert run is not None
    lost = tmp_path / RUN1 / "remittances" / f"{BILLERS['gp']}.json"
    before = lost.read_bytes()
    lost.unlink()
    (tmp_path / RUN1 / runs.TRANSFERS_FILE).write_bytes(b"damaged")
    runs.rewrite_files(world, 1, tmp_path)
    assert lost.read_bytes() == before
    assert sepa.schema(sepa.PAIN_001).is_valid((tmp_path / RUN1 / runs.TRANSFERS_FILE).read_text())
    elsewhere = runs.rewrite_files(world, 1, tmp_path / "copy")
    assert elsewhere.files == run.files


def test_a_mandate_altered_in_the_database_is_not_debited(world: Platform, tmp_path: Path) -> None:
    from rempart.payments.models import DebitMandate

    with world.engine.begin() as connection:
        connection.execute(update(DebitMandate).values(iban=OTHER_IBAN))
    outcome = pay(world, tmp_path)
    assert outcome.run is not None
    assert outcome.run.debits == 0
    assert any("debit_mandates" in p for p in outcome.problems)
    assert not (tmp_path / RUN1 / runs.DEBITS_FILE).exists()
    statement = json.loads((tmp_path / RUN1 / "statements" / f"{AMC}.json").read_text())
    assert statement["recovery"]["method"] == "invoice"


# --- reading back: professionals, insurers, operators -------------------------------------------

Api = tuple[TestClient, Platform, dict[str, dict[str, str]]]


@pytest.fixture
def api(world: Platform, tmp_path: Path) -> Iterator[Api]:
    pay(world, tmp_path)
    accounts = {
        "gp": ("professional", {"am_number": BILLERS["gp"]}),
        "pharmacist": ("professional", {"am_number": BILLERS["pharmacist"]}),
        "amc": ("amc", {"amc_number": AMC}),
        "other_amc": ("amc", {"amc_number": OTHER_AMC}),
        "operator": ("operator", {}),
    }
    with TestClient(create_app(world.settings, world)) as client:
        headers = {}
        for name, (role, binding) in accounts.items():
            email = f"{name}@example.org"
            secret = add_account(world, role, email, **binding)
            headers[name] = sign_in(client, world, email, secret)
        yield client, world, headers


def _remittances(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/payments", headers=headers)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["remittances"]
    return found


def test_a_professional_reads_its_remittances_as_the_run_wrote_them(
    api: Api, tmp_path: Path
) -> None:
    client, _, headers = api
    (mine,) = _remittances(client, headers["gp"])
    assert mine["run"] == RUN1
    assert mine["amount"] == "58.95"
    assert mine["end_to_end_id"] == f"{RUN1}-T-{BILLERS['gp']}"
    answer = client.get(f"/api/v1/payments/{mine['id']}", headers=headers["gp"])
    assert answer.status_code == 200
    assert (
        answer.content == (tmp_path / RUN1 / "remittances" / f"{BILLERS['gp']}.json").read_bytes()
    )
    pdf = client.get(f"/api/v1/payments/{mine['id']}/pdf", headers=headers["gp"])
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    path = tmp_path / "advice.pdf"
    path.write_bytes(pdf.content)
    text = pdf_text(path)
    assert f"{RUN1}-T-{BILLERS['gp']}" in text
    assert "58,95" in text
    assert "G-2" in text


def test_a_professional_never_sees_another_professionals_remittance(api: Api) -> None:
    client, _, headers = api
    (theirs,) = _remittances(client, headers["pharmacist"])
    for path in (f"/api/v1/payments/{theirs['id']}", f"/api/v1/payments/{theirs['id']}/pdf"):
        assert client.get(path, headers=headers["gp"]).status_code == 404
    fhir = client.get(f"/fhir/r4/PaymentReconciliation/{theirs['id']}", headers=headers["gp"])
    assert fhir.status_code == 404
    assert fhir.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/api/v1/payments/{uuid.uuid4()}", headers=headers["gp"]).status_code == 404


def test_remittances_are_served_as_fhir_payment_reconciliations(api: Api) -> None:
    client, _, headers = api
    (mine,) = _remittances(client, headers["gp"])
    answer = client.get(f"/fhir/r4/PaymentReconciliation/{mine['id']}", headers=headers["gp"])
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/fhir+json"
    resource = PaymentReconciliation.model_validate_json(answer.text)
    assert resource.paymentIdentifier is not None
    assert resource.paymentIdentifier.value == f"{RUN1}-T-{BILLERS['gp']}"
    assert str(resource.paymentAmount.value) == "58.95"
    assert resource.detail is not None
    paid = [d.amount.value for d in resource.detail if d.amount and d.amount.value is not None]
    assert sum(paid) == resource.paymentAmount.value
    search = client.get("/fhir/r4/PaymentReconciliation", headers=headers["gp"])
    bundle = Bundle.model_validate_json(search.text)
    assert bundle.total == 1
    assert bundle.entry
    assert bundle.entry[0].resource is not None
    assert bundle.entry[0].resource.id == mine["id"]
    refused = client.get("/fhir/r4/PaymentReconciliation", headers=headers["amc"])
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"
    malformed = client.get("/fhir/r4/PaymentReconciliation/not-an-id", headers=headers["gp"])
    assert malformed.status_code == 404


def test_an_insurer_reads_its_own_statements_only(api: Api, tmp_path: Path) -> None:
    client, _, headers = api
    mine = client.get("/api/v1/settlements", headers=headers["amc"]).json()["statements"]
    theirs = client.get("/api/v1/settlements", headers=headers["other_amc"]).json()["statements"]
    assert [s["method"] for s in mine] == ["direct_debit"]
    assert [s["method"] for s in theirs] == ["invoice"]
    one = client.get(f"/api/v1/settlements/{mine[0]['id']}", headers=headers["amc"])
    assert one.content == (tmp_path / RUN1 / "statements" / f"{AMC}.json").read_bytes()
    other = client.get(f"/api/v1/settlements/{theirs[0]['id']}", headers=headers["amc"])
    assert other.status_code == 404
    assert client.get("/api/v1/settlements", headers=headers["gp"]).status_code == 403
    assert client.get("/api/v1/payments", headers=headers["amc"]).status_code == 403


def test_operators_see_the_runs(api: Api) -> None:
    client, platform, headers = api
    answer = client.get("/api/v1/payment-runs", headers=headers["operator"])
    (run,) = answer.json()["runs"]
    assert run["reference"] == RUN1
    assert run["status"] == "closed"
    one = client.get(f"/api/v1/payment-runs/{run['id']}", headers=headers["operator"]).json()
    assert {i["amc_number"] for i in one["by_insurer"]} == {AMC, OTHER_AMC}
    assert run == one  # the list gives each run whole, its totals per insurer too
    assert set(one["files"]) == {runs.TRANSFERS_FILE, runs.DEBITS_FILE, runs.MANIFEST_FILE}
    assert client.get("/api/v1/payment-runs", headers=headers["gp"]).status_code == 403
    with platform.sessions() as session:
        assert session.scalar(select(PaymentRun.files)) is not None


# --- the command line ---------------------------------------------------------------------------


def test_the_command_runs_resumes_and_renders_a_remittance(
    world: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rempart.cli import app
    from rempart.settings import get_settings

    monkeypatch.setenv("REMPART_HOME", str(world.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", world.settings.resolved_database_url)
    monkeypatch.setenv("REMPART_ENV", "test")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["payments", "run", "--out", str(tmp_path), "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["run"]["reference"] == RUN1
        assert report["run"]["status"] == "closed"
        assert report["run"]["transfers"] == 4
        again = runner.invoke(app, ["payments", "run", "--out", str(tmp_path)])
        assert again.exit_code == 0
        assert "nothing new to pay" in again.output
        pdf = tmp_path / "gp.pdf"
        shown = runner.invoke(
            app,
            [
                "payments",
                "remittance",
                "--run",
                "1",
                "--am-number",
                BILLERS["gp"],
                "--pdf",
                str(pdf),
            ],
        )
        assert shown.exit_code == 0, shown.output
        assert f"{RUN1}-T-{BILLERS['gp']}" in pdf_text(pdf)
        mandate = [
            *("payments", "mandate", "--amc-number", OTHER_AMC, "--mandate-id", "MDT-2"),
            *("--signed-on", "2025-03-01", "--iban", MANDATE_IBAN, "--bic", "PSSTFRPPXXX"),
        ]
        assert runner.invoke(app, mandate).exit_code == 0
        letters = runner.invoke(app, ["payments", "letters"])
        assert letters.exit_code == 0
        assert "no letter waiting" in letters.output
        rewritten = runner.invoke(app, ["payments", "files", "--run", "1", "--out", str(tmp_path)])
        assert rewritten.exit_code == 0, rewritten.output
        listed = runner.invoke(app, ["payments", "runs", "--json"])
        assert json.loads(listed.output)[0]["reference"] == RUN1
        future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
        refused = runner.invoke(app, ["payments", "run", "--date", future])
        assert refused.exit_code == 1
        assert "today or before" in refused.output
    finally:
        get_settings.cache_clear()
