"""FastAPI dependencies: the platform, the caller, and the roles a route admits.

Every route declares who may call it with ``Caller(...)``; the roles also appear in the
route's OpenAPI description, so the documentation and the check cannot disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rempart.errors import Forbidden
from rempart.identity.auth import AuthenticationFailed, Client, Principal, authenticate
from rempart.identity.models import ROLES
from rempart.platform import Platform


# Dependencies that do no I/O are async: FastAPI runs a sync one in its thread pool, a hop that
# costs more than the work on a busy CPU.
async def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


async def _client(request: Request) -> Client:
    host = request.client.host if request.client else None
    return Client(ip=host, user_agent=request.headers.get("user-agent", "")[:200] or None)


PlatformDep = Annotated[Platform, Depends(_platform)]
ClientDep = Annotated[Client, Depends(_client)]
_bearer = HTTPBearer(auto_error=False, description="A session token from /api/v1/auth/mfa/totp.")


def _principal(
    platform: PlatformDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise AuthenticationFailed()
    return authenticate(platform, credentials.credentials)


def allow(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only these roles (403 for the others, 401 without a session)."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {unknown}")

    async def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden("this operation is not open to your role")
        return principal

    check.roles = roles  # type: ignore[attr-defined]
    return check


def roles_of(route_dependant: Any) -> tuple[str, ...] | None:
    """The roles a route admits, read from its dependencies (for the docs and the tests)."""
    for dependency in route_dependant.dependencies:
        roles = getattr(dependency.call, "roles", None)
        if roles is not None:
            return tuple(roles)
        nested = roles_of(dependency)
        if nested is not None:
            return nested
    return None
