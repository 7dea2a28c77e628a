"""Authentication endpoints: password, then second factor, then a session; and logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from rempart.identity import auth
from rempart.identity.deps import ClientDep, PlatformDep, allow
from rempart.identity.models import ROLES
from rempart.identity.schemas import (
    LoginRequest,
    LoginResponse,
    SessionView,
    TokenResponse,
    TotpRequest,
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


@router.post(
    "/mfa/totp",
    summary="Anyone holding a login token. Give a TOTP code: gives the session token.",
    responses={401: PROBLEM},
)
def mfa_totp(body: TotpRequest, platform: PlatformDep, client: ClientDep) -> TokenResponse:
    granted = auth.complete_totp(platform, body.mfa_token, body.code, client)
    return TokenResponse(access_token=granted.access_token, expires_in=granted.expires_in)


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
