"""The counters' store: what the engine is given, and properties of booking and releasing.

The properties run against the real databases (the ``platform`` fixture), through the same batch
path as the API and file ingestion.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from rempart.claims import state
from rempart.claims.batch import Biller, InvoiceView, Refusal, Submission, process
from rempart.claims.engine import Adjudication, Line
from rempart.claims.invoices import cancel_invoice
from rempart.claims.models import Booking, RenewalUse
from rempart.db import transaction
from rempart.identity.auth import Client, Principal
from rempart.platform import Platform
from rempart.registry.models import Professional
from rempart.rights.services import Card
from tests.support import AMC, BILLERS, CLAIMANTS, add_claims_world

TODAY = datetime.now(UTC).date()
DAY = date(2026, 3, 10)
NOWHERE = Client()


def line(domain: str, day: date, **extra: Any) -> Line:
    return Line("C", domain, day, 1, 10000, 10000, 60, **extra)


def test_the_engine_is_given_the_bookings_of_the_lines_domains_only() -> None:
    counters = state.State({"DEPR": [(DAY, 100)], "PHAR": [(DAY, 5)]})
    assert counters.bookings_for([line("DEPR", DAY)]) == {"DEPR": ((DAY, 100),)}
    assert counters.bookings_for([line("MED", DAY)]) == {}


def test_the_renewal_use_nearest_to_the_care_date_decides() -> None:
    uses = [date(2021, 1, 10), date(2024, 6, 1), date(2026, 9, 1)]
    counters = state.State(renewals={"OPTI": uses, "AUDI:left": [date(2025, 1, 1)]})
    # Against only the latest use (2026-09), a fitting of 2023-12 would pass a 24-month period;
    # the use of 2024-06 is the one that refuses it.
    chosen = counters.last_renewal([line("OPTI", date(2023, 12, 1), item_type="frame")])
    assert chosen == {"OPTI": date(2024, 6, 1)}
    assert counters.last_renewal([line("MED", DAY)]) == {}
    assert counters.last_renewal([line("AUDI", DAY)]) == {"AUDI:left": date(2025, 1, 1)}


def test_an_adjudication_counts_for_the_next_invoice() -> None:
    counters = state.State()
    counters.add(Adjudication((), 300, {"OPTI": ((DAY, 200), (DAY, 100))}, {"OPTI": DAY}))
    assert counters.bookings == {"OPTI": [(DAY, 200), (DAY, 100)]}
    assert counters.renewals == {"OPTI": [DAY]}


# --- properties, on the databases ---------------------------------------------------------------

# (biller, domain, item types): a ceiling (DEPR), a renewal counter (OPTI), neither (DESO).
KINDS = [
    ("dentist", "DEPR", (None,)),
    ("optician", "OPTI", ("frame", "lens")),
    ("dentist", "DESO", (None,)),
]


@st.composite
def invoices(draw: st.DrawFn) -> tuple[str, Submission]:
    biller, domain, items = draw(st.sampled_from(KINDS))
    who = draw(st.sampled_from(CLAIMANTS[1:]))  # CONFORT
    day = TODAY - timedelta(days=draw(st.integers(0, 700)))
    lines = tuple(
        Line(
            "C",
            domain,
            day,
            1,
            draw(st.integers(1000, 200_000)),
            draw(st.integers(0, 20_000)),
            60,
            item_type=draw(st.sampled_from(items)),
        )
        for _ in range(draw(st.integers(1, 3)))
    )
    card = Card(AMC, who.member_number, date.fromisoformat(who.birth_date), 1)
    number = f"H-{draw(st.integers(0, 10**6))}"
    return biller, Submission(card, lines, number)


def billers(platform: Platform) -> dict[str, Biller]:
    with platform.sessions() as session:
        ids = dict(session.execute(select(Professional.am_number, Professional.id)).all())
    return {
        name: Biller(ids[am], name.rstrip("0123456789"), am, f"test:{name}")
        for name, am in BILLERS.items()
    }


def counters(platform: Platform) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    """Every booking and renewal use, as multisets (sources aside)."""
    with platform.sessions() as session:
        booked = Counter(
            tuple(row)
            for row in session.execute(
                select(Booking.beneficiary_id, Booking.domain, Booking.care_date, Booking.amount)
            )
        )
        used = Counter(
            tuple(row)
            for row in session.execute(
                select(RenewalUse.beneficiary_id, RenewalUse.renewal_key, RenewalUse.care_date)
            )
        )
    return booked, used


def submit(platform: Platform, biller: Biller, submission: Submission) -> InvoiceView:
    with transaction(platform.sessions) as session:
        (outcome,) = process(session, platform, [(biller, submission)], None, NOWHERE)
    assert not isinstance(outcome, Refusal), outcome
    return outcome


def principal(biller: Biller) -> Principal:
    return Principal(
        biller.actor,
        "professional",
        uuid.uuid4(),
        None,
        biller.professional_id,
        biller.organisation,
        biller.profession,
    )


PROPERTIES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


World = tuple[Platform, dict[str, Biller]]


@pytest.fixture
def world(platform: Platform) -> World:
    """Built once per test: Hypothesis's examples share it (the properties are relative)."""
    add_claims_world(platform)
    return platform, billers(platform)


@PROPERTIES
@given(batch=st.lists(invoices(), min_size=1, max_size=4), order=st.randoms())
def test_cancelling_invoices_gives_back_every_counter(
    world: World, batch: list[tuple[str, Submission]], order: Any
) -> None:
    platform, who = world
    before = counters(platform)
    views = [(who[name], submit(platform, who[name], s)) for name, s in batch]
    order.shuffle(views)
    for biller, view in views:
        cancel_invoice(platform, principal(biller), view.id, NOWHERE)
    assert counters(platform) == before


@PROPERTIES
@given(invoice=invoices(), keyed=st.booleans())
def test_the_same_invoice_sent_twice_is_booked_once(
    world: World, invoice: tuple[str, Submission], keyed: bool
) -> None:
    platform, who = world
    name, submission = invoice
    biller = who[name]
    if keyed:
        submission = Submission(
            submission.card,
            submission.lines,
            submission.invoice_number,
            idempotency_key=uuid.uuid4().hex,
        )
    first = submit(platform, biller, submission)
    after_first = counters(platform)
    second = submit(platform, biller, submission)
    assert counters(platform) == after_first
    if keyed:
        assert second == InvoiceView(first.id, first.status, first.lines, first.total_amc, True)
    else:
        assert second.total_amc == 0
        for was, now in zip(first.lines, second.lines, strict=True):
            assert now.reject_codes == (("DUPLICATE",) if not was.rejected else was.reject_codes)
