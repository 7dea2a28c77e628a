"""A security key in a real browser: chromium's virtual authenticator (DevTools' WebAuthn domain)
stands in for a USB key. A pharmacist registers one from her account's page, then signs in with it
instead of the app's code.

WebAuthn refuses an IP address as the site's identity: these pages are opened as
http://localhost:PORT, and the settings say so (the rp id and origin follow public_url).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, expect

from rempart.identity.services import add_user
from rempart.platform import Platform
from rempart.settings import Settings
from tests.e2e.conftest import Tab, free_port, serving
from tests.e2e.test_portals import PRO, sign_in_page, world
from tests.support import PASSWORD, PHARMACIST_AM

NEWCOMER = "lea@pharmacie.example"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, port: int) -> Settings:
    return settings.model_copy(update={"public_url": f"http://localhost:{port}"})


@pytest.fixture
def key_tab(browser: Browser, platform: Platform, port: int) -> Iterator[Tab]:
    with serving(platform, port):
        context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
        page = context.new_page()
        page.set_default_timeout(10_000)
        console: list[str] = []

        def keep(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                console.append(message.text)

        page.on("console", keep)
        devtools = context.new_cdp_session(page)
        devtools.send("WebAuthn.enable")
        devtools.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "usb",
                    "hasResidentKey": False,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )
        yield Tab(page, f"http://localhost:{port}", console)
        context.close()
    assert not [m for m in console if "Content Security Policy" in m], console


def test_a_pharmacist_registers_a_security_key_then_signs_in_with_it(
    key_tab: Tab, platform: Platform
) -> None:
    tab, page = key_tab, key_tab.page
    secret = world(platform)
    sign_in_page(tab, PRO, secret)
    expect(page).to_have_url(tab.base + "/pro/")

    page.get_by_role("link", name="Sécurité du compte").click()
    expect(page.get_by_role("heading", name="Ajouter une clé de sécurité")).to_be_visible()
    page.get_by_label("Nom de la clé").fill("Clé du comptoir")
    page.get_by_role("button", name="Enregistrer une clé").click()
    expect(page.get_by_role("status")).to_have_text(
        "Clé de sécurité enregistrée : vous pouvez vous connecter avec elle."
    )
    expect(page.get_by_role("rowheader", name="Clé du comptoir")).to_be_visible()
    tab.shot("compte-cles")

    page.get_by_role("button", name="Se déconnecter").click()
    page.get_by_label("Adresse e-mail").fill(PRO)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Continuer").click()
    tab.shot("login-cle")
    page.get_by_role("button", name="Utiliser ma clé de sécurité").click()
    expect(page).to_have_url(tab.base + "/pro/")
    expect(page.get_by_role("heading", name="Vérifier les droits d'un patient")).to_be_visible()


def test_a_newcomer_enrols_with_a_security_key_instead_of_the_app(
    key_tab: Tab, platform: Platform
) -> None:
    tab, page = key_tab, key_tab.page
    world(platform)
    created = add_user(platform, "professional", NEWCOMER, actor="t", am_number=PHARMACIST_AM)
    assert created.enrolment_code
    tab.go("/enrol")
    page.get_by_label("Code d'activation").fill(created.enrolment_code)
    page.get_by_role("button", name="Continuer").click()
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_label("Le même mot de passe, une seconde fois").fill(PASSWORD)
    page.get_by_label("Nom de la clé").fill("Clé de Léa")
    tab.shot("enrol-cle")
    page.get_by_role("button", name="Activer mon compte avec ma clé").click()
    expect(page).to_have_url(re.compile(r"/login\?raison=active$"))

    page.get_by_label("Adresse e-mail").fill(NEWCOMER)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Continuer").click()
    page.get_by_role("button", name="Utiliser ma clé de sécurité").click()
    expect(page.get_by_role("heading", name="Vérifier les droits d'un patient")).to_be_visible()
