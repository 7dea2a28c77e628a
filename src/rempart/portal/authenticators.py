"""Security keys (WebAuthn) in the portals: enrol with one in place of the app, register one from
the account's page, remove one, sign in and confirm a session (step-up) with one in place of the
app's code.

The ceremonies need the browser's WebAuthn API, so these pages use a script of our own
(/static/webauthn.js): it asks the server for the options, lets the browser talk to the key and
posts its answer as JSON, with the form token in the ``X-CSRF-Token`` header. Everything else
(listing, removing, the TOTP code) works without JavaScript. The checks are the identity
services', exactly as through the API: user verification, origin, rp id, single-use challenges,
the signature counter, and refusals counted toward the lockout.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from starlette.responses import JSONResponse, RedirectResponse, Response

from rempart.errors import Conflict, Error, InvalidInput
from rempart.identity import auth, enrolment, webauthn
from rempart.identity.deps import ClientDep, PlatformDep
from rempart.identity.models import ROLES
from rempart.identity.schemas import AssertionCredential, RegistrationCredential, Strict
from rempart.portal.account import (
    MAX_PASSWORD,
    PASSWORD_REASONS,
    back_to,
    fresh,
    keep_session,
)
from rempart.portal.rendering import HOMES, problem_of, render
from rempart.portal.security import MFA, Anonymous, page, read_cookie

router = APIRouter(include_in_schema=False)
Person = Annotated[auth.Principal, Depends(page(*ROLES))]
HERE = "/compte/securite"
OK = {
    "ajout": "Clé de sécurité enregistrée : vous pouvez vous connecter avec elle.",
    "retrait": "Clé de sécurité retirée.",
}
REFUSED = "Clé refusée : réessayez, ou saisissez le code de votre application."
CODE_REFUSED = "Ce code d'activation n'est pas valable, a déjà servi ou a expiré."
KEY_REFUSED = (
    "Votre clé n'a pas été acceptée : elle doit vérifier votre identité (code ou empreinte) "
    "et répondre pour ce site, dans les 5 minutes."
)


class NewKey(Strict):
    name: str = Field(min_length=1, max_length=100)
    credential: RegistrationCredential


class KeyLogin(Strict):
    credential: AssertionCredential


class KeyStepUp(Strict):
    credential: AssertionCredential
    back: str = Field(default="", max_length=100)


class EnrolmentCode(Strict):
    code: str = Field(min_length=1, max_length=100)


class KeyEnrolment(Strict):
    code: str = Field(min_length=1, max_length=100)
    password: str = Field(max_length=MAX_PASSWORD)
    password2: str = Field(max_length=MAX_PASSWORD)
    ticket: str = Field(max_length=100)
    name: str = Field(min_length=1, max_length=100)
    credential: RegistrationCredential


def _security_page(
    request: Request, caller: auth.Principal, platform: PlatformDep, status: int = 200, **extra: Any
) -> Response:
    keys = webauthn.list_credentials(platform, caller) if fresh(caller) else []
    context = {"keys": keys, "fresh": fresh(caller), "back": HERE, **extra}
    return render(request, "account_security.html", context, status=status)


@router.get(HERE, summary="Roles: every role. The account's security keys (WebAuthn).")
def security_page(
    request: Request, caller: Person, platform: PlatformDep, ok: str | None = None
) -> Response:
    return _security_page(request, caller, platform, message=OK.get(ok or ""))


@router.post(
    "/compte/cles/options",
    summary="Roles: every role (second factor within 10 minutes). Options to register a key.",
)
def register_options(caller: Person, platform: PlatformDep) -> Response:
    try:
        return JSONResponse(webauthn.registration_options(platform, caller))
    except Error as exc:
        return _json_problem(exc)


@router.post(
    "/compte/cles",
    summary="Roles: every role (second factor within 10 minutes). Register a security key.",
)
def register(body: NewKey, caller: Person, platform: PlatformDep) -> Response:
    credential = body.credential.model_dump(exclude_none=True)
    try:
        webauthn.register(platform, caller, credential, body.name)
    except Error as exc:
        return _json_problem(exc)
    return JSONResponse({"location": f"{HERE}?ok=ajout"}, status_code=201)


@router.post(
    "/compte/cles/{key_id}/retirer",
    summary="Roles: every role (second factor within 10 minutes). Remove a security key.",
)
def remove(request: Request, key_id: uuid.UUID, caller: Person, platform: PlatformDep) -> Response:
    if not fresh(caller):
        return _security_page(request, caller, platform, 403)
    try:
        webauthn.remove(platform, caller, key_id)  # another person's: 404
    except Conflict as exc:  # the account's last second factor
        return _security_page(request, caller, platform, 409, problem=problem_of(exc))
    return RedirectResponse(f"{HERE}?ok=retrait", status_code=303)


def _json_problem(exc: Error) -> JSONResponse:
    """For the script: the French message it shows, and the status."""
    problem = problem_of(exc)
    messages = {
        403: "Confirmez d'abord votre identité avec un code de votre application.",
        409: "Cette clé est déjà enregistrée, ou vous en avez déjà le maximum.",
        422: KEY_REFUSED,
    }
    return JSONResponse({"message": messages.get(exc.status, problem.text)}, status_code=exc.status)


# Step-up with a key, in place of a code --------------------------------------------------------


@router.post(
    "/compte/confirmer/cle/options",
    summary="Roles: every role. Options to confirm the session with a security key (step-up).",
)
def step_up_options(caller: Person, platform: PlatformDep) -> Response:
    try:
        return JSONResponse(webauthn.step_up_options(platform, caller))
    except Error:
        message = "Aucune clé de sécurité sur ce compte : saisissez le code de votre application."
        return JSONResponse({"message": message}, status_code=404)


@router.post(
    "/compte/confirmer/cle",
    summary="Roles: every role. Confirm the session with a security key's answer (step-up).",
)
def step_up(body: KeyStepUp, caller: Person, platform: PlatformDep, client: ClientDep) -> Response:
    credential = body.credential.model_dump(exclude_none=True)
    try:
        webauthn.confirm_step_up(platform, caller, credential, client)
    except Error:
        return JSONResponse({"message": REFUSED}, status_code=422)
    return JSONResponse({"location": back_to(body.back, caller)})


# Enrolment with a key, in place of the app ---------------------------------------------------


@router.post(
    "/enrol/cle/options",
    dependencies=[Anonymous],
    summary="Anyone holding an enrolment code. Options to enrol a security key.",
)
def enrol_options(body: EnrolmentCode, platform: PlatformDep) -> Response:
    try:
        started = enrolment.start_key_enrolment(platform, body.code)
    except InvalidInput:
        return JSONResponse({"message": CODE_REFUSED}, status_code=422)
    return JSONResponse({"options": started.options, "ticket": started.ticket})


@router.post(
    "/enrol/cle",
    dependencies=[Anonymous],
    summary="Anyone holding an enrolment code. Enrol: the password, then a security key.",
)
def enrol(body: KeyEnrolment, platform: PlatformDep, client: ClientDep) -> Response:
    if body.password != body.password2:
        message = "Les deux mots de passe ne sont pas identiques."
        return JSONResponse({"message": message}, status_code=422)
    credential = body.credential.model_dump(exclude_none=True)
    try:
        enrolment.complete_key_enrolment(
            platform, body.code, body.password, body.ticket, credential, body.name, client
        )
    except InvalidInput as exc:
        messages = {
            "code": CODE_REFUSED,
            "password": f"Mot de passe refusé : {PASSWORD_REASONS.get(exc.detail, '')}",
            "name": "Donnez un nom à cette clé, de 1 à 100 caractères.",
        }
        return JSONResponse({"message": messages.get(exc.field or "", KEY_REFUSED)}, 422)
    except Error as exc:  # this key is already another account's
        return _json_problem(exc)
    return JSONResponse({"location": "/login?raison=active"})


# Signing in with a key, after the password -------------------------------------------------------


@router.post(
    "/login/cle/options",
    dependencies=[Anonymous],
    summary="Anyone holding a login. Options to sign in with a security key.",
)
def login_options(request: Request, platform: PlatformDep) -> Response:
    mfa_token = read_cookie(request, MFA)
    try:
        if not mfa_token:
            raise auth.AuthenticationFailed()
        return JSONResponse(webauthn.login_options(platform, mfa_token))
    except auth.AuthenticationFailed:
        # No key, an expired login or a locked account: one answer for all (no oracle).
        return JSONResponse({"message": REFUSED}, status_code=401)


@router.post(
    "/login/cle",
    dependencies=[Anonymous],
    summary="Anyone holding a login. Sign in with a security key's answer.",
)
def login(request: Request, body: KeyLogin, platform: PlatformDep, client: ClientDep) -> Response:
    mfa_token = read_cookie(request, MFA)
    credential = body.credential.model_dump(exclude_none=True)
    try:
        if not mfa_token:
            raise auth.AuthenticationFailed()
        granted = webauthn.complete_webauthn(platform, mfa_token, credential, client)
    except auth.AuthenticationFailed:
        return JSONResponse({"message": REFUSED}, status_code=401)
    principal = auth.authenticate(platform, granted.access_token)
    response = JSONResponse({"location": HOMES[principal.role]})
    keep_session(request, response, platform, principal, granted.access_token)
    return response
