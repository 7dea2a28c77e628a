"""Detection from the attacker's side: stolen sessions, enumerations and slow scrapers are stopped
within a few beneficiaries, a busy pharmacy is not, and everything is on the record."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from rempart.app import create_app
from rempart.cli import app as cli_app
from rempart.dates import PARIS
from rempart.db import transaction
from rempart.errors import RateLimited
from rempart.guard.baselines import update_baselines
from rempart.guard.detection import (
    AccountFrozen,
    DetectionStore,
    MemoryDetectionStore,
    RedisDetectionStore,
    guard_for,
)
from rempart.guard.models import Freeze, GuardAlert, GuardBaseline
from rempart.identity.auth import Client, Principal
from rempart.identity.clients import professional_id_of
from rempart.integrity.verify import protected_tables, verify_integrity
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.models import LedgerEntry
from rempart.ledger.recorder import LedgerRecorder
from rempart.ledger.services import append_events
from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, import_members
from rempart.rights.services import CardQuery, check_rights
from rempart.settings import get_settings
from tests.conftest import REDIS_URL
from tests.support import (
    AMC,
    OPTICIAN_AM,
    PHARMACIST_AM,
    Person,
    SettableClock,
    account_actor,
    add_account,
    add_baseline,
    add_insurer,
    add_professionals,
    age_sessions,
    card_body,
    member_file,
    person,
    sign_in,
    spread_people,
)

PHARMACY_IP, THIEF_IP = "81.250.12.34", "185.220.101.34"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0"
SCRIPT = "python-requests/2.32.3"
PHARMACIST, OPTICIAN = "pharma@example.org", "optique@example.org"
PEOPLE = spread_people(240)
NEIGHBOURS = [person(n) for n in range(10, 20)]  # M0000010..M0000019: one block of numbers
ELIGIBILITY = "/api/v1/eligibility"


@dataclass
class World:
    platform: Platform
    owner: TestClient  # the practice's own line
    thief: TestClient  # the same application, reached from a hosting block
    secrets: dict[str, str]

    def headers(self, email: str, ua: str = FIREFOX) -> dict[str, str]:
        return {**sign_in(self.owner, self.platform, email, self.secrets[email]), "User-Agent": ua}

    def clock(self, at: datetime) -> SettableClock:
        """Give the guard a clock the test moves by hand."""
        clock = SettableClock(at)
        self.owner.app.state.quotas = guard_for(self.platform.settings, clock)  # type: ignore[attr-defined]
        return clock


@pytest.fixture
def world(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    add_insurer(platform)
    add_professionals(platform)
    import_members(
        platform, AMC, io.BytesIO(member_file(PEOPLE + NEIGHBOURS[::3])), ImportOptions()
    )
    monkeypatch.setenv("REMPART_HOME", str(platform.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", platform.settings.resolved_database_url)
    get_settings.cache_clear()
    secrets = {
        PHARMACIST: add_account(platform, "professional", PHARMACIST, am_number=PHARMACIST_AM),
        OPTICIAN: add_account(platform, "professional", OPTICIAN, am_number=OPTICIAN_AM),
    }
    app = create_app(platform.settings, platform)
    with TestClient(app, client=(PHARMACY_IP, 50000)) as owner:
        thief = TestClient(app, client=(THIEF_IP, 41000))  # shares the app's state
        yield World(platform, owner, thief, secrets)
    get_settings.cache_clear()


def check(client: TestClient, headers: dict[str, str], who: Person, domain: str = "PHAR") -> int:
    return client.post(ELIGIBILITY, json=card_body(who, domain=domain), headers=headers).status_code


def outcomes(platform: Platform, actor: str) -> list[str]:
    with platform.sessions() as session:
        events = session.scalars(
            select(LedgerEntry.event)
            .where(LedgerEntry.tag == Tag.RIGHTS_READ, LedgerEntry.actor == actor)
            .order_by(LedgerEntry.seq)
        )
        return [json.loads(e)["outcome"] for e in events]


def freezes(platform: Platform) -> list[Freeze]:
    with platform.sessions() as session:
        return list(session.scalars(select(Freeze).where(Freeze.lifted_at.is_(None))))


def pharmacist_baseline(world: World, **changes: object) -> str:
    actor = account_actor(world.platform, PHARMACIST)
    values: dict[str, object] = {
        "daily": 60,
        "peak": 6,
        "hours": range(24),
        "ips": (PHARMACY_IP,),
        "user_agents": (FIREFOX,),
    }
    add_baseline(world.platform, actor, **{**values, **changes})  # type: ignore[arg-type]
    return actor


# --- the attacker's side ---------------------------------------------------------------------


def test_a_stolen_session_scraping_many_cards_is_frozen_within_twenty(world: World) -> None:
    actor = pharmacist_baseline(world)
    stolen = world.headers(PHARMACIST, ua=SCRIPT)
    age_sessions(world.platform, hours=3)  # stolen from a session signed in this morning
    answers = []
    for who in PEOPLE[:60]:
        status = check(world.thief, stolen, who)
        answers.append(status)
        if status == 403:
            break
    exposed = answers.count(200)
    assert exposed <= 20
    assert answers[-1] == 403  # frozen
    assert set(answers[exposed:-1]) == {401}  # asked to step up, which it cannot
    assert world.owner.get("/api/v1/auth/session", headers=stolen).status_code == 401
    (frozen,) = freezes(world.platform)
    assert (frozen.kind, frozen.target, frozen.created_by) == (
        "account",
        uuid.UUID(actor[5:]).hex,
        "guard:detection",
    )
    assert frozen.reason.startswith("guard: ")
    assert "persistence" in frozen.reason
    recorded = outcomes(world.platform, actor)
    assert recorded.count("step-up") == len(answers) - exposed - 1
    assert recorded[-1] == "frozen"
    with world.platform.sessions() as session:
        tags = list(session.scalars(select(LedgerEntry.tag).where(LedgerEntry.tag.like("guard:%"))))
    assert "guard:containment:freeze" in tags
    assert "guard:alert:raise" in tags


def test_what_the_guard_writes_is_sealed_and_journalled(world: World) -> None:
    pharmacist_baseline(world)
    stolen = world.headers(PHARMACIST, ua=SCRIPT)
    age_sessions(world.platform, hours=3)
    for who in PEOPLE[:30]:
        if check(world.thief, stolen, who) == 403:
            break
    update_baselines(world.platform)  # rows written by the nightly job too
    report = verify_integrity(world.platform)
    assert report.intact, report.problems
    names = {t.name for t in protected_tables()}
    assert {"guard_alerts", "guard_baselines", "freezes"} <= names


def test_the_step_up_problem_tells_the_client_what_to_do(world: World) -> None:
    pharmacist_baseline(world)
    stolen = world.headers(PHARMACIST, ua=SCRIPT)
    age_sessions(world.platform, hours=3)
    responses = [
        world.thief.post(ELIGIBILITY, json=card_body(w), headers=stolen) for w in PEOPLE[:5]
    ]
    refused = next(r for r in responses if r.status_code != 200)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"] == "https://rempart.dev/problems/step-up-required"
    assert "second factor" in problem["detail"]
    assert "burst" in problem["detail"]


def test_a_fresh_second_factor_passes_the_step_up_and_an_old_session_does_not(
    world: World,
) -> None:
    pharmacist_baseline(world, peak=2)
    old = world.headers(PHARMACIST, ua="Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0")
    age_sessions(world.platform, hours=1)
    statuses = [check(world.owner, old, who) for who in PEOPLE[:5]]
    assert statuses == [200, 200, 200, 401, 401]  # a new device halves its allowance: 6 → 3
    fresh = world.headers(PHARMACIST, ua="Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0")
    assert check(world.owner, fresh, PEOPLE[3]) == 200  # signed in again: it passes
    assert check(world.owner, fresh, PEOPLE[4]) == 200
    assert check(world.owner, old, PEOPLE[5]) == 401  # the old session still cannot
    assert freezes(world.platform) == []


def test_an_enumerator_of_member_numbers_is_frozen_even_with_a_fresh_session(
    world: World,
) -> None:
    pharmacist_baseline(world, peak=20)  # a busy account: the burst says nothing here
    headers = world.headers(PHARMACIST)  # its own line, its own browser, a fresh factor
    answers = [check(world.owner, headers, who) for who in NEIGHBOURS]
    assert answers[:4] == [200] * 4  # the third and fourth neighbours pass the step-up
    assert answers[4] == 403  # the fifth number of the block: frozen, fresh or not
    assert "neighbours" in freezes(world.platform)[0].reason
    exposed = sum(
        1 for who, a in zip(NEIGHBOURS[:4], answers, strict=False) if who in NEIGHBOURS[::3]
    )
    assert exposed <= 2


def test_a_slow_scraper_under_the_quotas_is_caught_by_the_baseline(world: World) -> None:
    actor = account_actor(world.platform, OPTICIAN)
    # An optician's account: a handful of patients a day, from its shop, in its hours.
    add_baseline(
        world.platform,
        actor,
        daily=6,
        peak=3,
        hours=range(9, 19),
        ips=(PHARMACY_IP,),
        user_agents=(FIREFOX,),
    )
    clock = world.clock(
        datetime.combine(date.today(), datetime.min.time(), PARIS) + timedelta(hours=10)
    )
    headers = world.headers(OPTICIAN)
    age_sessions(world.platform, hours=24)
    answers = []
    for who in PEOPLE[:40]:  # one patient every three minutes: 20 an hour, under the quota of 60
        clock.advance(180)
        answers.append(check(world.owner, headers, who, domain="OPTI"))
        if answers[-1] == 403:
            break
    assert 429 not in answers
    exposed = answers.count(200)
    assert exposed == 12  # twice its busiest day (6), then no more
    assert answers[exposed] == 401
    assert answers[-1] == 403
    (frozen,) = freezes(world.platform)
    assert frozen.target == uuid.UUID(actor[5:]).hex


def test_a_busy_day_at_a_pharmacy_is_not_frozen(world: World) -> None:
    pharmacist_baseline(world, daily=150, peak=15, hours=range(8, 20))
    clock = world.clock(
        datetime.combine(date.today(), datetime.min.time(), PARIS) + timedelta(hours=8)
    )
    headers = world.headers(PHARMACIST)
    age_sessions(world.platform, hours=1)
    statuses = []
    # A Monday rush: 20 patients in 10 minutes (its busiest was 15), then 200 more over the day.
    for who in PEOPLE[:20]:
        clock.advance(30)
        statuses.append(check(world.owner, headers, who))
    for who in PEOPLE[20:220]:
        clock.advance(180)
        statuses.append(check(world.owner, headers, who))
    assert set(statuses) == {200}
    assert freezes(world.platform) == []


# --- billing software: throttled, never asked to step up ---------------------------------------


def software(platform: Platform, registrant: str) -> Principal:
    return Principal(
        f"client:{uuid.uuid4()}",
        "professional",
        uuid.uuid4(),
        None,
        professional_id_of(platform, PHARMACIST_AM),
        PHARMACIST_AM,
        "pharmacist",
        account=registrant,
    )


def test_software_is_throttled_with_a_retry_after_and_then_frozen_if_it_ignores_it(
    platform: Platform,
) -> None:
    add_insurer(platform)
    add_professionals(platform)
    import_members(platform, AMC, io.BytesIO(member_file(PEOPLE[:60])), ImportOptions())
    # Mid-morning in Paris, whatever time the suite runs: at an odd hour the allowance halves.
    clock = SettableClock(datetime.combine(datetime.now(PARIS).date(), time(10), tzinfo=PARIS))
    guard = guard_for(platform.settings, clock)
    registrant = f"user:{uuid.uuid4()}"
    caller = software(platform, registrant)
    client = Client(ip=THIEF_IP, user_agent=SCRIPT)
    recorder = LedgerRecorder(platform.engine)
    today = datetime.now(PARIS).date()
    refusals: list[RateLimited] = []
    answered = 0
    for who in PEOPLE[:60]:
        query = CardQuery(
            AMC, who.member_number, date.fromisoformat(who.birth_date), 1, "PHAR", today
        )
        try:
            check_rights(platform, recorder, guard, caller, query, client)
            answered += 1
        except RateLimited as exc:
            refusals.append(exc)
        except AccountFrozen:
            break
    # No history: a whole pharmacy's prior (25 in a burst → 38, frozen beyond 76); the
    # software's first burst over 38 is throttled, and ten ignored throttles freeze its registrant.
    assert answered == 38
    assert len(refusals) == 10
    assert all(0 < r.retry_after <= 600 for r in refusals)
    (frozen,) = freezes(platform)
    assert frozen.target == uuid.UUID(registrant[5:]).hex
    assert outcomes(platform, caller.actor).count("throttled") == 10


# --- alerts, evidence, the CLI ---------------------------------------------------------------


def test_alerts_carry_their_evidence_and_no_personal_data(world: World) -> None:
    pharmacist_baseline(world)
    stolen = world.headers(PHARMACIST, ua=SCRIPT)
    age_sessions(world.platform, hours=3)
    for who in PEOPLE[:30]:
        if check(world.thief, stolen, who) == 403:
            break
    with world.platform.sessions() as session:
        alerts = list(session.scalars(select(GuardAlert).order_by(GuardAlert.at)))
    assert [a.response for a in alerts] == ["step-up", "freeze"]
    evidence = json.loads(alerts[0].evidence)
    (finding,) = evidence["findings"]
    assert (finding["signal"], finding["threshold"], finding["level"]) == ("burst", 3, "step-up")
    assert set(evidence["context"]) == {"new-network", "new-device"}
    assert evidence["measure"]["burst"] == 4
    text = " ".join(a.reason + a.evidence for a in alerts) + freezes(world.platform)[0].reason
    for who in PEOPLE[:30]:
        assert who.member_number not in text
        assert who.birth_date not in text
        assert who.last_name not in text
    assert THIEF_IP not in text
    assert "python" not in text
    result = CliRunner().invoke(cli_app, ["guard", "alerts", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [a["response"] for a in listed] == ["step-up", "freeze"]


def test_an_alert_is_raised_once_a_day_per_finding(world: World) -> None:
    pharmacist_baseline(world, peak=2)
    headers = world.headers(PHARMACIST)  # fresh: the step-ups pass, the alerts stay
    for who in PEOPLE[:12]:
        assert check(world.owner, headers, who) == 200
    with world.platform.sessions() as session:
        alerts = list(session.scalars(select(GuardAlert)))
    assert [(a.signals, a.response) for a in alerts] == [("burst", "allow")]


# --- baselines, learnt from the ledger ---------------------------------------------------------


def read(
    at: datetime, actor: str, patient: str | None, ip: str, outcome: str = "open"
) -> AccessEvent:
    return AccessEvent(
        at=at,
        tag=Tag.RIGHTS_READ,
        actor=actor,
        outcome=outcome,
        organisation=PHARMACIST_AM,
        tenant=AMC,
        beneficiary=patient,
        ip=ip,
        user_agent=FIREFOX,
    )


def test_baselines_are_learnt_from_the_ledger_one_day_at_a_time(platform: Platform) -> None:
    monday = date(2026, 11, 2)
    start = datetime.combine(monday, datetime.min.time(), PARIS)
    events = []
    for day in range(7):
        for n in range(10 + day):  # 10, 11, ... 16 patients; the last day's at 9 h, in a rush
            at = start + timedelta(days=day, hours=9 if day == 6 else 9 + n % 8, minutes=n)
            events.append(read(at, "user:a", f"p{day}-{n}", PHARMACY_IP))
        events.append(
            read(start + timedelta(days=day, hours=12), "user:a", None, PHARMACY_IP, "unknown")
        )
    events.append(read(start + timedelta(days=3, hours=23), "user:a", "night", "10.9.9.9"))
    events.append(
        read(start + timedelta(days=2, hours=10), "user:a", "x", PHARMACY_IP, "throttled")
    )
    with transaction(platform.sessions) as session:
        append_events(session, events)
    report = update_baselines(platform, monday + timedelta(days=6), start + timedelta(days=8))
    assert len(report.days) == platform.settings.guard_window_days  # a first run: the window
    assert report.days[-7:] == [monday + timedelta(days=d) for d in range(7)]
    assert (report.accounts, report.practices) == (1, 1)
    with platform.sessions() as session:
        rows = {r.scope: r for r in session.scalars(select(GuardBaseline))}
    account = rows["account"]
    assert account.days_active == 7
    assert account.daily == 16 + 1  # the busiest day's patients, and its miss
    assert account.peak == 10  # the last day's rush: 16 patients in 16 minutes, 10 per window
    hours = {h for h in range(24) if account.hours >> h & 1}
    assert hours == set(range(9, 17))  # 23 h was worked once: not usual
    assert len(account.networks.split()) == 2
    assert rows["professional"].owner == PHARMACIST_AM
    again = update_baselines(platform, monday + timedelta(days=6), start + timedelta(days=8))
    assert again.days == []  # nothing new to learn


def test_rights_checks_never_billed_raise_an_alert(platform: Platform) -> None:
    day = date(2026, 11, 2)
    at = datetime.combine(day, datetime.min.time(), PARIS) + timedelta(hours=10)
    checks = [read(at, "user:a", f"p{n}", PHARMACY_IP) for n in range(30)]
    invoice = AccessEvent(
        at=at + timedelta(hours=1),
        tag=Tag.INVOICE,
        actor="client:x",
        outcome="accepted",
        organisation=PHARMACIST_AM,
        tenant=AMC,
        beneficiary="p0",
    )
    with transaction(platform.sessions) as session:
        append_events(session, [*checks, invoice])
    lag = platform.settings.guard_unbilled_lag_days
    report = update_baselines(platform, day + timedelta(days=lag), at + timedelta(days=lag + 1))
    assert report.alerts == 1
    with platform.sessions() as session:
        (alert,) = session.scalars(select(GuardAlert))
    evidence = json.loads(alert.evidence)
    assert (evidence["open_checks"], evidence["billed"]) == (30, 1)
    assert (alert.signals, alert.organisation) == ("unbilled", PHARMACIST_AM)


def test_the_baselines_command(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMPART_HOME", str(platform.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", platform.settings.resolved_database_url)
    get_settings.cache_clear()
    yesterday = datetime.now(PARIS).date() - timedelta(days=1)
    at = datetime.combine(yesterday, datetime.min.time(), PARIS) + timedelta(hours=10)
    with transaction(platform.sessions) as session:
        append_events(session, [read(at, "user:a", "p1", PHARMACY_IP)])
    result = CliRunner().invoke(cli_app, ["guard", "baselines", "--json"])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["accounts"], summary["practices"]) == (1, 1)
    assert summary["days_learnt"][-1] == yesterday.isoformat()


# --- the stores ---------------------------------------------------------------------------------

needs_redis = pytest.mark.skipif(
    REDIS_URL is None, reason="REMPART_TEST_REDIS_URL is not set (CI sets it)"
)


@needs_redis
def test_the_redis_store_counts_as_the_memory_store_does() -> None:
    assert REDIS_URL is not None
    key = f"guard:test:{uuid.uuid4().hex}"
    stores: list[DetectionStore] = [MemoryDetectionStore(), RedisDetectionStore.from_url(REDIS_URL)]
    results = []
    for store in stores:
        store_key = f"{key}:{type(store).__name__}"
        first = store.apply([(store_key, "a", 60), (store_key, "b", 60)], [store_key, "none"])
        second = store.apply([(store_key, "a", 60)], [store_key], removes=[(store_key, "b")])
        results.append((first, second))
    assert (
        results[0]
        == results[1]
        == (
            ([(True, 1), (True, 2)], [2, 0]),
            ([(False, 1)], [1]),
        )
    )
    ttl = redis.Redis.from_url(REDIS_URL).ttl(f"{key}:RedisDetectionStore")
    assert 0 < ttl <= 60
