"""January 2024, replayed end to end against Rempart.

A pharmacist's password is phished, then a session of hers is stolen and used to read the
insurers' members one card after another, from the intruder's own network. What must hold:
the password alone yields nothing; the stolen session is stopped within 20 people; the scope
of the breach is exactly what the intruder received (compared with its own record), no more, no
fewer; the letters name no one else; the platform proves nothing was altered; service resumes
for the pharmacist once she has enrolled again.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rempart.app import create_app
from rempart.cli import app as cli_app
from rempart.db import transaction
from rempart.identity import totp
from rempart.integrity.verify import verify_integrity
from rempart.platform import Platform
from rempart.registry.lookups import active_tenant, insured_by_card
from rempart.registry.member_import import ImportOptions, import_members
from rempart.settings import get_settings
from tests.support import (
    AMC,
    OPTICIAN_AM,
    PASSWORD,
    PHARMACIST_AM,
    Person,
    add_account,
    add_insurer,
    add_professionals,
    card_body,
    member_file,
    pdf_text,
    person,
    sign_in,
)

VICTIM, OPTICIAN = "marie@pharmacie.example", "optique@example.org"
OFFICE, INTRUDER = ("192.0.2.10", 40000), ("203.0.113.66", 50000)
MEMBERS = [person(n) for n in range(1, 61)]  # the file the intruder goes through, in order
GOAL = 20  # people a stolen session may expose at most (issue 7)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def platform_env(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    add_insurer(platform)
    add_professionals(platform)
    import_members(platform, AMC, io.BytesIO(member_file(MEMBERS)), ImportOptions())
    monkeypatch.setenv("REMPART_HOME", str(platform.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", platform.settings.resolved_database_url)
    get_settings.cache_clear()
    yield platform
    get_settings.cache_clear()


def pseudonym_of(platform: Platform, who: Person) -> str:
    with transaction(platform.sessions) as session:
        tenant = active_tenant(session, AMC)
        assert tenant is not None
        insured = insured_by_card(
            session,
            platform.keyring,
            tenant,
            who.member_number,
            date.fromisoformat(who.birth_date),
            int(who.birth_rank),
        )
        assert insured is not None
        return insured.pseudonym


def test_january_2024_replayed(platform_env: Platform, tmp_path: Path) -> None:
    platform = platform_env
    secret = add_account(platform, "professional", VICTIM, am_number=PHARMACIST_AM)
    optician_secret = add_account(platform, "professional", OPTICIAN, am_number=OPTICIAN_AM)
    start = datetime.now(UTC) - timedelta(seconds=1)
    app = create_app(platform.settings, platform)

    # 1. The phished password alone: a second factor is asked, guessing it fails, nothing read.
    with TestClient(app, client=INTRUDER) as intruder:
        mfa = intruder.post("/api/v1/auth/login", json={"email": VICTIM, "password": PASSWORD})
        assert mfa.status_code == 200
        assert mfa.json()["methods"] == ["totp"]
        for guess in ("000000", "123456", "654321"):
            refused = intruder.post(
                "/api/v1/auth/mfa/totp", json={"mfa_token": mfa.json()["mfa_token"], "code": guess}
            )
            assert refused.status_code == 401
        assert intruder.post("/api/v1/eligibility", json=card_body(MEMBERS[0])).status_code == 401
        with_token = {"Authorization": f"Bearer {mfa.json()['mfa_token']}"}
        assert (
            intruder.post(
                "/api/v1/eligibility", json=card_body(MEMBERS[0]), headers=with_token
            ).status_code
            == 401
        )  # the login's token is no session

    # 2. Her real session, stolen (a malicious extension, a shared computer), used elsewhere.
    with TestClient(app, client=OFFICE) as office:
        stolen = sign_in(office, platform, VICTIM, secret)
    received: list[Person] = []  # the intruder's own record of whom it got answers for
    refusals: list[int] = []
    with TestClient(app, client=INTRUDER) as intruder:
        for who in MEMBERS:
            answer = intruder.post("/api/v1/eligibility", json=card_body(who), headers=stolen)
            if answer.status_code == 200:
                received.append(who)
                assert answer.json()["status"] == "open"
            else:
                refusals.append(answer.status_code)
    assert 0 < len(received) <= GOAL, len(received)
    assert refusals
    assert set(refusals) <= {401, 403, 429}
    assert received == MEMBERS[: len(received)]  # stopped, and for good: nothing after
    code, status = run("guard", "status", "--json")
    assert code == 0, status
    freezes = json.loads(status)
    assert [f["kind"] for f in freezes] == ["account"]
    assert freezes[0]["by"] == "guard:detection"

    # Meanwhile a legitimate optician reads two people the intruder never reached.
    with TestClient(app, client=OFFICE) as office:
        optician = sign_in(office, platform, OPTICIAN, optician_secret)
        for who in MEMBERS[-2:]:
            check = office.post(
                "/api/v1/eligibility", json=card_body(who, domain="OPTI"), headers=optician
            )
            assert check.status_code == 200, check.text
    end = datetime.now(UTC) + timedelta(seconds=1)

    # 3. Scope: exactly the people the intruder received, no more, no fewer.
    out = tmp_path / "scope"
    code, output = run(
        "incident",
        "scope",
        "--account",
        VICTIM,
        "--from",
        start.isoformat(),
        "--to",
        end.isoformat(),
        "--out",
        str(out),
    )
    assert code == 0, output
    with (out / f"amc-{AMC}.csv").open() as handle:
        scoped = {row["pseudonym"] for row in csv.DictReader(handle)}
    assert scoped == {pseudonym_of(platform, who) for who in received}

    # 4. The letters name the people read, and no one else.
    code, output = run("incident", "notify", "--scope", str(out), "--contact", "soc@example.org")
    assert code == 0, output
    letters = pdf_text(out / "notification" / AMC / "lettres-art34-001.pdf")
    assert set(re.findall(r"Quenouille\d{4}x", letters)) == {p.last_name for p in received}

    # 5. Nothing was altered: the ledger and every business row verify.
    report = verify_integrity(platform)
    assert report.intact, report.ledger.problems + report.problems

    # 6. Resume: her credentials are erased, she enrols again, checks rights again.
    code, output = run("guard", "reenrol", "--account", VICTIM, "--reason", "phished", "--json")
    assert code == 0, output
    (reenrolled,) = json.loads(output)
    code, output = run("guard", "unfreeze", "--account", VICTIM)
    assert code == 0, output
    new_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    with TestClient(app, client=OFFICE) as office:
        old = office.post("/api/v1/auth/login", json={"email": VICTIM, "password": PASSWORD})
        assert old.status_code == 401  # the phished password is gone
        new_password = "un tout autre mot de passe cette fois"
        enrolled = office.post(
            "/api/v1/auth/enrol",
            json={
                "enrolment_code": reenrolled["enrolment_code"],
                "password": new_password,
                "totp_secret": new_secret,
                "totp_code": totp.code_at(new_secret, datetime.now(UTC)),
            },
        )
        assert enrolled.status_code == 204, enrolled.text
        mfa = office.post("/api/v1/auth/login", json={"email": VICTIM, "password": new_password})
        assert mfa.status_code == 200, mfa.text
        assert office.get("/api/v1/auth/session", headers=stolen).status_code == 401
