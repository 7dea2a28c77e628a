"""The one error hierarchy of Rempart.

Every error that reaches a user (an API client, the CLI) is one of these. The API maps them to
RFC 9457 problem details, the CLI prints ``diagnostics()``. An error never carries a personal value
(a NIR, a name, a birth date): messages name the field and the rule, never the input.
"""

from __future__ import annotations

from dataclasses import dataclass


class Error(Exception):
    """Base of every error Rempart reports to a user."""

    status = 500
    title = "Internal error"
    type_slug = "internal"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def diagnostics(self) -> str:
        """One human-readable paragraph for the CLI."""
        return f"{self.title}: {self.detail}"


class NotFound(Error):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Forbidden(Error):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class Conflict(Error):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class InvalidInput(Error):
    """Bad input; ``field`` is a path such as ``guarantees.OPTI.amount`` or ``line 12, nir``."""

    status = 422
    title = "Invalid input"
    type_slug = "invalid-input"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field

    def diagnostics(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"{self.title}{where}: {self.detail}"


@dataclass(frozen=True)
class Problem:
    """One precise problem in a larger input: where, and why (never the value itself)."""

    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


class InvalidDocument(InvalidInput):
    """A whole document (a plan, a file) with one or more problems, each located."""

    def __init__(self, detail: str, problems: list[Problem]) -> None:
        super().__init__(detail)
        self.problems = problems

    def diagnostics(self) -> str:
        lines = [f"{self.title}: {self.detail}"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class RateLimited(Error):
    status = 429
    title = "Too many requests"
    type_slug = "rate-limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(Error):
    """The service is suspended (a containment in force); try again later."""

    status = 503
    title = "Service suspended"
    type_slug = "suspended"


class IntegrityFailure(Error):
    """Stored data or a proof does not match what it must."""

    status = 500
    title = "Integrity failure"
    type_slug = "integrity-failure"


class VerificationError(IntegrityFailure):
    """A cryptographic check failed; the message reads "expected X, got Y"."""

    title = "Verification failed"
    type_slug = "verification-failed"


class ConfigurationError(Error):
    """The platform is not set up as it must be (a missing key file, a default in production)."""

    title = "Configuration error"
    type_slug = "configuration"
