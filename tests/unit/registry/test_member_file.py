"""The member file (DOMAIN.md, "Member file"): rows typed, bad rows located, no value leaked."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date

import pytest

from rempart.identifiers import make_nir, nir_key
from rempart.registry.csv_rows import FileError, RowError
from rempart.registry.member_file import COLUMNS, MemberRow, read_member_file

HEADER = ",".join(COLUMNS).encode() + b"\n"
NIR_INSURED = make_nir(1, 1980, 5, "75", "056", 123)
NIR_SPOUSE = make_nir(2, 1982, 11, "2A", "004", 7)
# A valid NIR whose key is wrong, and one of month 13 with a key that matches (stdnum accepts it).
NIR_BAD_KEY = NIR_INSURED[:13] + f"{int(NIR_INSURED[13:]) % 97 + 1:02d}"
_MONTH_13_BODY = "1801375056123"
NIR_MONTH_13 = f"{_MONTH_13_BODY}{nir_key(_MONTH_13_BODY):02d}"

INSURED: dict[str, str] = {
    "member_number": "M0001",
    "nir": NIR_INSURED,
    "last_name": "Dupont",
    "first_name": "Jean",
    "birth_date": "1980-05-12",
    "birth_rank": "1",
    "relationship": "insured",
    "plan_code": "CONFORT",
    "start_date": "2025-01-01",
    "end_date": "",
    "suspended_domains": "",
}


def values(**overrides: str) -> dict[str, str]:
    unknown = set(overrides) - set(COLUMNS)
    assert not unknown, unknown
    return INSURED | overrides


def line(row: dict[str, str], end: bytes = b"\n") -> bytes:
    """One CSV line; the test values hold no comma nor quote, so no quoting is needed."""
    return ",".join(row[c] for c in COLUMNS).encode() + end


def read(data: bytes) -> list[MemberRow | RowError]:
    return list(read_member_file(io.BytesIO(data)))


# --- valid files ---------------------------------------------------------------------------------


def test_a_valid_file_yields_typed_member_rows() -> None:
    insured = values()
    spouse = values(
        nir=NIR_SPOUSE,
        first_name="Élodie",
        birth_date="1982-11-03",
        relationship="spouse",
        plan_code="ESSENTIEL",
        start_date="2025-02-01",
        end_date="2025-12-31",
        suspended_domains="OPTI;DEPR;OPTI",
    )
    child = values(
        nir="",
        first_name="Léa",
        birth_date="2015-06-30",
        birth_rank="2",
        relationship="child",
        start_date="2015-06-30",
    )
    lines = [line(insured), line(spouse), line(child)]

    rows = read(HEADER + b"".join(lines))

    assert rows == [
        MemberRow(
            line=2,
            member_number="M0001",
            nir=NIR_INSURED,
            last_name="Dupont",
            first_name="Jean",
            birth_date=date(1980, 5, 12),
            birth_rank=1,
            relationship="insured",
            plan_code="CONFORT",
            start_date=date(2025, 1, 1),
            end_date=None,
            suspended_domains=(),
            raw=lines[0],
        ),
        MemberRow(
            line=3,
            member_number="M0001",
            nir=NIR_SPOUSE,
            last_name="Dupont",
            first_name="Élodie",
            birth_date=date(1982, 11, 3),
            birth_rank=1,
            relationship="spouse",
            plan_code="ESSENTIEL",
            start_date=date(2025, 2, 1),
            end_date=date(2025, 12, 31),
            suspended_domains=("DEPR", "OPTI"),
            raw=lines[1],
        ),
        MemberRow(
            line=4,
            member_number="M0001",
            nir=None,
            last_name="Dupont",
            first_name="Léa",
            birth_date=date(2015, 6, 30),
            birth_rank=2,
            relationship="child",
            plan_code="CONFORT",
            start_date=date(2015, 6, 30),
            end_date=None,
            suspended_domains=(),
            raw=lines[2],
        ),
    ]


def test_a_valid_row_has_the_python_types_of_its_fields() -> None:
    (row,) = read(HEADER + line(values(suspended_domains="PHAR")))

    assert isinstance(row, MemberRow)
    assert type(row.birth_date) is date
    assert type(row.start_date) is date
    assert type(row.birth_rank) is int
    assert isinstance(row.suspended_domains, tuple)
    assert row.suspended_domains == ("PHAR",)


@pytest.mark.parametrize(
    ("relationship", "nir"),
    [("spouse", ""), ("child", ""), ("other", ""), ("child", NIR_SPOUSE)],
)
def test_the_nir_is_optional_for_anyone_but_the_insured(relationship: str, nir: str) -> None:
    (row,) = read(HEADER + line(values(relationship=relationship, nir=nir)))

    assert isinstance(row, MemberRow)
    assert row.relationship == relationship
    assert row.nir == (nir or None)


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        (
            " ".join([NIR_INSURED[:1], NIR_INSURED[1:3], NIR_INSURED[3:5], NIR_INSURED[5:]]),
            NIR_INSURED,
        ),
        (NIR_SPOUSE.lower(), NIR_SPOUSE),
    ],
    ids=["spaced", "lowercase-corsica"],
)
def test_the_nir_is_stored_compact_and_uppercase(written: str, stored: str) -> None:
    (row,) = read(HEADER + line(values(nir=written)))

    assert isinstance(row, MemberRow)
    assert row.nir == stored


def test_fields_are_stripped_of_surrounding_spaces() -> None:
    padded = {column: f" {value} " if value else value for column, value in values().items()}

    (row,) = read(HEADER + line(padded))

    assert isinstance(row, MemberRow)
    assert (row.member_number, row.last_name, row.first_name) == ("M0001", "Dupont", "Jean")
    assert row.birth_date == date(1980, 5, 12)


def test_quoted_fields_may_hold_a_comma() -> None:
    data = HEADER + line(values(last_name='"Dupont, dit Durand"'))

    (row,) = read(data)

    assert isinstance(row, MemberRow)
    assert row.last_name == "Dupont, dit Durand"


def test_a_utf8_bom_before_the_header_is_accepted() -> None:
    rows = read(b"\xef\xbb\xbf" + HEADER + line(values()))

    assert [type(r) for r in rows] == [MemberRow]
    assert rows[0].line == 2


def test_crlf_line_endings_are_accepted() -> None:
    data = HEADER.replace(b"\n", b"\r\n") + line(values(suspended_domains="OPTI"), end=b"\r\n")
    data += line(values(first_name="Paul", birth_date="1981-01-01"), end=b"\r\n")

    rows = read(data)

    assert all(isinstance(r, MemberRow) for r in rows), rows
    first, second = rows
    assert isinstance(first, MemberRow)
    assert isinstance(second, MemberRow)
    assert first.suspended_domains == ("OPTI",)
    assert second.end_date is None
    assert (first.line, second.line) == (2, 3)


def test_a_header_only_file_yields_no_row() -> None:
    assert read(HEADER) == []


def test_blank_lines_are_skipped_but_still_counted() -> None:
    data = (
        HEADER
        + line(values())  # line 2
        + b"\n"  # line 3
        + b"   \r\n"  # line 4
        + line(values(birth_rank="x"))  # line 5
        + b"\n"  # line 6
        + line(values(first_name="Paul"))  # line 7
    )

    rows = read(data)

    assert [(type(r).__name__, r.line) for r in rows] == [
        ("MemberRow", 2),
        ("RowError", 5),
        ("MemberRow", 7),
    ]


# --- the file as a whole --------------------------------------------------------------------------

_NAMES = list(COLUMNS)


@pytest.mark.parametrize(
    "header",
    [
        ",".join(_NAMES[:-1]),
        ",".join([*_NAMES, "email"]),
        ",".join([*_NAMES, ""]),
        ",".join([_NAMES[1], _NAMES[0], *_NAMES[2:]]),
        ",".join(n.upper() for n in _NAMES),
        ",".join(["member_no", *_NAMES[1:]]),
        ";".join(_NAMES),
    ],
    ids=[
        "missing-column",
        "extra-column",
        "trailing-comma",
        "reordered",
        "uppercase",
        "renamed",
        "semicolons",
    ],
)
def test_a_wrong_header_is_refused_at_line_1(header: str) -> None:
    data = header.encode() + b"\n" + line(values())

    with pytest.raises(FileError, match="line 1"):
        read(data)


def test_a_header_that_is_not_utf8_is_refused_at_line_1() -> None:
    with pytest.raises(FileError, match="line 1"):
        read(b"member_number\xff," + HEADER[len("member_number,") :])


@pytest.mark.parametrize("data", [b"", b"\n", b"  \r\n"], ids=["empty", "newline", "blank"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(FileError, match="empty"):
        read(data)


# --- bad rows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A bad row, as the values it is built from (or as raw bytes), and where it fails."""

    id: str
    column: str
    reason: str  # a fragment the reason must contain (case-insensitive)
    overrides: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None

    @property
    def row(self) -> dict[str, str]:
        return values(**self.overrides)

    def line(self) -> bytes:
        return self.raw if self.raw is not None else line(self.row)


_FULL = values()
_TEN_FIELDS = ",".join(_FULL[c] for c in COLUMNS[:-1]).encode() + b"\n"
_TWELVE_FIELDS = ",".join([*(_FULL[c] for c in COLUMNS), "extra"]).encode() + b"\n"
_OPEN_QUOTE = line(values(last_name='"Dupont'))

BAD_ROWS = [
    Bad("nir-bad-key", "nir", "key", {"nir": NIR_BAD_KEY}),
    Bad("nir-month-13", "nir", "month", {"nir": NIR_MONTH_13}),
    Bad("nir-too-short", "nir", "15 characters", {"nir": NIR_INSURED[:14]}),
    Bad("nir-missing-for-insured", "nir", "required", {"nir": ""}),
    Bad("member-number-bad", "member_number", "letters or digits", {"member_number": "M-0001"}),
    Bad("member-number-empty", "member_number", "letters or digits", {"member_number": ""}),
    Bad("birth-date-impossible", "birth_date", "calendar date", {"birth_date": "2024-02-30"}),
    Bad("birth-date-french-format", "birth_date", "YYYY-MM-DD", {"birth_date": "30/01/2024"}),
    Bad("birth-date-compact", "birth_date", "YYYY-MM-DD", {"birth_date": "20240130"}),
    Bad("birth-date-empty", "birth_date", "YYYY-MM-DD", {"birth_date": ""}),
    Bad("birth-rank-0", "birth_rank", "1 to 9", {"birth_rank": "0"}),
    Bad("birth-rank-10", "birth_rank", "1 to 9", {"birth_rank": "10"}),
    Bad("birth-rank-letter", "birth_rank", "1 to 9", {"birth_rank": "a"}),
    Bad("birth-rank-empty", "birth_rank", "1 to 9", {"birth_rank": ""}),
    Bad("relationship-unknown", "relationship", "one of", {"relationship": "parent"}),
    Bad("relationship-uppercase", "relationship", "one of", {"relationship": "INSURED"}),
    Bad("plan-code-lowercase", "plan_code", "A-Z", {"plan_code": "confort"}),
    Bad("plan-code-too-long", "plan_code", "A-Z", {"plan_code": "P" * 21}),
    Bad("plan-code-empty", "plan_code", "A-Z", {"plan_code": ""}),
    Bad("start-date-bad", "start_date", "calendar date", {"start_date": "2025-13-01"}),
    Bad("end-date-bad", "end_date", "YYYY-MM-DD", {"end_date": "31/12/2025"}),
    Bad(
        "end-before-start",
        "end_date",
        "before start_date",
        {"start_date": "2025-03-01", "end_date": "2025-02-28"},
    ),
    Bad(
        "start-before-birth",
        "start_date",
        "before the birth date",
        {"nir": "", "relationship": "child", "birth_date": "2025-03-01"},
    ),
    Bad(
        "suspended-unknown", "suspended_domains", "unknown code", {"suspended_domains": "OPTI;XYZ"}
    ),
    Bad("suspended-lowercase", "suspended_domains", "unknown code", {"suspended_domains": "opti"}),
    Bad("last-name-too-long", "last_name", "longer than 100", {"last_name": "D" * 101}),
    Bad("first-name-too-long", "first_name", "longer than 100", {"first_name": "J" * 101}),
    Bad("last-name-empty", "last_name", "required", {"last_name": ""}),
    Bad("first-name-control-char", "first_name", "control character", {"first_name": "Je\x07an"}),
    Bad("last-name-tab", "last_name", "control character", {"last_name": "Du\tpont"}),
    Bad("last-name-nul", "last_name", "control character", {"last_name": "Du\x00pont"}),
    Bad("invalid-utf8", "", "UTF-8", raw=line(values()).replace(b"Dupont", b"Dup\xffnt")),
    Bad(
        "latin1-accent",
        "",
        "UTF-8",
        raw=line(values(first_name="Zoé")).replace("Zoé".encode(), "Zoé".encode("latin-1")),
    ),
    Bad("ten-fields", "", "expected 11 fields, got 10", raw=_TEN_FIELDS),
    Bad("twelve-fields", "", "expected 11 fields, got 12", raw=_TWELVE_FIELDS),
    Bad("unterminated-quote", "", "quote", raw=_OPEN_QUOTE),
]


@pytest.mark.parametrize("bad", BAD_ROWS, ids=[b.id for b in BAD_ROWS])
def test_a_bad_row_is_reported_at_its_line_and_the_rows_around_it_still_parse(bad: Bad) -> None:
    before = line(values(first_name="Paul", birth_date="1979-04-04"))
    after = line(values(first_name="Marie", birth_date="1983-08-08"))

    rows = read(HEADER + before + bad.line() + after)

    assert len(rows) == 3, rows
    first, error, last = rows
    assert isinstance(first, MemberRow)
    assert first.line == 2
    assert isinstance(error, RowError), error
    assert error.line == 3
    assert error.column == bad.column
    assert bad.reason.lower() in error.reason.lower()
    assert error.raw == bad.line()
    assert isinstance(last, MemberRow)
    assert last.line == 4
    assert last.first_name == "Marie"


def _personal_values(bad: Bad) -> list[str]:
    row = bad.row
    personal = [row["nir"], row["last_name"], row["first_name"], row["birth_date"]]
    if bad.raw is not None:
        personal = [NIR_INSURED, "Dupont", "Jean", "1980-05-12"]
    return [value for value in personal if value]


@pytest.mark.parametrize("bad", BAD_ROWS, ids=[b.id for b in BAD_ROWS])
def test_a_row_error_reason_never_quotes_the_rows_personal_values(bad: Bad) -> None:
    (error,) = read(HEADER + bad.line())

    assert isinstance(error, RowError), error
    personal = _personal_values(bad)
    assert personal
    for value in personal:
        assert value not in error.reason
        assert value.lower() not in error.reason.lower()


@pytest.mark.parametrize(
    "overrides",
    [
        {"birth_date": "1980-W20-1"},
        {"start_date": "2025-W01-3"},
        {"end_date": "2025-W52-7"},
    ],
    ids=["birth_date", "start_date", "end_date"],
)
def test_an_iso_week_date_is_refused_as_another_format(overrides: dict[str, str]) -> None:
    # DOMAIN.md: dates are written YYYY-MM-DD. "2025-W01-3" is also 10 characters long, and
    # Python 3.11's date.fromisoformat reads it as an ISO week date (2025-01-01).
    (column,) = overrides

    (error,) = read(HEADER + line(values(**overrides)))

    assert isinstance(error, RowError), error
    assert error.column == column
    assert "YYYY-MM-DD" in error.reason


# --- the last line, cut short --------------------------------------------------------------------


@pytest.mark.parametrize(
    "last",
    [
        _TEN_FIELDS.rstrip(b"\n"),
        b"M0002,",
        ",".join(_FULL[c] for c in COLUMNS[:3]).encode(),
        line(values(last_name='"Dupont')).rstrip(b"\n"),
        line(values(first_name='"Jean, Paul')).split(b" Paul")[0],
    ],
    ids=["ten-fields", "two-fields", "three-fields", "open-quote", "cut-inside-quote"],
)
def test_a_truncated_last_line_is_reported_as_truncated(last: bytes) -> None:
    rows = read(HEADER + line(values()) + last)

    assert len(rows) == 2, rows
    first, error = rows
    assert isinstance(first, MemberRow)
    assert isinstance(error, RowError), error
    assert error.line == 3
    assert error.column == ""
    assert "truncated" in error.reason
    assert error.raw == last


def test_a_complete_last_line_without_a_trailing_newline_parses() -> None:
    rows = read(HEADER + line(values()).rstrip(b"\n"))

    assert len(rows) == 1
    assert isinstance(rows[0], MemberRow)
    assert rows[0].suspended_domains == ()
