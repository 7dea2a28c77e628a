"""Member-file imports on a real database: validation, atomicity, re-imports, quarantine."""

from __future__ import annotations

import csv
import io
import stat
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rempart.errors import InvalidInput
from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, ImportReport, import_members
from rempart.registry.models import Beneficiary, Member, MemberImport, RightsPeriod
from rempart.registry.services import find_by_nir
from tests.support import AMC, Person, add_insurer, member_file, person

PEOPLE = [person(n) for n in range(1, 121)]  # more than two batches of 50


def run(platform: Platform, data: bytes, **options: object) -> ImportReport:
    return import_members(platform, AMC, io.BytesIO(data), ImportOptions(**options))  # type: ignore[arg-type]


def count(platform: Platform, model: type) -> int:
    with platform.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def periods_of(platform: Platform, nir: str) -> list[RightsPeriod]:
    (match,) = find_by_nir(platform, AMC, nir)
    with platform.sessions() as session:
        return list(
            session.scalars(
                select(RightsPeriod)
                .where(RightsPeriod.beneficiary_id == match.beneficiary_id)
                .order_by(RightsPeriod.start_date)
            )
        )


@pytest.fixture
def insurer(platform: Platform) -> Platform:
    add_insurer(platform)
    return platform


def test_a_valid_file_is_imported_and_each_person_is_found_by_nir(insurer: Platform) -> None:
    spouse = PEOPLE[0].but(
        relationship="spouse", nir="", first_name="Anatole", birth_rank="1", birth_date="1961-05-05"
    )
    report = run(insurer, member_file([*PEOPLE, spouse]))
    assert report.committed
    assert (report.rows, report.inserted, report.rejected) == (121, 121, 0)
    assert count(insurer, Beneficiary) == 121
    assert count(insurer, Member) == 120  # the spouse shares the insured's card
    p = PEOPLE[57]
    (match,) = find_by_nir(insurer, AMC, p.nir)
    assert (match.member_number, match.last_name, match.first_name) == (
        p.member_number,
        p.last_name,
        p.first_name,
    )
    assert match.birth_date == date.fromisoformat(p.birth_date)
    assert match.status == "active"


BAD_ROWS: dict[str, tuple[Callable[[Person], Person], str]] = {
    "invalid NIR key": (
        lambda p: p.but(nir=p.nir[:13] + f"{(int(p.nir[13:]) % 97) + 1:02d}"),
        "nir",
    ),
    "impossible date": (lambda p: p.but(birth_date="1980-02-30"), "birth_date"),
    "unknown plan": (lambda p: p.but(plan_code="NOSUCHPLAN"), "plan_code"),
    "rank out of range": (lambda p: p.but(birth_rank="0"), "birth_rank"),
    "unknown domain": (lambda p: p.but(suspended_domains="PHAR;XXXX"), "suspended_domains"),
}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_one_bad_row_refuses_the_whole_file_and_changes_nothing(
    insurer: Platform, kind: str
) -> None:
    run(insurer, member_file(PEOPLE[:10]))
    make_bad, column = BAD_ROWS[kind]
    people = PEOPLE[:100]
    people[70] = make_bad(people[70])
    report = run(insurer, member_file(people))
    assert not report.committed
    assert report.rejected == 1
    (error,) = report.errors
    assert (error.line, error.column) == (72, column)  # header is line 1
    assert count(insurer, Beneficiary) == 10  # the earlier import stands, nothing of this one
    with insurer.sessions() as session:
        statuses = list(
            session.scalars(select(MemberImport.status).order_by(MemberImport.started_at))
        )
    assert statuses == ["committed", "rejected"]


def test_a_duplicate_rights_check_key_in_another_batch_is_refused(insurer: Platform) -> None:
    twin = PEOPLE[3].but(first_name="Other", nir="", relationship="child")  # same key
    report = run(insurer, member_file([*PEOPLE[:90], twin]))
    assert not report.committed
    (error,) = report.errors
    assert error.line == 92
    assert "as line 5" in error.reason
    assert count(insurer, Beneficiary) == 0


def test_twins_with_distinct_ranks_are_two_beneficiaries(insurer: Platform) -> None:
    first = PEOPLE[0].but(relationship="child", nir="")
    second = first.but(birth_rank="2", first_name="Second")
    assert run(insurer, member_file([PEOPLE[1], first, second])).inserted == 3


def test_bad_encoding_is_reported_at_its_line(insurer: Platform) -> None:
    data = member_file(PEOPLE[:5]).replace(PEOPLE[2].last_name.encode(), b"Caf\xe9")
    report = run(insurer, data)
    assert not report.committed
    assert [(e.line, e.reason.split(" (")[0]) for e in report.errors] == [(4, "not valid UTF-8")]
    assert count(insurer, Beneficiary) == 0


def test_a_truncated_file_is_refused(insurer: Platform) -> None:
    data = member_file(PEOPLE[:20])
    report = run(insurer, data[: len(data) - 40])
    assert not report.committed
    assert "truncated" in report.errors[-1].reason
    assert count(insurer, Beneficiary) == 0


@pytest.mark.parametrize(
    "header",
    [
        ("member_number", "nir"),
        (
            "nir",
            "member_number",
            "last_name",
            "first_name",
            "birth_date",
            "birth_rank",
            "relationship",
            "plan_code",
            "start_date",
            "end_date",
            "suspended_domains",
        ),
    ],
)
def test_a_wrong_header_is_refused_before_any_row(
    insurer: Platform, header: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidInput, match="line 1: wrong header"):
        run(insurer, member_file(PEOPLE[:3], header=header))
    assert count(insurer, Beneficiary) == 0


def test_an_unknown_insurer_is_refused(platform: Platform) -> None:
    with pytest.raises(InvalidInput, match="no active insurer"):
        run(platform, member_file(PEOPLE[:3]))


def test_partial_commits_valid_rows_and_quarantines_the_rest(
    insurer: Platform, tmp_path: Path
) -> None:
    people = PEOPLE[:60]
    people[5] = people[5].but(birth_date="1990-13-01")
    people[55] = people[55].but(plan_code="GHOST")
    errors, quarantine = tmp_path / "errors.csv", tmp_path / "quarantine.csv"
    report = run(
        insurer, member_file(people), partial=True, errors_path=errors, quarantine_path=quarantine
    )
    assert report.committed
    assert (report.inserted, report.rejected) == (58, 2)
    assert count(insurer, Beneficiary) == 58
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o600
    kept = list(csv.reader(io.StringIO(quarantine.read_text())))
    assert kept == [
        list(member_file([])[:-1].decode().split(",")),
        people[5].row(),
        people[55].row(),
    ]
    lines = list(csv.DictReader(io.StringIO(errors.read_text())))
    assert [(r["line"], r["column"]) for r in lines] == [("7", "birth_date"), ("57", "plan_code")]
    report_text = errors.read_text()
    for p in (people[5], people[55]):
        for value in (p.nir, p.last_name, p.first_name, p.birth_date):
            assert value not in report_text


def test_reimporting_the_same_full_file_changes_nothing(insurer: Platform) -> None:
    data = member_file(PEOPLE)
    run(insurer, data)
    again = run(insurer, data)
    assert (again.inserted, again.updated, again.unchanged, again.closed) == (0, 0, 120, 0)
    assert count(insurer, Beneficiary) == 120
    assert count(insurer, RightsPeriod) == 120


def test_a_full_file_updates_changed_rows_and_closes_absent_people(insurer: Platform) -> None:
    run(insurer, member_file(PEOPLE))
    changed = PEOPLE[10].but(last_name="Renamed", plan_code="BASE", start_date="2025-06-01")
    people = [changed if p is PEOPLE[10] else p for p in PEOPLE if p is not PEOPLE[20]]
    report = run(insurer, member_file(people), effective_date=date(2025, 9, 1))
    assert (report.inserted, report.updated, report.unchanged, report.closed) == (0, 1, 118, 1)
    (renamed,) = find_by_nir(insurer, AMC, changed.nir)
    assert renamed.last_name == "Renamed"
    periods = periods_of(insurer, changed.nir)
    assert [(p.start_date, p.end_date) for p in periods] == [
        (date(2025, 1, 1), date(2025, 5, 31)),
        (date(2025, 6, 1), None),
    ]
    (gone,) = find_by_nir(insurer, AMC, PEOPLE[20].nir)
    assert gone.status == "closed"
    assert [p.end_date for p in periods_of(insurer, PEOPLE[20].nir)] == [date(2025, 8, 31)]
    back = run(insurer, member_file(PEOPLE), effective_date=date(2025, 10, 1))
    assert back.updated == 2  # the renamed person reverts, the closed one comes back
    (returned,) = find_by_nir(insurer, AMC, PEOPLE[20].nir)
    assert returned.status == "active"


def test_a_delta_file_adds_and_updates_but_closes_nobody(insurer: Platform) -> None:
    run(insurer, member_file(PEOPLE[:50]))
    delta = [PEOPLE[0].but(end_date="2025-12-31"), PEOPLE[100]]
    report = run(insurer, member_file(delta), delta=True)
    assert (report.mode, report.inserted, report.updated, report.closed) == ("delta", 1, 1, 0)
    assert count(insurer, Beneficiary) == 51
    assert [p.end_date for p in periods_of(insurer, PEOPLE[0].nir)] == [date(2025, 12, 31)]


def test_progress_reaches_the_file_size(insurer: Platform) -> None:
    data = member_file(PEOPLE)
    seen: list[int] = []
    run(insurer, data, progress=seen.append)
    assert seen[-1] == len(data)
    assert seen == sorted(seen)


def test_a_partial_full_import_with_rejected_rows_closes_nobody(insurer: Platform) -> None:
    run(insurer, member_file(PEOPLE[:20]))
    people = PEOPLE[:19]  # the 20th person is absent...
    people[3] = people[3].but(nir=people[3].nir[:13] + "00")  # ...and a row has a typo
    report = run(insurer, member_file(people), partial=True)
    assert (report.committed, report.rejected, report.closed) == (True, 1, 0)
    (absent,) = find_by_nir(insurer, AMC, PEOPLE[19].nir)
    (mistyped,) = find_by_nir(insurer, AMC, PEOPLE[3].nir)
    assert (absent.status, mistyped.status) == ("active", "active")


def test_an_empty_full_file_is_refused(insurer: Platform) -> None:
    run(insurer, member_file(PEOPLE[:5]))
    with pytest.raises(InvalidInput, match="no rows"):
        run(insurer, member_file([]))
    assert run(insurer, member_file([]), delta=True).rows == 0  # an empty delta is harmless
    assert count(insurer, Beneficiary) == 5


def test_a_full_file_closing_most_people_is_refused_unless_allowed(insurer: Platform) -> None:
    run(insurer, member_file(PEOPLE[:100]))
    with pytest.raises(InvalidInput, match="would close 60 beneficiaries"):
        run(insurer, member_file(PEOPLE[:40]))
    (still,) = find_by_nir(insurer, AMC, PEOPLE[99].nir)
    assert still.status == "active"
    report = run(insurer, member_file(PEOPLE[:40]), allow_mass_closure=True)
    assert report.closed == 60


def test_a_refused_file_reports_no_counts_and_a_clean_one_writes_no_report(
    insurer: Platform, tmp_path: Path
) -> None:
    errors, quarantine = tmp_path / "errors.csv", tmp_path / "quarantine.csv"
    quarantine.write_text("a file of the user's that must survive")
    clean = run(insurer, member_file(PEOPLE[:10]), errors_path=errors, quarantine_path=quarantine)
    assert (clean.errors_path, clean.quarantine_path) == (None, None)
    assert not errors.exists()
    assert quarantine.read_text() == "a file of the user's that must survive"
    people = PEOPLE[:30]
    people[20] = people[20].but(birth_rank="x")
    refused = run(insurer, member_file(people), errors_path=errors)
    assert not refused.committed
    assert (refused.inserted, refused.updated, refused.unchanged, refused.closed) == (0, 0, 0, 0)
    assert refused.errors_path == errors
    assert errors.read_text().splitlines() == [
        "line,column,reason",
        "22,birth_rank,must be a digit from 1 to 9",
    ]
