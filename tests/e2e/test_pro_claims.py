"""An optician's prior agreement and invoice in the browser, as a person would: sign in with a
TOTP code, ask for the agreement on a pair of glasses, bill the glasses quoting it, read the
adjudication, cancel the invoice; and axe-core on those pages in their states."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from rempart.platform import Platform
from tests.e2e.conftest import Tab
from tests.e2e.test_accessibility import axe_page, sign_in, violations
from tests.e2e.test_portals import sign_in_page
from tests.support import AMC, BILLERS, UNDER_AGREEMENT, add_account, add_prior_agreement_world

__all__ = ["axe_page"]  # the fixture, shared with test_accessibility.py

OPTICIAN = "accueil@optique.example"
PATIENT = UNDER_AGREEMENT[0]
# DOMAIN.md's example 4: a frame and two lenses (billed, item type); AMC 100,00 + 119,97 + 80,03.
GLASSES = (("150,00", "Monture"), ("120,00", "Verre"), ("120,00", "Verre"))


def world(platform: Platform) -> str:
    """DOMAIN.md's sample plan, its members, and an optician's account (its TOTP secret)."""
    add_prior_agreement_world(platform)
    return add_account(platform, "professional", OPTICIAN, am_number=BILLERS["optician"])


def fill_card(page: Page) -> None:
    page.get_by_label("Numéro d'organisme").fill(AMC)
    page.get_by_label("Numéro d'adhérent").fill(PATIENT.member_number)
    page.get_by_label("Date de naissance").fill(PATIENT.birth_date)
    page.get_by_label("Rang de naissance").fill("1")


def fill_glasses(page: Page) -> None:
    for row, (billed, kind) in enumerate(GLASSES):
        page.get_by_label("Code de l'acte").nth(row).fill("C")
        page.get_by_label("Quantité").nth(row).fill("1")
        page.get_by_label("Montant facturé (€)").nth(row).fill(billed)
        page.get_by_label("Base de remboursement (€)").nth(row).fill("0,05")
        page.get_by_label("Taux AMO (%)").nth(row).fill("60")
        page.get_by_text("Optique, audioprothèse, 100 % Santé").nth(row).click()  # opens it
        page.get_by_label("Type d'article").nth(row).select_option(label=kind)
        page.get_by_label("Part AMO versée (€)").nth(row).fill("0,03")


def test_an_optician_asks_for_an_agreement_bills_with_it_and_cancels_the_invoice(
    tab: Tab, platform: Platform
) -> None:
    secret = world(platform)
    page = tab.page
    sign_in_page(tab, OPTICIAN, secret)
    expect(page).to_have_url(tab.base + "/pro/")

    page.get_by_role("link", name="Accords préalables").click()
    expect(page.get_by_role("heading", name="Demander un accord préalable")).to_be_visible()
    expect(page.get_by_text("Aucun accord préalable.")).to_be_visible()
    fill_card(page)
    fill_glasses(page)
    tab.shot("pro-accords-1-demande")
    page.get_by_role("button", name="Demander l'accord").click()
    expect(page.get_by_role("status")).to_contain_text("Accord préalable accordé")
    expect(page).to_have_url(re.compile(r"/pro/accords/PA[A-Z2-7]{24}\?ok=accord$"))
    table = page.get_by_role("table", name="L'accord, ligne par ligne")
    for amount in ("100,00", "119,97", "80,03"):
        expect(table).to_contain_text(amount)
    reference = page.locator("code.engagement").inner_text()
    assert PATIENT.member_number not in page.url
    tab.shot("pro-accords-2-accord")

    page.get_by_role("link", name="Factures").first.click()
    expect(page.get_by_role("heading", name="Saisir une facture")).to_be_visible()
    fill_card(page)
    page.get_by_label("Numéro de facture").fill("F-2026-0001")
    page.get_by_label("Référence d'accord préalable").fill(reference)
    fill_glasses(page)
    page.get_by_role("button", name="Enregistrer la facture").click()
    expect(page.get_by_role("status")).to_have_text("Facture enregistrée.")
    heading = page.get_by_role("heading", name=re.compile("Part de l'organisme complémentaire"))
    expect(heading).to_contain_text("300,00")
    lines = page.get_by_role("table", name="La facture, ligne par ligne")
    expect(lines).to_contain_text("119,97")
    expect(lines).to_contain_text("Monture")
    expect(page.get_by_text("acceptée", exact=True)).to_be_visible()
    assert PATIENT.member_number not in page.url
    tab.shot("pro-factures-1-facture")

    page.get_by_role("button", name="Annuler cette facture").click()
    expect(page.get_by_role("status")).to_contain_text("Facture annulée")
    expect(page.get_by_role("button", name="Annuler cette facture")).to_have_count(0)
    tab.shot("pro-factures-2-annulee")
    page.get_by_role("link", name="Toutes vos factures").click()
    expect(page.get_by_role("table", name="Les plus récentes d'abord")).to_contain_text("annulée")
    tab.shot("pro-factures-3-liste")

    page.get_by_role("link", name="Accords préalables").click()
    page.get_by_role("link", name=reference).click()
    expect(page.get_by_text("accordé", exact=True)).to_be_visible()  # usable again
    page.get_by_role("button", name="Annuler cet accord").click()
    expect(page.get_by_role("status")).to_contain_text("Accord préalable annulé")


def test_the_agreement_and_invoice_pages_meet_wcag_2_1_aa(
    axe_page: Page, platform: Platform
) -> None:
    page = axe_page
    found = sign_in(page, platform, OPTICIAN, world(platform))
    page.goto("/pro/accords")
    found += violations(page)
    page.get_by_label("Rang de naissance").fill("12")
    page.get_by_role("button", name="Demander l'accord").evaluate("b => b.form.noValidate = true")
    page.get_by_role("button", name="Demander l'accord").click()
    expect(page.get_by_role("alert")).to_be_visible()
    found += violations(page)  # the form with its errors
    fill_card(page)
    fill_glasses(page)
    page.get_by_role("button", name="Demander l'accord").click()
    expect(page.get_by_role("status")).to_be_visible()
    found += violations(page)  # an agreement
    reference = page.locator("code.engagement").inner_text()
    page.goto("/pro/factures")
    found += violations(page)
    fill_card(page)
    page.get_by_label("Numéro de facture").fill("F-1")
    page.get_by_label("Référence d'accord préalable").fill(reference)
    fill_glasses(page)
    page.get_by_role("button", name="Enregistrer la facture").click()
    expect(page.get_by_role("status")).to_be_visible()
    found += violations(page)  # an adjudication
    page.goto("/pro/factures")
    found += violations(page)  # the list
    assert not found, "\n".join(found)
