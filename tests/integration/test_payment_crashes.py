"""A payment run killed (``kill -9``) at any point loses nothing and pays nothing twice.

Each test runs ``rempart payments run`` in a real process that kills itself with SIGKILL at one
point of the run (the ``REMPART_TEST_CRASH_AT`` hook of ``payments.runs``), then runs again:
the second command finishes the interrupted run (or, killed before its first commit, finds no
trace of it), and every accepted invoice ends in exactly one run, with files that match what
the run recorded, to the byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rempart.claims.models import Invoice, InvoiceLine
from rempart.errors import Conflict
from rempart.integrity.verify import verify_integrity
from rempart.payments import runs
from rempart.payments.models import PaymentItem, PaymentRun
from rempart.platform import Platform
from tests.support import (
    AMC,
    CLAIMANTS,
    OTHER_AMC,
    OTHER_CLAIMANTS,
    add_mandate,
    add_payments_world,
    bill,
    cancel_bill,
    pay_line,
    sepa_amounts,
)

RUN1 = "RMP000001"
# The run's status each point leaves behind (None: no trace at all).
LEFT = {
    "in-claim": None,
    "after-claim": "open",
    "mid-files": "open",
    "after-files": "open",
    "after-files-recorded": "files_written",
    "in-close": "files_written",
}


@pytest.fixture
def world(platform: Platform) -> Platform:
    add_payments_world(platform)
    add_mandate(platform, AMC)
    add_mandate(platform, OTHER_AMC)
    for n, who in enumerate(CLAIMANTS[:4]):
        bill(platform, "gp", who, [pay_line("MED", 3000 + n, 3000, 70)], f"G-{n}")
        drugs = [pay_line("PHAR", 1000, 1000, 30), pay_line("PHAR", 200, 200, 0, act="PF")]
        if who.plan_code == "BASE":
            bill(platform, "pharmacist", who, drugs, f"P-{n}")
    for n, who in enumerate(OTHER_CLAIMANTS):
        bill(platform, "dentist", who, [pay_line("MED", 2500, 2500, 70)], f"D-{n}", OTHER_AMC)
    return platform


def rempart(
    platform: Platform, out: Path, crash: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``rempart payments run`` in its own process, as an operator (or cron) would start it."""
    env = {
        **os.environ,
        "REMPART_HOME": str(platform.settings.home),
        "REMPART_DATABASE_URL": platform.settings.resolved_database_url,
        "REMPART_ENV": "test",
    }
    env.pop(runs.CRASH_AT, None)
    if crash:
        env[runs.CRASH_AT] = crash
    command = [sys.executable, "-c", "from rempart.cli import main; main()"]
    return subprocess.run(
        [*command, "payments", "run", "--out", str(out), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def status(platform: Platform) -> str | None:
    with platform.sessions() as session:
        return session.scalar(select(PaymentRun.status))


def assert_paid_exactly_once(platform: Platform, out: Path) -> None:
    """Every invoice that is not cancelled is in exactly one run; the files say the same, to
    the cent and to the byte."""
    with platform.sessions() as session:
        taken = dict(
            session.execute(
                select(PaymentItem.invoice_id, func.count()).group_by(PaymentItem.invoice_id)
            ).all()
        )
        invoices = set(session.scalars(select(Invoice.id).where(Invoice.status != "cancelled")))
        owed = session.scalar(
            select(func.sum(InvoiceLine.amc_amount))
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(Invoice.status != "cancelled")
        )
        run = session.scalars(select(PaymentRun)).one()
    assert set(taken) == invoices
    assert set(taken.values()) == {1}
    assert run.status == "closed"
    folder = out / RUN1
    transfers = sepa_amounts(folder / runs.TRANSFERS_FILE)
    debits = sepa_amounts(folder / runs.DEBITS_FILE)
    assert sum(transfers.values()) == sum(debits.values()) == owed == run.transfer_total
    recorded = json.loads(run.files or "{}")
    for name, digest in recorded.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    manifest = json.loads((folder / runs.MANIFEST_FILE).read_text())["files"]
    for name, digest in manifest.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    assert not list(folder.rglob("*.tmp"))
    report = verify_integrity(platform)
    assert report.intact, report.problems


@pytest.mark.parametrize("point", list(LEFT))
def test_a_run_killed_at_any_point_is_finished_by_the_next_and_pays_once(
    world: Platform, tmp_path: Path, point: str
) -> None:
    out = tmp_path / "out"
    killed = rempart(world, out, crash=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert status(world) == LEFT[point]
    if LEFT[point] is None:  # killed before its commit: no trace
        with world.sessions() as session:
            assert session.scalar(select(func.count()).select_from(PaymentItem)) == 0
            assert session.scalar(select(Invoice.id).where(Invoice.paid_at.is_not(None))) is None
    if point == "mid-files":
        assert (out / RUN1 / runs.TRANSFERS_FILE).exists()
        assert not (out / RUN1 / runs.DEBITS_FILE).exists()
        # As a kill between writing a file and renaming it leaves it: IBANs in a hidden copy.
        leftover = out / RUN1 / f".{runs.DEBITS_FILE}.{'0' * 32}.tmp"
        leftover.write_bytes(b"<Document>IBAN FR76...</Document>")
    again = rempart(world, out)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    if LEFT[point] is None:
        assert report["resumed"] == []
        assert report["run"]["reference"] == RUN1
    else:
        assert [r["reference"] for r in report["resumed"]] == [RUN1]
        assert report["run"] is None  # nothing new: the lines are in the finished run
    assert_paid_exactly_once(world, out)
    assert not list((out / RUN1).glob(".*.tmp"))  # no temporary copy survives the run
    assert runs.run_payments(world, None, out, "test").run is None


def test_a_run_killed_twice_and_whose_files_were_deleted_is_still_finished_once(
    world: Platform, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert rempart(world, out, crash="after-claim").returncode == -signal.SIGKILL
    assert rempart(world, out, crash="after-files-recorded").returncode == -signal.SIGKILL
    for path in (out / RUN1 / "remittances").iterdir():
        path.unlink()  # lost before the run was closed: written again, identical
    outcome = runs.run_payments(world, None, out, "test")
    assert [r.reference for r in outcome.resumed] == [RUN1]
    assert outcome.run is None
    assert_paid_exactly_once(world, out)


def test_an_invoice_in_an_unfinished_run_can_no_longer_be_cancelled(
    world: Platform, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert rempart(world, out, crash="after-claim").returncode == -signal.SIGKILL
    with world.sessions() as session:
        taken = session.scalar(select(Invoice.id).where(Invoice.invoice_number == "G-0"))
    assert taken is not None
    with pytest.raises(Conflict, match="paid"):
        cancel_bill(world, "gp", taken)
    runs.run_payments(world, None, out, "test")
    assert_paid_exactly_once(world, out)


def test_an_unfinished_run_blocks_a_new_one_until_it_is_finished(
    world: Platform, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert rempart(world, out, crash="after-claim").returncode == -signal.SIGKILL
    with pytest.raises(Conflict, match="unfinished"):
        runs.open_run(world, None, "test")
