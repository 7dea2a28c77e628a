"""Authentication endpoints: password, then second factor, then a session; and logout."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, status
from pydantic import Field

from rempart.identity import auth, enrolment, webauthn
from rempart.identity.deps import ClientDep, PlatformDep, allow
from rempart.identity.models import ROLES
from rempart.identity.schemas import (
    LoginRequest,
    LoginResponse,
    SessionView,
    Strict,
    TokenResponse,
    TotpRequest,
    WebAuthnAssertion,
    WebAuthnCredentialView,
    WebAuthnOptionsRequest,
    WebAuthnRegistration,
)

router = APIRouter(prefix="/api/v1/auth", tags=["authentication"])
AnyRole = Annotated[auth.Principal, Depends(allow(*ROLES))]
PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}


@router.post(
    "/login",
    summary="Anyone. Check a password: gives a token for the second factor, nothing else.",
    responses={401: PROBLEM},
)
def login(body: LoginRequest, platform: PlatformDep, client: ClientDep) -> LoginResponse:
    challenge = auth.login(platform, body.email, body.password, client)
    return LoginResponse(mfa_token=challenge.mfa_token, methods=list(challenge.methods))


class EnrolRequest(Strict):
    enrolment_code: str = Field(max_length=100, description="As `rempart users add` printed it.")
    password: str = Field(max_length=1024)
    totp_secret: str = Field(
        pattern=r"^[A-Z2-7]{32,64}$", description="A base32 secret your app drew (≥ 160 bits)."
    )
    totp_code: str = Field(pattern=r"^[0-9]{6}$", description="The secret's code now.")


@router.post(
    "/enrol",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Anyone holding an enrolment code. Set the account's password and TOTP secret.",
    responses={422: PROBLEM},
)
def enrol(body: EnrolRequest, platform: PlatformDep, client: ClientDep) -> None:
    """The code is spent; sign in afterwards. The portal's /enrol page does the same."""
    enrolment.complete_enrolment(
        platform, body.enrolment_code, body.password, body.totp_secret, body.totp_code, client
    )


@router.post(
    "/mfa/totp",
    summary="Anyone holding a login token. Give a TOTP code: gives the session token.",
    responses={401: PROBLEM},
)
def mfa_totp(body: TotpRequest, platform: PlatformDep, client: ClientDep) -> TokenResponse:
    granted = auth.complete_totp(platform, body.mfa_token, body.code, client)
    return TokenResponse(access_token=granted.access_token, expires_in=granted.expires_in)


@router.post(
    "/mfa/webauthn/options",
    summary="Anyone holding a login token. WebAuthn request options for the second factor.",
    responses={401: PROBLEM},
)
def mfa_webauthn_options(body: WebAuthnOptionsRequest, platform: PlatformDep) -> dict[str, Any]:
    return webauthn.login_options(platform, body.mfa_token)


@router.post(
    "/mfa/webauthn/verify",
    summary="Anyone holding a login token. Give a WebAuthn assertion: gives the session token.",
    responses={401: PROBLEM},
)
def mfa_webauthn_verify(
    body: WebAuthnAssertion, platform: PlatformDep, client: ClientDep
) -> TokenResponse:
    credential = body.credential.model_dump(exclude_none=True)
    granted = webauthn.complete_webauthn(platform, body.mfa_token, credential, client)
    return TokenResponse(access_token=granted.access_token, expires_in=granted.expires_in)


RECENT_PERSON = "a person's session, second factor within 10 minutes"


@router.post(
    "/webauthn/register/options",
    summary=f"Roles: every role ({RECENT_PERSON}). Options to register a WebAuthn authenticator.",
    responses={401: PROBLEM, 403: PROBLEM, 409: PROBLEM},
)
def webauthn_register_options(caller: AnyRole, platform: PlatformDep) -> dict[str, Any]:
    return webauthn.registration_options(platform, caller)


@router.post(
    "/webauthn/register/verify",
    status_code=status.HTTP_201_CREATED,
    summary=f"Roles: every role ({RECENT_PERSON}). Keep the authenticator the browser created.",
    responses={401: PROBLEM, 403: PROBLEM, 409: PROBLEM, 422: PROBLEM},
)
def webauthn_register_verify(
    body: WebAuthnRegistration, caller: AnyRole, platform: PlatformDep
) -> WebAuthnCredentialView:
    credential = body.credential.model_dump(exclude_none=True)
    return _credential_view(webauthn.register(platform, caller, credential, body.name))


@router.get(
    "/webauthn/credentials",
    summary=f"Roles: every role ({RECENT_PERSON}). Your WebAuthn authenticators.",
    responses={401: PROBLEM, 403: PROBLEM},
)
def webauthn_credentials(caller: AnyRole, platform: PlatformDep) -> list[WebAuthnCredentialView]:
    return [_credential_view(v) for v in webauthn.list_credentials(platform, caller)]


@router.delete(
    "/webauthn/credentials/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary=f"Roles: every role ({RECENT_PERSON}). Remove one of your authenticators.",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM},
)
def webauthn_remove(id: uuid.UUID, caller: AnyRole, platform: PlatformDep) -> None:
    webauthn.remove(platform, caller, id)


def _credential_view(view: webauthn.CredentialView) -> WebAuthnCredentialView:
    return WebAuthnCredentialView(
        id=str(view.id),
        name=view.name,
        transports=list(view.transports),
        created_at=view.created_at.isoformat(),
        last_used_at=view.last_used_at.isoformat() if view.last_used_at else None,
    )


@router.get("/session", summary="Roles: every role. Who the session belongs to.")
def current_session(principal: AnyRole) -> SessionView:
    return SessionView(role=principal.role, organisation=principal.organisation)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Roles: every role. End the session now.",
)
def logout(principal: AnyRole, platform: PlatformDep) -> None:
    auth.logout(platform, principal)
