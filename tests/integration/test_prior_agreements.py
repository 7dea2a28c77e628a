"""Prior agreements (PEC) over HTTP: DOMAIN.md's flow 5 and worked examples to the cent, the
validity, renewal reservations that hold under concurrency, cancellation, use by one invoice and
its cap, the reject codes, and no reading, cancelling or quoting of another practice's."""

from __future__ import annotations

import io
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rempart.app import create_app
from rempart.claims.engine import add_months
from rempart.claims.models import Invoice, PriorAgreement, PriorAgreementLine, RenewalUse
from rempart.integrity.verify import verify_integrity
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, import_members
from tests.support import (
    AMC,
    BILLERS,
    DENTIST2_AM,
    ON_CONFORT,
    OPTICIAN2_AM,
    UNDER_AGREEMENT,
    Person,
    ProfessionalsApi,
    add_account,
    add_prior_agreement_world,
    as_,
    claim_line,
    invoice_body,
    member_file,
    person,
    set_rows,
    sign_in,
    today,
)

AGREEMENTS = "/api/v1/prior-agreements"
REFERENCE = re.compile(r"PA[A-Z2-7]{24}")
NUMBERS = BILLERS | {"optician2": OPTICIAN2_AM, "dentist2": DENTIST2_AM}


@pytest.fixture
def api(platform: Platform) -> Iterator[ProfessionalsApi]:
    add_prior_agreement_world(platform)
    with TestClient(create_app(platform.settings, platform)) as client:
        yield ProfessionalsApi(client, platform, NUMBERS)


def quote_body(who: Person, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "amc_number": AMC,
        "member_number": who.member_number,
        "birth_date": who.birth_date,
        "birth_rank": int(who.birth_rank),
        "lines": lines,
    }


def ask(
    api: ProfessionalsApi, name: str, who: Person, lines: list[dict[str, Any]]
) -> dict[str, Any]:
    """Ask for an agreement; 201 when something is agreed, 200 when nothing is."""
    client = api.client
    response = client.post(AGREEMENTS, json=quote_body(who, lines), headers=as_(api, name))
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    assert response.status_code == (201 if answer["reference"] else 200)
    return answer


def bill(api: ProfessionalsApi, name: str, body: dict[str, Any]) -> dict[str, Any]:
    client = api.client
    response = client.post("/api/v1/invoices", json=body, headers=as_(api, name))
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def amounts(answer: dict[str, Any]) -> list[str]:
    return [line["amc_amount"] for line in answer["lines"]]


def codes(answer: dict[str, Any]) -> list[list[str]]:
    return [line["reject_codes"] for line in answer["lines"]]


def glasses(frame: str = "150.00", lens: str = "120.00") -> list[dict[str, Any]]:
    """DOMAIN.md example 4: a frame and two lenses, AMC 300.00 in all."""
    return [
        claim_line("OPTI", billed, "0.05", 60, today(), amo_paid="0.03", item_type=kind)
        for billed, kind in ((frame, "frame"), (lens, "lens"), (lens, "lens"))
    ]


def hearing_aid() -> dict[str, Any]:
    """DOMAIN.md example 5: a class I hearing aid (100 % Santé), AMC 710.00."""
    return claim_line(
        "AUDI",
        "950.00",
        "400.00",
        60,
        today(),
        basket="100PS",
        price_limit="950.00",
        item_type="hearing_aid",
    )


def count(platform: Platform, model: type[Any], *where: Any) -> int:
    with platform.sessions() as session:
        found: int = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
        return found


@pytest.mark.parametrize(
    ("biller", "care", "expected"),
    [
        ("optician", glasses, ["100.00", "119.97", "80.03"]),
        ("audiologist", lambda: [hearing_aid()], ["710.00"]),
    ],
    ids=["4-glasses", "5-hearing-aid"],
)
def test_the_worked_examples_are_agreed_and_then_paid_to_the_cent(
    api: ProfessionalsApi,
    biller: str,
    care: Callable[[], list[dict[str, Any]]],
    expected: list[str],
) -> None:
    client, platform = api.client, api.platform
    who = UNDER_AGREEMENT[0]
    lines = care()  # dated when the test runs (quotes are for today or later), not when collected
    # DOMAIN.md's plan needs an agreement for these domains: an invoice without one is refused.
    without = bill(api, biller, invoice_body(who, lines, "F-0"))
    assert codes(without) == [["PRIOR_AGREEMENT_REQUIRED"]] * len(lines)
    agreement = ask(api, biller, who, lines)
    assert amounts(agreement) == expected
    assert agreement["status"] == "granted"
    assert agreement["total_amc"] == f"{sum(float(a) for a in expected):.2f}"
    assert REFERENCE.fullmatch(agreement["reference"])
    assert not agreement["reference"].startswith("E1")
    assert agreement["valid_from"] == today().isoformat()
    assert agreement["valid_until"] == add_months(today(), 6).isoformat()
    assert set(agreement) == {
        "reference",
        "status",
        "valid_from",
        "valid_until",
        "lines",
        "total_amc",
    }
    assert count(platform, RenewalUse, RenewalUse.source_kind == "prior_agreement") == 1
    paid = bill(
        api, biller, invoice_body(who, lines, "F-1", prior_agreement=agreement["reference"])
    )
    assert amounts(paid) == expected
    assert paid["status"] == "accepted"
    # The agreement is used up, and its reservation became the invoice's renewal: one, not two.
    used = client.get(f"{AGREEMENTS}/{agreement['reference']}", headers=as_(api, biller)).json()
    assert used == agreement | {"status": "consumed"}
    assert count(platform, RenewalUse) == 1
    assert count(platform, RenewalUse, RenewalUse.source_kind == "invoice") == 1
    # Used once: another invoice quoting it (other amounts: not duplicates) is refused; the
    # equipment being fitted, the renewal period is what refuses it first (the engine's order).
    cheaper = [line | {"billed": f"{float(line['billed']) - 1:.2f}"} for line in lines]
    again = bill(
        api, biller, invoice_body(who, cheaper, "F-2", prior_agreement=agreement["reference"])
    )
    assert codes(again) == [["RENEWAL_TOO_SOON"]] * len(lines)
    assert again["total_amc"] == "0.00"
    assert verify_integrity(platform).intact


def test_an_invoice_is_paid_at_most_what_was_agreed_on_the_lines_agreed(
    api: ProfessionalsApi,
) -> None:
    client = api.client
    who = UNDER_AGREEMENT[1]
    # The quote: a cheaper frame and lenses than will be billed.
    agreement = ask(api, "optician", who, glasses(frame="60.00", lens="100.00"))
    assert amounts(agreement) == ["59.97", "99.97", "99.97"]
    reference = agreement["reference"]
    calculation = client.post(
        "/api/v1/calculations",
        json={k: v for k, v in invoice_body(who, glasses()).items() if k != "invoice_number"}
        | {"prior_agreement": reference},
        headers=as_(api, "optician"),
    )
    # Without the agreement these would be 100.00, 119.97 and 80.03: capped line by line.
    assert amounts(calculation.json()) == ["59.97", "99.97", "99.97"]
    # A calculation consumes nothing: the invoice can still use the agreement.
    extra_lens = claim_line(
        "OPTI", "120.00", "0.05", 60, today(), amo_paid="0.03", item_type="lens"
    )
    paid = bill(
        api,
        "optician",
        invoice_body(who, [*glasses(), extra_lens], "F-1", prior_agreement=reference),
    )
    # Each agreed line covers one billed line: a third lens was never agreed.
    assert amounts(paid) == ["59.97", "99.97", "99.97", "0.00"]
    assert codes(paid) == [[], [], [], ["PRIOR_AGREEMENT_INVALID"]]
    assert paid["status"] == "partial"


def test_another_invoice_cannot_use_a_reference_that_is_not_valid_for_it(
    api: ProfessionalsApi,
) -> None:
    client, platform = api.client, api.platform
    who, other = UNDER_AGREEMENT[2], UNDER_AGREEMENT[3]
    optician = as_(api, "optician")

    def refused(name: str, patient: Person, reference: str, lines: Any = None) -> list[list[str]]:
        body = invoice_body(patient, lines or glasses(), prior_agreement=reference)
        answer = bill(api, name, body)
        assert answer["total_amc"] == "0.00"
        return codes(answer)

    invalid = [["PRIOR_AGREEMENT_INVALID"]] * 3
    granted = ask(api, "optician", who, glasses())["reference"]
    assert refused("optician", other, "PA" + "A" * 24) == invalid  # unknown
    assert refused("optician", other, granted) == invalid  # another patient's
    # Another practice's: the patient's equipment is reserved by that agreement, and the
    # renewal period is checked first (the engine's order).
    assert refused("optician2", who, granted) == [["RENEWAL_TOO_SOON"]] * 3
    treatment = [claim_line("DEOR", "500.00", "193.50", 0, today(), act_code="TO90")]
    orthodontics = ask(api, "dentist", who, treatment)["reference"]
    assert refused("dentist2", who, orthodontics, treatment) == [["PRIOR_AGREEMENT_INVALID"]]
    cancelled = ask(api, "optician", other, glasses())["reference"]
    assert client.post(f"{AGREEMENTS}/{cancelled}/cancel", headers=optician).is_success
    assert refused("optician", other, cancelled) == invalid
    # Expired: its validity ended yesterday.
    yesterday = today() - timedelta(days=1)
    set_rows(
        platform,
        PriorAgreement,
        PriorAgreement.reference == granted,
        valid_from=yesterday - timedelta(days=180),
        valid_until=yesterday,
    )
    assert client.get(f"{AGREEMENTS}/{granted}", headers=optician).json()["status"] == "expired"
    assert refused("optician", who, granted) == invalid
    assert client.post(f"{AGREEMENTS}/{granted}/cancel", headers=optician).status_code == 409
    assert count(platform, Invoice, Invoice.total_amc > 0) == 0
    # An expired agreement reserves nothing any more: a new one can be granted.
    assert ask(api, "optician", who, glasses())["status"] == "granted"


def test_an_agreement_reserves_the_renewal_until_it_is_cancelled(api: ProfessionalsApi) -> None:
    client, platform = api.client, api.platform
    who = UNDER_AGREEMENT[4]
    optician = as_(api, "optician")
    first = ask(api, "optician", who, glasses())
    second = ask(api, "optician2", who, glasses(frame="155.00"))
    assert (second["reference"], second["status"], second["valid_until"]) == (
        None,
        "rejected",
        None,
    )
    assert codes(second) == [["RENEWAL_TOO_SOON"]] * 3
    assert count(platform, PriorAgreement) == 1  # nothing agreed, nothing stored
    cancel = client.post(f"{AGREEMENTS}/{first['reference']}/cancel", headers=optician)
    assert cancel.status_code == 200
    assert cancel.json() == first | {"status": "cancelled"}
    assert count(platform, RenewalUse) == 0
    again = client.post(f"{AGREEMENTS}/{first['reference']}/cancel", headers=optician)
    assert again.status_code == 409
    third = ask(api, "optician2", who, glasses(frame="155.00"))
    assert third["status"] == "granted"
    # A used agreement cannot be cancelled; its invoice can, and gives the agreement back.
    paid = bill(
        api,
        "optician2",
        invoice_body(who, glasses(frame="155.00"), prior_agreement=third["reference"]),
    )
    assert paid["total_amc"] == "300.00"
    pro2 = as_(api, "optician2")
    assert client.post(f"{AGREEMENTS}/{third['reference']}/cancel", headers=pro2).status_code == 409
    assert client.post(f"/api/v1/invoices/{paid['id']}/cancel", headers=pro2).is_success
    back = client.get(f"{AGREEMENTS}/{third['reference']}", headers=pro2).json()
    assert back["status"] == "granted"
    assert count(platform, RenewalUse, RenewalUse.source_kind == "prior_agreement") == 1
    assert ask(api, "optician", who, glasses())["status"] == "rejected"  # reserved again
    repaid = bill(
        api,
        "optician2",
        invoice_body(who, glasses(frame="155.00"), "F-2", prior_agreement=third["reference"]),
    )
    assert repaid["total_amc"] == "300.00"
    assert count(platform, RenewalUse) == 1
    assert verify_integrity(platform).intact


def test_agreements_reserve_no_ceiling_amount(api: ProfessionalsApi) -> None:
    """DEOR 300 % under a 600.00 yearly ceiling: two agreements of 500.00 are both granted; the
    second invoice gets what the first left of the ceiling."""
    who = UNDER_AGREEMENT[5]
    treatment = [claim_line("DEOR", "500.00", "193.50", 0, today(), act_code="TO90")]
    first = ask(api, "dentist", who, treatment)
    second = ask(api, "dentist", who, treatment)
    assert amounts(first) == amounts(second) == ["500.00"]
    assert first["status"] == second["status"] == "granted"
    paid = [
        bill(
            api,
            "dentist",
            invoice_body(who, [line], f"D-{n}", prior_agreement=agreement["reference"]),
        )
        for n, (line, agreement) in enumerate(
            ((treatment[0], first), (treatment[0] | {"billed": "501.00"}, second))
        )
    ]
    assert [amounts(p) for p in paid] == [["500.00"], ["100.00"]]
    assert codes(paid[1]) == [["CEILING_REACHED"]]
    # Each is used once: quoted again, it covers nothing (no renewal period here).
    later = [claim_line("DEOR", "450.00", "193.50", 0, today(), act_code="TO90")]
    again = bill(
        api, "dentist", invoice_body(who, later, "D-3", prior_agreement=first["reference"])
    )
    assert codes(again) == [["PRIOR_AGREEMENT_INVALID"]]
    # The year's ceiling used up, a new quote would be agreed for 0.00: nothing is agreed.
    nothing = ask(api, "dentist", who, later)
    assert (nothing["status"], nothing["reference"], codes(nothing)) == (
        "rejected",
        None,
        [["CEILING_REACHED"]],
    )


def test_lines_that_need_no_agreement_and_unknown_cards_are_not_agreed(
    api: ProfessionalsApi,
) -> None:
    client, platform = api.client, api.platform
    # CONFORT's optics need no agreement: nothing to agree, invoice them directly.
    direct = ask(api, "optician", ON_CONFORT, glasses())
    assert codes(direct) == [["INVALID_LINE"]] * 3
    assert "needs no prior agreement" in direct["lines"][0]["explanation"]
    assert direct["reference"] is None
    # An unknown card is answered exactly as closed rights.
    closed = UNDER_AGREEMENT[6].but(end_date=(today() - timedelta(days=1)).isoformat())
    import_members(platform, AMC, io.BytesIO(member_file([closed])), ImportOptions(delta=True))
    answers = [
        client.post(AGREEMENTS, json=quote_body(who, glasses()), headers=as_(api, "optician"))
        for who in (person(99), closed)
    ]
    assert answers[0].status_code == answers[1].status_code == 200
    assert answers[0].content == answers[1].content
    assert codes(answers[0].json()) == [["RIGHTS_CLOSED"]] * 3


@pytest.mark.parametrize("days", [-1, 190])
def test_an_agreement_is_asked_for_care_within_its_validity(
    api: ProfessionalsApi, days: int
) -> None:
    client, platform = api.client, api.platform
    lines = glasses()
    lines[0]["care_date"] = (today() + timedelta(days=days)).isoformat()
    response = client.post(
        AGREEMENTS, json=quote_body(UNDER_AGREEMENT[0], lines), headers=as_(api, "optician")
    )
    assert response.status_code == 422
    assert UNDER_AGREEMENT[0].member_number not in response.text
    assert count(platform, PriorAgreement) == 0


def test_another_professional_can_neither_read_nor_list_nor_cancel_an_agreement(
    api: ProfessionalsApi,
) -> None:
    client, platform = api.client, api.platform
    victim = as_(api, "optician")
    reference = ask(api, "optician", UNDER_AGREEMENT[7], glasses())["reference"]
    attacker = as_(api, "optician2")
    missing = "PA" + "B" * 24
    for ref in (reference, missing, "E1" + "A" * 24, "x" * 300):
        assert client.get(f"{AGREEMENTS}/{ref}", headers=attacker).status_code == 404
        assert client.post(f"{AGREEMENTS}/{ref}/cancel", headers=attacker).status_code == 404
    # Not found, alike: nothing tells the attacker that the first reference exists.
    assert (
        client.get(f"{AGREEMENTS}/{reference}", headers=attacker).content
        == client.get(f"{AGREEMENTS}/{missing}", headers=attacker).content
    )
    assert client.get(AGREEMENTS, headers=attacker).json() == {"agreements": [], "next": None}
    assert client.get(f"{AGREEMENTS}/{reference}", headers=victim).json()["status"] == "granted"
    secret = add_account(platform, "amc", "gestion@mutuelle.example", amc_number=AMC)
    insurer = sign_in(client, platform, "gestion@mutuelle.example", secret)
    assert client.get(f"{AGREEMENTS}/{reference}", headers=insurer).status_code == 403
    assert client.post(AGREEMENTS, json={}, headers=insurer).status_code == 403
    assert client.get(f"{AGREEMENTS}/{reference}").status_code == 401
    assert count(platform, RenewalUse) == 1


def test_the_list_is_the_professionals_own_newest_first_a_page_at_a_time(
    api: ProfessionalsApi,
) -> None:
    client = api.client
    optician = as_(api, "optician")
    references = [ask(api, "optician", who, glasses())["reference"] for who in UNDER_AGREEMENT[:3]]
    ask(api, "optician2", UNDER_AGREEMENT[3], glasses())
    first = client.get(AGREEMENTS, params={"limit": 2}, headers=optician).json()
    assert [a["reference"] for a in first["agreements"]] == references[:0:-1]
    assert first["next"]
    rest = client.get(
        AGREEMENTS, params={"limit": 2, "before": first["next"]}, headers=optician
    ).json()
    assert [a["reference"] for a in rest["agreements"]] == references[:1]
    assert rest["next"] is None
    for bad in ({"before": "not-a-cursor"}, {"limit": 0}, {"limit": 101}):
        assert client.get(AGREEMENTS, params=bad, headers=optician).status_code == 422, bad


def test_requests_reads_and_cancellations_are_recorded_without_personal_data(
    api: ProfessionalsApi,
) -> None:
    client, platform = api.client, api.platform
    optician = as_(api, "optician")
    who = UNDER_AGREEMENT[8]
    granted = ask(api, "optician", who, glasses())
    ask(api, "optician", who, glasses())  # refused: the renewal is reserved
    ask(api, "optician", person(99), glasses())  # unknown
    client.get(f"{AGREEMENTS}/{granted['reference']}", headers=optician)
    client.post(f"{AGREEMENTS}/{granted['reference']}/cancel", headers=optician)
    with platform.sessions() as session:
        entries = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.tag.like("beneficiary:prior-agreement:%"))
            .order_by(LedgerEntry.seq)
        ).all()
        agreement_id = session.scalar(select(PriorAgreement.id))
    events = [json.loads(e.event) for e in entries]
    assert [(e["tag"], e["outcome"]) for e in events] == [
        ("beneficiary:prior-agreement:create", "granted"),
        ("beneficiary:prior-agreement:create", "rejected"),
        ("beneficiary:prior-agreement:create", "unknown"),
        ("beneficiary:prior-agreement:read", "read"),
        ("beneficiary:prior-agreement:cancel", "cancelled"),
    ]
    created, rejected, unknown, read, cancelled = events
    assert created["beneficiary"] == rejected["beneficiary"] == cancelled["beneficiary"]
    assert created["beneficiary"] is not None
    assert unknown["beneficiary"] is None
    assert created["purpose"] == read["purpose"] == f"prior-agreement {agreement_id}"
    assert all(e["organisation"] == BILLERS["optician"] for e in events)
    for entry in entries:
        assert granted["reference"].encode() not in entry.event
        for personal in (who.nir, who.last_name, who.birth_date, who.member_number):
            assert personal.encode() not in entry.event
    with platform.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT * FROM prior_agreements").all()
    for personal in (who.member_number, who.birth_date, who.nir):
        assert personal not in repr(stored)


def test_concurrent_requests_for_one_equipment_grant_one_agreement(api: ProfessionalsApi) -> None:
    """Ten requests at once for one patient's glasses, then ten invoices at once quoting the
    agreement granted: one agreement, used by one invoice."""
    client, platform = api.client, api.platform
    optician = as_(api, "optician")
    who = UNDER_AGREEMENT[9]
    # The platform's secrets are created on first use: not what this test races.
    ask(api, "optician", UNDER_AGREEMENT[0], glasses())

    def race(path: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        start = threading.Barrier(len(bodies))
        answers: list[dict[str, Any]] = [{}] * len(bodies)

        def send(n: int) -> None:
            start.wait()
            response = client.post(path, json=bodies[n], headers=optician)
            answers[n] = {"code": response.status_code, **response.json()}

        threads = [threading.Thread(target=send, args=(n,)) for n in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    quotes = [glasses(frame=f"{150 + n}.00", lens=f"{120 + n}.00") for n in range(10)]
    asked = race(AGREEMENTS, [quote_body(who, lines) for lines in quotes])
    assert sorted(a["code"] for a in asked) == [200] * 9 + [201]
    assert sorted(a["status"] for a in asked) == ["granted"] + ["rejected"] * 9
    (granted,) = [a for a in asked if a["reference"]]
    assert count(platform, PriorAgreement) == 2
    frame = granted["lines"][0]
    assert frame["amc_amount"] == "100.00"
    reference = granted["reference"]
    bodies = [
        invoice_body(who, lines, f"G-{n}", prior_agreement=reference)
        for n, lines in enumerate(quotes)
    ]
    paid = race("/api/v1/invoices", bodies)
    assert [a["code"] for a in paid] == [201] * 10
    (winner,) = [a for a in paid if a["total_amc"] != "0.00"]
    # Paid at most what was agreed, line by line (each invoice billed its own amounts).
    agreed = amounts(granted)
    assert all(float(a) <= float(b) for a, b in zip(amounts(winner), agreed, strict=True))
    rejected = [a for a in paid if a is not winner]
    assert len(rejected) == 9
    # After the first, the agreement is used and the equipment fitted.
    assert all(codes(a) == [["RENEWAL_TOO_SOON"]] * 3 for a in rejected)
    with platform.sessions() as session:
        uses = session.scalars(select(RenewalUse)).all()
    # The warm-up's reservation, and the invoice's use that replaced the granted one's.
    assert sorted(u.source_kind for u in uses) == ["invoice", "prior_agreement"]
    assert count(platform, PriorAgreementLine) == 6
    assert verify_integrity(platform).intact


def test_references_are_bound_and_unguessable(api: ProfessionalsApi) -> None:
    """Two agreements for the same care by one professional get unrelated references."""
    client, platform = api.client, api.platform
    who = UNDER_AGREEMENT[0]
    first = ask(api, "audiologist", who, [hearing_aid()])
    audiologist = as_(api, "audiologist")
    client.post(f"{AGREEMENTS}/{first['reference']}/cancel", headers=audiologist)
    second = ask(api, "audiologist", who, [hearing_aid()])
    assert first["reference"] != second["reference"]
    assert len({first["reference"][:6], second["reference"][:6]}) == 2
    with platform.sessions() as session:
        ids = session.scalars(select(PriorAgreement.id)).all()
    assert all(uuid.UUID(str(i)).hex not in first["reference"] for i in ids)
