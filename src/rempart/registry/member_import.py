"""Importing a member file: validated, sealed, indexed, in one transaction, in constant memory.

A full import states the whole membership: beneficiaries absent from it are closed. A delta
import only adds and updates. By default one bad row rejects the whole file (nothing changes);
``partial`` commits the valid rows and sets the others aside in a quarantine file.
"""

from __future__ import annotations

import csv
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rempart.crypto.fields import BlindIndexer, FieldCipher
from rempart.dates import paris_day
from rempart.db import table_of, utcnow
from rempart.errors import InvalidInput
from rempart.integrity import journal
from rempart.platform import Platform
from rempart.registry.csv_rows import FileError, RowError
from rempart.registry.identity import Identity
from rempart.registry.member_file import COLUMNS, MemberRow, read_member_file
from rempart.registry.models import (
    Beneficiary,
    Member,
    MemberImport,
    PlanVersion,
    RightsPeriod,
    Tenant,
    new_id,
)
from rempart.registry.rights import Period, apply_period, close_periods
from rempart.registry.sealing import reseal_batch

ERRORS_KEPT = 50  # errors kept in memory for the summary; the report file has them all
# A full file that would close more than this share of an insurer's people is refused unless
# allowed: a truncated or mistaken extract must not end half a population's rights.
MASS_CLOSURE = 0.5
_BENEFICIARIES = table_of(Beneficiary)
_PERIODS = table_of(RightsPeriod)


@dataclass
class ImportReport:
    import_id: uuid.UUID
    mode: str
    committed: bool = False
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    closed: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_path: Path | None = None
    quarantine_path: Path | None = None


@dataclass
class ImportOptions:
    delta: bool = False
    partial: bool = False
    effective_date: date | None = None  # rights of absent beneficiaries close the day before
    allow_mass_closure: bool = False  # a full file may close more than MASS_CLOSURE of them
    errors_path: Path | None = None
    quarantine_path: Path | None = None
    progress: Callable[[int], None] | None = None  # called with the bytes read so far


class _Sink:
    """Where rejected rows go: the error report (no values) and, if partial, the quarantine.

    The files are created at the first rejected row: a clean import leaves none behind.
    """

    def __init__(self, report: ImportReport, options: ImportOptions) -> None:
        self.report, self.options = report, options
        self._errors: Any = None
        self._writer: Any = None
        self._quarantine: Any = None

    def reject(self, error: RowError) -> None:
        report, options = self.report, self.options
        report.rejected += 1
        if len(report.errors) < ERRORS_KEPT:
            report.errors.append(RowError(error.line, error.column, error.reason, b""))
        if options.errors_path and self._errors is None:
            self._errors = _private_file(options.errors_path)
            self._writer = csv.writer(self._errors)
            self._writer.writerow(["line", "column", "reason"])
            report.errors_path = options.errors_path
        if self._writer:
            self._writer.writerow([error.line, error.column, error.reason])
        if options.partial and options.quarantine_path:
            if self._quarantine is None:
                self._quarantine = _private_file(options.quarantine_path, binary=True)
                self._quarantine.write(",".join(COLUMNS).encode() + b"\n")
                report.quarantine_path = options.quarantine_path
            self._quarantine.write(error.raw if error.raw.endswith(b"\n") else error.raw + b"\n")

    def close(self) -> None:
        for f in (self._errors, self._quarantine):
            if f:
                f.close()


def _private_file(path: Path, binary: bool = False) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The quarantine holds the insurer's rejected rows, personal data included: owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already existed
    return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")


class _Hashing:
    """Wraps the input stream: SHA-256 of the bytes read, and progress reports."""

    def __init__(self, stream: BinaryIO, progress: Callable[[int], None] | None) -> None:
        self._stream, self._progress = stream, progress
        self.sha256 = hashlib.sha256()
        self.read = 0

    def readline(self) -> bytes:
        return self._consume(self._stream.readline())

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            yield self._consume(line)

    def _consume(self, line: bytes) -> bytes:
        self.sha256.update(line)
        self.read += len(line)
        if self._progress and self.read & ~0xFFFF != (self.read - len(line)) & ~0xFFFF:
            self._progress(self.read)
        return line


def import_members(
    platform: Platform, amc_number: str, stream: BinaryIO, options: ImportOptions
) -> ImportReport:
    """Import a member file for the insurer ``amc_number``; see the module docstring."""
    started = utcnow()
    # Rights are French business dates: "today" is the date in Paris, not in UTC.
    today = options.effective_date or paris_day(started)
    report = ImportReport(import_id=new_id(), mode="delta" if options.delta else "full")
    hashing = _Hashing(stream, options.progress)
    sink = _Sink(report, options)
    try:
        with platform.sessions() as session:
            session.begin()
            tenant = _active_tenant(session, amc_number)
            tenant_id = tenant.id
            cipher = platform.keyring.cipher(session, tenant.scope)
            indexer = platform.keyring.indexer(session, tenant.scope)
            plans = set(
                session.scalars(select(PlanVersion.code).where(PlanVersion.tenant_id == tenant.id))
            )
            try:
                rows = read_member_file(hashing)  # type: ignore[arg-type]
                first = next(rows, None)
            except FileError as exc:
                raise InvalidInput(str(exc), field="file") from None
            if first is None and not options.delta:
                raise InvalidInput(
                    "the file has no rows: as a full file it would close every beneficiary "
                    "of the insurer",
                    field="file",
                )
            batcher = _Batcher(session, tenant, cipher, indexer, plans, report, sink)
            stream_rows = rows if first is None else _chain(first, rows)
            while chunk := list(islice(stream_rows, platform.settings.import_batch_size)):
                batcher.process(chunk)
            # A rejected row's person is absent from what was imported, not from the insurer's
            # file: with rows set aside, a full import closes nobody.
            if not options.delta and report.rejected == 0:
                report.closed = _close_absent(
                    session, tenant_id, report.import_id, today - timedelta(days=1)
                )
                _check_mass_closure(session, tenant_id, report, options)
            report.committed = report.rejected == 0 or options.partial
            if report.committed:
                _seal_under_active_key(platform, session, tenant.scope, cipher)
                session.add(_record(tenant_id, report, options, hashing, started))
                session.commit()
            else:
                session.rollback()
                report.inserted = report.updated = report.unchanged = report.closed = 0
        if not report.committed:
            # The file is refused, but that it was sent and refused is part of the record.
            with platform.sessions.begin() as session:
                session.add(_record(tenant_id, report, options, hashing, started))
    finally:
        sink.close()
        if options.progress:
            options.progress(hashing.read)
    return report


def _check_mass_closure(
    session: Session, tenant_id: uuid.UUID, report: ImportReport, options: ImportOptions
) -> None:
    if options.allow_mass_closure or not report.closed:
        return
    remaining = session.scalar(
        select(func.count())
        .select_from(Beneficiary)
        .where(Beneficiary.tenant_id == tenant_id, Beneficiary.status == "active")
    )
    share = report.closed / (report.closed + (remaining or 0))
    if share > MASS_CLOSURE:
        raise InvalidInput(
            f"this full file would close {report.closed} beneficiaries ({share:.0%} of the "
            f"insurer's): refused, nothing changed; if this is intended, import it again with "
            "--allow-mass-closure",
            field="file",
        )


def _chain(
    first: MemberRow | RowError, rest: Iterator[MemberRow | RowError]
) -> Iterator[MemberRow | RowError]:
    yield first
    yield from rest


def _seal_under_active_key(
    platform: Platform, session: Session, scope: str, cipher: FieldCipher
) -> None:
    """If a key rotation started during the import, re-seal under the new key before commit."""
    final = platform.keyring.confirm_before_commit(session, scope, cipher)
    while final is not cipher and reseal_batch(session, scope, final, 5000):
        pass


def _active_tenant(session: Session, amc_number: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.amc_number == amc_number))
    if tenant is None or tenant.status != "active":
        raise InvalidInput(f"no active insurer with AMC number {amc_number}", field="amc_number")
    return tenant


def _record(
    tenant_id: uuid.UUID,
    report: ImportReport,
    options: ImportOptions,
    hashing: _Hashing,
    started: Any,
) -> MemberImport:
    return MemberImport(
        id=report.import_id,
        tenant_id=tenant_id,
        mode=report.mode,
        partial=options.partial,
        file_sha256=hashing.sha256.hexdigest(),
        status="committed" if report.committed else "rejected",
        rows=report.rows,
        inserted=report.inserted if report.committed else 0,
        updated=report.updated if report.committed else 0,
        unchanged=report.unchanged if report.committed else 0,
        closed=report.closed if report.committed else 0,
        rejected=report.rejected,
        started_at=started,
        finished_at=utcnow(),
    )


class _Batcher:
    """Writes one batch of rows: look-ups by blind index, then bulk inserts and updates."""

    def __init__(
        self,
        session: Session,
        tenant: Tenant,
        cipher: FieldCipher,
        indexer: BlindIndexer,
        plans: set[str],
        report: ImportReport,
        sink: _Sink,
    ) -> None:
        self.session, self.tenant, self.cipher, self.indexer = session, tenant, cipher, indexer
        self.plans, self.report, self.sink = plans, report, sink

    def process(self, chunk: list[MemberRow | RowError]) -> None:
        report, indexer, amc = self.report, self.indexer, self.tenant.amc_number
        report.rows += len(chunk)
        rows: dict[bytes, tuple[MemberRow, bytes]] = {}
        for row in chunk:
            if isinstance(row, RowError):
                self.sink.reject(row)
                continue
            if row.plan_code not in self.plans:
                self.sink.reject(
                    RowError(
                        row.line,
                        "plan_code",
                        "no plan with this code is loaded for this insurer",
                        row.raw,
                    )
                )
                continue
            key = indexer.index(
                "rights_key",
                amc,
                row.member_number,
                row.birth_date.isoformat(),
                str(row.birth_rank),
            )
            if key in rows:
                self._duplicate(row, rows[key][0].line)
                continue
            rows[key] = (row, indexer.index("source_row", *_source_fields(row)))
        if not rows:
            return
        existing = {
            b.rights_index: b
            for b in self.session.execute(
                select(
                    Beneficiary.id,
                    Beneficiary.rights_index,
                    Beneficiary.source_digest,
                    Beneficiary.status,
                    Beneficiary.last_import_id,
                    Beneficiary.last_import_line,
                ).where(
                    Beneficiary.tenant_id == self.tenant.id,
                    Beneficiary.rights_index.in_(list(rows)),
                )
            )
        }
        for key, seen in existing.items():
            if seen.last_import_id == report.import_id:
                self._duplicate(rows.pop(key)[0], seen.last_import_line or 0)
        members = self._members([r for r, _ in rows.values()])
        fresh: list[tuple[bytes, MemberRow, bytes]] = []
        changed: list[tuple[uuid.UUID, MemberRow, bytes]] = []
        same: list[dict[str, Any]] = []
        for key, (row, digest) in rows.items():
            old = existing.get(key)
            if old is None:
                fresh.append((key, row, digest))
            elif old.source_digest == digest and old.status == "active":
                same.append({"id": old.id, "last_import_line": row.line})
            else:
                changed.append((old.id, row, digest))
        self._insert(fresh, members)
        self._update(changed, members)
        if same:
            for item in same:
                item["last_import_id"] = report.import_id
            journal.update_rows(self.session, _BENEFICIARIES, same)
        report.inserted += len(fresh)
        report.updated += len(changed)
        report.unchanged += len(same)

    def _duplicate(self, row: MemberRow, first_line: int) -> None:
        self.sink.reject(
            RowError(
                row.line,
                "member_number,birth_date,birth_rank",
                "duplicate rights-check key: same member number, birth date and rank "
                f"as line {first_line}",
                row.raw,
            )
        )

    def _members(self, rows: Iterable[MemberRow]) -> dict[str, uuid.UUID]:
        """The member id of each member number in the batch, creating the missing ones."""
        by_index = {
            self.indexer.index("member_number", r.member_number): r.member_number for r in rows
        }
        query = select(Member.member_index, Member.id).where(
            Member.tenant_id == self.tenant.id, Member.member_index.in_(list(by_index))
        )
        found = dict(self.session.execute(query).all())
        new = []
        for index, number in by_index.items():
            if index not in found:
                member_id = found[index] = new_id()
                new.append(
                    {
                        "id": member_id,
                        "tenant_id": self.tenant.id,
                        "member_index": index,
                        "member_number_enc": self.cipher.seal(
                            "members", "member_number", member_id.hex, number
                        ),
                        "key_version": self.cipher.active_version,
                    }
                )
        if new:
            journal.insert_rows(self.session, table_of(Member), new)
        return {by_index[i]: found[i] for i in by_index}

    def _sealed(self, b_id: uuid.UUID, row: MemberRow) -> dict[str, Any]:
        identity = Identity(row.nir, row.last_name, row.first_name, row.birth_date)
        return {
            "nir_index": self.indexer.index("nir", row.nir) if row.nir else None,
            "identity_enc": self.cipher.seal(
                "beneficiaries", "identity", b_id.hex, identity.pack()
            ),
            "birth_rank": row.birth_rank,
            "relationship": row.relationship,
            "key_version": self.cipher.active_version,
        }

    def _insert(
        self, fresh: list[tuple[bytes, MemberRow, bytes]], members: dict[str, uuid.UUID]
    ) -> None:
        if not fresh:
            return
        beneficiaries: list[dict[str, Any]] = []
        periods: list[dict[str, Any]] = []
        for key, row, digest in fresh:
            b_id = new_id()
            beneficiaries.append(
                {
                    "id": b_id,
                    "tenant_id": self.tenant.id,
                    "member_id": members[row.member_number],
                    "rights_index": key,
                    "source_digest": digest,
                    "status": "active",
                    "last_import_id": self.report.import_id,
                    "last_import_line": row.line,
                    **self._sealed(b_id, row),
                }
            )
            periods.append(_period_row(b_id, _period(row)))
        journal.insert_rows(self.session, _BENEFICIARIES, beneficiaries)
        journal.insert_rows(self.session, _PERIODS, periods)

    def _update(
        self, changed: list[tuple[uuid.UUID, MemberRow, bytes]], members: dict[str, uuid.UUID]
    ) -> None:
        if not changed:
            return
        ids = [b_id for b_id, _, _ in changed]
        current: dict[uuid.UUID, list[Period]] = {b_id: [] for b_id in ids}
        for p in self.session.scalars(
            select(RightsPeriod).where(RightsPeriod.beneficiary_id.in_(ids))
        ):
            current[p.beneficiary_id].append(_period_of(p))
        journal.delete_where(self.session, _PERIODS, RightsPeriod.beneficiary_id.in_(ids))
        now, updates, periods = utcnow(), [], []
        for b_id, row, digest in changed:
            updates.append(
                {
                    "id": b_id,
                    "member_id": members[row.member_number],
                    "source_digest": digest,
                    "status": "active",
                    "last_import_id": self.report.import_id,
                    "last_import_line": row.line,
                    "updated_at": now,
                    **self._sealed(b_id, row),
                }
            )
            periods += [_period_row(b_id, p) for p in apply_period(current[b_id], _period(row))]
        journal.update_rows(self.session, _BENEFICIARIES, updates)
        journal.insert_rows(self.session, _PERIODS, periods)


def _close_absent(
    session: Session, tenant_id: uuid.UUID, import_id: uuid.UUID, closing: date
) -> int:
    """Close the rights of the tenant's active beneficiaries that this full file did not list."""
    absent = select(Beneficiary.id).where(
        Beneficiary.tenant_id == tenant_id,
        Beneficiary.status == "active",
        (Beneficiary.last_import_id != import_id) | Beneficiary.last_import_id.is_(None),
    )
    closed = 0
    while ids := list(session.scalars(absent.limit(5000))):
        periods = list(
            session.scalars(select(RightsPeriod).where(RightsPeriod.beneficiary_id.in_(ids)))
        )
        by_owner: dict[uuid.UUID, list[Period]] = {}
        for p in periods:
            by_owner.setdefault(p.beneficiary_id, []).append(_period_of(p))
        journal.delete_where(session, _PERIODS, RightsPeriod.beneficiary_id.in_(ids))
        rows = [_period_row(b, p) for b, ps in by_owner.items() for p in close_periods(ps, closing)]
        journal.insert_rows(session, _PERIODS, rows)
        journal.update_rows(
            session,
            _BENEFICIARIES,
            [{"id": b_id, "status": "closed", "updated_at": utcnow()} for b_id in ids],
        )
        closed += len(ids)
    return closed


def _source_fields(row: MemberRow) -> tuple[str, ...]:
    return (
        row.member_number,
        row.nir or "",
        row.last_name,
        row.first_name,
        row.birth_date.isoformat(),
        str(row.birth_rank),
        row.relationship,
        row.plan_code,
        row.start_date.isoformat(),
        row.end_date.isoformat() if row.end_date else "",
        ";".join(row.suspended_domains),
    )


def _period(row: MemberRow) -> Period:
    return Period(row.plan_code, row.start_date, row.end_date, row.suspended_domains)


def _period_of(p: RightsPeriod) -> Period:
    return Period(
        p.plan_code, p.start_date, p.end_date, tuple(filter(None, p.suspended_domains.split(";")))
    )


def _period_row(beneficiary_id: uuid.UUID, p: Period) -> dict[str, Any]:
    return {
        "id": new_id(),
        "beneficiary_id": beneficiary_id,
        "plan_code": p.plan_code,
        "start_date": p.start_date,
        "end_date": p.end_date,
        "suspended_domains": ";".join(p.suspended_domains),
    }
