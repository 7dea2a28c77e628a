"""The professionals file: valid individuals and facilities, and each bad row located."""

from __future__ import annotations

import io

import pytest

from rempart.identifiers import luhn_complete, make_french_iban, validate_iban
from rempart.registry.csv_rows import FileError, RowError
from rempart.registry.professional_file import (
    COLUMNS,
    NETWORK_CODES_MAX,
    ProfessionalRow,
    read_professional_file,
)

HEADER = ",".join(COLUMNS).encode() + b"\n"
RPPS = luhn_complete("10" + "12345678")
IBAN = make_french_iban("30004", "00001", "12345678901")
FINESS = "750712184"

PHARMACIST: dict[str, str] = {
    "am_number": "751234567",
    "rpps": RPPS,
    "finess": "",
    "name": "Pharmacie du Centre",
    "profession": "pharmacist",
    "optam": "false",
    "iban": IBAN,
    "bic": "BNPAFRPPXXX",
    "networks": "",
}
HOSPITAL = PHARMACIST | {
    "am_number": "750000009",
    "rpps": "",
    "finess": FINESS,
    "name": "Centre hospitalier de Paris",
    "profession": "hospital",
}


def values(**overrides: str) -> dict[str, str]:
    """The valid pharmacist row, with some values replaced."""
    unknown = set(overrides) - set(COLUMNS)
    assert not unknown, unknown
    return PHARMACIST | overrides


def line(row: dict[str, str]) -> bytes:
    return ",".join(row[c] for c in COLUMNS).encode() + b"\n"


def read(data: bytes) -> list[ProfessionalRow | RowError]:
    return list(read_professional_file(io.BytesIO(data)))


def _with_wrong_last_digit(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


# --- valid rows ----------------------------------------------------------------------------------


def test_the_synthetic_french_iban_is_valid() -> None:
    assert validate_iban(IBAN) == IBAN
    assert IBAN.startswith("FR")
    assert IBAN[4:25] == "300040000112345678901"
    assert len(IBAN) == 27


def test_a_valid_pharmacist_row() -> None:
    raw = line(values(networks="KALIVIA;SANTECLAIR;KALIVIA"))

    assert read(HEADER + raw) == [
        ProfessionalRow(
            line=2,
            am_number="751234567",
            rpps=RPPS,
            finess=None,
            name="Pharmacie du Centre",
            profession="pharmacist",
            optam=False,
            iban=IBAN,
            bic="BNPAFRPPXXX",
            networks=("KALIVIA", "SANTECLAIR"),
            raw=raw,
        )
    ]


def test_a_valid_hospital_with_finess_and_no_rpps() -> None:
    raw = line(HOSPITAL)

    assert read(HEADER + raw) == [
        ProfessionalRow(
            line=2,
            am_number="750000009",
            rpps=None,
            finess=FINESS,
            name="Centre hospitalier de Paris",
            profession="hospital",
            optam=False,
            iban=IBAN,
            bic="BNPAFRPPXXX",
            networks=(),
            raw=raw,
        )
    ]


@pytest.mark.parametrize(
    ("profession", "rpps", "finess"),
    [
        ("laboratory", "", "690781810"),
        ("transport", "", FINESS),
        ("laboratory", RPPS, ""),  # a facility may be identified by an RPPS instead
        ("gp", RPPS, ""),
        ("nurse", RPPS, ""),
        ("dentist", RPPS, FINESS),
    ],
)
def test_identifiers_accepted_for_each_kind_of_professional(
    profession: str, rpps: str, finess: str
) -> None:
    (row,) = read(HEADER + line(values(profession=profession, rpps=rpps, finess=finess)))

    assert isinstance(row, ProfessionalRow), row
    assert row.profession == profession
    assert row.rpps == (rpps or None)
    assert row.finess == (finess or None)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
    ],
)
def test_optam_reads_the_usual_booleans(written: str, expected: bool) -> None:
    (row,) = read(HEADER + line(values(profession="specialist", optam=written)))

    assert isinstance(row, ProfessionalRow), row
    assert row.optam is expected


def test_a_printed_iban_and_a_lowercase_bic_are_stored_compact() -> None:
    printed = " ".join(IBAN[i : i + 4] for i in range(0, len(IBAN), 4))

    (row,) = read(HEADER + line(values(iban=printed, bic="bnpafrppxxx")))

    assert isinstance(row, ProfessionalRow), row
    assert row.iban == IBAN
    assert row.bic == "BNPAFRPPXXX"


def test_up_to_the_maximum_number_of_networks_is_accepted() -> None:
    networks = [f"NET{i}" for i in range(NETWORK_CODES_MAX)]

    (row,) = read(HEADER + line(values(networks=";".join(networks))))

    assert isinstance(row, ProfessionalRow), row
    assert row.networks == tuple(sorted(networks))


def test_a_wrong_header_is_refused_at_line_1() -> None:
    header = ",".join(reversed(COLUMNS)).encode() + b"\n"

    with pytest.raises(FileError, match="line 1"):
        read(header + line(values()))


# --- bad rows ------------------------------------------------------------------------------------

BAD_ROWS = [
    pytest.param({"profession": "gp", "rpps": ""}, "rpps", "required", id="individual-no-rpps"),
    pytest.param(
        {"profession": "pharmacist", "rpps": "", "finess": FINESS},
        "rpps",
        "required",
        id="individual-finess-only",
    ),
    pytest.param(
        {"profession": "hospital", "rpps": "", "finess": ""},
        "finess",
        "FINESS",
        id="facility-no-finess-no-rpps",
    ),
    pytest.param(
        {"profession": "transport", "rpps": "", "finess": ""},
        "finess",
        "FINESS",
        id="transport-no-finess-no-rpps",
    ),
    pytest.param({"am_number": "75123456"}, "am_number", "9 digits", id="am-8-digits"),
    pytest.param({"am_number": "7512345678"}, "am_number", "9 digits", id="am-10-digits"),
    pytest.param({"am_number": "75123456A"}, "am_number", "digits", id="am-letter"),
    pytest.param({"am_number": ""}, "am_number", "digits", id="am-empty"),
    pytest.param({"rpps": _with_wrong_last_digit(RPPS)}, "rpps", "check digit", id="rpps-luhn"),
    pytest.param({"rpps": RPPS[:-1]}, "rpps", "11 digits", id="rpps-10-digits"),
    pytest.param(
        {"finess": _with_wrong_last_digit(FINESS)}, "finess", "check digit", id="finess-luhn"
    ),
    pytest.param({"iban": IBAN[:-1]}, "iban", "length", id="iban-short"),
    pytest.param(
        {"iban": IBAN[:4] + _with_wrong_last_digit(IBAN[4:10]) + IBAN[10:]},
        "iban",
        "check digits",
        id="iban-mod97",
    ),
    pytest.param({"iban": "XX" + IBAN[2:]}, "iban", "country", id="iban-country"),
    pytest.param({"iban": ""}, "iban", "letters and digits", id="iban-empty"),
    pytest.param({"bic": "BNPAFRP"}, "bic", "8 or 11", id="bic-7-chars"),
    pytest.param({"bic": "BNPAFRPPXX"}, "bic", "8 or 11", id="bic-10-chars"),
    pytest.param({"bic": "BNPAXXPPXXX"}, "bic", "country", id="bic-country"),
    pytest.param({"bic": "BNP-FRPPXXX"}, "bic", "letters and digits", id="bic-dash"),
    pytest.param({"profession": "surgeon"}, "profession", "one of", id="profession-unknown"),
    pytest.param({"profession": "Pharmacist"}, "profession", "one of", id="profession-case"),
    pytest.param({"optam": "maybe"}, "optam", "true or false", id="optam-word"),
    pytest.param({"optam": ""}, "optam", "true or false", id="optam-empty"),
    pytest.param({"optam": "2"}, "optam", "true or false", id="optam-2"),
    pytest.param(
        {"networks": ";".join(f"NET{i}" for i in range(NETWORK_CODES_MAX + 1))},
        "networks",
        f"at most {NETWORK_CODES_MAX}",
        id="too-many-networks",
    ),
    pytest.param({"networks": "KALIVIA;SANTE CLAIR"}, "networks", "letters", id="network-space"),
    pytest.param({"networks": "N" * 21}, "networks", "1 to 20", id="network-too-long"),
    pytest.param({"networks": "KALI-VIA"}, "networks", "letters", id="network-dash"),
    pytest.param({"name": ""}, "name", "required", id="name-empty"),
    pytest.param({"name": "P" * 201}, "name", "longer than 200", id="name-too-long"),
    pytest.param({"name": "Pharmacie\x1bdu Centre"}, "name", "control", id="name-control-char"),
]


@pytest.mark.parametrize(("overrides", "column", "reason"), BAD_ROWS)
def test_a_bad_row_is_reported_at_its_line_and_the_rows_around_it_still_parse(
    overrides: dict[str, str], column: str, reason: str
) -> None:
    data = HEADER + line(values()) + line(values(**overrides)) + line(HOSPITAL)

    rows = read(data)

    assert len(rows) == 3, rows
    first, error, last = rows
    assert isinstance(first, ProfessionalRow)
    assert first.line == 2
    assert isinstance(error, RowError), error
    assert (error.line, error.column) == (3, column)
    assert reason in error.reason
    assert isinstance(last, ProfessionalRow)
    assert last.line == 4
    assert last.profession == "hospital"


@pytest.mark.parametrize(("overrides", "column", "reason"), BAD_ROWS)
def test_a_row_error_reason_never_quotes_the_identifiers_of_its_row(
    overrides: dict[str, str], column: str, reason: str
) -> None:
    row = values(**overrides)

    (error,) = read(HEADER + line(row))

    assert isinstance(error, RowError), error
    for name in ("am_number", "rpps", "finess", "iban", "bic"):
        if row[name]:
            assert row[name] not in error.reason
