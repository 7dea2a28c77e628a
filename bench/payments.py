"""A payment run end to end: accepted invoice lines to validated SEPA files, JSON remittances
and settlement statements.

Set-up (not timed): N accepted lines (invoices of 1 to 4 lines, a tenth of the lines rejected)
for P professionals and three insurers (two with a direct-debit mandate), inserted directly with
their row MACs and journal, as the invoices path would have left them.

Timed: ``payments.runs.run_payments``: taking the invoices (each invoice's MAC checked, its lines
summed, one item per invoice, the remittances and settlements, ``paid_at`` set, in one
transaction), then the pain.001 and pain.008 built and validated against their XSDs, one JSON
remittance per professional, one statement per insurer, the summary and the manifest, each
file written to a temporary name, flushed to disk and renamed.

Baseline, in the same run on the same database: the very rows the run reads (each line with its
invoice, per professional) written as plain CSV, without validation, MACs or rendering. The
ratio is what exactly-once, integrity and validated files cost over dumping the rows.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import pstats
import random
import shutil
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

from bench.common import record, timed
from rempart.claims.models import Invoice, InvoiceLine
from rempart.db import table_of, transaction
from rempart.identifiers import luhn_complete, make_french_iban
from rempart.integrity import journal
from rempart.payments import runs
from rempart.payments.models import PaymentItem, Remittance
from rempart.payments.statements import set_mandate
from rempart.platform import Platform, initialise
from rempart.registry import services
from rempart.settings import Settings

INSURERS = ("BENCH01", "BENCH02", "BENCH03")
CHUNK = 50_000  # lines per set-up transaction
DOMAINS = (("PHAR", "pharmacist"), ("MED", "gp"), ("DESO", "dentist"), ("AUXM", "nurse"))


def fresh_database(work: Path, database_url: str | None) -> tuple[str, str | None]:
    if database_url is None:
        return f"sqlite:///{work / 'bench'}.sqlite3", None
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


def world(home: Path, url: str, professionals: int) -> tuple[Platform, list[tuple[uuid.UUID, str]]]:
    """Insurers (two with a mandate) and ``professionals`` practices of four professions."""
    platform, _ = initialise(Settings(env="test", home=home, database_url=url))
    for n, amc in enumerate(INSURERS):
        services.add_tenant(platform, amc, f"Mutuelle Bench {n}")
    for amc in INSURERS[:2]:
        iban = make_french_iban("30002", "00550", f"{len(amc) * 7:011d}")
        set_mandate(platform, amc, f"MDT-{amc}", date(2025, 1, 2), iban, "PSSTFRPPXXX", "bench")
    header = "am_number,rpps,finess,name,profession,optam,iban,bic,networks\n"
    rows = []
    for i in range(professionals):
        profession = DOMAINS[i % len(DOMAINS)][1]
        iban = make_french_iban("30004", f"{i % 99999:05d}", f"{i:011d}")
        rows.append(
            f"{700000000 + i},{luhn_complete(f'3{i:09d}')},,Cabinet n°{i} de l'Étang,"
            f"{profession},true,{iban},BNPAFRPPXXX,"
        )
    report = services.import_professionals(
        platform, io.BytesIO((header + "\n".join(rows)).encode())
    )
    assert report.inserted == professionals, report.errors
    with platform.sessions() as session:
        from rempart.registry.models import Professional

        found = session.execute(select(Professional.id, Professional.profession)).all()
    return platform, [(pid, profession) for pid, profession in found]


def insert_invoices(
    platform: Platform, lines: int, professionals: list[tuple[uuid.UUID, str]], seed: int = 5
) -> int:
    """Accepted (and some partial or rejected) invoices until ``lines`` lines; returns the
    number of invoices. Submitted yesterday, so that a run today takes them all."""
    rng = random.Random(seed)
    submitted = datetime.now(UTC) - timedelta(days=1)
    domain_of = {profession: domain for domain, profession in DOMAINS}
    written = count = 0
    while written < lines:
        invoices: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        target = min(lines, written + CHUNK)
        while written < target:
            pid, profession = rng.choice(professionals)
            invoice_id = uuid.uuid4()
            n = min(rng.randint(1, 4), target - written)
            total, codes = 0, []
            for position in range(n):
                billed = rng.randrange(500, 20_000)
                amo = billed * 6 // 10
                accepted = rng.random() >= 0.1
                amount = billed - amo if accepted else 0
                total += amount
                codes.append(not accepted)
                items.append(
                    {
                        "id": uuid.uuid4(),
                        "invoice_id": invoice_id,
                        "position": position,
                        "act_code": "C",
                        "domain": domain_of[profession],
                        "care_date": submitted.date(),
                        "quantity": 1,
                        "billed": billed,
                        "br": billed,
                        "amo_rate": 60,
                        "amo_paid": None,
                        "optam": None,
                        "basket": None,
                        "price_limit": None,
                        "item_type": None,
                        "amc_amount": amount,
                        "amo_amount": amo,
                        "reject_codes": "" if accepted else "NOT_COVERED",
                        "explanation": "bench",
                        "accepted": accepted,
                    }
                )
            status = "accepted" if not any(codes) else ("rejected" if all(codes) else "partial")
            invoices.append(
                {
                    "id": invoice_id,
                    "professional_id": pid,
                    "beneficiary_id": None,
                    "amc_number": rng.choice(INSURERS),
                    "pseudonym": f"{rng.getrandbits(128):032x}",
                    "invoice_number": f"F{count:09d}",
                    "guaranteed": False,
                    "prior_agreement": None,
                    "outcome": status,
                    "status": status,
                    "total_amc": total,
                    "idempotency_key": None,
                    "request_digest": None,
                    "submitted_by": "bench",
                    "submitted_at": submitted,
                    "cancelled_at": None,
                    "paid_at": None,
                }
            )
            written += n
            count += 1
        with transaction(platform.sessions) as session:
            journal.insert_rows(session, table_of(Invoice), invoices)
            journal.insert_rows(session, table_of(InvoiceLine), items)
    return count


def plain_csv(platform: Platform, out: Path) -> int:
    """The baseline: the run's rows, each line with its invoice and professional, as CSV."""
    items, invoices, lines = table_of(PaymentItem), table_of(Invoice), table_of(InvoiceLine)
    remittances = table_of(Remittance)
    query = (
        select(
            remittances.c.am_number,
            invoices.c.id,
            invoices.c.invoice_number,
            invoices.c.outcome,
            items.c.amount,
            lines.c.position,
            lines.c.act_code,
            lines.c.domain,
            lines.c.care_date,
            lines.c.billed,
            lines.c.amc_amount,
            lines.c.reject_codes,
        )
        .join(invoices, invoices.c.id == items.c.invoice_id)
        .join(lines, lines.c.invoice_id == invoices.c.id)
        .join(remittances, remittances.c.id == items.c.remittance_id)
        .order_by(items.c.remittance_id, invoices.c.submitted_at, invoices.c.id, lines.c.position)
    )
    written = 0
    with out.open("w", newline="") as f, platform.engine.connect() as connection:
        writer = csv.writer(f)
        for row in connection.execution_options(yield_per=5000).execute(query):
            writer.writerow(row)
            written += 1
    return written


def main(
    lines: int, professionals: int = 0, database_url: str | None = None, profile: bool = False
) -> dict[str, object]:
    """Time one run of ``lines`` lines for ``professionals`` practices (0: one per 100 lines)."""
    professionals = professionals or max(10, lines // 100)
    work = Path(tempfile.mkdtemp(prefix="rempart-bench-pay-"))
    url, schema = fresh_database(work, database_url)
    profiler = cProfile.Profile()
    try:
        platform, practices = world(work / "home", url, professionals)
        start = time.perf_counter()
        invoices = insert_invoices(platform, lines, practices)
        print(
            f"set-up: {lines:,} lines, {invoices:,} invoices in {time.perf_counter() - start:.1f} s"
        )
        out = work / "out"
        if profile:
            profiler.enable()
        phases: dict[str, float] = {}
        cpu = time.process_time()
        start = time.perf_counter()
        opening = runs.open_run(platform, None, "bench")
        phases["take"] = time.perf_counter() - start
        assert opening.run_id is not None
        view = runs.finish_run(platform, opening.run_id, out)
        seconds = time.perf_counter() - start
        phases["cpu"] = time.process_time() - cpu
        phases["files"] = seconds - phases["take"]
        profiler.disable()
        baseline_rows = 0

        def baseline() -> None:
            nonlocal baseline_rows
            baseline_rows = plain_csv(platform, work / "plain.csv")

        bare = timed(baseline)
        assert baseline_rows == view.lines, (baseline_rows, view.lines)
        files = sum(1 for p in (out / view.reference).rglob("*") if p.is_file())
        platform.close()
    finally:
        drop_schema(database_url, schema)
        shutil.rmtree(work, ignore_errors=True)
    if profile:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        return {}
    backend = "sqlite" if database_url is None else "postgresql"
    print(
        f"run {view.reference}: {view.lines:,} lines, {view.invoices:,} invoices, "
        f"{view.transfers:,} transfers, {view.debits} debits, {files:,} files in {seconds:.1f} s "
        f"(taking {phases['take']:.1f} s, files {phases['files']:.1f} s; this process's CPU "
        f"{phases['cpu']:.1f} s); plain CSV {bare:.1f} s"
    )
    return record(
        f"payments_{backend}",
        view.lines / seconds,
        "lines/s",
        view.lines / bare,
        "1,000,000 accepted lines to validated SEPA files, remittances and statements in 30 s "
        "on 2 cores (issue 5)",
        lines=view.lines,
        invoices=view.invoices,
        professionals=professionals,
        transfers=view.transfers,
        debits=view.debits,
        files=files,
        seconds=round(seconds, 2),
        take_seconds=round(phases["take"], 2),
        files_seconds=round(phases["files"], 2),
        cpu_seconds=round(phases["cpu"], 2),
        plain_csv_seconds=round(bare, 2),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000, help="accepted invoice lines")
    parser.add_argument(
        "--professionals", type=int, default=0, help="practices paid (default: lines / 100)"
    )
    parser.add_argument("--database-url", help="PostgreSQL URL; default: a SQLite file")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the run")
    args = parser.parse_args()
    main(
        args.lines,
        args.professionals or max(10, args.lines // 100),
        args.database_url,
        args.profile,
    )
