"""Guard alerts and incident response in the consoles: the detection's alerts with their
evidence (/ops/alertes), scoping an incident and preparing its notification packs
(/ops/incidents), and each insurer's incident notices with its pack (/amc/incidents).

Scopes and packs are the CLI's (``rempart incident scope|notify``), run in the request: a scope
goes into a new folder under the platform's home, named by a random id, the only thing an address
holds. Preparing the packs reads the identities of the people concerned: it needs a recent second
factor, and ``notify`` records each read. An insurer's download of its pack is recorded too, by
the service, once per person the file names.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import FileResponse, RedirectResponse, Response

from rempart.dates import PARIS
from rempart.db import utcnow
from rempart.errors import Error, InvalidInput
from rempart.guard.detection import AlertView, latest_alerts
from rempart.identity.auth import Principal
from rempart.identity.deps import ClientDep, PlatformDep
from rempart.incidents import console
from rempart.incidents.scope import UnknownName
from rempart.platform import Platform
from rempart.portal.account import fresh
from rempart.portal.rendering import problem_of, render
from rempart.portal.security import FormDep, insurer_of, page, text

router = APIRouter(include_in_schema=False)
Staff = Annotated[Principal, Depends(page("operator", "security"))]
Insurer = Annotated[Principal, Depends(page("amc"))]

# Alerts ------------------------------------------------------------------------------------------

PERIODS = {
    "24h": ("24 dernières heures", 1),
    "7j": ("7 derniers jours", 7),
    "30j": ("30 derniers jours", 30),
}
ALERTS_SHOWN = 500
SIGNAL_NAMES = {
    "burst": "Rafale : patients différents en quelques minutes",
    "day": "Patients différents aujourd'hui (ce compte)",
    "professional-day": "Patients différents aujourd'hui (tout le cabinet)",
    "misses": "Part de cartes inconnues aujourd'hui",
    "neighbours": "Numéros d'adhérents voisins (énumération)",
    "persistence": "Refus ignorés (la même demande reprise)",
    "unbilled": "Droits vérifiés jamais facturés",
}
CONTEXT_NAMES = {
    "new-network": "réseau jamais vu",
    "new-device": "appareil jamais vu",
    "odd-hour": "heure inhabituelle",
    "crowded-network": "réseau partagé par de nombreux cabinets",
}
RESPONSE_NAMES = {
    "allow": "Laissé passer (second facteur récent)",
    "step-up": "Second facteur redemandé",
    "throttle": "Ralenti",
    "freeze": "Compte gelé",
    "alert": "Alerte seulement",
}

MEASURE_NAMES = {
    "burst": "Patients différents, fenêtre glissante",
    "day": "Patients différents aujourd'hui (compte)",
    "professional_day": "Patients différents aujourd'hui (cabinet)",
    "misses": "Cartes inconnues aujourd'hui",
    "neighbours": "Numéros voisins aujourd'hui",
    "crowd": "Cabinets vus sur ce réseau aujourd'hui",
    "refusals": "Refus dans l'heure",
    "hour": "Heure de Paris",
}
ALLOWANCE_NAMES = {
    "burst": "Seuil de rafale",
    "burst_freeze": "Seuil de gel en rafale",
    "day": "Seuil du jour (compte)",
    "practice_day": "Seuil du jour (cabinet)",
}
NIGHTLY_NAMES = {
    "day": "Jour examiné",
    "open_checks": "Vérifications aux droits ouverts",
    "billed": "Suivies d'une facture",
}


def figure(value: object) -> str:
    """A measure or a bound in French: 12 → "12", 0.5 → "0,5", 12.25 → "12,25"."""
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".").replace(".", ",")
    return str(value)


def measures_of(alert: AlertView) -> list[tuple[str, str]]:
    """The figures behind an alert's decision, labelled: the measures and the allowances they
    were held to (the nightly alerts have the day's counts instead)."""
    evidence = alert.evidence
    found = [
        (label, figure(evidence["measure"][key]))
        for key, label in MEASURE_NAMES.items()
        if key in evidence.get("measure", {})
    ]
    found += [
        (label, figure(evidence["allowances"][key]))
        for key, label in ALLOWANCE_NAMES.items()
        if key in evidence.get("allowances", {})
    ]
    found += [
        (label, figure(evidence[key])) for key, label in NIGHTLY_NAMES.items() if key in evidence
    ]
    return found


@router.get(
    "/ops/alertes",
    summary="Roles: operator, security. The guard's alerts with their evidence, newest first.",
)
def alerts_page(
    request: Request, caller: Staff, platform: PlatformDep, periode: str = "24h"
) -> Response:
    chosen = periode if periode in PERIODS else "24h"
    since = utcnow() - timedelta(days=PERIODS[chosen][1])
    alerts = latest_alerts(platform.sessions, since, ALERTS_SHOWN + 1)
    context = {
        "alerts": alerts[:ALERTS_SHOWN],
        "more": len(alerts) > ALERTS_SHOWN,
        "periods": [(code, label) for code, (label, _) in PERIODS.items()],
        "period": chosen,
        "period_name": PERIODS[chosen][0],
        "signal_names": SIGNAL_NAMES,
        "context_names": CONTEXT_NAMES,
        "response_names": RESPONSE_NAMES,
        "fresh": fresh(caller),
        "figure": figure,
        "measures_of": measures_of,
    }
    return render(request, "ops_alerts.html", context)


# Scoping and notification ------------------------------------------------------------------------

LIST_LIMIT = 100  # names per field of the scope form
LIST_SPLIT = re.compile(r"[\s,;]+")
SCOPE_OK = {
    "perimetre": "Périmètre établi : il est enregistré avec les autres.",
    "notifications": "Notifications préparées : chaque organisme les trouve dans son espace.",
}


def _names(form: FormData, name: str) -> list[str]:
    return [n for n in LIST_SPLIT.split(text(form, name, 20_000)) if n][:LIST_LIMIT]


class ChangeHour(ValueError):
    """A Paris wall time that the clock change skips (spring) or shows twice (autumn)."""


def _paris_time(value: str) -> datetime:
    """A ``datetime-local`` field: Paris time, unless it says otherwise. A time of the change
    hour is refused rather than guessed: it names no instant, or two."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        return moment
    local = moment.replace(tzinfo=PARIS)
    if _in_change_hour(local):
        raise ChangeHour(value)
    return local


def _in_change_hour(local: datetime) -> bool:
    """A Paris wall time in the gap (spring) or the repeat (autumn) of a clock change."""
    return local.utcoffset() != local.replace(fold=1).utcoffset()


def _window(values: dict[str, str]) -> tuple[dict[str, datetime], dict[str, str]]:
    """The period's two ends, or what is wrong with each, on its field."""
    window: dict[str, datetime] = {}
    errors: dict[str, str] = {}
    for name, label in (("du", "le début"), ("au", "la fin")):
        try:
            window[name] = _paris_time(values[name])
        except ChangeHour:
            errors[name] = (
                "Cette heure tombe dans le changement d'heure (elle n'existe pas ou existe "
                f"deux fois) : indiquez pour {label} de la période une heure hors de ce moment."
            )
        except ValueError:
            errors[name] = f"Indiquez {label} de la période (date et heure)."
    return window, errors


def default_window(now: datetime) -> dict[str, str]:
    """The form's first period: the last day, to the minute after ``now``. An end in a clock
    change's hour, which the form would refuse, moves out of it an hour at a time: the period
    grows."""
    end = now.astimezone(PARIS).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(days=1)  # wall-clock arithmetic: the same time yesterday
    while _in_change_hour(start):
        start -= timedelta(hours=1)
    while _in_change_hour(end):
        end += timedelta(hours=1)
    return {"du": f"{start:%Y-%m-%dT%H:%M}", "au": f"{end:%Y-%m-%dT%H:%M}"}


def _scopes_page(
    request: Request, platform: Platform, status: int = 200, **context: Any
) -> Response:
    values = default_window(utcnow()) | context.pop("values", {})
    return render(
        request,
        "ops_incidents.html",
        {"scopes": console.scopes(platform), "values": values, **context},
        status=status,
    )


@router.get(
    "/ops/incidents",
    summary="Roles: operator, security. Scope an incident; the scopes run so far.",
)
def scopes_page(request: Request, caller: Staff, platform: PlatformDep) -> Response:
    return _scopes_page(request, platform)


UNKNOWN_NAMES = {  # a name that matches nothing, by criterion
    "professional": {"professionnels": "Un de ces n° AM n'est celui d'aucun professionnel."},
    "account": {"comptes": "Un de ces comptes n'existe pas : vérifiez les adresses."},
}
INVALID_CRITERIA = {  # criteria refused as written, by field
    "from": {"au": "La fin de la période doit venir après son début."},
    "criteria": {"comptes": "Nommez au moins un compte, un professionnel ou une adresse IP."},
    "ip": {"adresses": "Une adresse IP ou un bloc CIDR par ligne (IPv4 ou IPv6)."},
    "account": {"comptes": "Un compte s'écrit par son adresse e-mail ou son identifiant."},
}


def _criteria_errors(exc: InvalidInput | UnknownName) -> dict[str, str]:
    """The service's refusal as the form's fields, by the field it names (its words never
    repeat what was typed)."""
    found = UNKNOWN_NAMES if isinstance(exc, UnknownName) else INVALID_CRITERIA
    return found.get(exc.field or "", {"formulaire": "Critères refusés."})


@router.post(
    "/ops/incidents",
    summary="Roles: operator, security. Scope an incident: the people read, per insurer.",
)
def run_scope(request: Request, caller: Staff, form: FormDep, platform: PlatformDep) -> Response:
    values = {
        name: text(form, name, 20_000)
        for name in ("du", "au", "comptes", "professionnels", "adresses")
    }
    window, errors = _window(values)
    if errors:
        return _scopes_page(request, platform, 422, values=values, errors=errors)
    try:
        found = console.run_scope(
            platform,
            window["du"],
            window["au"],
            _names(form, "comptes"),
            _names(form, "professionnels"),
            _names(form, "adresses"),
        )
    except (InvalidInput, UnknownName) as exc:
        errors = _criteria_errors(exc)
        return _scopes_page(request, platform, 422, values=values, errors=errors)
    return RedirectResponse(f"/ops/incidents/{found.id.hex}?ok=perimetre", status_code=303)


def _scope_page(
    request: Request,
    caller: Principal,
    platform: Platform,
    scope_id: uuid.UUID,
    status: int = 200,
    **context: Any,
) -> Response:
    found = console.scope_view(platform, scope_id)
    return render(
        request,
        "ops_incident.html",
        {"scope": found, "fresh": fresh(caller), **context},
        status=status,
    )


@router.get(
    "/ops/incidents/{scope_id}",
    summary="Roles: operator, security. A scope: the verification, the counts per insurer, "
    "its notification packs.",
)
def scope_page(
    request: Request,
    scope_id: uuid.UUID,
    caller: Staff,
    platform: PlatformDep,
    ok: str | None = None,
) -> Response:
    return _scope_page(request, caller, platform, scope_id, message=SCOPE_OK.get(ok or ""))


@router.post(
    "/ops/incidents/{scope_id}/notifications",
    summary="Roles: operator, security (second factor within 10 minutes). Prepare the "
    "notification packs: reads the identities of the people concerned.",
)
def prepare(
    request: Request,
    scope_id: uuid.UUID,
    caller: Staff,
    form: FormDep,
    platform: PlatformDep,
) -> Response:
    contact = text(form, "contact", 200).strip()
    if not fresh(caller):
        return _scope_page(request, caller, platform, scope_id, 403, values={"contact": contact})
    try:
        console.prepare_notifications(platform, scope_id, caller.actor, contact)
    except Error as exc:  # a refused scope, packs already prepared (a missing scope: 404)
        return _scope_page(
            request,
            caller,
            platform,
            scope_id,
            exc.status,
            values={"contact": contact},
            problem=problem_of(exc),
        )
    return RedirectResponse(f"/ops/incidents/{scope_id.hex}?ok=notifications", status_code=303)


# The insurer's notices ---------------------------------------------------------------------------


@router.get(
    "/amc/incidents",
    summary="Roles: amc. Incident notices about your members, and their notification packs.",
)
def notices_page(request: Request, caller: Insurer, platform: PlatformDep) -> Response:
    packs = console.packs_for(platform, insurer_of(caller))
    return render(request, "amc_incidents.html", {"packs": packs})


@router.get(
    "/amc/incidents/{scope_id}/{document}",
    summary="Roles: amc. A file of your notification pack (each download is recorded).",
)
def pack_file(
    request: Request,
    scope_id: uuid.UUID,
    document: str,
    caller: Insurer,
    platform: PlatformDep,
    client: ClientDep,
) -> Response:
    # On the record (one event per person the file names) before a byte leaves.
    path, wanted = console.pack_document(
        platform, caller.actor, insurer_of(caller), client, scope_id, document
    )
    return FileResponse(path, media_type=wanted.media_type, filename=wanted.name)
