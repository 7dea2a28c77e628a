"""WCAG 2.1 AA on the main pages, as axe-core (pinned in package.json, installed by `make`)
finds it in the browser: labels, names, landmarks, contrast, language, ARIA. Pages are checked
in their states that matter: empty forms, forms with errors, answers.

axe is injected into the page, which the CSP rightly forbids: this context alone bypasses it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from rempart.identity import totp
from rempart.identity.models import User
from rempart.platform import Platform
from tests.e2e.test_portals import INSURER, OPERATOR, PATIENT, PRO, fill_card, world
from tests.support import AMC, PASSWORD, add_account, set_rows

AXE = Path(__file__).parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture
def axe_page(browser: Browser, server: str) -> Iterator[Page]:
    if not AXE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("axe-core is missing: `make assets` installs it")
        pytest.skip("axe-core is not installed: run `make assets`")
    context = browser.new_context(bypass_csp=True, locale="fr-FR", base_url=server)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def violations(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    results: dict[str, Any] = page.evaluate(
        "async (tags) => { const r = await axe.run(document, {runOnly: {type: 'tag', "
        "values: tags}}); return {violations: r.violations, passed: r.passes.length}; }",
        WCAG_AA,
    )
    assert results["passed"] > 10, "axe checked nothing"
    found: list[dict[str, Any]] = results["violations"]
    return [
        f"{page.url} {v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in found
    ]


def sign_in(page: Page, platform: Platform, email: str, secret: str) -> list[str]:
    set_rows(platform, User, totp_last_step=None)
    page.goto("/login")
    found = violations(page)
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Continuer").click()
    found += violations(page)
    page.get_by_label("Code à 6 chiffres").fill(totp.code_at(secret, datetime.now(UTC)))
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/*/")
    return found


def test_the_main_pages_meet_wcag_2_1_aa(axe_page: Page, platform: Platform) -> None:
    page = axe_page
    found: list[str] = []
    page.goto("/enrol")
    found += violations(page)
    page.get_by_role("button", name="Continuer").click()  # an empty code: the error state
    found += violations(page)

    found += sign_in(page, platform, PRO, world(platform))
    found += violations(page)
    page.get_by_label("Rang de naissance").fill("12")
    page.get_by_role("button", name="Vérifier les droits").evaluate("b => b.form.noValidate = true")
    page.get_by_role("button", name="Vérifier les droits").click()
    expect(page.get_by_role("alert")).to_be_visible()
    found += violations(page)  # the form with its errors
    fill_card(page)
    page.get_by_role("button", name="Vérifier les droits").click()
    expect(page.get_by_role("heading", name="Droits ouverts")).to_be_visible()
    found += violations(page)
    for path in ("/pro/calcul", "/pro/logiciels", "/compte/securite"):
        page.goto(path)
        found += violations(page)
    page.get_by_role("button", name="Se déconnecter").click()

    found += sign_in(page, platform, INSURER, add_account(platform, "amc", INSURER, amc_number=AMC))
    for path in ("/amc/", "/amc/garanties", "/amc/acces"):
        page.goto(path)
        found += violations(page)
    page.get_by_role("button", name="Se déconnecter").click()

    found += sign_in(page, platform, OPERATOR, add_account(platform, "operator", OPERATOR))
    for path in ("/ops/", "/ops/cles", "/ops/integrite"):
        page.goto(path)
        found += violations(page)
    page.get_by_role("button", name="Lancer la vérification").click()
    expect(page.get_by_role("heading", name="Intact : aucune altération")).to_be_visible()
    found += violations(page)
    assert not found, "\n".join(found)


def test_signing_in_and_checking_rights_work_with_the_keyboard_alone(
    axe_page: Page, platform: Platform
) -> None:
    page = axe_page
    secret = world(platform)
    page.goto("/login")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Aller au contenu")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Adresse e-mail")).to_be_focused()
    page.keyboard.type(PRO)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Code à 6 chiffres")).to_be_focused()  # autofocus
    page.keyboard.type(totp.code_at(secret, datetime.now(UTC)))
    page.keyboard.press("Enter")
    page.wait_for_url("**/pro/")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link, again first
    page.keyboard.press("Tab")
    expect(page.get_by_label("Numéro d'organisme complémentaire (AMC)")).to_be_focused()
    for text in (AMC, PATIENT.member_number):
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    birth_date = page.get_by_label("Date de naissance")
    expect(birth_date).to_be_focused()
    birth_date.fill(PATIENT.birth_date)  # typed, its segments follow the browser's language
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Droits ouverts")).to_be_focused()
