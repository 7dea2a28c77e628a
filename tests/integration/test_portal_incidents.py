"""Guard alerts and incident response in the portals, without a browser: the console shows the
guard's alerts with their evidence and freezes from one; it scopes an incident (errors leave
nothing written) and prepares the notification packs (with a recent second factor only); each
insurer downloads its own pack, each download on the record, and nothing else (no other
insurer's pack, no path from the address).
"""

from __future__ import annotations

import html
import io
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from rempart.app import create_app
from rempart.dates import PARIS
from rempart.db import transaction
from rempart.errors import InvalidInput, NotFound
from rempart.guard.detection import record_alert
from rempart.guard.signals import Assessment, Context, Finding, Measure, Response, Signal
from rempart.identity import totp
from rempart.identity.models import AuthSession, User
from rempart.incidents import console, containment
from rempart.incidents import notify as notification
from rempart.incidents import scope as scoping
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, import_members
from tests.support import (
    AMC,
    OTHER_AMC,
    PHARMACIST_AM,
    account_actor,
    add_account,
    add_insurer,
    add_professionals,
    card_body,
    csrf_of,
    member_file,
    pdf_text,
    person,
    portal_sign_in,
    set_rows,
    sign_in,
)

PHARMACIST = "comptoir@pharmacie.example"
OPERATOR = "exploitation@rempart.example"
SECURITY = "rssi@rempart.example"
INSURER = "gestion@mutuelle.example"
OTHER_INSURER = "gestion@autre-mutuelle.example"
READ = [person(1), person(2)]  # the pharmacist's account reads these two of AMC's members
UNREAD = person(3)
NOBODY = person(99)  # a card that exists nowhere


@dataclass
class World:
    platform: Platform
    app: object
    secrets: dict[str, str]
    start: datetime
    end: datetime

    def signed_in(self, email: str) -> TestClient:
        client = TestClient(self.app)  # type: ignore[arg-type]
        portal_sign_in(client, self.platform, email, self.secrets[email])
        return client


@pytest.fixture
def world(platform: Platform) -> Iterator[World]:
    add_insurer(platform)
    add_insurer(platform, OTHER_AMC)
    add_professionals(platform)
    people = member_file([*READ, UNREAD])
    assert import_members(platform, AMC, io.BytesIO(people), ImportOptions()).committed
    others = member_file([person(20)])
    assert import_members(platform, OTHER_AMC, io.BytesIO(others), ImportOptions()).committed
    secrets = {
        PHARMACIST: add_account(platform, "professional", PHARMACIST, am_number=PHARMACIST_AM),
        OPERATOR: add_account(platform, "operator", OPERATOR),
        SECURITY: add_account(platform, "security", SECURITY),
        INSURER: add_account(platform, "amc", INSURER, amc_number=AMC),
        OTHER_INSURER: add_account(platform, "amc", OTHER_INSURER, amc_number=OTHER_AMC),
    }
    app = create_app(platform.settings, platform)
    with TestClient(app) as client:  # runs the lifespan: recorder, guard
        start = datetime.now(UTC) - timedelta(seconds=1)
        headers = sign_in(client, platform, PHARMACIST, secrets[PHARMACIST])
        for who in [*READ, NOBODY]:
            answer = client.post("/api/v1/eligibility", json=card_body(who), headers=headers)
            assert answer.status_code == 200, answer.text
        end = datetime.now(UTC) + timedelta(seconds=1)
        yield World(platform, app, secrets, start, end)


def post(client: TestClient, path: str, data: dict[str, str], page: str) -> object:
    """POST a form the way a browser does: with the token of the page it came from."""
    token = csrf_of(client.get(page).text)
    return client.post(path, data={**data, "csrf": token}, follow_redirects=False)


def paris(moment: datetime) -> str:
    """A Paris time for the period's fields, to the second and with its offset, which the form
    takes too: a wall time alone is refused in a clock change's hour (tested on its own below)."""
    return moment.astimezone(PARIS).isoformat(timespec="seconds")


def scope_form(w: World, **changes: str) -> dict[str, str]:
    return {
        "du": paris(w.start),
        "au": paris(w.end + timedelta(seconds=1)),
        "comptes": PHARMACIST,
        "professionnels": "",
        "adresses": "",
    } | changes


def stale(platform: Platform) -> None:
    """Every session's second factor given 11 minutes ago: too old for a sensitive change."""
    with transaction(platform.sessions) as session:
        old = datetime.now(UTC) - timedelta(minutes=11)
        session.execute(update(AuthSession).values(created_at=old))


def step_up(w: World, client: TestClient, email: str, page: str) -> None:
    set_rows(w.platform, User, totp_last_step=None)  # the sign-in spent this step's code
    code = totp.code_at(w.secrets[email], datetime.now(UTC))
    answer = post(client, "/compte/confirmer", {"code": code, "retour": "/ops/incidents"}, page)
    assert answer.headers["location"] == "/ops/incidents"  # type: ignore[attr-defined]


def scoped(w: World, client: TestClient) -> str:
    """Scope the pharmacist's account through the console; returns the scope's page."""
    answer = post(client, "/ops/incidents", scope_form(w), "/ops/incidents")
    assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
    location: str = answer.headers["location"]  # type: ignore[attr-defined]
    found = re.fullmatch(r"/ops/incidents/([0-9a-f]{32})\?ok=perimetre", location)
    assert found, location
    return f"/ops/incidents/{found.group(1)}"


def prepared(w: World, client: TestClient) -> str:
    """A scope with its notification packs, prepared through the console."""
    page = scoped(w, client)
    answer = post(client, page + "/notifications", {"contact": "SOC Rempart"}, page)
    assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
    assert answer.headers["location"] == page + "?ok=notifications"  # type: ignore[attr-defined]
    return page


def events(platform: Platform, tag: str) -> list[AccessEvent]:
    with transaction(platform.sessions) as session:
        rows = session.scalars(
            select(LedgerEntry.event).where(LedgerEntry.tag == tag).order_by(LedgerEntry.seq)
        )
        return [AccessEvent.decode(row) for row in rows]


def incidents_written(platform: Platform) -> list[Path]:
    home = console.incidents_home(platform)
    return list(home.iterdir()) if home.exists() else []


# Alerts ------------------------------------------------------------------------------------------


def alert(w: World, actor: str, at: datetime) -> None:
    finding = Finding(Signal.BURST, 25, 12.5, Response.FREEZE)
    assessment = Assessment(
        Response.FREEZE, (finding,), (Context.NEW_NETWORK,), {"burst": 12.5, "day": 40.0}
    )
    evidence = assessment.evidence(Measure(burst=25, day=31, professional_day=44, hour=3))
    with transaction(w.platform.sessions) as session:
        record_alert(session, at, actor, PHARMACIST_AM, assessment, evidence | {"software": False})


def test_the_console_shows_the_guards_alerts_with_their_evidence(world: World) -> None:
    actor = account_actor(world.platform, PHARMACIST)
    now = datetime.now(UTC)
    alert(world, actor, now - timedelta(minutes=5))
    alert(world, "client:" + "0" * 32, now - timedelta(days=3))
    for email in (OPERATOR, SECURITY):
        ops = world.signed_in(email)
        page = ops.get("/ops/alertes")
        assert page.status_code == 200
        assert "1 alerte des 24 dernières heures" in page.text
        assert actor in page.text
        assert PHARMACIST_AM in page.text
        assert "Rafale : patients différents en quelques minutes" in page.text
        assert "<strong>25</strong> pour un seuil de 12,5" in page.text
        assert "réseau jamais vu" in page.text
        assert "Compte gelé" in page.text
        assert "Seuil du jour (compte)" in page.text  # the allowances it was held to
        assert "client:" not in page.text  # three days old
        week = ops.get("/ops/alertes?periode=7j")
        assert "2 alertes des 7 derniers jours" in week.text
        assert week.text.index(actor) < week.text.index("client:")  # newest first
        odd = ops.get("/ops/alertes?periode=../../etc")
        assert "1 alerte des 24 dernières heures" in odd.text  # an unknown code: the default


def test_a_nightly_alert_about_a_practice_shows_its_counts(world: World) -> None:
    finding = Finding(Signal.UNBILLED, 0.75, 0.5, Response.STEP_UP)
    evidence = {
        "response": "allow",
        "findings": [{"signal": "unbilled", "value": 0.75, "threshold": 0.5, "level": "alert"}],
        "day": "2026-11-28",
        "open_checks": 40,
        "billed": 10,
    }
    with transaction(world.platform.sessions) as session:
        record_alert(
            session,
            datetime.now(UTC),
            f"professional:{PHARMACIST_AM}",
            PHARMACIST_AM,
            Assessment(Response.ALLOW, (finding,)),
            evidence,
        )
    page = html.unescape(world.signed_in(OPERATOR).get("/ops/alertes").text)
    assert "Droits vérifiés jamais facturés : <strong>0,75</strong> pour un seuil de 0,5" in page
    assert "Vérifications aux droits ouverts</dt><dd>40</dd>" in page
    assert "(alerte seulement)" in page
    assert "Geler ce cabinet" in page
    assert "Geler ce compte" not in page  # a practice's alert: no account to freeze


def test_an_alert_freezes_its_account_with_a_recent_second_factor(world: World) -> None:
    actor = account_actor(world.platform, PHARMACIST)
    alert(world, actor, datetime.now(UTC))
    ops = world.signed_in(OPERATOR)
    page = ops.get("/ops/alertes").text
    assert "Geler ce compte" in page
    assert f'name="name" value="{actor}"' in page
    stale(world.platform)
    assert "Geler ce compte" not in ops.get("/ops/alertes").text
    assert "Confirmez d'abord votre identité" in ops.get("/ops/alertes").text
    step_up(world, ops, OPERATOR, "/ops/alertes")
    freeze = {"kind": "account", "name": actor, "reason": "Alerte du garde"}
    done = post(ops, "/ops/gel", freeze, "/ops/alertes")
    assert done.headers["location"] == "/ops/?ok=gel"  # type: ignore[attr-defined]
    (frozen,) = containment.in_force(world.platform)
    assert (frozen.kind, frozen.label) == ("account", f"account {actor.removeprefix('user:')}")


# Scoping -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"au": ""}, "au", "Indiquez la fin de la période"),
        ({"du": "29/02/2026"}, "du", "Indiquez le début de la période"),
        ({"au": "2020-01-01T00:00"}, "au", "La fin de la période doit venir après son début."),
        ({"comptes": ""}, "comptes", "Nommez au moins un compte"),
        ({"comptes": "personne@nulle.part"}, "comptes", "Un de ces comptes n'existe pas"),
        ({"comptes": "pas-un-compte"}, "comptes", "Un compte s'écrit par son adresse e-mail"),
        ({"professionnels": "759999999"}, "professionnels", "n'est celui d'aucun professionnel"),
        ({"adresses": "999.1.2.3/8"}, "adresses", "Une adresse IP ou un bloc CIDR"),
    ],
)
def test_the_scope_form_refuses_wrong_criteria_and_writes_nothing(
    world: World, changes: dict[str, str], field: str, message: str
) -> None:
    ops = world.signed_in(OPERATOR)
    answer = post(ops, "/ops/incidents", scope_form(world, **changes), "/ops/incidents")
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert message in html.unescape(answer.text)  # type: ignore[attr-defined]
    assert f'id="{field}-erreur"' in answer.text  # type: ignore[attr-defined]
    assert f'href="#{field}"' in answer.text  # type: ignore[attr-defined]  # the summary links it
    assert not incidents_written(world.platform)


def test_the_operator_scopes_an_account_and_prepares_the_notifications_after_a_step_up(
    world: World,
) -> None:
    ops = world.signed_in(SECURITY)
    page = scoped(world, ops)
    shown = ops.get(page + "?ok=perimetre")
    assert "Périmètre établi" in shown.text
    assert "Vérifié : les entrées" in shown.text
    assert "2 personnes lues (2 lectures)" in shown.text  # the unknown card read no one
    assert f'<th scope="row">{AMC}</th>' in shown.text
    assert "engagement, rate, status" in shown.text
    assert account_actor(world.platform, PHARMACIST) in shown.text  # the criteria, by id
    assert PHARMACIST not in shown.text
    listed = ops.get("/ops/incidents").text
    assert f'href="{page}"' in listed

    stale(world.platform)
    asked = post(ops, page + "/notifications", {"contact": "SOC"}, page)
    assert asked.status_code == 403  # type: ignore[attr-defined]
    assert "Confirmez d'abord votre identité" in asked.text  # type: ignore[attr-defined]
    assert not list(console.incidents_home(world.platform).glob("*/notification"))
    assert not events(world.platform, Tag.NOTIFICATION_PREPARED)

    step_up(world, ops, SECURITY, page)
    answer = post(ops, page + "/notifications", {"contact": "SOC Rempart"}, page)
    assert answer.headers["location"] == page + "?ok=notifications"  # type: ignore[attr-defined]
    shown = ops.get(page + "?ok=notifications")
    assert "Notifications préparées" in shown.text
    assert "intacts" in shown.text
    assert "lettres-art34-001.pdf" in shown.text
    prepared_events = events(world.platform, Tag.NOTIFICATION_PREPARED)
    assert len(prepared_events) == 2  # one per person whose identity was read
    assert {e.actor for e in prepared_events} == {account_actor(world.platform, SECURITY)}
    again = post(ops, page + "/notifications", {}, page)
    assert again.status_code == 409  # type: ignore[attr-defined]
    assert len(events(world.platform, Tag.NOTIFICATION_PREPARED)) == 2


def test_an_unknown_scope_is_not_found(world: World) -> None:
    ops = world.signed_in(OPERATOR)
    missing = "/ops/incidents/" + "0" * 32
    assert ops.get(missing).status_code == 404
    assert post(ops, missing + "/notifications", {}, "/ops/incidents").status_code == 404  # type: ignore[attr-defined]
    assert ops.get("/ops/incidents/..%2F..%2Fetc").status_code == 404


# The insurer's pack ------------------------------------------------------------------------------


def test_the_insurer_downloads_its_pack_and_each_download_is_on_the_record(
    world: World,
) -> None:
    page = prepared(world, world.signed_in(OPERATOR))
    scope_hex = page.rsplit("/", 1)[1]
    amc = world.signed_in(INSURER)
    notices = amc.get("/amc/incidents")
    assert notices.status_code == 200
    links = re.findall(r'href="(/amc/incidents/[^"]+)"', notices.text)
    assert sorted(links) == sorted(
        f"/amc/incidents/{scope_hex}/{code}"
        for code in ("lettres-001", "cnil", "attestation", "attestation-json", "publipostage")
    )
    actor = account_actor(world.platform, INSURER)
    read = sorted(str(e.beneficiary) for e in events(world.platform, Tag.NOTIFICATION_PREPARED))
    assert len(read) == 2
    listed = amc.get("/amc/acces").text
    counted = {p: listed.count(f"<code>{p[:12]}</code>") for p in read}
    for link in links:
        before = len(events(world.platform, Tag.NOTIFICATION_DOWNLOADED))
        answer = amc.get(link)
        assert answer.status_code == 200, link
        assert "attachment" in answer.headers["content-disposition"]
        downloads = events(world.platform, Tag.NOTIFICATION_DOWNLOADED)[before:]
        assert {(e.actor, e.tenant) for e in downloads} == {(actor, AMC)}
        if link.endswith(("/lettres-001", "/publipostage")):  # they name both people
            assert sorted(str(e.beneficiary) for e in downloads) == read, link
        else:  # counts and digests only: one event, no one named
            assert [e.beneficiary for e in downloads] == [None], link
    shown = amc.get("/amc/acces").text  # the insurer sees who was named in what it took
    for pseudonym in read:
        rows = shown.count(f"<code>{pseudonym[:12]}</code>")
        assert rows == counted[pseudonym] + 2  # the letters and the mailing file
    letters = amc.get(f"/amc/incidents/{scope_hex}/lettres-001")
    path = console.incidents_home(world.platform) / scope_hex / "letters.pdf"
    path.write_bytes(letters.content)
    text = pdf_text(path)
    assert all(p.last_name in text for p in READ)
    assert UNREAD.last_name not in text
    assert "last_name" in events(world.platform, Tag.NOTIFICATION_DOWNLOADED)[-1].fields


def test_another_insurer_and_paths_from_the_address_get_nothing(world: World) -> None:
    page = prepared(world, world.signed_in(OPERATOR))
    scope_hex = page.rsplit("/", 1)[1]
    other = world.signed_in(OTHER_INSURER)
    assert "Aucun incident ne concerne vos adhérents." in other.get("/amc/incidents").text
    for code in ("lettres-001", "cnil", "publipostage"):
        assert other.get(f"/amc/incidents/{scope_hex}/{code}").status_code == 404
    amc = world.signed_in(INSURER)
    attempts = [
        f"/amc/incidents/{scope_hex}/..%2F..%2F{scope_hex}%2Fscope.json",
        f"/amc/incidents/{scope_hex}/..%2Fsummary.json",
        f"/amc/incidents/{scope_hex}/%2e%2e%2fsummary.json",
        f"/amc/incidents/{scope_hex}/%252e%252e%252fsummary.json",
        f"/amc/incidents/{scope_hex}/%2e%2e",
        f"/amc/incidents/{scope_hex}/cnil-art33.pdf",
        f"/amc/incidents/{scope_hex}/lettres-000",
        f"/amc/incidents/{scope_hex}/lettres-002",
        f"/amc/incidents/{scope_hex}/lettres-1",
        f"/amc/incidents/{scope_hex}/scope.json",
        f"/amc/incidents/{scope_hex}/cnil%00",
        f"/amc/incidents/..%2F{scope_hex}/cnil",
        f"/amc/incidents/{'0' * 32}/cnil",
        "/amc/incidents/..%2F..%2F..%2Fetc%2Fpasswd/cnil",
    ]
    for attempt in attempts:
        answer = amc.get(attempt)
        assert answer.status_code == 404, attempt
        assert b"rempart-scope" not in answer.content
        assert b"%PDF" not in answer.content
    for dotted in (f"{scope_hex}/..", f"{scope_hex}/../../{scope_hex}/scope.json", "../.."):
        answer = amc.get(f"/amc/incidents/{dotted}")  # the client resolves the dots, as browsers do
        assert "content-disposition" not in answer.headers, dotted
        assert b"rempart-scope" not in answer.content
    assert not events(world.platform, Tag.NOTIFICATION_DOWNLOADED)
    assert amc.get(f"/amc/incidents/{scope_hex}/cnil").status_code == 200  # its own: yes


def test_no_address_of_the_incident_pages_holds_personal_data(world: World) -> None:
    ops = world.signed_in(OPERATOR)
    alert(world, account_actor(world.platform, PHARMACIST), datetime.now(UTC))
    answers = [ops.get("/ops/alertes"), ops.get("/ops/incidents")]
    answers.append(post(ops, "/ops/incidents", scope_form(world), "/ops/incidents"))  # type: ignore[arg-type]
    page = answers[-1].headers["location"].split("?")[0]
    answers.append(post(ops, page + "/notifications", {}, page))  # type: ignore[arg-type]
    answers += [ops.get(page), ops.get("/ops/incidents")]
    answers.append(post(ops, "/ops/incidents", scope_form(world, au=""), "/ops/incidents"))  # type: ignore[arg-type]
    amc = world.signed_in(INSURER)
    answers.append(amc.get("/amc/incidents"))
    seen: list[str] = []
    for answer in answers:
        seen += [str(answer.url), answer.headers.get("location", "")]
        seen += re.findall(r'(?:href|action|hx-post|src)="([^"]+)"', answer.text)
    personal = [PHARMACIST, "@", *(p.last_name for p in READ), *(p.member_number for p in READ)]
    leaks = [url for url in seen for value in personal if value in url]
    assert not leaks
    assert any(url.startswith("/amc/incidents/") for url in seen)


# Preparing the packs once, whatever happens -----------------------------------------------------


def leftovers(platform: Platform) -> list[str]:
    """What a run of ``notify`` may leave beside the packs: its lock, its unfinished folder."""
    home = console.incidents_home(platform)
    return sorted(p.name for p in home.glob("*/.*"))


def test_a_second_request_while_the_packs_are_prepared_is_refused_and_reads_no_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = world.signed_in(SECURITY)
    page = scoped(world, ops)
    inside, release = threading.Event(), threading.Event()
    identify = notification._identify

    def slow(*args: Any, **kwargs: Any) -> Any:  # the first run, held while it reads identities
        inside.set()
        assert release.wait(30)
        return identify(*args, **kwargs)

    monkeypatch.setattr(notification, "_identify", slow)
    token = csrf_of(ops.get(page).text)
    first: list[int] = []
    running = threading.Thread(
        target=lambda: first.append(
            ops.post(
                page + "/notifications",
                data={"contact": "SOC", "csrf": token},
                follow_redirects=False,
            ).status_code
        )
    )
    running.start()
    try:
        assert inside.wait(30)
        other = world.signed_in(OPERATOR)  # a double click, or a colleague
        second = post(other, page + "/notifications", {"contact": "SOC"}, page)
        assert second.status_code == 409  # type: ignore[attr-defined]
        assert "being prepared" in second.text  # type: ignore[attr-defined]
        assert not (console.incidents_home(world.platform) / page[-32:] / "notification").exists()
    finally:
        release.set()
        running.join(60)
    assert first == [303]
    assert len(events(world.platform, Tag.NOTIFICATION_PREPARED)) == 2  # each person read once
    assert leftovers(world.platform) == []
    again = post(ops, page + "/notifications", {}, page)
    assert again.status_code == 409  # type: ignore[attr-defined]
    assert "already prepared" in again.text  # type: ignore[attr-defined]


def test_a_preparation_failing_part_way_leaves_no_pack_and_can_be_run_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = world.signed_in(SECURITY)
    page = scoped(world, ops)
    scope_id = uuid.UUID(page[-32:])
    folder = console.incidents_home(world.platform) / scope_id.hex

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError("no space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(notification, "_write_pack", full)
        with pytest.raises(OSError, match="no space"):
            console.prepare_notifications(world.platform, scope_id, "user:test")
    assert not (folder / "notification").exists()
    assert leftovers(world.platform) == []
    assert console.scope_view(world.platform, scope_id).notified is None
    assert "Préparer les notifications" in ops.get(page).text  # the form, and it works:
    assert post(ops, page + "/notifications", {}, page).status_code == 303  # type: ignore[attr-defined]
    assert (folder / "notification" / "summary.json").is_file()
    assert console.packs_for(world.platform, AMC)


def test_half_a_pack_left_by_an_older_version_is_replaced(world: World) -> None:
    ops = world.signed_in(SECURITY)
    page = scoped(world, ops)
    half = console.incidents_home(world.platform) / page[-32:] / "notification" / AMC
    half.mkdir(parents=True)
    (half / "lettres-art34-001.pdf").write_bytes(b"%PDF-1.7 truncated")
    assert post(ops, page + "/notifications", {}, page).status_code == 303  # type: ignore[attr-defined]
    assert (half / "attestation.json").is_file()


# One bad folder hides itself, not the others -------------------------------------------------


def test_an_unreadable_folder_does_not_break_the_lists(world: World) -> None:
    page = prepared(world, world.signed_in(OPERATOR))
    home = console.incidents_home(world.platform)
    good = page[-32:]
    not_json, incomplete, no_summary, no_attestation = (uuid.uuid4().hex for _ in range(4))
    for name in (not_json, incomplete, no_summary, no_attestation):
        shutil.copytree(home / good, home / name)
    (home / not_json / "scope.json").write_text('{"format": "rempart-sco')  # cut short
    (home / incomplete / "scope.json").write_text('{"format": "rempart-scope/1"}')
    (home / no_summary / "notification" / "summary.json").write_text("{")
    (home / no_attestation / "notification" / AMC / "attestation.json").unlink()
    ops = world.signed_in(OPERATOR)
    listed = ops.get("/ops/incidents")
    assert listed.status_code == 200
    for name in (good, no_summary, no_attestation):
        assert f'href="/ops/incidents/{name}"' in listed.text
    for name in (not_json, incomplete):
        assert name not in listed.text
        broken = ops.get(f"/ops/incidents/{name}")
        assert broken.status_code == 422
        assert str(home) not in broken.text  # no server path
    notices = world.signed_in(INSURER).get("/amc/incidents")
    assert notices.status_code == 200
    assert f"/amc/incidents/{good}/cnil" in notices.text
    assert no_attestation not in notices.text


def test_the_services_name_no_server_path_in_their_refusals(world: World, tmp_path: Path) -> None:
    page = prepared(world, world.signed_in(OPERATOR))
    folder = console.incidents_home(world.platform) / page[-32:]
    with pytest.raises(InvalidInput) as full:
        notification.notify(world.platform, folder, folder)  # the scope's folder: not empty
    with pytest.raises(NotFound) as missing:
        scoping.load_scope(tmp_path)
    (tmp_path / "scope.json").write_text("not json")
    with pytest.raises(InvalidInput) as garbled:
        scoping.load_scope(tmp_path)
    for refused in (full, missing, garbled):
        assert str(tmp_path) not in refused.value.detail
        assert str(folder) not in refused.value.detail


def test_a_file_rewritten_is_whole_or_untouched(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    scoping.write_private(target, '{"old": true}\n')
    with pytest.raises(UnicodeEncodeError):
        scoping.write_private(target, '{"new": "' + "x" * 100_000 + '\udc80"}')  # fails mid-way
    assert target.read_text() == '{"old": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    assert target.stat().st_mode & 0o777 == 0o600


# Criteria and times ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("criteria", "field"),
    [
        ({"professionals": ["759999999"]}, "professional"),
        ({"accounts": ["personne@nulle.part"]}, "account"),
        ({"accounts": [f"user:{uuid.UUID(int=7)}"]}, "account"),
        ({"accounts": [f"client:{uuid.UUID(int=7)}"]}, "account"),
    ],
)
def test_a_name_that_matches_nothing_says_which_criterion(
    world: World, criteria: dict[str, list[str]], field: str
) -> None:
    with pytest.raises(scoping.UnknownName) as unknown:
        scoping.resolve_criteria(world.platform, world.start, world.end, **criteria)
    assert unknown.value.field == field


def test_an_account_is_named_by_user_and_its_id_in_both_services() -> None:
    known = uuid.uuid4()
    assert containment.user_id(f"user:{known}") == known
    for other in ("user:", "user:pas-un-id", str(known), "client:" + known.hex, "a@b.example"):
        assert containment.user_id(other) is None


@pytest.mark.parametrize(
    ("du", "au"),
    [
        ("2026-03-29T02:30", "2026-03-29T05:00"),  # skipped: 2 h becomes 3 h
        ("2026-10-25T01:00", "2026-10-25T02:30"),  # twice: 3 h becomes 2 h
    ],
)
def test_a_time_of_the_clock_change_is_refused_on_its_field(world: World, du: str, au: str) -> None:
    ops = world.signed_in(OPERATOR)
    answer = post(ops, "/ops/incidents", scope_form(world, du=du, au=au), "/ops/incidents")
    assert answer.status_code == 422  # type: ignore[attr-defined]
    text = html.unescape(answer.text)  # type: ignore[attr-defined]
    field = "du" if du.endswith("02:30") else "au"
    assert f'id="{field}-erreur"' in text
    assert "changement d'heure" in text
    assert not incidents_written(world.platform)
    fine = scope_form(world, du="2026-03-29T01:30", au="2026-10-25T03:30")
    assert post(ops, "/ops/incidents", fine, "/ops/incidents").status_code == 303  # type: ignore[attr-defined]
