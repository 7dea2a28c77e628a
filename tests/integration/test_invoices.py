"""Invoices (DRE) over HTTP: the worked examples to the cent, retries, duplicates, counters that
hold under concurrency, cancellation, the payment guarantee, and no reading of others' invoices."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rempart.app import create_app
from rempart.claims.models import Booking, Invoice, RenewalUse
from rempart.dates import PARIS
from rempart.integrity.verify import verify_integrity
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, import_members
from tests.support import (
    AMC,
    BILLERS,
    CLAIMANTS,
    ON_BASE,
    ON_CONFORT,
    Person,
    ProfessionalsApi,
    add_account,
    add_claims_world,
    as_,
    bill,
    claim_line,
    invoice_body,
    member_file,
    pay_line,
    person,
    set_rows,
    sign_in,
    today,
)


@pytest.fixture
def api(platform: Platform) -> Iterator[ProfessionalsApi]:
    add_claims_world(platform)
    with TestClient(create_app(platform.settings, platform)) as client:
        yield ProfessionalsApi(client, platform, BILLERS)


def submit(
    api: ProfessionalsApi, headers: dict[str, str], body: dict[str, Any], key: str | None = None
) -> dict[str, Any]:
    client = api.client
    extra = {"Idempotency-Key": key} if key else {}
    response = client.post("/api/v1/invoices", json=body, headers=headers | extra)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def amounts(answer: dict[str, Any]) -> list[str]:
    return [line["amc_amount"] for line in answer["lines"]]


def codes(answer: dict[str, Any]) -> list[list[str]]:
    return [line["reject_codes"] for line in answer["lines"]]


def prosthesis(care_date: Any = None, billed: str = "1000.00") -> dict[str, Any]:
    """A dental prosthesis under CONFORT (DEPR 300 %, ceiling 500.00 a year): AMC 258.00."""
    return claim_line("DEPR", billed, "107.50", 60, care_date)


def glasses(care_date: Any = None, frame: str = "150.00") -> list[dict[str, Any]]:
    """DOMAIN.md example 4: a frame and two lenses, AMC 300.00 in all."""
    return [
        claim_line("OPTI", frame, "0.05", 60, care_date, amo_paid="0.03", item_type="frame"),
        claim_line("OPTI", "120.00", "0.05", 60, care_date, amo_paid="0.03", item_type="lens"),
        claim_line("OPTI", "120.00", "0.05", 60, care_date, amo_paid="0.03", item_type="lens"),
    ]


def count(platform: Platform, model: type[Any]) -> int:
    with platform.sessions() as session:
        found: int = session.scalar(select(func.count()).select_from(model)) or 0
        return found


@pytest.mark.parametrize(
    ("biller", "who", "lines", "expected", "status"),
    [
        ("gp", ON_BASE, [claim_line("MED", "30.00", "30.00", 70)], ["9.00"], "accepted"),
        (
            "specialist",
            ON_CONFORT,
            [claim_line("MED", "70.00", "31.50", 70, optam=True)],
            ["40.95"],
            "accepted",
        ),
        (
            "pharmacist",
            ON_BASE,
            [claim_line("PHAR", "10.00", "10.00", 30), claim_line("PHAR", "10.00", "10.00", 15)],
            ["7.00", "0.00"],
            "partial",
        ),
        ("optician", ON_CONFORT, glasses(), ["100.00", "119.97", "80.03"], "accepted"),
        (
            "audiologist",
            ON_CONFORT,
            [
                claim_line(
                    "AUDI",
                    "950.00",
                    "400.00",
                    60,
                    basket="100PS",
                    price_limit="950.00",
                    item_type="hearing_aid",
                )
            ],
            ["710.00"],
            "accepted",
        ),
        ("dentist", ON_BASE, [claim_line("DESO", "29.30", "29.30", 60)], ["11.72"], "accepted"),
    ],
    ids=["1-gp", "2-optam-specialist", "3-drugs", "4-glasses", "5-hearing-aid", "6-filling"],
)
def test_the_worked_examples_are_paid_to_the_cent(
    api: ProfessionalsApi,
    biller: str,
    who: Person,
    lines: list[dict[str, Any]],
    expected: list[str],
    status: str,
) -> None:
    answer = submit(api, as_(api, biller), invoice_body(who, lines))
    assert amounts(answer) == expected
    assert answer["status"] == status
    assert answer["total_amc"] == f"{sum(float(a) for a in expected):.2f}"
    assert set(answer) == {"id", "status", "lines", "total_amc"}
    client = api.client
    again = client.get(f"/api/v1/invoices/{answer['id']}", headers=as_(api, biller))
    assert again.json() == answer
    if biller == "pharmacist":
        assert codes(answer) == [[], ["NOT_COVERED"]]


def test_a_retry_under_the_same_key_gets_the_first_answer_and_books_once(
    api: ProfessionalsApi,
) -> None:
    client, platform = api.client, api.platform
    dentist = as_(api, "dentist")
    body = invoice_body(ON_CONFORT, [prosthesis()])
    headers = dentist | {"Idempotency-Key": "lgo-2026-000042"}
    first = client.post("/api/v1/invoices", json=body, headers=headers)
    again = client.post("/api/v1/invoices", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content  # the same id, the same bytes
    assert count(platform, Invoice) == 1
    assert count(platform, Booking) == 1
    # Cancelled since, the first answer is still the answer to a retry of that request.
    assert client.post(f"/api/v1/invoices/{first.json()['id']}/cancel", headers=dentist).is_success
    assert client.post("/api/v1/invoices", json=body, headers=headers).content == first.content


def test_another_body_under_the_same_key_is_a_conflict(api: ProfessionalsApi) -> None:
    client, platform = api.client, api.platform
    dentist = as_(api, "dentist")
    headers = dentist | {"Idempotency-Key": "lgo-2026-000043"}
    body = invoice_body(ON_CONFORT, [prosthesis()])
    assert client.post("/api/v1/invoices", json=body, headers=headers).status_code == 201
    other = client.post(
        "/api/v1/invoices",
        json=invoice_body(ON_CONFORT, [prosthesis(billed="900.00")]),
        headers=headers,
    )
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert ON_CONFORT.member_number not in other.text
    assert count(platform, Invoice) == 1


def test_an_idempotency_key_belongs_to_its_professional(api: ProfessionalsApi) -> None:
    body = invoice_body(ON_BASE, [claim_line("PHAR", "10.00", "10.00", 30)])
    first = submit(api, as_(api, "pharmacist"), body, key="same-key")
    second = submit(api, as_(api, "pharmacist2"), body, key="same-key")
    assert first["id"] != second["id"]
    assert amounts(second) == ["7.00"]  # another professional: not a duplicate either


def test_a_line_already_accepted_is_a_duplicate(api: ProfessionalsApi) -> None:
    pharmacist = as_(api, "pharmacist")
    drugs = [claim_line("PHAR", "10.00", "10.00", 30), claim_line("PHAR", "4.50", "4.50", 65)]
    first = submit(api, pharmacist, invoice_body(ON_BASE, drugs, "F-1"))
    assert first["status"] == "accepted"
    # The same drug again, and a new one: the new one is paid, the copy is not.
    again = submit(
        api,
        pharmacist,
        invoice_body(ON_BASE, [drugs[0], claim_line("PHAR", "6.00", "6.00", 65)], "F-2"),
    )
    assert codes(again) == [["DUPLICATE"], []]
    assert amounts(again) == ["0.00", "2.10"]
    assert again["status"] == "partial"
    # Identical lines within one invoice are two boxes, not a duplicate.
    twice = submit(
        api,
        pharmacist,
        invoice_body(ON_BASE, [claim_line("PHAR", "3.00", "3.00", 65)] * 2, "F-3"),
    )
    assert twice["status"] == "accepted"


def test_a_ceiling_is_consumed_across_invoices(api: ProfessionalsApi) -> None:
    dentist = as_(api, "dentist")
    paid = [
        submit(api, dentist, invoice_body(ON_CONFORT, [prosthesis(billed=f"{b}.00")], f"F-{b}"))
        for b in (1000, 1001, 1002)
    ]
    assert [amounts(p) for p in paid] == [["258.00"], ["242.00"], ["0.00"]]
    assert [p["status"] for p in paid] == ["accepted", "partial", "rejected"]
    assert codes(paid[1]) == codes(paid[2]) == [["CEILING_REACHED"]]


def test_a_second_equipment_within_the_renewal_period_waits_until_the_first_is_cancelled(
    api: ProfessionalsApi,
) -> None:
    client = api.client
    optician = as_(api, "optician")
    earlier = today() - timedelta(days=300)
    first = submit(api, optician, invoice_body(ON_CONFORT, glasses(earlier), "F-1"))
    assert first["status"] == "accepted"
    second = invoice_body(ON_CONFORT, glasses(frame="160.00"), "F-2")
    refused = submit(api, optician, second)
    assert codes(refused) == [["RENEWAL_TOO_SOON"]] * 3
    assert refused["total_amc"] == "0.00"
    cancelled = client.post(f"/api/v1/invoices/{first['id']}/cancel", headers=optician)
    assert cancelled.json()["status"] == "cancelled"
    assert submit(api, optician, second)["total_amc"] == "300.00"


def test_cancelling_gives_back_every_counter_and_the_invoice_can_be_sent_again(
    api: ProfessionalsApi,
) -> None:
    client, platform = api.client, api.platform
    dentist = as_(api, "dentist")
    body = invoice_body(ON_CONFORT, [prosthesis()], "F-1")
    first = submit(api, dentist, body)
    partial = submit(api, dentist, invoice_body(ON_CONFORT, [prosthesis(billed="999.00")], "F-2"))
    assert amounts(partial) == ["242.00"]
    response = client.post(f"/api/v1/invoices/{first['id']}/cancel", headers=dentist)
    assert response.status_code == 200
    assert response.json() == first | {"status": "cancelled"}
    assert client.get(f"/api/v1/invoices/{first['id']}", headers=dentist).json()["status"] == (
        "cancelled"
    )
    # Its 258.00 are back under the ceiling, and its line is no longer a duplicate.
    assert amounts(submit(api, dentist, body)) == ["258.00"]
    again = client.post(f"/api/v1/invoices/{first['id']}/cancel", headers=dentist)
    assert again.status_code == 409
    assert verify_integrity(platform).intact


def test_a_paid_invoice_cannot_be_cancelled(api: ProfessionalsApi) -> None:
    client, platform = api.client, api.platform
    dentist = as_(api, "dentist")
    paid = submit(api, dentist, invoice_body(ON_CONFORT, [prosthesis()]))
    set_rows(platform, Invoice, Invoice.id == uuid.UUID(paid["id"]), paid_at=datetime.now(UTC))
    response = client.post(f"/api/v1/invoices/{paid['id']}/cancel", headers=dentist)
    assert response.status_code == 409
    assert count(platform, Booking) == 1


def engagement_for(api: ProfessionalsApi, who: Person, care: date) -> dict[str, Any]:
    """The engagement a GP's rights check answers for a consultation of ``who`` on ``care``."""
    check = {
        "amc_number": AMC,
        "member_number": who.member_number,
        "birth_date": who.birth_date,
        "birth_rank": 1,
        "domain": "MED",
        "care_date": care.isoformat(),
    }
    response = api.client.post("/api/v1/eligibility", json=check, headers=as_(api, "gp"))
    engagement: dict[str, Any] = response.json()["engagement"]
    return engagement


def test_an_engagement_is_honoured_after_the_rights_are_closed(api: ProfessionalsApi) -> None:
    platform = api.platform
    pharmacist = as_(api, "pharmacist")
    who = CLAIMANTS[3]
    gp = as_(api, "gp")
    engagement = engagement_for(api, who, today())
    closed = who.but(end_date=(today() - timedelta(days=1)).isoformat())
    import_members(platform, AMC, io.BytesIO(member_file([closed])), ImportOptions(delta=True))
    consultation = [claim_line("MED", "30.00", "30.00", 70)]
    without = submit(api, gp, invoice_body(who, consultation, "F-1"))
    assert codes(without) == [["RIGHTS_CLOSED"]]
    honoured = submit(
        api, gp, invoice_body(who, consultation, "F-2", engagement=engagement["number"])
    )
    assert amounts(honoured) == ["9.00"]  # CONFORT: MED 200 %, capped at billed − AMO
    # Bound to its professional: another one quoting it gets nothing.
    forged = submit(
        api,
        pharmacist,
        invoice_body(
            who, [claim_line("PHAR", "10.00", "10.00", 30)], engagement=engagement["number"]
        ),
    )
    assert codes(forged) == [["ENGAGEMENT_INVALID"]]


def test_an_engagement_is_quoted_within_its_days_counted_in_paris(api: ProfessionalsApi) -> None:
    """An engagement for care on day D is honoured on invoices quoted up to engagement_days
    after D, in Paris days: at 00:30 in Paris on the day after, it is still D + 30 in UTC, and
    the engagement has expired all the same."""
    platform = api.platform
    who = CLAIMANTS[4]
    care = today() - timedelta(days=40)
    engagement = engagement_for(api, who, care)
    number = engagement["number"]
    last = care + timedelta(days=platform.settings.engagement_days)
    assert engagement["valid_until"] == last.isoformat()
    consultation = [pay_line("MED", 3000, 3000, 70, day=care)]

    def quoted(at: datetime, invoice: str) -> list[tuple[str, ...]]:
        view = bill(platform, "gp", who, consultation, invoice, now=at, engagement=number)
        return [line.reject_codes for line in view.lines]

    after = datetime.combine(last + timedelta(days=1), time(0, 30), PARIS)
    assert after.astimezone(UTC).date() == last  # the day UTC and Paris disagree on
    assert quoted(after.astimezone(UTC), "F-LATE") == [("ENGAGEMENT_INVALID",)]
    in_time = datetime.combine(last, time(23, 30), PARIS).astimezone(UTC)
    assert quoted(in_time, "F-LAST-DAY") == [()]


def test_a_prior_agreement_reference_is_unknown_until_agreements_are_served(
    api: ProfessionalsApi,
) -> None:
    answer = submit(
        api,
        as_(api, "gp"),
        invoice_body(ON_BASE, [claim_line("MED", "30.00", "30.00", 70)], prior_agreement="PEC-1"),
    )
    assert answer["status"] == "accepted"  # MED needs no agreement: the reference is ignored
    platform = api.platform
    with platform.sessions() as session:
        assert session.scalar(select(Invoice.prior_agreement)) == "PEC-1"


def test_an_unknown_card_is_answered_as_closed_rights(api: ProfessionalsApi) -> None:
    platform = api.platform
    gp = as_(api, "gp")
    ended = person(20).but(end_date=(today() - timedelta(days=3)).isoformat())
    import_members(platform, AMC, io.BytesIO(member_file([ended])), ImportOptions(delta=True))
    lines = [claim_line("MED", "30.00", "30.00", 70)]
    unknown = submit(api, gp, invoice_body(person(99), lines))
    closed = submit(api, gp, invoice_body(ended, lines))
    assert unknown | {"id": None} == closed | {"id": None}
    assert closed["status"] == "rejected"


def test_another_professional_can_neither_read_nor_cancel_an_invoice(api: ProfessionalsApi) -> None:
    client, platform = api.client, api.platform
    victim = as_(api, "pharmacist")
    invoice = submit(api, victim, invoice_body(ON_BASE, [claim_line("PHAR", "10.00", "10.00", 30)]))
    attacker = as_(api, "pharmacist2")
    missing = uuid.uuid4()
    for path in (f"/api/v1/invoices/{invoice['id']}", f"/api/v1/invoices/{missing}"):
        read = client.get(path, headers=attacker)
        assert read.status_code == 404
        cancel = client.post(f"{path}/cancel", headers=attacker)
        assert cancel.status_code == 404
    # Not found, alike: nothing tells the attacker that the first id exists.
    assert client.get(f"/api/v1/invoices/{invoice['id']}", headers=attacker).json() == {
        **client.get(f"/api/v1/invoices/{missing}", headers=attacker).json()
    }
    assert client.get(f"/api/v1/invoices/{invoice['id']}", headers=victim).json() == invoice
    secret = add_account(platform, "amc", "gestion@mutuelle.example", amc_number=AMC)
    insurer = sign_in(client, platform, "gestion@mutuelle.example", secret)
    assert client.get(f"/api/v1/invoices/{invoice['id']}", headers=insurer).status_code == 403
    assert client.get(f"/api/v1/invoices/{invoice['id']}").status_code == 401
    assert count(platform, Booking) == 1


def test_submissions_reads_and_cancellations_are_recorded_without_personal_data(
    api: ProfessionalsApi,
) -> None:
    client, platform = api.client, api.platform
    pharmacist = as_(api, "pharmacist")
    answer = submit(
        api, pharmacist, invoice_body(ON_BASE, [claim_line("PHAR", "10.00", "10.00", 30)])
    )
    submit(api, pharmacist, invoice_body(person(99), [claim_line("PHAR", "10.00", "10.00", 30)]))
    client.get(f"/api/v1/invoices/{answer['id']}", headers=pharmacist)
    client.post(f"/api/v1/invoices/{answer['id']}/cancel", headers=pharmacist)
    with platform.sessions() as session:
        entries = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.tag.in_(["beneficiary:invoice:write", "beneficiary:claim:read"]))
            .order_by(LedgerEntry.seq)
        ).all()
    events = [json.loads(e.event) for e in entries]
    assert [(e["tag"], e["outcome"]) for e in events] == [
        ("beneficiary:invoice:write", "accepted"),
        ("beneficiary:invoice:write", "unknown"),
        ("beneficiary:claim:read", "read"),
        ("beneficiary:invoice:write", "cancelled"),
    ]
    first, unknown, read, cancel = events
    assert first["beneficiary"] == read["beneficiary"] == cancel["beneficiary"] is not None
    assert unknown["beneficiary"] is None
    assert first["purpose"] == read["purpose"] == f"invoice {answer['id']}"
    assert all(e["organisation"] == BILLERS["pharmacist"] and e["tenant"] == AMC for e in events)
    for entry in entries:
        for personal in (ON_BASE.nir, ON_BASE.last_name, ON_BASE.birth_date, ON_BASE.member_number):
            assert personal.encode() not in entry.event
    with platform.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT * FROM invoices").all()
    for personal in (ON_BASE.member_number, ON_BASE.birth_date, ON_BASE.nir):
        assert personal not in repr(stored)


def test_concurrent_invoices_never_overspend_a_ceiling_or_a_renewal(api: ProfessionalsApi) -> None:
    """Ten invoices at once for one patient's equipment, then ten against one ceiling: one pair of
    glasses is paid, and the ceiling's 500.00 exactly."""
    client, platform = api.client, api.platform
    optician, dentist = as_(api, "optician"), as_(api, "dentist")
    who = CLAIMANTS[4]
    # The platform's secrets are created on first use: not what this test races.
    submit(api, dentist, invoice_body(ON_BASE, [claim_line("DESO", "29.30", "29.30", 60)]))

    def race(headers: dict[str, str], bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        start = threading.Barrier(len(bodies))
        answers: list[dict[str, Any]] = [{}] * len(bodies)

        def send(n: int) -> None:
            start.wait()
            response = client.post("/api/v1/invoices", json=bodies[n], headers=headers)
            answers[n] = {"code": response.status_code, **response.json()}

        threads = [threading.Thread(target=send, args=(n,)) for n in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    glasses_answers = race(
        optician,
        [invoice_body(who, glasses(frame=f"{150 + n}.00"), f"G-{n}") for n in range(10)],
    )
    assert [a["code"] for a in glasses_answers] == [201] * 10
    assert sorted(a["status"] for a in glasses_answers) == ["accepted"] + ["rejected"] * 9
    assert sum(float(a["total_amc"]) for a in glasses_answers) == 300.00
    assert count(platform, RenewalUse) == 1
    ceiling_answers = race(
        dentist,
        [invoice_body(who, [prosthesis(billed=f"{1000 + n}.00")], f"D-{n}") for n in range(10)],
    )
    assert [a["code"] for a in ceiling_answers] == [201] * 10
    assert sum(round(float(a["total_amc"]) * 100) for a in ceiling_answers) == 50000
    assert sorted(a["status"] for a in ceiling_answers) == (
        ["accepted", "partial"] + ["rejected"] * 8
    )
    assert verify_integrity(platform).intact


def test_a_batch_is_adjudicated_in_order_and_reported(api: ProfessionalsApi) -> None:
    client, platform = api.client, api.platform
    dentist = as_(api, "dentist")
    keyed = invoice_body(ON_CONFORT, [prosthesis(billed="1000.00")], "B-1")
    batch = {
        "invoices": [
            keyed | {"idempotency_key": "batch-1"},
            invoice_body(ON_CONFORT, [prosthesis(billed="1001.00")], "B-2"),
            invoice_body(ON_CONFORT, [prosthesis(billed="1002.00")], "B-3"),
            invoice_body(ON_BASE, [claim_line("DESO", "29.30", "29.30", 60)], "B-4"),
            invoice_body(ON_BASE, [claim_line("DESO", "29.30", "29.30", 60)], "B-5"),
            invoice_body(ON_BASE, [claim_line("DESO", "9.30", "9.30", 60)], "B-6")
            | {"idempotency_key": "batch-1"},  # the key of the first, another body
            keyed | {"idempotency_key": "batch-1"},  # a retry of the first within the batch
            invoice_body(
                ON_BASE, [claim_line("DESO", "1.00", "1.00", 60, today() - timedelta(days=800))]
            ),
        ]
    }
    response = client.post("/api/v1/invoices/batch", json=batch, headers=dentist)
    assert response.status_code == 200, response.text
    report = response.json()
    assert {k: report[k] for k in ("accepted", "partial", "rejected", "replayed", "refused")} == {
        "accepted": 2,
        "partial": 1,
        "rejected": 2,
        "replayed": 1,
        "refused": 2,
    }
    assert report["reject_codes"] == {"CEILING_REACHED": 2, "DUPLICATE": 1}
    assert report["total_amc"] == "511.72"  # 258.00 + 242.00 + 11.72
    results = report["results"]
    assert [r["index"] for r in results] == list(range(8))
    assert results[6]["invoice"] == results[0]["invoice"]
    assert results[5]["error"]["status"] == 409
    assert results[7]["error"]["status"] == 422
    assert count(platform, Invoice) == 5
    # The batch's first invoice answers a later single retry too.
    single = submit(api, dentist, keyed, key="batch-1")
    assert single == results[0]["invoice"]
    too_many = client.post(
        "/api/v1/invoices/batch", json={"invoices": [keyed] * 501}, headers=dentist
    )
    assert too_many.status_code == 422


@pytest.mark.parametrize(
    "change",
    [
        {"invoice_number": "F 1; DROP"},
        {"invoice_number": ""},
        {"nir": "253072B07300470"},
        {"lines": []},
    ],
)
def test_malformed_invoices_are_refused_without_echo(
    api: ProfessionalsApi, change: dict[str, Any]
) -> None:
    client, platform = api.client, api.platform
    body = invoice_body(ON_BASE, [claim_line("MED", "30.00", "30.00", 70)]) | change
    response = client.post("/api/v1/invoices", json=body, headers=as_(api, "gp"))
    assert response.status_code == 422
    assert "253072B07300470" not in response.text
    assert "DROP" not in response.text
    bad_key = client.post(
        "/api/v1/invoices",
        json=invoice_body(ON_BASE, [claim_line("MED", "30.00", "30.00", 70)]),
        headers=as_(api, "gp") | {"Idempotency-Key": "with space"},
    )
    assert bad_key.status_code == 422
    assert count(platform, Invoice) == 0
