"""The adjudication engine: invoice lines to the AMC's share, line by line (DOMAIN.md, "Plans").

Pure: the plan versions, the beneficiary's state and every date are parameters; nothing is read,
written or timed. Money is integer cents in and out; percentages are computed in ``Decimal`` and
each line's amount is rounded half-up to the cent (rule 6).

``adjudicate`` makes two passes. The first decides, line by line, whether a line is paid at all and
stops at the first reject code, in this order:

1. ``INVALID_LINE``: a line wrong in itself (quantity < 1, negative money, AMO paid above billed,
   unknown domain, ``FJ`` outside ``HOSP``, an optics line without its item type...), then a domain
   that the professional's profession does not bill.
2. ``UNKNOWN_BENEFICIARY``, ``ENGAGEMENT_INVALID`` (decided by the service, given in the context).
3. ``RIGHTS_CLOSED``: no rights period on the care date or the domain suspended; not raised under a
   valid engagement (the payment guarantee), which values the line under the last period begun.
4. ``DOMAIN_NOT_COVERED``: no plan version in force on the care date, or no guarantee for the
   domain.
5. ``NOT_COVERED``: ``PF`` and ``FR`` lines (rule 4).
6. ``PRICE_ABOVE_LIMIT``: a 100 % Santé line billed above its price limit (rule 3).
7. ``NOT_COVERED``: an AMO rate the guarantee excludes; an ``FJ`` line without ``daily_fee``; a line
   no component of the guarantee applies to. 100 % Santé lines skip this step (rule 3).
8. ``RENEWAL_TOO_SOON``: see ``renewal_key``; skipped for a line under a prior agreement, which
   reserved its renewal when it was granted.
9. ``PRIOR_AGREEMENT_REQUIRED`` (or ``PRIOR_AGREEMENT_INVALID`` when the service found the quoted
   one invalid).

The second pass values the lines left, in the order given, so that shared caps are consumed in
line order (rule 5) and a rejected line never consumes one:

components (they add up; an ``amount`` per equipment tops up the others with what the invoice's
lines of the domain have left of it) → billed − AMO (rule 1) → ``frame_cap`` → ``cap_incl_amo``
per item → agreed amount → ``cap_incl_amo`` per equipment (the AMO of its lines set aside first)
→ ``ceiling`` (partial acceptance, ``CEILING_REACHED``). A 100 % Santé line is paid billed − AMO,
capped only by its agreed amount, and counts against no cap or ceiling.

Left to the service: ``PROFESSIONAL_NOT_CONTRACTED`` and ``DUPLICATE`` (they need stored state).
Identical lines within one invoice are legitimate (two identical lenses) and are not duplicates.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import TypeAlias

from rempart.claims.money import euros, percent_of, round_cents
from rempart.registry.plan_format import (
    DOMAINS,
    MAX_MONEY_CENTS,
    PROFESSION_DOMAINS,
    Ceiling,
    Guarantee,
    Plan,
)
from rempart.registry.rights import Period, period_on


class Reject(StrEnum):
    """The reject codes of DOMAIN.md, exactly."""

    UNKNOWN_BENEFICIARY = "UNKNOWN_BENEFICIARY"
    RIGHTS_CLOSED = "RIGHTS_CLOSED"
    DOMAIN_NOT_COVERED = "DOMAIN_NOT_COVERED"
    NOT_COVERED = "NOT_COVERED"
    PRIOR_AGREEMENT_REQUIRED = "PRIOR_AGREEMENT_REQUIRED"
    PRIOR_AGREEMENT_INVALID = "PRIOR_AGREEMENT_INVALID"
    CEILING_REACHED = "CEILING_REACHED"
    RENEWAL_TOO_SOON = "RENEWAL_TOO_SOON"
    DUPLICATE = "DUPLICATE"
    PRICE_ABOVE_LIMIT = "PRICE_ABOVE_LIMIT"
    PROFESSIONAL_NOT_CONTRACTED = "PROFESSIONAL_NOT_CONTRACTED"
    ENGAGEMENT_INVALID = "ENGAGEMENT_INVALID"
    INVALID_LINE = "INVALID_LINE"


PARTIAL_CODES = frozenset({Reject.CEILING_REACHED})  # the line keeps the amount it got
NEVER_COVERED_ACTS = frozenset({"PF", "FR"})  # rule 4
FORFAIT_JOURNALIER = "FJ"
HUNDRED_PERCENT_SANTE = "100PS"
# The 100 % Santé reform covers glasses, hearing aids and dental prostheses only: a 100PS flag
# elsewhere would pay billed − AMO past the plan's exclusions.
HUNDRED_PERCENT_SANTE_DOMAINS = frozenset({"OPTI", "AUDI", "DEPR"})
FRAME = "frame"
MAX_QUANTITY = 9999
# Upper case only: a lower-case "pf" must not slip past rule 4.
_ACT_CODE = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,19}")
_ITEM_TYPE = re.compile(r"[a-z][a-z0-9_]{0,29}")
_BASKET = re.compile(r"[A-Z0-9][A-Z0-9_]{0,19}")

# Per domain, the (care date, AMC cents) of every accepted line counted by ceilings.
Bookings: TypeAlias = Mapping[str, tuple[tuple[date, int], ...]]


@dataclass(frozen=True)
class Line:
    """One invoice line; ``billed`` and ``br`` are the line's totals, in cents."""

    act_code: str
    domain: str
    care_date: date
    quantity: int
    billed: int
    br: int
    amo_rate: int
    amo_paid: int | None = None
    optam: bool | None = None
    basket: str | None = None
    price_limit: int | None = None
    item_type: str | None = None

    @property
    def amo(self) -> int:
        """What the AMO pays: ``amo_paid`` when given, else the BR at the AMO rate, half-up."""
        if self.amo_paid is not None:
            return self.amo_paid
        return round_cents(percent_of(self.amo_rate, self.br))


@dataclass(frozen=True)
class Beneficiary:
    """What the engine needs of a beneficiary: age, rights and counters booked so far."""

    birth_date: date
    periods: tuple[Period, ...]
    bookings: Bookings = field(default_factory=dict)
    # renewal_key -> care date of the last accepted equipment or item (or reserved by a PEC).
    last_renewal: Mapping[str, date] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Everything but the lines: who, who bills, which plan versions, what the service checked."""

    beneficiary: Beneficiary | None  # None: UNKNOWN_BENEFICIARY on every line
    profession: str
    plan_for: Callable[[str, date], Plan | None]  # plan code, care date -> version in force
    engagement_valid: bool = False  # the service verified the engagement for these lines
    engagement_invalid: bool = False  # the invoice quotes an engagement that does not verify
    prior_agreement: Mapping[int, int] | None = None  # line index -> agreed AMC cents
    prior_agreement_invalid: bool = False  # the quoted prior agreement is unknown, expired...
    for_prior_agreement: bool = False  # valuing a PEC quote: no agreement is required yet


@dataclass(frozen=True)
class LineResult:
    """What the AMC pays on a line; ``amo_amount`` is 0 on an INVALID_LINE (it may not be sane)."""

    amc_amount: int
    amo_amount: int
    reject_codes: tuple[str, ...]
    explanation: str

    @property
    def rejected(self) -> bool:
        """True when a code refuses the line; CEILING_REACHED keeps the partial amount."""
        return any(code not in PARTIAL_CODES for code in self.reject_codes)


@dataclass(frozen=True)
class Adjudication:
    lines: tuple[LineResult, ...]
    total_amc: int
    bookings: Bookings  # to add to the beneficiary's
    renewals: Mapping[str, date]  # renewal_key -> care date, to record


def adjudicate(lines: Sequence[Line], context: Context) -> Adjudication:
    """Each line's AMC amount or reject codes, the counters it books and the renewals it uses."""
    if context.profession not in PROFESSION_DOMAINS:
        raise ValueError(f"unknown profession {context.profession!r}")
    fittings: dict[str, date] = {}
    gated = [_gate(index, line, context, fittings) for index, line in enumerate(lines)]
    eligible = [item for item in gated if isinstance(item, _Eligible)]
    booked = context.beneficiary.bookings if context.beneficiary else {}
    invoice = _Invoice(booked, eligible)
    results = tuple(invoice.value(item) if isinstance(item, _Eligible) else item for item in gated)
    renewals: dict[str, date] = {}
    for item in eligible:
        if item.renewal_key is not None:
            known = renewals.get(item.renewal_key, item.line.care_date)
            renewals[item.renewal_key] = max(known, item.line.care_date)
    return Adjudication(
        lines=results,
        total_amc=sum(result.amc_amount for result in results),
        bookings={domain: tuple(events) for domain, events in invoice.new_bookings.items()},
        renewals=renewals,
    )


def non_optam_percent(percent: int) -> int:
    """Rule 2: the br_total_pct applied to a non-OPTAM doctor's line."""
    return max(100, min(percent - 20, 200)) if percent > 100 else percent


def renewal_key(domain: str, guarantee: Guarantee, item_type: str | None) -> str:
    """The counter a line renews: the domain, or ``"AUDI:hearing_aid_left"`` per item type.

    A guarantee ``per`` item counts each item type apart (left and right hearing aids renew
    independently when the invoices say which); anything else counts one equipment per domain,
    so that a frame and its lenses are one. Lines of one invoice on the same care date are one
    fitting: two hearing aids of the same item type on one invoice are both accepted.
    """
    if guarantee.per == "item" and item_type is not None:
        return f"{domain}:{item_type}"
    return domain


def renewal_months(guarantee: Guarantee, birth_date: date, day: date) -> int | None:
    """The renewal period in months for a care ``day``, by age on that day; None: no renewal."""
    if guarantee.renewal_months_under_16 is not None and age_on(birth_date, day) < 16:
        return guarantee.renewal_months_under_16
    return guarantee.renewal_months


def ceiling_left(ceiling: Ceiling, day: date, booked: Iterable[tuple[date, int]]) -> int:
    """What is left of ``ceiling`` for an amount on ``day``, given the (date, cents) booked.

    ``calendar_year`` counts the amounts booked in the year of ``day``. ``rolling_12_months``
    counts an amount booked on d in every window (E − 12 months, E] with d ≤ E: the new amount
    must fit in each window that will hold it, those holding amounts booked after ``day`` too (an
    invoice sent late must not push a later window past the ceiling).
    """
    events = list(booked)
    if ceiling.period == "calendar_year":
        used = sum(cents for when, cents in events if when.year == day.year)
    else:
        horizon = add_months(day, 12)
        ends = {day} | {when for when, _ in events if day < when < horizon}
        used = max(
            sum(cents for when, cents in events if when <= end < add_months(when, 12))
            for end in ends
        )
    return max(0, ceiling.amount_cents - used)


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months``, on the last day of the month when it is shorter (Feb 29 -> 28)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def age_on(birth_date: date, day: date) -> int:
    """Age in whole years on ``day``."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


# --- first pass: is the line paid at all ---------------------------------------------------------


@dataclass(frozen=True)
class _Eligible:
    line: Line
    amo: int
    plan: Plan
    guarantee: Guarantee
    agreed: int | None
    renewal_key: str | None

    @property
    def hundred_percent_sante(self) -> bool:
        return self.line.basket == HUNDRED_PERCENT_SANTE

    @property
    def equipment(self) -> tuple[str, str, date]:
        # Lines valued under different plan versions (rule 6) cannot share one amount.
        return (self.line.domain, self.plan.code, self.plan.valid_from)


def _reject(code: Reject, amo: int, reason: str) -> LineResult:
    return LineResult(0, amo, (code,), f"{code}: {reason}.")


def _gate(
    index: int, line: Line, context: Context, fittings: dict[str, date]
) -> _Eligible | LineResult:
    problem = _line_problem(line)
    if problem is not None:
        return _reject(Reject.INVALID_LINE, 0, problem)
    amo, domain, day = line.amo, line.domain, line.care_date
    if domain not in PROFESSION_DOMAINS[context.profession]:
        return _reject(Reject.INVALID_LINE, amo, f"a {context.profession} does not bill {domain}")
    beneficiary = context.beneficiary
    if beneficiary is None:
        return _reject(Reject.UNKNOWN_BENEFICIARY, amo, "no such beneficiary")
    if context.engagement_invalid:
        return _reject(Reject.ENGAGEMENT_INVALID, amo, "the engagement number does not verify")
    period = _rights_period(beneficiary.periods, line, context.engagement_valid)
    if period is None:
        return _reject(Reject.RIGHTS_CLOSED, amo, f"no rights open for {domain} on {day}")
    plan = context.plan_for(period.plan_code, day)
    if plan is None:
        reason = f"no version of plan {period.plan_code} is in force on {day}"
        return _reject(Reject.DOMAIN_NOT_COVERED, amo, reason)
    if plan.code != period.plan_code or not _in_force(plan, day):
        raise ValueError(f"plan_for gave a version of {plan.code} not in force on {day}")
    guarantee = plan.guarantee(domain)
    if guarantee is None:
        return _reject(Reject.DOMAIN_NOT_COVERED, amo, f"plan {plan.code} does not cover {domain}")
    refusal = _coverage_refusal(line, guarantee)
    if refusal is not None:
        return _reject(refusal[0], amo, refusal[1])
    agreed = (context.prior_agreement or {}).get(index)
    if agreed is not None and agreed < 0:
        raise ValueError("an agreed amount is never negative")
    key = None
    months = renewal_months(guarantee, beneficiary.birth_date, day)
    if months is not None:
        key = renewal_key(domain, guarantee, line.item_type)
        if agreed is None and _too_soon(key, day, months, fittings, beneficiary.last_renewal):
            reason = f"one {domain} equipment or item per {months} months"
            return _reject(Reject.RENEWAL_TOO_SOON, amo, reason)
    if guarantee.prior_agreement and agreed is None and not context.for_prior_agreement:
        if context.prior_agreement_invalid:
            reason = "the prior agreement quoted is unknown, expired, cancelled or exceeded"
            return _reject(Reject.PRIOR_AGREEMENT_INVALID, amo, reason)
        return _reject(Reject.PRIOR_AGREEMENT_REQUIRED, amo, f"{domain} needs a prior agreement")
    if key is not None:
        fittings.setdefault(key, day)
    return _Eligible(line, amo, plan, guarantee, agreed, key)


def _line_problem(line: Line) -> str | None:
    if line.domain not in DOMAINS:
        return "unknown care domain"
    if not _ACT_CODE.fullmatch(line.act_code):
        return "an act code is 1 to 20 characters among A-Z, 0-9, '.', '_' and '-'"
    if not 1 <= line.quantity <= MAX_QUANTITY:
        return f"quantity must be between 1 and {MAX_QUANTITY}"
    amounts = {
        "billed": line.billed,
        "br": line.br,
        "amo_paid": line.amo_paid,
        "price_limit": line.price_limit,
    }
    for name, value in amounts.items():
        if value is not None and not 0 <= value <= MAX_MONEY_CENTS:
            return f"{name} must be between 0.00 and {euros(MAX_MONEY_CENTS)}"
    if not 0 <= line.amo_rate <= 100:
        return "amo_rate must be between 0 and 100"
    if line.amo > line.billed:
        return "the AMO pays more than is billed"
    if line.act_code == FORFAIT_JOURNALIER and line.domain != "HOSP":
        return "FJ, the forfait journalier, is billed in HOSP"
    if line.item_type is not None and not _ITEM_TYPE.fullmatch(line.item_type):
        return "an item_type is 1 to 30 characters among a-z, 0-9 and _"
    if line.domain == "OPTI" and line.item_type is None:
        return "an optics line gives its item_type (frame, lens...)"
    if line.basket is not None and not _BASKET.fullmatch(line.basket):
        return "a basket is 1 to 20 characters among A-Z, 0-9 and _"
    if line.basket == HUNDRED_PERCENT_SANTE:
        if line.domain not in HUNDRED_PERCENT_SANTE_DOMAINS:
            return f"100% Santé applies to {', '.join(sorted(HUNDRED_PERCENT_SANTE_DOMAINS))}"
        if line.price_limit is None:
            return "a 100% Santé line gives its price_limit"
    return None


def _rights_period(periods: Sequence[Period], line: Line, engaged: bool) -> Period | None:
    period = period_on(periods, line.care_date)
    if period is not None and line.domain not in period.suspended_domains:
        return period
    if not engaged:
        return None
    # Rights closed (or the domain suspended) after the engagement was issued: the guarantee
    # holds, under the period that was open when it was issued, the last one begun by then.
    begun = [p for p in periods if p.start_date <= line.care_date]
    return max(begun, key=lambda p: p.start_date, default=None)


def _in_force(plan: Plan, day: date) -> bool:
    return plan.valid_from <= day and (plan.valid_to is None or day <= plan.valid_to)


def _coverage_refusal(line: Line, guarantee: Guarantee) -> tuple[Reject, str] | None:
    if line.act_code in NEVER_COVERED_ACTS:
        return Reject.NOT_COVERED, f"{line.act_code} is never covered by the AMC"
    if line.basket == HUNDRED_PERCENT_SANTE:
        assert line.price_limit is not None  # checked by _line_problem
        if line.billed > line.price_limit:
            limit = euros(line.price_limit)
            return Reject.PRICE_ABOVE_LIMIT, f"100% Santé line billed above its limit {limit}"
        return None  # rule 3: whatever the plan says
    if line.amo_rate in guarantee.exclude_amo_rates:
        return Reject.NOT_COVERED, f"lines reimbursed at {line.amo_rate}% are excluded"
    if line.act_code == FORFAIT_JOURNALIER:
        if not guarantee.daily_fee:
            return Reject.NOT_COVERED, "the plan does not cover the forfait journalier"
    elif not _has_component(guarantee):
        return Reject.NOT_COVERED, "the plan covers only the forfait journalier here"
    return None


def _has_component(guarantee: Guarantee) -> bool:
    percents = (guarantee.br_total_pct, guarantee.br_extra_pct, guarantee.actual_cost_pct)
    return guarantee.amount_cents is not None or any(p is not None for p in percents)


def _too_soon(
    key: str, day: date, months: int, fittings: Mapping[str, date], last: Mapping[str, date]
) -> bool:
    fitting = fittings.get(key)
    if fitting == day:
        return False  # the same fitting as an earlier line of this invoice
    for other in (fitting, last.get(key)):
        if other is not None:
            earlier, later = sorted((other, day))
            # Both ways: an invoice sent late for an older fitting is as much a second one.
            if later < add_months(earlier, months):
                return True
    return False


# --- second pass: how much, in line order --------------------------------------------------------


class _Invoice:
    """The caps shared by the lines of one invoice, consumed in line order (rule 5)."""

    def __init__(self, booked: Bookings, eligible: Sequence[_Eligible]) -> None:
        self.booked = {domain: list(events) for domain, events in booked.items()}
        self.new_bookings: dict[str, list[tuple[date, int]]] = {}
        self.equipment_left: dict[tuple[str, str, date], int] = {}
        self.incl_amo_left: dict[tuple[str, str, date], int] = {}
        for item in eligible:
            guarantee = item.guarantee
            if item.hundred_percent_sante or guarantee.per != "equipment":
                continue
            assert guarantee.amount_cents is not None  # per requires amount
            self.equipment_left.setdefault(item.equipment, guarantee.amount_cents)
            if guarantee.cap_incl_amo is not None:
                # AMC + AMO at most the cap for the equipment: the AMO of every line is paid
                # anyway, so it is set aside first and the AMC shares what is left.
                left = self.incl_amo_left.get(item.equipment, guarantee.cap_incl_amo)
                self.incl_amo_left[item.equipment] = left - item.amo

    def value(self, item: _Eligible) -> LineResult:
        line, guarantee, amo = item.line, item.guarantee, item.amo
        room = line.billed - amo
        if item.hundred_percent_sante:
            notes = [
                f"100% Santé: billed {euros(line.billed)} − AMO {euros(amo)} = {euros(room)}"
                ", whatever the plan says"
            ]
            amount = _cap(room, item.agreed, notes, "agreed amount ")
            return _accepted(line, amount, amo, (), notes)
        own_exact, notes = _components(line, guarantee, amo)
        own = round_cents(own_exact)
        amount = own
        if guarantee.per == "equipment":
            left = self.equipment_left[item.equipment]
            amount += left
            notes.append(
                f"amount {euros(guarantee.amount_cents or 0)} per equipment: {euros(left)} left"
            )
        amount = _cap(amount, room, notes, "at most billed − AMO = ")
        if guarantee.frame_cap is not None and line.item_type == FRAME:
            amount = _cap(amount, guarantee.frame_cap, notes, "frame_cap ")
        if guarantee.cap_incl_amo is not None and guarantee.per != "equipment":
            cap = max(0, guarantee.cap_incl_amo - amo)
            label = f"cap_incl_amo {euros(guarantee.cap_incl_amo)} − AMO {euros(amo)} = "
            amount = _cap(amount, cap, notes, label)
        amount = _cap(amount, item.agreed, notes, "agreed amount ")
        if item.equipment in self.incl_amo_left:
            left = max(0, self.incl_amo_left[item.equipment])
            label = f"cap_incl_amo {euros(guarantee.cap_incl_amo or 0)} per equipment: "
            amount = _cap(amount, left, notes, label, " left after its AMO and earlier lines")
        codes: tuple[str, ...] = ()
        if guarantee.ceiling is not None:
            ceiling = guarantee.ceiling
            left = ceiling_left(ceiling, line.care_date, self.booked.get(line.domain, ()))
            if amount > left:
                codes = (Reject.CEILING_REACHED,)
                label = f"ceiling {euros(ceiling.amount_cents)} per {ceiling.period}: "
                amount = _cap(amount, left, notes, label, " left")
        self._consume(item, own, amount)
        return _accepted(line, amount, amo, codes, notes)

    def _consume(self, item: _Eligible, own: int, amount: int) -> None:
        if item.equipment in self.equipment_left:
            # The equipment amount tops up the other components: it gave what they did not.
            self.equipment_left[item.equipment] -= max(0, amount - own)
        if item.equipment in self.incl_amo_left:
            self.incl_amo_left[item.equipment] -= amount
        if amount > 0:
            event = (item.line.care_date, amount)
            self.booked.setdefault(item.line.domain, []).append(event)
            self.new_bookings.setdefault(item.line.domain, []).append(event)


def _components(line: Line, guarantee: Guarantee, amo: int) -> tuple[Decimal, list[str]]:
    """The guarantee's components for the line, added up, exactly (not yet rounded)."""
    billed, br = Decimal(line.billed), line.br
    if line.act_code == FORFAIT_JOURNALIER:  # only daily_fee lets an FJ line through
        full = billed - amo
        note = f"daily_fee: FJ in full, {euros(line.billed)} − AMO {euros(amo)} = {euros(full)}"
        return full, [note]
    parts: list[tuple[Decimal, str]] = []
    if guarantee.br_total_pct is not None:
        percent, label = guarantee.br_total_pct, f"br_total_pct {guarantee.br_total_pct}"
        if line.domain == "MED" and line.optam is False and percent > 100:
            percent = non_optam_percent(percent)
            label += f", {percent} for a non-OPTAM doctor"
        value = max(Decimal(0), min(billed, percent_of(percent, br)) - amo)
        formula = f"min({euros(line.billed)}, {percent}% × {euros(br)}) − {euros(amo)}"
        parts.append((value, f"{label}: {formula}"))
    if guarantee.br_extra_pct is not None:
        value = percent_of(guarantee.br_extra_pct, br)
        parts.append((value, f"br_extra_pct {guarantee.br_extra_pct}% × {euros(br)}"))
    if guarantee.amount_cents is not None and guarantee.per != "equipment":
        amount, per = guarantee.amount_cents, guarantee.per
        times = 1 if per == "item" else line.quantity  # per act and per day: × quantity
        parts.append((Decimal(amount * times), f"amount {euros(amount)} per {per} × {times}"))
    if guarantee.actual_cost_pct is not None:
        percent = guarantee.actual_cost_pct
        value = max(Decimal(0), percent_of(percent, line.billed) - amo)
        label = f"actual_cost_pct {percent}% × {euros(line.billed)} − {euros(amo)}"
        parts.append((value, label))
    return (
        sum((value for value, _ in parts), Decimal(0)),
        [f"{label} = {euros(value)}" for value, label in parts],
    )


def _cap(amount: int, cap: int | None, notes: list[str], before: str, after: str = "") -> int:
    """``amount`` capped at ``cap``, with a note saying so when the cap binds."""
    if cap is None or amount <= cap:
        return amount
    notes.append(f"{before}{euros(cap)}{after}")
    return cap


def _accepted(
    line: Line, amount: int, amo: int, codes: tuple[str, ...], notes: list[str]
) -> LineResult:
    # Rule 1, whatever happened above: never more than billed − AMO, never below 0.
    amount = min(max(amount, 0), line.billed - amo)
    explanation = f"{line.domain} " + "; ".join(notes) + f"; AMC {euros(amount)}."
    return LineResult(amount, amo, codes, explanation)
