"""Accounts: bound to what their role acts for, credentials stored only as hashes or sealed."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from typer.testing import CliRunner

from rempart.cli import app
from rempart.crypto.keyring import PLATFORM_SCOPE
from rempart.errors import Conflict, InvalidInput, NotFound
from rempart.identifiers import luhn_complete, make_french_iban
from rempart.identity import totp
from rempart.identity.models import User
from rempart.identity.services import add_user
from rempart.ledger.events import Tag
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.registry.services import import_professionals
from rempart.settings import get_settings
from tests.support import AMC, add_insurer

AM = "751234567"
PASSWORD = "le chat dort sur le radiateur"


@pytest.fixture
def ready(platform: Platform) -> Platform:
    add_insurer(platform)
    iban = make_french_iban("30004", "00001", "12345678901")
    pros = (
        "am_number,rpps,finess,name,profession,optam,iban,bic,networks\n"
        f"{AM},{luhn_complete('1000000001')},,Pharmacie,pharmacist,false,{iban},BNPAFRPPXXX,\n"
    )
    assert import_professionals(platform, io.BytesIO(pros.encode())).inserted == 1
    return platform


def user(platform: Platform, user_id: object) -> User:
    with platform.sessions() as session:
        found = session.get(User, user_id)
        assert found is not None
        return found


def test_a_professional_account_with_password_and_totp(ready: Platform) -> None:
    created = add_user(
        ready,
        "professional",
        "Marie@Pharmacie.Example",
        actor="test",
        am_number=AM,
        password=PASSWORD,
        enrol_totp=True,
    )
    account = user(ready, created.user_id)
    assert created.enrolment_code is None
    assert created.totp_uri is not None
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(account.password_hash, PASSWORD)
    with ready.sessions() as session:
        cipher = ready.keyring.cipher(session, PLATFORM_SCOPE)
        email = cipher.open("users", "email", account.id.hex, account.email_enc)
        assert email == "Marie@pharmacie.example"
        assert account.totp_secret_enc is not None
        secret = cipher.open("users", "totp_secret", account.id.hex, account.totp_secret_enc)
    assert f"secret={secret}" in created.totp_uri
    now = datetime.now(UTC)
    assert totp.accepted_step(secret, totp.code_at(secret, now), now, None) is not None


def test_an_account_without_password_gets_a_one_time_enrolment_code(ready: Platform) -> None:
    created = add_user(ready, "amc", "gestion@mutuelle.example", actor="test", amc_number=AMC)
    account = user(ready, created.user_id)
    assert created.enrolment_code is not None
    assert account.password_hash is None
    assert account.enrolment_hash == hashlib.sha256(created.enrolment_code.encode()).digest()
    assert account.enrolment_expires_at is not None
    assert account.enrolment_expires_at > datetime.now(UTC)


@pytest.mark.parametrize(
    ("role", "binding", "error"),
    [
        ("professional", {}, InvalidInput),
        ("professional", {"amc_number": AMC}, InvalidInput),
        ("professional", {"am_number": "759999999"}, NotFound),
        ("amc", {"amc_number": "NOPE"}, NotFound),
        ("amc", {"am_number": AM}, InvalidInput),
        ("operator", {"amc_number": AMC}, InvalidInput),
        ("admin", {}, InvalidInput),
    ],
)
def test_an_account_must_be_bound_as_its_role_requires(
    ready: Platform, role: str, binding: dict[str, str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        add_user(
            ready,
            role,
            "x@example.org",
            actor="test",
            am_number=binding.get("am_number"),
            amc_number=binding.get("amc_number"),
        )


def test_one_account_per_email_whatever_its_case(ready: Platform) -> None:
    add_user(ready, "operator", "ops@rempart.example", actor="test")
    with pytest.raises(Conflict):
        add_user(ready, "security", "OPS@Rempart.Example", actor="test")


def test_a_weak_password_is_refused_and_nothing_is_created(ready: Platform) -> None:
    with pytest.raises(InvalidInput, match="at least 12"):
        add_user(ready, "operator", "ops@rempart.example", actor="test", password="short")
    with pytest.raises(InvalidInput, match="e-mail name"):
        add_user(
            ready, "operator", "dupont@rempart.example", actor="test", password="dupont est la"
        )
    with ready.sessions() as session:
        assert session.scalars(select(User)).all() == []


def test_creating_an_account_is_recorded_in_the_ledger(ready: Platform) -> None:
    add_user(ready, "amc", "gestion@mutuelle.example", actor="cli:alice", amc_number=AMC)
    with ready.sessions() as session:
        (entry,) = session.scalars(
            select(LedgerEntry).where(LedgerEntry.tag != Tag.ROWS_WRITTEN)
        ).all()
    assert (entry.tag, entry.actor, entry.tenant) == ("account:create", "cli:alice", AMC)
    assert b"gestion" not in entry.event


def test_users_add_for_automation(
    ready: Platform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REMPART_HOME", str(ready.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", ready.settings.resolved_database_url)
    monkeypatch.setenv("REMPART_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("REMPART_ARGON2_MEMORY_KIB", "64")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        args = [
            "users",
            "add",
            "--role",
            "professional",
            "--am-number",
            AM,
            "--email",
            "bot@pharmacie.example",
        ]
        result = runner.invoke(
            app, [*args, "--password-stdin", "--totp", "--json"], input=PASSWORD + "\n"
        )
        assert result.exit_code == 0, result.output
        document = json.loads(result.output)
        assert set(document) == {"user_id", "totp_uri"}
        assert document["totp_uri"].startswith("otpauth://totp/Rempart:bot%40pharmacie.example?")
        again = runner.invoke(app, [*args, "--password-stdin"], input=PASSWORD + "\n")
        assert again.exit_code == 1
        assert "already exists" in again.output
        code = runner.invoke(
            app, ["users", "add", "--role", "operator", "--email", "ops@rempart.example"]
        )
        assert code.exit_code == 0
        assert "enrolment code (valid 72 h, shown once)" in code.output
    finally:
        get_settings.cache_clear()
