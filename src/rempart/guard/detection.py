"""Detection on top of the quotas: counts in a shared store, baselines from a table, graded
responses, alerts with their evidence.

Each rights check (``rights.services.find_insured``) hands its caller and the card's keyed
digests to ``Detection.assess`` before the look-up, and reports a miss after it. The counts live
in a store shared by every worker (Redis; process memory for a single worker, like the quotas),
in windows that expire by themselves: the burst window (10 minutes), the Paris day, the hour.
What is normal for the caller (its baseline) is read from ``guard_baselines``, cached a few
minutes per process. The rules themselves are in ``signals`` (pure).

Nothing here stores a card, a member number, an address or a user agent in clear: only keyed
digests (HMAC under the platform's ``guard`` secret), which the store's keys and members hold.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from rempart.dates import paris_day
from rempart.db import transaction
from rempart.errors import Error, Forbidden, RateLimited
from rempart.guard import signals
from rempart.guard.models import GuardAlert, GuardBaseline
from rempart.guard.quotas import (
    Limit,
    MemoryQuotaStore,
    Quotas,
    QuotaStore,
    RedisQuotaStore,
    quotas_for,
)
from rempart.guard.quotas import limits_from as quota_limits
from rempart.guard.signals import Assessment, Baseline, Measure, Response, Signal
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.settings import Settings

GUARD_KEY = "guard"  # the platform secret that keys networks, devices and member numbers
GUARD_ACTOR = "guard:detection"  # who freezes and alerts, in the ledger and the freezes
BASELINE_SECONDS = 3600  # a worker reads a baseline again after an hour (they change nightly)
DAY_TTL = 2 * 86400
HOUR_TTL = 2 * 3600


class StepUpRequired(Error):
    """The guard wants the person behind the session to give a second factor again (RFC 9470's
    ``insufficient_user_authentication``): sign in again, then retry."""

    status = 401
    title = "Step-up authentication required"
    type_slug = "step-up-required"


class AccountFrozen(Forbidden):
    """The guard froze the account: what it did looked like an intrusion."""

    status = 403
    title = "Account frozen"
    type_slug = "account-frozen"


# --- the store ----------------------------------------------------------------------------------


class DetectionStore(Protocol):
    def apply(
        self,
        adds: Sequence[tuple[str, str, int]],
        reads: Sequence[str] = (),
        removes: Sequence[tuple[str, str]] = (),
    ) -> tuple[list[tuple[bool, int]], list[int]]:
        """In one round trip: remove ``removes`` (key, member); add each (key, member, ttl
        seconds), giving whether it was new and the set's size; the size of each ``reads``."""
        ...


class MemoryDetectionStore:
    """Sets in this process's memory: right for one worker (and the simulator), wrong for
    several."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._sets: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def apply(
        self,
        adds: Sequence[tuple[str, str, int]],
        reads: Sequence[str] = (),
        removes: Sequence[tuple[str, str]] = (),
    ) -> tuple[list[tuple[bool, int]], list[int]]:
        now = self._clock()
        with self._lock:
            for key, member in removes:
                if key in self._sets:
                    self._sets[key][1].discard(member)
            added = []
            for key, member, ttl in adds:
                expires, members = self._sets.get(key, (now + ttl, set()))
                if expires <= now:
                    expires, members = now + ttl, set()
                new = member not in members
                members.add(member)
                self._sets[key] = (expires, members)
                added.append((new, len(members)))
            sizes = []
            for key in reads:
                found = self._sets.get(key)
                sizes.append(len(found[1]) if found and found[0] > now else 0)
            if len(self._sets) > 200_000:  # forget windows that are over
                self._sets = {k: v for k, v in self._sets.items() if v[0] > now}
            return added, sizes


class RedisDetectionStore:
    """Sets in Redis, shared by every worker: one script per call, so one round trip and one
    command however many windows a request touches (a pipeline of 18 commands costs four times
    as much in the client)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._script = client.register_script(_APPLY)

    @classmethod
    def from_url(cls, url: str) -> RedisDetectionStore:
        return cls(redis.Redis.from_url(url))

    def apply(
        self,
        adds: Sequence[tuple[str, str, int]],
        reads: Sequence[str] = (),
        removes: Sequence[tuple[str, str]] = (),
    ) -> tuple[list[tuple[bool, int]], list[int]]:
        keys = [k for k, _ in removes] + [k for k, _, _ in adds] + list(reads)
        args: list[str | int] = [len(removes), len(adds), len(reads)]
        args += [m for _, m in removes] + [m for _, m, _ in adds] + [t for _, _, t in adds]
        results = [int(r) for r in self._script(keys=keys, args=args)]
        added = [(bool(results[2 * i]), results[2 * i + 1]) for i in range(len(adds))]
        return added, results[2 * len(adds) :]


# KEYS: the removes' keys, the adds' keys, the reads' keys. ARGV: the three counts, then the
# removes' members, the adds' members, the adds' lifetimes. A set's lifetime is set when it is
# created (as EXPIRE NX): a window expires on time however often it is touched.
_APPLY = """
local nr, na, nd = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i = 1, nr do redis.call('SREM', KEYS[i], ARGV[3 + i]) end
for i = 1, na do
  local key = KEYS[nr + i]
  out[#out + 1] = redis.call('SADD', key, ARGV[3 + nr + i])
  out[#out + 1] = redis.call('SCARD', key)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[3 + nr + na + i]) end
end
for i = 1, nd do out[#out + 1] = redis.call('SCARD', KEYS[nr + na + i]) end
return out
"""


# --- what a request hands over, and what it gets back ------------------------------------------


@dataclass(frozen=True)
class Ask:
    """One request to reach a beneficiary, as the detection sees it: keyed digests only."""

    actor: str  # "user:<id>" or "client:<id>", as in the ledger
    organisation: str  # the practice's billing number
    profession: str | None
    software: bool  # billing software: it cannot step up
    authenticated_at: datetime | None  # when the person gave a second factor
    card: str  # keyed digest of the rights-check key (the quotas' one)
    member: str  # keyed member number
    block: str | None  # keyed block of member numbers (None: a number too short to have one)
    network: str  # keyed network (/24, /48)
    device: str  # keyed user agent without its version numbers


@dataclass(frozen=True)
class Verdict:
    assessment: Assessment
    measure: Measure
    error: Error | None  # what to answer when the request is refused

    @property
    def response(self) -> Response:
        return self.assessment.response


def ask_for(
    secret: bytes,
    *,
    actor: str,
    organisation: str,
    profession: str | None,
    authenticated_at: datetime | None,
    card: str,
    amc_number: str,
    member_number: str,
    ip: str | None,
    user_agent: str | None,
    digits: int,
) -> Ask:
    """Key what the detection needs from the request; the card's numbers stay here."""
    member, block = signals.member_keys(secret, amc_number, member_number, digits)
    return Ask(
        actor=actor,
        organisation=organisation,
        profession=profession,
        software=not actor.startswith("user:"),
        authenticated_at=authenticated_at,
        card=card,
        member=member,
        block=block if len(member_number.strip()) > digits else None,
        network=signals.network_key(secret, ip),
        device=signals.device_key(secret, user_agent),
    )


# --- the detection --------------------------------------------------------------------------------


def thresholds_from(settings: Settings) -> signals.Thresholds:
    return signals.Thresholds(
        min_history_days=settings.guard_min_history_days,
        burst_factor=settings.guard_burst_factor,
        burst_floor=settings.guard_burst_floor,
        burst_min=settings.guard_burst_min,
        burst_freeze_factor=settings.guard_burst_freeze_factor,
        daily_factor=settings.guard_daily_factor,
        daily_floor=settings.guard_daily_floor,
        miss_min_cards=settings.guard_miss_min_cards,
        miss_ratio_step_up=settings.guard_miss_ratio_step_up,
        miss_ratio_freeze=settings.guard_miss_ratio_freeze,
        neighbours_step_up=settings.guard_neighbours_step_up,
        neighbours_freeze=settings.guard_neighbours_freeze,
        crowd_professionals=settings.guard_crowd_professionals,
        refusals_freeze=settings.guard_refusals_freeze,
        max_networks=settings.guard_max_networks,
        unbilled_ratio=settings.guard_unbilled_ratio,
        unbilled_min_checks=settings.guard_unbilled_min_checks,
    )


def baseline_of(row: GuardBaseline) -> Baseline:
    return Baseline(
        days_active=row.days_active,
        daily=row.daily,
        peak=row.peak,
        hours=frozenset(h for h in range(24) if row.hours >> h & 1),
        networks=frozenset(row.networks.split()),
        devices=frozenset(row.devices.split()),
    )


class Detection:
    """Measures each request against its caller's norm; answers, alerts, and says when to freeze
    (the caller freezes: containment ends sessions, which the guard, a leaf, may not touch)."""

    def __init__(
        self,
        store: DetectionStore,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.settings, self.clock = store, settings, clock
        self.thresholds = thresholds_from(settings)
        self.burst_seconds = settings.guard_burst_minutes * 60
        self.step_up_seconds = settings.guard_step_up_minutes * 60
        largest = max(settings.guard_priors.values(), default=(400, 40))
        self._default_prior = signals.Prior(largest[0], largest[1], (0, 24))
        self._baselines: dict[tuple[str, str], tuple[float, Baseline | None]] = {}
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def prior(self, profession: str | None) -> signals.Prior:
        """A profession's prior; the most generous one for a profession the settings omit."""
        found = self.settings.guard_priors.get(profession or "")
        if found is None:
            return self._default_prior
        hours = self.settings.guard_hours.get(profession or "", (0, 24))
        return signals.Prior(found[0], found[1], hours)

    def forget_baselines(self) -> None:
        """Read every baseline again at the next request (after ``rempart guard baselines``)."""
        with self._lock:
            self._baselines.clear()

    def assess(self, session: Session, ask: Ask) -> Verdict:
        """Count this request, judge it, keep the books (a refused card is not counted, a refusal
        is), and raise an alert for each new finding."""
        epoch = self.clock()
        now = datetime.fromtimestamp(epoch, UTC)
        day = paris_day(now).isoformat()
        window, elapsed = divmod(epoch, self.burst_seconds)
        hour = int(epoch // 3600)
        burst_ttl = 2 * self.burst_seconds + 60
        keys = _Keys(ask, day, int(window), hour)
        adds = [
            (keys.burst, ask.card, burst_ttl),
            (keys.day_key, ask.card, DAY_TTL),
            (keys.practice_day, ask.card, DAY_TTL),
        ]
        if ask.block is not None:
            adds.append((keys.block, ask.member, DAY_TTL))
        if ask.network:
            adds.append((keys.crowd, ask.organisation, DAY_TTL))
        added, (previous, misses, refusals) = self.store.apply(
            adds, (keys.previous_burst, keys.misses, keys.refusals)
        )
        sizes = [size for _, size in added]
        measure = Measure(
            burst=signals.sliding_count(sizes[0], previous, elapsed, self.burst_seconds),
            day=sizes[1],
            professional_day=sizes[2],
            cards=sizes[1],
            misses=misses,
            neighbours=sizes[3] if ask.block is not None else 0,
            crowd=sizes[-1] if ask.network else 0,
            refusals=refusals,
            hour=signals.paris_hour(now),
            network=ask.network,
            device=ask.device,
        )
        account, practice = self._norms(session, ask)
        fresh = (
            ask.authenticated_at is not None
            and (now - ask.authenticated_at).total_seconds() <= self.step_up_seconds
        )
        assessment = signals.assess(
            measure, account, practice, self.thresholds, software=ask.software, fresh=fresh
        )
        if not assessment.findings and not assessment.refused:
            return Verdict(assessment, measure, None)
        removes: list[tuple[str, str]] = []
        books: list[tuple[str, str, int]] = []
        if assessment.refused:  # a refused request reaches no one: it costs no allowance
            removes = [
                (key, member) for (key, member, _), (new, _) in zip(adds, added, strict=True) if new
            ]
            books.append((keys.refusals, f"{epoch:.6f}:{secrets.token_hex(4)}", HOUR_TTL))
        signature = ",".join(sorted({f"{f.signal}:{f.level}" for f in assessment.findings}))
        books.append((keys.alerted, f"{ask.actor}|{signature}|{assessment.response}", DAY_TTL))
        first, _ = self.store.apply(books, (), removes)
        if first[-1][0]:
            self._alert(session, ask, assessment, measure, now)
        return Verdict(assessment, measure, self._error(assessment, now, elapsed))

    def missed(self, ask: Ask) -> None:
        """The card matched no one (reported after the look-up): it counts toward the misses."""
        day = paris_day(self.now()).isoformat()
        self.store.apply([(f"guard:m:{ask.actor}:{day}", ask.card, DAY_TTL)])

    def _norms(self, session: Session, ask: Ask) -> tuple[signals.Norm, signals.Norm]:
        prior = self.prior(ask.profession)
        wanted = [("account", ask.actor), ("professional", ask.organisation)]
        found = self._cached(session, wanted)
        return (
            signals.norm_of(found[0], prior, self.thresholds, person=not ask.software),
            signals.norm_of(found[1], prior, self.thresholds),
        )

    def _cached(self, session: Session, wanted: list[tuple[str, str]]) -> list[Baseline | None]:
        now = self.clock()
        with self._lock:
            cached = [self._baselines.get(key) for key in wanted]
        if all(c is not None and c[0] > now for c in cached):
            return [c[1] for c in cached if c is not None]
        rows = {
            (row.scope, row.owner): row
            for row in session.scalars(
                select(GuardBaseline).where(GuardBaseline.owner.in_([o for _, o in wanted]))
            )
        }
        loaded: list[Baseline | None] = []
        for key in wanted:
            row = rows.get(key)
            if row is not None:
                journal.check_row(session, row)  # a forged baseline could widen an allowance
            loaded.append(baseline_of(row) if row is not None else None)
        with self._lock:
            if len(self._baselines) > 100_000:
                self._baselines.clear()
            for key, baseline in zip(wanted, loaded, strict=True):
                self._baselines[key] = (now + BASELINE_SECONDS, baseline)
        return loaded

    def _error(self, assessment: Assessment, now: datetime, elapsed: float) -> Error | None:
        response = assessment.response
        if response is Response.ALLOW:
            return None
        reason = "; ".join(f.describe() for f in assessment.findings)
        if response is Response.FREEZE:
            return AccountFrozen(
                "this account is frozen: its use looked like an intrusion "
                f"({reason}); the operator has been alerted"
            )
        if response is Response.STEP_UP:
            return StepUpRequired(
                f"unusual use of this account ({reason}): sign in again with your second factor, "
                "then retry"
            )
        short = {Signal.BURST}  # these pass with the burst window; the others with the day
        retry = max(
            math.ceil(self.burst_seconds - elapsed)
            if f.signal in short
            else signals.seconds_to_paris_midnight(now)
            for f in assessment.findings
            if f.level is Response.STEP_UP
        )
        return RateLimited(f"unusual use by this software ({reason}): slow down", retry_after=retry)

    def _alert(
        self, session: Session, ask: Ask, assessment: Assessment, measure: Measure, now: datetime
    ) -> None:
        record_alert(
            session,
            now,
            ask.actor,
            ask.organisation,
            assessment,
            {**assessment.evidence(measure), "software": ask.software},
        )


def record_alert(
    session: Session,
    now: datetime,
    actor: str,
    organisation: str | None,
    assessment: Assessment,
    evidence: dict[str, object],
) -> None:
    """An alert row with its evidence, and its event in the ledger (same transaction)."""
    reason = assessment.reason()[:500]
    names = ",".join(dict.fromkeys(str(f.signal) for f in assessment.findings))
    session.add(
        GuardAlert(
            at=now,
            actor=actor,
            organisation=organisation,
            signals=names[:200],
            response=str(assessment.response),
            reason=reason,
            evidence=json.dumps(evidence, sort_keys=True),
        )
    )
    append_events(
        session,
        [
            AccessEvent(
                at=now,
                tag=Tag.GUARD_ALERT,
                actor=GUARD_ACTOR,
                outcome=str(assessment.response),
                purpose=f"{actor}: {reason}"[:500],
                organisation=organisation,
            )
        ],
    )


def alerts_since(sessions: sessionmaker[Session], since: datetime) -> list[dict[str, object]]:
    """The alerts raised since ``since``, oldest first, each with its evidence."""
    with transaction(sessions) as session:
        return [
            {
                "at": a.at.isoformat(),
                "actor": a.actor,
                "organisation": a.organisation,
                "signals": a.signals,
                "response": a.response,
                "reason": a.reason,
                "evidence": json.loads(a.evidence),
            }
            for a in session.scalars(
                select(GuardAlert).where(GuardAlert.at >= since).order_by(GuardAlert.at)
            )
        ]


@dataclass(frozen=True)
class AlertView:
    """An alert as the console shows it: who, what the detection answered, and its evidence."""

    at: datetime
    actor: str
    organisation: str | None
    response: str
    reason: str
    evidence: dict[str, Any]

    @property
    def findings(self) -> list[dict[str, Any]]:
        """Each signal with its value, the bound it went beyond, and its grade."""
        return list(self.evidence.get("findings", []))

    @property
    def context(self) -> list[str]:
        return [str(c) for c in self.evidence.get("context", [])]


def latest_alerts(
    sessions: sessionmaker[Session], since: datetime, limit: int = 500
) -> list[AlertView]:
    """The alerts raised since ``since``, newest first, at most ``limit``."""
    with transaction(sessions) as session:
        rows = session.scalars(
            select(GuardAlert)
            .where(GuardAlert.at >= since)
            .order_by(GuardAlert.at.desc(), GuardAlert.id)
            .limit(limit)
        )
        return [
            AlertView(a.at, a.actor, a.organisation, a.response, a.reason, json.loads(a.evidence))
            for a in rows
        ]


@dataclass(frozen=True)
class _Keys:
    """The store's keys for one request: digests and window numbers, nothing in clear."""

    ask: Ask
    today: str
    window: int
    hour: int

    @property
    def burst(self) -> str:
        return f"guard:b:{self.ask.actor}:{self.window}"

    @property
    def previous_burst(self) -> str:
        return f"guard:b:{self.ask.actor}:{self.window - 1}"

    @property
    def day_key(self) -> str:
        return f"guard:d:{self.ask.actor}:{self.today}"

    @property
    def practice_day(self) -> str:
        return f"guard:o:{self.ask.organisation}:{self.today}"

    @property
    def block(self) -> str:
        return f"guard:n:{self.ask.actor}:{self.today}:{self.ask.block}"

    @property
    def crowd(self) -> str:
        return f"guard:c:{self.ask.network}:{self.today}"

    @property
    def misses(self) -> str:
        return f"guard:m:{self.ask.actor}:{self.today}"

    @property
    def refusals(self) -> str:
        return f"guard:r:{self.ask.actor}:{self.hour}"

    @property
    def alerted(self) -> str:
        return f"guard:a:{self.today}"


# --- the guard: quotas and detection together ----------------------------------------------------


class Guard(Quotas):
    """The quotas and the detection: what every path from a professional to a beneficiary
    passes. It is handed around where the quotas were, so every caller gets both."""

    def __init__(
        self,
        store: QuotaStore,
        limits: Sequence[Limit],
        detection: Detection,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(store, limits, clock)
        self.detection = detection

    def now(self) -> datetime:
        return self.detection.now()


def protection_for(settings: Settings) -> Quotas:
    """What the API checks every request to a beneficiary with: the guard (quotas and
    detection), or the quotas alone when a load test turned the detection off."""
    return guard_for(settings) if settings.guard_detection else quotas_for(settings)


def guard_for(settings: Settings, clock: Callable[[], float] = time.time) -> Guard:
    """Redis when REMPART_REDIS_URL is set (every worker shares the counts), memory otherwise."""
    quota_store: QuotaStore
    detection_store: DetectionStore
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url)
        quota_store, detection_store = RedisQuotaStore(client), RedisDetectionStore(client)
    else:
        quota_store, detection_store = MemoryQuotaStore(clock), MemoryDetectionStore(clock)
    return Guard(
        quota_store, quota_limits(settings), Detection(detection_store, settings, clock), clock
    )
