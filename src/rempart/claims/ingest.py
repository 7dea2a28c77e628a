"""Invoice files from billing concentrators: one invoice per line (JSON Lines), ingested in
batches, each batch in one transaction through the same path as the API.

A line is the body of ``POST /api/v1/invoices`` plus ``am_number`` (who bills it) and, if the
concentrator wants safe re-runs, ``idempotency_key``. A malformed line is set aside with its
number, the field and the rule it breaks, never its content; the others are ingested. Cards are
not counted against quotas here: the operator runs ingestion on files received from contracted
concentrators, not a session that could be stolen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.claims.batch import Biller, Outcome, Refusal, Submission, Summary, process
from rempart.claims.schemas import IngestLine
from rempart.db import transaction, utcnow
from rempart.errors import Error, NotFound, Unavailable
from rempart.guard import containment
from rempart.identity.auth import Client
from rempart.integrity import journal
from rempart.platform import Platform
from rempart.registry.models import Professional

BATCH = 500  # invoices per transaction
MAX_LINE_BYTES = 256 * 1024  # 99 lines of an invoice fit in a tenth of this


@dataclass(frozen=True)
class LineError:
    """A line of the file that was not ingested: where and why, never what it held."""

    line: int
    field: str | None
    reason: str


@dataclass
class IngestReport:
    lines: int = 0  # invoices read (blank lines aside)
    malformed: int = 0
    summary: Summary = field(default_factory=Summary)
    errors: list[LineError] = field(default_factory=list)  # malformed, then refused


def ingest(
    platform: Platform,
    stream: BinaryIO,
    actor: str,
    batch_size: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest every well-formed line of ``stream``; batches already committed stay if a later
    one fails (a re-run answers keyed lines again and finds the others duplicates)."""
    report = IngestReport()
    batch: list[tuple[int, IngestLine]] = []
    done = 0
    for number, raw in enumerate(stream, start=1):
        done += len(raw)
        if not raw.strip():
            continue
        report.lines += 1
        parsed = parse_line(number, raw)
        if isinstance(parsed, LineError):
            report.malformed += 1
            report.errors.append(parsed)
            continue
        batch.append((number, parsed))
        if len(batch) >= batch_size:
            _flush(platform, batch, actor, report)
            batch = []
            if progress:
                progress(done)
    _flush(platform, batch, actor, report)
    if progress:
        progress(done)
    report.errors.sort(key=lambda e: e.line)
    return report


def parse_line(number: int, raw: bytes) -> IngestLine | LineError:
    """One line of the file, validated as the API validates a request."""
    if len(raw) > MAX_LINE_BYTES:
        return LineError(number, None, f"a line holds at most {MAX_LINE_BYTES} bytes")
    try:
        return IngestLine.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        return LineError(number, _where(first), first["msg"])


def _where(error: ErrorDetails) -> str | None:
    location = [str(part) for part in error["loc"]]
    if error["type"] == "extra_forbidden" and location:
        location[-1] = "(unknown field)"  # a key of the file's own: it may be anything
    return ".".join(location) or None


def _flush(
    platform: Platform, batch: list[tuple[int, IngestLine]], actor: str, report: IngestReport
) -> None:
    if not batch:
        return
    now = utcnow()
    with transaction(platform.sessions) as session:
        billers = _billers(session, {line.am_number for _, line in batch}, actor)
        items: list[tuple[Biller, Submission]] = []
        numbers: list[int] = []
        for number, line in batch:
            biller = billers[line.am_number]
            if isinstance(biller, Error):
                report.summary.add(Refusal(biller))
                report.errors.append(LineError(number, "am_number", biller.detail))
                continue
            items.append((biller, line.submission(line.idempotency_key)))
            numbers.append(number)
        outcomes: list[Outcome] = process(session, platform, items, None, Client(), now)
    for number, outcome in zip(numbers, outcomes, strict=True):
        report.summary.add(outcome)
        if isinstance(outcome, Refusal):
            error = outcome.error
            report.errors.append(LineError(number, getattr(error, "field", None), error.detail))


def _billers(session: Session, numbers: set[str], actor: str) -> dict[str, Biller | Error]:
    """The professionals billing these lines, checked against their MACs (their profession
    decides what they bill) and against containment."""
    frozen = containment.in_force_now(session)
    if ("platform", containment.PLATFORM_TARGET) in frozen:
        raise Unavailable("the platform is frozen: nothing is ingested")
    found = {
        p.am_number: p
        for p in session.scalars(select(Professional).where(Professional.am_number.in_(numbers)))
    }
    billers: dict[str, Biller | Error] = {}
    for number in numbers:
        row = found.get(number)
        if row is None:
            billers[number] = NotFound("no professional has this billing number")
            continue
        journal.check_row(session, row)
        if ("professional", row.id.hex) in frozen:
            billers[number] = Unavailable("this professional is suspended; try again later")
            continue
        billers[number] = Biller(
            row.id, row.profession, number, actor, contracted=row.status == "active"
        )
    return billers
