"""The attack simulator: a month of legitimate rights checks, then the intruders of January 2024.

A throw-away platform (a temporary SQLite file, or an empty PostgreSQL database) is loaded with
two insurers, their members and practices of every kind, through the real imports. A month of
rights checks is played through the real services — ``check_rights`` with the real quotas,
detection, containment and ledger — under a simulated clock that the guard is given. Every night
``rempart guard baselines`` learns the day, as it would in production. Near the end of the
month four attackers strike, each with stolen sessions of real accounts of the simulation:

- ``bulk``: one stolen session scraping a leaked list of cards as fast as it can;
- ``slow``: one stolen session staying under the quotas (50 patients an hour), from a French
  residential proxy with an ordinary browser's name, during opening hours;
- ``parallel``: eight stolen accounts of eight practices scraping at once from one hosting block;
- ``enumerator``: one stolen session walking member numbers one by one.

Each is assumed to hold the right birth date and rank for every member it tries (a leaked list:
the worst case); a wrong guess is a miss. The report gives, per attacker, the beneficiaries
exposed (an answer, open or closed, about a real member) before containment, and for the
legitimate accounts the freezes (false by definition), step-ups, throttles and alerts.

Legitimate people behave as people do: asked to step up, they sign in again and retry; billing
software honours Retry-After; a mistyped card is a miss. The volumes and hours are those of
``KINDS`` below; the guard knows none of them beyond its settings' priors.
"""

from __future__ import annotations

import csv
import heapq
import io
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from rempart.dates import PARIS
from rempart.db import transaction
from rempart.errors import RateLimited
from rempart.guard.baselines import update_baselines
from rempart.guard.detection import AccountFrozen, Guard, StepUpRequired, guard_for
from rempart.guard.models import Freeze, GuardAlert
from rempart.identity.auth import Client, Principal
from rempart.identity.clients import professional_id_of
from rempart.incidents import traffic
from rempart.incidents.traffic import (
    BROWSERS,
    CARRIER_BLOCKS,
    KINDS,
    MOBILE,
    SOFTWARE,
    Account,
    AttackerReport,
    Beneficiary,
    Practice,
    Request,
    epoch,
)
from rempart.ledger.recorder import LedgerRecorder
from rempart.platform import Platform, initialise
from rempart.registry import services
from rempart.registry.demo import PROFESSION_SHARE, TENANTS, demo_files, professional_rows
from rempart.registry.member_file import COLUMNS as MEMBER_COLUMNS
from rempart.registry.member_import import ImportOptions, import_members
from rempart.registry.professional_file import COLUMNS as PROFESSIONAL_COLUMNS
from rempart.rights.services import CardQuery, check_rights
from rempart.settings import Settings

GOAL_EXPOSED = 20  # SECURITY.md requirement 6: a stolen session stops within a few records


@dataclass(frozen=True)
class Options:
    days: int = 28
    professionals: int = 40
    seed: int = 1
    members: int = 5000
    database_url: str | None = None


@dataclass
class LegitimateReport:
    practices: int = 0
    accounts: int = 0
    checks: int = 0
    misses: int = 0
    false_freezes: int = 0
    step_ups: int = 0
    accounts_stepped_up: int = 0
    throttled: int = 0
    quota_refusals: int = 0
    alerts: int = 0
    accounts_alerted: int = 0
    by_profession: dict[str, int] = field(default_factory=dict)


@dataclass
class SimulationReport:
    options: Options
    legitimate: LegitimateReport
    attackers: list[AttackerReport]
    seconds: float
    goal_exposed: int = GOAL_EXPOSED

    @property
    def goals_met(self) -> bool:
        return self.legitimate.false_freezes == 0 and all(
            a.exposed_max_per_session <= self.goal_exposed for a in self.attackers
        )


class SimClock:
    """The simulation's time, which the guard reads."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


Progress = Callable[[int, int], None]


def simulate(options: Options, progress: Progress | None = None) -> SimulationReport:
    """Build the platform, play the month and the attacks, report."""
    started = time.perf_counter()
    with _platform(options) as platform:
        world = World(platform, options)
        report = world.run(progress or (lambda done, total: None))
    report.seconds = round(time.perf_counter() - started, 1)
    return report


@contextmanager
def _platform(options: Options) -> Iterator[Platform]:
    with tempfile.TemporaryDirectory(prefix="rempart-simulation-") as work:
        home = Path(work) / "home"
        settings = Settings(
            env="development",
            home=home,
            database_url=options.database_url or f"sqlite:///{home / 'simulation.sqlite3'}",
            redis_url=None,  # the guard's memory stores: they take the simulated clock
            argon2_time_cost=1,
            argon2_memory_kib=64,
        )
        platform, _ = initialise(settings)
        try:
            yield platform
        finally:
            platform.close()


class World:
    def __init__(self, platform: Platform, options: Options) -> None:
        self.platform, self.options = platform, options
        self.rng = random.Random(options.seed)  # noqa: S311  (a seeded, reproducible world)
        self.days, self.seed = options.days, options.seed
        self.first_day = datetime.now(PARIS).date() - timedelta(days=options.days)
        self.clock = SimClock(epoch(self.first_day, 0.0))
        self.guard: Guard = guard_for(platform.settings, self.clock)
        self.recorder = LedgerRecorder(platform.engine)
        self.people: list[Beneficiary] = []
        self.by_number: dict[tuple[str, str], int] = {}
        self.practices: list[Practice] = []
        self.legit = LegitimateReport()
        self.stepped_up: set[str] = set()
        self.frozen: set[str] = set()  # accounts (persons) frozen
        self.attacked: dict[str, float] = {}  # account -> when its attack began
        self.seq = 0
        self.queue: list[Request] = []

    # --- the world -----------------------------------------------------------------------------

    def _load(self) -> None:
        files = demo_files(self.options.members, self.options.seed)
        for amc, name in TENANTS:
            services.add_tenant(self.platform, amc, name)
            for plan in files.plans:
                services.load_plan(self.platform, amc, plan)
        for amc, data in files.members.items():
            spread = self._spread(amc, data)
            result = import_members(self.platform, amc, io.BytesIO(spread), ImportOptions())
            assert result.committed, result.errors
        rows = self._professional_rows()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(PROFESSIONAL_COLUMNS)
        writer.writerows(rows)
        services.import_professionals(self.platform, io.BytesIO(buffer.getvalue().encode()))
        for row in rows:
            self._practice(row[4], row[0])

    def _spread(self, amc: str, data: bytes) -> bytes:
        """Member numbers with gaps (closed contracts, numbering by region): a block of ten
        numbers holds one or two members, as in a large insurer's file."""
        reader = csv.reader(io.StringIO(data.decode()))
        header = next(reader)
        renumber: dict[str, str] = {}
        current = 0
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        number_at = MEMBER_COLUMNS.index("member_number")
        born_at, rank_at = MEMBER_COLUMNS.index("birth_date"), MEMBER_COLUMNS.index("birth_rank")
        for row in reader:
            old = row[number_at]
            if old not in renumber:
                current += self.rng.randint(1, 11)
                renumber[old] = f"{old[0]}{current:09d}"
            row[number_at] = renumber[old]
            writer.writerow(row)
            who = Beneficiary(
                amc, row[number_at], date.fromisoformat(row[born_at]), int(row[rank_at])
            )
            self.by_number.setdefault((amc, who.member_number), len(self.people))
            self.people.append(who)
        return out.getvalue().encode()

    def _professional_rows(self) -> list[list[str]]:
        total = sum(PROFESSION_SHARE.values())
        wanted = {
            p: max(1, round(self.options.professionals * share / total))
            for p, share in PROFESSION_SHARE.items()
        }
        per_share = max(1, -(-max(wanted.values()) // min(PROFESSION_SHARE.values())))
        rows, taken = [], Counter[str]()
        for row in professional_rows(per_share, self.options.seed):
            if taken[row[4]] < wanted[row[4]]:
                taken[row[4]] += 1
                rows.append(row)
        return rows

    def _practice(self, profession: str, am_number: str) -> None:
        kind = KINDS[profession]
        pool = self.rng.sample(range(len(self.people)), min(kind.pool, len(self.people)))
        practice = Practice(
            profession, kind, am_number, professional_id_of(self.platform, am_number), pool
        )
        line = f"{self.rng.randint(80, 93)}.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}"
        for _ in range(kind.persons):
            template = MOBILE if kind.mobile else self.rng.choice(BROWSERS)
            actor = f"user:{uuid.UUID(int=self.rng.getrandbits(128))}"
            practice.people.append(Account(actor, actor, practice, template, line))
        if kind.software:
            registrant = practice.people[0].actor
            actor = f"client:{uuid.UUID(int=self.rng.getrandbits(128))}"
            ua = SOFTWARE.replace("{kind}", profession.capitalize())
            practice.software = Account(actor, registrant, practice, ua, line, software=True)
        self.practices.append(practice)
        self.legit.practices += 1
        self.legit.accounts += len(practice.people) + (practice.software is not None)

    # --- legitimate traffic ----------------------------------------------------------------------

    def _day_of_checks(self, day: date) -> None:
        weekday = day.weekday()
        for practice in self.practices:
            kind = practice.kind
            if weekday not in kind.days:
                continue
            low, high = kind.daily
            busy = 1.25 if weekday == 0 else (0.6 if weekday >= 5 else 1.0)
            if self.rng.random() < 0.03:  # an epidemic day, a colleague away
                busy *= 1.4
            count = min(len(practice.pool), round(self.rng.randint(low, high) * busy))
            for patient in self.rng.sample(practice.pool, count):
                at = epoch(day, self.rng.uniform(*kind.hours))
                account = self._who(practice)
                wrong = self.rng.random() < 0.02
                self.push(at, account, patient, wrong=wrong)
                if self.rng.random() < 0.1:  # checked again a little later
                    self.push(at + self.rng.uniform(60, 1800), account, patient)

    def _who(self, practice: Practice) -> Account:
        if practice.software is not None and self.rng.random() < practice.kind.software:
            return practice.software
        return self.rng.choice(practice.people)

    def _morning(self, day: date) -> None:
        """Each person signs in in the morning; some days from elsewhere or another device."""
        version = 120 + (day - self.first_day).days // 7  # browsers update every week or so
        for practice in self.practices:
            for person in practice.people:
                person.authenticated_at = epoch(day, practice.kind.hours[0] - 0.25)
                if practice.kind.mobile:
                    person.network = self.rng.choice(CARRIER_BLOCKS)
                person.version = version
                person.elsewhere = self.rng.random() < 0.03
                person.other_device = self.rng.random() < 0.02
            if practice.software is not None:
                practice.software.version = version // 4  # software updates less often

    def push(
        self,
        at: float,
        account: Account,
        patient: int,
        *,
        wrong: bool = False,
        attacker: traffic.Attacker | None = None,
        guess: str | None = None,
    ) -> None:
        self.seq += 1
        request = Request(at, self.seq, account, patient, wrong, attacker, guess)
        heapq.heappush(self.queue, request)

    # --- the run ---------------------------------------------------------------------------

    def run(self, progress: Progress) -> SimulationReport:
        self._load()
        attackers = traffic.attackers(self)
        total = self.options.days
        for offset in range(total):
            day = self.first_day + timedelta(days=offset)
            self.clock.now = epoch(day, 0.0)
            if offset:
                update_baselines(
                    self.platform,
                    day - timedelta(days=1),
                    datetime.fromtimestamp(self.clock.now, UTC),
                )
                self.guard.detection.forget_baselines()
            self._morning(day)
            self._day_of_checks(day)
            for attacker in attackers:
                if attacker.day == offset:
                    attacker.start(self, day)
            end = epoch(day + timedelta(days=1), 0.0)
            while self.queue and self.queue[0].at < end:
                self._serve(heapq.heappop(self.queue))
            self.queue = [r for r in self.queue if r.attacker is None]  # attacks end with the day
            heapq.heapify(self.queue)
            progress(offset + 1, total)
        return self._report(attackers)

    def _serve(self, request: Request) -> None:
        account = request.account
        self.clock.now = request.at
        if account.account in self.frozen:
            if request.attacker is not None:
                request.attacker.stopped(self, request)
            return
        if account.software and account.paused_until > request.at:
            people = [p for p in account.practice.people if p.account not in self.frozen]
            if not people:
                return
            account = self.rng.choice(people)  # the counter checks through a person instead
        attacker = request.attacker
        query, real = self._query(request, account)
        client = attacker.client if attacker is not None else self._client(account)
        principal = self._principal(account)
        try:
            check_rights(self.platform, self.recorder, self.guard, principal, query, client)
        except StepUpRequired:
            if attacker is not None:
                attacker.refused(self, request, "step-up")
                return
            self.legit.step_ups += 1
            self.stepped_up.add(account.actor)
            account.authenticated_at = request.at  # the person signs in again, then retries
            self.push(request.at + 30, account, request.patient, wrong=request.wrong)
            return
        except AccountFrozen:
            self.frozen.add(account.account)  # false or not: the report reads the freezes
            if attacker is not None:
                attacker.frozen(self, request)
            return
        except RateLimited as limited:
            if attacker is not None:
                attacker.refused(self, request, "throttled")
                return
            if account.software:
                self.legit.throttled += 1
                account.paused_until = request.at + limited.retry_after
            else:
                self.legit.quota_refusals += 1
            return
        if attacker is not None:
            attacker.answered(self, request, real)
        else:
            self.legit.checks += 1
            self.legit.misses += request.wrong
            self.legit.by_profession[account.practice.profession] = (
                self.legit.by_profession.get(account.practice.profession, 0) + 1
            )

    def _query(self, request: Request, account: Account) -> tuple[CardQuery, int | None]:
        """The card sent, and the beneficiary it names when it names one (else None)."""
        domain = account.practice.kind.domain
        care_date = datetime.fromtimestamp(request.at, PARIS).date()
        if request.guess is not None:  # an enumerator's guess
            amc, number = request.guess.split(":")
            found = self.by_number.get((amc, number))
            if found is not None:
                who = self.people[found]
                return CardQuery(amc, number, who.birth_date, who.rank, domain, care_date), found
            born = date(1950, 1, 1) + timedelta(days=self.rng.randint(0, 20000))
            return CardQuery(amc, number, born, 1, domain, care_date), None
        who = self.people[request.patient]
        born = who.birth_date + timedelta(days=1) if request.wrong else who.birth_date
        query = CardQuery(who.amc, who.member_number, born, who.rank, domain, care_date)
        return query, None if request.wrong else request.patient

    def _client(self, account: Account) -> Client:
        """Where a legitimate account works from today, and with what."""
        template = account.user_agent
        if account.other_device and template in BROWSERS:
            template = BROWSERS[(BROWSERS.index(template) + 1) % len(BROWSERS)]
        network = account.network
        if account.elsewhere:  # a home line, a replacement's practice: a network never seen
            network = f"{self.rng.randint(30, 79)}.{self.rng.randint(0, 255)}.{self.seq % 256}"
        return Client(
            ip=f"{network}.{1 + self.seq % 250}",
            user_agent=template.replace("{v}", str(account.version)),
        )

    def _principal(self, account: Account) -> Principal:
        practice = account.practice
        fresh = None if account.software else datetime.fromtimestamp(account.authenticated_at, UTC)
        return Principal(
            account.actor,
            "professional",
            uuid.uuid4(),
            None,
            practice.professional_id,
            practice.am_number,
            practice.profession,
            account=account.account,
            authenticated_at=fresh,
        )

    # --- the report ------------------------------------------------------------------------

    def _report(self, attackers: list[traffic.Attacker]) -> SimulationReport:
        with transaction(self.platform.sessions) as session:
            freezes = list(session.scalars(select(Freeze).where(Freeze.kind == "account")))
            alerts = list(session.scalars(select(GuardAlert).order_by(GuardAlert.at)))
        reasons = {f.target: f.reason for f in freezes}
        for attacker in attackers:
            targets = {uuid.UUID(a.account[5:]).hex for a in attacker.sessions}
            attacker.report.contained_by = sorted(
                {_signals_of(reasons[t]) for t in targets if t in reasons}
            )
            actors = {a.actor for a in attacker.sessions}
            first = next(
                (a for a in alerts if a.actor in actors and a.at.timestamp() >= attacker.began),
                None,
            )
            if first is not None:
                attacker.report.detected_by = f"{first.signals} ({first.response})"
        began = {uuid.UUID(a[5:]).hex: at for a, at in self.attacked.items()}
        self.legit.false_freezes = sum(
            1
            for f in freezes
            if f.target not in began or f.created_at.timestamp() < began[f.target]
        )
        legit_alerts = [
            a
            for a in alerts
            if a.actor not in self.attacked or a.at.timestamp() < self.attacked[a.actor]
        ]
        self.legit.alerts = len(legit_alerts)
        self.legit.accounts_alerted = len({a.actor for a in legit_alerts})
        self.legit.accounts_stepped_up = len(self.stepped_up)
        return SimulationReport(self.options, self.legit, [a.report for a in attackers], 0.0)


def _signals_of(reason: str) -> str:
    """The signals a freeze's reason names ("guard: persistence 10 > 9; ..." -> "persistence")."""
    body = reason.removeprefix("guard: ").split(" (")[0]
    return ", ".join(part.split(" ")[0] for part in body.split("; "))
