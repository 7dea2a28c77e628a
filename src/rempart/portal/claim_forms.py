"""The professional portal's card-and-lines form, shared by the calculation, the prior agreement
and the invoice: what it shows empty, how it is read back (values as typed, to be shown again),
the request body the API would take, and its errors in French.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from rempart.dates import paris_day
from rempart.db import utcnow
from rempart.identity.auth import Principal
from rempart.portal.rendering import DOMAIN_NAMES, field_errors
from rempart.portal.security import text
from rempart.registry.plan_format import PROFESSION_DOMAINS

CARD = ("amc_number", "member_number", "birth_date", "birth_rank")
LINE = ("act_code", "domain", "care_date", "quantity", "billed", "br", "amo_rate")
# Optional fields of a line (optics, hearing aids, 100 % Santé): quotes and invoices only.
DETAILS = ("amo_paid", "item_type", "basket", "price_limit")
MONEY = ("billed", "br", "amo_paid", "price_limit")  # typed in euros, "30,00"
LINES = 3  # rows of the form; empty ones are skipped


def today() -> date:
    return paris_day(utcnow())


def domain_options(caller: Principal) -> list[tuple[str, str]]:
    """The care domains of the caller's profession, for a select."""
    domains = sorted(PROFESSION_DOMAINS.get(caller.profession or "", ()))
    return [(code, f"{code} — {DOMAIN_NAMES[code]}") for code in domains]


def money(value: str) -> str:
    """ "1 234,50 €" → "1234.50", the API's notation (the schema then checks it)."""
    return value.replace(",", ".").replace("€", "").replace("\u202f", "").strip()


def blank_form(caller: Principal) -> dict[str, str]:
    """An empty form: today's date, a quantity of 1, the profession's first domain."""
    domains = domain_options(caller)
    values = {"birth_rank": "1"}
    for row in range(LINES):
        values |= {f"lines-{row}-care_date": today().isoformat(), f"lines-{row}-quantity": "1"}
        values[f"lines-{row}-domain"] = domains[0][0] if domains else ""
    return values


def read_form(form: FormData, fields: tuple[str, ...]) -> tuple[dict[str, str], list[int]]:
    """The form's values as typed (to show them again) and the rows that hold a line; ``fields``
    are the form's own, beside the card."""
    values = {name: text(form, name, 40).strip() for name in (*CARD, *fields)}
    rows = []
    for row in range(LINES):
        line = {name: text(form, f"lines-{row}-{name}", 40).strip() for name in (*LINE, *DETAILS)}
        values |= {f"lines-{row}-{name}": value for name, value in line.items()}
        if line["act_code"] or line["billed"] or line["br"]:
            rows.append(row)  # the others are empty rows
    return values, rows


def document(values: dict[str, str], rows: list[int], fields: tuple[str, ...]) -> dict[str, Any]:
    """The request body the API would take: money in its notation, empty options left out."""
    body: dict[str, Any] = {name: values[name] for name in CARD}
    body |= {name: values[name] or None for name in fields}
    body["lines"] = []
    for row in rows:
        line = {name: values[f"lines-{row}-{name}"] for name in (*LINE, *DETAILS)}
        body["lines"].append({n: money(v) if n in MONEY else v for n, v in line.items() if v})
    return body


def errors(exc: ValidationError, rows: list[int]) -> dict[str, str]:
    """Per field, in French; "no line at all" points at the first line's act code."""
    found = field_errors(exc, lines_at=rows)
    return {"lines-0-act_code" if name == "lines" else name: text for name, text in found.items()}
