"""Guard alerts and incident response in the browser: the operator sees an alert with its
evidence, scopes the abused account's activity and prepares the notifications; the insurer
downloads its pack, on the record. The pages meet WCAG 2.1 AA (axe-core) in their states."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from rempart.app import create_app
from rempart.db import transaction
from rempart.guard.detection import record_alert
from rempart.guard.signals import Assessment, Context, Finding, Measure, Response, Signal
from rempart.incidents import console
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from tests.e2e.conftest import Tab
from tests.e2e.test_accessibility import axe_page, sign_in, violations  # noqa: F401
from tests.e2e.test_portals import INSURER, OPERATOR, PATIENT, PRO, sign_in_page, world
from tests.support import (
    AMC,
    PHARMACIST_AM,
    account_actor,
    add_account,
    card_body,
    pdf_text,
)
from tests.support import sign_in as api_sign_in


def phished(platform: Platform) -> datetime:
    """The pharmacy's account reads a patient through the API, and the guard raised an alert
    on it; returns when the reading started."""
    secret = world(platform)
    start = datetime.now(UTC) - timedelta(seconds=1)
    with TestClient(create_app(platform.settings, platform)) as client:
        headers = api_sign_in(client, platform, PRO, secret)
        answer = client.post("/api/v1/eligibility", json=card_body(PATIENT), headers=headers)
        assert answer.is_success
    finding = Finding(Signal.BURST, 25, 12.5, Response.FREEZE)
    assessment = Assessment(Response.FREEZE, (finding,), (Context.ODD_HOUR,), {"burst": 12.5})
    evidence = assessment.evidence(Measure(burst=25, day=31, hour=3))
    with transaction(platform.sessions) as session:
        actor = account_actor(platform, PRO)
        record_alert(session, datetime.now(UTC), actor, PHARMACIST_AM, assessment, evidence)
    return start


def menu(page: Page) -> Locator:
    """The main menu (the console's home links to some of the same pages)."""
    return page.get_by_role("navigation", name="Menu principal")


def downloads(platform: Platform) -> list[AccessEvent]:
    with transaction(platform.sessions) as session:
        rows = session.scalars(
            select(LedgerEntry.event).where(LedgerEntry.tag == Tag.NOTIFICATION_DOWNLOADED)
        )
        return [AccessEvent.decode(row) for row in rows]


def test_an_operator_sees_an_alert_scopes_the_account_and_prepares_the_notifications(
    tab: Tab, platform: Platform
) -> None:
    phished(platform)
    secret = add_account(platform, "operator", OPERATOR)
    page = tab.page
    sign_in_page(tab, OPERATOR, secret)
    expect(page).to_have_url(tab.base + "/ops/")

    menu(page).get_by_role("link", name="Alertes").click()
    table = page.get_by_role("table", name=re.compile("les plus récentes d'abord"))
    expect(table).to_contain_text("Rafale")
    expect(table).to_contain_text("25 pour un seuil de 12,5")
    expect(table).to_contain_text("heure inhabituelle")
    expect(page.get_by_role("button", name=re.compile("Geler ce compte"))).to_be_visible()
    page.get_by_text("Mesures").click()  # the evidence, folded
    expect(table).to_contain_text("Heure de Paris")
    tab.shot("ops-4-alertes")

    menu(page).get_by_role("link", name="Incidents").click()
    page.get_by_label("Comptes").fill(PRO)
    tab.shot("ops-5-incidents")
    page.get_by_role("button", name="Établir le périmètre").click()
    expect(page.get_by_role("status")).to_contain_text("Périmètre établi")
    expect(page.get_by_role("heading", name="1 personne lue (1 lecture)")).to_be_visible()
    expect(page.get_by_role("table", name="Par organisme complémentaire")).to_contain_text(AMC)
    assert PRO not in page.content()  # the criteria name the account by its id
    tab.shot("ops-6-perimetre")

    page.get_by_label("Point de contact de l'opérateur").fill("SOC Rempart, 01 23 45 67 89")
    page.get_by_role("button", name="Préparer les notifications").click()
    expect(page.get_by_role("status")).to_contain_text("Notifications préparées")
    expect(
        page.get_by_role("table", name=re.compile("Dossier de chaque organisme"))
    ).to_contain_text("lettres-art34-001.pdf")
    tab.shot("ops-7-notifications")

    page.get_by_role("link", name="Tous les périmètres").click()
    expect(page.get_by_role("table", name="Les plus récents d'abord")).to_contain_text("préparées")


def test_an_insurer_downloads_its_notification_pack(
    tab: Tab, platform: Platform, tmp_path: Path
) -> None:
    start = phished(platform)
    scoped = console.run_scope(
        platform, start, datetime.now(UTC) + timedelta(seconds=1), accounts=[PRO]
    )
    console.prepare_notifications(platform, scoped.id, "user:test")
    secret = add_account(platform, "amc", INSURER, amc_number=AMC)
    page = tab.page
    sign_in_page(tab, INSURER, secret)
    menu(page).get_by_role("link", name="Incidents").click()
    expect(page.get_by_role("heading", name=re.compile("^Incident du"))).to_be_visible()
    expect(page.get_by_text("Personnes concernées", exact=True)).to_be_visible()
    tab.shot("amc-5-incidents")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Lettres aux personnes concernées")).click()
    letters = tmp_path / "lettres.pdf"
    download.value.save_as(letters)
    assert PATIENT.last_name in pdf_text(letters)
    (event,) = downloads(platform)
    assert event.actor == account_actor(platform, INSURER)
    assert event.tenant == AMC
    assert event.beneficiary  # the one person the letters name, by pseudonym


def test_the_incident_pages_meet_wcag_2_1_aa(
    axe_page: Page,  # noqa: F811
    platform: Platform,
) -> None:
    page = axe_page
    phished(platform)
    found = sign_in(page, platform, OPERATOR, add_account(platform, "operator", OPERATOR))
    page.goto("/ops/alertes")
    page.get_by_text("Mesures").click()
    found += violations(page)
    page.goto("/ops/incidents")
    found += violations(page)  # the empty form and no scope
    page.get_by_role("button", name="Établir le périmètre").click()  # no criteria: errors
    expect(page.get_by_role("alert")).to_be_visible()
    found += violations(page)
    page.get_by_label("Comptes").fill(PRO)
    page.get_by_role("button", name="Établir le périmètre").click()
    expect(page.get_by_role("status")).to_contain_text("Périmètre établi")
    found += violations(page)
    page.get_by_role("button", name="Préparer les notifications").click()
    expect(page.get_by_role("status")).to_contain_text("Notifications préparées")
    found += violations(page)
    page.goto("/ops/incidents")
    found += violations(page)  # the list
    page.get_by_role("button", name="Se déconnecter").click()

    found += sign_in(page, platform, INSURER, add_account(platform, "amc", INSURER, amc_number=AMC))
    page.goto("/amc/incidents")
    expect(page.get_by_role("heading", name=re.compile("^Incident du"))).to_be_visible()
    found += violations(page)
    assert not found, "\n".join(found)
