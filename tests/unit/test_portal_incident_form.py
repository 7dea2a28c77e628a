"""The scoping form's first period is one the form itself accepts, clock changes included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rempart.dates import PARIS
from rempart.portal.incidents import default_window


def paris_instant(field: str) -> datetime | None:
    """The one instant a ``datetime-local`` value names in Paris, or None (gap or repeat)."""
    wall = datetime.fromisoformat(field)
    instants = {wall.replace(tzinfo=PARIS, fold=fold).astimezone(UTC) for fold in (0, 1)}
    if len(instants) != 1:
        return None
    (instant,) = instants
    return instant if instant.astimezone(PARIS).replace(tzinfo=None) == wall else None


@pytest.mark.parametrize(
    "now",
    [
        datetime(2027, 3, 27, 12, 0, tzinfo=UTC),  # an ordinary day
        datetime(2027, 3, 28, 1, 30, tzinfo=UTC),  # 03:30 on the spring change's day
        datetime(2027, 3, 29, 0, 30, tzinfo=UTC),  # 02:30 a day later: yesterday's skipped
        datetime(2027, 10, 31, 0, 30, tzinfo=UTC),  # 02:30, the first of the repeated hour
        datetime(2027, 10, 31, 1, 30, tzinfo=UTC),  # 02:30 again, the second
        datetime(2027, 11, 1, 1, 30, tzinfo=UTC),  # 02:30 a day later: yesterday's repeated
    ],
)
def test_the_first_period_names_one_instant_at_each_end_and_covers_the_last_day(
    now: datetime,
) -> None:
    fields = default_window(now)
    start, end = paris_instant(fields["du"]), paris_instant(fields["au"])
    assert start is not None, fields
    assert end is not None, fields
    assert now < end <= now + timedelta(hours=2, minutes=1)  # after an autumn's repeated hour
    assert end - start >= timedelta(hours=23)  # a day, less the hour of a spring change
    assert start < now - timedelta(hours=22)
