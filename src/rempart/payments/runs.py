"""Payment runs: every accepted, unpaid invoice up to the cut-off paid exactly once.

A run goes ``open`` → ``files_written`` → ``closed``, one transaction per arrow:

1. **Open** (one transaction): take the invoices — accepted or partial, and rejected ones to
   report them — submitted before the cut-off and in no run yet; group them per professional
   and per insurer; record the run, one ``payment_items`` row per invoice (unique: an invoice is
   never in two runs), the remittances and settlements with every value the files will hold,
   and set the paid invoices' ``paid_at`` (from then on they cannot be cancelled). A crash before
   the commit leaves no trace; after it, the run exists and is resumed.
2. **Files**: the SEPA transfers (pain.001) and debits (pain.008), each validated before it is
   written, and the JSON remittances, statements and summary, all built from what step 1
   recorded, written under a temporary name and renamed. They are deterministic: written again
   after a crash, they are the same bytes. Their digests are recorded (``files_written``).
3. **Close**: the run is done.

``rempart payments run`` first finishes any run left unfinished by a crash, then opens a new one:
a line is never paid twice (the unique item) nor lost (an open run is always finished). The
whole of it holds the run lock (``run_lock``): a second launch while one runs (from the console,
the command line, a cron) is refused rather than finishing the same run alongside it.

A professional whose bank details are changing (awaiting the code, or cooling off), or that is
frozen, is held: its invoices stay untaken for the next run, and the run reports it.

Payments is the capability that pays invoices: it reads the claims' invoice tables and sets
their ``paid_at`` (``claims.models.Invoice``), which ``claims.invoices.cancel_invoice`` checks.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import signal
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Table, exists, func, select, text
from sqlalchemy.orm import Session

from rempart.claims.models import Invoice, InvoiceLine
from rempart.crypto.keyring import PLATFORM_SCOPE
from rempart.dates import PARIS
from rempart.db import table_of, transaction, utcnow
from rempart.errors import ConfigurationError, Conflict, IntegrityFailure, InvalidInput, NotFound
from rempart.guard import containment
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.payments import bank_details, documents, remittance, rules, sepa, statements
from rempart.payments.models import PaymentItem, PaymentRun, Remittance, Settlement
from rempart.platform import Platform
from rempart.registry.models import Professional, Tenant
from rempart.settings import DEFAULT_CREDITOR_ID, DEFAULT_PAYER_IBAN, Settings

log = structlog.get_logger("rempart.payments")

# Tests' hook (tests/integration/test_payment_crashes.py): with REMPART_TEST_CRASH_AT=<point>
# the process kills itself at that point, as ``kill -9`` would. Ignored in production.
CRASH_AT = "REMPART_TEST_CRASH_AT"
CRASH_POINTS = (
    "in-claim",  # the run's rows written, not committed
    "after-claim",  # the run committed, no file written
    "mid-files",  # remittances, statements and the transfers file written; not the debits
    "after-files",  # every file written, not recorded
    "after-files-recorded",  # files_written committed, not closed
    "in-close",  # closed, not committed
)
TAKEN = ("accepted", "partial", "rejected")  # rejected invoices are reported, never paid
TRANSFERS_FILE = f"transfers.{sepa.PAIN_001}.xml"
DEBITS_FILE = f"debits.{sepa.PAIN_008}.xml"
SUMMARY_FILE = "summary.json"
MANIFEST_FILE = "manifest.json"
_INVOICES = table_of(Invoice)
_LINES = table_of(InvoiceLine)
_ITEMS = table_of(PaymentItem)
_RUNS_LOCK = 0x52_4D_50_52_55_4E  # "RMPRUN": one run is opened at a time (PostgreSQL)
RUN_LOCK_FILE = "payment-run.lock"  # SQLite: beside the database file


class RunInProgress(Conflict):
    """Another payment run holds the run lock (another process, or another request)."""

    def __init__(self) -> None:
        super().__init__("a payment run is already in progress: try again once it has finished")


@dataclass(frozen=True)
class RunView:
    id: uuid.UUID
    number: int
    reference: str
    run_date: date
    cutoff: datetime
    execution_date: date
    collection_date: date
    status: str
    opened_at: datetime
    closed_at: datetime | None
    invoices: int
    lines: int
    transfers: int
    transfer_total: int
    debits: int
    debit_total: int
    held: tuple[documents.Held, ...]
    files: Mapping[str, str]  # name -> SHA-256 (the SEPA files and the manifest of all)
    by_insurer: tuple[tuple[str, int, int], ...] = ()  # (AMC number, claims, amount)


@dataclass(frozen=True)
class Opening:
    """What opening a run did: the run (None when there was nothing to take), who was held,
    and invoices refused because their stored rows fail their integrity check."""

    run_id: uuid.UUID | None
    held: tuple[documents.Held, ...]
    problems: tuple[str, ...] = ()


@dataclass
class RunOutcome:
    resumed: list[RunView] = field(default_factory=list)
    run: RunView | None = None
    held: tuple[documents.Held, ...] = ()
    problems: tuple[str, ...] = ()
    folder: Path | None = None


def crash_point(platform: Platform, point: str) -> None:
    """Die here, as ``kill -9`` would, when the tests ask for it (never in production)."""
    if platform.settings.env != "production" and os.environ.get(CRASH_AT) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def check_payer(settings: Settings) -> None:
    """The operator's account and creditor identifier: valid, and not the placeholders in
    production."""
    if settings.env == "production" and (
        settings.payer_iban == DEFAULT_PAYER_IBAN
        or settings.sepa_creditor_id == DEFAULT_CREDITOR_ID
    ):
        raise ConfigurationError(
            "REMPART_PAYER_IBAN and REMPART_SEPA_CREDITOR_ID must be the operator's own in "
            "production"
        )
    if not rules.is_creditor_id(settings.sepa_creditor_id):
        raise ConfigurationError("REMPART_SEPA_CREDITOR_ID is not a SEPA creditor identifier")


# --- the use case -------------------------------------------------------------------------------


def run_payments(
    platform: Platform, run_date: date | None, out_dir: Path | None, actor: str
) -> RunOutcome:
    """Finish what a crash left unfinished, then pay what is due up to ``run_date``."""
    check_payer(platform.settings)
    out = out_dir or platform.settings.resolved_payments_dir
    outcome = RunOutcome(folder=out)
    with run_lock(platform):
        for run_id in unfinished(platform):
            outcome.resumed.append(finish_run(platform, run_id, out))
        opening = open_run(platform, run_date, actor)
        outcome.held, outcome.problems = opening.held, opening.problems
        if opening.run_id is not None:
            outcome.run = finish_run(platform, opening.run_id, out)
    return outcome


@contextmanager
def run_lock(platform: Platform) -> Iterator[None]:
    """One payment run at a time, across threads and processes, for as long as it lasts (about a
    minute for a million lines). Without it two launches finish the same run together: each
    writes and renames the same files while the other records their digests and closes it.
    Never waits: a second launch gets ``RunInProgress``. A PostgreSQL session's advisory lock,
    or a SQLite file lock; either goes with the process that holds it, killed or not."""
    if platform.engine.dialect.name == "sqlite":
        with _file_lock(_lock_file(platform)):
            yield
    else:
        with _advisory_lock(platform):
            yield


@contextmanager
def _advisory_lock(platform: Platform) -> Iterator[None]:
    with platform.engine.connect() as connection:
        # Advisory locks are per database; the key names the schema, so that installations (and
        # tests) in other schemas of the same database do not hold each other off.
        schema = connection.scalar(text("SELECT current_schema()"))
        digest = hashlib.sha256(f"rempart payment run {schema}".encode()).digest()
        key = {"k": int.from_bytes(digest[:8], "big", signed=True)}
        taken = connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), key)
        connection.commit()  # a session's lock outlives the transaction: none is left open
        if not taken:
            raise RunInProgress()
        try:
            yield
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), key)
                connection.commit()
            except Exception:
                # Never give the pool back a connection that may still hold the lock: closing
                # it ends its session, and the lock with it.
                connection.invalidate()
                raise


def _lock_file(platform: Platform) -> Path:
    """Beside the database file (what the lock protects), else in the payments folder."""
    database = platform.engine.url.database
    if database and database != ":memory:":
        path = Path(database)
        return path.with_name(f"{path.name}.{RUN_LOCK_FILE}")
    return platform.settings.resolved_payments_dir / RUN_LOCK_FILE


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # flock belongs to this open file (not to the process): two threads conflict as two
    # processes do. The file stays: removing it would let two runs lock two different files.
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInProgress() from None
        yield
    finally:
        os.close(descriptor)  # lets the lock go


def unfinished(platform: Platform) -> list[uuid.UUID]:
    with transaction(platform.sessions) as session:
        return list(
            session.scalars(
                select(PaymentRun.id)
                .where(PaymentRun.status != "closed")
                .order_by(PaymentRun.number)
            )
        )


def open_run(
    platform: Platform, run_date: date | None, actor: str, now: datetime | None = None
) -> Opening:
    """Take what is due, in one transaction (see the module's docstring)."""
    now = now or utcnow()
    try:
        period = rules.period(run_date, now)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="date") from None
    try:
        opening = _open(platform, period, actor, now, verify=False)
    except IntegrityFailure:
        # An invoice failed its MAC as it was marked paid (the transaction is rolled back):
        # take again, checking every invoice first, so that the altered ones wait, reported,
        # and the others are paid.
        opening = _open(platform, period, actor, now, verify=True)
    crash_point(platform, "after-claim")
    return opening


def _open(
    platform: Platform, period: rules.Period, actor: str, now: datetime, verify: bool
) -> Opening:
    with transaction(platform.sessions) as session:
        _lock_runs(session)
        if session.scalar(select(PaymentRun.id).where(PaymentRun.status != "closed").limit(1)):
            raise Conflict("a payment run is unfinished: `rempart payments run` finishes it first")
        opening = _Taking(platform, session, period, actor, now, verify).take()
        crash_point(platform, "in-claim")
    return opening


class _Taking:
    """The invoices a run takes, the professionals it holds, the rows it writes."""

    def __init__(
        self,
        platform: Platform,
        session: Session,
        period: rules.Period,
        actor: str,
        now: datetime,
        verify: bool,
    ) -> None:
        self.platform, self.session, self.period = platform, session, period
        self.actor, self.now, self.verify = actor, now, verify
        self.problems: list[str] = []
        self.accounts: dict[uuid.UUID, rules.Pay | rules.Hold] = {}

    def take(self) -> Opening:
        claims, rejected = self._candidates()
        professionals = self._professionals({c.professional_id for c in claims})
        holds = self._holds(professionals)
        grouping = rules.group(claims, holds)
        held = tuple(
            documents.Held(
                professionals[pid].am_number,
                holds[pid].reason,
                holds[pid].until,
                total.invoices,
                total.amount,
            )
            for pid, total in sorted(
                grouping.held.items(), key=lambda item: professionals[item[0]].am_number
            )
        )
        if held:
            append_events(self.session, [self._held_event(h) for h in held])
        if not grouping.claims:
            return Opening(None, held, tuple(self.problems))
        run_id = self._record(grouping, professionals, holds, held, rejected)
        return Opening(run_id, held, tuple(self.problems))

    def _candidates(self) -> tuple[list[rules.Claim], set[uuid.UUID]]:
        """Invoices due, their lines adding up to their total (else refused and reported),
        locked against a concurrent cancellation (PostgreSQL). Their MACs are checked as they
        are marked paid (``journal.update_rows``), or here first when ``verify``."""
        inv, session = _INVOICES, self.session
        due = (
            inv.c.status.in_(TAKEN),
            inv.c.paid_at.is_(None),
            inv.c.submitted_at < self.period.cutoff,
            ~exists().where(_ITEMS.c.invoice_id == inv.c.id),
        )
        columns = (
            (inv,)
            if self.verify
            else (inv.c.id, inv.c.professional_id, inv.c.amc_number, inv.c.total_amc, inv.c.status)
        )
        query = select(*columns).where(*due)
        if session.get_bind().dialect.name != "sqlite":
            # A cancellation in flight commits first, then this sees it cancelled (and skips it).
            query = query.with_for_update(of=inv)
        connection = session.connection()
        rows = connection.execute(query).mappings().all()
        sums = {
            invoice_id: (int(amount), count)  # PostgreSQL sums bigints as numeric
            for invoice_id, amount, count in connection.execute(
                select(_LINES.c.invoice_id, func.sum(_LINES.c.amc_amount), func.count())
                .join(inv, inv.c.id == _LINES.c.invoice_id)
                .where(*due)
                .group_by(_LINES.c.invoice_id)
            )
        }
        claims, rejected = [], set()
        for row in rows:
            if self.verify and not _intact(session, inv, row):
                self._problem(f"invoices row {row['id']}: its MAC does not match its columns")
                continue
            amount, count = sums.get(row["id"], (0, 0))
            if (
                amount != row["total_amc"]
                or count == 0
                or (row["status"] == "rejected" and amount != 0)
            ):
                self._problem(f"invoices row {row['id']}: its lines do not add up to its total")
                continue
            refused = row["status"] == "rejected"
            if refused:
                rejected.add(row["id"])
            claims.append(
                rules.Claim(
                    row["id"], row["professional_id"], row["amc_number"], amount, count, refused
                )
            )
        return claims, rejected

    def _problem(self, message: str) -> None:
        # The row's id, for the operator (ids carry no personal data); the invoice waits.
        log.error("payment run refused an invoice", detail=message)
        self.problems.append(message)

    def _professionals(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, Professional]:
        found: dict[uuid.UUID, Professional] = {}
        ordered = sorted(ids)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            found |= {
                p.id: p
                for p in self.session.scalars(
                    select(Professional).where(Professional.id.in_(chunk))
                )
            }
        return found

    def _holds(self, professionals: dict[uuid.UUID, Professional]) -> dict[uuid.UUID, rules.Hold]:
        """Who is not paid now, and why: an account under change, a freeze, a forged row."""
        holds: dict[uuid.UUID, rules.Hold] = {}
        frozen = containment.in_force_now(self.session)
        accounts = self.accounts = bank_details.accounts_for(self.session, professionals, self.now)
        for pid, professional in professionals.items():
            try:
                journal.check_row(self.session, professional)
            except IntegrityFailure:
                log.error("payment run held a professional", detail=f"professionals row {pid}")
                holds[pid] = rules.Hold("stored professional data failed an integrity check")
                continue
            if ("professional", pid.hex) in frozen:
                holds[pid] = rules.Hold("the professional is frozen")
                continue
            decision = accounts[pid]
            if isinstance(decision, rules.Hold):
                holds[pid] = decision
            elif decision.change_id is not None:
                try:
                    bank_details.iban_of_change(self.platform, self.session, decision.change_id)
                except IntegrityFailure:
                    log.error(
                        "payment run held a professional",
                        detail=f"bank_changes row {decision.change_id}",
                    )
                    holds[pid] = rules.Hold("stored bank details failed an integrity check")
        return holds

    def _record(
        self,
        grouping: rules.Grouping,
        professionals: dict[uuid.UUID, Professional],
        holds: Mapping[uuid.UUID, rules.Hold],
        held: tuple[documents.Held, ...],
        rejected: set[uuid.UUID],
    ) -> uuid.UUID:
        session, now, period = self.session, self.now, self.period
        number = (session.scalar(select(func.max(PaymentRun.number))) or 0) + 1
        run_id = uuid.uuid4()
        accounts = self.accounts
        remittances: list[dict[str, Any]] = []
        by_professional: dict[uuid.UUID, uuid.UUID] = {}
        for pid, total in sorted(
            grouping.professionals.items(), key=lambda item: professionals[item[0]].am_number
        ):
            professional = professionals[pid]
            decision = accounts[pid]
            assert isinstance(decision, rules.Pay)
            hint, bic = professional.iban_hint, professional.bic
            if decision.change_id is not None:
                change = bank_details.iban_of_change(self.platform, session, decision.change_id)
                hint, bic = change.iban_hint, change.bic
            by_professional[pid] = rid = uuid.uuid4()
            remittances.append(
                {
                    "id": rid,
                    "run_id": run_id,
                    "professional_id": pid,
                    "am_number": professional.am_number,
                    "creditor_name": rules.clean_text(professional.name),
                    "bank_change_id": decision.change_id,
                    "iban_hint": hint,
                    "bic": bic,
                    "end_to_end_id": rules.end_to_end_id(
                        number, rules.TRANSFERS, professional.am_number
                    )
                    if total.amount
                    else None,
                    "amount": total.amount,
                    "invoices": total.invoices,
                    "lines": total.lines,
                }
            )
        settlements, by_insurer = self._settlements(run_id, number, grouping)
        items = [
            {
                "id": uuid.uuid4(),
                "run_id": run_id,
                "invoice_id": claim.invoice_id,
                "remittance_id": by_professional[claim.professional_id],
                "settlement_id": None
                if claim.rejected or claim.amc_number is None
                else by_insurer[claim.amc_number],
                "amount": claim.amount,
                "lines": claim.lines,
            }
            for claim in grouping.claims
        ]
        transfers = [r for r in remittances if r["amount"]]
        debits = [s for s in settlements if s["end_to_end_id"]]
        run = {
            "id": run_id,
            "number": number,
            "run_date": period.run_date,
            "cutoff": period.cutoff,
            "execution_date": period.execution_date,
            "collection_date": period.collection_date,
            "status": "open",
            "opened_by": self.actor,
            "opened_at": now,
            "files_written_at": None,
            "closed_at": None,
            "invoices": len(items),
            "lines": sum(claim.lines for claim in grouping.claims),
            "transfers": len(transfers),
            "transfer_total": sum(r["amount"] for r in transfers),
            "debits": len(debits),
            "debit_total": sum(s["amount"] for s in debits),
            "held": json.dumps([h.doc() for h in held]),
            "files": None,
        }
        journal.insert_rows(session, table_of(PaymentRun), [run])
        journal.insert_rows(session, table_of(Remittance), remittances)
        journal.insert_rows(session, table_of(Settlement), settlements)
        journal.insert_rows(session, _ITEMS, items)
        paid = [
            {"id": c.invoice_id, "paid_at": now}
            for c in grouping.claims
            if c.invoice_id not in rejected
        ]
        if journal.update_rows(session, _INVOICES, paid) != len(paid):
            raise Conflict("invoices changed while the run was taking them; run again")
        append_events(
            session,
            [
                AccessEvent(
                    at=now,
                    tag=Tag.PAYMENT_RUN_OPENED,
                    actor=self.actor,
                    outcome="open",
                    purpose=(
                        f"payment run {rules.run_reference(number)}: {len(items)} invoices, "
                        f"{run['transfer_total']} cents to {len(transfers)} professionals"
                    ),
                )
            ],
        )
        return run_id

    def _settlements(
        self, run_id: uuid.UUID, number: int, grouping: rules.Grouping
    ) -> tuple[list[dict[str, Any]], dict[str, uuid.UUID]]:
        session = self.session
        tenants = {
            t.amc_number: t
            for t in session.scalars(
                select(Tenant).where(Tenant.amc_number.in_(list(grouping.insurers)))
            )
        }
        missing = set(grouping.insurers) - set(tenants)
        if missing:
            raise IntegrityFailure(f"invoices name insurers that do not exist: {sorted(missing)}")
        mandates, altered = statements.mandates_for(session, [t.id for t in tenants.values()])
        for tenant_id in altered:
            # Never debit an account that was changed outside the application: invoice instead.
            self._problem(f"debit_mandates row of tenant {tenant_id}: its MAC does not match")
        rows, by_insurer = [], {}
        for amc_number, total in sorted(grouping.insurers.items()):
            tenant = tenants[amc_number]
            journal.check_row(session, tenant)
            mandate = mandates.get(tenant.id) if total.amount else None
            by_insurer[amc_number] = sid = uuid.uuid4()
            rows.append(
                {
                    "id": sid,
                    "run_id": run_id,
                    "tenant_id": tenant.id,
                    "amc_number": amc_number,
                    "debtor_name": rules.clean_text(tenant.name),
                    "amount": total.amount,
                    "invoices": total.invoices,
                    "lines": total.lines,
                    "end_to_end_id": rules.end_to_end_id(number, rules.DEBITS, amc_number)
                    if mandate
                    else None,
                    "mandate_id": mandate.mandate_id if mandate else None,
                    "mandate_signed_on": mandate.signed_on if mandate else None,
                    "debtor_iban": mandate.iban if mandate else None,
                    "debtor_bic": mandate.bic if mandate else None,
                }
            )
        return rows, by_insurer

    def _held_event(self, held: documents.Held) -> AccessEvent:
        return AccessEvent(
            at=self.now,
            tag=Tag.PAYMENT_HELD,
            actor=self.actor,
            outcome="held",
            purpose=f"{held.reason}: {held.invoices} invoices held"[:300],
            organisation=held.am_number,
        )


def _intact(session: Session, table: Table, row: Any) -> bool:
    stored = row["row_mac"]
    return stored is not None and hmac.compare_digest(
        journal.mac_of(session, table, dict(row)), stored
    )


def _lock_runs(session: Session) -> None:
    """One run is opened at a time: SQLite's write lock, or a PostgreSQL advisory lock."""
    if session.get_bind().dialect.name == "sqlite":
        bank_details.write_lock(session)
    else:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _RUNS_LOCK})


# --- files --------------------------------------------------------------------------------------


def finish_run(platform: Platform, run_id: uuid.UUID, out_dir: Path) -> RunView:
    """Write a run's files (again, to the byte, after a crash), record them, close the run."""
    with transaction(platform.sessions) as session:
        run = _run(session, run_id)
        status, number, recorded = run.status, run.number, run.files
    if status == "closed":
        return get_run(platform, run_id)
    folder = out_dir / rules.run_reference(number)
    _remove_leftovers(folder)
    written = write_files(platform, run_id, folder)
    if status == "files_written" and json.loads(recorded or "{}") != written:
        raise IntegrityFailure(
            f"the files of run {rules.run_reference(number)} written again differ from those "
            "recorded"
        )
    crash_point(platform, "after-files")
    now = utcnow()
    with transaction(platform.sessions) as session:
        _lock_runs(session)
        run = _run(session, run_id, lock=True)
        if run.status == "open":
            run.status, run.files_written_at, run.files = "files_written", now, json.dumps(written)
    crash_point(platform, "after-files-recorded")
    with transaction(platform.sessions) as session:
        _lock_runs(session)
        run = _run(session, run_id, lock=True)
        if run.status == "files_written":
            run.status, run.closed_at = "closed", now
            append_events(
                session,
                [
                    AccessEvent(
                        at=now,
                        tag=Tag.PAYMENT_RUN_CLOSED,
                        actor="application",
                        outcome="closed",
                        purpose=f"payment run {rules.run_reference(number)}",
                        fields=tuple(f"{name}:{digest}" for name, digest in written.items()),
                    )
                ],
            )
        crash_point(platform, "in-close")
    return get_run(platform, run_id)


def write_files(platform: Platform, run_id: uuid.UUID, folder: Path) -> dict[str, str]:
    """Every file of a run, from what it recorded; returns the digests of the SEPA files and of
    the manifest (which lists every file's)."""
    settings = platform.settings
    digests: dict[str, str] = {}
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with transaction(platform.sessions) as session:
        run = _run(session, run_id)
        info = remittance.run_info(run)
        header_time = run.opened_at.astimezone(PARIS)
        payees = list(
            session.scalars(
                select(Remittance).where(Remittance.run_id == run_id).order_by(Remittance.am_number)
            )
        )
        insurers = list(
            session.scalars(
                select(Settlement)
                .where(Settlement.run_id == run_id)
                .order_by(Settlement.amc_number)
            )
        )
        for row in payees:
            journal.check_row(session, row)
        for settlement in insurers:
            journal.check_row(session, settlement)
        ibans = _ibans(platform, session, payees)
        payer = sepa.Account(settings.payer_name, settings.payer_iban, settings.payer_bic)
        transfers = [
            sepa.Transfer(
                p.end_to_end_id,
                sepa.Account(p.creditor_name, ibans[p.id], p.bic),
                p.amount,
                f"{info.reference} remittance {p.am_number}: {p.invoices} invoices",
            )
            for p in payees
            if p.end_to_end_id is not None
        ]
        transfers_file = b""
        verdict = sepa.no_file()
        if transfers:
            header = sepa.Header(
                rules.message_id(run.number, rules.TRANSFERS),
                rules.message_id(run.number, rules.TRANSFERS),
                header_time,
            )
            transfers_file = sepa.transfers_file(
                header, payer, run.execution_date, transfers, validate=False
            )
            total = sum(t.amount for t in transfers)
            verdict = sepa.Verdict(transfers_file, sepa.PAIN_001, len(transfers), total)
        try:
            manifest = _documents(session, folder, info, payees, insurers)
        except BaseException:
            verdict.abandon()
            raise
        verdict.wait()  # the transfers file is written only once it validates
        if transfers:
            digests[TRANSFERS_FILE] = _write(folder, TRANSFERS_FILE, transfers_file, durable=True)
        crash_point(platform, "mid-files")
        debits = [
            sepa.Debit(
                s.end_to_end_id,
                sepa.Account(s.debtor_name, s.debtor_iban or "", s.debtor_bic or ""),
                s.amount,
                s.mandate_id or "",
                s.mandate_signed_on or run.run_date,
                f"{info.reference} settlement {s.amc_number}: {s.invoices} claims",
            )
            for s in insurers
            if s.end_to_end_id is not None
        ]
        if debits:
            header = sepa.Header(
                rules.message_id(run.number, rules.DEBITS),
                rules.message_id(run.number, rules.DEBITS),
                header_time,
            )
            data = sepa.debits_file(
                header, payer, settings.sepa_creditor_id, run.collection_date, debits
            )
            digests[DEBITS_FILE] = _write(folder, DEBITS_FILE, data, durable=True)
        manifest |= digests
        held = tuple(_held(run.held))
        summary = documents.summary(
            info,
            ((remittance.payee_info(p), p.invoices, p.lines) for p in payees),
            ((statements.settlement_info(s), s.invoices, s.lines) for s in insurers),
            held,
        )
        manifest[SUMMARY_FILE] = _write(
            folder, SUMMARY_FILE, documents.encode(summary), durable=True
        )
    listing = {"run": info.reference, "files": dict(sorted(manifest.items()))}
    digests[MANIFEST_FILE] = _write(folder, MANIFEST_FILE, documents.encode(listing), durable=True)
    _sync_folders(folder)
    return digests


def _documents(
    session: Session,
    folder: Path,
    info: documents.RunInfo,
    payees: list[Remittance],
    insurers: list[Settlement],
) -> dict[str, str]:
    """The JSON remittances and statements of a run; their digests."""
    manifest: dict[str, str] = {}
    by_id = {p.id: p for p in payees}
    counted: set[uuid.UUID] = set()
    for rid, invoices in remittance.invoices_of(session, info.id):
        row = by_id[rid]
        counted.add(rid)
        doc = remittance.document(info, row, invoices)
        name = f"remittances/{row.am_number}.json"
        manifest[name] = _write(folder, name, documents.encode(doc))
    if counted != by_id.keys():
        raise IntegrityFailure(f"run {info.reference}: a remittance has no invoice")
    by_settlement = {s.id: s for s in insurers}
    for sid, claims in statements.claims_of(session, info.id):
        insurer = by_settlement[sid]
        doc = statements.document(info, insurer, claims)
        name = f"statements/{insurer.amc_number}.json"
        manifest[name] = _write(folder, name, documents.encode(doc))
    return manifest


def rewrite_files(platform: Platform, number: int, out_dir: Path) -> RunView:
    """Write a finished run's files again (lost, damaged, or wanted elsewhere): the same bytes,
    checked against the digests the run recorded."""
    view = run_by_number(platform, number)
    if view.status == "open":
        raise Conflict(f"run {view.reference} is unfinished: `rempart payments run` finishes it")
    written = write_files(platform, view.id, out_dir / view.reference)
    if written != dict(view.files):
        raise IntegrityFailure(
            f"the files of run {view.reference} written again differ from those recorded"
        )
    return view


def _ibans(
    platform: Platform, session: Session, payees: Iterable[Remittance]
) -> dict[uuid.UUID, str]:
    """The IBAN each transfer goes to: the change recorded when the run opened, or the account
    of the convention; each row checked against its MAC before it is opened."""
    cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
    ibans = {}
    for payee in payees:
        if payee.end_to_end_id is None:
            continue
        if payee.bank_change_id is not None:
            change = bank_details.iban_of_change(platform, session, payee.bank_change_id)
            ibans[payee.id] = bank_details.open_iban(platform, session, change)
            continue
        professional = session.get(Professional, payee.professional_id)
        assert professional is not None
        journal.check_row(session, professional)
        ibans[payee.id] = cipher.open(
            "professionals", "iban", professional.id.hex, professional.iban_enc
        )
    return ibans


def _remove_leftovers(folder: Path) -> None:
    """A process killed between writing a durable file and renaming it leaves its temporary copy
    (the transfers one holds IBANs): the run that finishes the job, holding the run lock so that
    no one else is writing, removes them."""
    if folder.is_dir():
        for leftover in folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)


def _write(folder: Path, name: str, data: bytes, durable: bool = False) -> str:
    """Write a file of the run; owner-only (the transfers file holds IBANs).

    ``durable`` (the SEPA files, the summary, the manifest): under a temporary name, flushed to
    disk, then renamed, so that no one ever sees half of one. The others (one per professional,
    ten thousand in a large run, where each create, flush and rename costs a millisecond on a
    busy disk) are written in place: they count only once the manifest, written last, lists
    their digests; a run interrupted before is finished by writing them again, identical, and
    ``rempart payments files`` does the same after a disk loss.
    """
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A name of its own, whoever else writes this file at the same time (another thread of this
    # process, another process): each rename puts a whole file in place.
    target = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp") if durable else path
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        if durable:
            os.replace(target, path)
    except BaseException:
        if durable:
            target.unlink(missing_ok=True)  # no half-written copy left behind
        raise
    return hashlib.sha256(data).hexdigest()


def _sync_folders(folder: Path) -> None:
    """Make the renames durable before the run records its files as written."""
    for directory in (folder, folder / "remittances", folder / "statements"):
        if directory.is_dir():
            descriptor = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)


def _held(stored: str) -> Iterable[documents.Held]:
    for item in json.loads(stored):
        until = datetime.fromisoformat(item["until"]) if item["until"] else None
        amount = int(item["amount"].replace(".", ""))
        yield documents.Held(item["am_number"], item["reason"], until, item["invoices"], amount)


# --- reading back (operators) -------------------------------------------------------------------


def _run(session: Session, run_id: uuid.UUID, lock: bool = False) -> PaymentRun:
    run = session.get(PaymentRun, run_id, with_for_update=lock, populate_existing=lock)
    if run is None:
        raise NotFound("no such payment run")
    journal.check_row(session, run)
    return run


def get_run(platform: Platform, run_id: uuid.UUID) -> RunView:
    with transaction(platform.sessions) as session:
        run = _run(session, run_id)
        return _view(run, _by_insurer(session, [run_id]).get(run_id, ()))


def run_by_number(platform: Platform, number: int) -> RunView:
    with transaction(platform.sessions) as session:
        run_id = session.scalar(select(PaymentRun.id).where(PaymentRun.number == number))
    if run_id is None:
        raise NotFound(f"no payment run {rules.run_reference(number)}")
    return get_run(platform, run_id)


def list_runs(platform: Platform, limit: int = 50) -> list[RunView]:
    """The runs, newest first, each with its totals per insurer (the API, the command line and
    the console show the same)."""
    with transaction(platform.sessions) as session:
        runs = list(
            session.scalars(select(PaymentRun).order_by(PaymentRun.number.desc()).limit(limit))
        )
        totals = _by_insurer(session, [run.id for run in runs])
        found = []
        for run in runs:
            journal.check_row(session, run)
            found.append(_view(run, totals.get(run.id, ())))
        return found


def _by_insurer(
    session: Session, run_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[tuple[str, int, int], ...]]:
    """Each run's (AMC number, claims, amount) per insurer: one query for all the runs."""
    if not run_ids:
        return {}
    totals: dict[uuid.UUID, list[tuple[str, int, int]]] = {}
    rows = session.execute(
        select(Settlement.run_id, Settlement.amc_number, Settlement.invoices, Settlement.amount)
        .where(Settlement.run_id.in_(run_ids))
        .order_by(Settlement.amc_number)
    )
    for run_id, amc, claims, amount in rows:
        totals.setdefault(run_id, []).append((amc, claims, amount))
    return {run_id: tuple(found) for run_id, found in totals.items()}


def _view(run: PaymentRun, by_insurer: tuple[tuple[str, int, int], ...]) -> RunView:
    return RunView(
        run.id,
        run.number,
        rules.run_reference(run.number),
        run.run_date,
        run.cutoff,
        run.execution_date,
        run.collection_date,
        run.status,
        run.opened_at,
        run.closed_at,
        run.invoices,
        run.lines,
        run.transfers,
        run.transfer_total,
        run.debits,
        run.debit_total,
        tuple(_held(run.held)),
        json.loads(run.files) if run.files else {},
        by_insurer,
    )
