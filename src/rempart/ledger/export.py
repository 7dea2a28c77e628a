"""Export access events to Parquet, partitioned by day (``day=YYYY-MM-DD/``), for the incident
tools: DuckDB reads the folder on one machine, Spark or Trino read it unchanged at national size.

Each row is decoded from the entry's canonical event (the leaf), not from the query copies, and
keeps its leaf hash, so that any exported row can be proved against a checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from rempart.db import transaction
from rempart.errors import InvalidInput
from rempart.ledger.events import AccessEvent
from rempart.ledger.merkle import leaf_hash
from rempart.ledger.models import LedgerEntry

CHUNK = 50_000
SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("tag", pa.string()),
        ("actor", pa.string()),
        ("organisation", pa.string()),
        ("tenant", pa.string()),
        ("beneficiary", pa.string()),
        ("fields", pa.list_(pa.string())),
        ("purpose", pa.string()),
        ("outcome", pa.string()),
        ("ip", pa.string()),
        ("user_agent", pa.string()),
        ("leaf_hash", pa.binary(32)),
    ]
)


@dataclass
class ExportReport:
    events: int = 0
    files: int = 0
    days: int = 0


def export_events(
    sessions: sessionmaker[Session],
    out: Path,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportReport:
    """Write the events with ``since <= at < until`` to ``out`` (a new or empty folder)."""
    if out.exists() and any(out.iterdir()):
        raise InvalidInput(f"{out} is not empty: export into a new folder", field="out")
    out.mkdir(parents=True, exist_ok=True)
    conditions = []
    if since is not None:
        conditions.append(LedgerEntry.at >= since)
    if until is not None:
        conditions.append(LedgerEntry.at < until)
    report, days = ExportReport(), set()
    with transaction(sessions) as session:
        total = (
            session.scalar(select(func.count()).select_from(LedgerEntry).where(*conditions)) or 0
        )
        last = -1
        while True:
            chunk = session.execute(
                select(LedgerEntry.seq, LedgerEntry.event)
                .where(LedgerEntry.seq > last, *conditions)
                .order_by(LedgerEntry.seq)
                .limit(CHUNK)
            ).all()
            if not chunk:
                break
            by_day: dict[str, list[tuple[int, bytes]]] = {}
            for seq, encoded in chunk:
                day = AccessEvent.decode(encoded).at.date().isoformat()
                by_day.setdefault(day, []).append((seq, encoded))
            for day, rows in by_day.items():
                _write(out / f"day={day}" / f"part-{rows[0][0]:012d}.parquet", rows)
                report.files += 1
                days.add(day)
            report.events += len(chunk)
            last = chunk[-1][0]
            if progress:
                progress(report.events, total)
    report.days = len(days)
    return report


def _write(path: Path, rows: list[tuple[int, bytes]]) -> None:
    events = [AccessEvent.decode(encoded) for _, encoded in rows]
    columns: dict[str, list[object]] = {"seq": [seq for seq, _ in rows]}
    for name in SCHEMA.names[1:-1]:
        columns[name] = [getattr(e, name) for e in events]
    columns["fields"] = [list(e.fields) for e in events]
    columns["leaf_hash"] = [leaf_hash(encoded) for _, encoded in rows]
    table = pa.Table.from_pydict(columns, schema=SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    os.chmod(path, 0o600)  # pseudonyms and professionals' addresses: owner only
