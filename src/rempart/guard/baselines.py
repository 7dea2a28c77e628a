"""Baselines: what is normal for each account and each practice, learnt from the ledger.

``rempart guard baselines`` (nightly) reads the rights checks of each Paris day not yet learnt
from the ledger (``beneficiary:rights:read`` events), sums each account (actor) and each
practice (billing number) up for the day — different patients, the busiest burst window, the
misses, the hours worked, the networks and devices used (as keyed digests) — and keeps these
per-day figures for the window (28 days) in ``guard_baselines``, with their summary: the busiest
day, the busiest burst, the hours worked on two days or more, the networks and devices seen.
Incremental: a night reads one day of the ledger, whatever the length of the window.

The same pass judges the rights checks never followed by an invoice: the open checks of the day
``lag`` days back, against the practice's invoices (``beneficiary:invoice:write`` events) since,
for practices that bill through Rempart. A day beyond the bound raises an alert.

A day on which the guard froze an account is not learnt for that account: an intruder's traffic
must not become the norm.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rempart.dates import PARIS, paris_day
from rempart.db import transaction, utcnow
from rempart.guard import signals
from rempart.guard.detection import GUARD_KEY, record_alert, thresholds_from
from rempart.guard.models import GuardAlert, GuardBaseline
from rempart.guard.signals import Assessment, Response
from rempart.ledger.events import Tag
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform

REFUSED = frozenset({"throttled", "step-up", "frozen"})  # refused checks reached no one
OPEN = "open"


@dataclass
class DayFigures:
    """One account's or practice's day, as the ledger tells it."""

    patients: set[str] = field(default_factory=set)
    windows: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    misses: int = 0
    hours: int = 0  # bit h: worked at Paris hour h
    networks: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    opened: set[str] = field(default_factory=set)  # patients with open rights (practices)

    def row(self) -> list[int]:
        peak = max((len(w) for w in self.windows.values()), default=0)
        return [len(self.patients), peak, self.misses, self.hours]


@dataclass
class BaselineReport:
    days: list[date] = field(default_factory=list)
    accounts: int = 0
    practices: int = 0
    alerts: int = 0
    through: date | None = None


def update_baselines(
    platform: Platform, through: date | None = None, now: datetime | None = None
) -> BaselineReport:
    """Learn every Paris day up to ``through`` (default: yesterday) not learnt yet."""
    now = now or utcnow()
    through = through or paris_day(now) - timedelta(days=1)
    settings = platform.settings
    window = settings.guard_window_days
    report = BaselineReport(through=through)
    with transaction(platform.sessions) as session:
        secret = platform.keyring.platform_secret(session, GUARD_KEY)
        learnt = session.scalar(select(func.max(GuardBaseline.through)))
        first = through - timedelta(days=window - 1)
        if learnt is not None:
            first = max(first, learnt + timedelta(days=1))
        rows = {(r.scope, r.owner): r for r in session.scalars(select(GuardBaseline))}
        histories: dict[tuple[str, str], dict[str, Any]] = {
            key: {**_empty(), **json.loads(row.history)} for key, row in rows.items()
        }
        burst = settings.guard_burst_minutes * 60
        day = first
        while day <= through:
            accounts, practices = _figures(session, secret, day, burst)
            for key, figures in [
                *((("account", a), f) for a, f in accounts.items()),
                *((("professional", p), f) for p, f in practices.items()),
            ]:
                history = histories.setdefault(key, _empty())
                history["days"][day.isoformat()] = figures.row()
                for net in figures.networks:
                    history["networks"][net] = day.isoformat()
                for device in figures.devices:
                    history["devices"][device] = day.isoformat()
            report.alerts += _judge_billing(platform, session, day, now)
            report.days.append(day)
            day += timedelta(days=1)
        oldest = (through - timedelta(days=window - 1)).isoformat()
        for key, history in histories.items():
            _keep(history, oldest)
            row = rows.get(key)
            if not history["days"]:
                if row is not None:
                    session.delete(row)
                continue
            if row is None:
                row = GuardBaseline(scope=key[0], owner=key[1])
                session.add(row)
            _summarise(row, history, through, now)
            report.accounts += key[0] == "account"
            report.practices += key[0] == "professional"
    return report


def _figures(
    session: Session, secret: bytes, day: date, burst_seconds: int
) -> tuple[dict[str, DayFigures], dict[str, DayFigures]]:
    """Each account's and each practice's figures for one Paris day (frozen accounts' days
    left out)."""
    frozen = _frozen_on(session, day)
    accounts: dict[str, DayFigures] = defaultdict(DayFigures)
    practices: dict[str, DayFigures] = defaultdict(DayFigures)
    for seq, event in _events(session, Tag.RIGHTS_READ, day, day):
        outcome = event["outcome"]
        if outcome in REFUSED:
            continue
        at = datetime.fromisoformat(event["at"])
        patient = event["beneficiary"] or f"?{seq}"  # a miss: an unknown card, each its own
        actor, organisation = event["actor"], event["organisation"]
        hour = 1 << signals.paris_hour(at)
        if actor not in frozen:
            mine = accounts[actor]
            mine.patients.add(patient)
            mine.windows[int(at.timestamp()) // burst_seconds].add(patient)
            mine.misses += event["beneficiary"] is None
            mine.hours |= hour
            mine.networks.add(signals.network_key(secret, event["ip"]))
            mine.devices.add(signals.device_key(secret, event["user_agent"]))
            mine.networks.discard("")  # a request without an address says nothing of one
            mine.devices.discard("")
        if organisation:
            practice = practices[organisation]
            practice.patients.add(patient)
            practice.windows[int(at.timestamp()) // burst_seconds].add(patient)
            practice.misses += event["beneficiary"] is None
            practice.hours |= hour
    return accounts, practices


def _judge_billing(platform: Platform, session: Session, today: date, now: datetime) -> int:
    """Alerts for the practices whose open rights checks of ``today - lag`` were not billed
    since (only practices that billed something in that time: they bill through Rempart)."""
    settings = platform.settings
    checked_on = today - timedelta(days=settings.guard_unbilled_lag_days)
    opened: dict[str, set[str]] = defaultdict(set)
    for _, event in _events(session, Tag.RIGHTS_READ, checked_on, checked_on):
        if event["outcome"] == OPEN and event["organisation"] and event["beneficiary"]:
            opened[event["organisation"]].add(event["beneficiary"])
    billed: dict[str, set[str]] = defaultdict(set)
    for _, event in _events(session, Tag.INVOICE, checked_on, today):
        if event["organisation"] and event["beneficiary"] and event["outcome"] != "cancelled":
            billed[event["organisation"]].add(event["beneficiary"])
    thresholds, alerts = thresholds_from(settings), 0
    for organisation, patients in opened.items():
        if organisation not in billed:
            continue
        finding = signals.unbilled(len(patients), len(patients & billed[organisation]), thresholds)
        if finding is None:
            continue
        assessment = Assessment(Response.ALLOW, (finding,))
        evidence = {
            "response": "allow",
            "findings": [
                {
                    "signal": str(finding.signal),
                    "value": finding.value,
                    "threshold": finding.threshold,
                    "level": "alert",
                }
            ],
            "day": checked_on.isoformat(),
            "open_checks": len(patients),
            "billed": len(patients & billed[organisation]),
        }
        record_alert(
            session, now, f"professional:{organisation}", organisation, assessment, evidence
        )
        alerts += 1
    return alerts


def _events(
    session: Session, tag: str, first: date, last: date
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Events of one tag from the start of Paris day ``first`` to the end of ``last``."""
    start = datetime.combine(first, time.min, PARIS)
    end = datetime.combine(last + timedelta(days=1), time.min, PARIS)
    rows = session.execute(
        select(LedgerEntry.seq, LedgerEntry.event)
        .where(LedgerEntry.tag == str(tag), LedgerEntry.at >= start, LedgerEntry.at < end)
        .execution_options(yield_per=5000)
    )
    for seq, encoded in rows:
        yield seq, json.loads(encoded)


def _frozen_on(session: Session, day: date) -> set[str]:
    start = datetime.combine(day, time.min, PARIS)
    end = datetime.combine(day + timedelta(days=1), time.min, PARIS)
    return set(
        session.scalars(
            select(GuardAlert.actor).where(
                GuardAlert.response == str(Response.FREEZE),
                GuardAlert.at >= start,
                GuardAlert.at < end,
            )
        )
    )


def _empty() -> dict[str, Any]:
    return {"days": {}, "networks": {}, "devices": {}}


def _keep(history: dict[str, Any], oldest: str) -> None:
    """Forget what fell out of the window (ISO dates compare as strings)."""
    for part in ("days", "networks", "devices"):
        kept = history[part]
        for name in [k for k, v in kept.items() if (k if part == "days" else str(v)) < oldest]:
            del kept[name]


def _summarise(row: GuardBaseline, history: dict[str, Any], through: date, now: datetime) -> None:
    days: list[list[int]] = list(history["days"].values())
    by_hour: dict[int, int] = defaultdict(int)
    for figures in days:
        for hour in range(24):
            by_hour[hour] += figures[3] >> hour & 1
    hours = signals.active_hours(by_hour)
    values = {
        "through": through,
        "days_active": len(days),
        "daily": max(f[0] for f in days),
        "peak": max(f[1] for f in days),
        "hours": sum(1 << h for h in hours),
        "networks": " ".join(sorted(history["networks"])),
        "devices": " ".join(sorted(history["devices"])),
        "history": json.dumps(history, sort_keys=True, separators=(",", ":")),
    }
    if any(getattr(row, name) != value for name, value in values.items()) or row.id is None:
        for name, value in values.items():
            setattr(row, name, value)
        row.computed_at = now
