"""Browser sessions for the portals: the identity services' own sessions carried in a cookie,
form tokens against cross-site requests, the roles each page admits, and the security headers
of every portal response.

- The session cookie holds the same token as ``Authorization: Bearer`` would (an ``AuthSession``
  of ``identity.auth``): ``HttpOnly``, ``SameSite=Strict``, path ``/``, and ``Secure`` with the
  ``__Host-`` prefix except in development and tests over plain http.
- Every form carries a token, HMAC-SHA-256 under a platform secret of what it is bound to: the
  session's id once signed in, before that a random value in a cookie of its own. Every POST
  must send it back, as the ``csrf`` field or (htmx) the ``X-CSRF-Token`` header, or is refused.
- Each page declares its roles with ``page(...)``, exactly as API routes do with ``allow(...)``:
  the same ``roles`` attribute, read by the tests and the docs.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rempart.db import transaction
from rempart.errors import Forbidden, Unavailable
from rempart.guard import containment
from rempart.identity import enrolment
from rempart.identity.auth import AuthenticationFailed, Principal, authenticate
from rempart.identity.deps import PlatformDep
from rempart.identity.models import ROLES
from rempart.platform import Platform

SESSION, MFA, PRE, NOTICE = "rempart_session", "rempart_mfa", "rempart_pre", "rempart_notice"
CSRF_FIELD, CSRF_HEADER = "csrf", "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD"})
# Where the portals live; the API (/api, /fhir, /docs) keeps its own headers.
PREFIXES = ("/login", "/logout", "/enrol", "/compte", "/pro", "/amc", "/ops", "/static")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def is_portal(path: str) -> bool:
    return path == "/" or any(path == p or path.startswith(p + "/") for p in PREFIXES)


class SecurityHeaders:
    """ASGI middleware: the headers above on every portal response, and ``no-store`` on all but
    the static files (pages hold personal data: no cache, no back-button copy on a shared PC)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_portal(scope["path"]):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Cookies -----------------------------------------------------------------------------------------


def secure(request: Request) -> bool:
    """Secure cookies, except in development and tests over plain http (no TLS on loopback)."""
    env = request.app.state.platform.settings.env
    return env == "production" or request.url.scheme == "https"


def cookie_name(request: Request, name: str) -> str:
    # __Host-: only set by this origin over TLS, for path "/", never by a sibling subdomain.
    return f"__Host-{name}" if secure(request) else name


def read_cookie(request: Request, name: str) -> str | None:
    return request.cookies.get(cookie_name(request, name))


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        cookie_name(request, name),
        value,
        max_age=max_age,
        path="/",
        secure=secure(request),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        cookie_name(request, name),
        path="/",
        secure=secure(request),
        httponly=True,
        samesite="strict",
    )


# Form tokens -------------------------------------------------------------------------------------


class FormRefused(Forbidden):
    """A POST without the token of its form: another site's, or a page too old."""

    def __init__(self) -> None:
        super().__init__(
            "the form's token is missing or does not match: reload the page and send it again"
        )


class LoginRequired(Exception):
    """No session, or one that ended: the browser goes to the sign-in page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _form_key(request: Request) -> bytes:
    state = request.app.state
    key: bytes | None = getattr(state, "portal_form_key", None)
    if key is None:
        key = state.portal_form_key = enrolment.form_key(state.platform)
    return key


def form_token(key: bytes, binding: str) -> str:
    digest = hmac.digest(key, f"rempart/form|{binding}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _check_token(request: Request, form: FormData, expected: str) -> None:
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise FormRefused()


async def _form(request: Request) -> AsyncIterator[FormData]:
    """The request's form (Starlette parses it once and keeps it): empty for a GET. Uploaded
    files are closed once the answer is sent."""
    if request.method in SAFE_METHODS:
        yield FormData()
        return
    form = await request.form(max_files=2, max_fields=200)
    try:
        yield form
    finally:
        await form.close()


FormDep = Annotated[FormData, Depends(_form)]


def text(form: FormData, name: str, limit: int = 500) -> str:
    """A text field of the form, at most ``limit`` characters (longer is cut off: never stored)."""
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


# Who may see a page ------------------------------------------------------------------------------


def _principal(request: Request, platform: PlatformDep) -> Principal:
    token = read_cookie(request, SESSION)
    if not token:
        raise LoginRequired("connexion")
    try:
        principal = authenticate(platform, token)
    except AuthenticationFailed:
        raise LoginRequired("expiree") from None
    if not principal.actor.startswith("user:"):  # billing software's tokens are for the API
        raise LoginRequired("expiree")
    return principal


def _check_portal_open(platform: Platform, path: str) -> None:
    """A portal an operator froze (`rempart guard freeze --portal pro`) shows nothing; the API
    and the other portals go on."""
    portal = path.strip("/").split("/", 1)[0]
    if portal not in containment.PORTALS:
        return
    with transaction(platform.sessions) as session:
        if ("portal", portal) in containment.in_force_now(session):
            raise Unavailable("ce portail est suspendu par l'exploitant ; réessayez plus tard")


def page(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting only these roles to a page (the sign-in page for no session, 403
    for another role) and refusing a POST without its form token."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {unknown}")

    def check(
        request: Request,
        form: FormDep,
        principal: Annotated[Principal, Depends(_principal)],
        platform: PlatformDep,
    ) -> Principal:
        if principal.role not in roles:
            raise Forbidden("this page is not open to your role")
        _check_portal_open(platform, request.url.path)
        token = form_token(_form_key(request), f"session|{principal.session_id.hex}")
        if request.method not in SAFE_METHODS:
            _check_token(request, form, token)
        request.state.csrf = token
        request.state.principal = principal
        return principal

    check.roles = roles  # type: ignore[attr-defined]
    return check


def insurer_of(principal: Principal) -> str:
    """The AMC number of an insurer's account (a page of ``page("amc")``): from the session,
    never from the address."""
    assert principal.organisation is not None  # an insurer's account is bound to its tenant
    return principal.organisation


def anonymous(request: Request, form: FormDep) -> None:
    """For the sign-in and enrolment pages: the form token is bound to a random cookie."""
    pre = read_cookie(request, PRE)
    key = _form_key(request)
    if request.method not in SAFE_METHODS:
        if not pre:
            raise FormRefused()
        _check_token(request, form, form_token(key, f"pre|{pre}"))
    if not pre:
        pre = request.state.new_pre = secrets.token_urlsafe(24)
    request.state.csrf = form_token(key, f"pre|{pre}")


Anonymous = Depends(anonymous)


def remember_new_cookies(request: Request, response: Response) -> None:
    """Set the cookies a dependency decided on (the anonymous form binding)."""
    new_pre = getattr(request.state, "new_pre", None)
    if new_pre:
        set_cookie(response, request, PRE, new_pre)
