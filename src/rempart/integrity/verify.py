"""``rempart integrity verify``: every business row against its MAC and the journal.

The journal says which rows the application wrote, with their latest MACs; the ledger holds the
digest of each journal block, under signed checkpoints. So a row altered outside the application
fails its MAC; a row put back to an earlier version has a valid MAC that is no longer the latest;
a row inserted outside the application was never journalled; a deleted one is journalled but
absent. Each is named by table and id (ids carry no personal data).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from rempart.db import Base, table_of, transaction
from rempart.integrity import rowmac
from rempart.integrity.journal import key, spec
from rempart.integrity.models import JournalBlock
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.models import LedgerEntry
from rempart.ledger.services import LedgerReport, verify_ledger
from rempart.platform import Platform

_YIELD = 5_000


def protected_tables() -> list[Table]:
    """Every business table: those whose rows carry a MAC."""
    # Imported for their tables: the verification covers every capability's business rows.
    import rempart.claims.models
    import rempart.guard.models
    import rempart.identity.models
    import rempart.payments.models
    import rempart.registry.models  # noqa: F401

    return [t for t in Base.metadata.sorted_tables if "row_mac" in t.c]


@dataclass(frozen=True)
class TableState:
    name: str
    rows: int
    commitment: str  # SHA-256 over the (id, MAC) pairs the journal commits


@dataclass
class IntegrityReport:
    ledger: LedgerReport
    tables: list[TableState] = field(default_factory=list)
    blocks: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.ledger.intact and not self.problems


def verify_integrity(
    platform: Platform, progress: Callable[[int, int], None] | None = None
) -> IntegrityReport:
    """Verify the ledger, then the journal against the ledger, then every row of every table."""
    ledger = verify_ledger(platform.sessions, platform.keyring, platform.settings.ledger_origin)
    report = IntegrityReport(ledger)
    tables = protected_tables()
    with transaction(platform.sessions) as session:
        # One snapshot for the ledger, the journal and the rows (PostgreSQL reads committed data
        # per statement by default; a write committed in between would look like tampering).
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        secret = key(session)
        anchored = _anchored(session)
        total = sum(session.scalar(select(func.count()).select_from(t)) or 0 for t in tables)
        done = 0
        for table in tables:
            expected = _replay(session, table.name, anchored, report)
            done = _compare(session, table, secret, expected, report, done)
            if progress:
                progress(done, total)
        for seq in sorted(anchored):
            report.problems.append(
                f"journal block {seq} ({anchored[seq][0]}) is recorded in the ledger but "
                "missing: deleted outside the application"
            )
        for table_name in _unknown_tables(session, {t.name for t in tables}):
            report.problems.append(
                f"the journal names a table that holds no business rows ({table_name}): "
                "inserted outside the application"
            )
    return report


def _anchored(session: Session) -> dict[int, tuple[str, str]]:
    """Journal block → (table, digest), as the ledger recorded them."""
    anchored: dict[int, tuple[str, str]] = {}
    entries = table_of(LedgerEntry)
    rows = session.execute(
        select(entries.c.event).where(entries.c.tag == Tag.ROWS_WRITTEN).order_by(entries.c.seq)
    ).scalars()
    for encoded in rows:
        for item in AccessEvent.decode(encoded).fields:
            seq, table, digest = item.split(":")
            anchored[int(seq)] = (table, digest)
    return anchored


def _blocks(session: Session, table: str) -> Iterator[tuple[int, bytes]]:
    """The table's journal blocks in order: (number, entries)."""
    blocks = table_of(JournalBlock)
    last = 0
    while True:
        chunk = session.execute(
            select(blocks.c.seq, blocks.c.entries)
            .where(blocks.c.table_name == table, blocks.c.seq > last)
            .order_by(blocks.c.seq)
            .limit(100)
        ).all()
        if not chunk:
            return
        yield from ((seq, entries) for seq, entries in chunk)
        last = chunk[-1][0]


def _replay(
    session: Session,
    table: str,
    anchored: dict[int, tuple[str, str]],
    report: IntegrityReport,
) -> dict[uuid.UUID, bytes]:
    """The rows the application left in ``table``, with their latest MACs."""
    rows: dict[uuid.UUID, bytes] = {}
    for seq, blob in _blocks(session, table):
        recorded = anchored.pop(seq, None)
        if recorded is None:
            report.problems.append(
                f"journal block {seq} ({table}) is not in the ledger: "
                "inserted outside the application"
            )
            continue
        if recorded != (table, rowmac.journal_digest(seq, table, blob)):
            report.problems.append(
                f"journal block {seq} ({table}) differs from its digest in the ledger: "
                "altered outside the application"
            )
            continue
        report.blocks += 1
        try:
            for op, row_id, mac in rowmac.entries(blob):
                if op == rowmac.DELETE:
                    rows.pop(row_id, None)
                else:
                    rows[row_id] = mac
        except ValueError:  # cannot happen to a block whose digest the ledger holds
            report.problems.append(f"journal block {seq} ({table}) cannot be read")
    return rows


def _compare(
    session: Session,
    table: Table,
    secret: bytes,
    expected: dict[uuid.UUID, bytes],
    report: IntegrityReport,
    done: int,
) -> int:
    s = spec(table)
    report.tables.append(TableState(table.name, len(expected), rowmac.commitment(expected)))
    result = session.execute(select(table).execution_options(yield_per=_YIELD)).mappings()
    for row in result:
        done += 1
        row_id, stored = row["id"], row["row_mac"]
        latest = expected.pop(row_id, None)
        where = f"{table.name} row {row_id}"
        if stored is None or not hmac.compare_digest(
            rowmac.row_mac(secret, s.name, s.columns, dict(row)), stored
        ):
            report.problems.append(
                f"{where}: altered outside the application (its MAC does not match its columns)"
            )
        elif latest is None:
            report.problems.append(
                f"{where}: inserted outside the application (the journal never wrote it)"
            )
        elif latest != stored:
            report.problems.append(
                f"{where}: an earlier version was put back (its MAC is not the latest written)"
            )
    for row_id in sorted(expected):
        report.problems.append(
            f"{table.name} row {row_id}: deleted outside the application (the journal wrote it)"
        )
    return done


def _unknown_tables(session: Session, known: set[str]) -> list[str]:
    blocks = table_of(JournalBlock)
    names = session.execute(select(blocks.c.table_name).distinct()).scalars().all()
    return sorted(set(names) - known)
