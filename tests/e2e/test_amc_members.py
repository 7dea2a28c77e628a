"""An insurer's claims handler in the browser: signs in with a TOTP code, opens a member's file
by its number (rights and history), meets an unknown number, then the invoices; every state
checked with axe-core (WCAG 2.1 AA), and the member number never in the address bar."""

from __future__ import annotations

import io
import re

from playwright.sync_api import Page, expect

from rempart.ledger.events import Tag
from rempart.platform import Platform
from rempart.portal.rendering import TAG_NAMES
from rempart.registry.member_import import ImportOptions, import_members
from tests.e2e.conftest import Tab
from tests.e2e.test_accessibility import axe_page, sign_in, violations  # noqa: F401
from tests.e2e.test_portals import INSURER, sign_in_page
from tests.support import (
    AMC,
    BILLERS,
    ON_BASE,
    add_account,
    add_payments_world,
    bill,
    member_file,
    pay_line,
    person,
)

CHILD = person(60).but(member_number=ON_BASE.member_number, relationship="child", nir="")


def world(platform: Platform) -> str:
    """The claims world (an insurer and its members, professionals), a child under the same
    membership as ON_BASE, two invoices for ON_BASE, and the insurer's account (its secret)."""
    add_payments_world(platform)
    child = io.BytesIO(member_file([CHILD]))
    assert import_members(platform, AMC, child, ImportOptions(delta=True)).committed
    bill(platform, "pharmacist", ON_BASE, [pay_line("PHAR", 1000, 1000, 30)], "F-PH-1")
    bill(platform, "gp", ON_BASE, [pay_line("MED", 3000, 3000, 70)], "F-MG-1")
    return add_account(platform, "amc", INSURER, amc_number=AMC)


def open_file(page: Page, number: str) -> None:
    page.get_by_label("Numéro d'adhérent").fill(number)
    page.get_by_role("button", name="Ouvrir le dossier").click()


def test_an_insurer_opens_a_member_file_then_reads_the_invoices(
    tab: Tab, platform: Platform
) -> None:
    secret = world(platform)
    page = tab.page
    sign_in_page(tab, INSURER, secret)
    expect(page).to_have_url(tab.base + "/amc/")
    page.get_by_role("link", name="Bénéficiaires").click()
    expect(page.get_by_role("heading", name="Bénéficiaires", level=1)).to_be_visible()
    tab.shot("amc-5-beneficiaires")

    open_file(page, ON_BASE.member_number)
    expect(page.get_by_role("heading", name=f"Adhérent n° {ON_BASE.member_number}")).to_be_visible()
    holder = f"{ON_BASE.first_name} {ON_BASE.last_name}"
    expect(page.get_by_role("heading", name=holder)).to_be_visible()
    expect(
        page.get_by_role("heading", name=f"{CHILD.first_name} {CHILD.last_name}")
    ).to_be_visible()
    expect(page.get_by_role("table", name=f"Droits de {holder}")).to_contain_text("BASE")
    invoices = page.get_by_role("table", name=re.compile(f"Factures reçues pour {holder}"))
    expect(invoices).to_contain_text("F-PH-1")
    expect(invoices).to_contain_text(BILLERS["gp"])
    assert ON_BASE.member_number not in page.url  # posted, never in the address
    tab.shot("amc-6-dossier")

    open_file(page, "ZZ00000000")
    expect(page.get_by_role("alert")).to_contain_text("Aucun adhérent de votre organisme")
    tab.shot("amc-7-inconnu")

    open_file(page, ON_BASE.member_number)  # the second view shows the first in the history
    events = page.get_by_role("table", name=re.compile("Avant cette consultation"))
    label = TAG_NAMES.get(Tag.MEMBER_FILE_READ, Tag.MEMBER_FILE_READ.value)
    expect(events).to_contain_text(label)

    page.get_by_role("link", name="Factures", exact=True).click()
    expect(page).to_have_url(tab.base + "/amc/factures")
    table = page.get_by_role("table", name="Les plus récentes d'abord")
    expect(table).to_contain_text("F-MG-1")
    expect(table).to_contain_text("F-PH-1")
    expect(table).not_to_contain_text(ON_BASE.last_name)
    tab.shot("amc-8-factures")


def test_the_member_file_and_invoices_pages_meet_wcag_2_1_aa(
    axe_page: Page,  # noqa: F811  (test_accessibility's fixture, imported above)
    platform: Platform,
) -> None:
    page = axe_page
    found = sign_in(page, platform, INSURER, world(platform))
    page.goto("/amc/beneficiaires")
    found += violations(page)
    page.get_by_label("Numéro d'adhérent").fill("12-34")
    page.get_by_role("button", name="Ouvrir le dossier").evaluate("b => b.form.noValidate = true")
    page.get_by_role("button", name="Ouvrir le dossier").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    found += violations(page)  # the form with its error
    open_file(page, "ZZ00000000")
    expect(page.get_by_role("alert")).to_contain_text("Aucun adhérent")
    found += violations(page)  # not found
    open_file(page, ON_BASE.member_number)
    open_file(page, ON_BASE.member_number)  # with access events in the history
    expect(page.get_by_role("heading", name=re.compile("Adhérent n°"))).to_be_visible()
    found += violations(page)
    page.goto("/amc/factures")
    found += violations(page)
    assert not found, "\n".join(found)
