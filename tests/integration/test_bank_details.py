"""Changing bank details (SECURITY.md requirement 8): step-up authentication, a code sent out of
band, a cooling-off period during which payments are held, every step on the record."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from rempart.app import create_app
from rempart.errors import Forbidden
from rempart.identifiers import make_french_iban
from rempart.identity.auth import Client, Principal
from rempart.identity.models import AuthSession
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.models import LedgerEntry
from rempart.payments import bank_details, runs
from rempart.payments.models import BankChange
from rempart.platform import Platform
from tests.support import (
    BILLERS,
    ON_BASE,
    add_account,
    add_payments_world,
    bill,
    pay_line,
    professional_ids,
    sepa_accounts,
    set_rows,
    sign_in,
)

NEW_IBAN = make_french_iban("20041", "01005", "05001234567")
NEW_BIC = "PSSTFRPPXXX"
GP, PHARMACIST = BILLERS["gp"], BILLERS["pharmacist"]
Api = tuple[TestClient, Platform, dict[str, str]]


@pytest.fixture
def api(platform: Platform) -> Iterator[Api]:
    add_payments_world(platform)
    bill(platform, "gp", ON_BASE, [pay_line("MED", 3000, 3000, 70)], "G-1")
    bill(platform, "pharmacist", ON_BASE, [pay_line("PHAR", 1000, 1000, 30)], "P-1")
    with TestClient(create_app(platform.settings, platform)) as client:
        secret = add_account(platform, "professional", "gp@example.org", am_number=GP)
        yield client, platform, sign_in(client, platform, "gp@example.org", secret)


def ask(client: TestClient, headers: dict[str, str], iban: str = NEW_IBAN) -> dict[str, str]:
    answer = client.post(
        "/api/v1/bank-details", json={"iban": iban, "bic": NEW_BIC}, headers=headers
    )
    assert answer.status_code == 202, answer.text
    body: dict[str, str] = answer.json()
    return body


def letter_code(platform: Platform) -> str:
    """What the mail room would print: the code is only in the letter."""
    (letter,) = [m for m in bank_details.pending_letters(platform) if m.kind == "code"]
    found = re.search(r"code ([A-Z0-9]{10})", letter.body)
    assert found
    return found.group(1)


def confirm(client: TestClient, headers: dict[str, str], code: str) -> tuple[int, dict[str, Any]]:
    answer = client.post("/api/v1/bank-details/confirm", json={"code": code}, headers=headers)
    body: dict[str, Any] = answer.json()
    return answer.status_code, body


def tags(platform: Platform) -> list[AccessEvent]:
    with platform.sessions() as session:
        return [AccessEvent.decode(e.event) for e in session.scalars(select(LedgerEntry))]


def test_a_change_needs_a_second_factor_given_within_ten_minutes(api: Api) -> None:
    client, platform, headers = api
    with platform.engine.begin() as connection:
        connection.execute(
            update(AuthSession).values(created_at=datetime.now(UTC) - timedelta(minutes=11))
        )
    answer = client.post(
        "/api/v1/bank-details", json={"iban": NEW_IBAN, "bic": NEW_BIC}, headers=headers
    )
    assert answer.status_code == 403
    assert "second factor" in answer.json()["detail"]
    with platform.sessions() as session:
        assert session.scalar(select(BankChange.id)) is None


def test_the_code_goes_out_of_band_never_in_the_answer(api: Api) -> None:
    client, platform, headers = api
    change = ask(client, headers)
    code = letter_code(platform)
    assert code not in str(change)
    assert NEW_IBAN not in str(change)
    assert change["status"] == "pending"
    assert change["iban_hint"] == f"FR76…{NEW_IBAN[-4:]}"
    notices = [m for m in bank_details.pending_letters(platform) if m.kind == "notice"]
    assert len(notices) == 1
    assert notices[0].am_number == GP
    with platform.engine.connect() as connection:  # sealed in the database, as a dump shows it
        raw = b"".join(
            bytes(v)
            for row in connection.execute(select(BankChange.__table__))
            for v in row
            if isinstance(v, bytes)
        )
    assert NEW_IBAN.encode() not in raw
    assert code.encode() not in raw
    bank_details.pending_letters(platform, mark_sent=True)
    assert bank_details.pending_letters(platform) == []


def test_a_confirmed_account_is_used_only_after_its_cooling_off(api: Api, tmp_path: Path) -> None:
    client, platform, headers = api
    ask(client, headers)
    held = runs.run_payments(platform, None, tmp_path / "1", "test")  # awaiting the code
    assert [(h.am_number, h.reason) for h in held.held] == [
        (GP, "bank details change awaiting its out-of-band confirmation")
    ]
    assert held.run is not None
    assert held.run.transfers == 1
    assert not any(
        GP in ref for ref in sepa_accounts(tmp_path / "1/RMP000001" / runs.TRANSFERS_FILE)
    )
    status, body = confirm(client, headers, letter_code(platform))
    assert status == 200
    assert body["status"] == "confirmed"
    usable = datetime.fromisoformat(body["usable_from"])
    hours = platform.settings.bank_details_cooling_hours
    assert timedelta(hours=hours - 1) < usable - datetime.now(UTC) <= timedelta(hours=hours)
    cooling = runs.run_payments(platform, None, tmp_path / "2", "test")
    assert cooling.run is None  # nothing else is due: the gp's invoice still waits
    assert [h.reason for h in cooling.held] == ["new bank details in their cooling-off period"]
    details = client.get("/api/v1/bank-details", headers=headers).json()
    assert details["payments_held"] is True
    assert details["change"]["status"] == "confirmed"
    set_rows(platform, BankChange, usable_from=datetime.now(UTC) - timedelta(minutes=1))
    paid = runs.run_payments(platform, None, tmp_path / "3", "test")
    assert paid.held == ()
    assert paid.run is not None
    accounts = sepa_accounts(tmp_path / "3/RMP000002" / runs.TRANSFERS_FILE)
    assert accounts == {f"RMP000002-T-{GP}": NEW_IBAN}
    details = client.get("/api/v1/bank-details", headers=headers).json()
    assert details["iban_hint"] == f"FR76…{NEW_IBAN[-4:]}"
    assert details["payments_held"] is False


def test_wrong_codes_count_and_the_right_one_still_confirms_before_the_fifth(api: Api) -> None:
    client, platform, headers = api
    ask(client, headers)
    for left in (4, 3, 2, 1):
        status, body = confirm(client, headers, "ZZZZZZZZZZ")
        assert status == 422
        assert body["field"] == "code"
        with platform.sessions() as session:
            assert 5 - session.scalar(select(BankChange.attempts)) == left  # type: ignore[operator]
    status, body = confirm(client, headers, letter_code(platform))
    assert status == 200
    assert body["attempts_left"] == 1
    ask_again = client.post(
        "/api/v1/bank-details", json={"iban": NEW_IBAN, "bic": NEW_BIC}, headers=headers
    )
    assert ask_again.status_code == 409  # a change is under way (cooling off)


def test_five_wrong_codes_cancel_the_change(api: Api) -> None:
    client, platform, headers = api
    ask(client, headers)
    for _ in range(5):
        status, body = confirm(client, headers, "ZZZZZZZZZZ")
    assert status == 422
    assert "cancelled" in body["detail"]
    with platform.sessions() as session:
        assert session.scalar(select(BankChange.status)) == "cancelled"
    status, _ = confirm(client, headers, letter_code(platform))
    assert status == 404
    refused = [e for e in tags(platform) if e.tag == Tag.BANK_DETAILS_CODE_REFUSED]
    assert [e.outcome for e in refused] == ["refused"] * 4 + ["cancelled"]


def test_one_change_at_a_time_and_the_practice_can_cancel_it(api: Api, tmp_path: Path) -> None:
    client, platform, headers = api
    ask(client, headers)
    again = client.post(
        "/api/v1/bank-details", json={"iban": NEW_IBAN, "bic": NEW_BIC}, headers=headers
    )
    assert again.status_code == 409
    cancelled = client.post(
        "/api/v1/bank-details/cancel", json={"reason": "not us"}, headers=headers
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    paid = runs.run_payments(platform, None, tmp_path, "test")
    assert paid.held == ()
    accounts = sepa_accounts(tmp_path / "RMP000001" / runs.TRANSFERS_FILE)
    assert accounts[f"RMP000001-T-{GP}"] != NEW_IBAN  # the account of the convention


def test_an_operator_stops_a_change_the_practice_never_asked_for(api: Api) -> None:
    client, platform, headers = api
    ask(client, headers)
    view = bank_details.cancel_for_operator(platform, GP, "the practice called", "cli:ops")
    assert view.status == "cancelled"
    (event,) = [e for e in tags(platform) if e.tag == Tag.BANK_DETAILS_CANCELLED]
    assert event.actor == "cli:ops"
    assert event.organisation == GP


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"iban": "FR7630004000011234567890199", "bic": NEW_BIC}, "iban"),  # wrong check digits
        ({"iban": "US12345678901234567890", "bic": NEW_BIC}, "iban"),
        ({"iban": NEW_IBAN, "bic": "NOTABIC!"}, "bic"),
    ],
)
def test_a_wrong_account_is_refused_without_being_repeated(
    api: Api, body: dict[str, str], field: str
) -> None:
    client, _, headers = api
    answer = client.post("/api/v1/bank-details", json=body, headers=headers)
    assert answer.status_code == 422
    assert answer.json().get("field", field) == field
    assert body["iban"] not in answer.text


def test_the_account_already_used_is_not_a_change(api: Api) -> None:
    client, _, headers = api
    iban = make_french_iban("30004", "00001", "12345678901")  # add_claims_world's
    answer = client.post(
        "/api/v1/bank-details", json={"iban": iban, "bic": NEW_BIC}, headers=headers
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "iban"


def test_every_step_is_on_the_record_with_the_hint_only(api: Api) -> None:
    client, platform, headers = api
    ask(client, headers)
    confirm(client, headers, letter_code(platform))
    events = [e for e in tags(platform) if e.tag.startswith("professional:bank-details")]
    assert [e.tag for e in events] == [Tag.BANK_DETAILS_REQUESTED, Tag.BANK_DETAILS_CHANGED]
    assert all(e.organisation == GP and e.actor.startswith("user:") for e in events)
    assert all(NEW_IBAN not in e.encode().decode() for e in tags(platform))


def test_billing_software_cannot_change_bank_details(api: Api) -> None:
    client, platform, headers = api
    pid = professional_ids(platform)[GP]
    software = Principal("client:x", "professional", uuid.uuid4(), None, pid, GP, "gp")
    with pytest.raises(Forbidden):
        bank_details.request_change(platform, software, NEW_IBAN, NEW_BIC, Client())
    assert client.get("/api/v1/bank-details", headers=headers).json()["change"] is None


def test_a_new_account_altered_in_the_database_is_never_paid(api: Api, tmp_path: Path) -> None:
    client, platform, headers = api
    ask(client, headers)
    confirm(client, headers, letter_code(platform))
    set_rows(platform, BankChange, usable_from=datetime.now(UTC) - timedelta(minutes=1))
    with platform.engine.begin() as connection:  # the hint of another account, put in place
        connection.execute(update(BankChange).values(iban_hint="FR76…6666"))
    outcome = runs.run_payments(platform, None, tmp_path, "test")
    assert [(h.am_number, h.reason) for h in outcome.held] == [
        (GP, "stored bank details failed an integrity check")
    ]
    assert outcome.run is not None
    assert not any(GP in ref for ref in sepa_accounts(tmp_path / "RMP000001" / runs.TRANSFERS_FILE))
