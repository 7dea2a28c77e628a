"""Rights periods: how a stated period or a closure changes a beneficiary's periods."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rempart.registry.rights import Period, apply_period, close_periods, period_on


def d(text: str) -> date:
    return date.fromisoformat(text)


def p(code: str, start: str, end: str | None = None, suspended: tuple[str, ...] = ()) -> Period:
    return Period(code, d(start), None if end is None else d(end), suspended)


# --- apply_period --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "new", "expected"),
    [
        pytest.param([], p("B", "2025-03-01"), [p("B", "2025-03-01")], id="first-period"),
        pytest.param(
            [p("A", "2025-01-01")],
            p("B", "2025-03-01"),
            [p("A", "2025-01-01", "2025-02-28"), p("B", "2025-03-01")],
            id="open-period-closes-the-day-before",
        ),
        pytest.param(
            [p("A", "2024-01-01", "2025-06-30")],
            p("B", "2025-03-01"),
            [p("A", "2024-01-01", "2025-02-28"), p("B", "2025-03-01")],
            id="overlapping-closed-period-ends-the-day-before",
        ),
        pytest.param(
            [p("A", "2025-01-01", "2025-03-01")],
            p("B", "2025-03-01"),
            [p("A", "2025-01-01", "2025-02-28"), p("B", "2025-03-01")],
            id="period-ending-on-the-new-start-ends-the-day-before",
        ),
        pytest.param(
            [p("A", "2025-01-01", "2025-02-28")],
            p("B", "2025-03-01"),
            [p("A", "2025-01-01", "2025-02-28"), p("B", "2025-03-01")],
            id="period-ending-the-day-before-is-untouched",
        ),
        pytest.param(
            [p("A", "2024-01-01", "2024-06-30")],
            p("B", "2025-03-01"),
            [p("A", "2024-01-01", "2024-06-30"), p("B", "2025-03-01")],
            id="earlier-period-with-a-gap-is-untouched",
        ),
        pytest.param(
            [p("A", "2025-01-01", None, ("OPTI",))],
            p("B", "2025-03-01"),
            [p("A", "2025-01-01", "2025-02-28", ("OPTI",)), p("B", "2025-03-01")],
            id="closing-keeps-plan-and-suspensions",
        ),
        pytest.param(
            [p("A", "2025-01-01")],
            p("B", "2025-01-01"),
            [p("B", "2025-01-01")],
            id="same-start-replaces",
        ),
        pytest.param(
            [p("A", "2025-01-01")],
            p("A", "2025-01-01", "2025-06-30", ("DEPR",)),
            [p("A", "2025-01-01", "2025-06-30", ("DEPR",))],
            id="same-start-closed-replaces",
        ),
        pytest.param(
            [p("A", "2025-01-01", "2025-02-28"), p("C", "2025-03-01")],
            p("B", "2025-02-01"),
            [p("A", "2025-01-01", "2025-01-31"), p("B", "2025-02-01")],
            id="later-period-overlapped-by-open-new-is-dropped",
        ),
        pytest.param(
            [p("C", "2026-01-01", "2026-12-31")],
            p("B", "2025-01-01"),
            [p("B", "2025-01-01")],
            id="later-closed-period-overlapped-by-open-new-is-dropped",
        ),
        pytest.param(
            [p("A", "2025-01-01", "2025-06-30"), p("C", "2025-07-01")],
            p("B", "2025-03-01", "2025-04-30"),
            [
                p("A", "2025-01-01", "2025-02-28"),
                p("B", "2025-03-01", "2025-04-30"),
                p("C", "2025-07-01"),
            ],
            id="later-period-after-the-new-end-is-kept",
        ),
        pytest.param(
            [p("C", "2025-05-01")],
            p("B", "2025-03-01", "2025-04-30"),
            [p("B", "2025-03-01", "2025-04-30"), p("C", "2025-05-01")],
            id="later-period-starting-the-day-after-the-new-end-is-kept",
        ),
        pytest.param(
            [p("C", "2025-04-30")],
            p("B", "2025-03-01", "2025-04-30"),
            [p("B", "2025-03-01", "2025-04-30")],
            id="later-period-starting-on-the-new-end-is-dropped",
        ),
        pytest.param(
            [p("C", "2025-06-01"), p("A", "2025-01-01", "2025-05-31")],
            p("B", "2025-02-01", "2025-02-28"),
            [
                p("A", "2025-01-01", "2025-01-31"),
                p("B", "2025-02-01", "2025-02-28"),
                p("C", "2025-06-01"),
            ],
            id="result-sorted-by-start-whatever-the-input-order",
        ),
    ],
)
def test_apply_period(existing: list[Period], new: Period, expected: list[Period]) -> None:
    assert apply_period(existing, new) == expected


def test_apply_period_accepts_any_iterable_and_leaves_the_input_alone() -> None:
    existing = (p("A", "2025-01-01"),)

    result = apply_period(iter(existing), p("B", "2025-02-01"))

    assert result == [p("A", "2025-01-01", "2025-01-31"), p("B", "2025-02-01")]
    assert existing == (p("A", "2025-01-01"),)


# --- close_periods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "closing", "expected"),
    [
        pytest.param([], "2025-06-30", [], id="nothing-to-close"),
        pytest.param(
            [p("A", "2025-01-01")],
            "2025-06-30",
            [p("A", "2025-01-01", "2025-06-30")],
            id="open-period-ends-at-the-closing-date",
        ),
        pytest.param(
            [p("A", "2025-01-01", "2025-12-31", ("OPTI",))],
            "2025-06-30",
            [p("A", "2025-01-01", "2025-06-30", ("OPTI",))],
            id="later-end-moves-to-the-closing-date",
        ),
        pytest.param(
            [p("A", "2025-01-01", "2025-03-31")],
            "2025-06-30",
            [p("A", "2025-01-01", "2025-03-31")],
            id="period-ended-before-is-untouched",
        ),
        pytest.param(
            [p("A", "2025-01-01", "2025-06-30")],
            "2025-06-30",
            [p("A", "2025-01-01", "2025-06-30")],
            id="period-ending-on-the-closing-date-is-untouched",
        ),
        pytest.param(
            [
                p("A", "2025-01-01", "2025-03-31"),
                p("B", "2025-04-01", "2025-09-30"),
                p("C", "2025-10-01"),
            ],
            "2025-06-30",
            [p("A", "2025-01-01", "2025-03-31"), p("B", "2025-04-01", "2025-06-30")],
            id="periods-starting-after-the-closing-date-are-dropped",
        ),
        pytest.param(
            [p("A", "2025-06-30")],
            "2025-06-30",
            [p("A", "2025-06-30", "2025-06-30")],
            id="period-starting-on-the-closing-date-keeps-one-day",
        ),
        pytest.param(
            [p("A", "2025-07-01")],
            "2025-06-30",
            [],
            id="period-starting-the-day-after-is-dropped",
        ),
    ],
)
def test_close_periods(existing: list[Period], closing: str, expected: list[Period]) -> None:
    assert close_periods(existing, d(closing)) == expected


# --- period_on -----------------------------------------------------------------------------------

PERIODS = [
    p("A", "2025-01-01", "2025-03-31"),
    p("B", "2025-04-01", "2025-06-30"),
    p("C", "2025-09-01"),
]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2024-12-31", None),
        ("2025-01-01", "A"),
        ("2025-03-31", "A"),
        ("2025-04-01", "B"),
        ("2025-06-30", "B"),
        ("2025-07-01", None),
        ("2025-08-31", None),
        ("2025-09-01", "C"),
        ("2099-12-31", "C"),
    ],
)
def test_period_on_picks_the_covering_period_or_none(day: str, expected: str | None) -> None:
    found = period_on(PERIODS, d(day))

    assert (found.plan_code if found else None) == expected


def test_period_on_nothing_is_none() -> None:
    assert period_on([], d("2025-01-01")) is None


# --- properties ----------------------------------------------------------------------------------

FIRST_DAY = date(2020, 1, 1)
LAST_DAY = date(2030, 12, 31)


@st.composite
def periods(draw: st.DrawFn) -> Period:
    start = draw(st.dates(min_value=FIRST_DAY, max_value=LAST_DAY))
    length = draw(st.none() | st.integers(min_value=0, max_value=900))
    return Period(
        draw(st.sampled_from(["A", "B", "C", "D"])),
        start,
        None if length is None else start + timedelta(days=length),
        draw(st.sampled_from([(), ("OPTI",), ("DEPR", "OPTI")])),
    )


def _assert_well_formed(result: list[Period]) -> None:
    assert result == sorted(result, key=lambda x: x.start_date)
    for period in result:
        assert period.end_date is None or period.start_date <= period.end_date
    for earlier, later in itertools.pairwise(result):
        assert earlier.end_date is not None, (earlier, later)
        assert earlier.end_date < later.start_date, (earlier, later)


@settings(database=None, max_examples=150)
@given(st.lists(periods(), max_size=8), periods())
def test_apply_period_never_leaves_overlaps_and_always_keeps_the_new_period(
    history: list[Period], new: Period
) -> None:
    # Reachable states only: build the existing periods through apply_period itself.
    existing: list[Period] = []
    for stated in history:
        existing = apply_period(existing, stated)
        _assert_well_formed(existing)

    result = apply_period(existing, new)

    _assert_well_formed(result)
    assert new in result
    for day in (new.start_date, new.end_date or LAST_DAY):
        assert period_on(result, day) == new


@settings(database=None, max_examples=150)
@given(st.lists(periods(), max_size=8), periods(), st.dates(FIRST_DAY, LAST_DAY))
def test_apply_period_keeps_the_rights_before_the_new_start(
    history: list[Period], new: Period, day: date
) -> None:
    existing: list[Period] = []
    for stated in history:
        existing = apply_period(existing, stated)

    result = apply_period(existing, new)

    before = period_on(existing, day)
    after = period_on(result, day)
    if day < new.start_date:
        assert (before and before.plan_code, before and before.suspended_domains) == (
            after and after.plan_code,
            after and after.suspended_domains,
        )
    elif new.covers(day):
        assert after == new


@settings(database=None, max_examples=150)
@given(
    st.lists(periods(), max_size=8), st.dates(FIRST_DAY, LAST_DAY), st.dates(FIRST_DAY, LAST_DAY)
)
def test_close_periods_covers_nothing_after_the_closing_date_and_keeps_what_came_before(
    history: list[Period], closing: date, day: date
) -> None:
    existing: list[Period] = []
    for stated in history:
        existing = apply_period(existing, stated)

    result = close_periods(existing, closing)

    _assert_well_formed(result)
    after = period_on(result, day)
    if day > closing:
        assert after is None
    else:
        before = period_on(existing, day)
        assert (before and before.plan_code) == (after and after.plan_code)
