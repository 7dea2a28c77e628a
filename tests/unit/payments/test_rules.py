"""The pure rules of payment runs: SEPA text, references, dates, which account pays, sums."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.payments import rules
from rempart.payments.rules import (
    BankChange,
    Claim,
    Hold,
    Pay,
    choose_account,
    clean_reference,
    clean_text,
    end_to_end_id,
    group,
    is_creditor_id,
    is_sepa_text,
    next_business_day,
    period,
)

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Pharmacie de l'Église", "Pharmacie de l'Eglise"),
        ("Dr Zoë Lœuvre & Fils", "Dr Zoe Loeuvre + Fils"),
        ("Optique «Vue» — Nîmes", "Optique 'Vue' - Nimes"),
        ("Cabinet  ** dentaire **", "Cabinet dentaire"),
        ("Straße_Nr°1", "Strasse Nr 1"),
        ("  ", "NOTPROVIDED"),
        ("日本", "NOTPROVIDED"),
    ],
)
def test_names_are_cleaned_to_the_sepa_character_set(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


@given(st.text(max_size=300), st.integers(min_value=1, max_value=140))
def test_cleaned_text_is_always_sepa_non_empty_and_within_its_length(raw: str, limit: int) -> None:
    cleaned = clean_text(raw, limit)
    assert is_sepa_text(cleaned)
    assert 1 <= len(cleaned) <= max(limit, len("NOTPROVIDED"))
    assert cleaned == cleaned.strip()


@given(st.text(max_size=100))
def test_a_cleaned_reference_follows_the_epc_rules_for_identifiers(raw: str) -> None:
    ref = clean_reference(raw)
    assert is_sepa_text(ref)
    assert " " not in ref
    assert "//" not in ref
    assert not ref.startswith("/")
    assert not ref.endswith("/")
    assert 1 <= len(ref) <= 35


def test_end_to_end_references_name_the_run_the_kind_and_the_party() -> None:
    assert end_to_end_id(12, rules.TRANSFERS, "751000001") == "RMP000012-T-751000001"
    assert end_to_end_id(12, rules.DEBITS, "99000001") == "RMP000012-D-99000001"
    longest = end_to_end_id(999_999, rules.DEBITS, "ABCDEFGHIJ")
    assert len(longest) <= 35
    assert rules.message_id(12, rules.TRANSFERS) == "RMP000012-T"


@pytest.mark.parametrize(
    ("day", "after"),
    [
        (date(2026, 3, 6), date(2026, 3, 9)),  # Friday -> Monday
        (date(2026, 4, 2), date(2026, 4, 7)),  # Good Friday and Easter Monday are closed
        (date(2026, 12, 24), date(2026, 12, 28)),  # 25 and 26 December, then a Sunday
        (date(2026, 12, 31), date(2027, 1, 4)),  # New Year's Day, then a weekend
        (date(2026, 4, 30), date(2026, 5, 4)),  # 1 May is a Friday in 2026
    ],
)
def test_the_next_business_day_skips_target2_closing_days(day: date, after: date) -> None:
    assert next_business_day(day) == after


def test_easter_is_computed_for_known_years() -> None:
    assert rules.easter(2024) == date(2024, 3, 31)
    assert rules.easter(2026) == date(2026, 4, 5)
    assert rules.easter(2038) == date(2038, 4, 25)


def test_a_run_takes_invoices_up_to_the_end_of_its_day_in_paris_never_after_now() -> None:
    today = period(None, NOW)
    assert today.run_date == date(2026, 3, 10)
    assert today.cutoff == NOW  # the day is not over: what comes later goes to the next run
    assert today.execution_date == date(2026, 3, 10)
    assert today.collection_date == date(2026, 3, 11)
    yesterday = period(date(2026, 3, 9), NOW)
    assert yesterday.cutoff == datetime(2026, 3, 9, 23, 0, tzinfo=UTC)  # midnight in Paris
    with pytest.raises(ValueError, match="today or before"):
        period(date(2026, 3, 11), NOW)


def test_a_run_on_a_sunday_pays_on_monday_and_collects_on_tuesday() -> None:
    sunday = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)
    found = period(None, sunday)
    assert (found.execution_date, found.collection_date) == (date(2026, 3, 9), date(2026, 3, 10))


def test_the_paris_day_is_the_run_day_at_new_year() -> None:
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # already 1 January in Paris
    assert period(None, late).run_date == date(2027, 1, 1)


def _change(status: str, **times: datetime | None) -> BankChange:
    return BankChange(
        uuid.uuid4(),
        status,
        times.get("requested_at") or NOW - timedelta(days=5),
        times.get("expires") or NOW + timedelta(days=9),
        times.get("usable_from"),
    )


def test_without_a_change_the_account_of_the_convention_is_paid() -> None:
    assert choose_account([], NOW) == Pay(None)


def test_a_change_awaiting_its_code_holds_the_payments() -> None:
    pending = _change("pending")
    assert choose_account([pending], NOW) == Hold(
        rules.AWAITING_CONFIRMATION, pending.code_expires_at
    )


def test_a_change_whose_code_expired_no_longer_holds_anything() -> None:
    expired = _change("pending", expires=NOW - timedelta(seconds=1))
    assert choose_account([expired], NOW) == Pay(None)


def test_a_confirmed_change_holds_the_payments_until_its_cooling_off_ends() -> None:
    cooling = _change("confirmed", usable_from=NOW + timedelta(hours=1))
    assert choose_account([cooling], NOW) == Hold(rules.COOLING_OFF, cooling.usable_from)
    assert choose_account([cooling], NOW + timedelta(hours=1)) == Pay(cooling.id)


def test_the_newest_usable_change_is_paid_and_cancelled_ones_never() -> None:
    old = _change("confirmed", usable_from=NOW - timedelta(days=30))
    new = _change("confirmed", usable_from=NOW - timedelta(days=1))
    cancelled = _change("cancelled", usable_from=None)
    assert choose_account([new, old, cancelled], NOW) == Pay(new.id)


PROFESSIONALS = [uuid.UUID(int=n) for n in range(1, 6)]
claims = st.lists(
    st.builds(
        Claim,
        st.uuids(),
        st.sampled_from(PROFESSIONALS),
        st.sampled_from(["99000001", "99000002", "A1"]),
        st.integers(min_value=0, max_value=10**9),
        st.integers(min_value=1, max_value=99),
        st.just(False),
    ),
    max_size=60,
)


@given(claims, st.sets(st.sampled_from(PROFESSIONALS), max_size=2))
def test_what_professionals_are_paid_is_what_insurers_owe_to_the_cent(
    found: list[Claim], held: set[uuid.UUID]
) -> None:
    grouping = group(found, held)
    taken = [c for c in found if c.professional_id not in held]
    assert grouping.claims == taken
    for pid, total in grouping.professionals.items():
        mine = [c for c in taken if c.professional_id == pid]
        assert total.amount == sum(c.amount for c in mine)
        assert (total.invoices, total.lines) == (len(mine), sum(c.lines for c in mine))
    for amc, total in grouping.insurers.items():
        assert total.amount == sum(c.amount for c in taken if c.amc_number == amc)
    assert grouping.total == sum(t.amount for t in grouping.insurers.values())
    assert grouping.total == sum(c.amount for c in taken)
    assert set(grouping.held) <= held
    assert sum(t.amount for t in grouping.held.values()) == sum(
        c.amount for c in found if c.professional_id in held
    )


def test_a_negative_claim_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        group([Claim(uuid.uuid4(), PROFESSIONALS[0], "A1", -1, 1)])


def test_a_claim_that_pays_without_an_insurer_or_rejected_is_refused() -> None:
    with pytest.raises(ValueError, match="insurer"):
        group([Claim(uuid.uuid4(), PROFESSIONALS[0], None, 100, 1)])
    with pytest.raises(ValueError, match="accepted"):
        group([Claim(uuid.uuid4(), PROFESSIONALS[0], "A1", 100, 1, rejected=True)])
    assert group([Claim(uuid.uuid4(), PROFESSIONALS[0], None, 0, 1)]).insurers == {}


def test_a_rejected_invoice_is_reported_to_its_professional_and_owed_by_no_one() -> None:
    rejected = Claim(uuid.uuid4(), PROFESSIONALS[0], "A1", 0, 2, rejected=True)
    grouping = group([rejected])
    assert grouping.claims == [rejected]
    assert grouping.professionals[PROFESSIONALS[0]].invoices == 1
    assert grouping.insurers == {}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("DE98ZZZ09999999999", True),  # the Bundesbank's test identifier
        ("FR42ZZZRMP001", True),
        ("FR43ZZZRMP001", False),
        ("fr42ZZZRMP001", False),
        ("FR42", False),
    ],
)
def test_creditor_identifiers_carry_their_check_digits(value: str, valid: bool) -> None:
    assert is_creditor_id(value) is valid
