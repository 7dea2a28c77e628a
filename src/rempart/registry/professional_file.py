"""The professionals file the operator loads: one professional or facility a row."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from rempart.identifiers import (
    InvalidIdentifier,
    validate_am_number,
    validate_bic,
    validate_finess,
    validate_iban,
    validate_rpps,
)
from rempart.registry.csv_rows import Invalid, Row, RowError, read_rows, text
from rempart.registry.plan_format import PROFESSIONS

COLUMNS = ("am_number", "rpps", "finess", "name", "profession", "optam", "iban", "bic", "networks")
NETWORK_CODES_MAX = 10
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
# Facilities are identified by FINESS, individuals by RPPS.
_FACILITIES = frozenset({"hospital", "laboratory", "transport"})


@dataclass(frozen=True, slots=True)
class ProfessionalRow:
    line: int
    am_number: str
    rpps: str | None
    finess: str | None
    name: str
    profession: str
    optam: bool
    iban: str
    bic: str
    networks: tuple[str, ...]
    raw: bytes


def read_professional_file(stream: BinaryIO) -> Iterator[ProfessionalRow | RowError]:
    return read_rows(stream, COLUMNS, _parse)


def _identifier(values: Row, column: str, check: Callable[[str], str]) -> str:
    try:
        return check(values[column])
    except InvalidIdentifier as exc:
        raise Invalid(column, exc.reason) from None


def _parse(line: int, raw: bytes, values: Row) -> ProfessionalRow:
    am_number = _identifier(values, "am_number", validate_am_number)
    rpps = _identifier(values, "rpps", validate_rpps) if values["rpps"] else None
    finess = _identifier(values, "finess", validate_finess) if values["finess"] else None
    name = text(values, "name", 200)
    profession = values["profession"]
    if profession not in PROFESSIONS:
        raise Invalid("profession", "must be one of " + ", ".join(sorted(PROFESSIONS)))
    if profession in _FACILITIES and finess is None and rpps is None:
        raise Invalid("finess", "a facility needs its FINESS number (or an RPPS)")
    if profession not in _FACILITIES and rpps is None:
        raise Invalid("rpps", "is required for an individual professional")
    optam = _BOOLEANS.get(values["optam"].lower())
    if optam is None:
        raise Invalid("optam", "must be true or false")
    iban = _identifier(values, "iban", validate_iban)
    bic = _identifier(values, "bic", validate_bic)
    networks = tuple(n.strip() for n in values["networks"].split(";") if n.strip())
    for network in networks:
        if not (network.isascii() and network.isalnum()) or len(network) > 20:
            raise Invalid("networks", "each network code is 1 to 20 letters or digits")
    if len(networks) > NETWORK_CODES_MAX:
        raise Invalid("networks", f"at most {NETWORK_CODES_MAX} networks")
    return ProfessionalRow(
        line,
        am_number,
        rpps,
        finess,
        name,
        profession,
        optam,
        iban,
        bic,
        tuple(sorted(set(networks))),
        raw,
    )
