"""Pages: the Jinja2 environment, the menu of each portal, French formats, and the answer.

Templates are autoescaped and hold no script and no style attribute (the Content-Security-Policy
allows neither); htmx, when present, only swaps the server's own HTML into the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError
from starlette.responses import HTMLResponse

from rempart.dates import PARIS
from rempart.errors import Error, IntegrityFailure, RateLimited
from rempart.identity import enrolment
from rempart.identity.auth import Principal
from rempart.portal.security import NOTICE, FormRefused, read_cookie, remember_new_cookies
from rempart.registry.plan_format import format_money

# htmx (2.x) configured for the CSP and for personal data: no eval, no script from swapped
# HTML, no <style> injected, no copy of pages in localStorage (history cache), requests to this
# origin only; 4xx answers that are pages (a form with its errors) are swapped like 2xx.
HTMX_CONFIG = {
    "allowEval": False,
    "allowScriptTags": False,
    "includeIndicatorStyles": False,
    "historyEnabled": False,
    "historyCacheSize": 0,
    "refreshOnHistoryMiss": True,
    "selfRequestsOnly": True,
    "responseHandling": [
        {"code": "204", "swap": False},
        {"code": "[23]..", "swap": True},
        {"code": "(403|404|409|422|429|503)", "swap": True, "error": False},
        {"code": "...", "swap": False, "error": True},
    ],
}


@dataclass(frozen=True)
class MenuItem:
    label: str
    href: str


PORTALS: dict[str, tuple[str, tuple[MenuItem, ...]]] = {
    "professional": (
        "Espace professionnel de santé",
        (
            MenuItem("Droits", "/pro/"),
            MenuItem("Calcul", "/pro/calcul"),
            MenuItem("Accords préalables", "/pro/accords"),
            MenuItem("Factures", "/pro/factures"),
            MenuItem("Paiements", "/pro/paiements"),
            MenuItem("Logiciels", "/pro/logiciels"),
            MenuItem("Coordonnées bancaires", "/pro/banque"),
        ),
    ),
    "amc": (
        "Espace organisme complémentaire",
        (
            MenuItem("Fichiers d'adhérents", "/amc/"),
            MenuItem("Garanties", "/amc/garanties"),
            MenuItem("Accès aux données", "/amc/acces"),
            MenuItem("Bénéficiaires", "/amc/beneficiaires"),
            MenuItem("Factures", "/amc/factures"),
            MenuItem("Relevés", "/amc/releves"),
            MenuItem("Incidents", "/amc/incidents"),
        ),
    ),
    "operator": (
        "Console d'exploitation",
        (
            MenuItem("Gels", "/ops/"),
            MenuItem("Intégrité", "/ops/integrite"),
            MenuItem("Clés", "/ops/cles"),
            MenuItem("Alertes", "/ops/alertes"),
            MenuItem("Incidents", "/ops/incidents"),
            MenuItem("Paiements", "/ops/paiements"),
        ),
    ),
}
# Security has the operator's console but not its payment runs (the API's /payment-runs too).
PORTALS["security"] = (
    "Console de sécurité",
    tuple(item for item in PORTALS["operator"][1] if item.href != "/ops/paiements"),
)
HOMES = {"professional": "/pro/", "amc": "/amc/", "operator": "/ops/", "security": "/ops/"}
ROLE_NAMES = {
    "professional": "professionnel de santé",
    "amc": "organisme complémentaire",
    "operator": "exploitation",
    "security": "sécurité",
}


def euros(cents: int | None) -> str:
    """12345 → "123,45 €" (a narrow no-break space before the sign, as French typography has)."""
    if cents is None:
        return ""
    return format_money(cents).replace(".", ",") + "\u202f€"


def day(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


def moment(value: datetime | None) -> str:
    return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M:%S") if value else ""


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("rempart.portal", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(euros=euros, day=day, moment=moment)
    env.globals.update(
        htmx_config=json.dumps(HTMX_CONFIG, separators=(",", ":")),
        domain_names=DOMAIN_NAMES,
        reject_names=REJECT_NAMES,
        invoice_statuses=INVOICE_STATUSES,
        tag_names=TAG_NAMES,
    )
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    """A full page (htmx picks the part it swaps); the principal and form token come from the
    page's dependency."""
    principal: Principal | None = getattr(request.state, "principal", None)
    anonymous = ("Opérateur de tiers payant", ())
    portal, menu = PORTALS.get(principal.role, anonymous) if principal else anonymous
    values: dict[str, Any] = {
        "principal": principal,
        "role_name": ROLE_NAMES.get(principal.role, "") if principal else "",
        "portal_name": portal,
        "menu": menu,
        "path": request.url.path,
        "csrf": getattr(request.state, "csrf", ""),
        "errors": {},
        "values": {},
        "message": None,
        "problem": None,
    }
    values.update(context or {})
    if "notice" not in values:
        values["notice"] = _notice(request, principal)
    html = request.app.state.portal_templates.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    remember_new_cookies(request, response)
    return response


def _notice(request: Request, principal: Principal | None) -> list[enrolment.DeviceLogin]:
    """Logins from new devices to show, while the sign-in left the notice cookie."""
    if principal is None or not read_cookie(request, NOTICE):
        return []
    return enrolment.logins_from_new_devices(request.app.state.platform, principal)


# Messages of form fields, in French: what a field must be, never what was typed.
FIELD_MESSAGES = {
    "amc_number": "Le numéro d'organisme (AMC) compte 1 à 10 lettres ou chiffres.",
    "member_number": "Le numéro d'adhérent compte 1 à 20 lettres ou chiffres.",
    "birth_date": "Indiquez la date de naissance (jj/mm/aaaa).",
    "birth_rank": "Le rang de naissance est un chiffre de 1 à 9 (les jumeaux ont 1 et 2).",
    "domain": "Choisissez un domaine de soins.",
    "care_date": "Indiquez la date des soins (jj/mm/aaaa).",
    "act_code": "Indiquez le code de l'acte (1 à 10 caractères).",
    "quantity": "La quantité est un nombre entier de 1 à 9999.",
    "billed": "Le montant facturé s'écrit en euros, par exemple 30,00.",
    "br": "La base de remboursement s'écrit en euros, par exemple 30,00.",
    "amo_rate": "Le taux AMO est un pourcentage entier de 0 à 100.",
    "engagement": "Le numéro d'engagement compte au plus 40 caractères.",
    "lines": "Saisissez au moins une ligne complète.",
    "invoice_number": "Le numéro de facture compte 1 à 30 lettres, chiffres ou . _ / - "
    "(il commence par une lettre ou un chiffre).",
    "prior_agreement": "La référence d'accord préalable compte au plus 40 caractères (PA…).",
    "amo_paid": "La part AMO versée s'écrit en euros, par exemple 0,03.",
    "price_limit": "Le prix limite de vente s'écrit en euros, par exemple 950,00.",
    "item_type": "Choisissez un type d'article dans la liste.",
    "basket": "Choisissez oui ou non.",
}


def field_errors(exc: ValidationError, lines_at: list[int] | None = None) -> dict[str, str]:
    """Pydantic's errors as {field id: French message}; ``lines.0.billed`` → ``lines-0-billed``,
    the line's number being its row in the form (``lines_at``: the rows that were sent)."""
    found: dict[str, str] = {}
    for error in exc.errors():
        location = list(error["loc"])
        if lines_at and location[:1] == ["lines"] and len(location) > 1:
            location[1] = lines_at[int(location[1])]
        name = "-".join(str(part) for part in location) or "formulaire"
        found.setdefault(name, FIELD_MESSAGES.get(str(location[-1]), "Valeur non valide."))
    return found


@dataclass(frozen=True)
class Problem:
    """What went wrong, in French; ``detail`` is the service's own words (English), if any."""

    text: str
    detail: str | None = None


def problem_of(exc: Error) -> Problem:
    if isinstance(exc, FormRefused):
        return Problem(
            "Ce formulaire a expiré ou ne vient pas de ce site : rechargez la page, puis "
            "recommencez."
        )
    if isinstance(exc, IntegrityFailure):  # names tables and rows: for the operator's logs
        return Problem(
            "Les données n'ont pas passé un contrôle d'intégrité : l'exploitant en est averti."
        )
    if isinstance(exc, RateLimited):
        minutes = max(1, -(-exc.retry_after // 60))
        return Problem(
            "Trop de patients différents consultés en peu de temps : réessayez dans "
            f"{minutes} min. Ces limites protègent les assurés contre un compte volé."
        )
    texts = {
        403: "Refusé : cette opération n'est pas ouverte à votre compte.",
        404: "Introuvable : cet élément n'existe pas, ou pas pour vous.",
        409: "Impossible dans l'état actuel.",
        422: "Donnée refusée.",
        503: "Service suspendu par l'exploitant : réessayez plus tard.",
    }
    return Problem(texts.get(exc.status, "L'opération a échoué."), exc.detail)


DOMAIN_NAMES = {
    "PHAR": "Pharmacie",
    "MED": "Consultations et actes médicaux",
    "LABO": "Biologie",
    "RADL": "Imagerie",
    "AUXM": "Auxiliaires médicaux",
    "DESO": "Soins dentaires",
    "DEPR": "Prothèses dentaires",
    "DEOR": "Orthodontie",
    "OPTI": "Optique",
    "AUDI": "Audioprothèses",
    "HOSP": "Hospitalisation",
    "TRAN": "Transport",
}
TAG_NAMES = {
    "beneficiary:rights:read": "Vérification de droits",
    "beneficiary:identity:read": "Lecture d'identité",
    "beneficiary:prior-agreement:create": "Accord préalable",
    "beneficiary:prior-agreement:read": "Lecture d'accord préalable",
    "beneficiary:prior-agreement:cancel": "Annulation d'accord préalable",
    "beneficiary:claim:read": "Lecture de facture",
    "beneficiary:record:read": "Consultation du dossier par l'organisme",
    "beneficiary:calculation:read": "Calcul",
    "beneficiary:invoice:write": "Facture",
    "account:create": "Création de compte",
    "incident:notification:prepare": "Notification d'incident",
    "incident:notification:download": "Téléchargement d'un dossier de notification",
}
INVOICE_STATUSES = {
    "accepted": "acceptée",
    "partial": "acceptée en partie",
    "rejected": "rejetée",
    "cancelled": "annulée",
}
REJECT_NAMES = {
    "UNKNOWN_BENEFICIARY": "bénéficiaire inconnu",
    "RIGHTS_CLOSED": "droits fermés",
    "DOMAIN_NOT_COVERED": "domaine non couvert",
    "NOT_COVERED": "non pris en charge",
    "PRIOR_AGREEMENT_REQUIRED": "accord préalable nécessaire",
    "PRIOR_AGREEMENT_INVALID": "accord préalable non valable",
    "CEILING_REACHED": "plafond atteint",
    "RENEWAL_TOO_SOON": "renouvellement trop tôt",
    "DUPLICATE": "doublon",
    "PRICE_ABOVE_LIMIT": "prix au-dessus du prix limite",
    "PROFESSIONAL_NOT_CONTRACTED": "professionnel non conventionné",
    "ENGAGEMENT_INVALID": "engagement non valable",
    "INVALID_LINE": "ligne non valable",
}
