"""The plan file an AMC loads (DOMAIN.md, "Plans"), parsed into frozen models.

Models are always built from the file format: money is a decimal string in euros (``"300.00"``),
held as integer cents (``amount_cents``, ``frame_cap``, ``cap_incl_amo``); percentages and months
are JSON integers. ``parse_plan`` is the entry point: it reports every problem of a file at once,
each located by its JSON path (``guarantees.OPTI.amount``), and never echoes an input value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self, TypeAlias, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from rempart.errors import InvalidDocument, Problem

DOMAINS: frozenset[str] = frozenset(
    {"PHAR", "MED", "LABO", "RADL", "AUXM", "DESO", "DEPR", "DEOR", "OPTI", "AUDI", "HOSP", "TRAN"}
)

# Who may check rights and bill each domain (DOMAIN.md, "Care domains").
PROFESSION_DOMAINS: dict[str, frozenset[str]] = {
    "pharmacist": frozenset({"PHAR"}),
    "gp": frozenset({"MED"}),
    "specialist": frozenset({"MED", "RADL"}),
    "dentist": frozenset({"DESO", "DEPR", "DEOR"}),
    "optician": frozenset({"OPTI"}),
    "audiologist": frozenset({"AUDI"}),
    "laboratory": frozenset({"LABO"}),
    "nurse": frozenset({"AUXM"}),
    "physiotherapist": frozenset({"AUXM"}),
    "hospital": frozenset({"MED", "LABO", "RADL", "DESO", "DEPR", "DEOR", "HOSP"}),
    "transport": frozenset({"TRAN"}),
}
PROFESSIONS: frozenset[str] = frozenset(PROFESSION_DOMAINS)

# Well within a signed 64-bit column in cents, and far above any real guarantee.
MAX_MONEY_CENTS = 999_999_999_99

INVALID_PLAN = "the plan file is not valid"
_ROOT = "(document)"
# One custom error type for every reason written here; pydantic's own types are translated.
_INVALID = "invalid_plan"
_MONEY_SHAPE = 'money must be a decimal string such as "12.50"'
_MONEY = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CODE = re.compile(r"[A-Z0-9_-]{1,20}")
_COMPONENTS = ("br_total_pct", "br_extra_pct", "amount", "actual_cost_pct", "daily_fee")

_Loc: TypeAlias = tuple[str | int, ...]
_Rule: TypeAlias = tuple[_Loc, str]
_M = TypeVar("_M", bound=BaseModel)


def parse_money(text: object) -> int:
    """Euros as a decimal string (``"12.50"``) to integer cents; ``ValueError`` says why not."""
    # JSON numbers are refused: a float cannot hold 0.10 exactly, and "12" vs 12 would be ambiguous.
    match = _MONEY.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(_MONEY_SHAPE)
    sign, euros, decimals = match.groups()
    if sign:
        raise ValueError("money must not be negative")
    if decimals is not None and len(decimals) > 2:
        raise ValueError("money has at most 2 decimals (whole cents)")
    cents = int(euros) * 100 + int((decimals or "").ljust(2, "0"))
    if cents > MAX_MONEY_CENTS:
        raise ValueError(f"money must not exceed {format_money(MAX_MONEY_CENTS)}")
    return cents


def format_money(cents: int) -> str:
    """Integer cents to the file's euro string: 150000 -> ``"1500.00"``."""
    euros, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{euros}.{rest:02d}"


def _invalid(reason: str) -> PydanticCustomError:
    # The reason goes through the context so that braces in it are never read as a template.
    return PydanticCustomError(_INVALID, "{reason}", {"reason": reason})


def _money(value: object) -> int:
    try:
        return parse_money(value)
    except ValueError as exc:
        raise _invalid(str(exc)) from None


def _integer(low: int, high: int, what: str) -> Callable[[object], int]:
    def check(value: object) -> int:
        # ``type() is int`` and not isinstance: JSON true is a bool, and bool subclasses int.
        if type(value) is not int:
            raise _invalid(f"{what} must be a JSON integer")
        if not low <= value <= high:
            raise _invalid(f"{what} must be between {low} and {high}")
        return value

    return check


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise _invalid("must be true or false")
    return value


def _iso_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    # The regex first: fromisoformat also takes "20250101" and week dates, which no file should use.
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _invalid('must be a date such as "2025-01-01"')


def _code(value: object) -> str:
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        raise _invalid("a plan code is 1 to 20 characters among A-Z, 0-9, _ and -")
    return value


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise _invalid("a plan name is a string of 1 to 200 characters, not all blank")
    return value


def _domain(value: object) -> str:
    if not isinstance(value, str) or value not in DOMAINS:
        raise _invalid(f"unknown care domain; valid codes: {', '.join(sorted(DOMAINS))}")
    return value


def _distinct(rates: tuple[int, ...]) -> tuple[int, ...]:
    if len(set(rates)) != len(rates):
        raise _invalid("each AMO rate may be listed only once")
    return rates


Money = Annotated[int, PlainValidator(_money), PlainSerializer(format_money, when_used="json")]
Percent = Annotated[int, PlainValidator(_integer(0, 1000, "a percentage"))]
Months = Annotated[int, PlainValidator(_integer(1, 120, "a number of months"))]
AmoRate = Annotated[int, PlainValidator(_integer(0, 100, "an AMO rate"))]
Flag = Annotated[bool, PlainValidator(_flag)]
IsoDate = Annotated[date, PlainValidator(_iso_date)]
DomainCode = Annotated[str, PlainValidator(_domain)]


def _given(raw: Mapping[Any, object], key: str) -> bool:
    value = raw.get(key)
    return value is not None and value is not False


def _with_rules(
    data: object, handler: ModelWrapValidatorHandler[_M], rules: list[_Rule], title: str
) -> _M:
    """Validate ``data`` and report the broken ``rules`` together with any field errors.

    The rules are checked on the raw input so that they are reported even when a field is
    invalid: a file is fixed in one round, not one problem at a time.
    """
    try:
        model = handler(data)
    except ValidationError as exc:
        if not rules:
            raise
        errors = [_reraisable(e) for e in exc.errors()] + [_rule_error(r) for r in rules]
        raise ValidationError.from_exception_data(title, errors) from None
    if rules:
        raise ValidationError.from_exception_data(title, [_rule_error(r) for r in rules])
    return model


def _rule_error(rule: _Rule) -> InitErrorDetails:
    loc, reason = rule
    return {"type": _invalid(reason), "loc": loc, "input": None}


def _reraisable(error: ErrorDetails) -> InitErrorDetails:
    if error["type"] == _INVALID:  # pydantic-core does not know our type by name
        return {"type": _invalid(error["msg"]), "loc": error["loc"], "input": error["input"]}
    details: InitErrorDetails = {
        "type": error["type"],
        "loc": error["loc"],
        "input": error["input"],
    }
    if "ctx" in error:
        details["ctx"] = error["ctx"]
    return details


class _FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class Ceiling(_FrozenModel):
    """At most ``amount_cents`` per beneficiary and domain over ``period``."""

    amount_cents: Money = Field(alias="amount")
    period: Literal["calendar_year", "rolling_12_months"]


class Guarantee(_FrozenModel):
    """How much the AMC pays in one domain; the components given add up (DOMAIN.md)."""

    br_total_pct: Percent | None = None
    br_extra_pct: Percent | None = None
    amount_cents: Money | None = Field(default=None, alias="amount")
    per: Literal["act", "item", "equipment", "day"] | None = None
    actual_cost_pct: Percent | None = None
    ceiling: Ceiling | None = None
    frame_cap: Money | None = None
    cap_incl_amo: Money | None = None
    renewal_months: Months | None = None
    renewal_months_under_16: Months | None = None
    prior_agreement: Flag = False
    exclude_amo_rates: Annotated[tuple[AmoRate, ...], AfterValidator(_distinct)] = ()
    daily_fee: Flag = False

    @model_validator(mode="wrap")
    @classmethod
    def _check_rules(cls, data: object, handler: ModelWrapValidatorHandler[Self]) -> Self:
        rules = _guarantee_rules(data) if isinstance(data, Mapping) else []
        return _with_rules(data, handler, rules, cls.__name__)


def _guarantee_rules(raw: Mapping[Any, object]) -> list[_Rule]:
    rules: list[_Rule] = []
    if _given(raw, "amount") and not _given(raw, "per"):
        rules.append((("per",), "is required with amount: one of act, item, equipment, day"))
    if _given(raw, "per") and not _given(raw, "amount"):
        rules.append((("amount",), "is required with per"))
    if _given(raw, "renewal_months_under_16") and not _given(raw, "renewal_months"):
        rules.append(
            (("renewal_months_under_16",), "requires renewal_months, the period from age 16")
        )
    if not any(_given(raw, key) for key in _COMPONENTS):
        rules.append(
            ((), "covers nothing: give at least one of " + ", ".join(_COMPONENTS) + ": true")
        )
    return rules


class Plan(_FrozenModel):
    """One version of an AMC's plan; a domain absent from ``guarantees`` is not covered."""

    code: Annotated[str, PlainValidator(_code)]
    name: Annotated[str, PlainValidator(_name)]
    responsible: Flag
    valid_from: IsoDate
    valid_to: IsoDate | None = None
    guarantees: Mapping[DomainCode, Guarantee]

    def guarantee(self, domain: str) -> Guarantee | None:
        """The guarantee in ``domain``, None when not covered; ValueError for an unknown code."""
        if domain not in DOMAINS:
            # A misspelt code is a bug in the caller, not a domain the plan does not cover.
            raise ValueError(f"unknown care domain {domain!r}")
        return self.guarantees.get(domain)

    @model_validator(mode="wrap")
    @classmethod
    def _check_rules(cls, data: object, handler: ModelWrapValidatorHandler[Self]) -> Self:
        rules = _plan_rules(data) if isinstance(data, Mapping) else []
        return _with_rules(data, handler, rules, cls.__name__)


def _plan_rules(raw: Mapping[Any, object]) -> list[_Rule]:
    rules: list[_Rule] = []
    guarantees = raw.get("guarantees")
    if isinstance(guarantees, Mapping):
        for domain, entry in guarantees.items():
            if domain not in DOMAINS:
                continue  # reported as an unknown domain already
            if isinstance(entry, Guarantee):
                entry = entry.model_dump(by_alias=True)
            if not isinstance(entry, Mapping):
                continue
            if domain != "OPTI" and entry.get("frame_cap") is not None:
                rules.append((("guarantees", domain, "frame_cap"), "applies only to OPTI"))
            if domain != "HOSP" and _given(entry, "daily_fee"):
                rules.append((("guarantees", domain, "daily_fee"), "applies only to HOSP"))
    try:
        valid_from = _iso_date(raw.get("valid_from"))
        valid_to = raw.get("valid_to")
        if valid_to is not None and _iso_date(valid_to) < valid_from:
            rules.append((("valid_to",), "must not be before valid_from"))
    except PydanticCustomError:
        pass  # a malformed date is reported by its field
    return rules


def parse_plan(raw: bytes | str | Mapping[str, object]) -> Plan:
    """Parse and validate a plan file (JSON text, or already decoded JSON).

    Raises ``InvalidDocument`` listing every problem found, each with its JSON path.
    """
    problems: list[Problem] = []
    data: object = raw
    if isinstance(raw, bytes | str):
        data, problems = _load_json(raw)
    if not isinstance(data, Mapping):
        problems.append(Problem(_ROOT, "a plan must be a JSON object"))
        raise InvalidDocument(INVALID_PLAN, problems=problems)
    try:
        plan = Plan.model_validate(dict(data))
    except ValidationError as exc:
        problems += [_to_problem(error) for error in exc.errors()]
        raise InvalidDocument(INVALID_PLAN, problems=problems) from None
    if problems:
        raise InvalidDocument(INVALID_PLAN, problems=problems)
    return plan


def plan_to_json(plan: Plan) -> dict[str, object]:
    """The plan in its file format (money as ``"x.yy"``), for storing and showing it."""
    return {
        "code": plan.code,
        "name": plan.name,
        "responsible": plan.responsible,
        "valid_from": plan.valid_from.isoformat(),
        "valid_to": None if plan.valid_to is None else plan.valid_to.isoformat(),
        "guarantees": {
            domain: guarantee.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            for domain, guarantee in plan.guarantees.items()
        },
    }


def _load_json(raw: bytes | str) -> tuple[object, list[Problem]]:
    duplicates: list[Problem] = []

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        # json keeps the last of two equal keys silently; in a plan that hides a guarantee.
        result: dict[str, object] = {}
        for key, value in pairs:
            if key in result:
                duplicates.append(Problem(_ROOT, f'the key "{key}" appears twice in one object'))
            result[key] = value
        return result

    try:
        return json.loads(raw, object_pairs_hook=no_duplicates), duplicates
    except json.JSONDecodeError as exc:
        problem = Problem(f"line {exc.lineno}, column {exc.colno}", f"invalid JSON: {exc.msg}")
    except UnicodeDecodeError as exc:
        problem = Problem(f"byte offset {exc.start}", "the file must be UTF-8 text")
    except RecursionError:
        problem = Problem(_ROOT, "the JSON is nested too deeply")
    raise InvalidDocument(INVALID_PLAN, problems=[problem])


def _to_problem(error: ErrorDetails) -> Problem:
    loc = error["loc"]
    if loc and loc[-1] == "[key]":  # pydantic's marker for a dict key: the key is the place
        loc = loc[:-1]
    location = ".".join(str(part) for part in loc) or _ROOT
    return Problem(location, _reason(error, loc))


def _reason(error: ErrorDetails, loc: _Loc) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        parent = loc[:-1]
        model: type[BaseModel] = (
            Plan if not parent else Ceiling if parent[-1] == "ceiling" else Guarantee
        )
        fields = [info.alias or name for name, info in model.model_fields.items()]
        return f"unknown field; the fields are: {', '.join(fields)}"
    if kind in {"model_type", "model_attributes_type", "dict_type", "mapping_type"}:
        return "must be a JSON object"
    if kind in {"tuple_type", "list_type", "iterable_type"}:
        return "must be a list"
    if kind == "literal_error":
        return "must be one of " + str(error.get("ctx", {}).get("expected", "")).replace("'", '"')
    # Our own reasons, and pydantic's messages, which name the rule and never the input.
    return error["msg"]
