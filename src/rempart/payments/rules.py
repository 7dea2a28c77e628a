"""The pure rules of payment runs: what a run pays, to whom, under which references.

No database, no clock, no I/O: the caller passes ``now`` and the rows it read. What is here:

- **Grouping** (``group``): the claimed invoices of a run, summed per professional (one credit
  transfer each) and per insurer (one settlement each), to the cent; a professional whose bank
  details cannot be used is held, with what it would have been paid.
- **Which account** (``choose_account``): the account a professional is paid to, given its
  bank-details changes: a change awaiting its out-of-band confirmation, or confirmed but still in
  its cooling-off period, holds the payments (SECURITY.md requirement 8).
- **SEPA text**: names and references cleaned to the EPC character set (EPC217-08, "SEPA
  Requirements for an Extended Character Set": the Latin set ``a-z A-Z 0-9 / - ? : ( ) . , ' +``
  and the space), references that never start or end with ``/`` nor hold ``//``.
- **References**: the end-to-end reference of each transfer and debit, and the message ids, made
  from the run's number, so that files rewritten after a crash are identical to the byte.
- **Dates**: the collection date of a direct debit, the next TARGET2 business day.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from rempart.dates import PARIS, paris_day

# EPC217-08 §1.4: the basic Latin character set every SEPA bank must accept.
SEPA_TEXT = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")
_SPACES = re.compile(r" {2,}")
# Letters that Unicode decomposition does not reduce to ASCII, as French names write them.
_LIGATURES = str.maketrans(
    {
        "œ": "oe",
        "Œ": "OE",
        "æ": "ae",
        "Æ": "AE",
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "&": "+",
        "’": "'",
        "‘": "'",
        "«": "'",
        "»": "'",
        "–": "-",
        "—": "-",
    }
)
NAME_LENGTH = 70  # Max70Text: names of parties
REMITTANCE_LENGTH = 140  # Max140Text: unstructured remittance information
REFERENCE_LENGTH = 35  # Max35Text: message, payment information, end-to-end and mandate ids

# Countries of the SEPA schemes (EPC409-09, list of countries of the SEPA schemes' scope).
# French overseas departments and territories use FR IBANs, but some have their own codes.
_COUNTRIES = "AD AT BE BG CH CY CZ DE DK EE ES FI FR GB GI GR HR HU IE IS IT LI LT LU LV MC MT"
_COUNTRIES += " NL NO PL PT RO SE SI SK SM VA GF GP MQ RE YT PM BL MF NC PF WF"
SEPA_COUNTRIES = frozenset(_COUNTRIES.split(" "))


def clean_text(value: str, limit: int = NAME_LENGTH) -> str:
    """``value`` in the SEPA character set: accents dropped, other characters spaced out,
    spaces collapsed, cut to ``limit``; never empty (an empty name is not valid SEPA)."""
    decomposed = unicodedata.normalize("NFKD", value.translate(_LIGATURES))
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    cleaned = _SPACES.sub(" ", SEPA_TEXT.sub(" ", ascii_only)).strip()[:limit].rstrip()
    return cleaned or "NOTPROVIDED"


def clean_reference(value: str, limit: int = REFERENCE_LENGTH) -> str:
    """A reference (an id banks match on): the SEPA set without spaces, no leading or trailing
    ``/`` and no ``//`` (EPC rules for identifiers)."""
    cleaned = SEPA_TEXT.sub("", value.translate(_LIGATURES)).replace(" ", "")
    while "//" in cleaned:
        cleaned = cleaned.replace("//", "/")
    cleaned = cleaned.strip("/")[:limit].rstrip("/")
    return cleaned or "NOTPROVIDED"


def is_sepa_text(value: str) -> bool:
    return SEPA_TEXT.search(value) is None


# --- references ---------------------------------------------------------------------------------

TRANSFERS, DEBITS = "T", "D"


def run_reference(number: int) -> str:
    """``RMP000012``: the run, as every file and reference of it names it."""
    return f"RMP{number:06d}"


def message_id(number: int, kind: str) -> str:
    """The GrpHdr/MsgId of a run's transfer (``T``) or debit (``D``) file; unique per run."""
    return f"{run_reference(number)}-{kind}"


def end_to_end_id(number: int, kind: str, party: str) -> str:
    """The reference that travels with the money to the payee's statement: the run, the kind and
    the party paid (the professional's billing number, the insurer's AMC number). At most 35
    characters; the payee's software matches it with the remittance advice."""
    return clean_reference(f"{run_reference(number)}-{kind}-{party}")


# --- dates --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """When a run stops taking invoices, and when its money moves."""

    run_date: date
    cutoff: datetime  # invoices submitted before this instant
    execution_date: date  # the transfers' requested execution date
    collection_date: date  # the debits' requested collection date


def period(run_date: date | None, now: datetime) -> Period:
    """The period of a run on ``run_date`` (Paris), opened at ``now``: invoices submitted before
    the end of that day, and never after ``now`` (a run is a closed period: what comes later
    goes to the next one). The transfers go out on the first business day from today; the
    debits are collected the business day after."""
    today = paris_day(now)
    day = run_date or today
    if day > today:
        raise ValueError("a run's date is today or before")
    end_of_day = datetime.combine(day + timedelta(days=1), time(0), PARIS)
    cutoff = min(end_of_day, now)
    execution = today if is_target_day(today) else next_business_day(today)
    return Period(day, cutoff, execution, next_business_day(execution))


def easter(year: int) -> date:
    """Easter Sunday (Gregorian calendar; the anonymous algorithm of Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def is_target_day(day: date) -> bool:
    """Whether TARGET2 (hence SEPA clearing) is open: not a weekend, New Year's Day, Good
    Friday, Easter Monday, 1 May, 25 or 26 December."""
    if day.weekday() >= 5:
        return False
    if (day.month, day.day) in {(1, 1), (5, 1), (12, 25), (12, 26)}:
        return False
    sunday = easter(day.year)
    return day not in (sunday - timedelta(days=2), sunday + timedelta(days=1))


def next_business_day(day: date) -> date:
    """The first TARGET2 business day after ``day``: a core direct debit is collected at the
    earliest one business day after it is sent (SEPA SDD Core rulebook, D-1)."""
    day += timedelta(days=1)
    while not is_target_day(day):
        day += timedelta(days=1)
    return day


# --- bank details: which account pays -------------------------------------------------------------

PENDING, CONFIRMED, CANCELLED = "pending", "confirmed", "cancelled"


@dataclass(frozen=True)
class BankChange:
    """A professional's request to be paid to another account, as the run sees it."""

    id: uuid.UUID
    status: str  # pending | confirmed | cancelled
    requested_at: datetime
    code_expires_at: datetime
    usable_from: datetime | None  # set at confirmation: confirmed_at + the cooling-off period


@dataclass(frozen=True)
class Pay:
    """Pay to this change's account, or (``change_id`` None) to the account of the convention."""

    change_id: uuid.UUID | None


@dataclass(frozen=True)
class Hold:
    """Do not pay now: why, and until when when it is known."""

    reason: str
    until: datetime | None = None


AWAITING_CONFIRMATION = "bank details change awaiting its out-of-band confirmation"
COOLING_OFF = "new bank details in their cooling-off period"


def open_change(changes: Iterable[BankChange], now: datetime) -> BankChange | None:
    """The change still under way: awaiting its code (not expired), or cooling off."""
    for change in changes:
        if change.status == PENDING and change.code_expires_at > now:
            return change
        if change.status == CONFIRMED and change.usable_from and change.usable_from > now:
            return change
    return None


def choose_account(changes: Sequence[BankChange], now: datetime) -> Pay | Hold:
    """Where a professional is paid at ``now``.

    A change under way holds the payments: the professional said its account is changing (it
    may be closing), and the new one is not trusted yet. Otherwise the newest confirmed change
    whose cooling-off has ended, else the account of the convention (the registry's).
    """
    current = open_change(changes, now)
    if current is not None:
        if current.status == PENDING:
            return Hold(AWAITING_CONFIRMATION, current.code_expires_at)
        return Hold(COOLING_OFF, current.usable_from)
    usable = [
        c
        for c in changes
        if c.status == CONFIRMED and c.usable_from is not None and c.usable_from <= now
    ]
    if not usable:
        return Pay(None)
    return Pay(max(usable, key=lambda c: (c.usable_from, c.requested_at)).id)


# --- grouping -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """An invoice a run may take: who billed it, which insurer owes it, what it pays."""

    invoice_id: uuid.UUID
    professional_id: uuid.UUID
    amc_number: str | None  # None only for an invoice whose card matched no insurer
    amount: int  # cents: the invoice's accepted total
    lines: int
    rejected: bool = False  # reported to the professional, owed by no one


@dataclass
class Total:
    """A count of invoices and lines, and their amount in cents."""

    invoices: int = 0
    lines: int = 0
    amount: int = 0

    def add(self, claim: Claim) -> None:
        self.invoices += 1
        self.lines += claim.lines
        self.amount += claim.amount


@dataclass
class Grouping:
    """A run's claims per professional paid, per insurer owing, and per professional held."""

    professionals: dict[uuid.UUID, Total] = field(default_factory=dict)
    insurers: dict[str, Total] = field(default_factory=dict)
    held: dict[uuid.UUID, Total] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)  # the claims the run takes

    @property
    def total(self) -> int:
        return sum(t.amount for t in self.professionals.values())


def group(claims: Iterable[Claim], held: Iterable[uuid.UUID] = ()) -> Grouping:
    """Sum claims per professional and per insurer (a rejected invoice is reported to its
    professional, and owed by no insurer); the held professionals' claims are set aside
    (counted apart, not taken). What a professional is paid and what the insurers are
    asked for add up to the same cents: every claim taken counts once on each side."""
    on_hold = set(held)
    grouping = Grouping()
    for claim in claims:
        if claim.amount < 0:
            raise ValueError("a claim never pays a negative amount")
        if claim.professional_id in on_hold:
            grouping.held.setdefault(claim.professional_id, Total()).add(claim)
            continue
        if claim.amount and (claim.amc_number is None or claim.rejected):
            raise ValueError("an invoice that pays something is accepted, and has an insurer")
        grouping.claims.append(claim)
        grouping.professionals.setdefault(claim.professional_id, Total()).add(claim)
        if claim.amc_number is not None and not claim.rejected:
            grouping.insurers.setdefault(claim.amc_number, Total()).add(claim)
    return grouping


# --- the operator's creditor identifier ---------------------------------------------------------

_CREDITOR_ID = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{3}[A-Z0-9]{1,28}")


def _mod97(text: str) -> int:
    return int("".join(str(int(c, 36)) for c in text)) % 97


def creditor_id_check(country: str, national_id: str) -> str:
    """The two check digits of a SEPA creditor identifier (EPC262-08: ISO 7064 mod 97-10 over
    the national identifier and the country, the business code left out)."""
    return f"{98 - _mod97(national_id + country + '00'):02d}"


def is_creditor_id(value: str) -> bool:
    """A SEPA creditor identifier: country, check digits, a business code, a national id."""
    if not _CREDITOR_ID.fullmatch(value) or len(value) > REFERENCE_LENGTH:
        return False
    return value[2:4] == creditor_id_check(value[:2], value[7:])
