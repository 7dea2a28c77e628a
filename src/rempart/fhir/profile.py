"""Rempart's FHIR profile, shared by every resource: the systems and extensions we define, how a
card is read from a request's contained Patient and Coverage, money, and what we never echo.

A request names the patient only by the card's key (the insurer, the member number, the birth
date and rank). A response carries none of it: the patient, the coverage and the request are
references masked with the standard data-absent-reason extension, so that nothing personal comes
back and an unknown card cannot be told from closed rights by its answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from rempart.dates import paris_day
from rempart.db import utcnow
from rempart.errors import InvalidDocument, Problem
from rempart.registry.plan_format import MAX_MONEY_CENTS

BASE = "https://rempart.dev/fhir"
AMC_SYSTEM = f"{BASE}/NamingSystem/amc-number"
DOMAIN_SYSTEM = f"{BASE}/CodeSystem/care-domain"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
CURRENCY = "EUR"
Schema = TypeVar("Schema", bound=BaseModel)
INVALID = "the resource does not follow Rempart's FHIR profile (docs/fhir.md)"

# The request's contained resources may carry these elements and nothing else: a name, a NIR or an
# address has no use in a rights check or a calculation, and is refused rather than ignored.
PATIENT_ELEMENTS = frozenset({"id", "birthDate", "multipleBirthInteger"})
COVERAGE_ELEMENTS = frozenset({"id", "status", "beneficiary", "payor", "subscriberId"})


def extension_url(name: str) -> str:
    return f"{BASE}/StructureDefinition/{name}"


def masked(code: str = "masked", resource_type: str | None = None) -> dict[str, Any]:
    """A reference that says why it names nothing: ``masked`` (privacy) or ``not-applicable``."""
    reference: dict[str, Any] = {"extension": [{"url": DATA_ABSENT, "valueCode": code}]}
    if resource_type:
        reference["type"] = resource_type
    return reference


def insurer(amc_number: str) -> dict[str, Any]:
    """The insurer as a logical reference; the AMC number is public, not personal."""
    return {"identifier": {"system": AMC_SYSTEM, "value": amc_number}}


def domain_concept(domain: str) -> dict[str, Any]:
    return {"coding": [{"system": DOMAIN_SYSTEM, "code": domain}]}


def today() -> date:
    """``created`` is a date, not an instant: two answers of one day are identical to the byte."""
    return paris_day(utcnow())


def money(cents: int) -> dict[str, Any]:
    return {"value": Decimal(cents) / 100, "currency": CURRENCY}


def cents(value: Any, where: str, problems: list[Problem]) -> int | None:
    """A FHIR Money in euros to integer cents: EUR, at most two decimals, within our bounds."""
    amount = getattr(value, "value", None)
    if value is None or amount is None:
        problems.append(Problem(where, "an amount is required"))
        return None
    if getattr(value, "currency", None) != CURRENCY:
        problems.append(Problem(f"{where}.currency", f"must be {CURRENCY}"))
        return None
    try:
        scaled = Decimal(amount) * 100
    except InvalidOperation:
        scaled = Decimal("NaN")
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        problems.append(Problem(f"{where}.value", "must be euros with at most two decimals"))
        return None
    if not 0 <= scaled <= MAX_MONEY_CENTS:
        problems.append(Problem(f"{where}.value", "is out of bounds"))
        return None
    return int(scaled)


def coding(concept: Any, system: str, where: str, problems: list[Problem]) -> str | None:
    """The one code of ``system`` in a CodeableConcept (other systems' codings are ignored)."""
    codes = [c.code for c in getattr(concept, "coding", None) or () if c.system == system]
    if len(codes) != 1 or not codes[0]:
        problems.append(Problem(where, f"must have exactly one coding of {system}"))
        return None
    return str(codes[0])


def contained(
    resource: Any, reference: Any, kind: str, where: str, problems: list[Problem]
) -> tuple[Any, str] | None:
    """The contained resource a local reference (``#id``) points to, and its FHIRPath."""
    target = getattr(reference, "reference", None) or ""
    if not target.startswith("#"):
        problems.append(Problem(where, f"must be a local reference to a contained {kind}"))
        return None
    for index, candidate in enumerate(resource.contained or ()):
        if candidate.get_resource_type() == kind and candidate.id == target[1:]:
            return candidate, f"{resource.get_resource_type()}.contained[{index}]"
    problems.append(Problem(where, f"no contained {kind} has this id"))
    return None


def only(element: Any, allowed: frozenset[str], where: str, problems: list[Problem]) -> None:
    """Refuse the elements we do not read (by name only: the values are never repeated)."""
    extra = sorted(element.model_fields_set - allowed - {"fhir_comments"})
    problems.extend(
        Problem(f"{where}.{name}", "is not accepted: send only the card") for name in extra
    )


def read_card(
    resource: Any, coverage_reference: Any, coverage_path: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The card's fields (not yet validated) and the FHIRPath each comes from.

    ``insurer.identifier`` is the AMC number, the contained Coverage's ``subscriberId`` the member
    number, the contained Patient's ``birthDate`` and ``multipleBirthInteger`` the birth date and
    rank (the card's "rang gémellaire"). Raises ``InvalidDocument`` naming every problem.
    """
    kind = resource.get_resource_type()
    problems: list[Problem] = []
    fields: dict[str, Any] = {}
    paths: dict[str, str] = {"amc_number": f"{kind}.insurer.identifier"}
    identifier = getattr(resource.insurer, "identifier", None)
    if identifier is None or identifier.system != AMC_SYSTEM:
        problems.append(Problem(paths["amc_number"], f"must be an identifier of {AMC_SYSTEM}"))
    else:
        fields["amc_number"] = identifier.value
    patient = contained(resource, resource.patient, "Patient", f"{kind}.patient", problems)
    if patient is not None:
        found, path = patient
        only(found, PATIENT_ELEMENTS, path, problems)
        fields["birth_date"], paths["birth_date"] = found.birthDate, f"{path}.birthDate"
        fields["birth_rank"] = found.multipleBirthInteger
        paths["birth_rank"] = f"{path}.multipleBirthInteger"
    coverage = contained(resource, coverage_reference, "Coverage", coverage_path, problems)
    if coverage is not None:
        found, path = coverage
        only(found, COVERAGE_ELEMENTS, path, problems)
        fields["member_number"], paths["member_number"] = found.subscriberId, f"{path}.subscriberId"
        if getattr(found.beneficiary, "reference", None) != resource.patient.reference:
            problems.append(Problem(f"{path}.beneficiary", "must reference the same Patient"))
        payors = [getattr(p.identifier, "value", None) for p in found.payor]
        if payors != [fields.get("amc_number")]:
            problems.append(Problem(f"{path}.payor", "must be the insurer, by the same identifier"))
    if problems:
        raise InvalidDocument(INVALID, problems)
    return fields, paths


def validated(
    schema: type[Schema], fields: Mapping[str, Any], path_of: Mapping[str, str]
) -> Schema:
    """Validate with the JSON API's own schema (one set of rules), naming FHIRPaths on failure."""
    try:
        return schema.model_validate(fields)
    except ValidationError as exc:
        raise InvalidDocument(INVALID, [problem(e, path_of) for e in exc.errors()]) from None


def problem(error: Any, path_of: Mapping[str, str]) -> Problem:
    """A schema error at the FHIRPath its field came from; the message, never the input."""
    loc: Sequence[Any] = error["loc"]
    where = path_of.get(".".join(str(part) for part in loc)) or path_of.get(str(loc[0]), "")
    return Problem(where or "(resource)", error["msg"])
