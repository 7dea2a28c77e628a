"""What the simulator plays: practices of every kind and their accounts, and the attackers.

The legitimate side is described by ``KINDS`` (volumes, hours, who checks: people at a counter or
billing software, fixed or mobile networks); the guard is told none of it. The attackers hold
stolen sessions of real accounts of the simulation and behave as ``Attacker`` says.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from rempart.dates import PARIS
from rempart.identity.auth import Client

WEEK = frozenset(range(7))
WORKDAYS = frozenset(range(5))
SHOP = frozenset(range(6))  # Monday to Saturday


@dataclass(frozen=True)
class Kind:
    """How a profession's practice works: the guard is told none of this."""

    domain: str
    daily: tuple[int, int]  # different patients on a working day
    hours: tuple[float, float]  # opening hours, Paris
    days: frozenset[int]  # weekdays worked (0: Monday)
    pool: int  # its patients: the people it sees over a month and more
    persons: int  # people with an account
    software: float  # share of checks made by billing software
    mobile: bool = False  # works from mobile networks (home visits)


KINDS: dict[str, Kind] = {
    "pharmacist": Kind("PHAR", (110, 190), (8.5, 19.5), SHOP, 1500, 3, 0.6),
    "gp": Kind("MED", (18, 30), (8.0, 19.0), WORKDAYS, 1200, 1, 0.0),
    "specialist": Kind("MED", (12, 22), (9.0, 18.0), WORKDAYS, 2000, 1, 0.0),
    "dentist": Kind("DESO", (8, 16), (9.0, 19.0), WORKDAYS, 1000, 1, 0.0),
    "optician": Kind("OPTI", (2, 8), (9.5, 19.0), frozenset(range(1, 6)), 1500, 2, 0.0),
    "audiologist": Kind("AUDI", (1, 4), (9.0, 18.0), WORKDAYS, 800, 1, 0.0),
    "laboratory": Kind("LABO", (60, 110), (7.0, 13.0), SHOP, 3000, 2, 0.9),
    "nurse": Kind("AUXM", (12, 25), (6.5, 20.0), WEEK, 120, 1, 0.0, mobile=True),
    "physiotherapist": Kind("AUXM", (12, 20), (8.0, 20.0), WORKDAYS, 250, 1, 0.0, mobile=True),
    "hospital": Kind("HOSP", (40, 90), (0.0, 24.0), WEEK, 5000, 3, 0.9),
    "transport": Kind("TRAN", (6, 14), (6.0, 22.0), WEEK, 400, 2, 0.0, mobile=True),
}
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Safari/605.1.15",
)
MOBILE = "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) " + (
    "Chrome/{v}.0.0.0 Mobile Safari/537.36"
)
SOFTWARE = "LGO-{kind}/4.{v} (Windows; SESAM-Vitale 1.40)"
CARRIER_BLOCKS = ("92.184.96", "92.184.97", "92.184.104", "92.184.105")  # one mobile operator


@dataclass(frozen=True)
class Beneficiary:
    amc: str
    member_number: str
    birth_date: date
    rank: int


@dataclass
class Account:
    """A person's account or a practice's billing software, and where it works from."""

    actor: str
    account: str  # the person answerable (the software's registrant)
    practice: Practice
    user_agent: str
    network: str  # the /24 of the practice's line
    software: bool = False
    authenticated_at: float = 0.0  # when its second factor was last given (epoch)
    paused_until: float = 0.0  # software told to retry later
    version: int = 120  # its browser's version: updates change it, not the device
    elsewhere: bool = False  # today it works from another network (home, a replacement)
    other_device: bool = False  # today it uses another browser or computer


@dataclass
class Practice:
    profession: str
    kind: Kind
    am_number: str
    professional_id: uuid.UUID
    pool: list[int]
    people: list[Account] = field(default_factory=list)
    software: Account | None = None


@dataclass
class AttackerReport:
    name: str
    description: str
    accounts: int
    requests: int = 0
    answered: int = 0
    exposed: int = 0  # different real beneficiaries answered about, all its sessions together
    exposed_max_per_session: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # by response: step-up, throttled…
    contained: int = 0  # sessions stopped by a freeze
    contained_after_seconds: float | None = None  # the last one, from its first request
    detected_by: str = ""  # the first alert's signals and response
    contained_by: list[str] = field(default_factory=list)  # the signals the freezes name


@dataclass(order=True)
class Request:
    at: float
    seq: int
    account: Account = field(compare=False)
    patient: int = field(compare=False)  # index of a beneficiary, or -1: a guess that misses
    wrong: bool = field(compare=False, default=False)  # a mistyped card (a miss)
    attacker: Attacker | None = field(compare=False, default=None)
    guess: str | None = field(compare=False, default=None)  # an enumerator's member number


def epoch(day: date, hour: float) -> float:
    midnight = datetime(day.year, day.month, day.day, tzinfo=PARIS)
    return (midnight + timedelta(hours=hour)).timestamp()


class World(Protocol):
    """What an attacker sees of the simulation: the people it may try, the accounts it may
    steal, and the queue of requests."""

    rng: random.Random
    people: list[Beneficiary]
    practices: list[Practice]
    attacked: dict[str, float]  # account -> when its attack began
    days: int
    seed: int

    def push(
        self,
        at: float,
        account: Account,
        patient: int,
        *,
        wrong: bool = False,
        attacker: Attacker | None = None,
        guess: str | None = None,
    ) -> None: ...


# --- the attackers ------------------------------------------------------------------------------


class Attacker:
    """Stolen sessions of real accounts, one behaviour."""

    def __init__(
        self,
        name: str,
        description: str,
        sessions: list[Account],
        day: int,
        hour: float,
        interval: float,
        client: Client,
    ) -> None:
        self.sessions, self.day, self.hour, self.interval, self.client = (
            sessions,
            day,
            hour,
            interval,
            client,
        )
        self.report = AttackerReport(name, description, len(sessions))
        self.began: float = 0.0
        self.exposed: dict[str, set[int]] = {s.actor: set() for s in sessions}
        self.next_guess: dict[str, tuple[str, int]] = {}
        self.limit = 3000  # requests per session in a day, at most

    def start(self, world: World, day: date) -> None:
        self.began = epoch(day, self.hour)
        for i, victim in enumerate(self.sessions):
            # The intruder holds the victim's session, signed in hours ago: not fresh.
            stolen = Account(victim.actor, victim.account, victim.practice, "", "")
            stolen.authenticated_at = self.began - 3 * 3600
            world.attacked.setdefault(victim.account, self.began)
            self._next(world, stolen, self.began + i * 1.7)

    def _next(self, world: World, session: Account, at: float) -> None:
        """The next card from the leaked list, some of which are out of date (misses)."""
        if self.report.requests >= self.limit * len(self.sessions):
            return
        self.report.requests += 1
        stale = world.rng.random() < 0.1
        world.push(at, session, world.rng.randrange(len(world.people)), wrong=stale, attacker=self)

    def answered(self, world: World, request: Request, real: int | None) -> None:
        self.report.answered += 1
        if real is not None:
            self.exposed[request.account.actor].add(real)
            self._tally()
        self._next(world, request.account, request.at + self._pace(world))

    def refused(self, world: World, request: Request, how: str) -> None:
        self.report.refused[how] = self.report.refused.get(how, 0) + 1
        self._next(world, request.account, request.at + self._pace(world))

    def frozen(self, world: World, request: Request) -> None:
        self.report.refused["frozen"] = self.report.refused.get("frozen", 0) + 1
        self.report.contained += 1
        self.report.contained_after_seconds = round(request.at - self.began, 1)

    def stopped(self, world: World, request: Request) -> None:
        """Its account is frozen: the session is dead, the attack of this session ends."""

    def _pace(self, world: World) -> float:
        return self.interval * world.rng.uniform(0.8, 1.2)

    def _tally(self) -> None:
        sizes = [len(s) for s in self.exposed.values()]
        self.report.exposed = len(set().union(*self.exposed.values()))
        self.report.exposed_max_per_session = max(sizes)


class Enumerator(Attacker):
    def start(self, world: World, day: date) -> None:
        victim = self.sessions[0]
        seed = world.people[world.rng.randrange(len(world.people))]
        self.next_guess[victim.actor] = (seed.amc, int(seed.member_number[1:]))
        self.prefix = seed.member_number[0]
        super().start(world, day)

    def _next(self, world: World, session: Account, at: float) -> None:
        if self.report.requests >= self.limit:
            return
        amc, number = self.next_guess[session.actor]
        self.next_guess[session.actor] = (amc, number + 1)
        self.report.requests += 1
        guess = f"{amc}:{self.prefix}{number:09d}"
        world.push(at, session, -1, attacker=self, guess=guess)


def attackers(world: World) -> list[Attacker]:
    """The four attackers, on accounts with a history, near the end of the month."""
    rng = random.Random(world.seed + 7)  # noqa: S311  (reproducible choices)
    people = [p for practice in world.practices for p in practice.people]
    pharmacists = [p for p in people if p.practice.profession == "pharmacist"]
    last = world.days - 1
    first_attack_day = max(0, last - 2)
    chosen: set[str] = set()

    def pick(candidates: list[Account]) -> Account:
        left = [c for c in candidates if c.actor not in chosen] or people
        found = rng.choice(left)
        chosen.add(found.actor)
        return found

    bulk = Attacker(
        "bulk",
        "one stolen session scraping a leaked list of cards as fast as it can (1 request/s)",
        [pick(pharmacists)],
        first_attack_day,
        10.1,
        1.0,
        Client(ip="185.220.101.34", user_agent="python-requests/2.32.3"),
    )
    slow = Attacker(
        "slow",
        "one stolen session under the quotas (50 patients an hour) from a French residential "
        "proxy, with an ordinary browser's name, during opening hours",
        [pick(pharmacists)],
        first_attack_day + 1,
        9.2,
        72.0,
        Client(ip="90.12.200.17", user_agent=BROWSERS[1].replace("{v}", "131")),
    )
    practices = rng.sample(world.practices, min(8, len(world.practices)))
    parallel = Attacker(
        "parallel",
        "eight stolen accounts of eight practices scraping at once from one hosting block "
        "(one request every 20 s each)",
        [pick(p.people) for p in practices],
        first_attack_day + 1,
        14.0,
        20.0,
        Client(ip="45.83.64.21", user_agent="python-httpx/0.28.1"),
    )
    enumerator = Enumerator(
        "enumerator",
        "one stolen session walking member numbers one by one from a real card (one every 5 s)",
        [pick(people)],
        min(last, first_attack_day + 2),
        11.3,
        5.0,
        Client(ip="51.158.22.9", user_agent="curl/8.5.0"),
    )
    return [bulk, slow, parallel, enumerator]
