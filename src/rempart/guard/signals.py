"""Detection rules: what is normal for an account, which signals go beyond it, what to answer.

Pure: no clock, no storage. ``rempart.guard.detection`` measures (counts in a shared store,
baselines from a table) and hands the figures here; this module judges them. docs/guard.md
explains each signal and each threshold.

The responses, from the mildest: ``allow``; ``step-up`` (a person must give a second factor
again; a fresh one passes); ``throttle`` (what a step-up becomes for billing software, which has
no second factor to give); ``freeze`` (the account stops, on the record, until an operator lifts
it). Every finding also raises an alert with its evidence.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from rempart.dates import PARIS

KEY_BYTES = 8  # keyed digests of networks, devices and member-number blocks: 64 bits
_NETWORK, _DEVICE, _MEMBER, _BLOCK = b"network\x1f", b"device\x1f", b"member\x1f", b"block\x1f"
_VERSIONS = re.compile(r"[0-9._]+")
ALL_HOURS = frozenset(range(24))


class Response(StrEnum):
    ALLOW = "allow"
    STEP_UP = "step-up"
    THROTTLE = "throttle"
    FREEZE = "freeze"


class Signal(StrEnum):
    BURST = "burst"  # different patients in the last few minutes
    DAY = "day"  # different patients today, this account
    PROFESSIONAL_DAY = "professional-day"  # different patients today, the whole practice
    MISSES = "misses"  # unknown cards among today's
    NEIGHBOURS = "neighbours"  # member numbers of one block: an enumeration
    PERSISTENCE = "persistence"  # refusals ignored
    UNBILLED = "unbilled"  # rights checks never followed by an invoice (nightly)


class Context(StrEnum):
    """Circumstances that make the same volume more suspicious: each halves the burst allowance."""

    NEW_NETWORK = "new-network"
    NEW_DEVICE = "new-device"
    ODD_HOUR = "odd-hour"
    CROWDED_NETWORK = "crowded-network"


@dataclass(frozen=True)
class Thresholds:
    """The settings' REMPART_GUARD_* values that the rules use (see docs/guard.md)."""

    min_history_days: int = 5
    burst_factor: float = 1.5
    burst_floor: int = 6
    burst_min: int = 3
    burst_freeze_factor: float = 2.0
    daily_factor: float = 2.0
    daily_floor: int = 10
    miss_min_cards: int = 10
    miss_ratio_step_up: float = 0.3
    miss_ratio_freeze: float = 0.6
    neighbours_step_up: int = 3
    neighbours_freeze: int = 5
    crowd_professionals: int = 10
    refusals_freeze: int = 10
    max_networks: int = 50
    unbilled_ratio: float = 0.5
    unbilled_min_checks: int = 20


@dataclass(frozen=True)
class Prior:
    """What a profession's practice does on a busy day: until it has its own history."""

    daily: int
    peak: int
    hours: tuple[int, int]  # Paris hours, [start, end)


@dataclass(frozen=True)
class Baseline:
    """An account's or a practice's own history over the window (``rempart guard baselines``)."""

    days_active: int
    daily: int  # different patients on its busiest day
    peak: int  # different patients in its busiest burst window
    hours: frozenset[int] = ALL_HOURS  # Paris hours it worked on two days or more
    networks: frozenset[str] = frozenset()  # keyed digests of the networks it worked from
    devices: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Norm:
    """What is normal for one account or practice: its baseline, or its profession's prior.
    ``networks`` and ``devices`` are None when nothing can be called new (no history, or an
    account that roams over too many networks)."""

    daily: int
    peak: int
    hours: frozenset[int]
    networks: frozenset[str] | None
    devices: frozenset[str] | None
    own: bool  # from its own history (not the prior)


@dataclass(frozen=True)
class Measure:
    """What the detection counted for one request, the request's card included."""

    burst: int = 0
    day: int = 0
    professional_day: int = 0
    cards: int = 0  # different cards today (this account)
    misses: int = 0  # of which unknown
    neighbours: int = 0  # different member numbers in this card's block today
    crowd: int = 0  # practices working from this request's network today
    refusals: int = 0  # refusals this hour, before this request
    hour: int = 12  # Paris hour of the request
    network: str = ""
    device: str = ""


@dataclass(frozen=True)
class Finding:
    signal: Signal
    value: float
    threshold: float  # the bound it went beyond
    level: Response  # STEP_UP or FREEZE

    def describe(self) -> str:
        value = f"{self.value:.2f}" if isinstance(self.value, float) else str(self.value)
        bound = f"{self.threshold:.2f}" if isinstance(self.threshold, float) else self.threshold
        ratio = self.signal in (Signal.MISSES, Signal.UNBILLED)  # judged at the bound itself
        return f"{self.signal} {value} {'≥' if ratio else '>'} {bound}"


@dataclass(frozen=True)
class Assessment:
    response: Response
    findings: tuple[Finding, ...] = ()
    context: tuple[Context, ...] = ()
    allowances: dict[str, float] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return self.response is not Response.ALLOW

    def reason(self) -> str:
        """One line for the freeze record and the alert: signals and bounds, nobody's data."""
        parts = [f.describe() for f in self.findings] or ["nothing beyond its bound"]
        context = f" ({', '.join(self.context)})" if self.context else ""
        return "guard: " + "; ".join(parts) + context

    def evidence(self, measure: Measure) -> dict[str, object]:
        """What an alert keeps: every figure the decision rests on, and the bounds."""
        return {
            "response": str(self.response),
            "findings": [
                {
                    "signal": str(f.signal),
                    "value": f.value,
                    "threshold": f.threshold,
                    "level": str(f.level),
                }
                for f in self.findings
            ],
            "context": [str(c) for c in self.context],
            "measure": {
                "burst": measure.burst,
                "day": measure.day,
                "professional_day": measure.professional_day,
                "cards": measure.cards,
                "misses": measure.misses,
                "neighbours": measure.neighbours,
                "crowd": measure.crowd,
                "refusals": measure.refusals,
                "hour": measure.hour,
            },
            "allowances": self.allowances,
        }


ALLOWED = Assessment(Response.ALLOW)


def norm_of(
    baseline: Baseline | None, prior: Prior, t: Thresholds, *, person: bool = False
) -> Norm:
    """An account's own history once it has enough of it, its profession's prior before. The
    prior is a whole practice's; a person without history gets one counter's pace in a burst
    (``burst_floor``), whatever the practice's size."""
    usual = frozenset(range(prior.hours[0], prior.hours[1]))
    if baseline is None or baseline.days_active < t.min_history_days:
        peak = min(prior.peak, t.burst_floor) if person else prior.peak
        return Norm(prior.daily, peak, usual, None, None, own=False)
    roams = len(baseline.networks) > t.max_networks
    return Norm(
        daily=baseline.daily,
        peak=baseline.peak,
        hours=usual | baseline.hours,
        networks=None if roams else baseline.networks,
        devices=baseline.devices,
        own=True,
    )


def context_of(measure: Measure, norm: Norm, t: Thresholds) -> tuple[Context, ...]:
    found = []  # a request that says nothing of its network or device is judged without them
    if norm.networks is not None and measure.network and measure.network not in norm.networks:
        found.append(Context.NEW_NETWORK)
    if norm.devices is not None and measure.device and measure.device not in norm.devices:
        found.append(Context.NEW_DEVICE)
    if measure.hour not in norm.hours:
        found.append(Context.ODD_HOUR)
    if measure.crowd > t.crowd_professionals:
        found.append(Context.CROWDED_NETWORK)
    return tuple(found)


def burst_allowance(norm: Norm, t: Thresholds) -> int:
    """Different patients allowed in a burst window: a margin over the busiest one seen."""
    return max(t.burst_floor, math.ceil(t.burst_factor * norm.peak))


def tightened(allowance: int, context: tuple[Context, ...], t: Thresholds) -> int:
    """Each context signal halves the allowance (three at most count), down to ``burst_min``."""
    return max(t.burst_min, allowance >> min(len(context), 3))


def daily_allowance(daily: int, t: Thresholds) -> int:
    return max(t.daily_floor, math.ceil(t.daily_factor * daily))


def assess(
    measure: Measure,
    account: Norm,
    professional: Norm,
    t: Thresholds,
    *,
    software: bool,
    fresh: bool,
) -> Assessment:
    """Judge one request. ``software``: billing software, which cannot step up (it is throttled
    instead); ``fresh``: a person whose second factor is recent enough to pass a step-up."""
    context = context_of(measure, account, t)
    burst = burst_allowance(account, t)
    tight = tightened(burst, context, t)
    day = daily_allowance(account.daily, t)
    practice_day = daily_allowance(professional.daily, t)
    findings: list[Finding] = []

    def beyond(signal: Signal, value: float, bound: float, level: Response) -> None:
        findings.append(Finding(signal, value, bound, level))

    freeze_burst = math.floor(t.burst_freeze_factor * burst)
    if measure.burst > freeze_burst:
        beyond(Signal.BURST, measure.burst, freeze_burst, Response.FREEZE)
    elif measure.burst > tight:
        beyond(Signal.BURST, measure.burst, tight, Response.STEP_UP)
    if measure.day > day:
        beyond(Signal.DAY, measure.day, day, Response.STEP_UP)
    if measure.professional_day > practice_day:
        beyond(Signal.PROFESSIONAL_DAY, measure.professional_day, practice_day, Response.STEP_UP)
    if measure.cards >= t.miss_min_cards:
        ratio = round(measure.misses / measure.cards, 3)
        if ratio >= t.miss_ratio_freeze:
            beyond(Signal.MISSES, ratio, t.miss_ratio_freeze, Response.FREEZE)
        elif ratio >= t.miss_ratio_step_up:
            beyond(Signal.MISSES, ratio, t.miss_ratio_step_up, Response.STEP_UP)
    if measure.neighbours >= t.neighbours_freeze:
        beyond(Signal.NEIGHBOURS, measure.neighbours, t.neighbours_freeze - 1, Response.FREEZE)
    elif measure.neighbours >= t.neighbours_step_up:
        beyond(Signal.NEIGHBOURS, measure.neighbours, t.neighbours_step_up - 1, Response.STEP_UP)
    if measure.refusals >= t.refusals_freeze:
        beyond(Signal.PERSISTENCE, measure.refusals, t.refusals_freeze - 1, Response.FREEZE)

    allowances: dict[str, float] = {
        "burst": tight,
        "burst_freeze": freeze_burst,
        "day": day,
        "practice_day": practice_day,
    }
    return Assessment(
        respond(findings, software=software, fresh=fresh), tuple(findings), context, allowances
    )


def respond(findings: Iterable[Finding], *, software: bool, fresh: bool) -> Response:
    """The response to the worst finding: a freeze whatever the session; a step-up, which a
    fresh second factor passes, and which billing software gets as a throttle."""
    levels = {f.level for f in findings}
    if Response.FREEZE in levels:
        return Response.FREEZE
    if Response.STEP_UP not in levels:
        return Response.ALLOW
    if software:
        return Response.THROTTLE
    return Response.ALLOW if fresh else Response.STEP_UP


def unbilled(checked: int, billed: int, t: Thresholds) -> Finding | None:
    """A practice's open rights checks of one day, and how many it billed: a finding when too
    few were billed (judged from ``unbilled_min_checks`` checks on)."""
    if checked < t.unbilled_min_checks:
        return None
    ratio = round((checked - billed) / checked, 3)
    if ratio < t.unbilled_ratio:
        return None
    return Finding(Signal.UNBILLED, ratio, t.unbilled_ratio, Response.ALLOW)


# --- what is measured, keyed so that no store holds an address or a number in clear ---------


def network_of(ip: str | None) -> str:
    """The network a request comes from: its IPv4 /24 or IPv6 /48 (a practice's line, a
    mobile operator's block), or the raw value when it is no address."""
    if not ip:
        return ""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def device_of(user_agent: str | None) -> str:
    """A device as its software names itself, without version numbers: a browser's monthly
    update is not a new device; another browser, system or a script is."""
    return _VERSIONS.sub("", (user_agent or "").lower())[:200]


def keyed(secret: bytes, label: bytes, value: str) -> str:
    return hmac.digest(secret, label + value.encode(), "sha256")[:KEY_BYTES].hex()


def network_key(secret: bytes, ip: str | None) -> str:
    """The keyed network, or "" when the request gave no address."""
    network = network_of(ip)
    return keyed(secret, _NETWORK, network) if network else ""


def device_key(secret: bytes, user_agent: str | None) -> str:
    """The keyed device, or "" when the request gave no user agent."""
    device = device_of(user_agent)
    return keyed(secret, _DEVICE, device) if device else ""


def member_keys(secret: bytes, amc_number: str, member_number: str, digits: int) -> tuple[str, str]:
    """A member number and its block (the number without its last ``digits`` characters), both
    keyed: sequential numbers share a block, which the detection counts without ever storing a
    number in clear."""
    number = member_number.strip()
    block = number[:-digits] if len(number) > digits else ""
    return (
        keyed(secret, _MEMBER, f"{amc_number}\x1f{number}"),
        keyed(secret, _BLOCK, f"{amc_number}\x1f{block}"),
    )


# --- time: Paris days and hours, fixed windows ------------------------------------------------


def paris_hour(at: datetime) -> int:
    return at.astimezone(PARIS).hour


def seconds_to_paris_midnight(at: datetime) -> int:
    local = at.astimezone(PARIS)
    tomorrow = local.date() + timedelta(days=1)
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=PARIS)
    return max(1, math.ceil((midnight - local).total_seconds()))


def sliding_count(current: int, previous: int, elapsed: float, window: float) -> int:
    """Different patients in the last ``window`` seconds, estimated from two fixed windows: all of
    the current one and the part of the previous one that is still inside."""
    return current + math.floor(previous * max(0.0, 1.0 - elapsed / window))


def active_hours(days_by_hour: dict[int, int], min_days: int = 2) -> frozenset[int]:
    """Hours worked on at least ``min_days`` days: one night's work does not make night usual."""
    return frozenset(hour for hour, days in days_by_hour.items() if days >= min_days)
