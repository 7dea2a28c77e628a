"""Test data builders shared by the integration tests."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from fastapi.testclient import TestClient
from sqlalchemy import ColumnElement, select, true

from rempart.app import create_app
from rempart.claims.batch import Biller, InvoiceView, Submission, process
from rempart.claims.engine import Line
from rempart.claims.invoices import cancel_invoice
from rempart.dates import paris_day
from rempart.db import Base, table_of, transaction
from rempart.identifiers import luhn_complete, make_french_iban, make_nir
from rempart.identity import totp
from rempart.identity.auth import Client, Principal
from rempart.identity.models import User
from rempart.identity.services import add_user
from rempart.integrity import journal
from rempart.platform import Platform
from rempart.registry import services
from rempart.registry.member_file import COLUMNS
from rempart.registry.member_import import ImportOptions, import_members
from rempart.registry.models import Professional
from rempart.rights.services import Card


def today() -> date:
    """Today in Paris: the business date the services judge by. Read at each use, never kept
    in a module constant, so that a test run across midnight stays consistent with the server."""
    return paris_day(datetime.now(UTC))


AMC = "99000001"
OTHER_AMC = "99000002"

BASE_PLAN = {
    "code": "BASE",
    "name": "Base",
    "responsible": True,
    "valid_from": "2025-01-01",
    "valid_to": None,
    "guarantees": {"PHAR": {"br_total_pct": 100}, "MED": {"br_total_pct": 100}},
}


@dataclass(frozen=True)
class Person:
    """One row of a member file, with unusual names so that a leak is never a coincidence."""

    member_number: str
    nir: str
    last_name: str
    first_name: str
    birth_date: str
    birth_rank: str = "1"
    relationship: str = "insured"
    plan_code: str = "BASE"
    start_date: str = "2025-01-01"
    end_date: str = ""
    suspended_domains: str = ""

    def row(self) -> list[str]:
        return [getattr(self, c) for c in COLUMNS]

    def but(self, **changes: str) -> Person:
        return replace(self, **changes)


def person(n: int) -> Person:
    """The n-th synthetic person: valid NIR, names and birth date unique to n."""
    born = date(1950 + n % 50, 1 + n % 12, 1 + n % 28)
    return Person(
        member_number=f"M{n:07d}",
        nir=make_nir(1 + n % 2, born.year, born.month, "75", f"{n % 999 + 1:03d}", n % 999 + 1),
        last_name=f"Quenouille{n:04d}x",
        first_name=f"Zephyrin{n:04d}y",
        birth_date=born.isoformat(),
    )


def member_file(people: list[Person], header: tuple[str, ...] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(p.row() for p in people)
    return out.getvalue().encode()


def add_insurer(platform: Platform, amc: str = AMC, plan: dict[str, object] | None = None) -> None:
    services.add_tenant(platform, amc, f"Insurer {amc}")
    services.load_plan(platform, amc, json.dumps(plan or BASE_PLAN).encode())


PHARMACIST_AM = "751234567"
OPTICIAN_AM = "751234568"
PASSWORD = "le chat dort sur le radiateur"


def add_professionals(platform: Platform) -> None:
    """A pharmacist and an optician, with valid identifiers and bank details."""
    iban = make_french_iban("30004", "00001", "12345678901")
    rows = [
        f"{PHARMACIST_AM},{luhn_complete('1000000001')},,Pharmacie,pharmacist,false,{iban},BNPAFRPPXXX,",
        f"{OPTICIAN_AM},{luhn_complete('1000000002')},,Optique,optician,false,{iban},BNPAFRPPXXX,",
    ]
    data = (
        "am_number,rpps,finess,name,profession,optam,iban,bic,networks\n" + "\n".join(rows) + "\n"
    )
    report = services.import_professionals(platform, io.BytesIO(data.encode()))
    assert not report.errors


def add_account(platform: Platform, role: str, email: str, **binding: str) -> str:
    """An account with a password and TOTP; returns its TOTP secret."""
    created = add_user(
        platform,
        role,
        email,
        actor="test",
        password=PASSWORD,
        enrol_totp=True,
        am_number=binding.get("am_number"),
        amc_number=binding.get("amc_number"),
    )
    assert created.totp_uri is not None
    return parse_qs(urlparse(created.totp_uri).query)["secret"][0]


def set_rows(
    platform: Platform,
    model: type[Base],
    where: ColumnElement[bool] | None = None,
    **values: Any,
) -> None:
    """Change rows the way the application does (MACs renewed, journalled): time passing,
    an operator's decision. Tampering tests write through ``platform.engine`` instead."""
    with transaction(platform.sessions) as session:
        journal.update_where(session, table_of(model), true() if where is None else where, **values)


def sign_in(client: TestClient, platform: Platform, email: str, secret: str) -> dict[str, str]:
    """Log in with password and TOTP; returns the Authorization header of the session."""
    set_rows(platform, User, totp_last_step=None)  # several sign-ins within one TOTP step
    mfa = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    code = totp.code_at(secret, datetime.now(UTC))
    granted = client.post(
        "/api/v1/auth/mfa/totp", json={"mfa_token": mfa["mfa_token"], "code": code}
    )
    assert granted.status_code == 200, granted.text
    return {"Authorization": f"Bearer {granted.json()['access_token']}"}


FHIR = "https://rempart.dev/fhir"


def fhir_card(who: Person, amc: str = AMC, rank: int = 1) -> dict[str, Any]:
    """The elements of Rempart's FHIR profile that carry a card (docs/fhir.md)."""
    insurer = {"identifier": {"system": f"{FHIR}/NamingSystem/amc-number", "value": amc}}
    return {
        "contained": [
            {
                "resourceType": "Patient",
                "id": "patient",
                "birthDate": who.birth_date,
                "multipleBirthInteger": rank,
            },
            {
                "resourceType": "Coverage",
                "id": "coverage",
                "status": "active",
                "subscriberId": who.member_number,
                "beneficiary": {"reference": "#patient"},
                "payor": [insurer],
            },
        ],
        "patient": {"reference": "#patient"},
        "insurer": insurer,
        "created": "2026-01-01",
        "status": "active",
    }


def fhir_eligibility(
    who: Person, domain: str, care_date: str, amc: str = AMC, rank: int = 1
) -> dict[str, Any]:
    """A CoverageEligibilityRequest: one card, one care domain, one care date."""
    return {
        "resourceType": "CoverageEligibilityRequest",
        **fhir_card(who, amc, rank),
        "purpose": ["validation", "benefits"],
        "servicedDate": care_date,
        "insurance": [{"coverage": {"reference": "#coverage"}}],
        "item": [
            {"category": {"coding": [{"system": f"{FHIR}/CodeSystem/care-domain", "code": domain}]}}
        ],
    }


def fhir_line(
    domain: str, care_date: str, billed: str, br: str, amo_rate: int, act: str = "C"
) -> dict[str, Any]:
    """A Claim.item: money as JSON numbers, as FHIR writes them."""
    return {
        "productOrService": {"coding": [{"system": f"{FHIR}/CodeSystem/act-code", "code": act}]},
        "category": {"coding": [{"system": f"{FHIR}/CodeSystem/care-domain", "code": domain}]},
        "servicedDate": care_date,
        "quantity": {"value": 1},
        "net": {"value": float(billed), "currency": "EUR"},
        "extension": [
            {
                "url": f"{FHIR}/StructureDefinition/br",
                "valueMoney": {"value": float(br), "currency": "EUR"},
            },
            {"url": f"{FHIR}/StructureDefinition/amo-rate", "valueUnsignedInt": amo_rate},
        ],
    }


def fhir_claim(
    who: Person, lines: list[dict[str, Any]], use: str = "predetermination", amc: str = AMC
) -> dict[str, Any]:
    """A Claim for ``who``; items are numbered in order."""
    return {
        "resourceType": "Claim",
        **fhir_card(who, amc),
        "use": use,
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "provider": {"display": "the practice"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "#coverage"}}],
        "item": [{"sequence": n, **line} for n, line in enumerate(lines, start=1)],
    }


# --- Claims: a world to bill in (invoices, ingestion) --------------------------------------------

CLAIMS_PLANS: list[dict[str, Any]] = [
    {
        "code": "BASE",
        "name": "Base",
        "responsible": True,
        "valid_from": "2025-01-01",
        "valid_to": None,
        "guarantees": {
            "MED": {"br_total_pct": 100},
            "PHAR": {"br_total_pct": 100, "exclude_amo_rates": [15]},
            "DESO": {"br_total_pct": 100},
        },
    },
    {
        "code": "CONFORT",
        "name": "Confort",
        "responsible": True,
        "valid_from": "2025-01-01",
        "valid_to": None,
        "guarantees": {
            "MED": {"br_total_pct": 200},
            "OPTI": {
                "amount": "300.00",
                "per": "equipment",
                "frame_cap": "100.00",
                "renewal_months": 24,
            },
            "AUDI": {"amount": "1460.00", "per": "item", "cap_incl_amo": "1700.00"},
            "DEPR": {
                "br_total_pct": 300,
                "ceiling": {"amount": "500.00", "period": "calendar_year"},
            },
        },
    },
]
# Billing numbers by name; the name before the digit is the profession.
BILLERS = {
    "gp": "751000001",
    "specialist": "751000002",
    "pharmacist": "751000003",
    "optician": "751000004",
    "audiologist": "751000005",
    "dentist": "751000006",
    "pharmacist2": "751000007",
}
ON_BASE = person(1)
ON_CONFORT = person(2).but(plan_code="CONFORT")
CLAIMANTS = [ON_BASE, ON_CONFORT] + [person(n).but(plan_code="CONFORT") for n in range(3, 9)]


def add_claims_world(platform: Platform) -> None:
    """An insurer with BASE and CONFORT, the claimants, and one professional of each kind."""
    services.add_tenant(platform, AMC, "Mutuelle")
    for plan in CLAIMS_PLANS:
        services.load_plan(platform, AMC, json.dumps(plan).encode())
    import_members(platform, AMC, io.BytesIO(member_file(CLAIMANTS)), ImportOptions())
    iban = make_french_iban("30004", "00001", "12345678901")
    rows = [
        f"{am},{luhn_complete(f'10000000{i:02d}')},,Dr {name},{name.rstrip('0123456789')},"
        f"true,{iban},BNPAFRPPXXX,"
        for i, (name, am) in enumerate(BILLERS.items())
    ]
    data = (
        "am_number,rpps,finess,name,profession,optam,iban,bic,networks\n" + "\n".join(rows) + "\n"
    )
    assert services.import_professionals(platform, io.BytesIO(data.encode())).inserted == len(rows)


def claim_line(
    domain: str, billed: str, br: str, amo_rate: int, care_date: date | None = None, **extra: Any
) -> dict[str, Any]:
    """An invoice line as the API takes it (money as decimal strings)."""
    return {
        "act_code": "C",
        "domain": domain,
        "care_date": (care_date or today()).isoformat(),
        "quantity": 1,
        "billed": billed,
        "br": br,
        "amo_rate": amo_rate,
        **extra,
    }


def invoice_body(
    who: Person, lines: list[dict[str, Any]], number: str = "F-1", **extra: Any
) -> dict[str, Any]:
    """The body of POST /api/v1/invoices for ``who``'s card."""
    return {
        "amc_number": AMC,
        "member_number": who.member_number,
        "birth_date": who.birth_date,
        "birth_rank": int(who.birth_rank),
        "invoice_number": number,
        "lines": lines,
        **extra,
    }


def card_body(
    who: Person, amc: str = AMC, domain: str = "PHAR", **changes: object
) -> dict[str, object]:
    """The body of a rights check (POST /api/v1/eligibility) for ``who``, for care today."""
    body: dict[str, object] = {
        "amc_number": amc,
        "member_number": who.member_number,
        "birth_date": who.birth_date,
        "birth_rank": int(who.birth_rank),
        "domain": domain,
        "care_date": today().isoformat(),
    }
    return {**body, **changes}


def pdf_text(path: Path) -> str:
    """The text of every page of a PDF, as a reader would extract it."""
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def add_invoices(platform: Platform) -> None:
    """Rows in every claims table, through the application's paths, for the people of
    add_insurer's BASE plan (person(2) and person(3)) billed by add_professionals' pharmacist and
    optician: a pair of glasses (an invoice, its lines, bookings, a renewal use) and a pharmacy
    invoice cancelled (its bookings written, then deleted)."""
    day = today()
    optics = {"amount": "300.00", "per": "equipment", "renewal_months": 24}
    guarantees = {"PHAR": {"br_total_pct": 100}, "MED": {"br_total_pct": 100}, "OPTI": optics}
    version = {**BASE_PLAN, "valid_from": day.isoformat(), "guarantees": guarantees}
    services.load_plan(platform, AMC, json.dumps(version).encode())
    with platform.sessions() as session:
        ids = dict(session.execute(select(Professional.am_number, Professional.id)).all())
    optician = Biller(ids[OPTICIAN_AM], "optician", OPTICIAN_AM, "test:optician")
    pharmacist = Biller(ids[PHARMACIST_AM], "pharmacist", PHARMACIST_AM, "test:pharmacist")
    frame = Line("C", "OPTI", day, 1, 15000, 5, 60, amo_paid=3, item_type="frame")
    glasses = (frame, replace(frame, item_type="lens"))
    drugs = (Line("C", "PHAR", day, 1, 1000, 1000, 30),)
    items = [
        (optician, Submission(_card(person(3)), glasses, "F-1")),
        (pharmacist, Submission(_card(person(2)), drugs, "F-2")),
    ]
    with transaction(platform.sessions) as session:
        outcomes = process(session, platform, items, None, Client())
    cancelled = outcomes[1]
    assert isinstance(cancelled, InvoiceView)
    caller = Principal(
        "test:pharmacist",
        "professional",
        uuid.uuid4(),
        None,
        pharmacist.professional_id,
        PHARMACIST_AM,
        "pharmacist",
    )
    cancel_invoice(platform, caller, cancelled.id, Client())


def _card(who: Person) -> Card:
    return Card(AMC, who.member_number, date.fromisoformat(who.birth_date), int(who.birth_rank))


# --- Portals: signing in through the pages, as a browser does ------------------------------------

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The form token of a page (every form of a page carries the same one)."""
    found = _CSRF.search(html)
    assert found, "the page has no form token"
    return found.group(1)


def portal_sign_in(client: TestClient, platform: Platform, email: str, secret: str) -> str:
    """Sign in through /login and /login/code; the client keeps the session cookie. Returns
    the page the portal sends the person to (their portal's home)."""
    set_rows(platform, User, totp_last_step=None)  # several sign-ins within one TOTP step
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    token = csrf_of(client.get("/login/code").text)
    code = totp.code_at(secret, datetime.now(UTC))
    answer = client.post("/login/code", data={"code": code, "csrf": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


@dataclass
class ProfessionalsApi:
    """The API under test, and professionals' sessions on it, each signed in on first use and
    kept for this test only (``numbers``: name -> billing number)."""

    client: TestClient
    platform: Platform
    numbers: dict[str, str]
    sessions: dict[str, dict[str, str]] = field(default_factory=dict)


def as_(api: ProfessionalsApi, name: str) -> dict[str, str]:
    """The session of the professional ``name`` (an account is created on first use)."""
    if name not in api.sessions:
        email = f"{name}@example.org"
        secret = add_account(api.platform, "professional", email, am_number=api.numbers[name])
        api.sessions[name] = sign_in(api.client, api.platform, email, secret)
    return api.sessions[name]


@dataclass
class Portals:
    """The application started on a platform, with accounts whose TOTP secrets are known."""

    platform: Platform
    app: Any
    secrets: dict[str, str]  # e-mail address -> TOTP secret

    def client(self, user_agent: str = "testclient") -> TestClient:
        """A browser of its own (its own cookies)."""
        return TestClient(self.app, headers={"user-agent": user_agent})

    def signed_in(self, email: str, user_agent: str = "testclient") -> TestClient:
        client = self.client(user_agent)
        portal_sign_in(client, self.platform, email, self.secrets[email])
        return client


@contextmanager
def portals(
    platform: Platform, accounts: dict[str, tuple[str, dict[str, str]]]
) -> Iterator[Portals]:
    """The application (its lifespan running: recorder, quotas) and these accounts, by e-mail
    address: (role, binding such as ``am_number``)."""
    secrets = {
        email: add_account(platform, role, email, **binding)
        for email, (role, binding) in accounts.items()
    }
    app = create_app(platform.settings, platform)
    with TestClient(app):
        yield Portals(platform, app, secrets)


# --- Payments: invoices to pay, insurers' mandates, what the files hold --------------------------

OTHER_CLAIMANTS = [person(n) for n in range(20, 24)]  # OTHER_AMC's members, on its BASE plan
MANDATE_IBAN = make_french_iban("30002", "00550", "00001578450")


def add_payments_world(platform: Platform) -> None:
    """add_claims_world's insurer, claimants and professionals, and a second insurer
    (OTHER_AMC, BASE plan) with members of its own."""
    add_claims_world(platform)
    add_insurer(platform, OTHER_AMC)
    import_members(platform, OTHER_AMC, io.BytesIO(member_file(OTHER_CLAIMANTS)), ImportOptions())


def professional_ids(platform: Platform) -> dict[str, uuid.UUID]:
    """Professionals' ids by billing number."""
    with platform.sessions() as session:
        return dict(session.execute(select(Professional.am_number, Professional.id)).all())


def pay_line(
    domain: str, billed: int, br: int, amo_rate: int, act: str = "C", day: date | None = None
) -> Line:
    """An invoice line in cents, cared for today unless ``day`` says otherwise."""
    return Line(act, domain, day or today(), 1, billed, br, amo_rate)


def bill(
    platform: Platform,
    biller: str,
    who: Person,
    lines: list[Line],
    number: str,
    amc: str = AMC,
    now: datetime | None = None,
    engagement: str | None = None,
) -> InvoiceView:
    """One invoice by ``BILLERS[biller]``, through the application's path (adjudicated, booked,
    on the record); ``now``: when it was submitted; ``engagement``: the number it quotes."""
    am_number = BILLERS[biller]
    profession = biller.rstrip("0123456789")
    payer = Biller(professional_ids(platform)[am_number], profession, am_number, f"test:{biller}")
    card = Card(amc, who.member_number, date.fromisoformat(who.birth_date), int(who.birth_rank))
    with transaction(platform.sessions) as session:
        submission = Submission(card, tuple(lines), number, engagement)
        (outcome,) = process(session, platform, [(payer, submission)], None, Client(), now)
    assert isinstance(outcome, InvoiceView), outcome
    return outcome


def cancel_bill(platform: Platform, biller: str, invoice_id: uuid.UUID) -> InvoiceView:
    """Cancel an invoice as its professional would."""
    am_number = BILLERS[biller]
    caller = Principal(
        f"test:{biller}",
        "professional",
        uuid.uuid4(),
        None,
        professional_ids(platform)[am_number],
        am_number,
        biller.rstrip("0123456789"),
    )
    return cancel_invoice(platform, caller, invoice_id, Client())


def add_mandate(platform: Platform, amc: str = AMC) -> None:
    """The insurer's direct-debit mandate: its settlements are then collected by debit."""
    from rempart.payments.statements import set_mandate

    set_mandate(platform, amc, f"MDT-{amc}", date(2025, 1, 2), MANDATE_IBAN, "PSSTFRPPXXX", "test")


def sepa_amounts(path: Path) -> dict[str, int]:
    """A SEPA file's transactions: end-to-end reference -> amount in cents."""
    import xml.etree.ElementTree as ET
    from decimal import Decimal

    found: dict[str, int] = {}
    for node in ET.parse(path).getroot().iter():  # noqa: S314  (our own output)
        if node.tag.endswith(("}CdtTrfTxInf", "}DrctDbtTxInf")):
            ref = next(n.text for n in node.iter() if n.tag.endswith("}EndToEndId"))
            amount = next(n.text for n in node.iter() if n.tag.endswith("}InstdAmt"))
            assert ref is not None
            assert amount is not None
            found[ref] = int(Decimal(amount) * 100)
    return found


def sepa_accounts(path: Path) -> dict[str, str]:
    """A SEPA file's transactions: end-to-end reference -> the IBAN credited or debited."""
    import xml.etree.ElementTree as ET

    found: dict[str, str] = {}
    for node in ET.parse(path).getroot().iter():  # noqa: S314  (our own output)
        if node.tag.endswith(("}CdtTrfTxInf", "}DrctDbtTxInf")):
            ref = next(n.text for n in node.iter() if n.tag.endswith("}EndToEndId"))
            iban = next(n.text for n in node.iter() if n.tag.endswith("}IBAN"))
            assert ref is not None
            assert iban is not None
            found[ref] = iban
    return found


# --- Guard: people far apart, baselines, stale sessions, a clock ---------------------------------


def spread_people(count: int, start: int = 1) -> list[Person]:
    """People whose member numbers are far apart: no two share a block of numbers, so that
    only an enumeration (not ordinary traffic) looks like one."""
    return [person(n).but(member_number=f"S{n * 1000:07d}") for n in range(start, start + count)]


def account_actor(platform: Platform, email: str) -> str:
    """The ledger's actor for an account: ``user:<id>``."""
    from sqlalchemy import select

    from rempart.identity.services import email_index

    with transaction(platform.sessions) as session:
        found = session.scalar(
            select(User.id).where(User.email_index == email_index(platform, session, email))
        )
    assert found is not None
    return f"user:{found}"


def add_baseline(
    platform: Platform,
    owner: str,
    *,
    scope: str = "account",
    days_active: int = 20,
    daily: int = 40,
    peak: int = 6,
    hours: range = range(24),
    ips: tuple[str, ...] = (),
    user_agents: tuple[str, ...] = (),
) -> None:
    """A learnt baseline, as ``rempart guard baselines`` would write it."""
    from datetime import timedelta

    from rempart.guard import signals
    from rempart.guard.detection import GUARD_KEY
    from rempart.guard.models import GuardBaseline

    with transaction(platform.sessions) as session:
        secret = platform.keyring.platform_secret(session, GUARD_KEY)
        session.add(
            GuardBaseline(
                scope=scope,
                owner=owner,
                through=today() - timedelta(days=1),
                days_active=days_active,
                daily=daily,
                peak=peak,
                hours=sum(1 << h for h in hours),
                networks=" ".join(signals.network_key(secret, ip) for ip in ips),
                devices=" ".join(signals.device_key(secret, ua) for ua in user_agents),
                history="{}",
                computed_at=datetime.now(UTC),
            )
        )


def age_sessions(platform: Platform, hours: float) -> None:
    """Make every session's second factor ``hours`` old (a session stolen some time ago)."""
    from datetime import timedelta

    from sqlalchemy import update

    from rempart.identity.models import AuthSession

    with transaction(platform.sessions) as session:
        session.execute(
            update(AuthSession).values(created_at=datetime.now(UTC) - timedelta(hours=hours))
        )


class SettableClock:
    """A clock for the guard that a test moves by hand (seconds since the epoch)."""

    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- Prior agreements (PEC): DOMAIN.md's sample plan, and a second optician ----------------------

PEC_PLAN: dict[str, Any] = {
    "code": "ACCORD",
    "name": "Accord 2025",
    "responsible": True,
    "valid_from": "2025-01-01",
    "valid_to": None,
    "guarantees": {
        "MED": {"br_total_pct": 200},
        "OPTI": {
            "amount": "300.00",
            "per": "equipment",
            "frame_cap": "100.00",
            "renewal_months": 24,
            "renewal_months_under_16": 12,
            "prior_agreement": True,
        },
        "AUDI": {
            "amount": "1460.00",
            "per": "item",
            "cap_incl_amo": "1700.00",
            "renewal_months": 48,
            "prior_agreement": True,
        },
        # Orthodontics under agreement and a yearly ceiling: agreements reserve no amount.
        "DEOR": {
            "br_total_pct": 300,
            "ceiling": {"amount": "600.00", "period": "calendar_year"},
            "prior_agreement": True,
        },
    },
}
UNDER_AGREEMENT = [person(n).but(plan_code="ACCORD") for n in range(30, 40)]
OPTICIAN2_AM = "751000008"
DENTIST2_AM = "751000009"


def add_prior_agreement_world(platform: Platform) -> None:
    """add_claims_world, DOMAIN.md's sample plan (ACCORD: optics and hearing aids under prior
    agreement, with renewal periods) and its members UNDER_AGREEMENT, a second optician and a
    second dentist."""
    add_claims_world(platform)
    services.load_plan(platform, AMC, json.dumps(PEC_PLAN).encode())
    import_members(
        platform, AMC, io.BytesIO(member_file(UNDER_AGREEMENT)), ImportOptions(delta=True)
    )
    iban = make_french_iban("30004", "00001", "12345678901")
    data = "am_number,rpps,finess,name,profession,optam,iban,bic,networks\n" + "".join(
        f"{am},{luhn_complete(rpps)},,{name},{profession},false,{iban},BNPAFRPPXXX,\n"
        for am, rpps, name, profession in (
            (OPTICIAN2_AM, "1000000098", "Optique Bis", "optician"),
            (DENTIST2_AM, "1000000099", "Cabinet Bis", "dentist"),
        )
    )
    assert services.import_professionals(platform, io.BytesIO(data.encode())).inserted == 2
