"""Rights periods: how a new period from a member file, or a closure, changes a beneficiary's.

Pure rules on plain values. A member file states the rights as they are now: a period it gives
replaces whatever overlaps it from its start date on, and earlier periods end the day before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class Period:
    plan_code: str
    start_date: date
    end_date: date | None
    suspended_domains: tuple[str, ...] = ()

    def covers(self, day: date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)


def apply_period(existing: Iterable[Period], new: Period) -> list[Period]:
    """The periods after ``new`` is stated: earlier ones end before it, overlapping ones go."""
    result: list[Period] = []
    for period in existing:
        if period.start_date < new.start_date:
            if period.end_date is None or period.end_date >= new.start_date:
                period = replace(period, end_date=new.start_date - timedelta(days=1))
            result.append(period)
        elif new.end_date is not None and period.start_date > new.end_date:
            result.append(period)
    result.append(new)
    return sorted(result, key=lambda p: p.start_date)


def close_periods(existing: Iterable[Period], closing_date: date) -> list[Period]:
    """The periods after the rights close at the end of ``closing_date``."""
    result = []
    for period in existing:
        if period.start_date > closing_date:
            continue
        if period.end_date is None or period.end_date > closing_date:
            period = replace(period, end_date=closing_date)
        result.append(period)
    return result


def period_on(periods: Sequence[Period], day: date) -> Period | None:
    """The period in force on ``day``, if any."""
    return next((p for p in periods if p.covers(day)), None)
