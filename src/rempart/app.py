"""The FastAPI application factory: capabilities' routers, error handlers, middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from rempart import __version__, portal
from rempart.claims import api as claims_api
from rempart.errors import Error, IntegrityFailure, RateLimited
from rempart.fhir import api as fhir_api
from rempart.fhir import payments as fhir_payments
from rempart.guard.detection import protection_for
from rempart.guard.quotas import member_file_quotas
from rempart.identity import api as identity_api
from rempart.identity import clients_api
from rempart.identity.deps import allow
from rempart.incidents import api as incidents_api
from rempart.ledger import api as ledger_api
from rempart.ledger.recorder import LedgerRecorder
from rempart.payments import api as payments_api
from rempart.platform import Platform, open_platform
from rempart.rights import api as rights_api
from rempart.settings import Settings, get_settings

PROBLEM = "application/problem+json"
log = structlog.get_logger("rempart")


class Health(BaseModel):
    status: str


def problem(status: int, title: str, detail: str, slug: str, **extra: object) -> JSONResponse:
    """An RFC 9457 problem details response."""
    body = {
        "type": f"https://rempart.dev/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    return JSONResponse({**body, **extra}, status_code=status, media_type=PROBLEM)


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.platform = platform or open_platform(settings)
        app.state.recorder = LedgerRecorder(app.state.platform.engine)
        app.state.quotas = protection_for(settings)  # quotas and detection
        app.state.member_file_quotas = member_file_quotas(app.state.quotas, settings)
        yield
        app.state.recorder.close()
        if platform is None:
            app.state.platform.close()

    app = FastAPI(
        title="Rempart",
        version=__version__,
        summary="Tiers-payant operator: every read of personal data is on the record.",
        lifespan=lifespan,
    )

    @app.exception_handler(Error)
    async def rempart_error(_: Request, exc: Error) -> JSONResponse:
        if isinstance(exc, IntegrityFailure):
            # Its message names tables and rows: for the operator's logs, not for the caller.
            log.error("integrity failure", detail=exc.detail)
            return problem(500, exc.title, "stored data failed an integrity check", exc.type_slug)
        extra: dict[str, object] = {}
        field = getattr(exc, "field", None)
        if field:
            extra["field"] = field
        response = problem(exc.status, exc.title, exc.detail, exc.type_slug, **extra)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the fields and the rules, never echo the input (it may be a NIR).
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()
        ]
        return problem(
            422,
            "Invalid input",
            "the request does not match its schema",
            "invalid-input",
            errors=errors,
        )

    app.include_router(identity_api.router)
    app.include_router(clients_api.router)
    app.include_router(rights_api.router)
    app.include_router(claims_api.router)
    app.include_router(ledger_api.router(allow))
    app.include_router(incidents_api.router)
    app.include_router(payments_api.router)
    app.include_router(fhir_payments.router)  # before fhir_api: its catch-all answers 404
    app.include_router(fhir_api.router)
    portal.install(app)  # the web pages: after the handlers above, which it extends

    @app.get("/health", tags=["operations"], summary="Anyone. Liveness.")
    async def health() -> Health:
        return Health(status="ok")

    return app
