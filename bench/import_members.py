"""Member import with encryption and blind indexes, against a plaintext import of the same rows.

The baseline does what the import does minus the protection: the same reader and validation, the
same per-batch look-ups of existing cards and people, the same three tables, but with plaintext
columns and plaintext keys. Their ratio is the cost of never storing a NIR or a name in clear.
Both run in the same process, alternating, on fresh SQLite files (or PostgreSQL schemas).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
    select,
)

from bench.common import median, record, scratch_database, timed
from bench.data import member_file
from rempart.db import make_engine
from rempart.platform import Platform, initialise
from rempart.registry import services
from rempart.registry.csv_rows import RowError
from rempart.registry.member_file import MemberRow, read_member_file
from rempart.registry.member_import import ImportOptions, import_members
from rempart.settings import Settings

AMC = "BENCH01"
PLAN = {
    "code": "BASE",
    "name": "Base",
    "responsible": True,
    "valid_from": "2025-01-01",
    "valid_to": None,
    "guarantees": {"PHAR": {"br_total_pct": 100}},
}
BATCH = 2000

plain = MetaData()
plain_members = Table(
    "plain_members",
    plain,
    Column("id", Uuid, primary_key=True),
    Column("member_number", String(20), unique=True),
)
plain_beneficiaries = Table(
    "plain_beneficiaries",
    plain,
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, index=True),
    Column("rights_key", String(40), unique=True),
    Column("nir", String(15), index=True),
    Column("last_name", String(100)),
    Column("first_name", String(100)),
    Column("birth_date", Date),
    Column("birth_rank", Integer),
    Column("relationship", String(10)),
    Column("status", String(10)),
)
plain_periods = Table(
    "plain_periods",
    plain,
    Column("id", Uuid, primary_key=True),
    Column("beneficiary_id", Uuid),
    Column("plan_code", String(20)),
    Column("start_date", Date),
    Column("end_date", Date),
    Column("suspended_domains", String(100)),
)


def plaintext_import(engine: Engine, path: Path) -> int:
    """The baseline: the same rows, validated and upserted, in clear."""
    rows = 0
    with engine.begin() as conn, path.open("rb") as stream:
        batch: list[MemberRow] = []
        for row in read_member_file(stream):
            if isinstance(row, RowError):
                continue
            batch.append(row)
            if len(batch) == BATCH:
                rows += _plain_batch(conn, batch)
                batch = []
        rows += _plain_batch(conn, batch)
    return rows


def _plain_batch(conn: Connection, batch: list[MemberRow]) -> int:
    if not batch:
        return 0
    keys = {f"{r.member_number}|{r.birth_date}|{r.birth_rank}": r for r in batch}
    key_column = plain_beneficiaries.c.rights_key
    existing = set(conn.scalars(select(key_column).where(key_column.in_(list(keys)))))
    numbers = {r.member_number for r in batch}
    number_column = plain_members.c.member_number
    members = dict(
        conn.execute(
            select(number_column, plain_members.c.id).where(number_column.in_(list(numbers)))
        ).all()
    )
    new_members = [{"id": uuid.uuid4(), "member_number": n} for n in numbers if n not in members]
    members.update({m["member_number"]: m["id"] for m in new_members})
    if new_members:
        conn.execute(insert(plain_members), new_members)
    people: list[dict[str, object]] = []
    periods: list[dict[str, object]] = []
    for key, r in keys.items():
        if key in existing:
            continue
        b_id = uuid.uuid4()
        people.append(
            {
                "id": b_id,
                "member_id": members[r.member_number],
                "rights_key": key,
                "nir": r.nir,
                "last_name": r.last_name,
                "first_name": r.first_name,
                "birth_date": r.birth_date,
                "birth_rank": r.birth_rank,
                "relationship": r.relationship,
                "status": "active",
            }
        )
        periods.append(
            {
                "id": uuid.uuid4(),
                "beneficiary_id": b_id,
                "plan_code": r.plan_code,
                "start_date": r.start_date,
                "end_date": r.end_date,
                "suspended_domains": ";".join(r.suspended_domains),
            }
        )
    conn.execute(insert(plain_beneficiaries), people)
    conn.execute(insert(plain_periods), periods)
    return len(people)


def fresh_platform(home: Path, database_url: str | None) -> Platform:
    shutil.rmtree(home, ignore_errors=True)
    platform, _ = initialise(Settings(env="test", home=home, database_url=database_url))
    services.add_tenant(platform, AMC, "Bench")
    services.load_plan(platform, AMC, json.dumps(PLAN).encode())
    return platform


def encrypted_import(platform: Platform, path: Path) -> int:
    with path.open("rb") as stream:
        report = import_members(platform, AMC, stream, ImportOptions())
    assert report.committed
    assert report.rejected == 0
    return report.inserted


def _time_encrypted(home: Path, database_url: str | None, source: Path) -> float:
    with scratch_database(database_url) as url:
        platform = fresh_platform(home, url)
        try:
            return timed(lambda: encrypted_import(platform, source))
        finally:
            platform.close()


def _time_plaintext(file: Path, database_url: str | None, source: Path) -> float:
    engine = make_engine(database_url or f"sqlite:///{file}")
    plain.drop_all(engine)
    plain.create_all(engine)
    try:
        return timed(lambda: plaintext_import(engine, source))
    finally:
        plain.drop_all(engine)
        engine.dispose()


def main(rows: int, rounds: int, database_url: str | None) -> None:
    path = member_file(rows)
    warmup = member_file(2000)
    work = Path(tempfile.mkdtemp(prefix="rempart-bench-"))
    try:
        encrypted, plaintext = [], []
        for n in range(rounds + 1):  # round 0 warms caches and imports, and is not counted
            source = warmup if n == 0 else path
            count = 2000 if n == 0 else rows
            t_enc = _time_encrypted(work / f"e{n}", database_url, source)
            t_plain = _time_plaintext(work / f"p{n}.sqlite3", database_url, source)
            if n:
                encrypted.append(count / t_enc)
                plaintext.append(count / t_plain)
                print(
                    f"round {n}: encrypted {count / t_enc:,.0f} rows/s, "
                    f"plaintext {count / t_plain:,.0f} rows/s"
                )
        backend = "sqlite" if database_url is None else "postgresql"
        value = median(encrypted)
        record(
            f"import_members_{backend}",
            value,
            "beneficiaries/s",
            median(plaintext),
            "1 M beneficiaries in <= 60 s (16,667/s) on 2 cores, ratio >= 0.5",
            rows=rows,
            rounds=rounds,
            seconds_per_million=round(1_000_000 / value, 1),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="PostgreSQL URL; default: SQLite files")
    args = parser.parse_args()
    main(args.rows, args.rounds, args.database_url)
