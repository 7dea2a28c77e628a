"""The payments pages in the browser: a practice reads its remittance, downloads the PDF advice
and changes its bank details (step-up, then the letter's code); an insurer reads its statement;
the operator reads the run and launches one. axe-core checks each page in its states (lists,
details, the bank form empty, with errors, with a change under way, asking for the second
factor)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import update

from rempart.db import transaction
from rempart.identifiers import make_french_iban
from rempart.identity import totp
from rempart.identity.models import AuthSession, User
from rempart.payments import bank_details, runs
from rempart.platform import Platform
from tests.e2e.conftest import Tab
from tests.e2e.test_accessibility import (
    axe_page,  # noqa: F401 (a fixture, shared)
    sign_in,
    violations,
)
from tests.e2e.test_portals import sign_in_page
from tests.support import (
    AMC,
    BILLERS,
    ON_BASE,
    ON_CONFORT,
    OTHER_AMC,
    OTHER_CLAIMANTS,
    add_account,
    add_mandate,
    add_payments_world,
    bill,
    pay_line,
    pdf_text,
    set_rows,
)

GP = BILLERS["gp"]
DOCTOR = "cabinet@medecin.example"
INSURER = "gestion@mutuelle.example"
OPERATOR = "exploitation@rempart.example"
NEW_IBAN = make_french_iban("20041", "01005", "05001234567")
RUN1 = "RMP000001"


def paid_world(platform: Platform, out: Path) -> dict[str, str]:
    """One closed run (the GP paid 58.95 for three invoices, two insurers, AMC by direct debit)
    and an account for the GP, the insurer and the operator: their TOTP secrets."""
    add_payments_world(platform)
    add_mandate(platform, AMC)
    bill(platform, "gp", ON_BASE, [pay_line("MED", 3000, 3000, 70)], "G-1")  # 9.00
    bill(platform, "gp", ON_CONFORT, [pay_line("MED", 7000, 3150, 70)], "G-2")  # 40.95
    bill(platform, "gp", OTHER_CLAIMANTS[0], [pay_line("MED", 3000, 3000, 70)], "G-3", OTHER_AMC)
    drugs = [pay_line("PHAR", 1000, 1000, 30), pay_line("PHAR", 500, 500, 15, act="PH2")]
    bill(platform, "pharmacist", ON_BASE, drugs, "P-1")  # 7.00, a line rejected
    assert runs.run_payments(platform, None, out, "test:operator").run is not None
    return {
        DOCTOR: add_account(platform, "professional", DOCTOR, am_number=GP),
        INSURER: add_account(platform, "amc", INSURER, amc_number=AMC),
        OPERATOR: add_account(platform, "operator", OPERATOR),
    }


def letter_code(platform: Platform) -> str:
    (letter,) = [m for m in bank_details.pending_letters(platform) if m.kind == "code"]
    found = re.search(r"code ([A-Z0-9]{10})", letter.body)
    assert found
    return found.group(1)


def make_stale(platform: Platform) -> None:
    """The sessions' second factor given 11 minutes ago: a change asks for it again."""
    with transaction(platform.sessions) as session:
        stale = datetime.now(UTC) - timedelta(minutes=11)
        session.execute(update(AuthSession).values(created_at=stale))


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_text("Vous êtes déconnecté")).to_be_visible()


def test_a_professional_reads_its_remittance_and_changes_its_bank_details(
    tab: Tab, platform: Platform, tmp_path: Path
) -> None:
    secrets = paid_world(platform, tmp_path / "runs")
    page = tab.page
    sign_in_page(tab, DOCTOR, secrets[DOCTOR])
    page.get_by_role("link", name="Paiements").click()
    expect(page).to_have_url(tab.base + "/pro/paiements")
    listing = page.get_by_role("table", name=re.compile("plus récents"))
    expect(listing).to_contain_text(RUN1)
    expect(listing).to_contain_text("58,95\u202f€")
    tab.shot("pro-paiements-1-liste")

    page.get_by_role("link", name=f"Détail de la campagne {RUN1}").click()
    expect(page.get_by_role("heading", name=f"Avis de paiement {RUN1}")).to_be_visible()
    detail = page.get_by_role("table", name=re.compile("Chaque ligne"))
    expect(detail).to_contain_text("Facture G-2")
    expect(detail).to_contain_text("40,95\u202f€")
    tab.shot("pro-paiements-2-avis")
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger l'avis de paiement (PDF)").click()
    assert download.value.suggested_filename == f"{RUN1}-{GP}.pdf"
    saved = tmp_path / "avis.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF-")
    assert "58,95" in pdf_text(saved)

    make_stale(platform)  # minutes later: the change asks for the second factor again
    page.get_by_role("link", name="Coordonnées bancaires").click()
    expect(page.get_by_role("heading", name="Confirmez d'abord votre identité")).to_be_visible()
    expect(page.get_by_label("IBAN du nouveau compte")).to_have_count(0)
    tab.shot("pro-banque-1-confirmer")
    set_rows(platform, User, totp_last_step=None)  # the sign-in spent this step's code
    page.get_by_label("Code à 6 chiffres").fill(totp.code_at(secrets[DOCTOR], datetime.now(UTC)))
    page.get_by_role("button", name="Confirmer", exact=True).click()
    expect(page).to_have_url(tab.base + "/pro/banque")

    page.get_by_label("IBAN du nouveau compte").fill(NEW_IBAN)
    page.get_by_label("BIC").fill("PSSTFRPPXXX")
    page.get_by_role("button", name="Demander le changement").click()
    expect(page.get_by_role("status")).to_contain_text("Demande enregistrée")
    expect(page.get_by_text(f"FR76…{NEW_IBAN[-4:]}")).to_be_visible()
    assert NEW_IBAN not in page.content()  # the hint only, once recorded
    assert NEW_IBAN not in page.url
    tab.shot("pro-banque-2-demande")

    page.get_by_label("Code du courrier").fill(letter_code(platform))
    page.get_by_role("button", name="Confirmer le changement").click()
    expect(page.get_by_role("status")).to_contain_text("Nouveau compte confirmé")
    expect(page.get_by_text(re.compile("^confirmé ; délai de sécurité"))).to_be_visible()
    tab.shot("pro-banque-3-confirme")


def test_an_insurer_reads_its_statement_and_the_operator_the_run(
    tab: Tab, platform: Platform, tmp_path: Path
) -> None:
    secrets = paid_world(platform, tmp_path / "runs")
    page = tab.page
    sign_in_page(tab, INSURER, secrets[INSURER])
    page.get_by_role("link", name="Relevés").click()
    expect(page.get_by_role("table", name=re.compile("plus récents"))).to_contain_text(
        "prélèvement SEPA"
    )
    tab.shot("amc-releves-1-liste")
    page.get_by_role("link", name=f"Détail du relevé {RUN1}").click()
    expect(page.get_by_role("heading", name=f"Relevé de règlement {RUN1}")).to_be_visible()
    expect(page.get_by_role("table", name=re.compile("Les factures avancées"))).to_contain_text(
        "56,95\u202f€"
    )
    assert ON_BASE.member_number not in page.content()  # pseudonyms only
    tab.shot("amc-releves-2-releve")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Télécharger le relevé")).click()
    assert download.value.suggested_filename == f"{RUN1}-{AMC}.json"
    sign_out(page)

    sign_in_page(tab, OPERATOR, secrets[OPERATOR])
    page.get_by_role("link", name="Paiements").click()
    listing = page.get_by_role("table", name=re.compile("plus récentes"))
    expect(listing).to_contain_text(f"{AMC} : 56,95\u202f€")
    tab.shot("ops-paiements-1-liste")
    page.get_by_role("link", name=RUN1).click()
    expect(page.get_by_role("heading", name=f"Campagne de paiement {RUN1}")).to_be_visible()
    expect(page.get_by_role("rowheader", name=OTHER_AMC)).to_be_visible()
    tab.shot("ops-paiements-2-campagne")
    page.get_by_role("link", name="Toutes les campagnes").click()
    page.get_by_role("button", name="Lancer la campagne maintenant").click()  # signed in now
    expect(page.get_by_role("status")).to_contain_text("Rien de nouveau à payer")


def test_the_payments_pages_meet_wcag_2_1_aa(
    axe_page: Page,  # noqa: F811 (the fixture imported above)
    platform: Platform,
    tmp_path: Path,
) -> None:
    page = axe_page
    secrets = paid_world(platform, tmp_path / "runs")
    found = sign_in(page, platform, DOCTOR, secrets[DOCTOR])
    page.goto("/pro/paiements")
    found += violations(page)
    page.get_by_role("link", name=f"Détail de la campagne {RUN1}").click()
    found += violations(page)
    page.goto("/pro/banque")
    found += violations(page)  # the empty form
    page.get_by_label("IBAN du nouveau compte").fill("FR00 1234")
    page.get_by_label("BIC").fill("PSSTFRPPXXX")
    page.get_by_role("button", name="Demander le changement").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    found += violations(page)  # with its errors
    page.get_by_label("IBAN du nouveau compte").fill(NEW_IBAN)
    page.get_by_role("button", name="Demander le changement").click()
    expect(page.get_by_label("Code du courrier")).to_be_visible()
    found += violations(page)  # a change under way
    make_stale(platform)
    page.goto("/pro/banque")
    found += violations(page)  # asking for the second factor
    sign_out(page)

    found += sign_in(page, platform, INSURER, secrets[INSURER])
    page.goto("/amc/releves")
    found += violations(page)
    page.get_by_role("link", name=f"Détail du relevé {RUN1}").click()
    found += violations(page)
    sign_out(page)

    found += sign_in(page, platform, OPERATOR, secrets[OPERATOR])
    page.goto("/ops/paiements")
    found += violations(page)
    page.get_by_role("link", name=RUN1).click()
    found += violations(page)
    assert not found, found
