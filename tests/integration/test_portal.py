"""The portals without a browser (as with JavaScript off): signing in, enrolment, sessions, form
tokens, headers, what addresses hold, containment from the console, and each role's main flow."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from rempart.db import transaction
from rempart.identity import clients, totp
from rempart.identity.models import AuthSession, User
from rempart.identity.services import add_user
from rempart.incidents import containment
from rempart.platform import Platform
from rempart.portal import amc as amc_pages
from rempart.portal.import_jobs import ImportJob, ImportJobs
from rempart.portal.security import CSP
from rempart.registry import demo_cli, services
from rempart.registry.demo import TENANTS, demo_files
from rempart.registry.member_import import ImportOptions, import_members
from rempart.registry.models import Professional
from tests.support import (
    AMC,
    OPTICIAN_AM,
    OTHER_AMC,
    PASSWORD,
    PHARMACIST_AM,
    Portals,
    add_account,
    add_insurer,
    add_professionals,
    csrf_of,
    member_file,
    person,
    portal_sign_in,
    portals,
    set_rows,
    today,
)

PATIENT = person(1)
ACCOUNTS = {
    "professional": ("comptoir@pharmacie.example", {"am_number": PHARMACIST_AM}),
    "amc": ("gestion@mutuelle.example", {"amc_number": AMC}),
    "operator": ("exploitation@rempart.example", {}),
    "security": ("rssi@rempart.example", {}),
}
OPTICIAN = "accueil@optique.example"


@pytest.fixture
def portal(platform: Platform) -> Iterator[Portals]:
    add_insurer(platform)
    add_insurer(platform, OTHER_AMC)
    add_professionals(platform)
    people = member_file([PATIENT, person(2)])
    assert import_members(platform, AMC, io.BytesIO(people), ImportOptions()).committed
    accounts = {email: (role, binding) for role, (email, binding) in ACCOUNTS.items()}
    accounts[OPTICIAN] = ("professional", {"am_number": OPTICIAN_AM})
    with portals(platform, accounts) as opened:
        yield opened


def email_of(role: str) -> str:
    return ACCOUNTS[role][0]


def card(**changes: str) -> dict[str, str]:
    values = {
        "amc_number": AMC,
        "member_number": PATIENT.member_number,
        "birth_date": PATIENT.birth_date,
        "birth_rank": "1",
        "domain": "PHAR",
        "care_date": today().isoformat(),
    }
    return values | changes


def post(client: TestClient, path: str, data: dict[str, str], page: str | None = None) -> object:
    """POST a form the way a browser does: with the token of the page it came from."""
    token = csrf_of(client.get(page or path).text)
    return client.post(path, data={**data, "csrf": token}, follow_redirects=False)


# Signing in --------------------------------------------------------------------------------------


def test_each_role_signs_in_with_a_password_then_a_code_and_lands_in_its_portal(
    portal: Portals,
) -> None:
    homes = {"professional": "/pro/", "amc": "/amc/", "operator": "/ops/", "security": "/ops/"}
    for role, home in homes.items():
        client = portal.client()
        assert (
            portal_sign_in(client, portal.platform, email_of(role), portal.secrets[email_of(role)])
            == home
        )
        page = client.get(home)
        assert page.status_code == 200
        assert client.get("/", follow_redirects=False).headers["location"] == home


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(portal: Portals) -> None:
    client = portal.client()
    token = csrf_of(client.get("/login").text)
    wrong = client.post(
        "/login", data={"email": email_of("amc"), "password": "pas le bon mot", "csrf": token}
    )
    unknown = client.post(
        "/login", data={"email": "personne@nulle.part", "password": PASSWORD, "csrf": token}
    )
    assert wrong.status_code == unknown.status_code == 401
    # The same page, but for the address typed, given back to be corrected.
    assert _main(wrong.text).replace(email_of("amc"), "") == _main(unknown.text).replace(
        "personne@nulle.part", ""
    )
    assert "mfa" not in str(client.cookies)


def test_a_password_alone_opens_nothing_and_a_wrong_code_is_refused(portal: Portals) -> None:
    client = portal.client()
    token = csrf_of(client.get("/login").text)
    email = email_of("professional")
    client.post("/login", data={"email": email, "password": PASSWORD, "csrf": token})
    assert client.get("/pro/", follow_redirects=False).headers["location"] == "/login"
    answer = client.post("/login/code", data={"code": "000000", "csrf": token})
    assert answer.status_code == 401
    assert "Code refusé" in answer.text


def test_logout_ends_the_session(portal: Portals) -> None:
    client = portal.signed_in(email_of("amc"))
    cookie = client.cookies["rempart_session"]
    answer = post(client, "/logout", {}, page="/amc/")
    assert answer.headers["location"] == "/login?raison=deconnexion"  # type: ignore[attr-defined]
    stolen = portal.client()
    stolen.cookies.set("rempart_session", cookie)
    assert stolen.get("/amc/", follow_redirects=False).headers["location"].startswith("/login")


def test_an_expired_session_goes_back_to_the_sign_in_page_with_a_message(portal: Portals) -> None:
    client = portal.signed_in(email_of("professional"))
    with transaction(portal.platform.sessions) as session:
        long_ago = datetime.now(UTC) - timedelta(hours=2)
        session.execute(update(AuthSession).values(last_seen_at=long_ago))
    answer = client.get("/pro/calcul", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?raison=expiree"
    assert "rempart_session=" in answer.headers["set-cookie"]  # the stale cookie is removed
    assert "expiré" in client.get("/login?raison=expiree").text
    htmx = portal.signed_in(email_of("professional"))
    with transaction(portal.platform.sessions) as session:
        session.execute(update(AuthSession).values(revoked_at=datetime.now(UTC)))
    answer = htmx.get("/pro/", headers={"HX-Request": "true"}, follow_redirects=False)
    assert answer.headers["hx-redirect"] == "/login?raison=expiree"


def test_billing_software_tokens_do_not_open_the_portal(portal: Portals) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    view = clients.register_client(
        portal.platform, clients.professional_id_of(portal.platform, PHARMACIST_AM), "lgo", pem, "t"
    )
    claims = {
        "iss": str(view.client_id),
        "sub": str(view.client_id),
        "aud": portal.platform.settings.public_url + "/api/v1/auth/token",
        "exp": int(datetime.now(UTC).timestamp()) + 30,
        "jti": "un",
    }
    client = portal.client()
    token = client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": clients.ASSERTION_TYPE,
            "client_assertion": jwt.encode(claims, key, algorithm="EdDSA"),
        },
    ).json()["access_token"]
    client.cookies.set("rempart_session", token)
    assert client.get("/pro/", follow_redirects=False).status_code == 303


# Enrolment ---------------------------------------------------------------------------------------


def _enrol_page(client: TestClient, code: str) -> tuple[str, str]:
    token = csrf_of(client.get("/enrol").text)
    page = client.post("/enrol", data={"code": code, "csrf": token})
    assert page.status_code == 200, page.text
    secret = re.search(r'name="secret" value="([A-Z2-7]+)"', page.text)
    assert secret
    return secret.group(1), csrf_of(page.text)


def test_enrolment_sets_the_password_and_totp_then_the_code_is_spent(portal: Portals) -> None:
    created = add_user(
        portal.platform, "amc", "nouvelle@mutuelle.example", actor="t", amc_number=AMC
    )
    assert created.enrolment_code
    client = portal.client()
    secret, token = _enrol_page(client, created.enrolment_code)
    code = totp.code_at(secret, datetime.now(UTC))
    form = {"code": created.enrolment_code, "secret": secret, "csrf": token, "totp": code}
    weak = client.post(
        "/enrol/finaliser", data=form | {"password": "azertyuiop", "password2": "azertyuiop"}
    )
    assert weak.status_code == 422
    assert 'aria-invalid="true"' in weak.text
    assert "12 caractères" in weak.text
    assert 'aria-describedby="password-aide password-erreur"' in weak.text
    mismatch = client.post("/enrol/finaliser", data=form | {"password": PASSWORD, "password2": "x"})
    assert mismatch.status_code == 422
    wrong = client.post(
        "/enrol/finaliser",
        data=form | {"password": PASSWORD, "password2": PASSWORD, "totp": "000000"},
    )
    assert wrong.status_code == 422
    done = client.post(
        "/enrol/finaliser",
        data=form | {"password": PASSWORD, "password2": PASSWORD},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/login?raison=active"
    again = client.post("/enrol", data={"code": created.enrolment_code, "csrf": token})
    assert again.status_code == 422  # spent
    portal.secrets["nouvelle@mutuelle.example"] = secret
    set_rows(portal.platform, User, totp_last_step=None)
    assert portal.signed_in("nouvelle@mutuelle.example").get("/amc/").status_code == 200


def test_the_api_enrols_the_same_way(portal: Portals) -> None:
    created = add_user(portal.platform, "operator", "veille@rempart.example", actor="t")
    assert created.enrolment_code
    secret = totp.new_secret()
    body = {
        "enrolment_code": created.enrolment_code,
        "password": PASSWORD,
        "totp_secret": secret,
        "totp_code": totp.code_at(secret, datetime.now(UTC)),
    }
    client = portal.client()
    assert client.post("/api/v1/auth/enrol", json=body).status_code == 204
    again = client.post("/api/v1/auth/enrol", json=body)
    assert again.status_code == 422
    assert again.json()["field"] == "code"


# New devices, and "this wasn't me" ---------------------------------------------------------------


def test_a_login_from_a_new_device_is_shown_and_this_wasnt_me_freezes_the_account(
    portal: Portals,
) -> None:
    email = email_of("professional")
    usual = portal.signed_in(email, user_agent="Firefox du comptoir")
    assert "nouvel appareil" not in usual.get("/pro/").text  # a first login is no news
    intruder = portal.signed_in(email, user_agent="Navigateur inconnu")
    assert "nouvel appareil" in intruder.get("/pro/").text  # the intruder's own login: new
    usual = portal.signed_in(email, user_agent="Firefox du comptoir")
    page = usual.get("/pro/").text
    assert "nouvel appareil" in page
    assert "Navigateur inconnu" in page
    assert "Ce n&#39;était pas moi" in page or "Ce n'était pas moi" in page
    frozen = post(usual, "/compte/pas-moi", {}, page="/pro/")
    assert frozen.status_code == 200  # type: ignore[attr-defined]
    assert "Votre compte est gelé" in frozen.text  # type: ignore[attr-defined]
    [freeze] = containment.in_force(portal.platform)
    assert (freeze.kind, freeze.reason) == ("account", "signalé par la personne")
    assert intruder.get("/pro/", follow_redirects=False).status_code == 303  # its session ended


def test_the_notice_is_dismissed_when_the_logins_were_mine(portal: Portals) -> None:
    email = email_of("amc")
    portal.signed_in(email, user_agent="Ordinateur du bureau")
    laptop = portal.signed_in(email, user_agent="Ordinateur portable")
    assert "nouvel appareil" in laptop.get("/amc/").text
    post(laptop, "/compte/appareils/reconnus", {}, page="/amc/")
    assert "nouvel appareil" not in laptop.get("/amc/").text
    assert not containment.in_force(portal.platform)


# Form tokens, headers, addresses ------------------------------------------------------------------


def test_a_form_without_its_token_or_with_another_sessions_is_refused(portal: Portals) -> None:
    operator = portal.signed_in(email_of("operator"))
    other = portal.signed_in(email_of("security"))
    freeze = {"kind": "platform", "reason": "coupure"}
    assert operator.post("/ops/gel", data=freeze).status_code == 403
    foreign = csrf_of(other.get("/ops/").text)
    refused = operator.post("/ops/gel", data=freeze | {"csrf": foreign})
    assert refused.status_code == 403
    assert "Ce formulaire a expiré" in refused.text
    assert not containment.in_force(portal.platform)  # nothing happened
    anonymous = portal.client()
    assert anonymous.post("/login", data={"email": "a@b.fr", "password": "x"}).status_code == 403
    htmx = operator.post(
        "/ops/gel",
        data=freeze,
        headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(operator.get("/ops/").text)},
        follow_redirects=False,
    )
    assert htmx.status_code == 303  # the htmx header stands for the field
    assert containment.in_force(portal.platform)


def test_every_portal_answer_carries_the_security_headers(portal: Portals) -> None:
    answers = [portal.client().get(path) for path in ("/login", "/enrol", "/nulle-part/pro")]
    for role, pages in {
        "professional": ("/pro/", "/pro/calcul", "/pro/logiciels", "/pro/inconnue"),
        "amc": ("/amc/", "/amc/garanties", "/amc/acces"),
        "operator": ("/ops/", "/ops/integrite", "/ops/cles", "/amc/"),
    }.items():
        client = portal.signed_in(email_of(role))
        answers += [client.get(path) for path in pages]
    assert {a.status_code for a in answers} >= {200, 403, 404}
    for answer in answers:
        if answer.request.url.path.startswith("/nulle-part"):
            continue  # not a portal address: the API's 404
        assert answer.headers["content-security-policy"] == CSP, answer.request.url
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cache-control"] == "no-store"
        assert "<script>" not in answer.text
        assert " style=" not in answer.text
    static = portal.client().get("/static/portal.css")
    assert static.status_code == 200
    assert static.headers["content-security-policy"] == CSP
    assert "no-store" not in static.headers.get("cache-control", "")


def test_the_session_cookie_is_httponly_strict_and_secure_over_https(portal: Portals) -> None:
    client = portal.client()
    portal_sign_in(client, portal.platform, email_of("amc"), portal.secrets[email_of("amc")])
    https = TestClient(portal.app, base_url="https://rempart.example")
    set_rows(portal.platform, User, totp_last_step=None)
    token = csrf_of(https.get("/login").text)
    https.post("/login", data={"email": email_of("amc"), "password": PASSWORD, "csrf": token})
    code = totp.code_at(portal.secrets[email_of("amc")], datetime.now(UTC))
    answer = https.post("/login/code", data={"code": code, "csrf": token}, follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("__Host-rempart_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" in cookie
    assert "Path=/" in cookie
    assert "Domain" not in cookie
    assert https.get("/amc/").status_code == 200


def test_no_address_of_the_portals_holds_personal_data(portal: Portals) -> None:
    seen: list[str] = []
    pro = portal.signed_in(email_of("professional"))
    pages = [pro.get("/pro/"), post(pro, "/pro/droits", card(), page="/pro/")]
    amc = portal.signed_in(email_of("amc"))
    upload = member_file([PATIENT, person(7).but(nir="199999999999999")])
    token = csrf_of(amc.get("/amc/").text)
    pages.append(
        amc.post(
            "/amc/imports",
            data={"csrf": token, "mode": "delta", "partiel": "oui"},
            files={"fichier": ("adherents.csv", upload, "text/csv")},
        )
    )
    pages.append(amc.get("/amc/acces"))
    ops = portal.signed_in(email_of("operator"))
    freeze = {"kind": "account", "name": email_of("professional"), "reason": "enquête"}
    pages += [post(ops, "/ops/gel", freeze, page="/ops/"), ops.get("/ops/")]
    for answer in pages:
        seen.append(str(answer.url))  # type: ignore[attr-defined]
        seen += [answer.headers.get("location", "")]  # type: ignore[attr-defined]
        seen += re.findall(r'(?:href|action|hx-post|src)="([^"]+)"', answer.text)  # type: ignore[attr-defined]
    personal = (
        PATIENT.member_number,
        PATIENT.birth_date,
        PATIENT.nir,
        PATIENT.last_name,
        person(7).member_number,
        email_of("professional"),
        "@",
    )
    leaks = [url for url in seen for value in personal if value in url]
    assert not leaks
    assert any("/amc/imports/" in url for url in seen)  # the report links were looked at


# Each portal's flow ------------------------------------------------------------------------------


def test_a_professional_checks_rights_and_calculates_without_javascript(portal: Portals) -> None:
    pro = portal.signed_in(email_of("professional"))
    answer = post(pro, "/pro/droits", card(), page="/pro/")
    assert answer.status_code == 200  # type: ignore[attr-defined]
    assert "Droits ouverts" in answer.text  # type: ignore[attr-defined]
    assert re.search(r'class="engagement">E[0-9A-Z]+<', answer.text)  # type: ignore[attr-defined]
    assert PATIENT.last_name not in answer.text  # type: ignore[attr-defined]
    closed = post(pro, "/pro/droits", card(birth_rank="2"), page="/pro/")
    assert "Droits fermés" in closed.text  # type: ignore[attr-defined]
    invalid = post(pro, "/pro/droits", card(amc_number="?", birth_rank="12"), page="/pro/")
    assert invalid.status_code == 422  # type: ignore[attr-defined]
    for field in ("amc_number", "birth_rank"):
        assert f'id="{field}-erreur"' in invalid.text  # type: ignore[attr-defined]
        assert f'href="#{field}"' in invalid.text  # type: ignore[attr-defined]
    forbidden = post(pro, "/pro/droits", card(domain="OPTI"), page="/pro/")
    assert forbidden.status_code == 403  # type: ignore[attr-defined]
    day = today().isoformat()
    line = {"act_code": "C", "domain": "PHAR", "care_date": day, "quantity": "1"}
    lines = {f"lines-0-{k}": v for k, v in line.items()} | {
        "lines-0-billed": "10,00",
        "lines-0-br": "10,00",
        "lines-0-amo_rate": "30",
        "lines-2-billed": "abc",  # an invalid third row, the second left empty
        "lines-2-act_code": "C",
        "lines-2-br": "1",
        "lines-2-amo_rate": "30",
        "lines-2-quantity": "1",
        "lines-2-care_date": day,
        "lines-2-domain": "PHAR",
    }
    wrong = post(pro, "/pro/calcul", card() | lines)
    assert wrong.status_code == 422  # type: ignore[attr-defined]
    assert 'id="lines-2-billed-erreur"' in wrong.text  # type: ignore[attr-defined]
    lines = {k: v for k, v in lines.items() if not k.startswith("lines-2")}
    computed = post(pro, "/pro/calcul", card() | lines)
    assert computed.status_code == 200  # type: ignore[attr-defined]
    assert "7,00" in computed.text  # type: ignore[attr-defined]


def test_a_professional_cannot_reach_another_professionals_software_or_an_insurers_pages(
    portal: Portals,
) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    optician = portal.signed_in(OPTICIAN)
    assert post(optician, "/pro/logiciels", {"name": "LGO", "public_key": pem}).status_code == 303  # type: ignore[attr-defined]
    [theirs] = clients.list_clients(
        portal.platform, clients.professional_id_of(portal.platform, OPTICIAN_AM)
    )
    pro = portal.signed_in(email_of("professional"))
    assert str(theirs.client_id) not in pro.get("/pro/logiciels").text
    answer = post(pro, f"/pro/logiciels/{theirs.client_id}/revoquer", {}, page="/pro/logiciels")
    assert answer.status_code == 404  # type: ignore[attr-defined]
    [still] = clients.list_clients(
        portal.platform, clients.professional_id_of(portal.platform, OPTICIAN_AM)
    )
    assert not still.revoked
    for path in ("/amc/", "/amc/acces", "/amc/garanties", "/ops/", "/ops/cles"):
        refused = pro.get(path)
        assert refused.status_code == 403, path
        assert "Refusé" in refused.text


def test_an_insurer_imports_a_file_reads_its_report_and_only_its_own(portal: Portals) -> None:
    amc = portal.signed_in(email_of("amc"))
    bad = person(8).but(nir="199999999999999")
    upload = member_file([PATIENT, person(9), bad])
    token = csrf_of(amc.get("/amc/").text)
    refused = amc.post(
        "/amc/imports",
        data={"csrf": token, "mode": "delta"},
        files={"fichier": ("adherents.csv", upload, "text/csv")},
    )
    assert refused.status_code == 422
    assert "Fichier refusé" in refused.text
    assert bad.nir not in refused.text
    partial = amc.post(
        "/amc/imports",
        data={"csrf": token, "mode": "delta", "partiel": "oui"},
        files={"fichier": ("adherents.csv", upload, "text/csv")},
    )
    assert partial.status_code == 200
    links = re.findall(r'href="(/amc/imports/[^"]+)"', partial.text)
    assert len(links) == 2
    errors = amc.get(links[0])
    assert errors.status_code == 200
    assert bad.nir not in errors.text
    assert "nir" in errors.text
    quarantine = amc.get(links[1])
    assert bad.nir in quarantine.text
    assert quarantine.headers["cache-control"] == "no-store"
    other = portal.client()
    secret = add_account(portal.platform, "amc", "gestion@autre.example", amc_number=OTHER_AMC)
    portal.secrets["gestion@autre.example"] = secret
    other = portal.signed_in("gestion@autre.example")
    assert other.get(links[1]).status_code == 404  # another insurer's quarantine
    events = amc.get("/amc/acces").text
    assert "Lecture d&#39;identité" in events or "Lecture d'identité" in events  # the download


def test_a_long_import_shows_its_progress_then_its_report_to_its_insurer_only(
    portal: Portals, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(amc_pages, "IMPORT_WAIT_SECONDS", 0.0)  # every file is "long"
    amc = portal.signed_in(email_of("amc"))
    token = csrf_of(amc.get("/amc/").text)
    upload = member_file([person(n) for n in range(10, 400)])
    sent = amc.post(
        "/amc/imports",
        data={"csrf": token, "mode": "delta"},
        files={"fichier": ("adherents.csv", upload, "text/csv")},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    where = sent.headers["location"]
    assert re.fullmatch(r"/amc/imports/[0-9a-f-]{36}", where)
    job = portal.app.state.import_jobs.get(AMC, uuid.UUID(where.rsplit("/", 1)[1]))
    assert job.done.wait(60)
    folder = portal.platform.settings.home / "imports" / "portal" / AMC / job.id.hex
    assert not (folder / "upload.csv").exists()  # the copy of the members' file is gone
    report = amc.get(where)
    assert report.status_code == 200
    assert "Fichier importé" in report.text
    assert re.search(r"<dt>Bénéficiaires ajoutés</dt><dd>390</dd>", report.text)
    secret = add_account(portal.platform, "amc", "gestion@autre.example", amc_number=OTHER_AMC)
    portal.secrets["gestion@autre.example"] = secret
    assert portal.signed_in("gestion@autre.example").get(where).status_code == 404


def test_an_import_in_progress_says_how_far_it_is_and_holds_off_another(portal: Portals) -> None:
    amc = portal.signed_in(email_of("amc"))
    jobs: ImportJobs = portal.app.state.import_jobs
    running = ImportJob(uuid.uuid4(), AMC, size=1000, read=420)
    jobs._jobs[running.id] = running  # as the thread reading a file leaves it midway
    page = amc.get(f"/amc/imports/{running.id}")
    assert page.status_code == 200
    assert '<progress id="avancement" max="100" value="42"' in page.text
    assert f'hx-get="/amc/imports/{running.id}" hx-trigger="every 1s"' in page.text
    token = csrf_of(amc.get("/amc/").text)
    second = amc.post(
        "/amc/imports",
        data={"csrf": token, "mode": "delta"},
        files={"fichier": ("adherents.csv", member_file([person(30)]), "text/csv")},
    )
    assert second.status_code == 409
    assert "déjà en cours" in second.text
    assert not (portal.platform.settings.home / "imports" / "portal" / AMC).exists()


def test_an_insurer_reads_the_access_events_about_its_members_page_by_page(
    portal: Portals,
) -> None:
    pro = portal.signed_in(email_of("professional"))
    for _ in range(3):
        post(pro, "/pro/droits", card(), page="/pro/")
    amc = portal.signed_in(email_of("amc"))
    page = amc.get("/amc/acces").text
    assert page.count("Vérification de droits") == 3
    assert PHARMACIST_AM in page
    amc_pages.EVENTS_PER_PAGE, saved = 2, amc_pages.EVENTS_PER_PAGE
    try:
        first = amc.get("/amc/acces").text
        older = re.search(r'href="/amc/acces\?avant=(\d+)"', first)
        assert older
        second = amc.get(f"/amc/acces?avant={older.group(1)}").text
        assert second.count("Vérification de droits") == 1
        assert "avant=" not in second.split("<footer")[0].split("</table>")[1]
    finally:
        amc_pages.EVENTS_PER_PAGE = saved
    other = add_account(portal.platform, "amc", "gestion@autre.example", amc_number=OTHER_AMC)
    portal.secrets["gestion@autre.example"] = other
    theirs = portal.signed_in("gestion@autre.example").get("/amc/acces").text
    assert "Vérification de droits" not in theirs  # only their own members' events
    assert "Création de compte" in theirs


def test_an_insurer_loads_a_plan_version(portal: Portals) -> None:
    amc = portal.signed_in(email_of("amc"))
    plan = (
        b'{"code": "PLUS", "name": "Plus", "responsible": true, "valid_from": "2026-01-01",'
        b' "valid_to": null, "guarantees": {"PHAR": {"br_total_pct": 100}}}'
    )
    token = csrf_of(amc.get("/amc/garanties").text)
    answer = amc.post(
        "/amc/garanties",
        data={"csrf": token},
        files={"fichier": ("plus.json", plan, "application/json")},
    )
    assert answer.status_code == 200
    assert "PLUS" in answer.text
    assert "chargée" in answer.text
    broken = amc.post(
        "/amc/garanties",
        data={"csrf": token},
        files={"fichier": ("x.json", b"{}", "application/json")},
    )
    assert broken.status_code == 422


def test_freezing_needs_a_recent_second_factor(portal: Portals) -> None:
    email = email_of("operator")
    ops = portal.signed_in(email)
    with transaction(portal.platform.sessions) as session:
        stale = datetime.now(UTC) - timedelta(minutes=11)
        session.execute(update(AuthSession).values(created_at=stale))
    freeze = {"kind": "tenant", "name": AMC, "reason": "fuite chez l'assureur"}
    asked = post(ops, "/ops/gel", freeze, page="/ops/")
    assert asked.status_code == 403  # type: ignore[attr-defined]
    assert "Confirmez d'abord votre identité" in asked.text  # type: ignore[attr-defined]
    assert not containment.in_force(portal.platform)
    wrong = post(ops, "/compte/confirmer", {"code": "000000", "retour": "/ops/"}, page="/ops/")
    assert wrong.status_code == 422  # type: ignore[attr-defined]
    set_rows(portal.platform, User, totp_last_step=None)  # the sign-in spent this step's code
    code = totp.code_at(portal.secrets[email], datetime.now(UTC))
    back = post(ops, "/compte/confirmer", {"code": code, "retour": "/ops/"}, page="/ops/")
    assert back.headers["location"] == "/ops/"  # type: ignore[attr-defined]
    done = post(ops, "/ops/gel", freeze, page="/ops/")
    assert done.headers["location"] == "/ops/?ok=gel"  # type: ignore[attr-defined]
    assert [f.kind for f in containment.in_force(portal.platform)] == ["tenant"]
    lifted = post(ops, "/ops/degel", {"unfreeze_kind": "tenant", "unfreeze_name": AMC}, "/ops/")
    assert lifted.headers["location"] == "/ops/?ok=degel"  # type: ignore[attr-defined]
    assert not containment.in_force(portal.platform)


def test_the_step_up_never_redirects_elsewhere(portal: Portals) -> None:
    email = email_of("security")
    ops = portal.signed_in(email)
    set_rows(portal.platform, User, totp_last_step=None)
    code = totp.code_at(portal.secrets[email], datetime.now(UTC))
    back = post(ops, "/compte/confirmer", {"code": code, "retour": "//evil.example/"}, "/ops/")
    assert back.headers["location"] == "/ops/"  # type: ignore[attr-defined]


def test_the_console_verifies_integrity_and_shows_the_keys(portal: Portals) -> None:
    ops = portal.signed_in(email_of("security"))
    report = post(ops, "/ops/integrite", {})
    assert report.status_code == 200  # type: ignore[attr-defined]
    assert "Intact : aucune altération" in report.text  # type: ignore[attr-defined]
    keys = ops.get("/ops/cles").text
    assert "plateforme" in keys
    assert AMC in keys
    assert OTHER_AMC in keys
    with portal.platform.sessions() as session:
        sealed = sum(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Professional, User)
        )
    platform_row = re.search(r">plateforme<.*?</tr>", keys, re.S)
    assert platform_row is not None
    # Under the platform's key: the professionals' IBANs and the accounts' addresses.
    assert f"v1 : {sealed}<" in platform_row.group(0)


def _main(html: str) -> str:
    return html.split("<main", 1)[1].split("</main>", 1)[0].replace(csrf_of(html), "")


def test_the_demo_prints_an_account_for_each_role(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.settings = platform.settings.model_copy(update={"env": "development"})
    files = demo_files(20, 1)
    for amc_number, name in TENANTS:
        services.add_tenant(platform, amc_number, name)
    services.import_professionals(platform, io.BytesIO(files.professionals))
    demo_cli._demo_accounts(platform, files)
    printed = capsys.readouterr().out
    for _, email, home in demo_cli.DEMO_ACCOUNTS:
        assert email in printed
        assert home in printed
    uri = re.search(r"otpauth://\S+pharmacie\S+", printed)
    assert uri
    secret = parse_qs(urlparse(uri.group(0)).query)["secret"][0]
    assert secret == demo_cli.demo_secret("professional")
    demo_cli._demo_accounts(platform, files)  # a second run: the same accounts, no error
    assert demo_cli.demo_secret("amc") in capsys.readouterr().out
    platform.settings = platform.settings.model_copy(update={"env": "production"})
    demo_cli._demo_accounts(platform, files)
    assert capsys.readouterr().out == ""  # never a known password outside development
