"""Errors as OperationOutcome, for every route under /fhir/r4.

The app's handlers answer RFC 9457 problems; FHIR clients expect an OperationOutcome instead. The
facade's routes use ``FhirRoute``, which turns whatever a route raises (a ``rempart.errors`` class,
a refused session, a body that is not a FHIR resource) into an OperationOutcome itself, so that
the app-wide handlers, and the /api/v1 answers, stay as they are. Like the problems, an outcome
names the element and the rule and never repeats a value that was sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import structlog
from fastapi import Request, Response
from fastapi.routing import APIRoute
from fhir.resources.R4B.operationoutcome import OperationOutcome

from rempart.errors import (
    Conflict,
    Error,
    Forbidden,
    IntegrityFailure,
    InvalidDocument,
    InvalidInput,
    NotFound,
    Problem,
    RateLimited,
    Unavailable,
)
from rempart.identity.auth import AuthenticationFailed

FHIR_JSON = "application/fhir+json"
PROBLEM_TYPES = "https://rempart.dev/problems"
log = structlog.get_logger("rempart.fhir")


class NotSupported(InvalidInput):
    """A valid resource asking for what the facade does not do (yet): an unsupported ``use``."""

    title = "Not supported"
    type_slug = "not-supported"


class Malformed(InvalidDocument):
    """The body is not a FHIR resource of the expected type (FHIR: 400, not 422)."""

    status = 400
    title = "Malformed resource"
    type_slug = "malformed"


class UnsupportedMediaType(Error):
    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


# (class, FHIR issue type), the first that matches wins: subclasses before their bases.
ISSUE_TYPES: tuple[tuple[type[Error], str], ...] = (
    (AuthenticationFailed, "login"),
    (Forbidden, "forbidden"),
    (NotFound, "not-found"),
    (NotSupported, "not-supported"),
    (UnsupportedMediaType, "not-supported"),
    (Malformed, "structure"),
    (InvalidInput, "invalid"),
    (Conflict, "conflict"),
    (RateLimited, "throttled"),
    (Unavailable, "transient"),
)
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_]{0,63}")


def issue_type(exc: Error) -> str:
    return next((code for cls, code in ISSUE_TYPES if isinstance(exc, cls)), "exception")


def outcome(exc: Error) -> OperationOutcome:
    """One issue per located problem, else one for the error; details link the problem type."""
    details = {"coding": [{"system": PROBLEM_TYPES, "code": exc.type_slug}], "text": exc.title}
    code = issue_type(exc)
    base = {"severity": "error", "code": code, "details": details}
    problems = exc.problems if isinstance(exc, InvalidDocument) else []
    if problems:
        # "(body)", "(resource)": no element to point at, so no FHIRPath expression.
        issues = [
            {**base, "diagnostics": f"{exc.detail}: {p.reason}"}
            | ({} if p.location.startswith("(") else {"expression": [p.location]})
            for p in problems
        ]
    else:
        issue = {**base, "diagnostics": exc.detail}
        field = getattr(exc, "field", None)
        if field:
            issue["expression"] = [field]
        issues = [issue]
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": issues})


def fhir_response(resource: Any, status: int = 200) -> Response:
    return Response(resource.model_dump_json(), status_code=status, media_type=FHIR_JSON)


def error_response(exc: Error) -> Response:
    if isinstance(exc, IntegrityFailure):
        # Its message names tables and rows: for the operator's logs, not for the caller.
        log.error("integrity failure", detail=exc.detail)
        exc = IntegrityFailure("stored data failed an integrity check")
    response = fhir_response(outcome(exc), exc.status)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def as_error(exc: Exception) -> Error:
    """Any exception a route lets out, as one of ours (unexpected ones are logged, not shown)."""
    if isinstance(exc, Error):
        return exc
    log.exception("unexpected error in the FHIR facade", error=type(exc).__name__)
    return Error("the request could not be processed")


def validation_problems(errors: Any, root: str = "") -> list[Problem]:
    """Pydantic's errors as problems: the element path (names only) and pydantic's message, which
    describes the rule, not the input (the input itself is dropped)."""
    problems = []
    for error in errors:
        parts = [root] if root else []
        for part in error["loc"]:
            if isinstance(part, int):
                parts[-1:] = [f"{parts[-1]}[{part}]" if parts else f"[{part}]"]
            else:
                parts.append(part if _NAME.fullmatch(str(part)) else "?")
        problems.append(Problem(".".join(parts) or "(resource)", _message(error)))
    return problems


def _message(error: Any) -> str:
    # fhir.resources' own error types may quote what was sent (the resource type given): say why
    # in our words instead. Pydantic's built-in messages state the rule only.
    kind = str(error["type"])
    if kind.startswith("fhir-validation-wrong-resource-type"):
        return "is not the expected resource type"
    if kind == "json_invalid":
        return "the body is not JSON"
    return str(error["msg"])


@contextmanager
def located(paths: Mapping[str, str]) -> Iterator[None]:
    """Name a service's ``InvalidInput`` field (``care_date``) by the FHIRPath it came from."""
    try:
        yield
    except InvalidInput as exc:
        if exc.field is None or exc.field not in paths or isinstance(exc, InvalidDocument):
            raise
        raise InvalidInput(exc.detail, field=paths[exc.field]) from None


class FhirRoute(APIRoute):
    """A route whose every failure, authentication included, answers an OperationOutcome."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every failure: this is the facade's error boundary
                return error_response(as_error(exc))

        return guarded
