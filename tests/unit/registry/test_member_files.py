"""The pure rules of a member file: the state of a rights period, the domains it covers."""

from __future__ import annotations

from datetime import date

from rempart.registry.member_files import covered_domains, period_state

TODAY = date(2026, 3, 15)


def test_a_period_is_current_past_or_future_on_a_day_its_bounds_included() -> None:
    assert period_state(date(2026, 1, 1), None, TODAY) == "current"
    assert period_state(TODAY, TODAY, TODAY) == "current"
    assert period_state(date(2025, 1, 1), date(2026, 3, 14), TODAY) == "past"
    assert period_state(date(2026, 3, 16), None, TODAY) == "future"


def test_the_domains_covered_are_the_plans_less_those_suspended_in_order() -> None:
    assert covered_domains(["PHAR", "MED", "OPTI"], ["MED"]) == ("OPTI", "PHAR")
    assert covered_domains(["PHAR"], ["PHAR"]) == ()
    assert covered_domains([], ["MED"]) == ()
