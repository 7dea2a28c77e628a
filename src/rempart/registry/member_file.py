"""The member file an insurer sends (DOMAIN.md, "Member file"): one beneficiary a row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

from rempart.identifiers import InvalidIdentifier, validate_nir
from rempart.registry.csv_rows import Invalid, Row, RowError, codes, iso_date, read_rows, text
from rempart.registry.plan_format import DOMAINS

COLUMNS = (
    "member_number",
    "nir",
    "last_name",
    "first_name",
    "birth_date",
    "birth_rank",
    "relationship",
    "plan_code",
    "start_date",
    "end_date",
    "suspended_domains",
)
RELATIONSHIPS = frozenset({"insured", "spouse", "child", "other"})
_MEMBER_NUMBER = re.compile(r"[A-Za-z0-9]{1,20}")
_PLAN_CODE = re.compile(r"[A-Z0-9_-]{1,20}")


@dataclass(frozen=True, slots=True)
class MemberRow:
    line: int
    member_number: str
    nir: str | None
    last_name: str
    first_name: str
    birth_date: date
    birth_rank: int
    relationship: str
    plan_code: str
    start_date: date
    end_date: date | None
    suspended_domains: tuple[str, ...]
    raw: bytes


def read_member_file(stream: BinaryIO) -> Iterator[MemberRow | RowError]:
    """Yield each row of the member file, validated, or the error that rejects it."""
    return read_rows(stream, COLUMNS, _parse)


def _parse(line: int, raw: bytes, values: Row) -> MemberRow:
    member_number = values["member_number"]
    if not _MEMBER_NUMBER.fullmatch(member_number):
        raise Invalid("member_number", "must be 1 to 20 letters or digits")
    relationship = values["relationship"]
    if relationship not in RELATIONSHIPS:
        raise Invalid("relationship", "must be one of " + ", ".join(sorted(RELATIONSHIPS)))
    nir: str | None = None
    if values["nir"]:
        try:
            nir = validate_nir(values["nir"])
        except InvalidIdentifier as exc:
            raise Invalid("nir", exc.reason) from None
    elif relationship == "insured":
        raise Invalid("nir", "is required for the insured person")
    last_name = text(values, "last_name", 100)
    first_name = text(values, "first_name", 100)
    birth_date = iso_date(values, "birth_date")
    rank = values["birth_rank"]
    if not (len(rank) == 1 and "1" <= rank <= "9"):
        raise Invalid("birth_rank", "must be a digit from 1 to 9")
    plan_code = values["plan_code"]
    if not _PLAN_CODE.fullmatch(plan_code):
        raise Invalid("plan_code", "must be 1 to 20 characters among A-Z, 0-9, _ and -")
    start_date = iso_date(values, "start_date")
    end_date = iso_date(values, "end_date") if values["end_date"] else None
    if end_date is not None and end_date < start_date:
        raise Invalid("end_date", "is before start_date")
    if start_date < birth_date:
        raise Invalid("start_date", "is before the birth date")
    return MemberRow(
        line=line,
        member_number=member_number,
        nir=nir,
        last_name=last_name,
        first_name=first_name,
        birth_date=birth_date,
        birth_rank=int(rank),
        relationship=relationship,
        plan_code=plan_code,
        start_date=start_date,
        end_date=end_date,
        suspended_domains=codes(values, "suspended_domains", DOMAINS),
        raw=raw,
    )
