"""API clients: register and revoke billing software; its token endpoint."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, status

from rempart.db import utcnow
from rempart.errors import Forbidden
from rempart.identity import clients
from rempart.identity.auth import Principal, recent_person
from rempart.identity.deps import ClientDep, PlatformDep, allow
from rempart.identity.schemas import ClientRequest, ClientResponse, TokenResponse

router = APIRouter(prefix="/api/v1", tags=["api clients"])
Professional = Annotated[Principal, Depends(allow("professional"))]
PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}


def _person(principal: Principal) -> uuid.UUID:
    # Neither a client key nor an old, perhaps stolen, session may plant keys that outlive it.
    recent_person(principal, utcnow())
    if principal.professional_id is None:
        raise Forbidden("this operation is for a professional's account")
    return principal.professional_id


def _view(view: clients.ClientView) -> ClientResponse:
    return ClientResponse(
        client_id=str(view.client_id),
        name=view.name,
        created_at=view.created_at.isoformat(),
        revoked=view.revoked,
    )


@router.post(
    "/clients",
    status_code=status.HTTP_201_CREATED,
    summary="Roles: professional (a person's session). Register billing software's public key.",
    responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM},
)
def register(body: ClientRequest, caller: Professional, platform: PlatformDep) -> ClientResponse:
    professional = _person(caller)
    return _view(
        clients.register_client(platform, professional, body.name, body.public_key, caller.actor)
    )


@router.get("/clients", summary="Roles: professional. The practice's registered software.")
def list_clients(caller: Professional, platform: PlatformDep) -> list[ClientResponse]:
    assert caller.professional_id is not None
    return [_view(v) for v in clients.list_clients(platform, caller.professional_id)]


@router.post(
    "/clients/{client_id}/revoke",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Roles: professional (a person's session). Revoke software; its tokens stop at once.",
    responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
)
def revoke(client_id: uuid.UUID, caller: Professional, platform: PlatformDep) -> None:
    clients.revoke_client(platform, _person(caller), client_id)


@router.post(
    "/auth/token",
    summary="Anyone holding a client key. Exchange a signed assertion (RFC 7523) for a token.",
    responses={401: PROBLEM},
)
def token(
    grant_type: Annotated[str, Form(max_length=40)],
    client_assertion_type: Annotated[str, Form(max_length=100)],
    client_assertion: Annotated[str, Form(max_length=4000)],
    platform: PlatformDep,
    client: ClientDep,
) -> TokenResponse:
    granted = clients.exchange_assertion(
        platform, grant_type, client_assertion_type, client_assertion, client
    )
    return TokenResponse(access_token=granted.access_token, expires_in=granted.expires_in)
