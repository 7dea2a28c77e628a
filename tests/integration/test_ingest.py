"""`rempart invoices ingest`: a concentrator's file, as an operator runs it, on each database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rempart.claims.models import Booking, Invoice
from rempart.cli import app
from rempart.integrity.verify import verify_integrity
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.registry.models import Professional
from rempart.settings import get_settings
from tests.support import (
    BILLERS,
    ON_BASE,
    ON_CONFORT,
    add_claims_world,
    claim_line,
    invoice_body,
    person,
    set_rows,
)

runner = CliRunner()
PHARMACIST, DENTIST = BILLERS["pharmacist"], BILLERS["dentist"]


@pytest.fixture
def world(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """The claims world, and the CLI pointed at the same home and database."""
    add_claims_world(platform)
    monkeypatch.setenv("REMPART_HOME", str(platform.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", platform.settings.resolved_database_url)
    monkeypatch.setenv("REMPART_ENV", "test")
    get_settings.cache_clear()
    yield platform
    get_settings.cache_clear()


def entry(am_number: str, body: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"am_number": am_number, **body, **extra})


def prosthesis(billed: str) -> dict[str, Any]:
    return claim_line("DEPR", billed, "107.50", 60)  # AMC 258.00 under a 500.00 ceiling


GOOD = [
    entry(PHARMACIST, invoice_body(ON_BASE, [claim_line("PHAR", "10.00", "10.00", 30)], "P-1")),
    entry(
        PHARMACIST,
        invoice_body(
            ON_BASE,
            [claim_line("PHAR", "8.00", "8.00", 30), claim_line("PHAR", "9.00", "9.00", 15)],
            "P-2",
        ),
    ),
    entry(PHARMACIST, invoice_body(person(99), [claim_line("PHAR", "5.00", "5.00", 30)], "P-3")),
    entry(DENTIST, invoice_body(ON_CONFORT, [prosthesis("1000.00")], "D-1"), idempotency_key="d1"),
    entry(DENTIST, invoice_body(ON_CONFORT, [prosthesis("1001.00")], "D-2")),
    entry(DENTIST, invoice_body(ON_CONFORT, [prosthesis("1002.00")], "D-3")),
]


def ingest(tmp_path: Path, lines: list[str], *options: str) -> tuple[int, str, str]:
    path = tmp_path / "invoices.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["invoices", "ingest", str(path), *options])
    return result.exit_code, result.stdout, result.stderr


def count(platform: Platform, model: type[Any]) -> int:
    with platform.sessions() as session:
        found: int = session.scalar(select(func.count()).select_from(model)) or 0
        return found


def test_a_file_is_adjudicated_and_reported_by_status_and_reject_code(
    world: Platform, tmp_path: Path
) -> None:
    code, output, _ = ingest(tmp_path, GOOD, "--json", "--batch-size", "4")
    assert code == 0, output
    report = json.loads(output)
    assert report == {
        "lines": 6,
        "accepted": 2,
        "partial": 2,
        "rejected": 2,
        "replayed": 0,
        "refused": 0,
        "malformed": 0,
        "total_amc": "512.60",  # 7.00 + 5.60 + 0 + 258.00 + 242.00 + 0
        "reject_codes": {"CEILING_REACHED": 2, "NOT_COVERED": 1, "RIGHTS_CLOSED": 1},
        "errors": [],
    }
    assert count(world, Invoice) == 6
    assert verify_integrity(world).intact


def test_the_text_report_names_each_reject_code(world: Platform, tmp_path: Path) -> None:
    code, output, _ = ingest(tmp_path, GOOD)
    assert code == 0
    assert "6 invoices read: accepted 2, partial 2, rejected 2" in output
    assert "512.60" in output
    assert "CEILING_REACHED" in output


def test_malformed_lines_are_named_set_aside_and_never_quoted(
    world: Platform, tmp_path: Path
) -> None:
    nir = "253072B07300470"
    good = GOOD[0]
    lines = [
        good,
        '{"am_number": "751000003", "amc_number": ',  # cut short
        entry(PHARMACIST, invoice_body(ON_BASE, [claim_line("PHAR", "10.00", "10.00", 30)]))[:-1]
        + ', "nir": "'
        + nir
        + '"}',
        entry(PHARMACIST, {**invoice_body(ON_BASE, []), "member_number": "M 1; DROP"}),
        entry(
            PHARMACIST, invoice_body(ON_BASE, [claim_line("PHAR", "1.00", "1.00", 30)]), **{nir: 1}
        ),
        "",
        entry(
            "751999999", invoice_body(ON_BASE, [claim_line("PHAR", "10.00", "10.00", 30)], "P-9")
        ),
        entry(
            PHARMACIST,
            invoice_body(ON_BASE, [claim_line("PHAR", "10.00", "10.00", 30) | {"billed": 10.0}]),
        ),
    ]
    code, output, _ = ingest(tmp_path, lines, "--json")
    assert code == 3
    report = json.loads(output)
    assert (report["lines"], report["accepted"], report["malformed"], report["refused"]) == (
        7,
        1,
        5,
        1,
    )
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (2, None),
        (3, "(unknown field)"),
        (4, "member_number"),
        (5, "(unknown field)"),
        (7, "am_number"),
        (8, "lines.0.billed"),
    ]
    for personal in (nir, "DROP", ON_BASE.member_number, ON_BASE.birth_date):
        assert personal not in output
    assert count(world, Invoice) == 1


def test_a_re_run_answers_keyed_lines_and_finds_the_others_duplicates(
    world: Platform, tmp_path: Path
) -> None:
    assert ingest(tmp_path, GOOD)[0] == 0
    booked = count(world, Booking)
    code, output, _ = ingest(tmp_path, GOOD, "--json")
    assert code == 0
    report = json.loads(output)
    assert report["replayed"] == 1  # the keyed line: its first answer
    assert report["reject_codes"]["DUPLICATE"] == 4  # every line taken the first time
    assert report["total_amc"] == "0.00"
    assert count(world, Booking) == booked
    changed = GOOD[3].replace("1000.00", "1500.00")  # the same key, another invoice
    code, output, _ = ingest(tmp_path, [changed], "--json")
    assert code == 3
    assert json.loads(output)["errors"][0]["reason"] == (
        "this Idempotency-Key was used for another request"
    )


def test_a_professional_no_longer_under_convention_is_paid_nothing(
    world: Platform, tmp_path: Path
) -> None:
    set_rows(world, Professional, Professional.am_number == PHARMACIST, status="closed")
    code, output, _ = ingest(tmp_path, GOOD[:1], "--json")
    assert code == 0
    assert json.loads(output)["reject_codes"] == {"PROFESSIONAL_NOT_CONTRACTED": 1}


def test_every_ingested_invoice_is_on_the_record(world: Platform, tmp_path: Path) -> None:
    assert ingest(tmp_path, GOOD)[0] == 0
    with world.sessions() as session:
        events = [
            json.loads(e)
            for e in session.scalars(
                select(LedgerEntry.event).where(LedgerEntry.tag == "beneficiary:invoice:write")
            )
        ]
    assert len(events) == 6
    assert {e["organisation"] for e in events} == {PHARMACIST, DENTIST}
    assert all(e["actor"].startswith("cli:") for e in events)
    assert [e["beneficiary"] is None for e in events].count(True) == 1  # the unknown card


def test_an_unreadable_file_changes_nothing(world: Platform, tmp_path: Path) -> None:
    result = runner.invoke(app, ["invoices", "ingest", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 1
    assert count(world, Invoice) == 0
