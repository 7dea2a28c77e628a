"""French business dates. Care dates, quotes, engagements, quotas by day, payment dates and
notices are all judged by the day in Paris, whatever the server's time zone: an instant's day is
its day there. Pure."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def paris_day(at: datetime) -> date:
    """The day in Paris of an aware instant."""
    return at.astimezone(PARIS).date()
