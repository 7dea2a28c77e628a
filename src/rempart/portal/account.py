"""Signing in, for everyone: enrolment, password then second factor, step-up, logout, and the
notice of logins from new devices with its "Ce n'était pas moi"."""

from __future__ import annotations

import contextlib
import re
from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from rempart.db import utcnow
from rempart.errors import Conflict, Forbidden, InvalidInput
from rempart.identity import auth, enrolment
from rempart.identity.deps import ClientDep, PlatformDep
from rempart.identity.models import ROLES
from rempart.incidents import containment
from rempart.platform import Platform
from rempart.portal.rendering import HOMES, render
from rempart.portal.security import (
    MFA,
    NOTICE,
    SESSION,
    Anonymous,
    FormDep,
    clear_cookie,
    page,
    read_cookie,
    set_cookie,
    text,
)

router = APIRouter(include_in_schema=False)
Person = Annotated[auth.Principal, Depends(page(*ROLES))]
NOT_ME = "signalé par la personne"
# Why the sign-in page is shown: a code in the address, never a name or an e-mail address.
REASONS = {
    "expiree": "Votre session a expiré ou a été fermée : reconnectez-vous.",
    "deconnexion": "Vous êtes déconnecté·e.",
    "active": "Votre compte est activé : connectez-vous avec votre mot de passe, puis un code "
    "de votre application.",
}
MAX_PASSWORD = 1024  # as the API's schema: beyond, refused without hashing (no CPU exhaustion)
_RETURN = re.compile(r"/(pro|amc|ops)/[a-z0-9/-]*|/compte/securite")


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/", summary="Anyone. The entrance: your portal when signed in, else the sign-in.")
def entrance(request: Request, platform: PlatformDep) -> Response:
    token = read_cookie(request, SESSION)
    if token:
        try:
            return _see_other(HOMES[auth.authenticate(platform, token).role])
        except auth.AuthenticationFailed:
            pass
    return _see_other("/login")


@router.get("/login", dependencies=[Anonymous], summary="Anyone. Sign in: e-mail and password.")
def login_page(request: Request, raison: str | None = None) -> Response:
    return render(request, "login.html", {"message": REASONS.get(raison or "")})


@router.post("/login", dependencies=[Anonymous], summary="Anyone. Check the password.")
def login(request: Request, form: FormDep, platform: PlatformDep, client: ClientDep) -> Response:
    email, password = text(form, "email", 254), form.get("password")
    values = {"email": email}
    refused = {
        "problem": "Adresse ou mot de passe refusés, ou compte verrouillé.",
        "values": values,
    }
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD:
        return render(request, "login.html", refused, status=401)
    try:
        challenge = auth.login(platform, email, password, client)
    except auth.AuthenticationFailed:
        return render(request, "login.html", refused, status=401)
    response = _see_other("/login/code")
    set_cookie(response, request, MFA, challenge.mfa_token, platform.settings.mfa_minutes * 60)
    return response


@router.get(
    "/login/code", dependencies=[Anonymous], summary="Anyone holding a login. The second factor."
)
def code_page(request: Request) -> Response:
    if not read_cookie(request, MFA):
        return _see_other("/login")
    return render(request, "login_code.html")


@router.post(
    "/login/code", dependencies=[Anonymous], summary="Anyone holding a login. Give a TOTP code."
)
def code(request: Request, form: FormDep, platform: PlatformDep, client: ClientDep) -> Response:
    mfa_token = read_cookie(request, MFA)
    if not mfa_token:
        return _see_other("/login")
    try:
        granted = auth.complete_totp(platform, mfa_token, text(form, "code", 20).strip(), client)
    except auth.AuthenticationFailed:
        problem = (
            "Code refusé. Vérifiez l'heure de votre téléphone ; après cinq erreurs, "
            "recommencez depuis le mot de passe."
        )
        return render(request, "login_code.html", {"problem": problem}, status=401)
    principal = auth.authenticate(platform, granted.access_token)
    response = _see_other(HOMES[principal.role])
    keep_session(request, response, platform, principal, granted.access_token)
    return response


def keep_session(
    request: Request, response: Response, platform: Platform, principal: auth.Principal, token: str
) -> None:
    """The second factor passed (a code or a security key): the session's cookie replaces the
    login's, and the notice of logins from new devices is due if there are any."""
    # A browser-session cookie: closing the browser forgets it (a shared counter PC); the
    # server ends the session anyway after 30 idle minutes or 12 hours.
    set_cookie(response, request, SESSION, token)
    clear_cookie(response, request, MFA)
    if enrolment.logins_from_new_devices(platform, principal):
        set_cookie(response, request, NOTICE, "1")


@router.post("/logout", summary="Roles: every role. End the session now.")
def logout(request: Request, caller: Person, platform: PlatformDep) -> Response:
    auth.logout(platform, caller)
    response = _see_other("/login?raison=deconnexion")
    clear_cookie(response, request, SESSION)
    clear_cookie(response, request, NOTICE)
    return response


# Enrolment ---------------------------------------------------------------------------------------


@router.get("/enrol", dependencies=[Anonymous], summary="Anyone. Enrol: the code you were given.")
def enrol_page(request: Request) -> Response:
    return render(request, "enrol.html")


def _enrol_step_two(
    request: Request, started: enrolment.Enrolment, code: str, **context: object
) -> Response:
    qr = segno.make(started.totp_uri, error="m")
    secret = started.totp_secret
    return render(
        request,
        "enrol_factors.html",
        {
            "code": code,
            "email": started.email,
            "secret": secret,
            "secret_groups": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "qr": qr.svg_data_uri(scale=5, border=2, dark="#000", light="#fff"),
            **context,
        },
        status=422 if context.get("errors") else 200,
    )


@router.post("/enrol", dependencies=[Anonymous], summary="Anyone. Check an enrolment code.")
def enrol(request: Request, form: FormDep, platform: PlatformDep) -> Response:
    code = text(form, "code", 100).strip()
    try:
        started = enrolment.start_enrolment(platform, code)
    except InvalidInput:
        errors = {"code": "Ce code n'est pas valable, a déjà servi ou a expiré."}
        return render(request, "enrol.html", {"errors": errors}, status=422)
    return _enrol_step_two(request, started, code)


@router.post(
    "/enrol/finaliser",
    dependencies=[Anonymous],
    summary="Anyone. Enrol: password, then the first code of the authenticator app.",
)
def enrol_finish(
    request: Request, form: FormDep, platform: PlatformDep, client: ClientDep
) -> Response:
    code, secret = text(form, "code", 100).strip(), text(form, "secret", 64)
    password, again = form.get("password"), form.get("password2")
    try:
        started = enrolment.start_enrolment(platform, code, secret)
    except InvalidInput:
        errors = {"code": "Ce code n'est pas valable, a déjà servi ou a expiré."}
        return render(request, "enrol.html", {"errors": errors}, status=422)
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        password = ""
    if password != again:
        errors = {"password2": "Les deux mots de passe ne sont pas identiques."}
        return _enrol_step_two(request, started, code, errors=errors)
    try:
        enrolment.complete_enrolment(
            platform, code, password, started.totp_secret, text(form, "totp", 20), client
        )
    except InvalidInput as exc:
        if exc.field == "password":
            errors = {"password": f"Mot de passe refusé : {PASSWORD_REASONS.get(exc.detail, '')}"}
        else:
            errors = {
                "totp": "Ce code ne correspond pas : saisissez celui que l'application "
                "affiche maintenant."
            }
        return _enrol_step_two(request, started, code, errors=errors)
    return _see_other("/login?raison=active")


# The password policy's reasons (identity.password_rules), said in French.
PASSWORD_REASONS = {
    "must be at least 12 characters long": "il faut au moins 12 caractères.",
    "is one of the most common passwords; choose another": "il est trop courant.",
    "is a repeated or sequential run of characters": "c'est une suite de caractères.",
    "is a short pattern repeated; choose something longer and less regular": (
        "c'est un motif répété."
    ),
    "must not contain the service's name or your e-mail name": (
        "il contient le nom du service ou de votre adresse."
    ),
}


# The person's own account ------------------------------------------------------------------------


@router.post(
    "/compte/confirmer",
    summary="Roles: every role. Give a code again (step-up) before a sensitive change.",
)
def step_up(
    request: Request, caller: Person, form: FormDep, platform: PlatformDep, client: ClientDep
) -> Response:
    back = back_to(text(form, "retour", 100), caller)
    try:
        enrolment.confirm_second_factor(platform, caller, text(form, "code", 20), client)
    except InvalidInput:
        problem = "Code refusé : saisissez celui que votre application affiche maintenant."
        return render(request, "step_up.html", {"problem": problem, "back": back}, status=422)
    return _see_other(back)


@router.post("/compte/appareils/reconnus", summary="Roles: every role. Those logins were mine.")
def devices_known(request: Request, caller: Person) -> Response:
    response = _see_other(HOMES[caller.role])
    clear_cookie(response, request, NOTICE)
    return response


@router.post(
    "/compte/pas-moi",
    summary="Roles: every role. A login was not mine: freeze my account and end its sessions.",
)
def not_me(request: Request, caller: Person, platform: PlatformDep) -> Response:
    email = enrolment.own_email(platform, caller)
    with contextlib.suppress(Conflict):  # frozen meanwhile: the outcome the person asked for
        containment.freeze(platform, "account", email, NOT_ME, caller.actor)
    request.state.principal = None
    response = render(request, "frozen.html", {"notice": []})
    clear_cookie(response, request, SESSION)
    clear_cookie(response, request, NOTICE)
    return response


def back_to(back: str, caller: auth.Principal) -> str:
    """Where a step-up returns: a page of the portals, never another site; else home."""
    return back if _RETURN.fullmatch(back) else HOMES[caller.role]


def fresh(principal: auth.Principal) -> bool:
    """Whether the session's second factor is recent enough for a sensitive change (else the
    page asks for a code again, ``/compte/confirmer``)."""
    try:
        auth.recent_person(principal, utcnow())
    except Forbidden:
        return False
    return True
