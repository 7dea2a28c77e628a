"""Invoice ingestion end to end: lines per second through `rempart invoices ingest`'s path.

Measured: a JSON Lines file of invoices (pharmacy, doctors, dental care with a yearly ceiling,
optics with a renewal counter) read, validated, looked up (blind index, rights, plan),
adjudicated, checked for duplicates, booked against each patient's counters under a lock, and
written with row MACs, the integrity journal and one ledger event per invoice.

The baseline, in the same run on the same database: a bare bulk insert of the very rows the
ingestion wrote (invoices, lines, bookings, renewal uses) into plain tables, in as many
transactions. The ratio is what adjudication and its protections cost over merely storing the
answer. ``--profile`` prints where the time goes (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import pstats
import random
import shutil
import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    create_engine,
    insert,
    select,
    text,
)

from bench.common import record, timed
from bench.data import member_file
from rempart.claims.engine import Beneficiary, Context, adjudicate
from rempart.claims.ingest import BATCH, IngestReport, ingest, parse_line
from rempart.claims.models import Booking, Invoice, InvoiceLine, RenewalUse
from rempart.claims.schemas import IngestLine
from rempart.db import make_engine, table_of
from rempart.identifiers import luhn_complete, make_french_iban
from rempart.platform import Platform, initialise
from rempart.registry import services
from rempart.registry.member_import import ImportOptions, import_members
from rempart.registry.plan_format import parse_plan
from rempart.registry.rights import Period
from rempart.settings import Settings

AMC = "BENCH01"
PLAN = {
    "code": "BASE",
    "name": "Base",
    "responsible": True,
    "valid_from": "2025-01-01",
    "valid_to": None,
    "guarantees": {
        "PHAR": {"br_total_pct": 100, "exclude_amo_rates": [15]},
        "MED": {"br_total_pct": 100},
        "DESO": {"br_total_pct": 100},
        "DEPR": {
            "br_total_pct": 300,
            "ceiling": {"amount": "1500.00", "period": "calendar_year"},
        },
        "OPTI": {
            "amount": "300.00",
            "per": "equipment",
            "frame_cap": "100.00",
            "renewal_months": 24,
        },
    },
}
BILLERS = {"pharmacist": "761000001", "gp": "761000002", "dentist": "761000003"}
BILLERS["optician"] = "761000004"
WARMUP_LINES = 2000

plain = MetaData()
PLAIN = {
    name: Table(f"plain_{name}", plain, *columns)
    for name, columns in {
        "invoices": (
            Column("id", Uuid, primary_key=True),
            Column("professional_id", Uuid),
            Column("beneficiary_id", Uuid),
            Column("amc_number", String(10)),
            Column("pseudonym", String(32)),
            Column("invoice_number", String(30)),
            Column("guaranteed", Boolean),
            Column("prior_agreement", String(40)),
            Column("outcome", String(10)),
            Column("status", String(10)),
            Column("total_amc", BigInteger),
            Column("idempotency_key", LargeBinary(32)),
            Column("request_digest", LargeBinary(32)),
            Column("submitted_by", String(60)),
            Column("submitted_at", DateTime(timezone=True)),
            Column("cancelled_at", DateTime(timezone=True)),
            Column("paid_at", DateTime(timezone=True)),
        ),
        "invoice_lines": (
            Column("id", Uuid, primary_key=True),
            Column("invoice_id", Uuid),
            Column("position", Integer),
            Column("act_code", String(20)),
            Column("domain", String(4)),
            Column("care_date", Date),
            Column("quantity", Integer),
            Column("billed", BigInteger),
            Column("br", BigInteger),
            Column("amo_rate", Integer),
            Column("amo_paid", BigInteger),
            Column("optam", Boolean),
            Column("basket", String(20)),
            Column("price_limit", BigInteger),
            Column("item_type", String(30)),
            Column("amc_amount", BigInteger),
            Column("amo_amount", BigInteger),
            Column("reject_codes", String(100)),
            Column("explanation", Text),
            Column("accepted", Boolean),
        ),
        "accumulator_bookings": (
            Column("id", Uuid, primary_key=True),
            Column("beneficiary_id", Uuid),
            Column("domain", String(4)),
            Column("care_date", Date),
            Column("amount", BigInteger),
            Column("source_kind", String(20)),
            Column("source_id", Uuid),
            Column("booked_at", DateTime(timezone=True)),
        ),
        "renewal_uses": (
            Column("id", Uuid, primary_key=True),
            Column("beneficiary_id", Uuid),
            Column("renewal_key", String(40)),
            Column("care_date", Date),
            Column("source_kind", String(20)),
            Column("source_id", Uuid),
            Column("booked_at", DateTime(timezone=True)),
        ),
    }.items()
}
REAL = {
    "invoices": table_of(Invoice),
    "invoice_lines": table_of(InvoiceLine),
    "accumulator_bookings": table_of(Booking),
    "renewal_uses": table_of(RenewalUse),
}


# --- data ---------------------------------------------------------------------------------------


def cards(members: Path) -> list[tuple[str, str, int]]:
    with members.open(newline="", encoding="utf-8") as f:
        return [
            (row["member_number"], row["birth_date"], int(row["birth_rank"]))
            for row in csv.DictReader(f)
        ]


def _line(domain: str, day: date, billed: int, br: int, rate: int, **extra: Any) -> dict[str, Any]:
    return {
        "act_code": extra.pop("act_code", "C"),
        "domain": domain,
        "care_date": day.isoformat(),
        "quantity": 1,
        "billed": f"{billed / 100:.2f}",
        "br": f"{br / 100:.2f}",
        "amo_rate": rate,
        **extra,
    }


def invoice_file(path: Path, lines: int, people: list[tuple[str, str, int]], seed: int) -> int:
    """Invoices of 1 to 4 lines until ``lines`` lines; returns the number of invoices."""
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    written = invoices = 0
    with path.open("w", encoding="utf-8") as out:
        while written < lines:
            member, born, rank = rng.choice(people)
            # Most invoices are sent within days of the care; a tenth come late.
            day = today - timedelta(days=rng.randrange(0, 7 if rng.random() < 0.9 else 300))
            kind = rng.random()
            if kind < 0.70:
                biller = "pharmacist"
                body = [
                    _line("PHAR", day, b, b, rng.choice((65, 30, 15)), act_code=f"CIP{n}")
                    for n in range(rng.randint(1, 4))
                    for b in (rng.randrange(150, 6000),)
                ]
            elif kind < 0.85:
                biller, body = "gp", [_line("MED", day, 3000, 3000, 70)]
            elif kind < 0.95:
                biller = "dentist"
                body = [_line("DESO", day, 2930, 2930, 60)]
                if rng.random() < 0.5:
                    body.append(_line("DEPR", day, rng.randrange(50000, 100000), 10750, 60))
            else:
                biller = "optician"
                body = [
                    _line("OPTI", day, 15000, 5, 60, amo_paid="0.03", item_type="frame"),
                    _line("OPTI", day, 12000, 5, 60, amo_paid="0.03", item_type="lens"),
                    _line("OPTI", day, 12000, 5, 60, amo_paid="0.03", item_type="lens"),
                ]
            body = body[: max(1, lines - written)]
            entry = {
                "am_number": BILLERS[biller],
                "amc_number": AMC,
                "member_number": member,
                "birth_date": born,
                "birth_rank": rank,
                "invoice_number": f"B-{invoices}",
                "lines": body,
            }
            if invoices % 4 == 0:  # a quarter of the senders ask for safe retries
                entry["idempotency_key"] = f"k-{seed}-{invoices}"
            out.write(json.dumps(entry) + "\n")
            written += len(body)
            invoices += 1
    return invoices


# --- the platform -------------------------------------------------------------------------------


def fresh_database(work: Path, database_url: str | None, name: str) -> tuple[str, str | None]:
    """A new SQLite file, or a new PostgreSQL schema (returned to be dropped)."""
    if database_url is None:
        return f"sqlite:///{work / name}.sqlite3", None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    separator = "&" if "?" in database_url else "?"
    return f"{database_url}{separator}options=-csearch_path%3D{schema}", schema


def drop_schema(database_url: str | None, schema: str | None) -> None:
    if database_url and schema:
        admin = create_engine(database_url)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def world(home: Path, url: str, members: Path) -> Platform:
    platform, _ = initialise(Settings(env="test", home=home, database_url=url))
    services.add_tenant(platform, AMC, "Bench")
    services.load_plan(platform, AMC, json.dumps(PLAN).encode())
    with members.open("rb") as stream:
        assert import_members(platform, AMC, stream, ImportOptions()).committed
    iban = make_french_iban("30004", "00001", "12345678901")
    rows = [
        f"{am},{luhn_complete(f'200000000{i}')},,Bench {name},{name},true,{iban},BNPAFRPPXXX,"
        for i, (name, am) in enumerate(BILLERS.items())
    ]
    data = "am_number,rpps,finess,name,profession,optam,iban,bic,networks\n" + "\n".join(rows)
    assert services.import_professionals(platform, io.BytesIO(data.encode())).inserted == 4
    return platform


def run(platform: Platform, path: Path, batch: int = BATCH) -> IngestReport:
    with path.open("rb") as stream:
        report = ingest(platform, stream, actor="bench", batch_size=batch)
    assert not report.errors, report.errors[:3]
    return report


# --- the baseline -------------------------------------------------------------------------------


def result_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as connection:
        return {
            name: [
                {k: v for k, v in row.items() if k != "row_mac"}
                for row in connection.execute(select(table)).mappings()
            ]
            for name, table in REAL.items()
        }


def bare_insert(engine: Engine, rows: dict[str, list[dict[str, Any]]], transactions: int) -> None:
    """The same rows into plain tables, split into as many transactions as the ingestion had."""
    for part in range(transactions):
        with engine.begin() as connection:
            for name, table in PLAIN.items():
                chunk = rows[name][part::transactions]
                if chunk:
                    connection.execute(insert(table), chunk)


# --- the parts, alone ---------------------------------------------------------------------------


def parse_rate(path: Path) -> float:
    raw = path.read_bytes().splitlines()
    lines = 0

    def parse() -> None:
        nonlocal lines
        for n, line in enumerate(raw, 1):
            parsed = parse_line(n, line)
            assert isinstance(parsed, IngestLine)
            lines += len(parsed.lines)

    seconds = timed(parse)
    return lines / seconds


def engine_rate(path: Path) -> float:
    """The pure engine on the same invoices, counters empty (no I/O at all)."""
    plan = parse_plan(PLAN)
    periods = (Period("BASE", date(2025, 1, 1), None),)
    professions = {am: name for name, am in BILLERS.items()}
    invoices = []
    for n, raw in enumerate(path.read_bytes().splitlines(), 1):
        parsed = parse_line(n, raw)
        assert isinstance(parsed, IngestLine)
        submission = parsed.submission(None)
        context = Context(
            Beneficiary(submission.card.birth_date, periods),
            professions[parsed.am_number],
            lambda _code, _day: plan,
        )
        invoices.append((submission.lines, context))
    count = sum(len(lines) for lines, _ in invoices)
    return count / timed(lambda: [adjudicate(lines, context) for lines, context in invoices])


# --- main ---------------------------------------------------------------------------------------


def main(
    lines: int, database_url: str | None, profile: bool = False, batch: int = BATCH
) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="rempart-bench-"))
    members = member_file(max(2000, lines // 5))
    people = cards(members)
    warmup, source = work / "warmup.jsonl", work / "invoices.jsonl"
    invoice_file(warmup, WARMUP_LINES, people, seed=1)
    invoices = invoice_file(source, lines, people, seed=2)
    url, schema = fresh_database(work, database_url, "bench")
    profiler = cProfile.Profile()
    try:
        platform = world(work / "home", url, members)
        run(platform, warmup)  # keys, plans and caches; not counted
        if profile:
            profiler.enable()
        seconds = timed(lambda: run(platform, source, batch))
        profiler.disable()
        rows = result_rows(platform.engine)
        platform.close()
        plain_engine = make_engine(url if database_url else f"sqlite:///{work / 'plain'}.sqlite3")
        plain.create_all(plain_engine)
        transactions = -(-len(rows["invoices"]) // batch)
        bare = timed(lambda: bare_insert(plain_engine, rows, transactions))
        plain_engine.dispose()
        parsing, valuing = parse_rate(source), engine_rate(source)
    finally:
        drop_schema(database_url, schema)
        shutil.rmtree(work, ignore_errors=True)
    if profile:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    backend = "sqlite" if database_url is None else "postgresql"
    value = lines / seconds
    stored = len(rows["invoice_lines"])  # the warm-up's lines too: the rate is what counts
    print(f"ingested {lines:,} lines ({invoices:,} invoices) in {seconds:.1f} s")
    print(f"alone: parsing {parsing:,.0f} lines/s, the engine {valuing:,.0f} lines/s")
    if profile:  # the profiler slows everything down: nothing to record
        return {}
    return record(
        f"invoices_{backend}",
        value,
        "lines/s",
        stored / bare,
        "42,000 invoice lines/s end to end (issue 4)",
        lines=lines,
        invoices=invoices,
        seconds=round(seconds, 2),
        batch=batch,
        parse_lines_per_s=round(parsing, 1),
        engine_lines_per_s=round(valuing, 1),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=50_000, help="invoice lines to ingest")
    parser.add_argument("--database-url", help="PostgreSQL URL; default: SQLite files")
    parser.add_argument("--batch", type=int, default=BATCH, help="invoices per transaction")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the run")
    args = parser.parse_args()
    main(args.lines, args.database_url, args.profile, args.batch)
