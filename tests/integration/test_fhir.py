"""The FHIR R4 facade: the same answers as /api/v1, valid FHIR, no oracle, nothing personal."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse
from fhir.resources.R4B.operationoutcome import OperationOutcome
from httpx2 import Response
from sqlalchemy import select

from rempart.app import create_app
from rempart.errors import IntegrityFailure
from rempart.fhir.eligibility import benefit
from rempart.fhir.outcome import as_error, error_response
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, import_members
from rempart.registry.plan_format import Guarantee
from rempart.rights.rules import rate_label
from tests.support import (
    AMC,
    BASE_PLAN,
    FHIR,
    OPTICIAN_AM,
    PHARMACIST_AM,
    Person,
    add_account,
    add_insurer,
    add_professionals,
    fhir_claim,
    fhir_eligibility,
    fhir_line,
    member_file,
    person,
    sign_in,
    today,
)

PLAN: dict[str, Any] = copy.deepcopy(BASE_PLAN)
PLAN["guarantees"]["OPTI"] = {"amount": "300.00", "per": "equipment", "prior_agreement": True}
ALICE = person(1)
BOB = person(2).but(end_date=(today() - timedelta(days=10)).isoformat())
CAROL = person(3).but(suspended_domains="PHAR")
NOBODY = person(9)  # not in the member file
FHIR_JSON = "application/fhir+json"
ELIGIBILITY = "/fhir/r4/CoverageEligibilityRequest/$submit"
CLAIM = "/fhir/r4/Claim/$submit"


@pytest.fixture
def api(platform: Platform) -> Iterator[tuple[TestClient, Platform]]:
    add_insurer(platform, plan=PLAN)
    add_professionals(platform)
    report = import_members(
        platform, AMC, io.BytesIO(member_file([ALICE, BOB, CAROL])), ImportOptions()
    )
    assert report.inserted == 3
    with TestClient(create_app(platform.settings, platform)) as client:
        yield client, platform


@pytest.fixture
def pharmacist(api: tuple[TestClient, Platform]) -> dict[str, str]:
    client, platform = api
    secret = add_account(platform, "professional", "pharma@example.org", am_number=PHARMACIST_AM)
    return sign_in(client, platform, "pharma@example.org", secret)


def post(
    client: TestClient, path: str, resource: dict[str, Any], headers: dict[str, str]
) -> Response:
    body = json.dumps(resource).encode()
    return client.post(path, content=body, headers={**headers, "Content-Type": FHIR_JSON})


def parsed(response: Response, model: Any) -> Any:
    """The answer as a ``fhir.resources.R4B`` resource: it must parse, as FHIR JSON."""
    assert response.headers["content-type"] == FHIR_JSON, response.text
    return model.model_validate_json(response.content)


def problem_of(response: Response, status: int, code: str) -> OperationOutcome:
    assert response.status_code == status, response.text
    outcome: OperationOutcome = parsed(response, OperationOutcome)
    assert {issue.code for issue in outcome.issue} == {code}
    return outcome


def never_personal(text: str, *people: Person) -> None:
    for who in people:
        for personal in (who.nir, who.last_name, who.first_name, who.birth_date, who.member_number):
            assert personal not in text


def test_the_fhir_check_agrees_with_the_json_api_and_names_no_one(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, _ = api
    for who in (ALICE, BOB, NOBODY):
        response = post(
            client, ELIGIBILITY, fhir_eligibility(who, "PHAR", today().isoformat()), pharmacist
        )
        assert response.status_code == 200, response.text
        answer = parsed(response, CoverageEligibilityResponse)
        card = {
            "amc_number": AMC,
            "member_number": who.member_number,
            "birth_date": who.birth_date,
            "birth_rank": 1,
            "domain": "PHAR",
            "care_date": today().isoformat(),
        }
        plain = client.post("/api/v1/eligibility", json=card, headers=pharmacist).json()
        coverage = answer.insurance[0]
        assert coverage.inforce is (plain["status"] == "open")
        assert coverage.item[0].category.coding[0].code == "PHAR"
        assert answer.outcome == "complete"
        assert answer.contained is None
        never_personal(response.text, ALICE, BOB, NOBODY)
        if plain["status"] == "open":
            assert answer.preAuthRef == plain["engagement"]["number"]
            valid_until = answer.preAuthRef__ext.extension[0].valueDate.isoformat()
            assert valid_until == plain["engagement"]["valid_until"]
            item = coverage.item[0]
            assert (item.description, item.excluded, item.authorizationRequired) == (
                "100%",
                False,
                False,
            )
            assert item.benefit[0].type.coding[0].code == "br-total-pct"
            assert item.benefit[0].allowedUnsignedInt == 100
        else:
            assert answer.preAuthRef is None
            assert coverage.item[0].excluded is True


def test_an_unknown_card_and_closed_rights_are_answered_alike_to_the_byte(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, _ = api
    answers = [
        post(client, ELIGIBILITY, resource, pharmacist)
        for resource in (
            fhir_eligibility(NOBODY, "PHAR", today().isoformat()),  # no such card
            fhir_eligibility(
                ALICE, "PHAR", today().isoformat(), rank=2
            ),  # no such person on the card
            fhir_eligibility(BOB, "PHAR", today().isoformat()),  # rights ended
            fhir_eligibility(CAROL, "PHAR", today().isoformat()),  # domain suspended
        )
    ]
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    # No such insurer: the AMC number, which the caller sent and is no one's, is the only change.
    unknown_insurer = post(
        client,
        ELIGIBILITY,
        fhir_eligibility(ALICE, "PHAR", today().isoformat(), amc="NOSUCHAMC"),
        pharmacist,
    )
    assert unknown_insurer.content.replace(b"NOSUCHAMC", AMC.encode()) == answers[0].content


def test_a_domain_under_prior_agreement_says_so(api: tuple[TestClient, Platform]) -> None:
    client, platform = api
    secret = add_account(platform, "professional", "optique@example.org", am_number=OPTICIAN_AM)
    optician = sign_in(client, platform, "optique@example.org", secret)
    response = post(
        client, ELIGIBILITY, fhir_eligibility(ALICE, "OPTI", today().isoformat()), optician
    )
    item = parsed(response, CoverageEligibilityResponse).insurance[0].item[0]
    assert (item.description, item.authorizationRequired, item.benefit) == ("PEC", True, None)


@pytest.mark.parametrize(
    ("guarantee", "code", "element", "value"),
    [
        ({"br_total_pct": 200}, "br-total-pct", "allowedUnsignedInt", 200),
        ({"br_extra_pct": 50}, "br-extra-pct", "allowedUnsignedInt", 50),
        ({"actual_cost_pct": 90}, "actual-cost-pct", "allowedUnsignedInt", 90),
        ({"amount": "300.00", "per": "equipment"}, "amount-per-equipment", "allowedMoney", 300),
        ({"amount": "12.50", "per": "act"}, "amount-per-act", "allowedMoney", 12.5),
    ],
)
def test_each_form_of_the_card_rate_is_a_fhir_benefit(
    guarantee: dict[str, Any], code: str, element: str, value: float
) -> None:
    parsed_guarantee = Guarantee.model_validate(guarantee)
    found = benefit(rate_label(parsed_guarantee))
    assert found is not None
    assert found["type"]["coding"][0]["code"] == code
    figure = found[element]
    assert (figure["value"] if isinstance(figure, dict) else figure) == value


def test_the_fhir_check_is_recorded_like_the_json_one(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, platform = api
    for who in (ALICE, BOB, NOBODY):
        post(client, ELIGIBILITY, fhir_eligibility(who, "PHAR", today().isoformat()), pharmacist)
    with platform.sessions() as session:
        entries = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.tag == "beneficiary:rights:read")
            .order_by(LedgerEntry.seq)
        ).all()
    events = [json.loads(e.event) for e in entries]
    assert [e["outcome"] for e in events] == ["open", "closed", "unknown"]
    assert all(e["organisation"] == PHARMACIST_AM for e in events)
    for entry in entries:
        never_personal(entry.event.decode(), ALICE, BOB, NOBODY)


def test_a_calculation_in_fhir_agrees_with_the_json_api(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, _ = api
    lines = [
        fhir_line("PHAR", today().isoformat(), "10.00", "10.00", 30, act="PH7"),
        fhir_line("PHAR", today().isoformat(), "10.00", "10.00", 70, act="PH4"),
    ]
    response = post(client, CLAIM, fhir_claim(ALICE, lines), pharmacist)
    assert response.status_code == 200, response.text
    answer = parsed(response, ClaimResponse)
    assert (answer.use, answer.outcome, answer.contained) == ("predetermination", "complete", None)
    plain = client.post(
        "/api/v1/calculations",
        json={
            "amc_number": AMC,
            "member_number": ALICE.member_number,
            "birth_date": ALICE.birth_date,
            "birth_rank": 1,
            "lines": [
                {
                    "act_code": act,
                    "domain": "PHAR",
                    "care_date": today().isoformat(),
                    "quantity": 1,
                    "billed": "10.00",
                    "br": "10.00",
                    "amo_rate": rate,
                }
                for act, rate in (("PH7", 30), ("PH4", 70))
            ],
        },
        headers=pharmacist,
    ).json()

    def amounts(item: Any) -> dict[str, str]:
        return {a.category.coding[0].code: f"{a.amount.value:.2f}" for a in item.adjudication}

    assert [amounts(item) for item in answer.item] == [
        {
            "submitted": "10.00",
            "eligible": "10.00",
            "amo": line["amo_amount"],
            "benefit": line["amc_amount"],
        }
        for line in plain["lines"]
    ]
    assert [amounts(item)["benefit"] for item in answer.item] == ["7.00", "3.00"]
    assert [f"{t.amount.value:.2f}" for t in answer.total] == ["20.00", plain["total_amc"]]
    assert [n.text for n in answer.processNote] == [line["explanation"] for line in plain["lines"]]
    assert [item.itemSequence for item in answer.item] == [1, 2]
    never_personal(response.text, ALICE)


def test_a_calculation_for_an_unknown_card_reads_as_closed_rights(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, _ = api
    lines = [fhir_line("PHAR", today().isoformat(), "10.00", "10.00", 30)]
    unknown = post(client, CLAIM, fhir_claim(NOBODY, lines), pharmacist)
    closed = post(client, CLAIM, fhir_claim(BOB, lines), pharmacist)
    assert unknown.status_code == 200, unknown.text
    assert unknown.content == closed.content
    benefit_line = parsed(closed, ClaimResponse).item[0].adjudication[-1]
    assert benefit_line.reason.coding[0].code == "RIGHTS_CLOSED"


def test_the_engagement_of_a_fhir_check_is_quoted_by_a_claim(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, _ = api
    check = post(
        client, ELIGIBILITY, fhir_eligibility(ALICE, "PHAR", today().isoformat()), pharmacist
    )
    engagement = parsed(check, CoverageEligibilityResponse).preAuthRef

    def reject_codes(quoted: str) -> list[str]:
        claim = fhir_claim(ALICE, [fhir_line("PHAR", today().isoformat(), "10.00", "10.00", 30)])
        claim["insurance"][0]["preAuthRef"] = [quoted]
        answer = parsed(post(client, CLAIM, claim, pharmacist), ClaimResponse)
        reason = answer.item[0].adjudication[-1].reason
        return [coding.code for coding in reason.coding] if reason else []

    assert reject_codes(engagement) == []
    assert reject_codes("E1" + "A" * 24) == ["ENGAGEMENT_INVALID"]


def test_refusals_are_operation_outcomes(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, platform = api
    check = fhir_eligibility(ALICE, "PHAR", today().isoformat())
    no_session = post(client, ELIGIBILITY, check, {})
    problem_of(no_session, 401, "login")
    assert no_session.headers["WWW-Authenticate"] == "Bearer"
    secret = add_account(platform, "amc", "gestion@mutuelle.example", amc_number=AMC)
    insurer = sign_in(client, platform, "gestion@mutuelle.example", secret)
    problem_of(post(client, ELIGIBILITY, check, insurer), 403, "forbidden")
    optics = fhir_eligibility(ALICE, "OPTI", today().isoformat())  # not a pharmacist's domain
    problem_of(post(client, ELIGIBILITY, optics, pharmacist), 403, "forbidden")
    problem_of(client.get("/fhir/r4/Patient/253072B07300470", headers=pharmacist), 404, "not-found")
    as_text = client.post(ELIGIBILITY, content=json.dumps(check), headers=pharmacist)
    problem_of(as_text, 415, "not-supported")
    # The /api/v1 routes keep their RFC 9457 problems.
    plain = client.post("/api/v1/eligibility", json={}, headers=pharmacist)
    assert plain.headers["content-type"] == "application/problem+json"


def test_malformed_resources_are_refused_without_echo(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, _ = api
    headers = {**pharmacist, "Content-Type": FHIR_JSON}
    problem_of(client.post(ELIGIBILITY, content=b"{not json", headers=headers), 400, "structure")
    problem_of(
        client.post(ELIGIBILITY, content=b'{"value": NaN}', headers=headers), 400, "structure"
    )
    claim = fhir_claim(ALICE, [fhir_line("PHAR", today().isoformat(), "10.00", "10.00", 30)])
    problem_of(post(client, ELIGIBILITY, claim, pharmacist), 400, "structure")  # another type
    impossible = fhir_eligibility(ALICE, "PHAR", today().isoformat())
    impossible["contained"][0]["birthDate"] = "1983-02-31"
    bad = problem_of(post(client, ELIGIBILITY, impossible, pharmacist), 400, "structure")
    assert bad.issue[0].expression == ["CoverageEligibilityRequest.contained[0].birthDate"]
    assert "1983-02-31" not in bad.model_dump_json()


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            lambda r: r["contained"][0].update(
                name=[{"family": ALICE.last_name}],
                identifier=[{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": ALICE.nir}],
            ),
            "CoverageEligibilityRequest.contained[0].identifier",
        ),
        (lambda r: r.update(servicedDate="2019-01-01"), "CoverageEligibilityRequest.servicedDate"),
        (
            lambda r: r["item"][0]["category"]["coding"][0].update(code="XXXX"),
            "CoverageEligibilityRequest.item[0].category",
        ),
        (
            lambda r: r["contained"][0].update(multipleBirthInteger=0),
            "CoverageEligibilityRequest.contained[0].multipleBirthInteger",
        ),
        (
            lambda r: r["contained"][1].update(subscriberId="M1; DROP TABLE"),
            "CoverageEligibilityRequest.contained[1].subscriberId",
        ),
        (lambda r: r.update(purpose=["discovery"]), "CoverageEligibilityRequest.purpose"),
        (
            lambda r: r["contained"][1].update(beneficiary={"reference": "#someone"}),
            "CoverageEligibilityRequest.contained[1].beneficiary",
        ),
        (lambda r: r.update(status="draft"), "CoverageEligibilityRequest.status"),
        (lambda r: r["item"].append(r["item"][0]), "CoverageEligibilityRequest.item"),
        (
            lambda r: r["insurance"].append(r["insurance"][0]),
            "CoverageEligibilityRequest.insurance",
        ),
        (
            lambda r: r["insurer"]["identifier"].update(system="urn:oid:1.2.3"),
            "CoverageEligibilityRequest.insurer.identifier",
        ),
        (
            lambda r: r.update(patient={"reference": "Patient/1"}),
            "CoverageEligibilityRequest.patient",
        ),
        (
            lambda r: r["insurance"][0].update(coverage={"reference": "#nothing"}),
            "CoverageEligibilityRequest.insurance[0].coverage",
        ),
        (
            lambda r: r["contained"][1].update(payor=[{"identifier": {"value": "99000002"}}]),
            "CoverageEligibilityRequest.contained[1].payor",
        ),
    ],
)
def test_checks_outside_the_profile_are_refused_without_echo(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str], change: Any, where: str
) -> None:
    client, _ = api
    resource = fhir_eligibility(ALICE, "PHAR", today().isoformat())
    change(resource)
    response = post(client, ELIGIBILITY, resource, pharmacist)
    assert response.status_code == 422, response.text
    outcome = parsed(response, OperationOutcome)
    assert where in [e for issue in outcome.issue for e in issue.expression or ()]
    never_personal(response.text, ALICE)
    assert "DROP" not in response.text


def test_every_line_field_maps_to_the_json_api(api: tuple[TestClient, Platform]) -> None:
    client, platform = api
    secret = add_account(platform, "professional", "optique@example.org", am_number=OPTICIAN_AM)
    optician = sign_in(client, platform, "optique@example.org", secret)
    line = fhir_line("OPTI", today().isoformat(), "12.00", "10.00", 60, act="LUN")
    line["programCode"] = [{"coding": [{"system": f"{FHIR}/CodeSystem/basket", "code": "100PS"}]}]
    line["quantity"] = {"value": 2}
    line["extension"] += [
        {
            "url": f"{FHIR}/StructureDefinition/amo-paid",
            "valueMoney": {"value": 2.5, "currency": "EUR"},
        },
        {"url": f"{FHIR}/StructureDefinition/optam", "valueBoolean": False},
        {
            "url": f"{FHIR}/StructureDefinition/price-limit",
            "valueMoney": {"value": 11, "currency": "EUR"},
        },
        {"url": f"{FHIR}/StructureDefinition/item-type", "valueCode": "frame"},
    ]
    response = post(client, CLAIM, fhir_claim(ALICE, [line]), optician)
    assert response.status_code == 200, response.text
    answer = parsed(response, ClaimResponse)
    fields = {
        "act_code": "LUN",
        "domain": "OPTI",
        "care_date": today().isoformat(),
        "quantity": 2,
        "billed": "12.00",
        "br": "10.00",
        "amo_rate": 60,
        "amo_paid": "2.50",
        "optam": False,
        "basket": "100PS",
        "price_limit": "11.00",
        "item_type": "frame",
    }
    card = {
        "amc_number": AMC,
        "member_number": ALICE.member_number,
        "birth_date": ALICE.birth_date,
        "birth_rank": 1,
    }
    plain = client.post(
        "/api/v1/calculations", json={**card, "lines": [fields]}, headers=optician
    ).json()["lines"][0]
    # Billed above the 100 % Santé limit, and the AMO share is the one given: every field counted.
    assert plain["reject_codes"] == ["PRICE_ABOVE_LIMIT"]
    assert plain["amo_amount"] == "2.50"
    adjudication = answer.item[0].adjudication
    assert [c.code for c in adjudication[-1].reason.coding] == plain["reject_codes"]
    assert f"{adjudication[2].amount.value:.2f}" == plain["amo_amount"]
    assert answer.processNote[0].text == plain["explanation"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda c: c.update(status="draft"), "Claim.status"),
        (lambda c: c.update(use="other"), "Claim.use"),
        (lambda c: c["type"]["coding"][0].update(code="dental"), "Claim.type"),
        (
            lambda c: c.update(
                modifierExtension=[{"url": "https://example.org/x", "valueBoolean": True}]
            ),
            "Claim.modifierExtension",
        ),
        (
            lambda c: c["item"][0].update(
                modifierExtension=[{"url": "https://example.org/x", "valueBoolean": True}]
            ),
            "Claim.item[0].modifierExtension",
        ),
        (
            lambda c: c["insurance"].append({**c["insurance"][0], "sequence": 2, "focal": False}),
            "Claim.insurance",
        ),
        (lambda c: c["item"].append(dict(c["item"][0])), "Claim.item.sequence"),
        (lambda c: c["item"][0].pop("net"), "Claim.item[0].net"),
        (lambda c: c["item"][0]["net"].update(value=-1), "Claim.item[0].net.value"),
        (lambda c: c["item"][0]["extension"].pop(0), "Claim.item[0].extension"),
        (
            lambda c: c["item"][0]["extension"].append(c["item"][0]["extension"][1]),
            "Claim.item[0].extension[2]",
        ),
        (
            lambda c: c["item"][0]["extension"][1].update(valueUnsignedInt=None, valueInteger=30),
            "Claim.item[0].extension[1].valueUnsignedInt",
        ),
        (
            lambda c: c["item"][0]["productOrService"]["coding"][0].update(system="https://x.org"),
            "Claim.item[0].productOrService",
        ),
        (
            lambda c: c["insurance"][0].update(preAuthRef=["E1AAAA", "E1BBBB"]),
            "Claim.insurance[0].preAuthRef",
        ),
    ],
)
def test_claims_outside_the_profile_are_refused(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str], change: Any, where: str
) -> None:
    client, _ = api
    claim = fhir_claim(ALICE, [fhir_line("PHAR", today().isoformat(), "10.00", "10.00", 30)])
    change(claim)
    outcome = problem_of(post(client, CLAIM, claim, pharmacist), 422, "invalid")
    assert where in [e for issue in outcome.issue for e in issue.expression or ()]


def test_unexpected_failures_show_nothing_of_their_cause() -> None:
    hidden = error_response(IntegrityFailure("table beneficiary row 42: MAC mismatch"))
    assert hidden.status_code == 500
    assert b"beneficiary" not in hidden.body
    unexpected = error_response(as_error(RuntimeError("253072B07300470")))
    assert unexpected.status_code == 500
    assert b"253072B07300470" not in unexpected.body
    outcome = OperationOutcome.model_validate_json(bytes(unexpected.body))
    assert outcome.issue[0].code == "exception"


def test_money_must_be_whole_cents_in_euros(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, _ = api
    line = fhir_line("PHAR", today().isoformat(), "10.00", "10.00", 30)
    line["net"] = {"value": 10.005, "currency": "EUR"}
    outcome = problem_of(post(client, CLAIM, fhir_claim(ALICE, [line]), pharmacist), 422, "invalid")
    assert outcome.issue[0].expression == ["Claim.item[0].net.value"]
    line["net"] = {"value": 10, "currency": "USD"}
    outcome = problem_of(post(client, CLAIM, fhir_claim(ALICE, [line]), pharmacist), 422, "invalid")
    assert outcome.issue[0].expression == ["Claim.item[0].net.currency"]


def test_the_quota_answers_a_throttled_outcome_with_retry_after(platform: Platform) -> None:
    tight = platform.settings.model_copy(update={"quota_account_hour": 2})
    add_insurer(platform, plan=PLAN)
    add_professionals(platform)
    import_members(platform, AMC, io.BytesIO(member_file([ALICE, BOB])), ImportOptions())
    with TestClient(create_app(tight, platform)) as client:
        secret = add_account(platform, "professional", "p@example.org", am_number=PHARMACIST_AM)
        headers = sign_in(client, platform, "p@example.org", secret)
        for who in (ALICE, BOB):
            assert post(
                client, ELIGIBILITY, fhir_eligibility(who, "PHAR", today().isoformat()), headers
            ).is_success
        refused = post(
            client, ELIGIBILITY, fhir_eligibility(NOBODY, "PHAR", today().isoformat()), headers
        )
        problem_of(refused, 429, "throttled")
        assert int(refused.headers["Retry-After"]) > 0


def test_the_capability_statement_says_what_is_served(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, _ = api
    problem_of(client.get("/fhir/r4/metadata"), 401, "login")
    statement = parsed(client.get("/fhir/r4/metadata", headers=pharmacist), CapabilityStatement)
    served = {r.type: [o.name for o in r.operation] for r in statement.rest[0].resource}
    assert served == {"CoverageEligibilityRequest": ["submit"], "Claim": ["submit"]}


# --- Prior agreements (use = preauthorization) and invoices (use = claim) ------------------------

INVOICE_NUMBER = f"{FHIR}/NamingSystem/invoice-number"


@pytest.fixture
def optician(api: tuple[TestClient, Platform]) -> dict[str, str]:
    client, platform = api
    secret = add_account(platform, "professional", "optique@example.org", am_number=OPTICIAN_AM)
    return sign_in(client, platform, "optique@example.org", secret)


def fhir_glasses(frame: str = "150.00") -> list[dict[str, Any]]:
    """DOMAIN.md example 4 as Claim.items: a frame and two lenses (this plan has no frame cap:
    149.97, 119.97 and 30.06 share the 300.00 per equipment)."""
    items = []
    for billed, kind in ((frame, "frame"), ("120.00", "lens"), ("120.00", "lens")):
        item = fhir_line("OPTI", today().isoformat(), billed, "0.05", 60)
        item["extension"] += [
            {
                "url": f"{FHIR}/StructureDefinition/amo-paid",
                "valueMoney": {"value": 0.03, "currency": "EUR"},
            },
            {"url": f"{FHIR}/StructureDefinition/item-type", "valueCode": kind},
        ]
        items.append(item)
    return items


def benefits(answer: Any) -> list[str]:
    return [f"{item.adjudication[-1].amount.value:.2f}" for item in answer.item]


def reasons(answer: Any) -> list[list[str]]:
    return [
        [c.code for c in item.adjudication[-1].reason.coding]
        if item.adjudication[-1].reason
        else []
        for item in answer.item
    ]


def invoice_claim(
    who: Person, items: list[dict[str, Any]], number: str, *refs: str
) -> dict[str, Any]:
    claim = fhir_claim(who, items, use="claim")
    claim["identifier"] = [{"system": INVOICE_NUMBER, "value": number}]
    if refs:
        claim["insurance"][0]["preAuthRef"] = list(refs)
    return claim


def test_a_preauthorization_is_a_prior_agreement_that_a_claim_then_uses(
    api: tuple[TestClient, Platform], optician: dict[str, str]
) -> None:
    client, _ = api
    # Without an agreement, the optics of this plan are refused.
    refused = parsed(
        post(client, CLAIM, invoice_claim(ALICE, fhir_glasses(), "F-0"), optician), ClaimResponse
    )
    assert reasons(refused) == [["PRIOR_AGREEMENT_REQUIRED"]] * 3
    response = post(
        client, CLAIM, fhir_claim(ALICE, fhir_glasses(), use="preauthorization"), optician
    )
    assert response.status_code == 200, response.text
    agreed = parsed(response, ClaimResponse)
    assert (agreed.use, agreed.outcome) == ("preauthorization", "complete")
    assert benefits(agreed) == ["149.97", "119.97", "30.06"]
    reference = agreed.preAuthRef
    assert reference.startswith("PA")
    assert not reference.startswith("E1")
    as_json = client.get(f"/api/v1/prior-agreements/{reference}", headers=optician).json()
    assert (agreed.preAuthPeriod.start.isoformat(), agreed.preAuthPeriod.end.isoformat()) == (
        as_json["valid_from"],
        as_json["valid_until"],
    )
    assert [line["amc_amount"] for line in as_json["lines"]] == benefits(agreed)
    never_personal(response.text, ALICE)
    # The invoice quotes it (with the engagement of a rights check: one of each at most).
    check = post(
        client, ELIGIBILITY, fhir_eligibility(ALICE, "OPTI", today().isoformat()), optician
    )
    engagement = parsed(check, CoverageEligibilityResponse).preAuthRef
    claim = invoice_claim(ALICE, fhir_glasses(), "F-1", engagement, reference)
    headers = optician | {"Idempotency-Key": "lgo-fhir-1"}
    first = post(client, CLAIM, claim, headers)
    assert first.status_code == 200, first.text
    booked = parsed(first, ClaimResponse)
    assert (booked.use, booked.disposition) == ("claim", "invoice accepted")
    assert benefits(booked) == ["149.97", "119.97", "30.06"]
    (identifier,) = booked.identifier
    assert identifier.system == f"{FHIR}/NamingSystem/invoice"
    invoice = client.get(f"/api/v1/invoices/{identifier.value}", headers=optician).json()
    assert (invoice["status"], invoice["total_amc"]) == ("accepted", "300.00")
    # A retry under the same key answers the first answer and books nothing; another Claim
    # under that key is a conflict.
    assert post(client, CLAIM, claim, headers).content == first.content
    other = invoice_claim(ALICE, fhir_glasses("151.00"), "F-2", reference)
    problem_of(post(client, CLAIM, other, headers), 409, "conflict")
    # Used: quoted again, it covers nothing.
    again = parsed(post(client, CLAIM, other, optician), ClaimResponse)
    assert reasons(again)[0] == ["PRIOR_AGREEMENT_INVALID"]
    assert again.disposition == "invoice rejected"
    used = client.get(f"/api/v1/prior-agreements/{reference}", headers=optician).json()
    assert used["status"] == "consumed"


def test_a_preauthorization_for_an_unknown_card_reads_as_closed_rights(
    api: tuple[TestClient, Platform], optician: dict[str, str]
) -> None:
    client, _ = api
    answers = [
        post(client, CLAIM, fhir_claim(who, fhir_glasses(), use="preauthorization"), optician)
        for who in (NOBODY, BOB)
    ]
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].content == answers[1].content
    refused = parsed(answers[0], ClaimResponse)
    assert (refused.preAuthRef, refused.preAuthPeriod) == (None, None)
    assert reasons(refused) == [["RIGHTS_CLOSED"]] * 3


@pytest.mark.parametrize(
    ("use", "change", "where"),
    [
        ("claim", lambda c: c.pop("identifier"), "Claim.identifier"),
        (
            "claim",
            lambda c: c["identifier"].append(dict(c["identifier"][0])),
            "Claim.identifier",
        ),
        (
            "claim",
            lambda c: c["identifier"][0].update(value="F 1; DROP"),
            "Claim.identifier[0].value",
        ),
        (
            "preauthorization",
            lambda c: c["insurance"][0].update(preAuthRef=["PA" + "A" * 24]),
            "Claim.insurance[0].preAuthRef",
        ),
    ],
)
def test_claims_and_preauthorizations_outside_the_profile_are_refused(
    api: tuple[TestClient, Platform],
    optician: dict[str, str],
    use: str,
    change: Any,
    where: str,
) -> None:
    client, _ = api
    claim = (
        invoice_claim(ALICE, fhir_glasses(), "F-1")
        if use == "claim"
        else fhir_claim(ALICE, fhir_glasses(), use=use)
    )
    change(claim)
    outcome = problem_of(post(client, CLAIM, claim, optician), 422, "invalid")
    assert where in [e for issue in outcome.issue for e in issue.expression or ()]
    assert "DROP" not in outcome.model_dump_json()


def test_an_invalid_idempotency_key_is_an_operation_outcome(
    api: tuple[TestClient, Platform], optician: dict[str, str]
) -> None:
    client, _ = api
    claim = invoice_claim(ALICE, fhir_glasses(), "F-1")
    problem_of(
        post(client, CLAIM, claim, optician | {"Idempotency-Key": "with space"}), 422, "invalid"
    )
