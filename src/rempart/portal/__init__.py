"""The portals: server-rendered pages (Jinja2, htmx served from our static files) over the same
services as the API. ``install(app)`` mounts them on the API's application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from rempart.errors import Error, IntegrityFailure
from rempart.portal import (
    account,
    amc,
    amc_members,
    authenticators,
    incidents,
    ops,
    payments,
    pro,
    pro_claims,
)
from rempart.portal.import_jobs import ImportJobs
from rempart.portal.rendering import Problem, environment, problem_of, render
from rempart.portal.security import (
    SESSION,
    LoginRequired,
    SecurityHeaders,
    clear_cookie,
    is_portal,
)

STATIC = Path(__file__).with_name("static")
log = structlog.get_logger("rempart")


def install(app: FastAPI) -> None:
    """Mount the portals' pages, static files, headers and error pages on ``app``."""
    app.state.portal_templates = environment()
    app.state.import_jobs = ImportJobs()
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (
        account,
        authenticators,
        pro,
        pro_claims,
        payments,
        amc,
        amc_members,
        ops,
        incidents,
    ):
        app.include_router(module.router)
    _error_pages(app)


def _error_pages(app: FastAPI) -> None:
    """Portal paths answer errors with pages; the API's keep their problem details."""
    handlers: dict[Any, Any] = app.exception_handlers
    api_error, api_invalid, api_http = (
        handlers[Error],
        handlers[RequestValidationError],
        handlers[HTTPException],
    )

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Error)
        if not is_portal(request.url.path):
            return await api_error(request, exc)  # type: ignore[no-any-return]
        if isinstance(exc, IntegrityFailure):
            log.error("integrity failure", detail=exc.detail)
        return _error_page(request, exc.status, problem_of(exc))

    async def on_invalid(request: Request, exc: Exception) -> Response:
        if not is_portal(request.url.path):
            return await api_invalid(request, exc)  # type: ignore[no-any-return]
        assert isinstance(exc, RequestValidationError)
        if any(error["loc"][:1] == ("body",) for error in exc.errors()):
            # The security keys' script posts JSON: it shows this message.
            return JSONResponse({"message": "Réponse du navigateur illisible."}, status_code=422)
        # Forms are read by the pages themselves: what FastAPI validates here is the address,
        # and a malformed identifier in it is a page that does not exist.
        return _error_page(request, 404, Problem("Cette page n'existe pas."))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if not is_portal(request.url.path) or request.url.path.startswith("/static/"):
            return await api_http(request, exc)  # type: ignore[no-any-return]
        text = {404: "Cette page n'existe pas.", 405: "Cette action ne se fait pas ainsi."}
        return _error_page(
            request, exc.status_code, Problem(text.get(exc.status_code, "Requête refusée."))
        )

    async def on_login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        target = "/login" if exc.reason == "connexion" else f"/login?raison={exc.reason}"
        response: Response
        if request.headers.get("hx-request"):  # htmx: the whole page goes, not a fragment
            response = Response(status_code=200, headers={"HX-Redirect": target})
        else:
            response = RedirectResponse(target, status_code=303)
        clear_cookie(response, request, SESSION)
        return response

    app.add_exception_handler(Error, on_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(LoginRequired, on_login_required)


def _error_page(request: Request, status: int, problem: Problem) -> Response:
    response = render(request, "error.html", {"problem": problem, "notice": []}, status=status)
    if request.headers.get("hx-request"):  # replace the page's main content, not a fragment
        response.headers.update({"HX-Retarget": "main", "HX-Reselect": "main"})
        response.headers["HX-Reswap"] = "outerHTML"
    return response
