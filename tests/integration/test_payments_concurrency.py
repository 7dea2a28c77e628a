"""Two payment runs launched at once (two clicks in the console, a cron and an operator): one
runs, the other is told that a run is in progress; the files of the one that ran are whole and
match what it recorded. And two writers of one file never share its temporary name."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rempart.errors import Conflict
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
    pay_line,
)

RUN1 = "RMP000001"
WAIT = 60  # seconds: a bound for a hung test, never reached when the code is right


@pytest.fixture
def world(platform: Platform) -> Platform:
    add_payments_world(platform)
    add_mandate(platform, AMC)
    for n, who in enumerate(CLAIMANTS[:3]):
        bill(platform, "gp", who, [pay_line("MED", 3000 + n, 3000, 70)], f"G-{n}")
    bill(
        platform, "dentist", OTHER_CLAIMANTS[0], [pay_line("MED", 2500, 2500, 70)], "D-0", OTHER_AMC
    )
    return platform


@pytest.fixture
def paused(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The first run to write its files waits there (the run is open, its invoices taken) until
    the test lets it go: a launch in the meantime is a launch during a run."""
    inside, go_on = threading.Event(), threading.Event()
    real = runs.write_files

    def write_files(platform: Platform, run_id: uuid.UUID, folder: Path) -> dict[str, str]:
        if not inside.is_set():
            inside.set()
            assert go_on.wait(WAIT)
        return real(platform, run_id, folder)

    monkeypatch.setattr(runs, "write_files", write_files)
    yield inside, go_on
    go_on.set()  # never leave a thread waiting


def child_env(platform: Platform) -> dict[str, str]:
    """Another process on the same database, as ``rempart`` started by an operator or a cron."""
    return {
        **os.environ,
        "REMPART_HOME": str(platform.settings.home),
        "REMPART_DATABASE_URL": platform.settings.resolved_database_url,
        "REMPART_ENV": "test",
    }


def runs_made(platform: Platform) -> list[tuple[int, str, str | None]]:
    with platform.sessions() as session:
        return [
            (run.number, run.status, run.files)
            for run in session.scalars(select(PaymentRun).order_by(PaymentRun.number))
        ]


def assert_files_match_the_run(platform: Platform, folder: Path) -> None:
    """The files on disk are the ones the run recorded, to the byte, and nothing is half-done."""
    ((number, status, files),) = runs_made(platform)
    assert (number, status) == (1, "closed")
    recorded = json.loads(files or "{}")
    assert set(recorded) == {runs.TRANSFERS_FILE, runs.DEBITS_FILE, runs.MANIFEST_FILE}
    for name, digest in recorded.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    listed = json.loads((folder / runs.MANIFEST_FILE).read_text())["files"]
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    with platform.sessions() as session:
        items = session.execute(
            select(PaymentItem.invoice_id, func.count()).group_by(PaymentItem.invoice_id)
        ).all()
    assert len(items) == 4
    assert {n for _, n in items} == {1}


def test_a_second_launch_during_a_run_is_refused_and_the_first_run_is_intact(
    world: Platform, tmp_path: Path, paused: tuple[threading.Event, threading.Event]
) -> None:
    inside, go_on = paused
    out = tmp_path / "out"
    first: list[runs.RunOutcome | BaseException] = []

    def launch() -> None:
        try:
            first.append(runs.run_payments(world, None, out, "test:first"))
        except BaseException as exc:  # reported below, in the test's thread
            first.append(exc)

    thread = threading.Thread(target=launch)
    thread.start()
    try:
        assert inside.wait(WAIT)  # the first run is open and about to write its files
        with pytest.raises(Conflict, match="already in progress"):
            runs.run_payments(world, None, out, "test:second")
        assert [status for _, status, _ in runs_made(world)] == ["open"]  # not touched
    finally:
        go_on.set()
        thread.join(WAIT)
    (outcome,) = first
    assert isinstance(outcome, runs.RunOutcome), outcome
    assert outcome.run is not None
    assert outcome.run.reference == RUN1
    assert outcome.resumed == []
    assert_files_match_the_run(world, out / RUN1)
    again = runs.run_payments(world, None, out, "test:third")  # the lock was let go
    assert again.run is None
    assert again.resumed == []


def test_a_run_in_another_process_holds_off_a_launch_until_it_ends(
    world: Platform, tmp_path: Path
) -> None:
    holder = (
        "import sys\n"
        "from rempart.payments import runs\n"
        "from rempart.platform import open_platform\n"
        "from rempart.settings import get_settings\n"
        "platform = open_platform(get_settings())\n"
        "with runs.run_lock(platform):\n"
        "    print('locked', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    command = [sys.executable, "-c", holder]
    pipe, env = subprocess.PIPE, child_env(world)
    with subprocess.Popen(command, env=env, stdin=pipe, stdout=pipe, text=True) as process:
        try:
            assert process.stdout is not None
            assert process.stdin is not None
            assert process.stdout.readline().strip() == "locked"
            with pytest.raises(Conflict, match="already in progress"):
                runs.run_payments(world, None, tmp_path, "test")
            assert runs_made(world) == []
            process.stdin.write("done\n")
            process.stdin.flush()
            assert process.wait(WAIT) == 0
        finally:
            if process.poll() is None:
                process.kill()
    outcome = runs.run_payments(world, None, tmp_path, "test")
    assert outcome.run is not None
    assert_files_match_the_run(world, tmp_path / RUN1)


def test_a_lock_left_by_a_killed_process_does_not_block_the_next_run(
    world: Platform, tmp_path: Path
) -> None:
    holder = (
        "import os, signal\n"
        "from rempart.payments import runs\n"
        "from rempart.platform import open_platform\n"
        "from rempart.settings import get_settings\n"
        "with runs.run_lock(open_platform(get_settings())):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    command = [sys.executable, "-c", holder]
    killed = subprocess.run(command, env=child_env(world), timeout=WAIT, check=False)
    assert killed.returncode == -signal.SIGKILL
    # PostgreSQL ends the dead client's session (and its lock) as soon as it sees the socket
    # closed: a few milliseconds at most, hence a short grace.
    deadline = time.monotonic() + 10
    while True:
        try:
            outcome = runs.run_payments(world, None, tmp_path, "test")
            break
        except Conflict:
            assert time.monotonic() < deadline, "the dead process's lock was never released"
            time.sleep(0.05)
    assert outcome.run is not None


def write_at_once(folder: Path, contents: tuple[bytes, ...]) -> list[BaseException]:
    """Each content written durably to the same file by its own thread, all starting together."""
    start = threading.Barrier(len(contents))
    failures: list[BaseException] = []

    def write(data: bytes) -> None:
        start.wait(WAIT)
        try:
            runs._write(folder, runs.TRANSFERS_FILE, data, durable=True)
        except BaseException as exc:  # reported by the test, in its thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(data,)) for data in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    return failures


def test_two_durable_writes_of_one_file_at_once_both_succeed_and_one_is_whole(
    tmp_path: Path,
) -> None:
    contents = (b"a" * 3_000_000, b"b" * 1_000_000)  # of different lengths: a mix shows
    for attempt in range(20):  # a race: each attempt is another chance to lose it
        folder = tmp_path / str(attempt)
        assert write_at_once(folder, contents) == [], attempt
        assert (folder / runs.TRANSFERS_FILE).read_bytes() in contents, attempt
        assert [p.name for p in folder.iterdir()] == [runs.TRANSFERS_FILE], attempt


def test_the_command_reports_a_run_in_progress_as_its_usual_error(
    world: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rempart.cli import app
    from rempart.settings import get_settings

    for name, value in child_env(world).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with runs.run_lock(world):  # a run in progress, from the console say
            refused = CliRunner().invoke(app, ["payments", "run", "--out", str(tmp_path)])
        assert refused.exit_code == 1
        assert "Conflict: a payment run is already in progress" in refused.output
        assert runs_made(world) == []
        done = CliRunner().invoke(app, ["payments", "run", "--out", str(tmp_path), "--json"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.output)["run"]["reference"] == RUN1
    finally:
        get_settings.cache_clear()
