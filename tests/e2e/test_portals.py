"""Each role signs in with its password and a TOTP code, then completes its main flow in the
browser, as a person would: labels, buttons and links are found by their accessible names."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from rempart.app import create_app
from rempart.identity import totp
from rempart.identity.models import User
from rempart.identity.services import add_user
from rempart.incidents import containment
from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, import_members
from tests.e2e.conftest import Tab
from tests.support import (
    AMC,
    PASSWORD,
    PHARMACIST_AM,
    add_account,
    add_insurer,
    add_professionals,
    card_body,
    member_file,
    person,
    set_rows,
    sign_in,
)

PRO = "comptoir@pharmacie.example"
INSURER = "gestion@mutuelle.example"
OPERATOR = "exploitation@rempart.example"
SECURITY = "rssi@rempart.example"
PATIENT = person(1)


def world(platform: Platform) -> str:
    """An insurer with its members, a pharmacy, and the pharmacy's account (its TOTP secret)."""
    add_insurer(platform)
    add_professionals(platform)
    people = member_file([PATIENT, person(2), person(3)])
    assert import_members(platform, AMC, io.BytesIO(people), ImportOptions()).committed
    return add_account(platform, "professional", PRO, am_number=PHARMACIST_AM)


def sign_in_page(tab: Tab, email: str, secret: str) -> None:
    page = tab.page
    tab.go("/login")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Second facteur")).to_be_visible()
    page.get_by_label("Code à 6 chiffres").fill(totp.code_at(secret, datetime.now(UTC)))
    page.get_by_role("button", name="Se connecter").click()


def fill_card(page: Page) -> None:
    page.get_by_label("Numéro d'organisme").fill(AMC)
    page.get_by_label("Numéro d'adhérent").fill(PATIENT.member_number)
    page.get_by_label("Date de naissance").fill(PATIENT.birth_date)
    page.get_by_label("Rang de naissance").fill("1")


def test_a_professional_checks_rights_calculates_and_registers_software(
    tab: Tab, platform: Platform
) -> None:
    secret = world(platform)
    page = tab.page
    sign_in_page(tab, PRO, secret)
    expect(page).to_have_url(tab.base + "/pro/")
    expect(page.get_by_role("heading", name="Vérifier les droits d'un patient")).to_be_visible()
    tab.shot("pro-1-droits")

    fill_card(tab.page)
    page.get_by_label("Domaine de soins").select_option("PHAR")
    page.get_by_role("button", name="Vérifier les droits").click()
    expect(page.get_by_role("heading", name="Droits ouverts")).to_be_focused()
    expect(page.locator(".engagement")).to_have_text(re.compile(r"^E[0-9A-Z]{10,}$"))
    assert PATIENT.last_name not in page.content()  # the answer names nobody
    tab.shot("pro-2-droits-reponse")

    page.get_by_role("link", name="Calcul").click()
    expect(page).to_have_url(tab.base + "/pro/calcul")
    fill_card(tab.page)
    page.get_by_label("Code de l'acte").first.fill("PH7")
    page.get_by_label("Montant facturé (€)").first.fill("10,00")
    page.get_by_label("Base de remboursement (€)").first.fill("10,00")
    page.get_by_label("Taux AMO (%)").first.fill("30")
    page.get_by_role("button", name="Calculer").click()
    heading = page.get_by_role("heading", name=re.compile("Part de l'organisme complémentaire"))
    expect(heading).to_contain_text("7,00")  # DOMAIN.md, worked example 3
    tab.shot("pro-3-calcul")

    page.get_by_role("link", name="Logiciels").click()
    key = Ed25519PrivateKey.generate().public_key()
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    page.get_by_label("Nom du logiciel").fill("LGO du comptoir")
    page.get_by_label("Clé publique Ed25519").fill(pem)
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_have_text("Logiciel enregistré.")
    expect(page.get_by_role("cell", name="actif")).to_be_visible()
    tab.shot("pro-4-logiciels")
    page.get_by_role("button", name="Révoquer LGO du comptoir").click()
    expect(page.get_by_role("cell", name="révoqué")).to_be_visible()

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_text("Vous êtes déconnecté")).to_be_visible()
    tab.go("/pro/")
    expect(page).to_have_url(tab.base + "/login")


def test_an_insurer_imports_a_member_file_and_reads_the_access_events(
    tab: Tab, platform: Platform, tmp_path: Path
) -> None:
    pro_secret = world(platform)
    with TestClient(create_app(platform.settings, platform)) as client:  # a pharmacy's check
        headers = sign_in(client, platform, PRO, pro_secret)
        assert client.post(
            "/api/v1/eligibility", json=card_body(PATIENT), headers=headers
        ).is_success
    secret = add_account(platform, "amc", INSURER, amc_number=AMC)
    page = tab.page
    sign_in_page(tab, INSURER, secret)
    expect(page).to_have_url(tab.base + "/amc/")
    tab.shot("amc-1-fichiers")

    upload = tmp_path / "adherents.csv"
    upload.write_bytes(member_file([PATIENT, person(4), person(5).but(nir="199999999999999")]))
    page.get_by_label("Fichier des adhérents (CSV)").set_input_files(upload)
    page.get_by_label("un différentiel").check()
    page.get_by_label("Importer les lignes valides").check()
    page.get_by_role("button", name="Envoyer le fichier").click()
    expect(page.get_by_role("heading", name=re.compile("Fichier importé, 1 ligne"))).to_be_visible()
    expect(page.get_by_role("table", name=re.compile("Lignes rejetées"))).to_contain_text("nir")
    assert "199999999999999" not in page.content()  # the report names columns, not values
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Télécharger la quarantaine")).click()
    assert "199999999999999" in Path(download.value.path()).read_text()
    tab.shot("amc-2-rapport")

    page.get_by_role("link", name="Accès aux données").click()
    events = page.get_by_role("table", name="Les plus récents d'abord")
    expect(events).to_contain_text("Vérification de droits")
    expect(events).to_contain_text(PHARMACIST_AM)
    tab.shot("amc-3-acces")

    page.get_by_role("link", name="Garanties").click()
    expect(page.get_by_role("cell", name="BASE")).to_be_visible()
    tab.shot("amc-4-garanties")


def test_an_operator_freezes_and_lifts_an_account_then_verifies_integrity(
    tab: Tab, platform: Platform
) -> None:
    world(platform)
    secret = add_account(platform, "operator", OPERATOR)
    page = tab.page
    sign_in_page(tab, OPERATOR, secret)
    expect(page).to_have_url(tab.base + "/ops/")
    expect(page.get_by_text("Rien n'est gelé.")).to_be_visible()

    page.get_by_label("Quoi").first.select_option("account")
    page.get_by_label("Adresse e-mail, n° AM ou n° AMC").first.fill(PRO)
    page.get_by_label("Motif").fill("identifiants vus sur un site d'hameçonnage")
    page.get_by_role("button", name="Geler maintenant").click()
    expect(page.get_by_role("status")).to_contain_text("Gel appliqué")
    expect(page.get_by_role("cell", name="identifiants vus sur un site")).to_be_visible()
    assert PRO not in page.inner_text("table")  # the record names the account by its id
    tab.shot("ops-1-gels")

    page.get_by_label("Quoi").nth(1).select_option("account")
    page.get_by_label("Adresse e-mail, n° AM ou n° AMC").nth(1).fill(PRO)
    page.get_by_role("button", name="Lever le gel").click()
    expect(page.get_by_role("status")).to_contain_text("Gel levé")
    expect(page.get_by_text("Rien n'est gelé.")).to_be_visible()

    page.get_by_role("link", name="Intégrité").click()
    page.get_by_role("button", name="Lancer la vérification").click()
    expect(page.get_by_role("heading", name="Intact : aucune altération")).to_be_visible()
    tab.shot("ops-2-integrite")

    page.get_by_role("link", name="Clés").click()
    expect(page.get_by_role("rowheader", name="plateforme")).to_be_visible()
    expect(page.get_by_role("rowheader", name=AMC)).to_be_visible()
    tab.shot("ops-3-cles")


def test_a_security_analyst_sees_the_freezes_in_force(tab: Tab, platform: Platform) -> None:
    world(platform)
    containment.freeze(platform, "professional", PHARMACIST_AM, "enquête en cours", "cli:test")
    secret = add_account(platform, "security", SECURITY)
    page = tab.page
    sign_in_page(tab, SECURITY, secret)
    expect(page).to_have_url(tab.base + "/ops/")
    expect(page.get_by_role("cell", name=f"professional {PHARMACIST_AM}")).to_be_visible()
    expect(page.get_by_role("heading", name="Alertes du garde")).to_be_visible()
    tab.shot("securite-1-gels")


def test_a_person_enrols_with_the_code_then_signs_in(tab: Tab, platform: Platform) -> None:
    add_insurer(platform)
    created = add_user(platform, "amc", INSURER, actor="test", amc_number=AMC)
    assert created.enrolment_code
    page = tab.page
    tab.go("/enrol")
    page.get_by_label("Code d'activation").fill(created.enrolment_code)
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("img", name=re.compile("Code QR"))).to_be_visible()
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_label("Le même mot de passe").fill(PASSWORD)
    page.get_by_label("Code à 6 chiffres").fill(totp.code_at(secret, datetime.now(UTC)))
    tab.shot("compte-1-activation")
    page.get_by_role("button", name="Activer mon compte", exact=True).click()
    expect(page.get_by_text("Votre compte est activé")).to_be_visible()
    set_rows(platform, User, totp_last_step=None)  # the enrolment spent this step's code
    sign_in_page(tab, INSURER, secret)
    expect(page).to_have_url(tab.base + "/amc/")
