"""The payments pages without a browser (as with JavaScript off): a practice's remittances and
their PDF, its bank details (step-up, the letter's code, cancelling), an insurer's statements,
the operator's runs; and, from the attacker's side, other practices' and insurers' documents,
forms without their token, and what addresses hold."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select, update

from rempart.app import create_app
from rempart.db import transaction
from rempart.identifiers import make_french_iban
from rempart.identity import totp
from rempart.identity.models import AuthSession, User
from rempart.payments import bank_details, runs
from rempart.payments.models import BankChange, PaymentRun, Remittance, Settlement
from rempart.platform import Platform
from tests.support import (
    AMC,
    BILLERS,
    CLAIMANTS,
    ON_BASE,
    ON_CONFORT,
    OTHER_AMC,
    OTHER_CLAIMANTS,
    add_account,
    add_mandate,
    add_payments_world,
    bill,
    csrf_of,
    pay_line,
    pdf_text,
    portal_sign_in,
    set_rows,
)

GP, PHARMACIST = BILLERS["gp"], BILLERS["pharmacist"]
ACCOUNTS = {
    "gp": ("professional", "cabinet@medecin.example", {"am_number": GP}),
    "pharmacist": ("professional", "comptoir@pharmacie.example", {"am_number": PHARMACIST}),
    "amc": ("amc", "gestion@mutuelle.example", {"amc_number": AMC}),
    "other_amc": ("amc", "gestion@autre-mutuelle.example", {"amc_number": OTHER_AMC}),
    "operator": ("operator", "exploitation@rempart.example", {}),
    "operator2": ("operator", "astreinte@rempart.example", {}),
    "security": ("security", "rssi@rempart.example", {}),
}
NEW_IBAN = make_french_iban("20041", "01005", "05001234567")
NEW_BIC = "PSSTFRPPXXX"
GP_TOTAL = "58,95\u202f€"  # 9.00 + 40.95 + 9.00 (the other insurer's member)
RUN1 = "RMP000001"


@dataclass
class World:
    platform: Platform
    app: object
    secrets: dict[str, str]  # account name -> TOTP secret

    def signed_in(self, name: str) -> TestClient:
        client = TestClient(self.app)  # type: ignore[arg-type]
        _, email, _ = ACCOUNTS[name]
        portal_sign_in(client, self.platform, email, self.secrets[name])
        return client


@pytest.fixture
def world(platform: Platform, tmp_path: Path) -> Iterator[World]:
    """One closed run: the GP paid for three invoices (two insurers), the pharmacist for one
    with a rejected line; AMC collected by direct debit, OTHER_AMC invoiced."""
    add_payments_world(platform)
    add_mandate(platform, AMC)
    bill(platform, "gp", ON_BASE, [pay_line("MED", 3000, 3000, 70)], "G-1")  # 9.00
    bill(platform, "gp", ON_CONFORT, [pay_line("MED", 7000, 3150, 70)], "G-2")  # 40.95
    bill(platform, "gp", OTHER_CLAIMANTS[0], [pay_line("MED", 3000, 3000, 70)], "G-3", OTHER_AMC)
    drugs = [pay_line("PHAR", 1000, 1000, 30), pay_line("PHAR", 500, 500, 15, act="PH2")]
    bill(platform, "pharmacist", ON_BASE, drugs, "P-1")  # 7.00, the 15 % drug rejected
    outcome = runs.run_payments(platform, None, tmp_path / "runs", "test:operator")
    assert outcome.run is not None
    assert outcome.run.status == "closed"
    secrets = {
        name: add_account(platform, role, email, **binding)
        for name, (role, email, binding) in ACCOUNTS.items()
    }
    app = create_app(platform.settings, platform)
    with TestClient(app):  # runs the lifespan: recorder, quotas
        yield World(platform, app, secrets)


def remittance_of(platform: Platform, am_number: str) -> uuid.UUID:
    with platform.sessions() as session:
        found = session.scalar(select(Remittance.id).where(Remittance.am_number == am_number))
    assert found is not None
    return found


def statement_of(platform: Platform, amc: str) -> uuid.UUID:
    with platform.sessions() as session:
        found = session.scalar(select(Settlement.id).where(Settlement.amc_number == amc))
    assert found is not None
    return found


def post(client: TestClient, path: str, data: dict[str, str], page: str) -> Response:
    """POST a form the way a browser does: with the token of the page it came from."""
    token = csrf_of(client.get(page).text)
    return client.post(path, data={**data, "csrf": token}, follow_redirects=False)


def changes(platform: Platform) -> list[tuple[str, int]]:
    with platform.sessions() as session:
        return [
            (row.status, row.attempts)
            for row in session.scalars(select(BankChange).order_by(BankChange.requested_at))
        ]


def letter_code(platform: Platform) -> str:
    """What the mail room would print: the code is only in the letter."""
    (letter,) = [m for m in bank_details.pending_letters(platform) if m.kind == "code"]
    found = re.search(r"code ([A-Z0-9]{10})", letter.body)
    assert found
    return found.group(1)


def make_stale(platform: Platform) -> None:
    """Every session's second factor given 11 minutes ago: past the step-up's ten."""
    with transaction(platform.sessions) as session:
        stale = datetime.now(UTC) - timedelta(minutes=11)
        session.execute(update(AuthSession).values(created_at=stale))


def step_up(world: World, client: TestClient, name: str, page: str = "/pro/banque") -> None:
    set_rows(world.platform, User, totp_last_step=None)  # the sign-in spent this step's code
    code = totp.code_at(world.secrets[name], datetime.now(UTC))
    back = post(client, "/compte/confirmer", {"code": code, "retour": page}, page)
    assert back.headers["location"] == page


def run_count(platform: Platform) -> int:
    with platform.sessions() as session:
        return session.scalar(select(func.count()).select_from(PaymentRun)) or 0


def main(html: str) -> str:
    found = re.search(r"<main.*</main>", html, re.S)
    assert found
    return found.group(0)


# Remittances -------------------------------------------------------------------------------------


def test_a_professional_lists_its_remittances_reads_one_and_downloads_its_pdf(
    world: World, tmp_path: Path
) -> None:
    gp = world.signed_in("gp")
    listing = gp.get("/pro/paiements")
    assert listing.status_code == 200
    assert RUN1 in listing.text
    assert GP_TOTAL in listing.text
    assert f"{RUN1}-T-{GP}" in listing.text  # the reference the bank shows
    remittance_id = remittance_of(world.platform, GP)
    assert f'href="/pro/paiements/{remittance_id}"' in listing.text
    assert f'href="/pro/paiements/{remittance_id}/avis.pdf"' in listing.text

    detail = gp.get(f"/pro/paiements/{remittance_id}")
    assert detail.status_code == 200
    text = main(detail.text)
    for shown in ("G-1", "G-2", "G-3", "9,00\u202f€", "40,95\u202f€", GP_TOTAL, "FR76…"):
        assert shown in text, shown

    pdf = gp.get(f"/pro/paiements/{remittance_id}/avis.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="{RUN1}-{GP}.pdf"'
    assert pdf.headers["cache-control"] == "no-store"
    assert pdf.headers["x-content-type-options"] == "nosniff"
    assert pdf.content.startswith(b"%PDF-")
    path = tmp_path / "avis.pdf"
    path.write_bytes(pdf.content)
    printed = pdf_text(path)
    assert "58,95" in printed
    assert f"{RUN1}-T-{GP}" in printed


def test_a_rejected_line_is_shown_with_its_reason(world: World) -> None:
    pharmacist = world.signed_in("pharmacist")
    listing = pharmacist.get("/pro/paiements")
    assert "7,00\u202f€" in listing.text
    assert GP_TOTAL not in listing.text  # its own remittance only
    detail = pharmacist.get(f"/pro/paiements/{remittance_of(world.platform, PHARMACIST)}")
    assert "rejetée" in detail.text
    assert "NOT_COVERED" in detail.text


def test_another_practices_remittance_and_its_pdf_are_not_found(world: World) -> None:
    gp = world.signed_in("gp")
    theirs = remittance_of(world.platform, PHARMACIST)
    nowhere = uuid.uuid4()
    answers = [
        gp.get(f"/pro/paiements/{theirs}"),
        gp.get(f"/pro/paiements/{theirs}/avis.pdf"),
        gp.get(f"/pro/paiements/{nowhere}"),
        gp.get(f"/pro/paiements/{nowhere}/avis.pdf"),
    ]
    assert [a.status_code for a in answers] == [404] * 4
    # The same page whether it is another's or nobody's: no oracle of ids.
    assert len({main(a.text) for a in answers}) == 1
    assert "Introuvable" in answers[0].text
    assert "7,00" not in answers[0].text
    assert gp.get("/pro/paiements/pas-un-id").status_code == 404


# Statements --------------------------------------------------------------------------------------


def test_an_insurer_reads_its_statements_and_downloads_one(world: World) -> None:
    amc = world.signed_in("amc")
    listing = amc.get("/amc/releves")
    assert listing.status_code == 200
    assert RUN1 in listing.text
    assert "prélèvement SEPA" in listing.text
    assert f"{RUN1}-D-{AMC}" in listing.text
    ours = statement_of(world.platform, AMC)
    detail = amc.get(f"/amc/releves/{ours}")
    assert detail.status_code == 200
    for shown in ("G-1", "G-2", "P-1", GP, PHARMACIST, f"MDT-{AMC}", "56,95\u202f€"):
        assert shown in detail.text, shown
    assert "G-3" not in main(detail.text)  # the other insurer's member (no token in <main>)
    for who in (ON_BASE, ON_CONFORT):  # pseudonyms only
        assert who.member_number not in detail.text
        assert who.last_name not in detail.text

    download = amc.get(f"/amc/releves/{ours}/releve.json")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/json"
    assert download.headers["content-disposition"] == f'attachment; filename="{RUN1}-{AMC}.json"'
    assert download.headers["cache-control"] == "no-store"
    doc = json.loads(download.content)
    assert doc["type"] == "rempart.settlement-statement"
    assert doc["recovery"]["amount"] == "56.95"
    assert {c["invoice_number"] for c in doc["claims"]} == {"G-1", "G-2", "P-1"}

    other = world.signed_in("other_amc").get("/amc/releves")
    assert "facture" in other.text
    assert "9,00\u202f€" in other.text


def test_another_insurers_statement_is_not_found(world: World) -> None:
    other = world.signed_in("other_amc")
    theirs = statement_of(world.platform, AMC)
    answers = [
        other.get(f"/amc/releves/{theirs}"),
        other.get(f"/amc/releves/{theirs}/releve.json"),
        other.get(f"/amc/releves/{uuid.uuid4()}"),
    ]
    assert [a.status_code for a in answers] == [404] * 3
    assert len({main(a.text) for a in answers}) == 1
    assert "56,95" not in answers[0].text


# Payment runs ------------------------------------------------------------------------------------


def test_the_operator_reads_the_runs_and_one_run(world: World) -> None:
    ops = world.signed_in("operator")
    listing = ops.get("/ops/paiements")
    assert listing.status_code == 200
    text = main(listing.text)
    assert RUN1 in text
    assert "terminée" in text
    assert f"{AMC} : 56,95\u202f€" in text
    assert f"{OTHER_AMC} : 9,00\u202f€" in text
    with world.platform.sessions() as session:
        (run_id,) = session.scalars(select(Remittance.run_id).distinct()).all()
    detail = ops.get(f"/ops/paiements/{run_id}")
    assert detail.status_code == 200
    for shown in ("65,95\u202f€", "56,95\u202f€", runs.TRANSFERS_FILE, "manifest.json"):
        assert shown in detail.text, shown
    assert ops.get(f"/ops/paiements/{uuid.uuid4()}").status_code == 404


def test_the_operator_launches_a_run_under_step_up(world: World) -> None:
    ops = world.signed_in("operator")
    bill(world.platform, "gp", ON_BASE, [pay_line("MED", 3000, 3000, 70, act="CS")], "G-4")
    make_stale(world.platform)
    page = ops.get("/ops/paiements")
    assert "Confirmez d'abord votre identité" in page.text
    assert "Lancer la campagne maintenant" not in page.text
    refused = post(ops, "/ops/paiements", {}, "/ops/paiements")
    assert refused.status_code == 403
    assert "Confirmez d'abord votre identité" in refused.text
    step_up(world, ops, "operator", "/ops/paiements")
    assert ops.post("/ops/paiements", follow_redirects=False).status_code == 403  # no token
    assert run_count(world.platform) == 1  # nothing ran

    launched = post(ops, "/ops/paiements", {}, "/ops/paiements")
    assert launched.status_code == 303
    location = launched.headers["location"]
    assert re.fullmatch(r"/ops/paiements/[0-9a-f-]{36}\?ok=lancee", location)
    shown = ops.get(location)
    assert "Campagne de paiement RMP000002" in shown.text
    assert "Campagne terminée" in shown.text
    assert "1 pour 9,00\u202f€" in shown.text
    assert run_count(world.platform) == 2
    again = post(ops, "/ops/paiements", {}, "/ops/paiements")
    assert again.headers["location"] == "/ops/paiements?ok=rien"
    assert "Rien de nouveau à payer" in ops.get(again.headers["location"]).text
    assert run_count(world.platform) == 2


def test_a_launch_during_a_run_is_told_a_run_is_in_progress(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two operators (or two clicks) launch at once: the second is refused, in French, and the
    first run's files are whole and match what it recorded."""
    bill(world.platform, "gp", ON_BASE, [pay_line("MED", 3000, 3000, 70, act="CS")], "G-4")
    first, second = world.signed_in("operator"), world.signed_in("operator2")
    tokens = [csrf_of(client.get("/ops/paiements").text) for client in (first, second)]
    inside, go_on = threading.Event(), threading.Event()
    real = runs.write_files

    def write_files(platform: Platform, run_id: uuid.UUID, folder: Path) -> dict[str, str]:
        if not inside.is_set():  # the first run waits here, open, its invoices taken
            inside.set()
            assert go_on.wait(60)
        return real(platform, run_id, folder)

    monkeypatch.setattr(runs, "write_files", write_files)
    answers: list[Response] = []
    launch = {"csrf": tokens[0]}
    thread = threading.Thread(
        target=lambda: answers.append(first.post("/ops/paiements", data=launch))
    )
    thread.start()
    try:
        assert inside.wait(60)
        refused = second.post("/ops/paiements", data={"csrf": tokens[1]}, follow_redirects=False)
    finally:
        go_on.set()
        thread.join(60)
    assert refused.status_code == 409
    assert "Une campagne de paiement est déjà en cours" in refused.text
    assert 'role="alert"' in refused.text
    (launched,) = answers
    assert launched.status_code == 200
    assert "Campagne de paiement RMP000002" in launched.text
    assert "Campagne terminée" in launched.text
    with world.platform.sessions() as session:
        run = session.scalars(select(PaymentRun).where(PaymentRun.number == 2)).one()
    assert run.status == "closed"
    assert run_count(world.platform) == 2
    folder = world.platform.settings.resolved_payments_dir / "RMP000002"
    for name, digest in json.loads(run.files or "{}").items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_only_operators_see_the_runs_as_in_the_api(world: World) -> None:
    for name in ("security", "amc", "gp"):
        client = world.signed_in(name)
        assert client.get("/ops/paiements").status_code == 403, name
        launch = client.post("/ops/paiements", data={"csrf": csrf_of(client.get("/").text)})
        assert launch.status_code == 403, name
    assert run_count(world.platform) == 1
    assert world.signed_in("operator").get("/pro/paiements").status_code == 403
    assert world.signed_in("gp").get("/amc/releves").status_code == 403
    assert world.signed_in("amc").get("/pro/banque").status_code == 403


# Bank details ------------------------------------------------------------------------------------


def test_a_practice_changes_its_bank_details_with_the_letters_code(world: World) -> None:
    gp = world.signed_in("gp")
    page = gp.get("/pro/banque")
    assert page.status_code == 200
    assert "FR76…" in page.text
    assert "IBAN du nouveau compte" in page.text  # signed in just now: a recent second factor
    asked = post(gp, "/pro/banque", {"iban": NEW_IBAN, "bic": NEW_BIC}, "/pro/banque")
    assert asked.status_code == 303
    assert asked.headers["location"] == "/pro/banque?ok=demande"
    shown = gp.get(asked.headers["location"])
    assert "Demande enregistrée" in shown.text
    assert f"FR76…{NEW_IBAN[-4:]}" in shown.text
    assert NEW_IBAN not in shown.text  # the hint only, once recorded
    assert "en attente du code" in shown.text
    assert "suspendus" in shown.text
    assert "Code du courrier" in shown.text
    assert changes(world.platform) == [("pending", 0)]

    again = post(gp, "/pro/banque", {"iban": NEW_IBAN, "bic": NEW_BIC}, "/pro/banque")
    assert again.status_code == 409  # one change at a time
    assert changes(world.platform) == [("pending", 0)]

    wrong = post(gp, "/pro/banque/confirmer", {"code": "ABCDEFGHJK"}, "/pro/banque")
    assert wrong.status_code == 422
    assert "Il vous reste 4 essais" in wrong.text
    assert 'aria-invalid="true"' in wrong.text
    assert changes(world.platform) == [("pending", 1)]

    confirmed = post(
        gp, "/pro/banque/confirmer", {"code": letter_code(world.platform)}, "/pro/banque"
    )
    assert confirmed.headers["location"] == "/pro/banque?ok=confirmation"
    shown = gp.get(confirmed.headers["location"])
    assert "délai de sécurité" in shown.text
    assert changes(world.platform) == [("confirmed", 1)]
    assert "Code du courrier" not in shown.text
    assert "Annuler le changement" in shown.text  # until the end of the cooling-off


def test_a_practice_cancels_a_change_it_did_not_ask_for(world: World) -> None:
    gp = world.signed_in("gp")
    post(gp, "/pro/banque", {"iban": NEW_IBAN, "bic": NEW_BIC}, "/pro/banque")
    refused = post(gp, "/pro/banque/annuler", {"reason": ""}, "/pro/banque")
    assert refused.status_code == 422
    assert "Dites pourquoi" in refused.text
    assert changes(world.platform) == [("pending", 0)]
    cancelled = post(gp, "/pro/banque/annuler", {"reason": "pas demandé"}, "/pro/banque")
    assert cancelled.headers["location"] == "/pro/banque?ok=annulation"
    shown = gp.get(cancelled.headers["location"])
    assert "Changement annulé" in shown.text
    assert "Changement en cours" not in shown.text
    assert "IBAN du nouveau compte" in shown.text
    assert changes(world.platform) == [("cancelled", 0)]
    nothing = post(gp, "/pro/banque/annuler", {"reason": "encore"}, "/pro/banque")
    assert nothing.status_code == 404


def test_a_confirmed_change_is_cancelled_during_its_cooling_off(world: World) -> None:
    gp = world.signed_in("gp")
    post(gp, "/pro/banque", {"iban": NEW_IBAN, "bic": NEW_BIC}, "/pro/banque")
    post(gp, "/pro/banque/confirmer", {"code": letter_code(world.platform)}, "/pro/banque")
    cancelled = post(gp, "/pro/banque/annuler", {"reason": "pas moi"}, "/pro/banque")
    assert cancelled.headers["location"] == "/pro/banque?ok=annulation"
    assert changes(world.platform) == [("cancelled", 0)]


def test_a_change_needs_a_recent_second_factor(world: World) -> None:
    gp = world.signed_in("gp")
    make_stale(world.platform)
    page = gp.get("/pro/banque")
    assert "Confirmez d'abord votre identité" in page.text
    assert "IBAN du nouveau compte" not in page.text
    asked = post(gp, "/pro/banque", {"iban": NEW_IBAN, "bic": NEW_BIC}, "/pro/banque")
    assert asked.status_code == 403
    assert "Confirmez d'abord votre identité" in asked.text
    assert NEW_IBAN not in asked.text
    assert changes(world.platform) == []
    step_up(world, gp, "gp")
    asked = post(gp, "/pro/banque", {"iban": NEW_IBAN, "bic": NEW_BIC}, "/pro/banque")
    assert asked.headers["location"] == "/pro/banque?ok=demande"
    make_stale(world.platform)
    code = {"code": letter_code(world.platform)}
    late = post(gp, "/pro/banque/confirmer", code, "/pro/banque")
    assert late.status_code == 403
    assert changes(world.platform) == [("pending", 0)]  # not even counted
    late = post(gp, "/pro/banque/annuler", {"reason": "pas moi"}, "/pro/banque")
    assert late.status_code == 403
    assert changes(world.platform) == [("pending", 0)]


def test_five_wrong_codes_cancel_the_change(world: World) -> None:
    gp = world.signed_in("gp")
    post(gp, "/pro/banque", {"iban": NEW_IBAN, "bic": NEW_BIC}, "/pro/banque")
    for left in (4, 3, 2, 1):
        wrong = post(gp, "/pro/banque/confirmer", {"code": "ABCDEFGHJK"}, "/pro/banque")
        assert f"Il vous reste {left} essai" in wrong.text
    last = post(gp, "/pro/banque/confirmer", {"code": "ABCDEFGHJK"}, "/pro/banque")
    assert last.status_code == 422
    assert "le changement est annulé" in last.text
    assert changes(world.platform) == [("cancelled", 5)]
    assert "IBAN du nouveau compte" in last.text  # a new change may be asked


def test_an_invalid_iban_or_bic_is_shown_on_its_field(world: World) -> None:
    gp = world.signed_in("gp")
    broken = NEW_IBAN[:-2] + ("00" if NEW_IBAN[-2:] != "00" else "11")
    cases: list[tuple[dict[str, str], str]] = [
        ({"iban": broken, "bic": NEW_BIC}, "iban"),
        ({"iban": "DE89370400440532013000", "bic": "pas un bic"}, "bic"),
        ({"iban": make_french_iban("30004", "00001", "12345678901"), "bic": NEW_BIC}, "iban"),
    ]
    for data, field in cases:
        refused = post(gp, "/pro/banque", data, "/pro/banque")
        assert refused.status_code == 422, data
        assert f'id="{field}-erreur"' in refused.text, data
        assert f'href="#{field}"' in refused.text  # the error summary links to the field
        assert 'lang="en"' in refused.text  # the service's own words, marked English
    assert changes(world.platform) == []


def test_a_form_without_its_token_changes_nothing(world: World) -> None:
    gp = world.signed_in("gp")
    pharmacist = world.signed_in("pharmacist")
    foreign = csrf_of(pharmacist.get("/pro/banque").text)
    for token in (None, foreign):
        data = {"iban": NEW_IBAN, "bic": NEW_BIC} | ({"csrf": token} if token else {})
        refused = gp.post("/pro/banque", data=data, follow_redirects=False)
        assert refused.status_code == 403
        assert "Ce formulaire a expiré" in refused.text
    assert changes(world.platform) == []
    post(gp, "/pro/banque", {"iban": NEW_IBAN, "bic": NEW_BIC}, "/pro/banque")
    code = letter_code(world.platform)
    assert gp.post("/pro/banque/confirmer", data={"code": code}).status_code == 403
    assert gp.post("/pro/banque/annuler", data={"reason": "x", "csrf": foreign}).status_code == 403
    assert changes(world.platform) == [("pending", 0)]


def test_no_address_holds_an_iban_or_personal_data(world: World) -> None:
    seen: list[str] = []

    def look(answer: Response) -> None:
        seen.append(str(answer.url))
        seen.append(answer.headers.get("location", ""))
        seen.extend(re.findall(r'(?:href|action|hx-post|src)="([^"]+)"', answer.text))

    gp = world.signed_in("gp")
    remittance_id = remittance_of(world.platform, GP)
    for path in ("/pro/paiements", f"/pro/paiements/{remittance_id}", "/pro/banque"):
        look(gp.get(path))
    spaced = " ".join(NEW_IBAN[i : i + 4] for i in range(0, len(NEW_IBAN), 4))
    look(post(gp, "/pro/banque", {"iban": spaced[:-3], "bic": NEW_BIC}, "/pro/banque"))
    asked = post(gp, "/pro/banque", {"iban": spaced, "bic": NEW_BIC}, "/pro/banque")
    look(asked)
    look(gp.get(asked.headers["location"]))
    look(post(gp, "/pro/banque/confirmer", {"code": letter_code(world.platform)}, "/pro/banque"))
    amc = world.signed_in("amc")
    statement = statement_of(world.platform, AMC)
    for path in ("/amc/releves", f"/amc/releves/{statement}"):
        look(amc.get(path))
    look(world.signed_in("operator").get("/ops/paiements"))
    personal: list[str] = [NEW_IBAN, NEW_IBAN[4:], "FR76", "@"]
    for who in (ON_BASE, ON_CONFORT, CLAIMANTS[2], OTHER_CLAIMANTS[0]):
        personal += [who.member_number, who.nir, who.last_name, who.birth_date]
    leaks = [url for url in seen for value in personal if value in url]
    assert not leaks
    assert {"/pro/banque?ok=demande", "/pro/banque?ok=confirmation"} <= set(seen)


def test_the_pages_answer_with_the_security_headers(world: World) -> None:
    pages: dict[str, Any] = {
        "gp": ("/pro/paiements", "/pro/banque"),
        "amc": ("/amc/releves",),
        "operator": ("/ops/paiements",),
    }
    for name, paths in pages.items():
        client = world.signed_in(name)
        for path in paths:
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["cache-control"] == "no-store"
            assert "content-security-policy" in answer.headers
            # The CSP allows no inline script or style: every script is a file, no element
            # carries a style attribute (whatever its quotes or the tag's other attributes).
            scripts = re.findall(r"<script\b[^>]*>", answer.text, re.I)
            assert scripts  # the regex finds base.html's, so it would find an inline one
            assert all(re.search(r"\ssrc\s*=", tag, re.I) for tag in scripts), scripts
            assert not re.search(r"<[^>]*\sstyle\s*=", answer.text, re.I), path
    with world.platform.sessions() as session:
        assert session.scalar(select(func.count()).select_from(BankChange)) == 0
