"""The operator and security console (/ops/): freezes and the kill switch, integrity and ledger
verification, the data keys.

A freeze or its lifting needs a second factor given less than ten minutes ago (step-up), as in
the API: a stolen console session must not be able to lift a containment.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from rempart.errors import Conflict, Error, InvalidInput, NotFound
from rempart.guard.containment import KINDS
from rempart.identity.auth import Principal
from rempart.identity.deps import PlatformDep
from rempart.incidents import containment
from rempart.integrity.verify import verify_integrity
from rempart.platform import Platform
from rempart.portal import queries
from rempart.portal.account import fresh
from rempart.portal.rendering import problem_of, render
from rempart.portal.security import FormDep, page, text

router = APIRouter(prefix="/ops", include_in_schema=False)
Staff = Annotated[Principal, Depends(page("operator", "security"))]
KIND_NAMES = {
    "account": "Compte (adresse e-mail)",
    "professional": "Professionnel (n° AM)",
    "tenant": "Organisme complémentaire (n° AMC)",
    "portal": "Un portail (pro, amc ou ops)",
    "platform": "Toute la plateforme (coupure générale)",
}
OK = {
    "gel": "Gel appliqué : il vaut dès maintenant, et il est inscrit au journal.",
    "degel": "Gel levé : c'est inscrit au journal.",
}


def _freezes_page(
    request: Request, caller: Principal, platform: Platform, status: int = 200, **context: Any
) -> Response:
    values = {"kind": "account", "unfreeze_kind": "account"} | context.pop("values", {})
    return render(
        request,
        "ops_freezes.html",
        {
            "freezes": containment.in_force(platform),
            "kinds": KIND_NAMES,
            "fresh": fresh(caller),
            "values": values,
            **context,
        },
        status=status,
    )


@router.get("/", summary="Roles: operator, security. Freezes in force; freeze and lift.")
def freezes_page(
    request: Request, caller: Staff, platform: PlatformDep, ok: str | None = None
) -> Response:
    return _freezes_page(request, caller, platform, message=OK.get(ok or ""))


@router.post(
    "/gel",
    summary="Roles: operator, security (second factor within 10 minutes). Freeze at once.",
)
def freeze(request: Request, caller: Staff, form: FormDep, platform: PlatformDep) -> Response:
    kind = text(form, "kind", 12)
    values = {"kind": kind, "name": text(form, "name", 254), "reason": text(form, "reason", 500)}
    if not fresh(caller):
        return _freezes_page(request, caller, platform, 403, values=values)
    if kind not in KINDS:
        errors = {"kind": "Choisissez ce qu'il faut geler."}
        return _freezes_page(request, caller, platform, 422, values=values, errors=errors)
    name = values["name"].strip() or None
    try:
        containment.freeze(
            platform, kind, None if kind == "platform" else name, values["reason"], caller.actor
        )
    except NotFound:
        errors = {"name": "Introuvable : vérifiez l'adresse ou le numéro."}
        return _freezes_page(request, caller, platform, 422, values=values, errors=errors)
    except InvalidInput:
        errors = {"reason": "Dites pourquoi, en 1 à 500 caractères."}
        return _freezes_page(request, caller, platform, 422, values=values, errors=errors)
    except Conflict as exc:
        return _freezes_page(request, caller, platform, 409, values=values, problem=problem_of(exc))
    return RedirectResponse("/ops/?ok=gel", status_code=303)


@router.post(
    "/degel",
    summary="Roles: operator, security (second factor within 10 minutes). Lift a freeze.",
)
def unfreeze(request: Request, caller: Staff, form: FormDep, platform: PlatformDep) -> Response:
    kind = text(form, "unfreeze_kind", 12)
    values = {"unfreeze_kind": kind, "unfreeze_name": text(form, "unfreeze_name", 254)}
    if not fresh(caller):
        return _freezes_page(request, caller, platform, 403, values=values)
    if kind not in KINDS:
        errors = {"unfreeze_kind": "Choisissez ce qu'il faut dégeler."}
        return _freezes_page(request, caller, platform, 422, values=values, errors=errors)
    name = values["unfreeze_name"].strip() or None
    try:
        containment.unfreeze(platform, kind, None if kind == "platform" else name, caller.actor)
    except NotFound:
        errors = {"unfreeze_name": "Introuvable, ou pas gelé."}
        return _freezes_page(request, caller, platform, 422, values=values, errors=errors)
    return RedirectResponse("/ops/?ok=degel", status_code=303)


@router.get("/integrite", summary="Roles: operator, security. Integrity and ledger verification.")
def integrity_page(request: Request, caller: Staff) -> Response:
    return render(request, "ops_integrity.html", {"report": None})


@router.post(
    "/integrite",
    summary="Roles: operator, security. Verify every business row and the ledger now.",
)
def verify(request: Request, caller: Staff, platform: PlatformDep) -> Response:
    try:
        report = verify_integrity(platform)
    except Error as exc:
        return render(
            request,
            "ops_integrity.html",
            {"report": None, "problem": problem_of(exc)},
            status=exc.status,
        )
    return render(request, "ops_integrity.html", {"report": report})


@router.get("/cles", summary="Roles: operator, security. Data keys and rows per key version.")
def keys_page(request: Request, caller: Staff, platform: PlatformDep) -> Response:
    return render(request, "ops_keys.html", {"scopes": queries.key_status(platform)})
