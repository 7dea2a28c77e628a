"""Claims in FHIR, for every ``use``: a Claim's card, references and lines read into the fields of
the JSON API's schemas, and an adjudication written as a ClaimResponse.

Calculations (``use = predetermination``), prior agreements (``preauthorization``) and invoices
(``claim``) share it: ``read_claim`` gives fields shaped like
``claims.schemas.CalculationRequest`` (card, ``engagement``, ``prior_agreement``, ``lines``, and
for an invoice its ``invoice_number``) and the FHIRPath of each, to validate with each use's own
schema through ``profile.validated``; ``claim_response`` writes any adjudication: a calculation's,
an agreement's or an invoice's lines and total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.claimresponse import ClaimResponse

from rempart.claims.engine import Line, LineResult
from rempart.errors import InvalidDocument, Problem
from rempart.fhir import profile
from rempart.registry.plan_format import format_money
from rempart.rights.rules import ENGAGEMENT_PREFIX

KIND = "Claim"
USES = ("claim", "preauthorization", "predetermination")
CLAIM_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/claim-type"
CLAIM_TYPES = frozenset({"institutional", "oral", "pharmacy", "professional", "vision"})
ADJUDICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/adjudication"
REMPART_ADJUDICATION_SYSTEM = f"{profile.BASE}/CodeSystem/adjudication"
ACT_SYSTEM = f"{profile.BASE}/CodeSystem/act-code"
BASKET_SYSTEM = f"{profile.BASE}/CodeSystem/basket"
REJECT_SYSTEM = f"{profile.BASE}/CodeSystem/reject-code"
# The professional's own invoice number (``use = claim``), in Claim.identifier.
INVOICE_NUMBER_SYSTEM = f"{profile.BASE}/NamingSystem/invoice-number"

# Line fields carried by extensions on Claim.item: (extension name, value[x] element, field).
LINE_EXTENSIONS = (
    ("br", "valueMoney", "br"),
    ("amo-rate", "valueUnsignedInt", "amo_rate"),
    ("amo-paid", "valueMoney", "amo_paid"),
    ("optam", "valueBoolean", "optam"),
    ("price-limit", "valueMoney", "price_limit"),
    ("item-type", "valueCode", "item_type"),
)
MONEY_FIELDS = frozenset({"br", "amo_paid", "price_limit"})


@dataclass(frozen=True)
class ClaimInput:
    """A Claim's fields, shaped like the JSON API's request, and where each came from."""

    fields: dict[str, Any]
    paths: dict[str, str]
    use: str
    claim_type: str
    sequences: tuple[int, ...]  # Claim.item[].sequence, for the ClaimResponse's itemSequence


def read_claim(claim: Claim) -> ClaimInput:
    """Everything the services need from a Claim; ``InvalidDocument`` names every problem."""
    problems: list[Problem] = []
    if claim.status != "active":
        problems.append(Problem(f"{KIND}.status", "must be active"))
    if claim.use not in USES:
        problems.append(Problem(f"{KIND}.use", f"must be one of {', '.join(USES)}"))
    claim_type = profile.coding(claim.type, CLAIM_TYPE_SYSTEM, f"{KIND}.type", problems)
    if claim_type is not None and claim_type not in CLAIM_TYPES:
        problems.append(Problem(f"{KIND}.type", "is not a code of the claim-type system"))
    if claim.modifierExtension:
        problems.append(Problem(f"{KIND}.modifierExtension", "is not understood"))
    if len(claim.insurance) != 1:
        problems.append(Problem(f"{KIND}.insurance", "must hold exactly one coverage"))
    if not 1 <= len(claim.item or ()) <= 99:
        problems.append(Problem(f"{KIND}.item", "must hold 1 to 99 lines"))
    if problems:
        raise InvalidDocument(profile.INVALID, problems)
    insurance = claim.insurance[0]
    fields, paths = profile.read_card(claim, insurance.coverage, f"{KIND}.insurance[0].coverage")
    references = _references(insurance.preAuthRef or [], problems)
    lines: list[dict[str, Any]] = []
    sequences: list[int] = []
    for index, item in enumerate(claim.item or ()):
        fields_of_line, paths_of_line = line_fields(item, f"{KIND}.item[{index}]", problems)
        lines.append(fields_of_line)
        paths |= {f"lines.{index}.{name}": path for name, path in paths_of_line.items()}
        paths[f"lines.{index}"] = f"{KIND}.item[{index}]"
        sequences.append(item.sequence or 0)
    if 0 in sequences or len(set(sequences)) != len(sequences):
        problems.append(Problem(f"{KIND}.item.sequence", "must be given, and unique"))
    if claim.use == "claim":
        fields |= _invoice_number(claim.identifier or [], paths, problems)
    if problems:
        raise InvalidDocument(profile.INVALID, problems)
    paths |= dict.fromkeys(references, f"{KIND}.insurance[0].preAuthRef")
    paths["lines"] = f"{KIND}.item"
    return ClaimInput(
        fields | references | {"lines": lines},
        paths,
        str(claim.use),
        str(claim_type),
        tuple(sequences),
    )


def line_fields(
    item: Any, where: str, problems: list[Problem]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A Claim.item as the fields of ``claims.schemas.LineIn`` (money as euro strings).

    ``productOrService`` is the act code, ``category`` the care domain, ``servicedDate`` the care
    date, ``quantity`` (default 1), ``net`` what is billed for the line (its total), ``programCode``
    the basket (``100PS``), and extensions the rest: the BR, the AMO rate...
    """
    paths = {
        "act_code": f"{where}.productOrService",
        "domain": f"{where}.category",
        "care_date": f"{where}.servicedDate",
        "quantity": f"{where}.quantity.value",
        "billed": f"{where}.net",
        "basket": f"{where}.programCode",
    }
    if item.modifierExtension:
        problems.append(Problem(f"{where}.modifierExtension", "is not understood"))
    fields: dict[str, Any] = {
        "act_code": profile.coding(item.productOrService, ACT_SYSTEM, paths["act_code"], problems),
        "domain": profile.coding(item.category, profile.DOMAIN_SYSTEM, paths["domain"], problems),
        "care_date": item.servicedDate,
        "quantity": item.quantity.value if item.quantity and item.quantity.value is not None else 1,
        "billed": _euros(item.net, paths["billed"], problems),
    }
    if item.programCode:
        fields["basket"] = profile.coding(
            item.programCode[0], BASKET_SYSTEM, paths["basket"], problems
        )
    by_url = {}
    for index, extension in enumerate(item.extension or ()):
        if extension.url in by_url:
            problems.append(Problem(f"{where}.extension[{index}]", "is repeated"))
        by_url[extension.url] = (index, extension)
    for name, element, field in LINE_EXTENSIONS:
        found = by_url.get(profile.extension_url(name))
        if found is None:
            continue
        index, extension = found
        path = f"{where}.extension[{index}].{element}"
        paths[field] = path
        value = getattr(extension, element)
        if value is None:
            problems.append(Problem(path, f"the {name} extension carries {element}"))
        else:
            fields[field] = _euros(value, path, problems) if field in MONEY_FIELDS else value
    for field in ("br", "amo_rate"):
        paths.setdefault(field, f"{where}.extension")
    return fields, paths


def _euros(value: Any, where: str, problems: list[Problem]) -> str | None:
    cents = profile.cents(value, where, problems)
    return None if cents is None else format_money(cents)


def _references(quoted: list[Any], problems: list[Problem]) -> dict[str, str]:
    """``preAuthRef``: the engagement (the rights check's ``preAuthRef``, ``E1…``) and a prior
    agreement's reference (any other value); one of each at most."""
    engagements = [r for r in quoted if r and r.startswith(ENGAGEMENT_PREFIX)]
    others = [r for r in quoted if r and not r.startswith(ENGAGEMENT_PREFIX)]
    if len(engagements) > 1 or len(others) > 1:
        problems.append(
            Problem(
                f"{KIND}.insurance[0].preAuthRef", "quote one engagement and one agreement at most"
            )
        )
    found = {}
    if engagements:
        found["engagement"] = engagements[0]
    if others:
        found["prior_agreement"] = others[0]
    return found


def _invoice_number(
    identifiers: Sequence[Any], paths: dict[str, str], problems: list[Problem]
) -> dict[str, Any]:
    """An invoice's number: the one ``Claim.identifier`` of our invoice-number system (its
    format is the invoice schema's to check)."""
    found = [
        (index, identifier.value)
        for index, identifier in enumerate(identifiers)
        if identifier.system == INVOICE_NUMBER_SYSTEM
    ]
    if len(found) != 1:
        reason = f"must hold exactly one identifier of {INVOICE_NUMBER_SYSTEM}: your invoice number"
        problems.append(Problem(f"{KIND}.identifier", reason))
        return {}
    index, value = found[0]
    paths["invoice_number"] = f"{KIND}.identifier[{index}].value"
    return {"invoice_number": value}


class Adjudicated(Protocol):
    """What ``claim_response`` writes: an engine's ``Adjudication``, an agreement, an invoice."""

    @property
    def lines(self) -> Sequence[LineResult]: ...

    @property
    def total_amc(self) -> int: ...


def claim_response(
    claim: ClaimInput,
    lines: Sequence[Line],
    result: Adjudicated,
    disposition: str,
    **elements: Any,
) -> ClaimResponse:
    """A ClaimResponse of ``result`` for the validated ``lines``; ``elements`` adds e.g.
    ``preAuthRef``. Each item's adjudications: what is billed (submitted), the BR (eligible), the
    AMO's share (Rempart's ``amo``) and the AMC's (benefit, with the reject codes as reason)."""
    notes, items = [], []
    for number, (sequence, line, outcome) in enumerate(
        zip(claim.sequences, lines, result.lines, strict=True), start=1
    ):
        benefit: dict[str, Any] = {
            "category": _hl7("benefit"),
            "amount": profile.money(outcome.amc_amount),
        }
        if outcome.reject_codes:
            benefit["reason"] = {
                "coding": [{"system": REJECT_SYSTEM, "code": code} for code in outcome.reject_codes]
            }
        adjudication = [
            {"category": _hl7("submitted"), "amount": profile.money(line.billed)},
            {"category": _hl7("eligible"), "amount": profile.money(line.br)},
            {"category": _rempart("amo"), "amount": profile.money(outcome.amo_amount)},
            benefit,
        ]
        items.append(
            {"itemSequence": sequence, "noteNumber": [number], "adjudication": adjudication}
        )
        notes.append({"number": number, "type": "display", "text": outcome.explanation})
    billed = sum(line.billed for line in lines)
    resource = {
        "resourceType": "ClaimResponse",
        "status": "active",
        "type": {"coding": [{"system": CLAIM_TYPE_SYSTEM, "code": claim.claim_type}]},
        "use": claim.use,
        "patient": profile.masked(),
        "created": profile.today().isoformat(),
        "insurer": profile.insurer(claim.fields["amc_number"]),
        "request": profile.masked("not-applicable", KIND),
        "outcome": "complete",
        "disposition": disposition,
        **elements,
        "item": items,
        "total": [
            {"category": _hl7("submitted"), "amount": profile.money(billed)},
            {"category": _hl7("benefit"), "amount": profile.money(result.total_amc)},
        ],
        "processNote": notes,
    }
    return ClaimResponse.model_validate(resource)


def _hl7(code: str) -> dict[str, Any]:
    return {"coding": [{"system": ADJUDICATION_SYSTEM, "code": code}]}


def _rempart(code: str) -> dict[str, Any]:
    return {"coding": [{"system": REMPART_ADJUDICATION_SYSTEM, "code": code}]}
